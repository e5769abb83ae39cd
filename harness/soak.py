"""`make soak`: N storms in a row, seeds counted up, and how often each report
showed: a `fail:runs` table per title, as 0-day's reports give it.

Clean runs measure stability (every report is a flake to explain); with
INJECT= every run plants the same fault and the table is that signature's
rate. Every run option the command takes is honoured, the injection too.
"""
from __future__ import annotations

import dataclasses
import sys
from collections import Counter

from harness.errors import EXIT_INFRA
from harness.report.model import printable
from harness.results import results_root, write_json
from harness.run import RunRequest, execute


def fail_runs(rows: list[dict]) -> dict[str, dict[str, int]]:
    """{title: {fail, runs}}: the runs that showed each title at least once, of all runs done."""
    seen: Counter[str] = Counter()
    for row in rows:
        seen.update(set(row["titles"]))
    return {title: {"fail": count, "runs": len(rows)} for title, count in seen.most_common()}


def fail_runs_table(table: dict[str, dict[str, int]], done: int, passed: int) -> str:
    """0-day's layout: fail:runs, then what failed."""
    lines = ["  fail:runs  signature", f"  {done - passed:>4}:{done:<4}  (any report or failure)"]
    lines += [f"  {v['fail']:>4}:{v['runs']:<4}  {printable(title)}" for title, v in table.items()]
    return "\n".join(lines)


def run_soak(runs: int, request: RunRequest) -> int:
    rows = []
    titles: Counter[str] = Counter()
    for index in range(runs):
        outcome = execute(dataclasses.replace(request, seed=request.seed + index, label="soak"))
        record = outcome.record
        run_titles = record.titles()
        titles.update(run_titles)
        rows.append({"run_id": record.run_id, "seed": request.seed + index, "verdict": record.verdict,
                     "titles": run_titles, "total_s": record.durations.total_s,
                     **({"stopped_early": record.stopped_early.to_json()} if record.stopped_early else {})})
        passed = sum(1 for r in rows if r["verdict"] == "pass")
        print(printable(f"soak: [{index + 1}/{runs}] {record.verdict} {'; '.join(run_titles)} "
                        f"({passed}/{index + 1} passed)"), file=sys.stderr, flush=True)
        if record.interrupted:   # Ctrl-C ends the soak, not just the run it hit
            print(f"soak: interrupted after {index + 1} of {runs} runs", file=sys.stderr, flush=True)
            break
    passed = sum(1 for r in rows if r["verdict"] == "pass")
    table = fail_runs(rows)
    summary = {"runs": runs, "done": len(rows), "passed": passed, "inject": request.inject,
               "flaky_titles": dict(titles), "fail_runs": table, "rows": rows}
    out = results_root() / "soak"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    what = f"storms with INJECT={request.inject}" if request.inject else "clean storms"
    print(f"soak: {passed}/{len(rows)} {what} passed")
    if table or passed < len(rows):
        print(fail_runs_table(table, len(rows), passed))
    if len(rows) < runs:
        return EXIT_INFRA   # interrupted, whatever passed so far
    return 0 if passed == runs else 1
