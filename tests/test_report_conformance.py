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
import re
from collections import Counter
from pathlib import Path

import pytest

from harness.report import frames, parse_file, parse_text
from harness.report.corpus import case_paths, load_case
from harness.report.titles import title_kind, title_type

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MMLOCK_CORPUS")
              or REPO.parent / "shared" / "corpus" / "syzkaller-linux-reports")
RATCHET = REPO / "tests" / "data" / "conformance_rates.json"
EXCLUDED_TYPES = {"SYZ_FAILURE": "syzkaller executor self-report",
                  "LEAK": "kmemleak scan done by syzkaller's executor"}
HELD_OUT_EVERY = 5
PARTS = ("development", "held_out")
# syzkaller's Report.Frame: what follows the title's last ' in '.
_TITLE_FRAME = re.compile(r".* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)")
# The targets, per part; the ratchet keeps what was reached.
TARGETS = {"title": 0.95, "type": 0.98, "detection": 0.995}


def part_of(case: str) -> str:
    return "held_out" if int(case) % HELD_OUT_EVERY == 0 else "development"


def title_frame(title: str) -> str:
    match = _TITLE_FRAME.match(title)
    return match.group(1) if match else ""


def _new_counts() -> Counter:
    return Counter({"cases": 0, "detect": 0, "type": 0, "title": 0, "crash_cases": 0,
                    "frame": 0, "frame_cases": 0})


def evaluate(corpus: Path) -> tuple[dict[str, Counter], dict[str, dict[str, Counter]],
                                    dict[str, list[str]], dict]:
    """Counts per part, counts per part and kind, mismatches per part, exclusions."""
    counts = {p: _new_counts() for p in PARTS}
    kinds: dict[str, dict[str, Counter]] = {p: {} for p in PARTS}
    mismatches: dict[str, list[str]] = {p: [] for p in PARTS}
    excluded: dict[str, int] = {}
    for path in case_paths(corpus):
        header, log = load_case(path)
        want_title = (header.get("TITLE") or [""])[0]
        want_type = (header.get("TYPE") or [""])[0]
        if want_type in EXCLUDED_TYPES:
            excluded[want_type] = excluded.get(want_type, 0) + 1
            continue
        part = part_of(path.name)
        kind = title_kind(want_title, title_type(want_title)) if want_title else "none"
        per_kind = kinds[part].setdefault(kind, _new_counts())
        reports = parse_text(log)
        got = reports[0] if reports else None
        for c in (counts[part], per_kind):
            c["cases"] += 1
        if bool(got) == bool(want_title):
            for c in (counts[part], per_kind):
                c["detect"] += 1
        else:
            mismatches[part].append(f"{path.name}: detect want={want_title!r} got={got.title if got else None!r}")
        if not want_title:
            continue
        want_frame = (header.get("FRAME") or [title_frame(want_title)])[0]
        for c in (counts[part], per_kind):
            c["crash_cases"] += 1
            c["frame_cases"] += bool(want_frame)
        if got is None:
            continue
        got_type = "" if got.type == "UNKNOWN" else got.type
        if got_type == want_type:
            for c in (counts[part], per_kind):
                c["type"] += 1
        else:
            mismatches[part].append(f"{path.name}: type want={want_type!r} got={got_type!r} ({got.title})")
        if got.title == want_title:
            for c in (counts[part], per_kind):
                c["title"] += 1
        else:
            mismatches[part].append(f"{path.name}: title want={want_title!r} got={got.title!r}")
        if want_frame and got.frame == want_frame:
            for c in (counts[part], per_kind):
                c["frame"] += 1
        elif want_frame and got.title == want_title:
            mismatches[part].append(f"{path.name}: frame want={want_frame!r} got={got.frame!r}")
    return counts, kinds, mismatches, excluded


def rates(counts: Counter) -> dict:
    return {
        "detection": round(counts["detect"] / max(counts["cases"], 1), 4),
        "type": round(counts["type"] / max(counts["crash_cases"], 1), 4),
        "title": round(counts["title"] / max(counts["crash_cases"], 1), 4),
        "frame": round(counts["frame"] / max(counts["frame_cases"], 1), 4),
    }


def _table(kinds: dict[str, Counter]) -> list[str]:
    rows = [f"    {'kind':<16} {'cases':>5} {'title':>7} {'type':>7} {'frame':>7}"]
    for kind, c in sorted(kinds.items(), key=lambda kv: -kv[1]["cases"]):
        got = rates(c)
        if not c["crash_cases"]:
            rows.append(f"    {kind:<16} {c['cases']:>5} {'':>7} {'':>7} {'':>7}  detection {got['detection']:.0%}")
            continue
        rows.append(f"    {kind:<16} {c['cases']:>5} {got['title']:>7.1%} {got['type']:>7.1%} {got['frame']:>7.1%}")
    return rows


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not present at {CORPUS} (set MMLOCK_CORPUS)")
def test_conformance_ratchet(capsys):
    counts, kinds, mismatches, excluded = evaluate(CORPUS)
    got = {p: rates(counts[p]) for p in PARTS}
    verbose = os.environ.get("CONFORMANCE_VERBOSE", "")
    with capsys.disabled():
        print(f"\nconformance, excluded {excluded}; held out: case number % {HELD_OUT_EVERY} == 0")
        for part in PARTS:
            r = got[part]
            print(f"  {part}: {counts[part]['cases']} cases ({counts[part]['crash_cases']} with a crash): "
                  f"detection {r['detection']:.2%}, type {r['type']:.2%}, title {r['title']:.2%}, "
                  f"frame {r['frame']:.2%}")
            print("\n".join(_table(kinds[part])))
        shown = "held_out" if verbose == "held-out" else "development"
        if verbose:
            print("\n".join(mismatches[shown]))
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
