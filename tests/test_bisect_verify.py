"""After a culprit: revert check, culprit-vs-parent fail:runs, implausible culprits,
a bisection that gives the same bisect.json twice.

Real git repositories in tmp_path; the "run" is a function that reads the
checked-out tree (so a wrong checkout shows) and answers like a run would.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.bisect import Bisection, Policy, Trial
from harness.bisect_git import Repo, revert_commit
from harness.bisect_verify import (
    RevertCheck,
    comment_only,
    confidence_after_revert,
    fail_runs,
    fail_runs_lines,
    is_documentation,
    other_arch,
)

TARGET = "possible deadlock in try_to_unuse"
FLAKY = "WARNING in flaky_thing"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}


def git(tree: Path, *args: str, date: int = 1_700_000_000) -> str:
    env = dict(os.environ, **GIT_ENV, GIT_AUTHOR_DATE=f"{date} +0000", GIT_COMMITTER_DATE=f"{date} +0000")
    proc = subprocess.run(["git", "-C", str(tree), *args], env=env, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


class History:
    """A repository built commit by commit: each commit writes (or deletes, None) some files."""

    def __init__(self, tmp_path: Path) -> None:
        self.tree = tmp_path / "linux"
        self.tree.mkdir()
        git(self.tree, "init", "-q", "-b", "main")
        self.shas: list[str] = []
        self.commit({"mm/swapfile.c": "int swap;\n", "mm/mmap.c": "int mmap;\n",
                     "Documentation/mm/index.rst": "mm\n"}, "base")

    def commit(self, files: dict[str, str | None], subject: str) -> str:
        for path, text in files.items():
            file = self.tree / path
            if text is None:
                file.unlink()
                continue
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
        git(self.tree, "add", "-A")
        git(self.tree, "commit", "-q", "--allow-empty", "-m", subject, date=1_700_000_000 + 60 * len(self.shas))
        self.shas.append(git(self.tree, "rev-parse", "HEAD"))
        return self.shas[-1]

    def harmless(self, n: int, start: int = 1) -> None:
        for i in range(start, start + n):
            self.commit({f"mm/file{i}.c": f"int f{i};\n"}, f"mm: file {i}")


def tree_trial(tree: Path, flaky_every: int = 0):
    """The target whenever a checked-out file has a line 'BUG' (or 'BUG2'); every `flaky_every`-th
    run with the target also reports FLAKY (a second report beside the target: a clean run with
    another report would be a skipped step)."""
    calls: list[str] = []
    buggy: list[str] = []

    def trial(rev: str) -> Trial:
        calls.append(rev)
        assert git(tree, "rev-parse", "HEAD") == rev
        lines = {line for f in tree.rglob("*") if f.is_file() and ".git" not in f.parts
                 for line in f.read_text().splitlines()}
        if not lines & {"BUG", "BUG2"}:
            return Trial("pass", build_s=1.0, run_s=5.0)
        buggy.append(rev)
        titles = (TARGET, FLAKY) if flaky_every and len(buggy) % flaky_every == 0 else (TARGET,)
        return Trial("fail", titles=titles, build_s=1.0, run_s=5.0)

    trial.calls = calls
    return trial


def bisect(history: History, trial, policy: Policy | None = None, out_dir: Path | None = None,
           kernel_arch: str = "x86"):
    echo = io.StringIO()
    result = Bisection(history.tree, history.shas[0], "main", trial, policy or Policy(), out_dir=out_dir,
                       echo=echo, kernel_arch=kernel_arch).run()
    return result, echo.getvalue()


def assert_tree_untouched(history: History) -> None:
    tree = history.tree
    assert git(tree, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(tree, "rev-parse", "HEAD") == history.shas[-1]
    assert git(tree, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""
    assert git(tree, "for-each-ref", "--format=%(refname)") == "refs/heads/main"


def plain_culprit(tmp_path: Path) -> tuple[History, str]:
    history = History(tmp_path)
    history.harmless(5)
    culprit = history.commit({"mm/swapfile.c": "int swap;\nBUG\n"}, "mm/swapfile: take mmlist_lock inside swap_lock")
    history.harmless(6, start=6)
    return history, culprit


def test_revert_fixes_it_and_the_users_tree_is_untouched(tmp_path):
    history, culprit = plain_culprit(tmp_path)
    trial = tree_trial(history.tree)
    result, echo = bisect(history, trial, Policy(runs=2), out_dir=tmp_path / "out")
    assert result.culprit == culprit
    revert = result.revert
    assert (revert.verdict, revert.applied, revert.runs, revert.hits) == ("fixed", True, 2, 0)
    assert trial.calls.count(revert.commit) == 2            # as many runs as a step
    # the revert is BAD with the culprit's change undone, on no branch
    assert git(history.tree, "rev-parse", f"{revert.commit}^") == history.shas[-1]
    assert git(history.tree, "show", f"{revert.commit}:mm/swapfile.c") == "int swap;"
    assert git(history.tree, "branch", "--contains", revert.commit) == ""
    assert_tree_untouched(history)
    assert result.confidence == 1.0 and result.confidence_note == ""
    data = json.loads((tmp_path / "out" / "bisect.json").read_text())
    assert data["revert"] == {"verdict": "fixed", "applied": True, "runs": 2, "hits": 0, "commit": revert.commit,
                              "reason": "the target did not show in 2 run(s) with the culprit reverted",
                              "titles": [], "run_ids": []}
    assert f"bisect: revert {culprit[:12]} on BAD: fixed" in echo
    assert result.last_lines()[-2].startswith("revert: fixed")
    assert not data["suspicious"] and data["suspicious_reason"] == ""


def test_a_revert_that_does_not_fix_it_lowers_the_confidence_on_the_last_line(tmp_path):
    history, culprit = plain_culprit(tmp_path)
    history.commit({"mm/mmap.c": "int mmap;\nBUG2\n"}, "mm/mmap: the same bug again, independently")
    result, _ = bisect(history, tree_trial(history.tree), Policy(runs=2), out_dir=tmp_path / "out")
    assert result.culprit == culprit
    assert (result.revert.verdict, result.revert.applied, result.revert.hits, result.revert.runs) == \
        ("still-fails", True, 2, 2)
    assert result.confidence == 0.0          # the revert left all of BAD's rate standing
    last = result.last_lines()[-1]
    assert last.startswith("confidence: 0.00") and "lowered from 1.00" in last and "did not fix it" in last
    data = json.loads((tmp_path / "out" / "bisect.json").read_text())
    assert data["revert"]["verdict"] == "still-fails" and data["confidence"] == 0.0
    assert "did not fix it" in data["confidence_note"]
    assert_tree_untouched(history)


def test_confidence_after_revert_is_scaled_by_the_rate_the_revert_left():
    still = RevertCheck(verdict="still-fails", applied=True, runs=8, hits=1)
    assert confidence_after_revert(0.9, 0.5, still) == pytest.approx(0.9 * (1 - (1 / 8) / 0.5))
    assert confidence_after_revert(0.9, 0.5, RevertCheck(verdict="still-fails", runs=4, hits=4)) == 0.0
    for verdict in ("fixed", "does-not-apply", "skipped"):
        assert confidence_after_revert(0.9, 0.5, RevertCheck(verdict=verdict, runs=8)) == 0.9


def test_a_revert_that_conflicts_does_not_apply(tmp_path):
    history = History(tmp_path)
    history.harmless(3)
    culprit = history.commit({"mm/swapfile.c": "int swap;\nBUG\n"}, "culprit")
    history.commit({"mm/swapfile.c": "int swap2;\nBUG\nint more;\n"}, "rewrites the culprit's lines")
    result, echo = bisect(history, tree_trial(history.tree), Policy(runs=1))
    assert result.culprit == culprit
    assert (result.revert.verdict, result.revert.applied, result.revert.runs) == ("does-not-apply", False, 0)
    assert f"bisect: revert {culprit[:12]} on BAD: does-not-apply" in echo
    assert "does not apply" in result.revert.reason and "mm/swapfile.c" in result.revert.reason
    assert result.confidence == 1.0 and "said nothing (does-not-apply)" in result.confidence_note
    assert_tree_untouched(history)


def test_a_merge_commit_culprit_does_not_apply_with_the_reason(tmp_path):
    """The bug needs both sides of a merge: git names the merge, the revert check says why it cannot."""
    history = History(tmp_path)
    history.harmless(2)
    fork = history.shas[-1]
    history.commit({"mm/a.c": "half one\n"}, "side one")
    git(history.tree, "checkout", "-q", "-b", "side", fork)
    history.commit({"mm/b.c": "half two\n"}, "side two")
    git(history.tree, "checkout", "-q", "main")
    git(history.tree, "merge", "-q", "--no-ff", "-m", "Merge branch 'side'", "side")
    git(history.tree, "branch", "-q", "-D", "side")
    merge = git(history.tree, "rev-parse", "HEAD")
    history.shas.append(merge)

    def trial(rev: str) -> Trial:
        both = (history.tree / "mm/a.c").exists() and (history.tree / "mm/b.c").exists()
        return Trial("fail", titles=(TARGET,)) if both else Trial("pass")

    result, _ = bisect(history, trial, Policy(runs=1))
    assert result.culprit == merge
    assert result.revert.verdict == "does-not-apply" and not result.revert.applied
    assert "merge commit (2 parents)" in result.revert.reason
    assert result.fail_runs["parent"]["rev"] == git(history.tree, "rev-parse", f"{merge}^1")
    assert_tree_untouched(history)
    plain = Repo(history.tree)
    assert revert_commit(plain, history.shas[0], merge).commit is None       # a root commit: no parent


def test_no_revert_check_is_skipped(tmp_path):
    history, culprit = plain_culprit(tmp_path)
    trial = tree_trial(history.tree)
    result, _ = bisect(history, trial, Policy(runs=1, revert_check=False))
    assert result.culprit == culprit and result.revert.verdict == "skipped" and not result.revert.applied
    assert result.revert.commit is None and result.revert.runs == 0


def test_revert_check_skipped_when_the_reverted_tree_does_not_build(tmp_path):
    history, culprit = plain_culprit(tmp_path)
    inner = tree_trial(history.tree)
    revert_runs: list[str] = []

    def trial(rev: str) -> Trial:
        if git(history.tree, "log", "-1", "--format=%an", rev) == "mmlock-harness":
            revert_runs.append(rev)
            return Trial("build-error", reason="kernel build failed")
        return inner(rev)

    result, _ = bisect(history, trial, Policy(runs=3))
    assert result.culprit == culprit
    assert result.revert.verdict == "skipped" and result.revert.applied and result.revert.runs == 0
    assert result.revert.reason.startswith("build-error") and len(revert_runs) == 1
    assert result.confidence == 1.0


def test_fail_runs_table_culprit_vs_parent_with_a_flaky_title(tmp_path):
    history, culprit = plain_culprit(tmp_path)
    result, echo = bisect(history, tree_trial(history.tree, flaky_every=3), Policy(runs=4),
                          out_dir=tmp_path / "out")
    assert result.culprit == culprit
    table = json.loads((tmp_path / "out" / "bisect.json").read_text())["fail_runs"]
    parent = git(history.tree, "rev-parse", f"{culprit}^")
    assert table["parent"]["rev"] == parent and table["culprit"]["rev"] == culprit
    assert table["parent"]["runs"] == 4 and table["culprit"]["runs"] == 4       # topped up to a step's runs
    target, flaky = table["titles"]
    assert (target["title"], target["target"], target["parent_fails"], target["culprit_fails"],
            target["reproduction_pct"]) == (TARGET, True, 0, 4, 100)
    assert (flaky["title"], flaky["target"], flaky["parent_fails"]) == (FLAKY, False, 0)
    assert 1 <= flaky["culprit_fails"] < 4
    lines = fail_runs_lines(table)
    assert lines[2].split() == ["fail:runs", "%reproduction", "fail:runs"]
    assert lines[4].split() == [":4", "100%", "4:4", *TARGET.split()]
    printed = result.last_lines()
    assert "fail:runs (parent | culprit):" in printed and any(FLAKY in line for line in printed)
    assert sum(1 for line in echo.splitlines() if line.startswith("bisect: step ")) == len(result.steps)


def test_fail_runs_counts_a_title_once_per_run_and_leaves_errors_out():
    trials = [Trial("fail", titles=(TARGET, FLAKY, FLAKY)), Trial("pass"), Trial("build-error", reason="x")]
    table = fail_runs(TARGET, "p" * 40, [Trial("fail", titles=("other",), alt_titles=(TARGET,))], "c" * 40, trials)
    rows = {r["title"]: r for r in table["titles"]}
    assert rows[TARGET]["parent_fails"] == 1 and rows[TARGET]["culprit_fails"] == 1
    assert rows[FLAKY]["culprit_fails"] == 1 and rows["other"]["parent_fails"] == 1
    assert table["culprit"]["runs"] == 2 and table["culprit"]["errors"] == 1
    assert rows[TARGET]["reproduction_pct"] == -50
    assert any("not counted" in line for line in fail_runs_lines(table))


def test_fail_runs_titles_are_made_printable():
    table = fail_runs(TARGET, "p" * 40, [Trial("fail", titles=("WARNING in \x1b[31mevil\x07",))], "c" * 40, [])
    assert [r["title"] for r in table["titles"]] == [TARGET, r"WARNING in \x1b[31mevil\x07"]   # shown escaped
    assert all("\x1b" not in line for line in fail_runs_lines(table))


@pytest.mark.parametrize("files,reason", [
    ({"mm/swapfile.c": "int swap;\n/* BUG\n */\n"}, "only comments (mm/swapfile.c)"),
    ({"Documentation/mm/index.rst": "mm\nBUG\n"}, "only documentation (Documentation/mm/index.rst)"),
    ({"arch/arm64/mm/fault.c": "BUG\n"}, "only another architecture's directory (the build is arch/x86) "
                                         "(arch/arm64/mm/fault.c)"),
    ({"mm/mmap.c": "int mmap; // BUG\n", "README": "BUG\n"}, "only documentation (README) and comments (mm/mmap.c)"),
])
def test_implausible_culprits_are_flagged(tmp_path, files, reason):
    history = History(tmp_path)
    history.harmless(3)
    culprit = history.commit(files, "looks harmless")
    history.harmless(2, start=4)

    def trial(rev: str) -> Trial:       # the "bug" is a word anywhere in the tree, comments included
        text = " ".join(f.read_text() for f in history.tree.rglob("*") if f.is_file() and ".git" not in f.parts)
        return Trial("fail", titles=(TARGET,)) if "BUG" in text.split() else Trial("pass")

    result, echo = bisect(history, trial, Policy(runs=1), out_dir=tmp_path / "out")
    assert result.culprit == culprit
    assert result.suspicious and result.suspicious_reason == f"it touches {reason}"
    data = json.loads((tmp_path / "out" / "bisect.json").read_text())
    assert data["suspicious"] is True and data["suspicious_reason"] == f"it touches {reason}"
    assert f"suspicious: it touches {reason}" in result.last_lines()
    assert "bisect: suspicious culprit:" in echo


def test_a_real_change_is_not_flagged(tmp_path):
    history, culprit = plain_culprit(tmp_path)
    result, _ = bisect(history, tree_trial(history.tree), Policy(runs=1))
    assert result.culprit == culprit and not result.suspicious


def test_comment_only():
    old = 'int a; /* one */\nchar *s = "/* not a comment */";\n'
    assert comment_only("mm/x.c", old, 'int a; /* two,\n longer */\nchar *s = "/* not a comment */";\n// new\n')
    assert not comment_only("mm/x.c", old, old.replace("not a comment", "changed"))
    assert not comment_only("mm/x.c", old, old.replace("int a;", "int b;"))
    assert comment_only("mm/Kconfig", "config A\n\tbool\n", "# why A\nconfig A\n\tbool\n")
    assert not comment_only("mm/Kconfig", "config A\n\tbool\n", "config A\n\ttristate\n")
    assert not comment_only("mm/x.py", "a = 1\n", "# c\na = 1\n")       # comments of unknown kinds: code
    assert not comment_only("mm/x.c", None, "/* new file */\n")
    assert is_documentation("Documentation/x.rst") and is_documentation("MAINTAINERS")
    assert not is_documentation("mm/README.c") and not is_documentation("arch/x86/lib/x86-opcode-map.txt")
    assert other_arch("arch/arm64/mm/fault.c", "x86") and not other_arch("arch/x86/mm/fault.c", "x86")
    assert not other_arch("arch/arm64/mm/fault.c", "") and not other_arch("arch/Kconfig", "x86")


def _without_timings(data: dict) -> dict:
    drop = {"wall_s", "build_s", "run_s", "run_ids"}
    if isinstance(data, dict):
        return {k: _without_timings(v) for k, v in data.items() if k not in drop}
    if isinstance(data, list):
        return [_without_timings(v) for v in data]
    return data


def test_the_same_inputs_give_the_same_bisect_json(tmp_path):
    """Point 5: twice on the same tree and inputs -> the same culprit and bisect.json but for timings
    (with a flaky second title, a revert that applies and a step skipped on a build error)."""
    history, culprit = plain_culprit(tmp_path)
    runs = []
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        inner = tree_trial(history.tree, flaky_every=2)

        def trial(rev: str, inner=inner) -> Trial:
            if rev == history.shas[3]:
                return Trial("build-error", reason="kernel build failed")
            return inner(rev)

        result, echo = bisect(history, trial, Policy(runs=3), out_dir=out)
        runs.append((result, json.loads((out / "bisect.json").read_text()), echo))
    (first, one, _), (second, two, _) = runs
    assert first.culprit == second.culprit == culprit
    assert one["revert"]["verdict"] == "fixed" and one["fail_runs"]["titles"][1]["title"] == FLAKY
    assert [s["verdict"] for s in one["steps"]].count("skip") == 1
    assert _without_timings(one) == _without_timings(two)
    assert first.last_lines()[:-1] == second.last_lines()[:-1]
    assert_tree_untouched(history)
