"""The value a parsed kernel report is. Shared by the parser, verdicts and results."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Text from the guest (console, SSH banner, command output, stressor fields,
# report titles) is untrusted: before it reaches a terminal, a log line, JSON,
# JUnit or HTML, printable() shows every character that could act instead of
# print as an escape (\x1b, \u202e): C0 and C1 controls (so every escape
# sequence loses its ESC or CSI), DEL, Unicode format characters (the bidi
# controls among them), line and paragraph separators, lone surrogates and
# noncharacters (U+FFFE, U+FFFF: not XML). Tab stays; newline stays only when
# asked for. A backslash is left alone, so printable(printable(t)) == printable(t).
_ESCAPED_RANGES = (
    (0x00, 0x08), (0x0B, 0x1F), (0x7F, 0x9F),           # C0 but tab and newline, DEL, C1
    (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD), (0x70F, 0x70F),
    (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F),   # bidi among them
    (0xD800, 0xDFFF),                                   # lone surrogates (surrogateescape)
    (0xFDD0, 0xFDEF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
    *((plane + 0xFFFE, plane + 0xFFFF) for plane in range(0, 0x110000, 0x10000)),  # noncharacters
)
def _escaped(code: int) -> str:
    if code < 0x100:
        return "\\n" if code == 0x0A else f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


# str.translate tables (about 2,500 code points): a 1 MB line of escapes costs
# tens of milliseconds, where a regex callback per character took seconds.
_TABLE = {code: _escaped(code) for lo, hi in _ESCAPED_RANGES for code in range(lo, hi + 1)}
_TABLE_NEWLINES = {**_TABLE, 0x0A: "\\n"}


def printable(text: str, newlines: bool = False) -> str:
    """Guest text made safe for a terminal, a log line, JSON, JUnit and HTML: every
    control, escape-sequence introducer, bidi control, lone surrogate and noncharacter
    shown escaped (ESC -> \\x1b, U+202E -> \\u202e); newlines kept only if `newlines`."""
    if text.isprintable():   # the common case, at C speed: nothing to escape
        return text
    return text.translate(_TABLE if newlines else _TABLE_NEWLINES)


@dataclass(frozen=True)
class Report:
    """One kernel report found in a console log.

    Lines are 1-based and inclusive, counted in the log as given (after
    splitting on '\\n'). `type` is syzkaller's crash type name (LOCKDEP,
    HANG, WARNING, BUG, ATOMIC_SLEEP, ...); `kind` is the harness's coarse
    class (lockdep, atomic-sleep, preempt, hang, rcu-stall, soft-lockup,
    warning, bug, oops, panic, kasan, ...).
    """

    title: str
    type: str
    kind: str
    start_line: int
    end_line: int
    frames: tuple[str, ...] = ()
    alt_titles: tuple[str, ...] = ()
    corrupted: bool = False
    corrupted_reason: str = ""
    primary: bool = True
    count: int = 1
    # The function the title names (syzkaller's Report.Frame: what follows
    # the title's last ' in '), and the source file syzkaller would blame
    # (its GuiltyFile), when the report's frames carry file:line.
    frame: str = ""
    guilty_file: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data["frames"] = list(self.frames)
        data["alt_titles"] = list(self.alt_titles)
        if not data["extra"]:
            del data["extra"]
        return data
