"""Faults that must never cost a verdict, a log or a process: each asserts
the class, the exit code, a preserved log and no leftover QEMU."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import boot, configs, machine, qemu, run
from harness.errors import InfraError
from harness.plan import plan
from harness.record import Draft, RunRecord
from harness.report import parse_file
from harness.verdict import decide

REPO = Path(__file__).resolve().parent.parent


def _qemu_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "qemu-system" in line and marker in line]


# The harness with SIGINT at its default. A shell starts background jobs with SIGINT
# ignored (nohup ... &), the harness rightly keeps an inherited ignore, and these tests
# model a Ctrl-C at a terminal. (An exec keeps the default.)
_DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.executable, [sys.executable, '-m', 'harness', *sys.argv[1:]])")


def _interrupted(argv: list[str], env: dict, check) -> None:
    """check(proc) on the harness started with argv; the harness is stopped however check ends."""
    proc = subprocess.Popen([sys.executable, "-c", _DEFAULT_SIGINT, *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check(proc)
    finally:
        proc.kill()
        proc.wait()


def _boot(tmp_path, argv):
    return boot.boot_and_storm(argv, tmp_path, tmp_path / "console.log", "tcg", plan(run.RunRequest(duration=5)),
                               Draft(RunRecord()))


def test_qemu_binary_missing_is_infra_error(tmp_path):
    with pytest.raises(InfraError) as info:
        _boot(tmp_path, ["/nonexistent/qemu-system-x86_64", "-version"])
    assert info.value.exit_code == 3
    assert "/nonexistent/qemu-system-x86_64" in str(info.value)
    assert (tmp_path / "console.log").exists()


@pytest.mark.e2e   # a real QEMU process: not in `make unit`
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
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_during_boot_marks_results_incomplete_and_leaves_no_qemu(tmp_path, signum):
    """Ctrl-C, and SIGTERM (timeout(1), a CI job cancelled, kill) the same way."""
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    _interrupted(["boot", "--arch", "x86_64", "--accel", "tcg"], env,
                 lambda proc: _interrupt_during_boot(proc, tmp_path, signum))


def _interrupt_during_boot(proc: subprocess.Popen, tmp_path, signum) -> None:
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
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    data = json.loads((console.parent / "verdict.json").read_text())
    assert data["verdict"] == "infra-error" and data["complete"] is False and data.get("interrupted")
    assert data["reason"] == f"interrupted ({signal.Signals(signum).name})"
    assert console.stat().st_size > 2000, "the partial console log is kept"
    assert not _qemu_processes(str(console.parent.name)), "QEMU was stopped"
    assert not list(console.parent.glob("swap*.img")), "no swap disk image left behind"


def _processes_in(dir_name: str) -> list[str]:
    """Processes whose working directory is (under) a directory of that name: make and cc1."""
    found = []
    for proc_dir in Path("/proc").iterdir():
        try:
            cwd = os.readlink(proc_dir / "cwd")
            if f"/{dir_name}" in cwd and proc_dir.name.isdigit():
                found.append(f"{proc_dir.name} {(proc_dir / 'cmdline').read_bytes()[:80]!r}")
        except OSError:
            continue
    return found


@pytest.mark.e2e
def test_sigint_during_build_stops_make_and_every_compiler(tmp_path):
    """SIGINT while the kernel compiles must stop make and every compiler under it, and
    mark the run incomplete. In a cache of its own (the source unpacked into it, an
    empty ccache), so the kernel is never already built: a machine that once built
    this kernel would otherwise answer from its artifact cache and compile nothing."""
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"), MMLOCK_CACHE=str(tmp_path / "cache"))
    env.pop("CCACHE_DIR", None)
    _interrupted(["boot", "--arch", "x86_64", "--profile", "kasan"], env,
                 lambda proc: _sigint_during_build(proc, tmp_path))


def _sigint_during_build(proc: subprocess.Popen, tmp_path) -> None:
    deadline = time.monotonic() + 900
    build_log = None
    while time.monotonic() < deadline and proc.poll() is None:
        logs = list((tmp_path / "results").glob("*-x86_64-boot/build.log"))
        if logs and "  CC " in logs[0].read_text(errors="replace"):
            build_log = logs[0]
            break
        time.sleep(0.5)
    assert build_log is not None, proc.communicate()
    out_dir = "x86_64-kasan"
    assert _processes_in(out_dir), "make is running in the kasan O= dir"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    data = json.loads((build_log.parent / "verdict.json").read_text())
    assert data["verdict"] == "infra-error" and data["complete"] is False and data.get("interrupted")
    time.sleep(1)
    assert not _processes_in(out_dir), "make and its compilers are gone"
    assert not _qemu_processes(build_log.parent.name)


@pytest.mark.e2e
def test_hard_frozen_guest_ends_at_the_inactivity_limit_with_a_monitor_dump(tmp_path):
    """Every vCPU stopped mid-storm (MMLOCK_FAULT=freeze, through the monitor): no heartbeat, no
    console. The run ends at the inactivity limit, far before the storm's own deadline, with the
    vCPU registers from the monitor in console.log, a hang verdict, and nothing left running."""
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"), MMLOCK_FAULT="freeze:15")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--arch", "x86_64", "--duration", "120",
                           "--inactivity-timeout", "20"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    wall = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run_dir = next(p for p in (tmp_path / "results").iterdir() if p.name.endswith("-x86_64-run"))
    data = json.loads((run_dir / "verdict.json").read_text())
    assert data["reports"][0]["kind"] == "hang"
    assert "inactivity limit 20s" in data["reason"]
    assert data["dump"]["done"] == ["sysrq wtd", "info cpus", "info registers -a"]
    # Each vCPU's pc, named in vmlinux as an oops names a frame (or said to be outside it).
    assert len(data["dump"]["pcs"]) == machine.PC_SAMPLES and all(len(s) == 2 for s in data["dump"]["pcs"])
    # GCC's clones keep their suffix in the symbol name: rcu_lock_acquire.constprop.0+0x23/0x25.
    frame = re.compile(r"\w+(\.\w+)*\+0x[0-9a-f]+/0x[0-9a-f]+( \(.*\))?|[0-9a-f]+ \(not kernel text\)")
    assert [len(places) for places in data["dump"]["where"]] == [machine.PC_SAMPLES] * 2
    assert all(frame.fullmatch(p) for places in data["dump"]["where"] for p in places), data["dump"]["where"]
    assert "vCPUs at cpu0 " in data["reason"] and ", cpu1 " in data["reason"]
    assert data["storm"]["wall_s"] < 100, "ended by the inactivity limit, not the storm deadline"
    console = (run_dir / "console.log").read_bytes()
    assert b"MMLOCK-HARNESS: heartbeat" in console
    assert console.count(b"RIP=") >= 2, "both vCPUs' registers from the monitor"
    assert console == (run_dir / "qemu-console.log").read_bytes(), "console.log is what QEMU recorded"
    assert not _qemu_processes(run_dir.name) and not list(run_dir.glob("swap*.img"))
    assert wall < 600


@pytest.mark.e2e
def test_two_runs_at_once_get_separate_dirs_and_both_pass(tmp_path):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    procs = [subprocess.Popen([sys.executable, "-m", "harness", "boot", "--arch", "x86_64"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=False):
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
