"""Bisect driver and policy on a small fake git repository of text files.

The "test function" is injected: it looks at the checked-out tree (so a
wrong checkout shows) and answers like a run would, without any kernel.
"""
from __future__ import annotations

import io
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from harness import bisect_git
from harness.bisect import (
    BAD,
    GOOD,
    SKIP,
    Bisection,
    Policy,
    StepResult,
    Trial,
    bisect_revisions,
    judge,
    runs_for_rate,
    step_confidence,
)
from harness.bisect_git import Repo
from harness.errors import ConfigError

TARGET = "possible deadlock in try_to_unuse"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}


def git(tree: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(tree), *args], env=dict(os.environ, **GIT_ENV),
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def make_repo(tmp_path: Path, n: int, culprit: int, untestable: tuple[int, ...] = ()) -> tuple[Path, list[str]]:
    """base + n commits on branch main; commits >= culprit (1-based) carry BUG; `untestable` ones BROKEN."""
    tree = tmp_path / "linux"
    tree.mkdir()
    git(tree, "init", "-q", "-b", "main")
    (tree / "mm.c").write_text("base\n")
    git(tree, "add", "mm.c")
    git(tree, "commit", "-q", "-m", "base")
    shas = [git(tree, "rev-parse", "HEAD")]
    for i in range(1, n + 1):
        (tree / "mm.c").write_text(f"base\nedit {i}\n" + ("BUG\n" if i >= culprit else ""))
        (tree / "BROKEN").unlink(missing_ok=True)
        if i in untestable:
            (tree / "BROKEN").write_text("does not build\n")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"commit {i}" + (" (culprit)" if i == culprit else ""))
        shas.append(git(tree, "rev-parse", "HEAD"))
    return tree, shas


def tree_trial(tree: Path, rate: float = 1.0, seq: list[bool] | None = None, other: bool = False):
    """A fake run: reads the checked-out tree. seq: per-run 'does the bug show' for flaky bugs."""
    calls: list[str] = []

    def trial(rev: str) -> Trial:
        calls.append(rev)
        assert git(tree, "rev-parse", "HEAD") == rev
        if (tree / "BROKEN").exists():
            return Trial("build-error", reason="kernel build failed", build_s=3.0)
        if "BUG" in (tree / "mm.c").read_text():
            shows = seq.pop(0) if seq else rate >= 1.0
            if shows:
                return Trial("fail", titles=(TARGET,), build_s=2.0, run_s=10.0)
        if other and "edit" in (tree / "mm.c").read_text():
            return Trial("fail", titles=("WARNING in something_else",), run_s=10.0)
        return Trial("pass", build_s=2.0, run_s=10.0)

    trial.calls = calls
    return trial


def run(tree, good, bad, trial, policy=None, out_dir=None):
    policy = policy or Policy()
    echo = io.StringIO()
    result = Bisection(tree, good, bad, trial, policy, out_dir=out_dir, echo=echo).run()
    return result, echo.getvalue()


@pytest.mark.parametrize("n,culprit", [(16, 11), (16, 1), (16, 16), (7, 4), (1, 1), (33, 20)])
def test_finds_culprit_within_log2_plus_one_steps(tmp_path, n, culprit):
    tree, shas = make_repo(tmp_path, n, culprit)
    result, echo = run(tree, shas[0], "main", tree_trial(tree), Policy(runs=1), out_dir=tmp_path / "out")
    assert result.culprit == shas[culprit]
    assert result.culprit_subject == f"commit {culprit} (culprit)"
    assert result.title == TARGET and result.confidence == 1.0
    assert len(result.steps) <= math.ceil(math.log2(n)) + 1, [s.rev for s in result.steps]
    assert result.steps[0].role == "bad-check" and result.steps[0].rev == shas[-1]
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main" and git(tree, "rev-parse", "HEAD") == shas[-1]
    assert git(tree, "status", "--porcelain", "--ignored") == ""
    data = json.loads((tmp_path / "out" / "bisect.json").read_text())
    assert set(data) >= {"culprit", "culprit_subject", "title", "confidence", "steps"}
    assert data["culprit"] == shas[culprit]
    assert all(set(s) >= {"rev", "verdict", "runs", "titles", "build_s", "run_s"} for s in data["steps"])
    assert echo.count("bisect: step ") == len(result.steps)


