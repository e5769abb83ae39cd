"""The regression zoo: its cases are real fixes, undone exactly; bad cases stop before work."""
from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import pytest

from harness import zoo
from harness.errors import ConfigError
from harness.kernel import source as kernel_source
from harness.record import RunRecord
from harness.report.model import Report
from harness.timeline import STORM_BEGIN, first_report_s

CHANGELOG = Path("/usr/share/doc/linux-source-6.1/changelog.Debian.gz")


def test_every_case_loads_and_the_zoo_is_big_enough():
    cases = zoo.load_cases()
    assert len(cases) >= 8
    for case in cases:
        assert case.patch.read_text().count("diff --git") >= 1, case.name
        assert case.breaks and case.fix
    # the frontier: cases that need more than the default storm are kept, and named
    assert {c.needs for c in cases} - {"default"}


@pytest.mark.skipif(not CHANGELOG.is_file(), reason=f"{CHANGELOG} not installed (linux-source-6.1)")
def test_every_fix_is_a_real_one_in_debians_changelog():
    """Each case undoes a fix that shipped: its title stands in the stable changes
    Debian's linux-source-6.1 package lists."""
    log = gzip.decompress(CHANGELOG.read_bytes()).decode(errors="replace")
    titles = {line.strip()[2:].strip() for line in log.splitlines() if line.strip().startswith("- ")}
    for case in zoo.load_cases():
        if case.kernel_version != "6.1":
            continue
        if case.kind == "shipped":   # a bug as it ships: its fix never reached 6.1
            assert case.fix not in titles, f"{case.name}: '{case.fix}' is in {CHANGELOG}: not shipped"
        else:
            assert case.fix in titles, f"{case.name}: '{case.fix}' is not in {CHANGELOG}"


@pytest.mark.skipif(not kernel_source.tarball_for("6.1").is_file(),
                    reason="linux-source-6.1 not installed (`make deps` installs it)")
def test_every_patch_applies_exactly_to_debians_source():
    source = kernel_source.default_source("6.1")
    for case in zoo.load_cases():
        zoo.check_patch(case, source.path)   # raises ConfigError, naming the patch, if not


def _write_case(tmp: Path, name: str = "toy", **fields: str) -> None:
    text = {"fix": '"mm: fix a toy"', "upstream": '"0123456789ab"', "kernel_version": '"6.1"',
            "needs": "default", "breaks": "the toy", "expect": "'toy in f'", **fields}
    (tmp / f"{name}.yaml").write_text("".join(f"{k}: {v}\n" for k, v in text.items() if v is not None))
    (tmp / f"{name}.patch").write_text(
        "Undo the toy fix.\n\ndiff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,2 @@\n"
        " int a;\n-int fixed;\n+int broken;\n")


def test_a_case_with_a_missing_field_names_the_file_and_the_key(tmp_path):
    _write_case(tmp_path, expect=None)
    with pytest.raises(ConfigError, match=r"toy\.yaml:\d+: missing key 'expect'"):
        zoo.load_cases(zoo_dir=tmp_path)


@pytest.mark.parametrize("field, value, message", [
    ("upstream", '"fixme"', "a commit id"),
    ("needs", "magic", "needs must be one of"),
    ("expect", "'('", "not a regular expression"),
    ("expect_frame", "'['", "not a regular expression"),
    ("kind", "forgotten", "kind must be one of"),
    ("kernel_version", '"5.10"', "one of 6.1, 6.12"),
])
def test_a_case_with_a_bad_value_is_refused(tmp_path, field, value, message):
    _write_case(tmp_path, **{field: value})
    with pytest.raises(ConfigError, match=re.escape(message)):
        zoo.load_cases(zoo_dir=tmp_path)


def test_an_unknown_case_lists_the_valid_ones(tmp_path):
    _write_case(tmp_path)
    with pytest.raises(ConfigError, match="unknown zoo case 'nope'; valid cases: toy"):
        zoo.load_cases(("nope",), zoo_dir=tmp_path)


def _toy_source(tmp: Path) -> kernel_source.KernelSource:
    tree = tmp / "src" / "linux-source-6.1"
    tree.mkdir(parents=True)
    (tree / "f.c").write_text("int a;\nint fixed;\n")
    (tree / ".gitignore").write_text("/*\n")   # as Debian's tarball has it
    return kernel_source.KernelSource(tree, "debian:toy", "identity-1", "6.1.0")


def test_a_patch_that_does_not_apply_is_a_config_error_naming_it(tmp_path):
    _write_case(tmp_path)
    (tmp_path / "toy.patch").write_text((tmp_path / "toy.patch").read_text().replace("int fixed", "int other"))
    source = _toy_source(tmp_path)
    with pytest.raises(ConfigError, match=r"toy\.patch: does not apply to linux-source-6.1"):
        zoo.check_patch(zoo.load_case("toy", tmp_path), source.path)


