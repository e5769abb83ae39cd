"""A bug of ours is an infra-error, never a kernel verdict: an exception injected at
each stage (MMLOCK_FAULT=raise:STAGE, product code) ends the run with exit 3,
verdict.json naming the exception, the stage and where, the console log kept and
QEMU gone; in a bisection such a run is a skipped step, never a bad one."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import boot, run
from harness.bisect_cmd import harness_trial
from harness.bisect_git import SKIP
from harness.bisect_policy import Policy, judge
from harness.plan import plan
from harness.record import Draft, RunRecord
from tests.hostile_tree import make_tree

REPO = Path(__file__).resolve().parent.parent
FAKE = Path(__file__).parent / "fake_qemu.py"
CLEAN = Path(__file__).parent / "data" / "consoles" / "x86_64-clean.log"


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def _verdict(root: Path) -> tuple[Path, dict]:
    (path,) = list((root / "results").rglob("verdict.json"))
    return path.parent, json.loads(path.read_text())


@pytest.mark.parametrize("stage", ["load", "build"])
def test_exception_before_the_boot_is_infra_with_verdict_json(tmp_path, stage):
    tree, started, env = make_tree(tmp_path)
    env["MMLOCK_FAULT"] = f"raise:{stage}"
    proc = _cli(env, "run", "--kernel-src", str(tree))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    run_dir, data = _verdict(tmp_path)
    assert (data["verdict"], data["exit_code"], data["complete"]) == ("infra-error", 3, False)
    assert data["reason"].startswith(f"internal error in stage {stage}: RuntimeError: injected fault")
    assert " at harness/run.py:" in data["reason"] and data["internal_error"]["stage"] == stage
    assert "Traceback" in (run_dir / "harness-error.txt").read_text()
    assert 'type="infra-error"' in (run_dir / "junit.xml").read_text()
    assert proc.stdout.strip().splitlines()[-1].startswith("verdict: infra-error (exit 3)")
    assert not started.exists(), "raised before any build"


def test_cache_that_is_a_file_is_infra_not_a_kernel_report(tmp_path):
    """The issue's example: MMLOCK_CACHE pointing at a file used to print a traceback and exit 1."""
    tree, _, env = make_tree(tmp_path)
    (tmp_path / "cachefile").write_text("not a directory\n")
    env["MMLOCK_CACHE"] = str(tmp_path / "cachefile")
    proc = _cli(env, "boot", "--kernel-src", str(tree))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    _, data = _verdict(tmp_path)
    assert data["verdict"] == "infra-error" and "internal error in stage build" in data["reason"]
    assert "Error" in data["reason"] and "harness/" in data["reason"]


def test_exception_while_writing_results_still_writes_a_verdict(tmp_path):
    tree, started, env = make_tree(tmp_path)
    env["MMLOCK_FAULT"] = "raise:results"
    proc = _cli(env, "boot", "--kernel-src", str(tree))   # the tree's build fails first: a build-error...
    assert proc.returncode == 3, proc.stdout + proc.stderr   # ...that the bug in the writing turns to infra
    _, data = _verdict(tmp_path)
    assert data["verdict"] == "infra-error" and data["reason"].startswith("internal error in stage results")
    assert started.exists()


def test_exception_outside_a_run_is_exit_3_not_1(tmp_path):
    env = dict(_env(tmp_path))
    (tmp_path / "resultsfile").write_text("")
    env["MMLOCK_RESULTS"] = str(tmp_path / "resultsfile" / "sub")   # cannot even make a run dir
    proc = _cli(env, "parse", str(CLEAN))    # parse needs no results: it works
    assert proc.returncode == 0, proc.stderr
    proc = _cli(env, "soak", "--runs", "1", "--accel", "tcg")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "internal error in stage soak" in proc.stderr and "verdict: infra-error (exit 3)" in proc.stderr


def _env(tmp_path):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"), MMLOCK_CACHE=str(tmp_path / "cache"))
    env.pop("MMLOCK_FAULT", None)
    return env


def _fake_qemu_alive(log: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(FAKE) in line and str(log) in line]


@pytest.mark.parametrize("stage", ["boot", "storm"])
def test_exception_in_boot_or_storm_leaves_no_qemu_and_keeps_the_console(tmp_path, monkeypatch, stage):
    log = tmp_path / "replayed.log"
    log.write_bytes(CLEAN.read_bytes())
    draft = Draft(RunRecord())
    fault = f"raise:{stage}"
    with pytest.raises(RuntimeError, match=f"injected fault at stage {stage}"):
        boot.boot_and_storm([sys.executable, str(FAKE), str(log)], tmp_path, tmp_path / "console.log", "tcg",
                            plan(run.RunRequest(duration=5, harness_fault=fault)), draft,
                            enter=lambda step: run.enter_stage(step, draft, fault))
    assert draft.record.stage == stage
    assert not _fake_qemu_alive(log), "QEMU (the fake) was stopped"
    kept = (tmp_path / "console.log").read_text(errors="replace")
    if stage == "storm":
        assert "MMLOCK-HARNESS: ready" in kept, "the boot's console is kept"
    reason = run.internal_error(RuntimeError("x"), stage)
    assert reason == f"internal error in stage {stage}: RuntimeError: x"


def test_a_bisect_trial_that_hits_a_bug_of_ours_is_skipped_not_bad(tmp_path, monkeypatch):
    tree, started, env = make_tree(tmp_path)
    monkeypatch.setenv("MMLOCK_RESULTS", env["MMLOCK_RESULTS"])
    monkeypatch.setenv("MMLOCK_CACHE", env["MMLOCK_CACHE"])
    trial = harness_trial(run.RunRequest(harness_fault="raise:build"), tree, io.StringIO())
    step = judge("abc", trial, "possible deadlock in f", 2, Policy(runs=2))
    assert step.verdict == SKIP, step   # git bisect skip, exit 125 in `git bisect run` terms
    assert step.note.startswith("infra-error: internal error in stage build: RuntimeError")
    assert step.runs == 1 and len(step.run_ids) == 2, "one retry for a flaky host, then skip"
    assert not started.exists()


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["image", "boot", "storm", "parse", "verdict", "results"])
def test_exception_at_each_stage_of_a_real_boot(tmp_path, stage):
    """The same with a real kernel and QEMU: exit 3, verdict.json naming the stage, the
    console log kept from the boot on, no QEMU left, no swap disk left."""
    env = _env(tmp_path)
    env.pop("MMLOCK_CACHE")
    env["MMLOCK_FAULT"] = f"raise:{stage}"
    proc = subprocess.run([sys.executable, "-m", "harness", "boot", "--arch", "x86_64"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir, data = _verdict(tmp_path)
    assert data["verdict"] == "infra-error"
    assert data["reason"].startswith(f"internal error in stage {stage}: RuntimeError: injected fault")
    if stage in ("storm", "parse", "verdict", "results"):
        assert b"MMLOCK-HARNESS: ready" in (run_dir / "console.log").read_bytes()
    assert not _processes_in(run_dir), "QEMU runs in its run dir: nothing may be left there"
    assert not list(run_dir.glob("swap*.img"))


def _processes_in(run_dir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == run_dir.resolve():
                found.append(f"{proc.name} {(proc / 'cmdline').read_bytes()[:80]!r}")
        except OSError:
            continue
    return found