def test_driver_takes_a_rev_to_stepresult_callable(tmp_path):
    tree, shas = make_repo(tmp_path, 8, 5)
    repo = Repo(tree)
    seen = []

    def step(rev: str) -> StepResult:
        seen.append(rev)
        return StepResult(rev, BAD if "BUG" in (tree / "mm.c").read_text() else GOOD, runs=1)

    with bisect_git.preserved(repo):
        results, drive = bisect_revisions(repo, shas[0], shas[-1], step)
    assert drive.culprit == shas[5]
    assert [r.rev for r in results] == seen and len(seen) <= 3
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_build_errors_are_skipped(tmp_path):
    tree, shas = make_repo(tmp_path, 16, 11, untestable=(8, 9, 12))
    result, _echo = run(tree, shas[0], "main", tree_trial(tree), Policy(runs=1))
    assert result.culprit == shas[11]
    skipped = [s for s in result.steps if s.verdict == SKIP]
    assert skipped and all("build-error" in s.note for s in skipped)


def test_only_skipped_commits_left_is_no_culprit(tmp_path):
    tree, shas = make_repo(tmp_path, 8, 5, untestable=(4, 5))
    result, _echo = run(tree, shas[0], "main", tree_trial(tree), Policy(runs=1))
    assert result.culprit is None and result.exit_code == 1
    assert set(result.candidates) >= {shas[5]}
    assert "only skipped commits" in result.reason
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_bad_that_does_not_reproduce_is_exit_1(tmp_path):
    tree, shas = make_repo(tmp_path, 8, 5)
    result, _ = run(tree, shas[0], "main", tree_trial(tree, rate=0.0), Policy())
    assert result.culprit is None and result.exit_code == 1 and "did not reproduce" in result.reason
    assert len(result.steps) == 1 and result.steps[0].runs == 3   # adaptive: BAD up to 3 times
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_other_report_is_skip_by_default_and_bad_on_request(tmp_path):
    tree, shas = make_repo(tmp_path, 8, 5)
    policy = Policy(runs=1, title=TARGET)
    result, echo = run(tree, shas[0], "main", tree_trial(tree, other=True), policy)
    # every clean-of-target step shows another report: all skipped, no culprit
    assert result.culprit is None
    assert "a different report (WARNING in something_else)" in echo
    assert all(s.verdict in (BAD, SKIP) for s in result.steps)
    result, _ = run(tree, shas[0], "main", tree_trial(tree, other=True), Policy(runs=1, other_report="bad"))
    assert result.culprit == shas[1]     # what "bad" means when the other report is everywhere


def test_flaky_adaptive_runs(tmp_path):
    tree, shas = make_repo(tmp_path, 16, 11)
    # BAD: shows 1 of 3 -> p = 1/3 -> n = 8 ((2/3)^8 = 0.039 < 0.05)
    seq = [True, False, False] + [False, False, True] * 40
    trial = tree_trial(tree, seq=seq)
    result, _echo = run(tree, shas[0], "main", trial, Policy())
    assert result.rate == pytest.approx(1 / 3, abs=1e-3) and result.runs_per_step == 8
    assert result.culprit == shas[11]
    good_steps = [s for s in result.steps if s.verdict == GOOD]
    assert good_steps and all(s.runs == 8 for s in good_steps)
    bad_steps = [s for s in result.steps if s.role == "step" and s.verdict == BAD]
    assert all(1 <= s.runs <= 8 and s.hits == 1 for s in bad_steps)      # stops at the first sighting
    expected = step_confidence(1 / 3, 8) ** len(good_steps)
    assert result.confidence == pytest.approx(expected)
    assert 0 < result.confidence < 1


def test_runs_for_rate():
    assert runs_for_rate(1.0) == 1
    assert runs_for_rate(2 / 3) == 3         # (1/3)^3 = 0.037
    assert runs_for_rate(0.5) == 5           # 0.5^5 = 0.031
    assert runs_for_rate(1 / 3) == 8
    assert runs_for_rate(0.05, cap=8) == 8   # capped
    assert runs_for_rate(1.0, hits=2) == 2


