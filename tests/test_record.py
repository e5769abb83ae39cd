"""verdict.json through RunRecord: every field a recorded run wrote (tests/data/verdicts/,
verdict.json files of real runs of the harness before the record existed) reads back
into fields and writes out unchanged, key for key and value for value."""
import json
import os
import re
from pathlib import Path

import pytest

from harness import run
from harness.record import KernelFacts, RunRecord, StormFacts
from tests.hostile_tree import make_tree

VERDICTS = Path(__file__).parent / "data" / "verdicts"
CASES = sorted(VERDICTS.glob("*.json"))


def test_the_recorded_runs_are_there():
    assert len(CASES) >= 12


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_recorded_verdict_json_round_trips_unchanged(path):
    old = json.loads(path.read_text())
    record = RunRecord.from_json(old)
    new = record.to_json()
    for report in old["reports"]:   # fail-zoo-ksm was written before reports had these two
        report.setdefault("frame", "")
        report.setdefault("guilty_file", "")
    assert new == old
    assert not record.extra, f"fields the record does not know: {sorted(record.extra)}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fields_read_what_the_keys_held(path):
    old = json.loads(path.read_text())
    record = RunRecord.load(path)
    assert (record.run_id, record.verdict, record.exit_code, record.reason) == (
        old["run_id"], old["verdict"], old["exit_code"], old["reason"])
    assert record.durations.total_s == old["durations"]["total_s"]
    assert [r.title for r in record.reports] == [r["title"] for r in old["reports"]]
    assert record.as_verdict().exit_code == old["exit_code"]
    if "storm" in old:
        assert record.storm_facts.counts == old["storm"]["counts"]
        assert record.storm_facts.ended_how == old["storm"].get("ended_how")
    if old.get("lock_coverage"):
        assert record.coverage.never_taken == old["lock_coverage"]["never_taken"]
    if old.get("ssh", {}).get("fallback"):
        assert record.ssh and record.ssh.fallback and record.ssh.fallback.reason == old["ssh"]["fallback"]["reason"]
    assert bool(record.interrupted) == bool(old.get("interrupted"))


def test_unknown_keys_are_kept_and_absent_ones_stay_absent():
    data = {"run_id": "r", "verdict": "pass", "exit_code": 0, "reason": "", "arch": "x86_64", "reports": [],
            "durations": {"build_s": 0.0, "boot_s": 0.0, "storm_s": 0.0, "total_s": 1.0}, "complete": True,
            "storm": {"name": "s", "counts": {}, "from_the_future": 1}, "new_top_level": [1]}
    record = RunRecord.from_json(data)
    assert record.extra == {"new_top_level": [1]} and record.storm == StormFacts(name="s", extra={"from_the_future": 1})
    assert record.to_json() == data
    assert "accel" not in record.to_json() and "kernel" not in record.to_json()


def test_a_commit_of_a_tarball_is_written_as_null():
    kernel = KernelFacts(version="6.1", source="debian", profile="lockdep", preempt="full", source_identity="x")
    assert kernel.to_json()["commit"] is None and "release" not in kernel.to_json()


def shape(value):
    """A JSON value's keys all the way down, with each leaf's type: what must not change."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# A run of a tree whose every tool fails (tests/hostile_tree.py), in process, as the
# runner before RunRecord wrote it: tests/data/verdicts/run-*.json (MMLOCK_UPDATE_GOLDEN=1
# writes them again). Fields, their nesting, their types and their stable values must match.
RUNS = {"run-build-error": "", "run-fault-load": "raise:load", "run-fault-build": "raise:build",
        "run-fault-results": "raise:results"}
STABLE = ("verdict", "exit_code", "arch", "accel", "accel_reason", "channel", "inject", "complete", "stage",
          "reports", "lock_coverage")


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_writes_the_verdict_json_the_old_runner_wrote(tmp_path, monkeypatch, name):
    tree, _, env = make_tree(tmp_path)
    for key in ("PATH", "MMLOCK_RESULTS", "MMLOCK_CACHE"):
        monkeypatch.setenv(key, env[key])
    outcome = run.execute(run.RunRequest(kernel_src=str(tree), accel="tcg", label="boot", harness_fault=RUNS[name]))
    new = json.loads((outcome.run_dir / "verdict.json").read_text())
    golden = VERDICTS / f"{name}.json"
    if os.environ.get("MMLOCK_UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(new, indent=2) + "\n")
    old = json.loads(golden.read_text())
    assert shape(new) == shape(old)
    assert {k: new.get(k) for k in STABLE} == {k: old.get(k) for k in STABLE}
    for section, keys in (("kernel", ("version", "profile", "preempt")), ("storm", ("name", "duration_s", "seed")),
                          ("internal_error", ("type", "stage", "traceback"))):
        assert {k: new.get(section, {}).get(k) for k in keys} == {k: old.get(section, {}).get(k) for k in keys}
    assert reason(new) == reason(old)


def reason(data: dict) -> str:
    """The reason without paths and the line it was raised at."""
    return re.sub(r"/\S+", "PATH", data["reason"].split(" at harness/")[0])
