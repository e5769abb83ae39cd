"""Writing a run's results: verdict.json, junit.xml, kcidb.json, repro.sh, results/latest."""
from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from harness import kcidb
from harness.configs import REPO_ROOT
from harness.record import RunRecord
from harness.report.model import printable
from harness.verdict import Verdict


def sanitize(text: str) -> str:
    """One line of guest text for JUnit, HTML or a terminal (see printable)."""
    return printable(str(text))


def sanitize_block(text: str) -> str:
    """Lines of guest text (a detail, a traceback, a log) with their newlines (see printable)."""
    return printable(str(text), newlines=True)


def safe(value: Any) -> Any:
    """A JSON value with every string in it (keys too) passed through printable,
    newlines kept: what verdict.json, bisect.json and the summaries hold."""
    if isinstance(value, str):
        return printable(value, newlines=True)
    if isinstance(value, dict):
        return {safe(k) if isinstance(k, str) else k: safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe(v) for v in value]
    return value


def results_root() -> Path:
    return Path(os.environ.get("MMLOCK_RESULTS") or REPO_ROOT / "results")


def new_run_dir(arch: str, label: str = "run", root: Path | None = None) -> Path:
    root = root or results_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        name = f"{stamp}-{arch}-{label}" + (f"-{attempt}" if attempt else "")
        path = root / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError("cannot create a run directory")


def point_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def write_json(path: Path, data: Any) -> None:
    """Atomically, every string through safe(): valid JSON (ASCII, no lone surrogates) whatever the guest sent."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(safe(data), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def run_kcidb(run_dir: Path, record: RunRecord) -> dict:
    """The run directory's record as a KCIDB document, its files linked relative to it."""
    names = [p.name for p in run_dir.iterdir() if p.is_file()] if run_dir.is_dir() else []
    return kcidb.document([kcidb.from_run(record.to_json(), names)])


def write_verdict(run_dir: Path, record: RunRecord) -> None:
    """verdict.json: the one place it is written (RunRecord.load reads it back)."""
    write_json(run_dir / "verdict.json", record.to_json())


def write_run_files(run_dir: Path, arch: str, verdict: Verdict, record: RunRecord) -> None:
    """What a finished run leaves beside its console.log: verdict.json, junit.xml, kcidb.json."""
    write_verdict(run_dir, record)
    (run_dir / "junit.xml").write_text(run_junit(run_dir.name, arch, verdict, record.durations.total_s))
    write_json(run_dir / "kcidb.json", run_kcidb(run_dir, record))


def junit_xml(suite: str, cases: list[dict]) -> str:
    """cases: {name, classname, time, verdict, message, detail}."""
    failures = sum(1 for c in cases if c["verdict"] == "fail")
    errors = sum(1 for c in cases if c["verdict"] not in ("pass", "fail"))
    total_time = sum(float(c.get("time", 0)) for c in cases)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f'<testsuite name={quoteattr(sanitize(suite))} tests="{len(cases)}" failures="{failures}" '
           f'errors="{errors}" time="{total_time:.1f}">']
    for case in cases:
        out.append(f'  <testcase name={quoteattr(sanitize(case["name"]))} '
                   f'classname={quoteattr(sanitize(case["classname"]))} time="{float(case.get("time", 0)):.1f}">')
        message = quoteattr(sanitize(case.get("message", "")))
        detail = escape(sanitize_block(case.get("detail", "")))
        if case["verdict"] == "fail":
            out.append(f"    <failure message={message} type=\"kernel-report\">{detail}</failure>")
        elif case["verdict"] != "pass":
            out.append(f"    <error message={message} type={quoteattr(sanitize(case['verdict']))}>{detail}</error>")
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"


def run_junit(run_id: str, arch: str, verdict: Verdict, total_s: float) -> str:
    detail = "\n".join(f"{r.title} (lines {r.start_line}-{r.end_line})" for r in verdict.reports)
    return junit_xml("mmlock-harness", [{
        "name": f"boot-test.{arch}", "classname": f"mmlock.{run_id}", "time": total_s,
        "verdict": verdict.verdict, "message": verdict.reason, "detail": detail,
    }])


def repro_script(qemu_argv: list[str], disks: list[tuple[str, int]]) -> str:
    lines = [
        "#!/bin/sh",
        "# Re-run this boot with the same kernel, initramfs and command line.",
        "# The console is on stdio; the guest prints its ready marker, then a shell.",
        "# Inside it, `storm-run` runs the same storm plan; `reboot -f` ends QEMU.",
        "set -e",
        'cd "$(dirname "$0")"',
    ]
    for disk, size_mb in disks:
        lines.append(f"rm -f {shlex.quote(disk)}; truncate -s {size_mb}M {shlex.quote(disk)}")
    lines.append("exec " + shlex.join(qemu_argv))
    return "\n".join(lines) + "\n"
