#!/usr/bin/env python3
"""Score the report parser on a folder of syzkaller report cases.

    .venv/bin/python tools/score_cases.py DIR [--seen CORPUS] [--mismatches]

DIR holds case files as in syzkaller's pkg/report/testdata/linux/report/
(a header of TITLE:/TYPE:/FRAME:/CORRUPTED: lines, a blank line, the
console log, an optional REPORT: section); their console text is taken
as syzkaller's report_test.go takes it (harness/report/corpus.py). Cases
whose console text is also in the --seen corpus (default ../shared/corpus,
MMLOCK_CORPUS) are left out and listed, so the figures are for logs the
parser has never seen. Cases without a TYPE (written before syzkaller had
types) are left out of the type figure only. Excluded types (executor
self-reports, kmemleak) are counted and not scored.

Keep such cases outside the repository (e.g. under /tmp): they are the
measure of generality, not material to tune rules on.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.report.agreement import Tally, excluded_as, summary, table
from harness.report.corpus import case_paths, load_case

REPO = Path(__file__).resolve().parent.parent
SEEN = Path(os.environ.get("MMLOCK_CORPUS") or REPO.parent / "shared" / "corpus" / "syzkaller-linux-reports")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", type=Path, help="folder of numbered case files")
    parser.add_argument("--seen", type=Path, default=SEEN, help=f"corpus the parser was developed on (default {SEEN})")
    parser.add_argument("--mismatches", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    if not args.cases.is_dir():
        parser.error(f"{args.cases} is not a folder")
    seen = {load_case(p)[1] for p in case_paths(args.seen)} if args.seen.is_dir() else set()
    tally = Tally(untyped_means_unknown=False)
    excluded: dict[str, list[str]] = {}
    for path in case_paths(args.cases):
        header, log = load_case(path)
        why = "seen" if log in seen else excluded_as(header)
        if why:
            excluded.setdefault(why, []).append(path.name)
            continue
        tally.add(path.name, header, log)
    print(f"{datetime.date.today()}: {args.cases}, scored {summary(tally.counts)}")
    for why, names in sorted(excluded.items()):
        print(f"  not scored ({why}): {len(names)}: {' '.join(names)}")
    print("\n".join(table(tally.kinds)))
    if args.mismatches:
        print("\n".join(tally.mismatches))
    return 0 if tally.counts["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
