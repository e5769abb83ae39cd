"""Clean-run stability: N clean storms in a row; every report is a flake
to explain (the harness's own module and stressors must never cause one)."""
from __future__ import annotations

import sys
from collections import Counter

from harness.errors import EXIT_INFRA
from harness.results import results_root, write_json
from harness.run import RunRequest, execute


def run_soak(runs: int, request: RunRequest) -> int:
    rows = []
    titles: Counter[str] = Counter()
    for index in range(runs):
        outcome = execute(RunRequest(**{**request.__dict__, "seed": request.seed + index, "label": "soak"}))
        data = outcome.data
        run_titles = [r["title"] for r in data.get("reports", [])]
        titles.update(run_titles)
        rows.append({"run_id": data["run_id"], "seed": request.seed + index, "verdict": data["verdict"],
                     "titles": run_titles, "total_s": data["durations"]["total_s"]})
        passed = sum(1 for r in rows if r["verdict"] == "pass")
        print(f"soak: [{index + 1}/{runs}] {data['verdict']} {'; '.join(run_titles)} "
              f"({passed}/{index + 1} passed)", file=sys.stderr, flush=True)
        if data.get("interrupted"):   # Ctrl-C ends the soak, not just the run it hit
            print(f"soak: interrupted after {index + 1} of {runs} runs", file=sys.stderr, flush=True)
            break
    passed = sum(1 for r in rows if r["verdict"] == "pass")
    summary = {"runs": runs, "done": len(rows), "passed": passed, "flaky_titles": dict(titles), "rows": rows}
    out = results_root() / "soak"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    print(f"soak: {passed}/{runs} clean storms passed" + (f"; reports: {dict(titles)}" if titles else ""))
    if len(rows) < runs:
        return EXIT_INFRA   # interrupted, whatever passed so far
    return 0 if passed == runs else 1
