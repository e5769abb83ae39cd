"""Turning one report's text into a title, a frame and a corruption verdict.

The text is the report's own lines (prefixes stripped, other CPUs'
interleaved lines removed). Every format of the report's header group is
tried; the format whose title regex matches earliest in the text wins,
and ties go to the format listed first.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .frames import guilty_frame
from .patterns import FRAME_LINE_RE, STACK_START, Format, Group

CORRUPTED_NO_FRAMES = "extracted no frames"
# Timestamps merged into the middle of a title mean two lines got mixed.
_TIMESTAMP_IN_TITLE = re.compile(r"\[ *[0-9]+\.[0-9]+\]")


@dataclass(frozen=True)
class Description:
    title: str  # raw, not yet normalised
    alt_titles: tuple[str, ...]
    frame: str
    corrupted_reason: str
    format: Format | None


def describe(lines: Sequence[str], group: Group) -> Description:
    text = "\n".join(lines) + "\n"
    start = len(text)
    title, frame, reason = "", "", ""
    alt: tuple[str, ...] = ()
    chosen: Format | None = None
    matched_title = False
    for fmt in group.formats:
        match = fmt.title.search(text)
        if match is None or match.start() > start:
            continue
        if match.start() == start and title:
            continue
        if match.start() < start:
            title, frame, chosen, start, alt = "", "", None, match.start(), ()
        matched_title = True
        if fmt.report is not None:
            match = fmt.report.search(text)
            if match is None:
                continue
        args = [g or "" for g in match.groups()]
        reason = ""
        frame = ""
        if fmt.stack is not None:
            frame, ok = guilty_frame(text[match.start():].split("\n"), fmt.stack)
            if not ok:
                reason = CORRUPTED_NO_FRAMES
            args.append(frame)
        title = fmt.fmt.format(*args)
        alt = tuple(a.format(*args) for a in fmt.alt)
        chosen = fmt
    if not title:
        # The header matched but no format fits: use the header line as is.
        if matched_title:
            reason = "matched title but not report regexp"
        pos = text.find(group.header)
        if pos < 0:
            pos = 0
        title = text[pos:text.find("\n", pos)]
    if not reason and chosen is not None and chosen.corrupted:
        reason = "report format is marked as corrupted"
    if not reason:
        reason = _corruption(title, text, chosen)
    return Description(title, alt, frame, reason, chosen)


def _corruption(title: str, text: str, fmt: Format | None) -> str:
    """Why the report looks truncated or mixed, or "" if it looks whole."""
    if _TIMESTAMP_IN_TITLE.search(title):
        return "title matches corrupted regexp"
    if fmt is None or fmt.no_stack:
        return ""
    if not any(k in text for k in ("Call Trace", "Call trace", "backtrace", "Backtrace")):
        # riscv and KFENCE print frames without a heading: frames suffice.
        if not any(FRAME_LINE_RE.search(line) for line in text.split("\n")):
            return "no stack trace in report"
        return ""
    # After each stack keyword at least one frame must follow soon.
    for key in STACK_START:
        match = key.search(text)
        if match is None:
            continue
        following = text[match.start():].split("\n")[1:16]
        if len(following) < 3:
            return "call trace is missed"
        found = False
        for line in following:
            if any(k.search(line) for k in STACK_START):
                break  # the next stack starts before this one had a frame
            if "(stack is not available)" in line or FRAME_LINE_RE.search(line):
                found = True
                break
        if not found:
            return "no frames in a stack trace"
    return ""
