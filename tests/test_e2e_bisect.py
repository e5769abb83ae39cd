"""End to end: `make bisect` on a real kernel history with a planted lock-order bug.

The fixture is a git repository made from the default 6.1 source: one base
commit, then 16 small commits; one of them (PLANT_INDEX) makes swapon take
mmlist_lock inside swap_lock and swapoff's try_to_unuse take swap_lock inside
mmlist_lock. Lockdep only sees the second order when a swapoff finds pages in
use, so only a storm reaches it. Every other commit is a comment or doc edit.

After naming the culprit, bisect checks it the way a maintainer would: the
fail:runs table (culprit vs parent), the revert of the plant on BAD (it must
fix it), no suspicious flag (the plant changes code); every run leaves a
kcidb.json that kcidb-io's validator accepts. A second bisect of the same
inputs must write the same bisect.json but for timings.

The repository lives under the cache (~/.cache/mmlock-harness/bisect-fixture/
src/linux-source-6.1) and is reused when a previous run left it at the expected
commits, so the O= build directory of its tree path stays warm between runs;
a new fixture builds from the default source's ccache objects (the same layout,
harness.kernel.build.layout_root) instead of cold.

Prepare (and pre-build) outside pytest with:
    .venv/bin/python tests/test_e2e_bisect.py --prepare
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RECIPE = "bisect-fixture-v2"   # v2: at src/linux-source-6.1, the layout ccache shares
BRANCH = "fixture"
PLANT_INDEX = 10          # 0-based among the 16 commits: the 11th
DURATION = 25
DATE = 1_700_000_000
LOCK_WAIT_S = 3 * 3600    # another session's whole bisect, cold builds included
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}

# (path, subject, text appended) for the harmless commits; the plant is inserted at PLANT_INDEX.
HARMLESS = [
    ("Documentation/mm/index.rst", "docs: mm: mention the lock-order notes", "\n.. bisect fixture note 1\n"),
    ("mm/mmap.c", "mm/mmap: comment on vma merging", "\n/* bisect fixture: harmless edit 2 */\n"),
    ("README", "README: point at the mm docs", "\nSee Documentation/mm/ for memory management.\n"),
    ("mm/memory.c", "mm/memory: comment on copy_nonpresent_pte", "\n/* bisect fixture: harmless edit 4 */\n"),
    ("mm/rmap.c", "mm/rmap: lock order comment touch-up", "\n/* bisect fixture: harmless edit 5 */\n"),
    ("Documentation/admin-guide/sysctl/vm.rst", "docs: vm sysctl: wording", "\n.. bisect fixture note 6\n"),
    ("mm/page_alloc.c", "mm/page_alloc: comment", "\n/* bisect fixture: harmless edit 7 */\n"),
    ("kernel/fork.c", "fork: comment on mmlist", "\n/* bisect fixture: harmless edit 8 */\n"),
    ("mm/swap_state.c", "mm/swap_state: comment", "\n/* bisect fixture: harmless edit 9 */\n"),
    ("mm/util.c", "mm/util: comment", "\n/* bisect fixture: harmless edit 10 */\n"),
    ("mm/vmscan.c", "mm/vmscan: comment", "\n/* bisect fixture: harmless edit 12 */\n"),
    ("MAINTAINERS", "MAINTAINERS: fixture note", "\n"),
    ("mm/mprotect.c", "mm/mprotect: comment", "\n/* bisect fixture: harmless edit 14 */\n"),
    ("mm/swapfile.c", "mm/swapfile: comment on drain_mmlist", "\n/* bisect fixture: harmless edit 15 */\n"),
    ("Documentation/mm/frontswap.rst", "docs: frontswap: wording", "\n.. bisect fixture note 16\n"),
]
PLANT_SUBJECT = "mm/swapfile: keep mmlist in step with swap_info (planted AB-BA)"
PLANT_EDITS = [
    # swapon: mmlist_lock nests inside swap_lock (drain_mmlist already does this)
    ("\tassert_spin_locked(&swap_lock);\n",
     "\tassert_spin_locked(&swap_lock);\n\tspin_lock(&mmlist_lock);\n\tspin_unlock(&mmlist_lock);\n"),
    # swapoff with pages in use: swap_lock inside mmlist_lock, the reverse order
    ("\tspin_lock(&mmlist_lock);\n\tp = &init_mm.mmlist;\n",
     "\tspin_lock(&mmlist_lock);\n\tspin_lock(&swap_lock);\n\tspin_unlock(&swap_lock);\n"
     "\tp = &init_mm.mmlist;\n"),
]


def _git(tree: Path, *args: str, date: int | None = None) -> str:
    env = dict(os.environ, **GIT_ENV)
    if date is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{date} +0000"
    proc = subprocess.run(["git", "-C", str(tree), *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def fixture_root() -> Path:
    from harness.cache import cache_root

    return cache_root() / "bisect-fixture"


def _fixture_ok(tree: Path, stamp: Path) -> dict | None:
    if not stamp.is_file() or not (tree / ".git").is_dir():
        return None
    try:
        meta = json.loads(stamp.read_text())
        if meta.get("recipe") != RECIPE:
            return None
        if _git(tree, "rev-parse", f"refs/heads/{BRANCH}") != meta["commits"][-1]:
            return None
        if _git(tree, "symbolic-ref", "-q", "HEAD") != f"refs/heads/{BRANCH}":
            return None
        if _git(tree, "status", "--porcelain", "--untracked-files=normal"):
            return None
    except (RuntimeError, ValueError, KeyError, IndexError):
        return None
    return meta


def prepare_fixture() -> dict:
    """The fixture repository at its expected commits: {tree, base, commits, plant, ...}."""
    from harness.kernel import source as kernel_source

    root = fixture_root()
    # R/src/<the default tree's name>: its kernel builds from the default source's
    # ccache objects (harness.kernel.build.layout_root).
    tree = root / "src" / "linux-source-6.1"
    stamp = root / "fixture.json"
    meta = _fixture_ok(tree, stamp)
    if meta:
        return meta
    base_file = root / "base.txt"
    base = base_file.read_text().strip() if base_file.is_file() else ""
    if base and (tree / ".git").is_dir() and subprocess.run(
            ["git", "-C", str(tree), "cat-file", "-e", f"{base}^{{commit}}"]).returncode == 0:
        # the slow part (copy + base commit) is done: redo only the small commits
        if (tree / ".git" / "BISECT_START").exists():
            _git(tree, "bisect", "reset")
        _git(tree, "checkout", "-q", "-f", "-B", BRANCH, base)
        _git(tree, "clean", "-fdq")
    else:
        src = kernel_source.default_source("6.1").path
        shutil.rmtree(root, ignore_errors=True)
        tree.parent.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(src), str(tree)], check=True)
        # Debian's tarball ignores everything at its top level ("/*"): drop that
        # block so the base commit tracks the tree as upstream git would.
        gitignore = tree / ".gitignore"
        text = gitignore.read_text()
        cut = text.find("#\n# Debian packaging")
        if cut >= 0:
            gitignore.write_text(text[:cut])
        _git(tree, "init", "-q", "-b", BRANCH)
        _git(tree, "config", "gc.auto", "0")     # no background repack while a bisect runs
        _git(tree, "add", "-A")
        _git(tree, "commit", "-q", "-m", "linux 6.1 (Debian linux-source) as the base", date=DATE)
        base = _git(tree, "rev-parse", "HEAD")
        base_file.write_text(base + "\n")
    date = DATE
    edits: list[tuple[str, str, object]] = [(p, s, t) for p, s, t in HARMLESS]
    edits.insert(PLANT_INDEX, ("mm/swapfile.c", PLANT_SUBJECT, PLANT_EDITS))
    commits = []
    for n, (path, subject, change) in enumerate(edits, 1):
        file = tree / path
        text = file.read_text()
        if isinstance(change, list):
            for old, new in change:
                assert text.count(old) == 1, f"plant anchor not unique in {path}: {old!r}"
                text = text.replace(old, new)
        else:
            text += change
        file.write_text(text)
        _git(tree, "add", "--", path)
        _git(tree, "commit", "-q", "-m", subject, date=date + 60 * n)
        commits.append(_git(tree, "rev-parse", "HEAD"))
    meta = {"recipe": RECIPE, "tree": str(tree), "base": base, "commits": commits,
            "plant": commits[PLANT_INDEX], "plant_subject": PLANT_SUBJECT}
    stamp.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


@contextlib.contextmanager
def fixture_lock():
    """One user of the fixture at a time: a second test run waits for the first (a bisect
    takes tens of minutes) instead of resetting a live bisect, and fails if it never ends."""
    root = fixture_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as handle:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another bisect e2e run held {root / 'lock'} for {LOCK_WAIT_S}s")
                print(f"waiting for {root / 'lock'} (another bisect e2e run)", file=sys.stderr, flush=True)
                time.sleep(10)
        yield


@pytest.fixture
def fixture_repo():
    with fixture_lock():
        yield prepare_fixture()


def run_bisect(meta: dict, results: Path) -> tuple[subprocess.CompletedProcess, dict, float]:
    """`make bisect` of the fixture, its results under `results`: (the process, bisect.json, wall s)."""
    shutil.rmtree(results, ignore_errors=True)
    env = dict(os.environ, MMLOCK_RESULTS=str(results))
    started = time.monotonic()
    proc = subprocess.run(
        ["make", "-s", "bisect", f"KERNEL_SRC={meta['tree']}", f"GOOD={meta['base']}", f"BAD={BRANCH}",
         f"DURATION={DURATION}", "ARCH=x86_64"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=4 * 3600)
    wall = time.monotonic() - started
    report = results / "bisect" / "bisect.json"
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc, json.loads(report.read_text()), wall


def without_timings(data):
    """bisect.json less what may differ between two bisects of the same inputs: times and run
    ids (the run directories' names are time stamps)."""
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if k not in ("wall_s", "build_s", "run_s", "run_ids")}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data


