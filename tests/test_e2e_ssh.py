"""End to end on x86_64: the SSH channel with a real guest.

A storm over SSH; networking disabled (the console carries it); sshd killed
in the guest mid-storm (the run notices, finishes over the console and says
so); and the pytest plugin's guest fixture, booted once for two tests.
"""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
# These tests are about the channel, so they run the seed storm (swap, hog,
# fork, mmap, the module): what the breadth modes of the default storm find
# in the kernel is test_e2e_x86_64's business. (A fallback run once failed
# here on a uffd data corruption the storm reported, not on SSH.)
STORM = ("--storm", "seed-paths")


def _cli(tmp_path, *args, env=None, timeout=1800):
    extra, env = env or {}, dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    env.pop("MMLOCK_SSH", None)
    env.pop("MMLOCK_SSH_FAULT", None)
    env.update(extra)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    latest = tmp_path / "results" / "latest"
    data = json.loads((latest / "verdict.json").read_text()) if (latest / "verdict.json").exists() else {}
    return proc, data, latest, time.monotonic() - started


def _same_console(run_dir):
    assert (run_dir / "console.log").read_bytes() == (run_dir / "qemu-console.log").read_bytes()


def test_storm_over_ssh(tmp_path):
    proc, data, run_dir, _ = _cli(tmp_path, "run", "--arch", "x86_64", *STORM, "--duration", "15")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["channel"] == "ssh", data.get("ssh")
    assert data["ssh"]["up_s"] < 30 and "fallback" not in data["ssh"]
    counts = data["storm"]["counts"]
    for stressor in ("swap", "hog", "fork", "mmap", "module"):
        assert stressor in counts, counts
    assert data["lock_coverage"]["available"]
    # the storm's output went over SSH, not through the console
    console = (run_dir / "console.log").read_text(errors="replace")
    assert "MMLOCK-HARNESS: storm-begin" not in console
    assert (run_dir / "ssh" / "known_hosts").is_file()
    _same_console(run_dir)


def test_networking_disabled_is_a_console_run(tmp_path):
    proc, data, run_dir, _ = _cli(tmp_path, "run", "--arch", "x86_64", *STORM, "--duration", "15",
                                  env={"MMLOCK_SSH": "0"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["channel"] == "console" and data["ssh"]["enabled"] is False
    assert "hostfwd" not in (run_dir / "qemu-cmdline.txt").read_text()
    assert "MMLOCK-HARNESS: storm-end status=0" in (run_dir / "console.log").read_text(errors="replace")
    assert "swap" in data["storm"]["counts"]


def test_sshd_killed_mid_storm_falls_back_to_the_console(tmp_path):
    duration = 20
    proc, data, run_dir, wall = _cli(tmp_path, "run", "--arch", "x86_64", *STORM, "--duration", str(duration),
                                     env={"MMLOCK_SSH_FAULT": "kill-sshd:6"})
    assert data.get("verdict"), proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ssh = data["ssh"]
    assert data["channel"] == "ssh" and "killall dropbear" in ssh["fault"]
    fallback = ssh["fallback"]
    assert "lost" in fallback["reason"] and fallback["recovered"].startswith("storm-run")
    # noticed within seconds of the kill, not at the end of the storm
    # (the guest's shell first has to run killall on a TCG guest busy with the storm)
    assert 0 <= fallback["at_s"] - ssh["fault_at_s"] < 8
    # the storm went on in the guest and its result came back over the console
    assert data["storm"]["ended_how"] == "completed" and "swap" in data["storm"]["counts"]
    assert data["lock_coverage"]["available"]
    assert wall < data["durations"]["boot_s"] + duration + 180
    _same_console(run_dir)


GUEST_TESTS = '''
import re

BOOT_IDS = []


def test_run_and_fetch(guest):
    result = guest.run("uname -r; echo err >&2; exit 4", 60)
    assert result.status == 4 and result.output.startswith("6.1") and "err" in result.output
    assert guest.fetch("/etc/harness/authorized_keys").startswith(b"ssh-ed25519 ")
    BOOT_IDS.append(guest.fetch("/proc/sys/kernel/random/boot_id"))
    assert guest.channel == "ssh"


def test_same_guest(guest):
    BOOT_IDS.append(guest.run("cat /proc/sys/kernel/random/boot_id", 60).output.encode())
    assert len(BOOT_IDS) == 2 and BOOT_IDS[0] == BOOT_IDS[1]
'''


def test_pytest_plugin_boots_one_guest_per_session(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["harness.pytest_plugin"]\n')
    (tmp_path / "test_guest.py").write_text(textwrap.dedent(GUEST_TESTS))
    env = dict(os.environ, PYTHONPATH=str(REPO), MMLOCK_RESULTS=str(tmp_path / "results"))
    env.pop("MMLOCK_SSH", None)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--guest-arch", "x86_64", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
    runs = [p for p in (tmp_path / "results").iterdir() if p.name.endswith("-pytest")]
    assert len(runs) == 1
    data = json.loads((runs[0] / "verdict.json").read_text())
    assert data["verdict"] == "pass" and data["channel"] == "ssh"
