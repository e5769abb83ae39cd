"""Agreement with syzkaller's own expectations on real kernel console logs.

The corpus (../shared/corpus/syzkaller-linux-reports, outside the repo;
MMLOCK_CORPUS names another place, for a clone that is not beside it)
holds cases from syzkaller's pkg/report testdata: a header with the
expected TITLE/TYPE (and sometimes FRAME) of the first report, then the
raw log. We measure how often our parser agrees on (a) whether there is a
crash at all, (b) the type, (c) the title of the first report and (d) the
frame the title names, per report kind, and fail if any rate drops below
the ratchet in tests/data/conformance_rates.json. UPDATE_RATCHET=1 raises
the ratchet to the current rates (never lowers it).

The corpus is split by a fixed rule into a development part, which rules
may be checked against while they are written, and a held-out part
(every case whose number is a multiple of HELD_OUT_EVERY), which is only
scored, so that the gap between the two shows whether the rules were
fitted to the cases they were checked on. CONFORMANCE_VERBOSE=1 lists the
development part's mismatches; the held-out part's are listed only with
CONFORMANCE_VERBOSE=held-out, for the end of a change.

Excluded cases (counted and printed, not scored):
- TYPE: SYZ_FAILURE (SYZFAIL:/SYZFATAL:): messages of syzkaller's executor
  about itself, never printed by a kernel we test.
- TYPE: LEAK ('memory leak in'): kmemleak results that syzkaller's executor
  scans for and prints; our guests do not run that scan.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.report import frames, parse_file, parse_text
from harness.report.agreement import Tally, excluded_as, rates, summary, table, title_frame
from harness.report.corpus import case_paths, load_case

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MMLOCK_CORPUS")
              or REPO.parent / "shared" / "corpus" / "syzkaller-linux-reports")
RATCHET = REPO / "tests" / "data" / "conformance_rates.json"
HELD_OUT_EVERY = 5
PARTS = ("development", "held_out")
# The targets, per part; the ratchet keeps what was reached.
TARGETS = {"title": 0.95, "type": 0.98, "detection": 0.995}


def part_of(case: str) -> str:
    return "held_out" if int(case) % HELD_OUT_EVERY == 0 else "development"


def evaluate(corpus: Path) -> tuple[dict[str, Tally], dict[str, int]]:
    """A tally per part, and the excluded cases per excluded type."""
    tallies = {p: Tally() for p in PARTS}
    excluded: dict[str, int] = {}
    for path in case_paths(corpus):
        header, log = load_case(path)
        why = excluded_as(header)
        if why:
            excluded[why] = excluded.get(why, 0) + 1
            continue
        tallies[part_of(path.name)].add(path.name, header, log)
    return tallies, excluded


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not present at {CORPUS} (set MMLOCK_CORPUS)")
def test_conformance_ratchet(record_property):
    tallies, excluded = evaluate(CORPUS)
    got = {p: rates(tallies[p].counts) for p in PARTS}
    verbose = os.environ.get("CONFORMANCE_VERBOSE", "")
    lines = [f"conformance, excluded {excluded}; held out: case number % {HELD_OUT_EVERY} == 0"]
    for part in PARTS:
        lines += [f"  {part}: {summary(tallies[part].counts)}", *table(tallies[part].kinds)]
    if verbose:
        lines += tallies["held_out" if verbose == "held-out" else "development"].mismatches
    # shown after the run by conftest.py, also from make unit's xdist workers
    record_property("summary", "\n".join(lines))
    recorded = json.loads(RATCHET.read_text()) if RATCHET.exists() else {}
    if os.environ.get("UPDATE_RATCHET"):
        recorded = {p: {k: max(got[p][k], recorded.get(p, {}).get(k, 0.0)) for k in got[p]} for p in PARTS}
        RATCHET.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    for part in PARTS:
        for key, floor in recorded.get(part, {}).items():
            assert got[part][key] >= floor, \
                f"{part}: {key} agreement {got[part][key]:.2%} fell below the ratchet {floor:.2%}"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not present at {CORPUS} (set MMLOCK_CORPUS)")
def test_fast_paths_agree_with_line_by_line_parsing(tmp_path, monkeypatch):
    """parse_file's pre-filter and bulk path, and the frame walk that stops
    at a stack's key frame, give the same reports as feeding every line and
    parsing every stack, on every corpus log."""
    logs = [load_case(p)[1] for p in case_paths(CORPUS)]
    fast = []
    for i, log in enumerate(logs):
        path = tmp_path / f"{i}.log"
        path.write_text(log, encoding="utf-8", errors="surrogateescape")
        fast.append(parse_file(path))
    monkeypatch.setattr(frames, "PARSE_WHOLE_STACKS", True)
    slow = [parse_text(log) for log in logs]
    assert [r.to_json() for rs in fast for r in rs] == [r.to_json() for rs in slow for r in rs]
    assert sum(map(len, fast)) > len(logs) // 2


def test_parts_are_a_fixed_split():
    """The split is by case number, so it cannot drift as rules change."""
    assert part_of("5") == part_of("1000") == "held_out"
    assert part_of("1") == part_of("758") == "development"


def test_title_frame_is_syzkallers_last_in():
    assert title_frame("possible deadlock in mm_take_all_locks") == "mm_take_all_locks"
    assert title_frame("KASAN: use-after-free Read in foo") == "foo"
    assert title_frame("WARNING in corrupted in bar") == "bar"
    assert title_frame("BUG: Bad rss-counter state") == ""


def test_score_cases_tool_leaves_out_seen_and_excluded_cases(tmp_path, capsys):
    """tools/score_cases.py scores a folder of cases, leaving out the ones
    whose console text the parser was developed on and executor reports;
    a case without TYPE counts for the title, not for the type."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("score_cases", REPO / "tools" / "score_cases.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    log = "\n".join([
        "[    1.000000] ------------[ cut here ]------------",
        "[    1.000001] WARNING: CPU: 0 PID: 7 at mm/mmap.c:10 do_thing+0x1/0x2",
        "[    1.000002] Modules linked in:",
        "[    1.000003] RIP: 0010:do_thing+0x1/0x2",
        "[    1.000004] Call Trace:",
        "[    1.000005]  caller_fn+0x10/0x20",
        "[    1.000006] ---[ end trace 0000000000000000 ]---",
    ]) + "\n"
    seen, cases = tmp_path / "seen", tmp_path / "cases"
    seen.mkdir()
    cases.mkdir()
    (seen / "7").write_text("TITLE: WARNING in do_thing\nTYPE: WARNING\n\n" + log)
    (cases / "1").write_text("TITLE: WARNING in do_thing\n\n" + log.replace("mmap.c:10", "mmap.c:11"))
    (cases / "2").write_text("TITLE: WARNING in do_thing\nTYPE: WARNING\n\n" + log)
    (cases / "3").write_text("TITLE: memory leak in foo\n\nBUG: memory leak\n")
    (cases / "4").write_text("TITLE: WARNING in other_thing\nTYPE: WARNING\n\n" + log.replace("mmap.c:10", "mmap.c:12"))
    assert tool.main([str(cases), "--seen", str(seen), "--mismatches"]) == 0
    out = capsys.readouterr().out
    assert "scored 2 cases (2 with a crash, 1 typed): detection 100.00%, type 100.00%, title 50.00%" in out
    assert "not scored (seen): 1: 2" in out and "not scored (LEAK): 1: 3" in out
    assert "4: title want='WARNING in other_thing' got='WARNING in do_thing'" in out
