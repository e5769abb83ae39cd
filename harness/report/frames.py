"""Finding the frame a report's title names (syzkaller's extractStackFrame).

Most titles name the first stack frame that is not part of the reporting,
locking or library machinery (skips.py). Stalls and hangs are special:
the CPU is caught at a random point of a loop, so we name a frame relative
to a known entry point (the syscall, the work item) instead, which keeps
the title stable between occurrences of the same bug.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

from .patterns import (
    ARM_FRAME_RE,
    CORRUPTING_LINE,
    FRAME_RE,
    PARSE,
    STACK_START_ANY,
    Part,
    StackSpec,
)
from .skips import HANG_ANCHORS, HANG_SKIP, SKIP_FRAMES, STALL_ANCHORS, strip_frame

CORRUPTED = "corrupted"
# Ours, beyond syzkaller's frame lines: arm32 since 5.x prints
# ' mmlock_vma_peek [mmlock] from mmlock_ioctl+0x1c4/0x350 [mmlock]'.
_ARM32_FROM = re.compile(r"^ ?([a-zA-Z0-9_]+)(?:\.[a-z0-9.]+)?(?: \[[a-z0-9_]+\])? from ")
FRAME_RES = (FRAME_RE, ARM_FRAME_RE, _ARM32_FROM)


@lru_cache(maxsize=256)
def _skip_re(extra: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(SKIP_FRAMES + extra))


def _match_frame(line: str) -> re.Match | None:
    for regex in FRAME_RES:
        match = regex.search(line)
        if match is not None:
            return match
    return None


def _append(frames: list[str], match: re.Match | None, skip: re.Pattern) -> None:
    """Every captured name of `match` that is not skipped (syzkaller's appendStackFrame)."""
    if match is None:
        return
    for name in match.groups():
        if name and skip.search(name) is None:
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


_EXTRACTORS: dict[str, Callable[[list[str]], str]] = {
    "": lambda frames: frames[0] if frames else "", "stall": stall_frame, "hang": hang_frame}


def _walk(lines: Sequence[str], parts: tuple[Part, ...], skip: re.Pattern,
          pick: Callable[[list[str]], str]) -> tuple[list[str], bool]:
    """One key frame per stack the parts describe, and whether all went well."""
    raw: list[str] = []
    keys: list[str] = []
    ok = True
    stacks = 0
    i, n = 0, len(lines)
    index = 0
    while True:
        if index == len(parts) or (parts[index] is PARSE and stacks > 0):
            key = pick([strip_frame(f) for f in raw])
            if not key:
                key, ok = CORRUPTED, False
            keys.append(key)
            raw = []
        if index == len(parts):
            return keys, ok
        part = parts[index]
        if part is PARSE:
            stacks += 1
            following = parts[index + 1] if index + 1 < len(parts) else None
            while i < n:
                line = lines[i]
                i += 1
                if CORRUPTING_LINE.search(line):
                    ok = False
                    break
                if STACK_START_ANY.search(line):
                    break
                if isinstance(following, re.Pattern):
                    match = following.search(line)
                    if match is not None:
                        _append(raw, match, skip)
                        index += 1
                        break
                _append(raw, _match_frame(line), skip)
        else:
            assert isinstance(part, re.Pattern)
            while i < n:
                line = lines[i]
                i += 1
                if CORRUPTING_LINE.search(line):
                    ok = False
                    break
                match = part.search(line)
                if match is not None:
                    _append(raw, match, skip)
                    break
        index += 1


def key_frames(lines: Sequence[str], spec: StackSpec) -> tuple[list[str], bool]:
    """The frames a title names, and whether extraction succeeded."""
    skip = _skip_re(spec.skip)
    pick = _EXTRACTORS[spec.extractor]
    keys, ok = _walk(lines, spec.parts, skip, pick)
    for parts in (spec.parts2, spec.parts3):
        if ok or not parts:
            break
        keys, ok = _walk(lines, parts, skip, pick)
    return keys, ok


def stack_names(lines: Sequence[str], limit: int = 64) -> tuple[str, ...]:
    """All frame names of the report's first stack trace, for Report.frames."""
    names: list[str] = []
    started = False
    for line in lines:
        if not started:
            started = line.startswith(("Call Trace", "Call trace")) or "Call Trace:" in line
            continue
        match = _match_frame(line)
        if match is not None:
            names.append(next(g for g in match.groups() if g is not None))
            if len(names) >= limit:
                break
        elif names and STACK_START_ANY.search(line):
            break
    return tuple(names)
