"""Regex building blocks and the data types the report table is made of.

The table (table.py) describes each report kind as data: which header
substring opens it, which regex recognises a title, how the title is
formatted, and how the "guilty" frame is found in the stack. This module
holds the shared vocabulary: the {{FUNC}}/{{PC}}/{{SRC}} macros, frame
and stack-start lines (skips.py lists the frames that never name one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_MACROS = {
    "{{ADDR}}": r"0x[0-9a-f]+",
    # A program counter as x86/arm print it: [<ffffffff81000000>] or [<(null)>].
    "{{PC}}": r"\[\<?(?:0x)?[0-9a-f]+\>?\]",
    # A function name followed by '+0x..' or a '.isra.0'-style suffix.
    "{{FUNC}}": r"([a-zA-Z0-9_]+)(?:\.|\+)",
    "{{SRC}}": r"([a-zA-Z0-9-_/.]+\.[a-z]+:[0-9]+)",
}


def rx(pattern: str) -> re.Pattern:
    """Compile a pattern after expanding the table's macros."""
    for name, value in _MACROS.items():
        pattern = pattern.replace(name, value)
    return re.compile(pattern)


class _ParseStack:
    """Marker in StackSpec.parts: parse a stack trace from here on."""

    def __repr__(self) -> str:
        return "PARSE"


PARSE = _ParseStack()
Part = re.Pattern | _ParseStack


@dataclass(frozen=True)
class StackSpec:
    """How to find the frame a title names (syzkaller's stackFmt).

    `parts` are applied in order to the report's lines: a regex advances to
    the first line it matches (capturing frames if it has groups), PARSE
    collects frames until the next stack keyword or until the part after it
    matches. Each PARSE but the first, and the end, closes a stack and picks
    its key frame; the key frames are the title's last arguments. `parts2`
    is tried when `parts` found no frame. `skip` adds to the skip list.
    `extractor` picks the key frame: "" (first), "stall", "hang".
    """

    parts: tuple[Part, ...]
    parts2: tuple[Part, ...] = ()
    parts3: tuple[Part, ...] = ()  # ours: tried last, where syzkaller gives up
    skip: tuple[str, ...] = ()
    extractor: str = ""


@dataclass(frozen=True)
class Format:
    """One way a report of a header group can look (syzkaller's oopsFormat)."""

    title: re.Pattern
    fmt: str  # str.format template; {0}.. are captures, then the key frames
    report: re.Pattern | None = None  # must also match, else corrupted
    stack: StackSpec | None = None
    no_stack: bool = False  # report legitimately has no 'Call Trace'
    corrupted: bool = False  # a match means the header is mangled
    kind: str = ""  # overrides the kind derived from the title
    alt: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    """All formats that share one header substring (syzkaller's 'oops')."""

    header: str
    formats: tuple[Format, ...]
    suppress: tuple[re.Pattern, ...] = field(default_factory=tuple)


# Frame lines as printed by x86, arm64, riscv, powerpc (`func+0x1/0x2`),
# with up to two leading PCs (arm32 / old x86 / powerpc `[<...>] func+...`).
FRAME_RE = rx(r"^ *(?:{{PC}} ){0,2}{{FUNC}}")
# Old arm32: '[<8028bd5c>] (dup_fd) from [<80132060>] (copy_process+0x58c/0x1844)'
# names this frame and its caller (the top frame is only in LR otherwise).
ARM_FRAME_RE = rx(r"^ *{{PC}} \(([a-zA-Z0-9_.]+)\) from {{PC}} \({{FUNC}}")
FRAME_LINE_RE = re.compile(
    r"^ *(?:\[<?(?:[0-9a-f]+)>?\] ?){0,2}[ \t]+(?:[0-9]+:)?([a-zA-Z0-9_.]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)"
)
# The faulting instruction: x86 `RIP: 0010:func+0x..`, old `IP: [<..>] func`,
# arm/arm64 `pc : func+0x..` / `PC is at func+0x..`, powerpc `NIP [..] func`.
RIP_FRAME = (
    r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|(?:[0-9]+:)?0x[0-9a-f]+|"
    r"(?:[0-9]+:)?{{PC}} +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\))"
)
RIP = rx(RIP_FRAME)
# Where a WARNING's stack starts: the RIP line (x86, arm64 'pc :') or
# powerpc's '--- interrupt:' line.
WARNING_START = rx("(?:" + RIP_FRAME + r"|--- interrupt: [0-9]+ at {{FUNC}})")
CALL_TRACE = rx(r"(?:Call (?:T|t)race:)|(?:Backtrace:)")

# Lines that start a stack trace (a frame list follows).
STACK_START = (
    re.compile(r"Call (?:T|t)race"),
    re.compile(r"Allocated:"),
    re.compile(r"Allocated by task [0-9]+:"),
    re.compile(r"Freed:"),
    re.compile(r"Freed by task [0-9]+:"),
    re.compile(r"[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:"),  # but not lockdep's 'stack backtrace:'
    re.compile(r"Backtrace:"),
    re.compile(r"Uninit was stored to memory at"),
)
STACK_START_ANY = re.compile("|".join(r.pattern for r in STACK_START))

# Fault injection stacks get mixed into real reports; seeing one there
# means the frame we would pick may belong to the wrong stack.
CORRUPTING_LINE = re.compile(r"^( \[\<?(?:0x)?[0-9a-f]+\>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x")