def test_judge_needs_k_hits_and_all_clean_for_good():
    seq = iter([Trial("fail", titles=(TARGET,)), Trial("pass"), Trial("pass")])
    step = judge("r", lambda rev: next(seq), TARGET, 3, Policy(runs=3, hits=2))
    assert step.verdict == SKIP and step.hits == 1 and step.runs == 3
    seq = iter([Trial("pass"), Trial("fail", titles=("other",), alt_titles=(TARGET,))])
    assert judge("r", lambda rev: next(seq), TARGET, 3, Policy(runs=3)).verdict == BAD
    seq = iter([Trial("infra-error", reason="qemu died"), Trial("pass"), Trial("pass")])
    assert judge("r", lambda rev: next(seq), TARGET, 2, Policy(runs=2)).verdict == GOOD   # one retry
    seq = iter([Trial("boot-failure", reason="no ready marker")])
    step = judge("r", lambda rev: next(seq), TARGET, 3, Policy(runs=3))
    assert step.verdict == SKIP and step.note.startswith("boot-failure")


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("exc", [Boom("runner crashed"), KeyboardInterrupt()])
def test_original_branch_restored_after_exception_and_ctrl_c(tmp_path, exc):
    tree, shas = make_repo(tmp_path, 16, 11)
    git(tree, "checkout", "-q", "-b", "topic", shas[-1])
    calls = []

    def trial(rev: str) -> Trial:
        calls.append(rev)
        if len(calls) == 2:       # in the middle of git bisect
            assert (Path(git(tree, "rev-parse", "--absolute-git-dir")) / "BISECT_START").exists()
            raise exc
        return Trial("fail", titles=(TARGET,))

    with pytest.raises(type(exc)):
        run(tree, shas[0], shas[-1], trial, Policy(runs=1), out_dir=tmp_path / "out")
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/topic"
    assert git(tree, "rev-parse", "HEAD") == shas[-1]
    assert not (Path(git(tree, "rev-parse", "--absolute-git-dir")) / "BISECT_START").exists()
    data = json.loads((tmp_path / "out" / "bisect.json").read_text())
    assert data["status"] == ("interrupted" if isinstance(exc, KeyboardInterrupt) else "error")


def test_detached_head_restored(tmp_path):
    tree, shas = make_repo(tmp_path, 4, 2)
    git(tree, "checkout", "-q", "--detach", shas[3])
    result, _ = run(tree, shas[0], shas[4], tree_trial(tree), Policy(runs=1))
    assert result.culprit == shas[2]
    assert git(tree, "rev-parse", "HEAD") == shas[3]
    assert subprocess.run(["git", "-C", str(tree), "symbolic-ref", "-q", "HEAD"]).returncode != 0


def test_dirty_tree_refused(tmp_path):
    tree, shas = make_repo(tmp_path, 4, 2)
    (tree / "mm.c").write_text("local change\n")
    with pytest.raises(ConfigError, match="uncommitted changes"):
        run(tree, shas[0], "main", tree_trial(tree))
    git(tree, "checkout", "-q", "--", "mm.c")
    (tree / "scratch.txt").write_text("untracked\n")
    with pytest.raises(ConfigError, match="scratch.txt"):
        run(tree, shas[0], "main", tree_trial(tree))
    assert (tree / "scratch.txt").read_text() == "untracked\n"
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_bad_input(tmp_path):
    tree, shas = make_repo(tmp_path, 4, 2)
    with pytest.raises(ConfigError, match="unknown revision"):
        run(tree, "v9.9", "main", tree_trial(tree))
    with pytest.raises(ConfigError, match="not an ancestor"):
        run(tree, shas[3], shas[1], tree_trial(tree))
    with pytest.raises(ConfigError, match="same commit"):
        run(tree, "main", shas[4], tree_trial(tree))
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not a git work tree"):
        run(plain, "a", "b", tree_trial(plain))
    with pytest.raises(ConfigError, match="other-report"):
        run(tree, shas[0], "main", tree_trial(tree), Policy(other_report="good"))


def test_cli_exit_2_for_bad_input(tmp_path, capsys):
    from harness.cli import main

    tree, shas = make_repo(tmp_path, 4, 2)
    assert main(["bisect", "--kernel-src", str(tree), "--good", "nope", "--bad", "main"]) == 2
    assert "unknown revision" in capsys.readouterr().err
    (tree / "mm.c").write_text("dirty\n")
    assert main(["bisect", "--kernel-src", str(tree), "--good", shas[0], "--bad", "main"]) == 2
    assert "uncommitted" in capsys.readouterr().err
    assert main(["bisect", "--good", shas[0], "--bad", "main"]) == 2     # no KERNEL_SRC
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["bisect", "--kernel-src", str(plain), "--good", "a", "--bad", "b"]) == 2


