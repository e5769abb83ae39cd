"""One pre-filter over every header the table knows: where to look closely.

Most of a console log is not a report. Instead of matching each line
against every header, the scanner asks for the next position where one of
a few literal needles occurs; every group header contains one of them
(tests/test_report_stream.py checks that), so a line without a needle
cannot open a report and is skipped with C-speed substring search. The
needles are long where they can be (str.find is fastest on long needles)
and short only where several headers share them ('BUG').
"""
from __future__ import annotations

import re

# Short needles are regexes (sre's literal-prefix search beats str.find on
# them); long ones are plain strings. Shared prefixes share one scan.
NEEDLES: tuple[str | re.Pattern, ...] = (
    re.compile("BUG"),  # BUG:, kernel BUG, Kernel BUG, BUG kmalloc-
    re.compile("WARNING:"), re.compile("INFO:"), re.compile("UBSAN:"), re.compile("SYZFA"),
    re.compile("Un(?:able to handle kernel|handled fault:)"), re.compile("divide[ _]error:"),
    re.compile("VFS: (?:Close: file count is 0|Busy inodes after unmount)"),
    "general protection fault", "stack segment: ", "Kernel panic", "PANIC: double fault",
    "rust_kernel: panicked", "invalid opcode:", "Internal error:", "Alignment trap:",
    "Watchdog detected hard LOCKUP", "Booting the kernel", "unregister_netdevice: waiting for",
    "trusty: panic", "fatal error: runtime", re.compile("panic:"),
    # Not a header, but the scanner must see it: printk re-prints a torn line.
    "** replaying previous",
)
# A line with a printk timestamp (the multi-line form of lines._PREFIX's start).
TIMESTAMPED = re.compile(r"(?m)^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:[^\n]* login: )?"
                         r"(?:[^\[\]\n]{0,64}[#$] )?(?:<[0-9]+>)?\[ *[0-9]+\.[0-9]+\]")
_NOWHERE = 1 << 62


class Finder:
    """The next needle position in one text, each needle searched at most
    once per occurrence (its next position is remembered)."""

    def __init__(self, text: str, needles: tuple[str | re.Pattern, ...] = NEEDLES) -> None:
        self.text = text
        self.needles = needles
        self.next_at = [-1] * len(needles)  # -1: not searched from here yet
        self.best = -1  # the answer for every pos up to it

    def next(self, pos: int) -> int:
        """The smallest position >= pos where a needle starts, or -1."""
        if pos <= self.best:
            return -1 if self.best == _NOWHERE else self.best
        best = _NOWHERE
        text = self.text
        for i, at in enumerate(self.next_at):
            if at < pos:
                needle = self.needles[i]
                if isinstance(needle, str):
                    found = text.find(needle, pos)
                else:
                    match = needle.search(text, pos)
                    found = match.start() if match is not None else -1
                at = self.next_at[i] = found if found >= 0 else _NOWHERE
            if at < best:
                best = at
        if best == _NOWHERE:
            self.best = _NOWHERE
            return -1
        self.best = best
        return best