def test_the_work_tree_applies_a_case_and_returns_to_its_base(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    _write_case(tmp_path)
    source = _toy_source(tmp_path)
    case = zoo.load_case("toy", tmp_path)
    zoo.check_patch(case, source.path)
    tree = zoo.zoo_tree(source)
    assert tree != source.path and (tree / ".git").is_dir()
    # everything tracked despite the tarball's '/*' .gitignore
    tracked = subprocess.run(["git", "-C", str(tree), "ls-files"], capture_output=True, text=True).stdout.split()
    assert "f.c" in tracked
    zoo.apply_case(tree, case)
    assert (tree / "f.c").read_text() == "int a;\nint broken;\n"
    (tree / "f.c.orig").write_text("left over")
    zoo.apply_case(tree, None)
    assert (tree / "f.c").read_text() == "int a;\nint fixed;\n"
    assert not (tree / "f.c.orig").exists()
    # made once: a second call keeps the tree (its O= builds stay incremental)
    (tree / "marker").write_text("")
    assert zoo.zoo_tree(source) == tree and (tree / "marker").exists()


def _data(verdict: str, titles: list[str], first: float | None = None) -> RunRecord:
    return RunRecord.from_json({"run_id": "r", "verdict": verdict, "storm": {"first_report_s": first},
            "reports": [{"title": t, "primary": True} for t in titles], "durations": {"storm_s": 60.0}})


@pytest.mark.parametrize("verdict, titles, result, title", [
    ("fail", ["WARNING: suspicious RCU usage in scan_get_next_rmap_item"], "caught",
     "WARNING: suspicious RCU usage in scan_get_next_rmap_item"),
    ("fail", ["BUG: soft lockup in kswapd"], "other-report", "BUG: soft lockup in kswapd"),
    ("pass", [], "missed", ""),
    ("build-error", [], "build-error", ""),
    ("boot-failure", [], "infra-error", ""),
])
def test_each_run_is_classified(verdict, titles, result, title):
    case = zoo.load_case("ksm-scan-exit-race")
    row = zoo.side(_data(verdict, titles, 3.5), case)
    assert (row["result"], row["title"]) == (result, title)


def test_a_case_with_expect_frame_is_caught_only_by_a_report_with_that_frame_in_its_stack():
    """A stall whose dump has no interrupt frame is titled "in corrupted" (as syzkaller
    titles it): the stack, not the title, says whether it is this bug."""
    case = zoo.load_case("memcg-oom-scan-no-resched")
    assert case.expect_frame is not None
    title = "INFO: rcu detected stall in corrupted"

    def record(frames: list[str]) -> RunRecord:
        return RunRecord.from_json({"run_id": "r", "verdict": "fail", "storm": {"first_report_s": 44.4},
                                    "reports": [{"title": title, "primary": True, "frames": frames}],
                                    "durations": {"storm_s": 60.0}})
    ours = ["queue_oom_reaper", "__oom_kill_process", "oom_kill_memcg_member", "mem_cgroup_scan_tasks"]
    assert zoo.side(record(ours), case)["result"] == "caught"
    assert zoo.side(record(["swap_writepage", "shrink_folio_list"]), case)["result"] == "other-report"
    assert zoo.side(record([]), case)["result"] == "other-report"


def test_the_table_says_when_the_yardstick_did_not_swap():
    rows = [{"case": "c", "needs": "default",
             "ours": {"result": "caught", "first_report_s": 2.25, "title": "t"},
             "stress_ng": {"result": "missed", "first_report_s": None, "swapped": False}}]
    text = zoo.table(rows)
    assert "caught 2.2s" in text and "missed (did not swap)" in text


def test_a_capability_case_shows_the_default_storm_beside_it():
    """A case whose needs are beyond the default storm has both runs in its row:
    what the capability adds is their difference."""
    rows = [{"case": "k", "needs": "kasan", "ours": {"result": "caught", "first_report_s": 9.0, "title": "t"},
             "default": {"result": "missed", "first_report_s": None},
             "stress_ng": {"result": "missed", "first_report_s": None, "swapped": True}},
            {"case": "d", "needs": "default", "ours": {"result": "missed", "first_report_s": None, "title": ""}}]
    lines = zoo.table(rows).splitlines()
    assert "default storm" in lines[0]
    assert re.search(r"^k\s+kasan\s+caught 9.0s\s+missed\s+missed\s+-\s+t$", lines[1])
    assert re.search(r"^d\s+default\s+missed\s+-\s+-", lines[2])


def _report(line: int, primary: bool = True) -> Report:
    return Report(title="t", type="WARNING", kind="warning", start_line=line, end_line=line + 1, primary=primary)


def test_time_to_first_report_is_read_from_the_kernels_clock():
    log = "\n".join([
        "[    3.000000] booted",
        f"[   10.500000] {STORM_BEGIN}",
        "MMLOCK-HARNESS: storm-begin duration=60 seed=1",
        "",                                            # 4: a report whose first line has no stamp
        "[   14.250000] ======================================================",
        "[   20.000000] WARNING: CPU: 1 PID: 7 at mm/ksm.c:1 f+0x1/0x2",
    ])
    assert first_report_s(log, [_report(6), _report(4)]) == 3.75
    assert first_report_s(log, [_report(4, primary=False)]) is None
    assert first_report_s(log.replace(STORM_BEGIN, "x"), [_report(6)]) is None


def test_a_run_of_some_cases_keeps_the_other_rows(tmp_path):
    from harness.run import RunRequest

    path = tmp_path / "summary.json"
    names = zoo.case_names()
    old_rows = [{"case": names[0], "ours": {"result": "missed"}}, {"case": names[1], "ours": {"result": "caught"}},
                {"case": "a-case-since-removed", "ours": {"result": "missed"}}]
    path.write_text(__import__("json").dumps({"arch": "x86_64", "kernel_version": "6.1", "rows": old_rows}))
    base = RunRequest(arch="x86_64", kernel_version="6.1")
    kept = zoo.previous_rows(path, base, {names[1]})
    assert [r["case"] for r in kept] == [names[0]]
    new = [{"case": names[1], "ours": {"result": "missed"}}]
    assert [r["case"] for r in zoo.merged(kept, new)] == names[:2]
    # another arch's summary is not mixed in
    assert zoo.previous_rows(path, RunRequest(arch="aarch64"), set()) == []


def test_a_run_without_the_yardstick_keeps_stress_ngs_earlier_result(tmp_path):
    from harness.run import RunRequest

    path = tmp_path / "summary.json"
    name = zoo.case_names()[0]
    row = {"case": name, "date": "2026-12-06 21:00:00", "ours": {"result": "missed"},
           "stress_ng": {"result": "missed", "swapped": True}}
    path.write_text(__import__("json").dumps({"arch": "x86_64", "kernel_version": "6.1",
                                              "rows": [row, {"case": "other", "ours": {}}]}))
    kept = zoo.earlier_yardsticks(path, RunRequest(arch="x86_64", kernel_version="6.1"))
    assert kept == {name: {"result": "missed", "swapped": True, "earlier_run": "2026-12-06 21:00:00"}}
    assert zoo.earlier_yardsticks(path, RunRequest(arch="aarch64", kernel_version="6.1")) == {}


@pytest.mark.skipif(not kernel_source.tarball_for("6.1").is_file(),
                    reason="linux-source-6.1 not installed (`make deps` installs it)")
def test_each_fix_for_a_bug_the_harness_found_applies_exactly_to_debians_source():
    """docs/found/: fixes for bugs the harness found in Debian's source as shipped."""
    source = kernel_source.default_source("6.1")
    found = sorted((Path(__file__).parent.parent / "docs" / "found").glob("6.1-*.patch"))
    assert found, "docs/found/ has no 6.1 fix"
    for patch in found:
        proc = subprocess.run(["git", "apply", "--check", "-p1", str(patch)], cwd=source.path,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{patch.name}: {proc.stderr}"


def test_a_shipped_case_runs_the_source_as_it_is_and_applies_its_fix_only_for_the_fixed_run(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "REPO_ROOT", tmp_path)
    (tmp_path / "found").mkdir()
    (tmp_path / "found" / "fix.patch").write_text(
        "Fix the toy.\n\ndiff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,2 @@\n"
        " int a;\n-int fixed;\n+int fixed_again;\n")
    _write_case(tmp_path, kind="shipped", fix_patch="found/fix.patch")
    (tmp_path / "toy.patch").unlink()   # a shipped case has nothing to undo
    case = zoo.load_case("toy", tmp_path)
    assert case.kind == "shipped" and case.patch == tmp_path / "found" / "fix.patch"
    source = _toy_source(tmp_path)
    zoo.check_patch(case, source.path)
    tree = zoo.zoo_tree(source)
    zoo.apply_case(tree, case)
    assert (tree / "f.c").read_text() == "int a;\nint fixed;\n"        # as it ships
    zoo.apply_case(tree, case, fixed=True)
    assert (tree / "f.c").read_text() == "int a;\nint fixed_again;\n"  # with the fix


@pytest.mark.parametrize("fix_patch", ["nowhere.patch", "../outside.patch", "found/fix.txt"])
def test_a_shipped_case_whose_fix_is_not_a_patch_in_the_repository_is_refused(tmp_path, monkeypatch, fix_patch):
    monkeypatch.setattr(zoo, "REPO_ROOT", tmp_path / "repo")
    (tmp_path / "repo" / "found").mkdir(parents=True)
    (tmp_path / "repo" / "found" / "fix.txt").write_text("diff --git")
    (tmp_path / "outside.patch").write_text("diff --git")
    _write_case(tmp_path, kind="shipped", fix_patch=fix_patch)
    with pytest.raises(ConfigError, match="'fix_patch': a .patch file in the repository"):
        zoo.load_case("toy", tmp_path)


def test_the_table_shows_a_shipped_case_with_its_fix_applied():
    row = {"case": "toy", "needs": "swap-fill", "ours": {"result": "caught", "first_report_s": 17.7, "title": "t"},
           "default": {"result": "missed"}, "fixed": {"result": "missed"}}
    line = zoo.table([row]).splitlines()
    assert "ours, fix applied" in line[0]
    assert re.search(r"caught 17\.7s +missed +- +missed +t$", line[1])
