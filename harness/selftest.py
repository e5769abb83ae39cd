"""The detection self-test: inject each kind of fault, one boot each, and
check that the verdict names it; a clean storm must pass. A composition of
run.execute, nothing more.
"""
from __future__ import annotations

import sys
from dataclasses import replace

from harness.configs import SelftestCase as Case
from harness.configs import load_selftest_cases as load_cases
from harness.errors import ConfigError
from harness.record import RunRecord
from harness.results import junit_xml, results_root, write_json
from harness.run import RunRequest, execute, load_request


def judge(case: Case, record: RunRecord, arch: str = "") -> dict:
    """{expected, got, ok} for one case from its run's record."""
    primary = next((r for r in record.reports if r.primary), record.reports[0] if record.reports else None)
    got = {"verdict": record.verdict, "kind": primary.kind if primary else None,
           "title": primary.title if primary else None,
           "corrupted": bool(primary and primary.corrupted), "run_id": record.run_id}
    title_prefix = case.title_for(arch)
    expected = {"verdict": case.verdict, "kind": case.kind, "title": title_prefix}
    ok = got["verdict"] == case.verdict
    if case.kind is not None:
        ok = ok and got["kind"] == case.kind
    if title_prefix is not None:
        # A title that names no function ("... in corrupted") does not count.
        title = got["title"]
        ok = ok and isinstance(title, str) and title.startswith(title_prefix)
        ok = ok and (not got["corrupted"] or arch in case.corrupted_ok)
    return {"expected": expected, "got": got, "ok": ok}


def run_selftest(template: RunRequest, only: list[str] | None = None) -> int:
    """Each case of configs/selftest.yaml (or @only those) as @template's run with the case's
    storm, duration and injection: did the verdict name what was injected?"""
    arch = template.arch
    cases = load_cases()
    if only:
        unknown = sorted(set(only) - {c.name for c in cases})
        if unknown:
            raise ConfigError(f"unknown self-test case(s) {', '.join(unknown)}; valid: "
                              f"{', '.join(c.name for c in cases)}")
        cases = [c for c in cases if c.name in only]
    requests = {case.name: replace(template, storm=case.storm, duration=case.duration_s, inject=case.inject,
                                   label=f"selftest-{case.name}")
                for case in cases}
    for request in requests.values():
        load_request(request)   # every case's values before the first build
    summary: dict[str, dict] = {}
    junit_cases = []
    out_dir = results_root() / "selftest"
    out_dir.mkdir(parents=True, exist_ok=True)
    for case in cases:
        print(f"selftest: {case.name} ...", file=sys.stderr, flush=True)
        outcome = execute(requests[case.name])
        cell = judge(case, outcome.record, arch)
        summary[case.name] = cell
        mark = "ok" if cell["ok"] else "WRONG"
        print(f"selftest: {case.name}: {mark}: got {cell['got']['verdict']} "
              f"{cell['got']['kind'] or ''} {cell['got']['title'] or ''}".rstrip(), flush=True)
        junit_cases.append({"name": case.name, "classname": f"selftest.{arch}",
                            "time": outcome.record.durations.total_s,
                            "verdict": "pass" if cell["ok"] else "fail",
                            "message": f"expected {cell['expected']}, got {cell['got']}"})
        write_json(out_dir / "summary.json", summary)
    (out_dir / "junit.xml").write_text(junit_xml(f"selftest-{arch}", junit_cases))
    wrong = [name for name, cell in summary.items() if not cell["ok"]]
    print(f"selftest: {len(summary) - len(wrong)}/{len(summary)} cases right"
          + (f"; wrong: {', '.join(wrong)}" if wrong else ""))
    return 1 if wrong else 0
