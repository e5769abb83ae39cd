"""The console channel and the run's ending logic against a fake QEMU: a real
process replaying recorded console logs (tests/data/consoles/)."""
import sys
import time
from pathlib import Path

from harness import boot, machine, run
from harness.plan import plan
from harness.record import Draft, RunRecord
from harness.report import parse_file
from harness.verdict import decide

DATA = Path(__file__).parent / "data" / "consoles"
FAKE = Path(__file__).parent / "fake_qemu.py"


def _run(tmp_path, log_name, mode="normal", storm_seconds=5, boot_timeout=None, monkeypatch=None,
         inactivity=None):
    if boot_timeout and monkeypatch:
        monkeypatch.setitem(boot.BOOT_TIMEOUT_S, "tcg", boot_timeout)
    # seed-paths: the modes the recorded consoles have a result line for (a planned
    # mode without one fails the storm).
    planned = plan(run.RunRequest(duration=storm_seconds, inactivity_s=inactivity, storm="seed-paths"))
    draft = Draft(RunRecord())
    argv = [sys.executable, str(FAKE), str(DATA / log_name), mode]
    console_log = tmp_path / "console.log"
    ending = boot.boot_and_storm(argv, tmp_path, console_log, "tcg", planned, draft)
    return ending, decide(parse_file(console_log), ending), draft.record.to_json(), console_log


def test_clean_run_passes_and_log_is_complete(tmp_path):
    ending, verdict, data, console_log = _run(tmp_path, "x86_64-clean.log")
    assert ending.reached_ready and ending.storm == "completed"
    assert verdict.verdict == "pass", verdict.reason
    assert data["kernel"]["release"].startswith("6.1")
    assert data["storm"]["counts"]["swap"]["swapoff"] > 0
    text = console_log.read_text(errors="replace")
    assert "MMLOCK-HARNESS: storm-end status=0" in text
    assert "reboot: Restarting system" in text
    # The stressors' own lines are kept beside the console, printable only.
    storm_log = (tmp_path / "storm.log").read_text()
    assert "ok 1 swap #" in storm_log and "MMLOCK-HARNESS: storm-end status=0" in storm_log
    assert all(ch == "\n" or ch.isprintable() for ch in storm_log)


def test_lockdep_splat_in_storm_fails(tmp_path):
    _, verdict, _, _ = _run(tmp_path, "x86_64-lockdep-splat.log")
    assert verdict.exit_code == 1
    assert verdict.reports[0].kind == "lockdep"
    assert verdict.reports[0].title.startswith("possible deadlock in")


def _dumped(data, console_log):
    """The state dump reached the console: sysrq w/t/d by break, then the monitor; each
    vCPU's pc read from machine.PC_SAMPLES register dumps."""
    assert data["dump"]["done"] == ["sysrq wtd", "info cpus", "info registers -a"]
    assert data["dump"]["pcs"] == [["ffffffff81a2b3c4", "ffffffff8100d1e0"]] * machine.PC_SAMPLES
    text = console_log.read_text(errors="replace")
    for header in ("Show Blocked State", "Show State", "Show Locks Held"):
        assert f"sysrq: {header}" in text
    assert "fake monitor: info registers -a" in text


def test_guest_hang_in_storm_is_a_fail_and_qemu_is_killed(tmp_path, monkeypatch):
    """Heartbeats keep coming (the storm is stuck, the guest is not): the storm deadline ends it."""
    monkeypatch.setattr(boot.storm_stage, "STORM_GRACE_S", 3)
    monkeypatch.setattr(machine, "DUMP_TIMEOUT_S", 2)
    ending, verdict, data, console_log = _run(tmp_path, "x86_64-clean.log", mode="hang-in-storm",
                                              storm_seconds=1, inactivity=2)
    assert ending.storm == "timeout" and ending.killed_by_harness
    assert "did not finish within 4s" in ending.note
    assert verdict.exit_code == 1 and verdict.reports[0].kind == "hang"
    _dumped(data, console_log)


def test_silent_guest_mid_storm_ends_at_the_inactivity_limit(tmp_path, monkeypatch):
    """No output and no heartbeat: the run ends after the inactivity limit, long before the
    storm's own deadline, with the state dump in console.log."""
    monkeypatch.setattr(machine, "DUMP_TIMEOUT_S", 2)
    started = time.monotonic()
    ending, verdict, data, console_log = _run(tmp_path, "x86_64-clean.log", mode="silent-in-storm",
                                              storm_seconds=600, inactivity=3)
    assert time.monotonic() - started < 60
    assert ending.storm == "timeout" and ending.killed_by_harness
    assert "nothing from the guest for" in ending.note and "inactivity limit 3s" in ending.note
    assert verdict.exit_code == 1 and verdict.reports[0].kind == "hang"
    assert "inactivity limit" in verdict.reason
    _dumped(data, console_log)


def test_qemu_killed_mid_storm_is_infra_error(tmp_path):
    ending, verdict, _, console_log = _run(tmp_path, "x86_64-clean.log", mode="die-in-storm")
    assert ending.storm == "qemu-exited"
    assert verdict.verdict == "infra-error"
    assert "MMLOCK-HARNESS: storm-begin" in console_log.read_text(errors="replace"), "partial log kept"


def test_silent_guest_is_boot_failure(tmp_path, monkeypatch):
    """A guest stuck in boot is dumped like one stuck in the storm, then killed."""
    monkeypatch.setattr(machine, "DUMP_TIMEOUT_S", 2)
    ending, verdict, data, console_log = _run(tmp_path, "x86_64-clean.log", mode="silent", boot_timeout=3,
                                              monkeypatch=monkeypatch)
    assert not ending.reached_ready
    assert verdict.verdict == "boot-failure"
    _dumped(data, console_log)
