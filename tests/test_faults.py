"""Faults that must never cost a verdict, a log or a process: each asserts
the class, the exit code, a preserved log and no leftover QEMU."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import configs, qemu, run
from harness.errors import InfraError
from harness.report import parse_file
from harness.verdict import decide

REPO = Path(__file__).resolve().parent.parent


def _qemu_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "qemu-system" in line and marker in line]


def _boot(tmp_path, argv):
    storm = configs.load_storm("swapoff-fork-mmap")
    data = {"kernel": {}, "storm": {}, "durations": {}, "lock_coverage": {}}
    return run.boot_and_storm(argv, tmp_path, tmp_path / "console.log", "tcg", run.RunRequest(duration=5),
                              storm, 5, data)


def test_qemu_binary_missing_is_infra_error(tmp_path):
    with pytest.raises(InfraError) as info:
        _boot(tmp_path, ["/nonexistent/qemu-system-x86_64", "-version"])
    assert info.value.exit_code == 3
    assert "/nonexistent/qemu-system-x86_64" in str(info.value)
    assert (tmp_path / "console.log").exists()


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="qemu-system-x86 not installed (make deps)")
def test_corrupt_kernel_image_is_infra_error_with_qemu_message_kept(tmp_path):
    (tmp_path / "kernel.img").write_bytes(b"\x7fELF-not-really" * 1000)
    (tmp_path / "initramfs.cpio").write_bytes(b"")
    arch = configs.load_arch("x86_64")
    spec = qemu.BootSpec(kernel=Path("kernel.img"), initrd=Path("initramfs.cpio"),
                         append=qemu.kernel_cmdline(arch), accel="tcg")
    ending = _boot(tmp_path, qemu.argv(arch, spec))
    verdict = decide(parse_file(tmp_path / "console.log"), ending)
    assert not ending.reached_ready
    assert (verdict.verdict, verdict.exit_code) == ("infra-error", 3)
    assert "qemu" in (tmp_path / "console.log").read_text(errors="replace").lower(), "QEMU's error is in the log"
    assert not _qemu_processes(str(tmp_path))


@pytest.mark.e2e
def test_sigint_during_boot_marks_results_incomplete_and_leaves_no_qemu(tmp_path):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    proc = subprocess.Popen([sys.executable, "-m", "harness", "boot", "--arch", "x86_64", "--accel", "tcg"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 1800
    console = None
    while time.monotonic() < deadline:
        runs = list((tmp_path / "results").glob("*-x86_64-boot/console.log"))
        if runs and runs[0].stat().st_size > 2000:
            console = runs[0]
            break
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    assert console is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    data = json.loads((console.parent / "verdict.json").read_text())
    assert data["verdict"] == "infra-error" and data["complete"] is False and data.get("interrupted")
    assert console.stat().st_size > 2000, "the partial console log is kept"
    assert not _qemu_processes(str(console.parent.name)), "QEMU was stopped"
    assert not list(console.parent.glob("swap*.img")), "no swap disk image left behind"


@pytest.mark.e2e
def test_two_runs_at_once_get_separate_dirs_and_both_pass(tmp_path):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    procs = [subprocess.Popen([sys.executable, "-m", "harness", "boot", "--arch", "x86_64"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
    run_dirs = sorted(p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        assert json.loads((run_dir / "verdict.json").read_text())["verdict"] == "pass"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a small tmpfs")
def test_full_results_disk_is_a_clear_infra_error_with_the_partial_log_kept(tmp_path):
    fake = Path(__file__).parent / "fake_qemu.py"
    clean = (Path(__file__).parent / "data" / "consoles" / "x86_64-clean.log").read_bytes()
    noisy = tmp_path / "noisy.log"
    noisy.write_bytes(b"".join(b"[    0.%06d][    T1] boot noise line %d\r\n" % (i, i) for i in range(40000)) + clean)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], check=True)
    try:
        with pytest.raises(InfraError) as info:
            _boot(small, [sys.executable, str(fake), str(noisy)])
        assert "cannot write" in str(info.value) and "No space left" in str(info.value)
        kept = (small / "console.log").stat().st_size
        assert 100_000 < kept <= 256 * 1024, kept
        # The fake replays the log as text (\r\n read as \n); what was kept is exactly its output.
        assert (small / "console.log").read_bytes() == noisy.read_bytes().replace(b"\r\n", b"\n")[:kept]
        out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert str(noisy) not in out, "the fake QEMU was stopped"
    finally:
        subprocess.run(["umount", str(small)], check=False)
