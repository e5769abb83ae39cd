"""KCIDB export: every kcidb.json the harness writes validates against the
latest schema of PyPI's kcidb-io, with its own validator (not a copy).

Runs here are real `run.execute` calls on a small fake kernel git tree that
end early for real reasons (no compiler on PATH: infra-error; a Makefile
without kconfig targets: build-error), and a recorded console log through the
real parser for a failing run. Nothing is submitted anywhere.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kcidb_io
import pytest

from harness import kcidb, matrix, run
from harness.record import RunRecord
from harness.report import parse_file
from harness.results import run_kcidb
from harness.verdict import Ending, decide

CONSOLES = Path(__file__).parent / "data" / "consoles"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_AUTHOR_DATE": "1700000000 +0000",
           "GIT_COMMITTER_DATE": "1700000000 +0000"}


def validate(document: dict) -> dict:
    """kcidb-io's validator for its latest schema; returns the document (raises if invalid)."""
    assert kcidb_io.schema.LATEST.major == 5 and kcidb_io.schema.LATEST.minor >= 3
    return kcidb_io.schema.LATEST.validate(document)


@pytest.fixture
def kernel_tree(tmp_path: Path) -> tuple[Path, str]:
    """A git tree that looks like a kernel (Makefile, Kconfig, arch/) and builds nothing."""
    tree = tmp_path / "linux"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n\nall:\n\tfalse\n")
    (tree / "Kconfig").write_text("# fake\n")
    (tree / "arch" / "x86" / "Kconfig").write_text("# fake\n")
    env = dict(os.environ, **GIT_ENV)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "fake kernel"]):
        subprocess.run(["git", "-C", str(tree), *args], env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return tree, head


@pytest.fixture
def results(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "results"


def no_compiler_on_path(tmp_path: Path, monkeypatch) -> None:
    """PATH with git and nothing else: the build's first host tool (gcc) is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    git = shutil.which("git")
    assert git
    if not (bin_dir / "git").exists():
        (bin_dir / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_an_infra_error_run_is_valid_kcidb_with_status_error(tmp_path, monkeypatch, kernel_tree, results):
    tree, head = kernel_tree
    no_compiler_on_path(tmp_path, monkeypatch)
    outcome = run.execute(run.RunRequest(kernel_src=str(tree), duration=5, accel="tcg"))
    assert outcome.verdict.verdict == "infra-error" and "gcc" in outcome.verdict.reason
    document = json.loads((outcome.run_dir / "kcidb.json").read_text())
    assert validate(document) is not None
    (checkout,), (build,), (test,) = document["checkouts"], document["builds"], document["tests"]
    assert test["status"] == "ERROR" and build["status"] == "SKIP"       # never built
    assert checkout["git_commit_hash"] == head and checkout["origin"] == build["origin"] == "mmlock"
    assert build["checkout_id"] == checkout["id"] and test["build_id"] == build["id"]
    assert test["path"] == "mmlock.swapoff-fork-mmap" and test["misc"]["verdict"] == "infra-error"
    assert build["log_url"] == "file:build.log"                          # relative to kcidb.json
    assert document["issues"] == [] and document["incidents"] == []
    # the same inputs again: the same ids (a rerun replaces, it does not add)
    again = run.execute(run.RunRequest(kernel_src=str(tree), duration=5, accel="tcg"))
    assert again.run_dir != outcome.run_dir
    second = json.loads((again.run_dir / "kcidb.json").read_text())
    for kind in ("checkouts", "builds", "tests"):
        assert [o["id"] for o in second[kind]] == [o["id"] for o in document[kind]]
    # another input (the seed): the same checkout and build, another test
    third = run.execute(run.RunRequest(kernel_src=str(tree), duration=5, accel="tcg", seed=2))
    other = json.loads((third.run_dir / "kcidb.json").read_text())
    assert other["builds"][0]["id"] == build["id"] and other["tests"][0]["id"] != test["id"]


def test_a_build_error_run_fails_the_build_and_skips_the_test(kernel_tree, results):
    tree, _ = kernel_tree
    if not shutil.which("make") or not shutil.which("gcc"):
        pytest.fail("make and gcc are needed (Debian: build-essential)")
    outcome = run.execute(run.RunRequest(kernel_src=str(tree), duration=5, accel="tcg"))
    assert outcome.verdict.verdict == "build-error", outcome.verdict.reason
    document = validate(json.loads((outcome.run_dir / "kcidb.json").read_text()))
    assert document["builds"][0]["status"] == "FAIL" and document["tests"][0]["status"] == "SKIP"
    assert document["builds"][0]["log_url"] == "file:build.log"


def failing_run_data(run_dir: Path) -> dict:
    """A failing run's verdict.json fields, from a recorded console log through the real parser."""
    run_dir.mkdir(parents=True)
    shutil.copy(CONSOLES / "x86_64-lockdep-splat.log", run_dir / "console.log")
    verdict = decide(parse_file(run_dir / "console.log"), Ending(reached_ready=True, storm="completed"))
    for name in ("verdict.json", "build.log", "kernel.config", "repro.sh"):
        (run_dir / name).write_text("")
    return {"run_id": run_dir.name, "verdict": verdict.verdict, "exit_code": verdict.exit_code,
            "reason": verdict.reason, "arch": "x86_64", "accel": "tcg", "complete": True, "inject": None,
            "kernel": {"version": "6.1.0", "source": "debian:linux-source-6.1", "profile": "lockdep",
                       "source_identity": "a" * 64, "commit": "", "build_key": "b" * 64,
                       "config_sha256": "c" * 64, "compiler": "gcc (Debian 12.2.0-14) 12.2.0", "cached": True},
            "storm": {"name": "swapoff-fork-mmap", "duration_s": 60, "seed": 1, "left_out": {}},
            "reports": [r.to_json() for r in verdict.reports],
            "durations": {"build_s": 1.5, "boot_s": 20.0, "storm_s": 60.0, "total_s": 90.0},
            "qemu": {"binary": "qemu-system-x86_64", "version": "QEMU emulator version 7.2.0"}}


def test_a_failing_run_has_its_report_titles_as_issues_and_incidents(tmp_path):
    run_dir = tmp_path / "20261206-120000-x86_64-run"
    data = failing_run_data(run_dir)
    assert data["verdict"] == "fail" and data["reports"]
    document = validate(run_kcidb(run_dir, RunRecord.from_json(data)))
    (build,), (test,) = document["builds"], document["tests"]
    assert build["status"] == "PASS" and test["status"] == "FAIL"
    assert test["log_url"] == "file:console.log" and build["config_url"] == "file:kernel.config"
    assert {f["name"] for f in test["output_files"]} == {"verdict.json", "repro.sh"}
    titles = [r["title"] for r in data["reports"]]
    assert [i["comment"] for i in document["issues"]] == titles
    assert titles[0].startswith("possible deadlock in")
    for issue, incident in zip(document["issues"], document["incidents"], strict=True):
        assert incident["issue_id"] == issue["id"] and incident["test_id"] == test["id"]
        assert incident["build_id"] == build["id"] and incident["present"] is True
        assert issue["culprit"] == {"code": True}
    # the same title from another run is the same issue; the incident is that run's
    other = tmp_path / "other"
    data2 = failing_run_data(other)
    data2["storm"]["seed"] = 7
    document2 = validate(run_kcidb(other, RunRecord.from_json(data2)))
    assert document2["issues"][0]["id"] == document["issues"][0]["id"]
    assert document2["incidents"][0]["id"] != document["incidents"][0]["id"]


def test_guest_titles_are_made_printable(tmp_path):
    data = failing_run_data(tmp_path / "run")
    data["reports"][0]["title"] = "possible deadlock in evil\x1b[2J\x00\x07"
    document = validate(run_kcidb(tmp_path / "run", RunRecord.from_json(data)))
    assert document["issues"][0]["comment"] == r"possible deadlock in evil\x1b[2J\x00\x07"   # shown escaped
    assert document["incidents"][0]["comment"] == r"possible deadlock in evil\x1b[2J\x00\x07"


@pytest.mark.parametrize("verdict,build,test", [
    ("pass", "PASS", "PASS"), ("fail", "PASS", "FAIL"), ("build-error", "FAIL", "SKIP"),
    ("boot-failure", "PASS", "ERROR"), ("infra-error", "PASS", "ERROR"), ("config-error", "PASS", "SKIP"),
])
def test_status_mapping(tmp_path, verdict, build, test):
    data = failing_run_data(tmp_path / "run")
    data["verdict"], data["reports"] = verdict, []
    if verdict == "build-error":
        del data["kernel"]["build_key"]
    document = validate(kcidb.document([kcidb.from_run(data)]))
    assert (document["builds"][0]["status"], document["tests"][0]["status"]) == (build, test)


def test_a_kernel_of_another_preemption_model_is_another_build_config(tmp_path):
    data = failing_run_data(tmp_path / "run")
    full = validate(kcidb.document([kcidb.from_run(data)]))["builds"][0]
    data["kernel"]["preempt"] = "none"
    del data["kernel"]["build_key"]                 # a failed build: the id comes from its inputs
    none = validate(kcidb.document([kcidb.from_run(data)]))["builds"][0]
    assert (full["config_name"], none["config_name"]) == ("lockdep", "lockdep-preempt-none")
    data["kernel"]["preempt"] = "voluntary"
    voluntary = kcidb.from_run(data)["builds"][0]
    assert len({full["id"], none["id"], voluntary["id"]}) == 3


def test_a_bare_relative_path_is_not_a_kcidb_uri():
    """Why links are `file:` + a relative path: the schema's log_url is a URI, and the validator checks it."""
    document = {"version": dict(kcidb.VERSION),
                "builds": [{"id": "mmlock:x", "origin": "mmlock", "checkout_id": "mmlock:y", "log_url": "build.log"}]}
    with pytest.raises(jsonschema.ValidationError, match="is not a 'uri'"):
        validate(document)
    document["builds"][0]["log_url"] = "file:build.log"
    validate(document)


def test_matrix_kcidb_links_cells_relative_to_the_matrix_dir(tmp_path, monkeypatch, kernel_tree, results):
    tree, _ = kernel_tree
    no_compiler_on_path(tmp_path, monkeypatch)
    out = results / "matrix"
    cell = out / "cells" / "x86_64-6.1"
    monkeypatch.setenv("MMLOCK_RESULTS", str(cell))
    outcome = run.execute(run.RunRequest(kernel_src=str(tree), duration=5, accel="tcg"))
    failing = out / "cells" / "aarch64-6.1" / "20261206-120000-aarch64-run"
    data = failing_run_data(failing)
    data["arch"] = "aarch64"
    (failing / "verdict.json").write_text(json.dumps(data))
    rows = [
        {"arch": "x86_64", "kernel": "6.1", "verdict": "infra-error", "exit_code": 3,
         "durations": {"total_s": 1.0}, "run_dir": str(outcome.run_dir.resolve())},
        {"arch": "aarch64", "kernel": "6.1", "verdict": "fail", "exit_code": 1,
         "durations": {"total_s": 90.0}, "run_dir": str(failing)},
        {"arch": "riscv64", "kernel": "6.1", "verdict": "infra-error", "exit_code": 3,   # the cell's process died
         "durations": {"total_s": 2.0}, "run_dir": str(out / "cells" / "riscv64-6.1")},
    ]
    document = validate(matrix.matrix_kcidb(rows, out))
    assert len(document["tests"]) == 3 and len(document["builds"]) == 3
    statuses = {t["misc"]["verdict"]: t["status"] for t in document["tests"]}
    assert statuses == {"infra-error": "ERROR", "fail": "FAIL"}
    failing_test = next(t for t in document["tests"] if t["status"] == "FAIL")
    assert failing_test["log_url"] == "file:cells/aarch64-6.1/20261206-120000-aarch64-run/console.log"
    for kind in kcidb.KINDS:
        ids = [o["id"] for o in document[kind]]
        assert len(ids) == len(set(ids))
    assert document == matrix.matrix_kcidb(rows, out)           # the same inputs, the same document
