"""A run you can hold: `with run.held(request) as r:` gives the block a booted guest
(r.session) between the storm and the power-off, in this thread, and leaves QEMU
stopped, console.log flushed and verdict.json written whatever the block does.
The kernel and image stage is replaced by the fake QEMU replaying a recorded log
(tests/fake_qemu.py); every other stage is the product's."""
import contextlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import run
from harness.build_stage import Built
from harness.machine import Lifecycle
from harness.signals import Terminated

FAKE = Path(__file__).parent / "fake_qemu.py"
CLEAN = Path(__file__).parent / "data" / "consoles" / "x86_64-clean.log"


@pytest.fixture
def fake_stages(tmp_path, monkeypatch):
    """build -> a Built that names nothing real; machine_files -> the fake QEMU's argv, no SSH."""
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path / "results"))

    def build(plan, run_dir, data, enter):
        enter("build")
        kernel = SimpleNamespace(vmlinux=tmp_path / "vmlinux", image=tmp_path / "bzImage")
        return Built(kernel, SimpleNamespace(module=tmp_path / "mmlock.ko"), "tcg", "a test")   # type: ignore[arg-type]

    @contextlib.contextmanager
    def machine_files(plan, built, run_dir):
        yield [sys.executable, str(FAKE), str(CLEAN)], None

    monkeypatch.setattr(run, "build", build)
    monkeypatch.setattr(run, "machine_files", machine_files)


def _verdict(outcome):
    return json.loads((outcome.run_dir / "verdict.json").read_text())


def test_the_block_holds_a_booted_guest_after_the_storm(fake_stages):
    with run.held(run.RunRequest(duration=5, label="held", storm="seed-paths")) as booted:
        session = booted.session
        assert session is not None and session.machine.state is Lifecycle.READY
        assert session.run("echo held-$((40 + 2))", 30).output.strip() == "held-42"
        assert session.storm_state == "completed" and session.machine.alive
        assert booted.outcome is None                       # not judged while held
    assert booted.session is None and not session.machine.alive
    assert session.machine.state is Lifecycle.GONE and session.console.log_handle.closed
    assert booted.outcome is not None and booted.outcome.verdict.verdict == "pass"
    data = _verdict(booted.outcome)
    assert data["verdict"] == "pass" and data["storm"]["ended_how"] == "completed" and data["complete"]
    assert "held-42" in (booted.outcome.run_dir / "console.log").read_text()
    assert booted.outcome.record.storm_facts.ended_how == "completed"


@pytest.mark.parametrize("signal_like", [KeyboardInterrupt(), Terminated()])
def test_ctrl_c_or_sigterm_in_the_block_stops_qemu_and_says_interrupted(fake_stages, signal_like):
    with run.held(run.RunRequest(duration=5, storm_enabled=False, label="held")) as booted:
        session = booted.session
        assert session is not None
        raise signal_like
    assert not session.machine.alive and session.console.log_handle.closed
    data = _verdict(booted.outcome)
    assert (data["verdict"], data["exit_code"], data.get("interrupted")) == ("infra-error", 3, True)
    assert data["reason"] in ("interrupted (SIGINT)", "interrupted (SIGTERM)")


def test_a_bug_in_the_block_is_an_infra_error_not_a_verdict_on_the_kernel(fake_stages):
    with run.held(run.RunRequest(duration=5, storm_enabled=False, label="held")) as booted:
        assert booted.session is not None
        raise ValueError("a bug in the caller")
    data = _verdict(booted.outcome)
    assert data["verdict"] == "infra-error" and "ValueError: a bug in the caller" in data["reason"]
    assert data["internal_error"]["stage"] == "storm"


def test_execute_is_the_held_run_with_an_empty_block(fake_stages):
    outcome = run.execute(run.RunRequest(duration=5, label="held", storm="seed-paths"))
    assert outcome.verdict.verdict == "pass" and outcome.record.durations.boot_s > 0