def test_trial_from_outcome_and_ctrl_c_inside_a_run(tmp_path):
    from types import SimpleNamespace

    from harness.bisect_cmd import trial_from_outcome
    from harness.record import RunRecord

    data = {"run_id": "r1", "reports": [
        {"title": "WARNING in foo", "primary": False, "alt_titles": []},
        {"title": TARGET, "primary": True, "alt_titles": ["possible deadlock in enable_swap_info"]}],
        "durations": {"build_s": 12.5, "total_s": 80.0}}
    outcome = SimpleNamespace(record=RunRecord.from_json(data), run_dir=tmp_path,
                              verdict=SimpleNamespace(verdict="fail", reason="x"))
    trial = trial_from_outcome(outcome)
    assert trial.primary == TARGET and "WARNING in foo" in trial.titles
    assert trial.build_s == 12.5 and trial.run_s == 67.5
    assert "possible deadlock in enable_swap_info" in trial.alt_titles
    outcome.record = RunRecord.from_json({**data, "interrupted": True})
    with pytest.raises(KeyboardInterrupt):
        trial_from_outcome(outcome)


def test_cli_bisect_end_to_end_with_a_fake_run(tmp_path, monkeypatch, capsys):
    """`python -m harness bisect` on a fake kernel tree: exit 0, bisect.json, one stderr line per step."""
    import harness.bisect_cmd as bisect_mod
    from harness.cli import main

    tree, shas = make_repo(tmp_path, 8, 6)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (tree / "Kconfig").write_text("# fake\n")
    (tree / "arch").mkdir()
    (tree / "arch" / "README").write_text("fake\n")
    git(tree, "add", "Makefile", "Kconfig", "arch")
    git(tree, "commit", "-q", "-m", "kernel-looking files")
    # BAD is this last commit (the checks want a kernel-looking tree at the start); the bug came earlier
    head = git(tree, "rev-parse", "HEAD")
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(bisect_mod, "harness_trial", lambda template, tree_, log: tree_trial(tree))
    code = main(["bisect", "--kernel-src", str(tree), "--good", shas[0], "--bad", head, "--runs", "1"])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads((tmp_path / "results" / "bisect" / "bisect.json").read_text())
    assert data["culprit"] == shas[6] and data["title"] == TARGET
    assert out.err.count("bisect: step ") == len(data["steps"])
    assert f"culprit: {shas[6]}" in out.out
    assert git(tree, "rev-parse", "HEAD") == head and git(tree, "symbolic-ref", "HEAD") == "refs/heads/main"
    # the last lines: the fail:runs table, the revert (every commit rewrites mm.c: it conflicts), confidence
    last = out.out.splitlines()
    assert last[-1].startswith("confidence: 1.00") and "revert check said nothing (does-not-apply)" in last[-1]
    assert last[-2].startswith("revert: does-not-apply (the revert of ") and "fail:runs (parent | culprit):" in last
    assert data["revert"]["verdict"] == "does-not-apply" and data["fail_runs"]["culprit"]["rev"] == shas[6]
    code = main(["bisect", "--kernel-src", str(tree), "--good", shas[0], "--bad", head, "--runs", "1",
                 "--no-revert-check"])
    assert code == 0 and capsys.readouterr().out.splitlines()[-2] == "revert: skipped (--no-revert-check)"
    data = json.loads((tmp_path / "results" / "bisect" / "bisect.json").read_text())
    assert data["revert"]["verdict"] == "skipped" and not data["revert"]["applied"]


def test_second_bisect_on_the_same_tree_is_refused(tmp_path):
    tree, shas = make_repo(tmp_path, 8, 5)
    inner = {}

    def trial(rev: str) -> Trial:
        if not inner:
            with pytest.raises(ConfigError, match="another bisect is running") as err:
                run(tree, shas[0], "main", tree_trial(tree), Policy(runs=1))
            inner["error"] = str(err.value)
        return tree_trial(tree)(rev)

    result, _ = run(tree, shas[0], "main", trial, Policy(runs=1))
    assert inner["error"] and result.culprit == shas[5]
    assert git(tree, "status", "--porcelain", "--untracked-files=all") == ""
