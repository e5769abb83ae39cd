"""`make matrix`: the same run over arches x kernel versions, with bounded
parallelism, one summary (JSON, JUnit, HTML). Each cell is the CLI's `run`
in its own process and results directory: a composition, not a copy.
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

from harness import kcidb
from harness.configs import arch_names, load_arch
from harness.errors import EXIT_INFRA, VERDICT_NAMES, ConfigError
from harness.kernel.source import KNOWN_VERSIONS
from harness.plan import RunRequest
from harness.record import LockCoverage, RunRecord
from harness.report.model import printable
from harness.results import junit_xml, results_root, write_json

COLOURS = {"pass": "#c8e6c9", "fail": "#ffcdd2", "config-error": "#fff9c4", "infra-error": "#e0e0e0",
           "build-error": "#ffe0b2", "boot-failure": "#f8bbd0"}


def default_jobs(cores: int | None = None, mem_gb: float | None = None) -> int:
    """One cell per core, and no more than memory allows (a cell: QEMU + a kernel build,
    about 3 GB); this host's cores and memory unless given."""
    cores = cores or os.cpu_count() or 1
    if mem_gb is None:
        try:
            mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
        except (ValueError, OSError):
            mem_gb = 4
    return max(1, min(cores, int(mem_gb // 3)))


class Children:
    """The cells' processes, so an interrupted matrix can stop them: each ends the
    way its own Ctrl-C would (QEMU killed, results marked incomplete)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self.stopping = False

    def run(self, argv: list[str], **kwargs) -> subprocess.Popen:
        with self._lock:
            if self.stopping:
                raise KeyboardInterrupt("matrix stopping")
            proc = subprocess.Popen(argv, **kwargs)
            self._procs.add(proc)
        try:
            proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)
        return proc

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
            procs = list(self._procs)
        for proc in procs:
            proc.terminate()


def _cell(arch: str, kver: str, out: Path, template: RunRequest, children: Children) -> dict:
    """One cell: the template's run for this arch and kernel version, in a child process
    of its own (its Ctrl-C, its stdout: harness.log), the request handed over as JSON."""
    cell_dir = out / "cells" / f"{arch}-{kver}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    request = replace(template, arch=arch, kernel_version=kver, results_dir=str(cell_dir))
    started = time.monotonic()
    with open(cell_dir / "harness.log", "w") as log:
        proc = children.run([sys.executable, "-m", "harness", "run-request", json.dumps(request.to_json())],
                            stdout=log, stderr=subprocess.STDOUT)
    verdict_file = cell_dir / "latest" / "verdict.json"
    record = RunRecord.load(verdict_file) if verdict_file.is_file() else None
    coverage = record.coverage if record else LockCoverage()
    return {
        "arch": arch, "kernel": kver,
        "verdict": (record and record.verdict) or VERDICT_NAMES.get(proc.returncode, "infra-error"),
        "exit_code": proc.returncode, "titles": record.titles() if record else [],
        "accel": record.accel if record else None,
        "durations": record.durations.to_json() if record else {"total_s": time.monotonic() - started},
        "lock_coverage": {"never_taken": coverage.never_taken,
                          "not_in_kernel": sorted(coverage.not_in_kernel or {}),
                          "dependency_chains": coverage.dependency_chains},
        "run_dir": str((cell_dir / "latest").resolve()) if (cell_dir / "latest").exists() else str(cell_dir),
        "log": str(cell_dir / "harness.log"),
    }


PROGRESS_EVERY_S = 60.0
STAGE_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (\S.*)$")


_SAY_LOCK = threading.Lock()


def _say(line: str) -> None:
    """One progress line to stderr. print() writes the text and its newline
    separately, so two cells' lines could run together; one write does not."""
    with _SAY_LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _clock(since: float) -> str:
    elapsed = int(time.monotonic() - since)
    return f"{elapsed // 60:3d}m{elapsed % 60:02d}s"


def last_stage(log: Path) -> str:
    """The last stage line ('[hh:mm:ss] build: kernel') a cell's harness.log holds, for progress."""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            tail = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    stage = next((m.group(1) for m in map(STAGE_LINE.match, reversed(tail)) if m), "")
    # A kernel build's own progress line, when it is the latest word.
    if stage and tail and tail[-1].startswith("build: ") and tail[-1].endswith(" objects compiled"):
        stage += f" ({tail[-1][len('build: '):]})"
    return printable(stage)[:120]


def _h(value: object) -> str:
    """Any value for HTML text or a quoted attribute: printable, then escaped."""
    return html.escape(printable(str(value)), quote=True)


def render_html(rows: list[dict], out: Path) -> str:
    """summary.html: a valid page whatever the cells' titles hold (every value through _h)."""
    arches = sorted({str(r["arch"]) for r in rows})
    kvers = sorted({str(r["kernel"]) for r in rows})
    by_key = {(str(r["arch"]), str(r["kernel"])): r for r in rows}
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmlock-harness matrix</title>",
             "<style>body{font-family:sans-serif}td,th{border:1px solid #999;padding:6px;vertical-align:top}"
             "table{border-collapse:collapse}small{color:#333}</style></head><body>",
             "<h1>mmlock-harness matrix</h1><table><tr><th>arch</th>"]
    parts += [f"<th>Linux {_h(k)}</th>" for k in kvers]
    parts.append("</tr>")
    for arch in arches:
        parts.append(f"<tr><th>{_h(arch)}</th>")
        for kver in kvers:
            row = by_key.get((arch, kver))
            if not row:
                parts.append("<td></td>")
                continue
            run_dir = Path(row["run_dir"])
            rel = os.path.relpath(run_dir, out)
            titles = "<br>".join(_h(t) for t in row["titles"])
            total = float(row["durations"].get("total_s", 0))
            parts.append(
                f"<td class='cell {_h(row['verdict'])}' "
                f"style='background:{COLOURS.get(row['verdict'], '#fff')}'>"
                f"<b>{_h(row['verdict'])}</b> <small>({_h(row['accel'])}, {total:.0f}s)</small>"
                f"<br>{titles}<br><a href='{_h(rel)}/console.log'>console.log</a> "
                f"<a href='{_h(rel)}/verdict.json'>verdict.json</a></td>")
        parts.append("</tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)


def matrix_kcidb(rows: list[dict], out: Path) -> dict:
    """Every cell's run as one KCIDB document, files linked relative to `out` (results/matrix).
    A cell that left no verdict.json (its process died) is still there, from its summary row."""
    parts = []
    for row in rows:
        run_dir = Path(row["run_dir"])
        verdict_file = run_dir / "verdict.json"
        if verdict_file.is_file():
            data = json.loads(verdict_file.read_text())
            names = [p.name for p in run_dir.iterdir() if p.is_file()]
        else:
            data = {"verdict": row["verdict"], "exit_code": row["exit_code"], "arch": row["arch"],
                    "reason": "the cell left no verdict.json (see its harness.log)",
                    "kernel": {"version": row["kernel"]}, "durations": row["durations"]}
            names = []
        parts.append(kcidb.from_run(data, names, prefix=os.path.relpath(run_dir, out) + "/"))
    return kcidb.document(parts)


def run_matrix(arches: list[str], kvers: list[str], jobs: int, template: RunRequest) -> int:
    valid = arch_names()
    for arch in arches:
        load_arch(arch)  # unknown names list the valid ones
    for kver in kvers:
        if kver not in KNOWN_VERSIONS:
            raise ConfigError(f"unknown kernel version '{kver}'; valid: {', '.join(KNOWN_VERSIONS)}")
    if not arches:
        arches = valid
    out = results_root() / "matrix"
    out.mkdir(parents=True, exist_ok=True)
    cells = [(a, k) for a in arches for k in kvers]
    rows: list[dict] = []
    _say(f"matrix: {len(cells)} cells, {jobs} at a time")
    started = time.monotonic()
    running: dict[tuple[str, str], float] = {}
    lock = threading.Lock()
    children = Children()

    def cell(arch: str, kver: str) -> dict:
        with lock:
            running[(arch, kver)] = time.monotonic()
        _say(f"matrix: {_clock(started)} start {arch} {kver}")
        try:
            return _cell(arch, kver, out, template, children)
        finally:
            with lock:
                running.pop((arch, kver), None)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending = {pool.submit(cell, a, k) for a, k in cells}
        try:
            while pending:
                done, pending = wait(pending, timeout=PROGRESS_EVERY_S, return_when=FIRST_COMPLETED)
                for future in done:
                    row = future.result()
                    rows.append(row)
                    _say(f"matrix: {_clock(started)} [{len(rows)}/{len(cells)}] {row['arch']} {row['kernel']}: "
                         f"{row['verdict']} {'; '.join(printable(t) for t in row['titles'])}".rstrip())
                if not done:
                    with lock:
                        now = dict(running)
                    for (arch, kver), since in sorted(now.items()):
                        stage = last_stage(out / "cells" / f"{arch}-{kver}" / "harness.log")
                        _say(f"matrix: {_clock(started)} running {arch} {kver} for "
                             f"{time.monotonic() - since:.0f}s{': ' + stage if stage else ''}")
        except KeyboardInterrupt:
            # Before the pool's exit waits for its threads: they wait for these.
            _say(f"matrix: {_clock(started)} interrupted: stopping {len(running)} running cell(s)")
            children.stop()
            for future in pending:
                future.cancel()
            raise
    rows.sort(key=lambda r: (r["arch"], r["kernel"]))
    write_json(out / "summary.json", rows)
    (out / "junit.xml").write_text(junit_xml("matrix", [
        {"name": f"{r['arch']}-{r['kernel']}", "classname": "matrix", "time": r["durations"].get("total_s", 0),
         "verdict": r["verdict"], "message": "; ".join(r["titles"]) or r["verdict"]} for r in rows]))
    (out / "summary.html").write_text(render_html(rows, out))
    write_json(out / "kcidb.json", matrix_kcidb(rows, out))
    for row in rows:
        titles = "; ".join(printable(t) for t in row["titles"])
        print(f"{row['arch']:10} {row['kernel']:6} {row['verdict']:13} {titles}")
    print(f"matrix: {out / 'summary.html'}")
    codes = [r["exit_code"] for r in rows]
    if all(code == 0 for code in codes):
        return 0
    # A kernel finding anywhere is the headline; otherwise say who else is at fault.
    return 1 if 1 in codes else max(codes) or EXIT_INFRA
