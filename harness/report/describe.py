"""Turning one report's text into a title, a frame and a corruption verdict.

The text is the report's own lines (prefixes stripped, other CPUs'
interleaved lines removed). Every format of the report's header group is
tried; the format whose title regex matches earliest in the text wins,
and ties go to the format listed first.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from .frames import CORRUPTED, FRAME_RES, key_frames
from .patterns import STACK_START, STACK_START_ANY, Format, Group

CORRUPTED_NO_FRAMES = "extracted no frames"
# Timestamps merged into the middle of a title mean two lines got mixed.
_TIMESTAMP_IN_TITLE = re.compile(r"\[ *[0-9]+\.[0-9]+\]")
# A frame line with or without PCs (riscv, KFENCE) or arm32's 'a from b'.
_BARE_FRAME = re.compile(r"(?m)^ *(?:\[<?[0-9a-f]+>?\] ?){0,2} *[a-zA-Z0-9_.]+"
                         r"(?:\+0x[0-9a-f]+/0x[0-9a-f]+| \[\w+\] from | from )")


@dataclass(frozen=True)
class Description:
    title: str  # raw, not yet normalised
    alt_titles: tuple[str, ...]
    frame: str
    corrupted_reason: str
    format: Format | None


def describe(joined: str, group: Group) -> Description:
    """The description of a report whose lines, joined by '\\n', are `joined`."""
    text = joined + "\n"
    start = len(text)
    title, frame, reason = "", "", ""
    alt: tuple[str, ...] = ()
    chosen: Format | None = None
    matched_title = False
    for fmt, match in zip(group.formats, _title_matches(group, text), strict=True):
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
            keys, ok = key_frames(text[text.rfind("\n", 0, match.start()) + 1:], fmt.stack)
            if not ok:
                reason = CORRUPTED_NO_FRAMES
            frame = keys[0] if keys else CORRUPTED
            args.extend(keys)
        title = _format(fmt.fmt, args)
        alt = tuple(_format(a, args) for a in fmt.alt)
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


def _title_matches(group: Group, text: str) -> list[re.Match | None]:
    """Each format's earliest title match. The header line nearly always
    holds the winner, so one-line title regexes are first tried on it
    alone; only when nothing matches there is the whole text searched."""
    head_end = text.find("\n")
    head = text[:head_end] if head_end >= 0 else text
    matches = [fmt.title.search(head) if _one_line(fmt.title.pattern) else fmt.title.search(text)
               for fmt in group.formats]
    if any(m is not None and m.start() < len(head) for m in matches):
        return matches
    return [fmt.title.search(text) for fmt in group.formats]


@cache  # keyed on the pattern's text: hashing a re.Pattern hashes its compiled code
def _one_line(pattern: str) -> bool:
    """Can the regex only match within one line?"""
    return not any(s in pattern for s in ("\\n", "\\s", "[^", "$"))


def _format(template: str, args: list[str]) -> str:
    """str.format, but a missing argument reads as Go's fmt prints it."""
    try:
        return template.format(*args)
    except IndexError:
        return template.format(*(args + ["%!v(BADINDEX)"] * 4))


# A literal each of patterns.STACK_START's regexes needs, to skip hopeless searches.
_STACK_START_LITERALS = ("Call ", "Allocated:", "Allocated by task", "Freed:", "Freed by task",
                         " backtrace", "Backtrace:", "Uninit was stored")


def _corruption(title: str, text: str, fmt: Format | None) -> str:
    """Why the report looks truncated or mixed, or "" if it looks whole
    (syzkaller's isCorrupted)."""
    if _TIMESTAMP_IN_TITLE.search(title):
        return "title matches corrupted regexp"
    if fmt is None or fmt.no_stack:
        return ""
    # After each stack keyword at least one frame must follow soon.
    # Ours: riscv and arm32 (and KFENCE) print frames with no keyword
    # above them; frames alone are a stack trace there.
    has_stack = _BARE_FRAME.search(text) is not None
    for key, literal in zip(STACK_START, _STACK_START_LITERALS, strict=True):
        match = key.search(text) if literal in text else None
        if match is None:
            continue
        end = match.start()
        for _ in range(16):
            end = text.find("\n", end + 1)
            if end < 0:
                break
        following = (text[match.start():] if end < 0 else text[match.start():end]).split("\n")
        if len(following) < 4:
            return "call trace is missed"
        found = False
        for line in following[1:16]:
            if any(lit in line for lit in _STACK_START_LITERALS) and STACK_START_ANY.search(line):
                break  # the next stack starts before this one had a frame
            if "(stack is not available)" in line or any(r.search(line) for r in FRAME_RES):
                found = True
                break
        if not found:
            return "no frames in a stack trace"
        has_stack = True
    return "" if has_stack else "no stack trace in report"
