"""When things happened in the guest, read from the kernel's own printk clock.

storm-run writes a line to /dev/kmsg as the storm begins; a report's first
line carries the same clock, so the seconds between the two are the storm's
time to that report, whichever channel drove the storm and however late the
host read the console. Pure: works on a saved console log.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from harness.report.model import Report

STORM_BEGIN = "mmlock-harness: storm begins"   # guest/init/storm-run writes it to /dev/kmsg
_STAMP_RE = re.compile(r"^(?:<\d+>)?\[\s*(\d+\.\d+)\]")
LOOKAHEAD = 8   # a report's first line may be unstamped (a banner): the next stamped one


def stamp(line: str) -> float | None:
    match = _STAMP_RE.match(line)
    return float(match.group(1)) if match else None


def storm_begin(lines: Sequence[str]) -> float | None:
    """The printk time of the (last) storm start in the log, or None."""
    found = None
    for line in lines:
        if STORM_BEGIN in line:
            found = stamp(line) if stamp(line) is not None else found
    return found


def report_time(lines: Sequence[str], report: Report) -> float | None:
    """The printk time of a report's first line (1-based start_line), or None."""
    if report.start_line < 1:
        return None
    for line in lines[report.start_line - 1:report.start_line - 1 + LOOKAHEAD]:
        when = stamp(line)
        if when is not None:
            return when
    return None


def first_report_s(text: str, reports: Sequence[Report]) -> float | None:
    """Seconds from the storm's start to its first primary report, by the guest's clock;
    None without a storm start, a report or their stamps."""
    lines = text.split("\n")
    begun = storm_begin(lines)
    if begun is None:
        return None
    times = [t for t in (report_time(lines, r) for r in reports if r.primary) if t is not None]
    return round(min(times) - begun, 3) if times else None
