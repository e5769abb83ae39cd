"""Stop on report: the watch over a growing console.log says when a report is whole."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import watch

SPLAT = (Path(__file__).parent / "data" / "consoles" / "x86_64-lockdep-splat.log").read_text().split("\n")
HEADER = next(i for i, line in enumerate(SPLAT) if "possible circular locking dependency" in line)
TASK_END = next(i for i, line in enumerate(SPLAT) if line.endswith("</TASK>"))


class Console:
    """console.log as the reader writes it, and how long the guest has been quiet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.quiet = 0.0
        path.write_text("")

    def write(self, lines: list[str]) -> None:
        with open(self.path, "a") as handle:
            handle.write("\n".join(lines) + "\n")


def test_nothing_before_the_header_then_the_whole_report(tmp_path):
    console = Console(tmp_path / "console.log")
    seen = watch.ReportWatch(console.path, lambda: console.quiet)
    console.write(SPLAT[:HEADER - 1])
    assert seen.poll() is None
    console.write(SPLAT[HEADER - 1:HEADER + 5])   # the header and a few lines: still growing
    assert seen.poll() is None and seen.header_at is not None
    console.write(SPLAT[HEADER + 5:])             # the rest, the storm's lines after it
    assert seen.poll() is None                    # no end marker, and the guest still talks
    console.quiet = watch.QUIET_S + 0.5           # ... until it has said nothing for a while
    result = seen.poll()
    assert result is not None and result.title == "possible deadlock in try_to_unuse"
    assert result.why == "quiet" and result.complete_at >= result.header_at
    with pytest.raises(watch.ReportSeen, match="stopped on report: possible deadlock in try_to_unuse"):
        seen.hook()


def test_a_report_followed_by_silence_is_taken_as_whole(tmp_path):
    console = Console(tmp_path / "console.log")
    seen = watch.ReportWatch(console.path, lambda: console.quiet)
    console.write(SPLAT[:TASK_END + 1])   # the report, then the guest says nothing more
    first = seen.poll()
    if first is None:                     # the scanner keeps it open: quiet decides
        console.quiet = watch.QUIET_S + 0.5
        first = seen.poll()
    assert first is not None and first.title == "possible deadlock in try_to_unuse"


def test_a_report_that_keeps_growing_is_cut_at_the_longest(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(watch.time, "monotonic", lambda: clock[0])
    console = Console(tmp_path / "console.log")
    seen = watch.ReportWatch(console.path, lambda: console.quiet)
    console.write(SPLAT[:HEADER + 5])
    assert seen.poll() is None
    clock[0] += watch.LONGEST_S - 1
    assert seen.poll() is None                    # the guest never falls quiet
    clock[0] += 1.5
    result = seen.poll()
    assert result is not None and result.why == "longest"
    assert result.complete_at - result.header_at == pytest.approx(watch.LONGEST_S + 0.5)


def test_a_clean_console_never_stops_the_storm(tmp_path):
    clean = (Path(__file__).parent / "data" / "consoles" / "x86_64-clean.log").read_text()
    console = Console(tmp_path / "console.log")
    console.quiet = 100.0
    seen = watch.ReportWatch(console.path, lambda: console.quiet)
    console.write(clean.split("\n"))
    assert seen.poll() is None
    seen.hook()   # raises nothing
