"""Stop on report: read console.log as it grows and say when the first kernel
report is complete, so a run that has its answer ends there (bisect, soak, the
zoo; `STOP_ON_REPORT=1` for a boot-test).

Complete means the report scanner closed it (its end marker, or its bounds),
or nothing new has come from the guest for QUIET_S since its header, or
LONGEST_S have passed since the header whatever the guest still prints.
The watch runs as one of the console's idle hooks (every couple of seconds
while the storm runs, over either channel) and raises ReportSeen out of the
storm's command: not a timeout (the channels would try to save the command's
output first, and a timeout means a hung guest); run_storm ends the storm there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harness.report.model import printable
from harness.report.stream import Scanner

QUIET_S = 3.0     # no console output this long after a header: the report is whole
LONGEST_S = 8.0   # a report still growing this long after its header is cut here


class ReportSeen(Exception):
    """A kernel report is complete on the console: stop the storm."""


@dataclass
class Seen:
    title: str
    header_at: float      # time.monotonic() when the watch first saw the report open
    complete_at: float    # ... and when it took it as complete
    why: str              # "closed" | "quiet" | "longest"


class ReportWatch:
    def __init__(self, console_log: Path, silent_for=lambda: 0.0) -> None:
        self.path = console_log
        self.silent_for = silent_for    # seconds since the guest last sent anything
        self.offset = 0
        self.rest = b""
        self.scanner = Scanner()
        self.header_at: float | None = None
        self.seen: Seen | None = None

    def _new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return []
        self.offset += len(data)
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()
        return [line.decode(errors="replace") for line in lines]

    def poll(self) -> Seen | None:
        """Scan what is new; the report once complete (and from then on), else None."""
        if self.seen is not None:
            return self.seen
        now = time.monotonic()
        for line in self._new_lines():
            for report in self.scanner.feed(line):
                return self._complete(report.title, now, "closed")
        if self.scanner.open and self.header_at is None:
            self.header_at = now
        if self.header_at is not None:
            if self.silent_for() >= QUIET_S:
                return self._complete(self._open_title(), now, "quiet")
            if now - self.header_at >= LONGEST_S:
                return self._complete(self._open_title(), now, "longest")
        return None

    def _open_title(self) -> str:
        reports = self.scanner.finish()
        return reports[0].title if reports else "(an unfinished report)"

    def _complete(self, title: str, now: float, why: str) -> Seen:
        self.seen = Seen(printable(title), self.header_at if self.header_at is not None else now, now, why)
        return self.seen

    def hook(self) -> None:
        """The console idle hook: raise ReportSeen once a report is complete."""
        seen = self.poll()
        if seen is not None:
            raise ReportSeen(f"stopped on report: {seen.title}")
