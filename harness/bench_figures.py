"""`make bench`'s figures: per-minute rates, medians with the load at each sample, the
intensity and thoroughness of a storm from its run's record, the ratios and tables of
bench.json, and the generated console log the parser is timed on. Pure but for
loadavg(), cpu_model() and host_probe(); harness.bench runs the things these count."""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.configs import REPO_ROOT
from harness.errors import HarnessError
from harness.hosttsc import cpuinfo_field
from harness.record import RunRecord

DATA_DIR = REPO_ROOT / "tests" / "data"
STRESS_NG_STRESSORS = ("swap", "fork", "mmap", "mremap", "mlock", "madvise")
# Keys of a stressor's KTAP line that are settings or bookkeeping, not operations.
META_KEYS = {"workers", "mb", "pages", "areas", "errors", "transient", "seed", "duration_ms", "user_ms",
             "sys_ms", "running", "threads", "storms", "injected", "corruptions", "swapoff_ms", "swapoff_max_ms",
             "file_mb", "sysv_mb", "swap_kb_max", "reason"}
# One headline operation count per stressor for the table (the sum of these keys).
HEADLINE = {
    "swap": ("swapon", "swapoff"),
    "hog": ("touches", "verifies", "rewrites"),
    "fork": ("forks", "vforks", "clones", "clone_vm", "quick_forks"),
    "mmap": ("maps", "munmaps", "munmap_partial", "mprotects", "mlocks", "munlocks", "mremap_grow",
             "mremap_shrink", "mremap_moved", "mremap_fixed", "pageout", "cold", "dontneed", "willneed"),
    "module": ("notifier_register", "gup_calls", "walk_tables"),
    "procwalk": ("smaps", "smaps_rollup", "pagemap", "numa_maps", "maps", "status", "clear_refs"),
    "remote": ("vm_reads", "vm_writes", "mem_reads", "mem_writes"),
    "locked": ("map_locked", "map_populate", "map_shared", "mlockall", "munlockall", "mlock_onfault", "munlocks",
               "mremaps", "munmaps"),
    "thp": ("maps", "munmaps", "munmap_partial", "mprotects", "dontneed", "mremaps", "pageouts", "collapses"),
    "ksm": ("maps", "mergeable", "unmergeable", "writes", "pageouts", "forks", "munmaps"),
    "compact": ("compactions", "node_compactions"),
    "memcg": ("forks", "pageouts", "max_writes", "reclaims"),
    "oom": ("victims", "hogs", "kills"),
    "uffd": ("faults", "dontneed", "pageouts", "remaps"),
    "numa": ("move_calls", "mbinds", "unbinds", "home_nodes", "migrate_calls"),
    "shmem": ("pageouts", "preads", "pwrites", "punches", "removes", "truncates", "forks", "syncs", "splices",
              "fadvises", "seeks", "populates", "mremaps", "direct_reads", "sysv_locks",
              "sysv_attaches"),
    "uaccess": ("pipe", "vmsplice", "unix", "msg", "proc", "getdents", "file", "file_self", "epoll", "futex", "tcp",
                "pty", "attr", "xattr", "rename", "punch", "ifconf", "winsz", "kmsg"),
    # storm-run's lines for the swap backends: pages through zram and zswap.
    "zram": ("reads", "writes"),
    "zswap": ("zswpout", "zswpin"),
}


# ---------------------------------------------------------------- pure parts

def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# A fixed piece of pure-Python work, timed in a child process: the host's
# speed beside the figures (a 2-core VM's host moves by up to 2x in an hour,
# which no figure compares across).
_PROBE = "s = 0\nfor i in range(5_000_000):\n    s += i * i % 7\n"


def host_probe() -> float | None:
    """CPU seconds of _PROBE (interpreter start excluded), or None."""
    code = ("import time\nstart = time.process_time()\n" + _PROBE
            + "print(time.process_time() - start)")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
        return round(float(out.stdout.strip()), 3)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def cpu_model() -> str:
    return cpuinfo_field("model name", "cpu model", "Processor") or ""


def per_minute(count: float, seconds: float) -> float | None:
    return round(count * 60.0 / seconds, 2) if seconds and seconds > 0 else None


def figure(samples: Sequence[float | None], unit: str, load: list[list[float]], note: str = "") -> dict:
    """A measured figure: median of the samples, with the 1/5/15-min load at each sample's start."""
    values = [s for s in samples if s is not None]
    return {"median": round(statistics.median(values), 3) if values else None, "unit": unit,
            "samples": [round(s, 3) for s in values], "n": len(values), "loadavg": load, "note": note}