def test_bisect_names_the_planted_commit(fixture_repo):
    import kcidb_io

    from harness.report.model import printable

    meta = fixture_repo
    tree = Path(meta["tree"])
    n_commits = len(meta["commits"])
    # Not under pytest's tmp_path: concurrent pytest sessions rotate those away during a long run.
    results = fixture_root() / "results"
    before = _git(tree, "status", "--porcelain", "--untracked-files=all", "--ignored")
    refs_before = _git(tree, "for-each-ref", "--format=%(refname) %(objectname)")
    (fixture_root() / "bisect-first.json").unlink(missing_ok=True)
    proc, data, wall = run_bisect(meta, results)
    summary = {
        "wall_s": round(wall, 1), "exit": proc.returncode, "steps": len(data["steps"]),
        "culprit": data["culprit"], "title": data["title"], "confidence": data["confidence"],
        "per_step": [(s["rev"][:12], s["verdict"], s["runs"], s["build_s"], s["run_s"]) for s in data["steps"]],
        "revert": data.get("revert"), "fail_runs": data.get("fail_runs"),
        "last_lines": proc.stdout.splitlines()[-14:],
    }
    (REPO / "results").mkdir(exist_ok=True)
    (REPO / "results" / "bisect-e2e-measure.json").write_text(json.dumps(summary, indent=2) + "\n")
    shutil.copy(results / "bisect" / "bisect.json", fixture_root() / "bisect-first.json")
    print(json.dumps(summary, indent=2))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert data["culprit"] == meta["plant"], (data["culprit"], meta["plant"])
    assert data["culprit_subject"] == PLANT_SUBJECT
    assert "deadlock" in data["title"], data["title"]
    assert len(data["steps"]) <= math.ceil(math.log2(n_commits)) + 1, data["steps"]
    # The user's tree: back on its branch, nothing left behind.
    assert _git(tree, "symbolic-ref", "-q", "HEAD") == f"refs/heads/{BRANCH}"
    assert _git(tree, "rev-parse", "HEAD") == meta["commits"][-1]
    assert _git(tree, "status", "--porcelain", "--untracked-files=all", "--ignored") == before
    assert _git(tree, "for-each-ref", "--format=%(refname) %(objectname)") == refs_before
    assert not (tree / ".git" / "BISECT_START").exists()
    # one progress line per step on stderr
    step_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("bisect: step ")]
    assert len(step_lines) == len(data["steps"]), proc.stderr[-3000:]
    # The maintainer's questions: the plant changes code; reverting it on BAD fixes it; the
    # target shows at the plant and never at its parent, each run as often as a step.
    n = data["runs_per_step"]
    assert data["suspicious"] is False, data["suspicious_reason"]
    revert = data["revert"]
    assert (revert["verdict"], revert["applied"], revert["hits"]) == ("fixed", True, 0), revert
    assert revert["runs"] == n and _git(tree, "rev-parse", f"{revert['commit']}^") == meta["commits"][-1]
    assert _git(tree, "branch", "--contains", revert["commit"]) == ""
    table = data["fail_runs"]
    assert table["culprit"]["rev"] == meta["plant"]
    assert table["parent"]["rev"] == meta["commits"][PLANT_INDEX - 1]
    assert table["culprit"]["runs"] >= n and table["parent"]["runs"] >= n, table
    target = table["titles"][0]
    assert target["target"] and target["title"] == data["title"]
    assert target["parent_fails"] == 0 and target["culprit_fails"] >= 1, table
    last = proc.stdout.splitlines()
    assert last[-1].startswith("confidence: ") and last[-2].startswith("revert: fixed"), last[-14:]
    assert "fail:runs (parent | culprit):" in last and f"culprit: {meta['plant']} {PLANT_SUBJECT}" in last
    # every run of the bisect left a kcidb.json that KernelCI's validator takes
    run_ids = [r for s in data["steps"] for r in s["run_ids"]] + revert["run_ids"] + \
        table["parent"]["run_ids"] + table["culprit"]["run_ids"]
    assert run_ids
    for run_id in dict.fromkeys(run_ids):
        document = json.loads((results / run_id / "kcidb.json").read_text())
        kcidb_io.schema.LATEST.validate(document)
        run = json.loads((results / run_id / "verdict.json").read_text())
        (test,) = document["tests"]
        assert test["status"] == {"pass": "PASS", "fail": "FAIL"}.get(run["verdict"], test["status"]), run_id
        assert [i["comment"] for i in document["issues"]] == [printable(r["title"]) for r in run["reports"]]


def test_bisect_twice_gives_the_same_bisect_json(fixture_repo):
    """Point 5 of issue 30 on the real fixture: the second bisect (kernels cached by then: boots
    and storms only) names the same culprit and writes the same bisect.json but for timings.
    Compares with the first test's bisect.json when it ran in this session, else bisects twice."""
    meta = fixture_repo
    first_file = fixture_root() / "bisect-first.json"     # written by the test above, used once
    first = json.loads(first_file.read_text()) if first_file.is_file() else None
    first_file.unlink(missing_ok=True)
    if not first or first.get("good") != meta["base"] or first.get("culprit") is None:
        _, first, _ = run_bisect(meta, fixture_root() / "results")
    proc, second, _ = run_bisect(meta, fixture_root() / "results-again")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert second["culprit"] == first["culprit"] == meta["plant"]
    assert without_timings(second) == without_timings(first)


if __name__ == "__main__":
    if "--prepare" in sys.argv:
        root = fixture_root()
        root.mkdir(parents=True, exist_ok=True)
        with open(root / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            print(json.dumps(prepare_fixture(), indent=2))
