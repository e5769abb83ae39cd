"""One pre-filter over every header the table knows: where to look closely.

Most of a console log is not a report. Instead of matching each line
against every header, the scanner asks for the next position where one of
a few needles occurs; every group header contains one of them
(tests/test_report_stream.py checks that), so a line without a needle
cannot open a report and is skipped with C-speed search.

Each needle is a scan of the whole text, so there are as few as can be:
headers are grouped by a shared leading literal, which sre finds with
its literal-prefix search (several GB/s), and the rest of the header is
checked in C by the same regex, before or behind that literal. A regex
without such a literal would be a slow per-character scan. The few long
ones that share nothing are plain strings for str.find. The position a
needle gives is somewhere in the header's line, which is all the scanner
needs.
"""
from __future__ import annotations

import heapq
import re

_REPLAYING = "** replaying previous"
NEEDLES: tuple[str | re.Pattern, ...] = (
    re.compile("B(?:UG|ooting the kernel)"),  # BUG:, kernel BUG, Kernel BUG, BUG kmalloc-
    re.compile("W(?:ARNING:|atchdog detected hard LOCKUP)"),
    re.compile("I(?:NFO:|nternal error:)"),
    re.compile("U(?:BSAN:|nable to handle kernel|nhandled fault:)"),
    re.compile("panic(?::|ked(?<=rust_kernel: panicked)|(?<=Kernel panic)|(?<=trusty: panic))"),
    re.compile("fault(?:(?<=general protection fault)|(?<=PANIC: double fault))"),
    re.compile("error: (?:(?<=divide error: )|(?<=divide_error: )|(?<=fatal error: )runtime)"),
    re.compile("VFS: (?:Close: file count is 0|Busy inodes after unmount)"),
    re.compile("SYZFA"),
    re.compile("in(?:valid opcode: |t3: )"),
    "stack segment: ", "Alignment trap:", "unregister_netdevice: waiting for",
    # Not a header, but the scanner must see it: printk re-prints a torn line.
    _REPLAYING,
)
# The header needles over undecoded bytes (all are ASCII, and a decoded
# piece holds a needle exactly when its bytes do): a piece of log with
# none of them, read while no report is open, need not be decoded at all
# (a torn-line replay there has no report to drop).
_BYTE_NEEDLES = tuple(n.encode() if isinstance(n, str) else re.compile(n.pattern.encode())
                      for n in NEEDLES if n is not _REPLAYING)


def has_needle(piece: bytes) -> bool:
    """Does any header needle occur in the piece?"""
    return any((n in piece) if isinstance(n, bytes) else n.search(piece) is not None for n in _BYTE_NEEDLES)


# A line with a printk timestamp (the multi-line form of lines._PREFIX's start).
TIMESTAMPED = re.compile(r"(?m)^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:[^\n]* login: )?"
                         r"(?:[^\[\]\n]{0,64}[#$] )?(?:<[0-9]+>)?\[ *[0-9]+\.[0-9]+\]")
_NOWHERE = 1 << 62


class Finder:
    """The next needle position in one text, each needle searched at most
    once per occurrence (its next position is remembered, in a heap)."""

    def __init__(self, text: str, needles: tuple[str | re.Pattern, ...] = NEEDLES) -> None:
        self.text = text
        self.needles = needles
        self.heap = [(-1, i) for i in range(len(needles))]  # (next position, needle); -1: not searched
        self.best = -1  # the answer for every pos up to it

    def next(self, pos: int) -> int:
        """The smallest position >= pos where a needle starts, or -1."""
        if pos <= self.best:
            return -1 if self.best == _NOWHERE else self.best
        heap, text = self.heap, self.text
        while heap[0][0] < pos:
            needle = self.needles[heap[0][1]]
            if isinstance(needle, str):
                found = text.find(needle, pos)
            else:
                match = needle.search(text, pos)
                found = match.start() if match is not None else -1
            heapq.heapreplace(heap, (found if found >= 0 else _NOWHERE, heap[0][1]))
        self.best = heap[0][0]
        return -1 if self.best == _NOWHERE else self.best