def storm_seconds(record: RunRecord) -> float:
    return float(record.storm_facts.duration_s or 0)


def intensity(record: RunRecord) -> dict[str, dict[str, float | None]]:
    """A run's record -> {stressor: {op: per guest minute}}, each over its own duration_ms if given."""
    result: dict[str, dict[str, float | None]] = {}
    for name, values in record.storm_facts.counts.items():
        if name in ("cpu", "phases"):   # storm-run's CPU split and phases: time, not operations
            continue
        seconds = values.get("duration_ms", 0) / 1000 if isinstance(values.get("duration_ms"), int) else 0
        seconds = seconds or storm_seconds(record)
        ops = {k: per_minute(v, seconds) for k, v in values.items()
               if k not in META_KEYS and isinstance(v, int) and not isinstance(v, bool)}
        base = name.split(".")[0]
        if base in HEADLINE:
            ops["ops"] = per_minute(sum(values.get(k, 0) for k in HEADLINE[base]
                                        if isinstance(values.get(k), int)), seconds)
        result[name] = ops
    return result


def thoroughness(record: RunRecord) -> dict[str, float | None]:
    """Lock dependency chains and target-lock acquisitions per guest minute of storm,
    and the distinct lock classes the storm acquired."""
    coverage = record.coverage
    seconds = storm_seconds(record)
    chains = coverage.new_dependency_chains
    targets = coverage.targets or {}
    acquisitions = sum(t.get("acquisitions", 0) for t in targets.values()) if targets else None
    classes = coverage.classes_acquired
    return {"chains_per_min": per_minute(chains, seconds) if chains is not None else None,
            "acquisitions_per_min": per_minute(acquisitions, seconds) if acquisitions is not None else None,
            "classes": float(classes) if classes is not None else None}


# The thoroughness figures of each storm: (what, how it is counted, its key in thoroughness(), unit).
THOROUGHNESS = (("new lock dependency chains", "/ guest min", "chains_per_min", "/min"),
                ("target-lock acquisitions", "/ guest min", "acquisitions_per_min", "/min"),
                ("distinct lock classes acquired", "in the storm", "classes", "classes"))
# The yardsticks, run in the same guest for the same time as ours: (label, storm, extra guest binaries).
YARDSTICKS = (("seed-paths", "seed-paths", False), ("stress-ng", "stress-ng", True),
              ("stress-ng vm class", "stress-ng-vm", True))


def comparison(figures: dict) -> dict:
    """Per thoroughness figure: ours (the default storm) and each yardstick's median, and ours over each."""
    out = {}
    for what, per, _, _ in THOROUGHNESS:
        ours = figures.get(f"ours: {what} {per}", {}).get("median")
        row: dict[str, float | None] = {"ours": ours}
        for label, _, _ in YARDSTICKS:
            theirs = figures.get(f"{label}: {what} {per}", {}).get("median")
            row[label] = theirs
            row[f"ours_over_{label.replace(' ', '_')}"] = ratio(ours, theirs)
        out[what] = row
    return out


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return round(ours / theirs, 2)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)


# Targets the project set itself (issues 29 and 31): (figure-name pattern, "<=" or ">=", value).
TARGETS: tuple[tuple[str, str, float], ...] = (
    (r"^kernel build, cold \(", "<=", 300.0),               # on an idle 2-core machine
    (r"^kernel build, second tree of the same source$", "<=", 90.0),
    (r"^boot to ready \(tcg\)$", "<=", 3.0),
    (r"^parser throughput, report-dense log .*per CPU second$", ">=", 50.0),
    (r"^parser throughput, quiet log .*per CPU second$", ">=", 200.0),
    (r"^parser peak memory, .* log ", "<=", 100.0),
)


def target_of(key: str, median: float | None) -> str:
    """'<= 300: met' (or 'not met', or '' for a figure without a target)."""
    for pattern, op, value in TARGETS:
        if re.search(pattern, key):
            if median is None:
                return f"{op} {value:g}"
            met = median <= value if op == "<=" else median >= value
            return f"{op} {value:g}: {'met' if met else 'not met'}"
    return ""


def rows(bench: dict) -> list[tuple[str, str, str, str, str]]:
    """(figure, median, unit, n, load at start) rows, in the order of the report."""
    out = []
    for key, fig in bench.get("figures", {}).items():
        load = fig.get("loadavg") or []
        first = load[0] if load and isinstance(load[0], list) else load
        shown_load = "/".join(f"{x:.1f}" for x in first) if first else "?"
        if len(load) > 1 and isinstance(load[0], list):
            shown_load += f" .. {load[-1][0]:.1f}"
        out.append((key, _fmt(fig.get("median")), fig.get("unit", ""), str(fig.get("n", "")), shown_load))
    return out


