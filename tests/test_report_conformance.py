"""Agreement with syzkaller's own expectations on real kernel console logs.

The corpus (../shared/corpus/syzkaller-linux-reports, outside the repo;
MMLOCK_CORPUS names another place, for a clone that is not beside it)
holds cases from syzkaller's pkg/report testdata: a header with the
expected TITLE/TYPE of the first report, then the raw log. We measure how
often our parser agrees on (a) whether there is a crash at all, (b) the
type and (c) the title of the first report, and fail if any rate drops
below the ratchet in tests/data/conformance_rates.json. Run with
UPDATE_RATCHET=1 to raise the ratchet to the current rates (never lower).

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

from harness.report import parse_text

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MMLOCK_CORPUS")
              or REPO.parent / "shared" / "corpus" / "syzkaller-linux-reports")
RATCHET = REPO / "tests" / "data" / "conformance_rates.json"
EXCLUDED_TYPES = {"SYZ_FAILURE": "syzkaller executor self-report",
                  "LEAK": "kmemleak scan done by syzkaller's executor"}


def load_case(path: Path) -> tuple[dict, str]:
    raw = path.read_bytes().decode("utf-8", errors="replace").replace("\r", "")
    head, _, log = raw.partition("\n\n")
    if not raw.startswith(("TITLE", "ALT", "TYPE", "FRAME", "START", "END", "CORRUPTED",
                           "SUPPRESSED", "PANICKED", "EXECUTOR", "#")) and raw.startswith("\n"):
        head, log = "", raw[1:]
    header: dict = {}
    for line in head.split("\n"):
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        header.setdefault(key.strip(), []).append(value.strip())
    log = log.split("\nREPORT:\n", 1)[0]
    return header, log


def evaluate(corpus: Path) -> tuple[dict, list[str], dict]:
    counts = {"cases": 0, "detect": 0, "type": 0, "title": 0, "crash_cases": 0}
    mismatches: list[str] = []
    excluded: dict[str, int] = {}
    for path in sorted((p for p in corpus.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        header, log = load_case(path)
        want_title = (header.get("TITLE") or [""])[0]
        want_type = (header.get("TYPE") or [""])[0]
        if want_type in EXCLUDED_TYPES:
            excluded[want_type] = excluded.get(want_type, 0) + 1
            continue
        reports = parse_text(log)
        got = reports[0] if reports else None
        counts["cases"] += 1
        if bool(got) == bool(want_title):
            counts["detect"] += 1
        else:
            mismatches.append(f"{path.name}: detect want={want_title!r} got={got.title if got else None!r}")
        if not want_title:
            continue
        counts["crash_cases"] += 1
        if got is None:
            continue
        got_type = "" if got.type == "UNKNOWN" else got.type
        if got_type == want_type:
            counts["type"] += 1
        else:
            mismatches.append(f"{path.name}: type want={want_type!r} got={got_type!r} ({got.title})")
        if got.title == want_title:
            counts["title"] += 1
        else:
            mismatches.append(f"{path.name}: title want={want_title!r} got={got.title!r}")
    return counts, mismatches, excluded


def rates(counts: dict) -> dict:
    return {
        "detection": round(counts["detect"] / max(counts["cases"], 1), 4),
        "type": round(counts["type"] / max(counts["crash_cases"], 1), 4),
        "title": round(counts["title"] / max(counts["crash_cases"], 1), 4),
    }


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"conformance corpus not present at {CORPUS} (set MMLOCK_CORPUS)")
def test_conformance_ratchet(capsys):
    counts, mismatches, excluded = evaluate(CORPUS)
    got = rates(counts)
    with capsys.disabled():
        print(f"\nconformance over {counts['cases']} cases ({counts['crash_cases']} with a crash); "
              f"excluded {excluded}: detection {got['detection']:.2%}, type {got['type']:.2%}, "
              f"title {got['title']:.2%}")
        if os.environ.get("CONFORMANCE_VERBOSE"):
            print("\n".join(mismatches))
    recorded = json.loads(RATCHET.read_text()) if RATCHET.exists() else {}
    if os.environ.get("UPDATE_RATCHET"):
        merged = {k: max(got[k], recorded.get(k, 0.0)) for k in got}
        RATCHET.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
        recorded = merged
    for key, floor in recorded.items():
        assert got[key] >= floor, f"{key} agreement {got[key]:.2%} fell below the ratchet {floor:.2%}"
