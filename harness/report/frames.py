"""Finding the frame a report's title names.

Most titles name the first stack frame that is not part of the reporting,
locking or library machinery. Stalls and hangs are special: the CPU is
caught at a random point of a loop, so we name a frame relative to a
known entry point (the syscall, the work item) instead, which keeps the
title stable between occurrences of the same bug.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from .patterns import (
    CORRUPTING_LINES,
    FRAME_RE,
    FRAME_STRIP_PREFIXES,
    PARSE,
    SKIP_FRAMES,
    STACK_START,
    STALL_ANCHORS,
    SYSCALL_PREFIXES,
    StackSpec,
)

# arm32 unwinder: '[<8028bd5c>] (dup_fd) from [<80132060>] (copy_process+0x58c/0x1844)'
_ARM32_FRAME = re.compile(r"^\[<[0-9a-f]+>\] \(([a-zA-Z0-9_]+)(?:[.+][^)]*)?\) from ")
# arm32 without symbol offset: ' (func) from' also appears with 'Function entered at'.
_ARM32_ENTERED = re.compile(r"^Function entered at \[<[0-9a-f]+>\] ([a-zA-Z0-9_]+)\+")
# powerpc: '[c0000000fe1e3b50] [c000000000a8b3a4] func+0x44/0x90'
_PPC_FRAME = re.compile(r"^\[[0-9a-f]+\] \[[0-9a-f]+\] ([a-zA-Z0-9_]+)(?:\.|\+)")
# arm32 since 5.x: ' mmlock_vma_peek [mmlock] from mmlock_ioctl+0x1c4/0x350 [mmlock]'
_ARM32_FROM = re.compile(r"^ ?([a-zA-Z0-9_]+)(?:\.[a-z0-9.]+)?(?: \[[a-z0-9_]+\])? from ")
FRAME_RES = (FRAME_RE, _ARM32_FRAME, _PPC_FRAME, _ARM32_ENTERED, _ARM32_FROM)


@lru_cache(maxsize=256)
def _skip_re(extra: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(SKIP_FRAMES + extra))


def _match_frame(line: str) -> re.Match | None:
    for regex in FRAME_RES:
        match = regex.search(line)
        if match is not None:
            return match
    return None


def _capture(match: re.Match | None, skip: re.Pattern, out: list[str]) -> None:
    """Append the first non-skipped captured name of `match` to `out`."""
    if match is None:
        return
    for name in match.groups():
        if name is not None and skip.search(name) is None:
            for prefix in FRAME_STRIP_PREFIXES:
                if name.startswith(prefix):
                    name = name[len(prefix):]
                    break
            out.append(name)
            return


def _walk(lines: Sequence[str], parts: tuple, skip: re.Pattern) -> tuple[list[str], bool]:
    """Apply the parts of a StackSpec in order; return kept frames and
    whether no corrupting line was crossed."""
    frames: list[str] = []
    ok = True
    i, n = 0, len(lines)
    index = 0
    while index < len(parts):
        part = parts[index]
        index += 1
        if part is PARSE:
            following = parts[index] if index < len(parts) else None
            while i < n:
                line = lines[i]
                i += 1
                if any(r.search(line) for r in CORRUPTING_LINES):
                    ok = False
                    break
                if any(r.search(line) for r in STACK_START):
                    break  # a new stack begins: hand over to the next part
                if following is not None and following is not PARSE:
                    match = following.search(line)
                    if match is not None:
                        _capture(match, skip, frames)
                        index += 1
                        break
                _capture(_match_frame(line), skip, frames)
            continue
        while i < n:
            line = lines[i]
            i += 1
            if any(r.search(line) for r in CORRUPTING_LINES):
                ok = False
                break
            match = part.search(line)
            if match is not None:
                _capture(match, skip, frames)
                break
    return frames, ok


def stall_frame(frames: list[str]) -> str:
    """Name the frame just above the first dispatch/entry-point frame."""
    if not frames:
        return ""
    prev = frames[0]
    for frame in frames:
        if any(a.search(frame) for a in STALL_ANCHORS):
            if "smp_call_function" in frame:
                prev = "smp_call_function"
            for prefix in SYSCALL_PREFIXES:
                if prev.startswith(prefix):
                    prev = prev[len(prefix):]
            return prev
        prev = frame
    # No dispatch frame seen (6.x prints only the stalled CPU's registers
    # before a kthread's trace): the interrupted function is the culprit.
    return frames[0]


_HANG_ANCHORS = {"rtnl_lock": "", "synchronize_rcu": "synchronize_rcu",
                 "synchronize_srcu": "synchronize_rcu", "synchronize_net": "synchronize_rcu",
                 "synchronize_sched": "synchronize_rcu"}
_HANG_SKIP = ("sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread", "wait",
              "synchronize", "context_switch", "__switch_to", "cancel_delayed_work", "rcu_barrier")


def hang_frame(frames: list[str]) -> str:
    """Hung tasks are victims: bucket the common waits (RTNL, RCU grace
    periods), otherwise name the first frame that is not a wait primitive."""
    for frame in frames:
        for anchor, replacement in _HANG_ANCHORS.items():
            if anchor in frame:
                return replacement or frame
    for frame in frames:
        if not any(s in frame for s in _HANG_SKIP):
            return frame
    return ""


_EXTRACTORS = {"": lambda frames: frames[0] if frames else "", "stall": stall_frame,
               "hang": hang_frame}


def guilty_frame(lines: Sequence[str], spec: StackSpec) -> tuple[str, bool]:
    """The frame a title should name, and whether extraction succeeded."""
    skip = _skip_re(spec.skip)
    pick = _EXTRACTORS[spec.extractor]
    frames, ok = _walk(lines, spec.parts, skip)
    frame = pick(frames)
    for alternative in (spec.alt_parts, spec.last_resort, spec.final_parts):
        if (frame and ok) or not alternative:
            continue
        frames2, ok2 = _walk(lines, alternative, skip)
        frame2 = pick(frames2)
        if frame2:
            return frame2, ok2
    return (frame, ok) if frame else ("corrupted", False)


def stack_names(lines: Sequence[str], limit: int = 64) -> tuple[str, ...]:
    """All frame names of the report's first stack trace, for Report.frames."""
    names: list[str] = []
    started = False
    for line in lines:
        if not started:
            started = any(r.search(line) for r in STACK_START[:2])
            continue
        match = _match_frame(line)
        if match is not None:
            names.append(next(g for g in match.groups() if g is not None))
            if len(names) >= limit:
                break
        elif names and any(r.search(line) for r in STACK_START):
            break
    return tuple(names)