def previous_run(path: Path, arch: str) -> dict:
    """The date and figures of the bench.json a new run replaces, when it was for the
    same arch; {} otherwise."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(old, dict) or old.get("arch") != arch or not isinstance(old.get("figures"), dict):
        return {}
    return {"date": str(old.get("date", "")),
            "figures": {k: {"median": v.get("median"), "unit": v.get("unit")}
                        for k, v in old["figures"].items() if isinstance(v, dict)}}


def render_table(bench: dict) -> str:
    """A plain-text table of every figure, machine facts on top."""
    m = bench.get("machine", {})
    head = (f"bench {bench.get('date', '?')}  arch={bench.get('arch', '?')}  cores={m.get('cores')}  "
            f"mem={m.get('memory_mb')} MiB  accel={','.join(m.get('accels', []))}  qemu={m.get('qemu_version')}  "
            f"repeat={bench.get('repeat')}")
    if m.get("cpu_model") or m.get("probe_cpu_s_start") is not None:
        head += (f"\ncpu={m.get('cpu_model') or '?'}  probe (fixed Python loop) "
                 f"{_fmt(m.get('probe_cpu_s_start'))} CPU s at the start, {_fmt(m.get('probe_cpu_s_end'))} at the end")
    previous = bench.get("previous") or {}
    before = f"previous ({previous.get('date', '?')[:10]})" if previous else "previous"
    table: list[tuple[str, ...]] = [("figure", "median", "unit", "n", "loadavg 1/5/15 at start", "target", before)]
    for shown in rows(bench):
        fig = bench["figures"].get(shown[0], {})
        old = (previous.get("figures") or {}).get(shown[0]) or {}
        table.append((*shown, target_of(shown[0], fig.get("median")),
                      _fmt(old.get("median")) if old.get("median") is not None else "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [head]
    for index, row in enumerate(table):
        lines.append("  ".join(cell.rjust(widths[i]) if i in (1, 3, 6) else cell.ljust(widths[i])
                               for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    for what, cmp in bench.get("comparison", {}).items():
        for label, _, _ in YARDSTICKS:
            if cmp.get(label) is not None:
                lines.append(f"ours / {label}, {what}: {_fmt(cmp.get('ours'))} / {_fmt(cmp.get(label))} = "
                             f"{_fmt(cmp.get('ours_over_' + label.replace(' ', '_')))}x")
    for note in bench.get("notes", []):
        lines.append(f"note: {note}")
    for missing in bench.get("unmeasured", []):
        lines.append(f"NOT MEASURED: {missing}")
    return "\n".join(lines)


def markdown_table(bench: dict) -> str:
    """The same rows as a Markdown table (for the README)."""
    lines = ["| figure | median | unit | n | loadavg 1/5/15 at start |", "|---|---:|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows(bench)]
    return "\n".join(lines)


def _split_case(text: str) -> str:
    """A tests/data/reports file: a header of expectations, a blank line, then the console text."""
    header, sep, body = text.partition("\n\n")
    return body if sep and header.lstrip().startswith(("#", "TITLE")) else text


def generate_log(dest: Path, target_bytes: int, data_dir: Path = DATA_DIR) -> dict:
    """A long console log: recorded consoles as the background, a recorded report every ~20 KB.

    Deterministic; returns {bytes, reports_inserted}.
    """
    consoles = [p.read_text(errors="replace") for p in sorted((data_dir / "consoles").glob("*.log"))]
    reports = [_split_case(p.read_text(errors="replace")) for p in sorted((data_dir / "reports").iterdir())
               if p.is_file()]
    if not consoles or not reports:
        raise HarnessError(f"no recorded logs under {data_dir}")
    background = [ln + "\n" for c in consoles for ln in c.splitlines()]
    written = inserted = 0
    index = 0
    with open(dest, "w") as handle:
        while written < target_bytes:
            chunk = "".join(background[(index * 97 + i) % len(background)] for i in range(200))
            report = reports[index % len(reports)]
            block = chunk + report + ("" if report.endswith("\n") else "\n")
            handle.write(block)
            written += len(block.encode())
            inserted += 1
            index += 1
    return {"bytes": written, "reports_inserted": inserted}


# ------------------------------------------------------------ measurements
