"""Finding the frame a report's title names (syzkaller's extractStackFrame).

Most titles name the first stack frame that is not part of the reporting,
locking or library machinery (skips.py). Stalls and hangs are special:
the CPU is caught at a random point of a loop, so we name a frame relative
to a known entry point (the syscall, the work item) instead, which keeps
the title stable between occurrences of the same bug.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from functools import lru_cache

from .patterns import (
    ARM_FRAME_RE,
    CALL_TRACE,
    CORRUPTING_LINE,
    FRAME_RE,
    PARSE,
    RIP,
    STACK_START_ANY,
    WARNING_START,
    Part,
    StackSpec,
)
from .skips import HANG_ANCHORS, HANG_SKIP, SKIP_FRAMES, STALL_ANCHORS, strip_frame

CORRUPTED = "corrupted"
# True parses every stack line by line, as syzkaller does; the default stops
# at a stack's key frame. The tests check that both give the same reports.
PARSE_WHOLE_STACKS = False
# Ours, beyond syzkaller's frame lines: arm32 since 5.x prints
# ' mmlock_vma_peek [mmlock] from mmlock_ioctl+0x1c4/0x350 [mmlock]'.
_ARM32_FROM = re.compile(r"^ ?([a-zA-Z0-9_]+)(?:\.[a-z0-9.]+)?(?: \[[a-z0-9_]+\])? from ")
FRAME_RES = (FRAME_RE, ARM_FRAME_RE, _ARM32_FROM)
# The same, as one regex over many lines (each alternative at a line start,
# tried in the order above, each anchored at the line start).
FRAME_LINES = re.compile("(?m)^(?:" + "|".join(r.pattern[1:] for r in FRAME_RES) + ")")


class _Skip:
    """A format's skip patterns, with the answer for each frame name kept.
    (Not an lru_cache keyed on the regex: hashing a re.Pattern hashes its
    whole compiled code, microseconds for this one.)"""

    __slots__ = ("regex", "seen")
    MAX_SEEN = 1 << 16

    def __init__(self, regex: re.Pattern) -> None:
        self.regex = regex
        self.seen: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        hit = self.seen.get(name)
        if hit is None:
            if len(self.seen) >= self.MAX_SEEN:
                self.seen.clear()
            hit = self.seen[name] = self.regex.search(name) is not None
        return hit


class _SkipBoth(_Skip):
    """The shared skip list or a format's own: two regexes, so that the
    long shared one is compiled once (about 12 ms), not once per format."""

    __slots__ = ("shared",)

    def __init__(self, shared: _Skip, extra: re.Pattern) -> None:
        super().__init__(extra)
        self.shared = shared

    def __call__(self, name: str) -> bool:
        hit = self.seen.get(name)
        if hit is None:
            if len(self.seen) >= self.MAX_SEEN:
                self.seen.clear()
            hit = self.seen[name] = self.shared(name) or self.regex.search(name) is not None
        return hit


@lru_cache(maxsize=1)
def _shared_skip() -> _Skip:
    return _Skip(re.compile("|".join(SKIP_FRAMES)))


@lru_cache(maxsize=256)
def _skip_re(extra: tuple[str, ...]) -> _Skip:
    return _SkipBoth(_shared_skip(), re.compile("|".join(extra))) if extra else _shared_skip()


def _append(frames: list[str], match: re.Match | None, skipped: _Skip) -> None:
    """Every captured name of `match` that is not skipped (syzkaller's appendStackFrame)."""
    if match is None:
        return
    for name in match.groups():
        if name and not skipped(name):
            frames.append(name)


def stall_frame(frames: list[str]) -> str:
    """The frame just above the first dispatch/entry-point frame; none without one."""
    if not frames:
        return ""
    prev = frames[0]
    for frame in frames:
        if STALL_ANCHORS.search(frame):
            return "smp_call_function" if "smp_call_function" in frame else prev
        prev = frame
    return ""


def hang_frame(frames: list[str]) -> str:
    """Hung tasks are victims: bucket the common waits (RTNL, RCU grace
    periods), otherwise name the first frame that is not a wait primitive."""
    for frame in frames:
        for anchor, replacement in HANG_ANCHORS.items():
            if anchor in frame:
                return replacement or frame
    for frame in frames:
        if not any(s in frame for s in HANG_SKIP):
            return frame
    return ""


def _first_frame(frames: list[str]) -> str:
    return frames[0] if frames else ""


_EXTRACTORS: dict[str, Callable[[list[str]], str]] = {"": _first_frame, "stall": stall_frame, "hang": hang_frame}


class _Text:
    """A report's text with what the walk asks of it often, found once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.corrupting = [m.start() for m in _CORRUPTING_ML.finditer(text)] if "should_fail" in text else []

    def line_end(self, at: int) -> int:
        end = self.text.find("\n", at)
        return len(self.text) if end < 0 else end

    def line_start(self, at: int) -> int:
        return self.text.rfind("\n", 0, at) + 1

    def corrupting_from(self, pos: int) -> int:
        """The start of the first corrupting line at or after pos, or -1."""
        index = bisect_left(self.corrupting, pos)
        return self.corrupting[index] if index < len(self.corrupting) else -1

    def stack_start_from(self, pos: int) -> int:
        """The start of the first line at or after pos with a stack keyword, or -1."""
        best = -1
        for literal in _STACK_LITERALS:
            at = self.text.find(literal, pos)
            while at >= 0 and (best < 0 or at < best):
                start, end = self.line_start(at), self.line_end(at)
                if STACK_START_ANY.search(self.text[start:end]):
                    best = start
                    break
                at = self.text.find(literal, end + 1)
        return best


_CORRUPTING_ML = re.compile("(?m)" + CORRUPTING_LINE.pattern)
# Every stack keyword contains one of these (STACK_START in patterns.py).
_STACK_LITERALS = ("Call Trace", "Call trace", "Allocated", "Freed", "acktrace", "Uninit was stored")


# Literals every match of these (alternation-led, so slow to search) part
# regexes contains: lines with none of them need not be tried.
_HINTS: dict[str, tuple[str, ...]] = {
    RIP.pattern: ("IP", "pc ", "PC is at"),
    CALL_TRACE.pattern: ("Call Trace:", "Call trace:", "Backtrace:"),
    WARNING_START.pattern: ("IP", "pc ", "PC is at", "--- interrupt:"),
}


def _search(doc: _Text, regex: re.Pattern, pos: int) -> re.Match | None:
    """regex.search(doc.text, pos) for a regex that matches within a line."""
    hints = _HINTS.get(regex.pattern)
    if hints is None:
        return regex.search(doc.text, pos)
    text = doc.text
    while True:
        found = [at for at in (text.find(h, pos) for h in hints) if at >= 0]
        if not found:
            return None
        start = max(doc.line_start(min(found)), pos)
        end = doc.line_end(start)
        match = regex.search(text, start, end)
        if match is not None:
            return match
        pos = end + 1


def _first(candidates: list[tuple[int, int]]) -> tuple[int, int]:
    """The earliest (line start, priority) of those found (start >= 0)."""
    found = [c for c in candidates if c[0] >= 0]
    return min(found) if found else (-1, -1)


def _walk(doc: _Text, parts: tuple[Part, ...], skip: _Skip,
          pick: Callable[[list[str]], str], first_only: bool) -> tuple[list[str], bool]:
    """One key frame per stack the parts describe, and whether all went well
    (syzkaller's extractStackFrameImpl, on the text rather than its lines).
    With `first_only` the rest of a stack is not parsed once its first frame
    is known, only searched for where it ends."""
    text = doc.text
    raw: list[str] = []
    keys: list[str] = []
    ok = True
    stacks = 0
    i, n = 0, len(text)
    index = 0
    while True:
        if index == len(parts) or (parts[index] is PARSE and stacks > 0):
            key = pick([strip_frame(raw[0])] if raw and pick is _first_frame else [strip_frame(f) for f in raw])
            if not key:
                key, ok = CORRUPTED, False
            keys.append(key)
            raw = []
        if index == len(parts):
            return keys, ok
        part = parts[index]
        following = parts[index + 1] if index + 1 < len(parts) else None
        if part is PARSE:
            # The stack runs to the first line that is corrupting, starts
            # another stack or matches the part after PARSE; its frames are
            # the frame lines before that one.
            stacks += 1
            found = _search(doc, following, i) if isinstance(following, re.Pattern) else None
            at, what = _first([(doc.corrupting_from(i), 0), (doc.stack_start_from(i), 1),
                               (doc.line_start(found.start()) if found else -1, 2)])
            for frame in FRAME_LINES.finditer(text, i, n if at < 0 else at):
                _append(raw, frame, skip)
                if first_only and raw:
                    break
            i = n if at < 0 else doc.line_end(at) + 1
            if what == 0:
                ok = False
            elif what == 2 and found is not None:
                _append(raw, found, skip)
                index += 1
        elif isinstance(part, re.Pattern):
            match = _search(doc, part, i)
            at, what = _first([(doc.corrupting_from(i), 0),
                               (doc.line_start(match.start()) if match else -1, 1)])
            if at < 0:
                i = n
            else:
                i = doc.line_end(at) + 1
                if what == 0:
                    ok = False
                elif match is not None:
                    _append(raw, match, skip)
        index += 1


def key_frames(text: str, spec: StackSpec) -> tuple[list[str], bool]:
    """The frames a title names, and whether extraction succeeded."""
    skip = _skip_re(spec.skip)
    pick = _EXTRACTORS[spec.extractor]
    doc = _Text(text)
    first_only = not spec.extractor and not PARSE_WHOLE_STACKS
    keys, ok = _walk(doc, spec.parts, skip, pick, first_only)
    for parts in (spec.parts2, spec.parts3):
        if ok or not parts:
            break
        keys, ok = _walk(doc, parts, skip, pick, first_only)
    return keys, ok


def stack_names(lines: Sequence[str], limit: int = 64) -> tuple[str, ...]:
    """All frame names of the report's first stack trace, for Report.frames:
    the frame lines after the first 'Call Trace' line, up to the next stack
    keyword after the first frame."""
    start = next((k for k, line in enumerate(lines)
                  if line.startswith(("Call Trace", "Call trace")) or "Call Trace:" in line), None)
    if start is None:
        return ()
    doc = _Text("\n".join(lines[start + 1:]))
    frames = FRAME_LINES.finditer(doc.text)
    first = next(frames, None)
    if first is None:
        return ()
    end = doc.stack_start_from(doc.line_end(first.start()) + 1)
    names = [_name(first)]
    for match in FRAME_LINES.finditer(doc.text, doc.line_end(first.start()) + 1,
                                      len(doc.text) if end < 0 else end):
        if len(names) >= limit:
            break
        names.append(_name(match))
    return tuple(names)


def _name(match: re.Match) -> str:
    return next(g for g in match.groups() if g is not None)
