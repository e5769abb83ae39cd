"""Splitting one raw console line into its printk prefix and its text.

Serial consoles add noise that must not reach the report matchers: a
trailing '\\r', a `[  12.345678]` timestamp, an optional printk caller id
(`[T123]` for a task, `[C1]` for a CPU in interrupt context), a syslog level
`<4>`, the `** N printk messages dropped **` marker glued in front of the
next line, and sometimes a getty `login: ` or shell `/ # ` prompt (or any other
output) the kernel wrote after.
The caller id is kept as the line's *context*: with CONFIG_PRINTK_CALLER a
report's own lines can be told apart from lines other CPUs interleave.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

from .reader import decode

# Everything before the message text. Group 1 is the caller id if present.
_PREFIX = re.compile(
    r"^(?:\*\* [0-9]+ printk messages dropped \*\* )?"
    r"(?:.* login: )?"
    r"(?:[^\[\]]{0,64}[#$] )?"  # a guest shell prompt the kernel line landed after ('/ # ')
    r"(?:<[0-9]+>)?"
    r"\[ *[0-9]+\.[0-9]+\]"
    r"(\[ *[CT][0-9]+\])? ?"
)
# ... the same where no ' login: ' is (the '.*' before it reads the whole line, twice).
_PREFIX_NO_LOGIN = re.compile(_PREFIX.pattern.replace(r"(?:.* login: )?", "", 1))
# A printk prefix after other output on the same line (a userspace write the
# serial console interleaved, '...service [0m.[  288.564375][T21583] WARNING:'):
# the kernel's own six-digit timestamp and the space after it, anywhere.
_MIDLINE_PREFIX = re.compile(r"^.*?(?:<[0-9]+>)?\[ *[0-9]+\.[0-9]{6}\](\[ *[CT][0-9]+\])? ")
# The kernel has no timestamp but the dropped-messages marker still glues on.
_DROPPED = re.compile(r"^\*\* [0-9]+ printk messages dropped \*\* ")
# A stack frame the unwinder is not sure about (x86 ` ? func+0x1/0x2`).
_QUESTIONABLE = re.compile(r"^(?:\[<[0-9a-f]+>\])? ?\? ")

# Contexts: lines with a timestamp but no caller id share one context;
# lines without a timestamp at all (userspace, firmware) share another.
CONSOLE = "console"
NO_PREFIX = ""


class Line(NamedTuple):  # (a frozen dataclass is built three times slower, once per line fed)
    """One console line, split. `text` has prefix and '\\r' removed."""

    text: str
    context: str  # CONSOLE, NO_PREFIX, or a caller id such as '[T123]' / '[C1]'
    questionable: bool = False


@lru_cache(maxsize=256)  # a report's opener look-back splits the last few lines again
def split_line(raw: str) -> Line:
    """Split a raw line (without its '\\n') into context and message text."""
    if raw.endswith("\n"):
        raw = raw[:-1]
    # A serial console may emit '\r\n' or even '\r' in the middle of a line
    # when two writers race; only the trailing one is pure noise.
    raw = raw.rstrip("\r")
    if "\r" in raw:
        raw = raw.replace("\r", "")
    if "[" not in raw:
        match = None
    else:
        match = (_PREFIX if " login: " in raw else _PREFIX_NO_LOGIN).match(raw) or _MIDLINE_PREFIX.match(raw)
    if match is None:
        dropped = _DROPPED.match(raw)
        if dropped is not None:
            raw = raw[dropped.end():]
        context, text = NO_PREFIX, raw
    else:
        caller = match.group(1)
        context = (_CONTEXTS.get(caller) or _context(caller)) if caller else CONSOLE
        text = raw[match.end():]
    questionable = False
    if "<EOI>" not in text:
        q = _QUESTIONABLE.match(text) if "?" in text else None  # (a memchr first)
        if q is not None:
            questionable = True
            text = " " + text[q.end():]
        elif text.endswith(" (unreliable)"):  # powerpc's way of saying '?'
            questionable = True
            text = text[: -len(" (unreliable)")]
    return _new_line(Line, (text, context, questionable))  # (Line(...) without its Python-level __new__)


_new_line = tuple.__new__


def _context(caller: str) -> str:
    """'[T123]' for a caller id as printed ('[ T123]'), kept for the next line of it."""
    if len(_CONTEXTS) >= 4096:
        _CONTEXTS.clear()
    context = _CONTEXTS[caller] = "[" + caller[1:-1].strip() + "]"
    return context


_CONTEXTS: dict[str, str] = {}


class Recent:
    """The last few raw lines of a log (a report's opener look-back reads
    them). A stretch of lines skipped or taken in bulk is kept whole and
    cut into lines only when looked at: most never are."""

    LINES = 4

    def __init__(self) -> None:
        # (last line number, text, start, end, context) of a stretch; (line number, raw line, -1, -1,
        # context) of one line. The context is split_line's for every line of the entry, None if not known.
        self.entries: deque[tuple[int, str | bytes, int, int, str | None]] = deque(maxlen=self.LINES)

    def line(self, lineno: int, raw: str, context: str | None = None) -> None:
        self.entries.append((lineno, raw, -1, -1, context))

    def stretch(self, last: int, text: str | bytes, pos: int, stop: int, context: str | None = None) -> None:
        """The lines of text[pos:stop] (lines joined by '\\n'), the last one numbered `last`."""
        self.entries.append((last, text, pos, stop, context))

    def hold(self, pattern: re.Pattern[str], pattern_bytes: re.Pattern[bytes]) -> bool:
        """Is `pattern` found in the last LINES lines (`pattern_bytes`, the
        same for undecoded ones)? One search per entry, no line cut out."""
        wanted = self.LINES
        for _, text, pos, stop, _ in reversed(self.entries):
            if stop < 0:
                if pattern.search(text) is not None:  # type: ignore[arg-type]
                    return True
                wanted -= 1
            else:
                newline = "\n" if isinstance(text, str) else b"\n"
                start = cut = stop
                while wanted and cut >= pos:
                    nl = text.rfind(newline, pos, cut)  # type: ignore[arg-type]
                    wanted, start, cut = wanted - 1, nl + 1 if nl >= 0 else pos, nl
                    if nl < 0:
                        break
                if (pattern if isinstance(text, str) else pattern_bytes).search(text, start, stop) is not None:  # type: ignore[arg-type]
                    return True
            if not wanted:
                return False
        return False

    def worth_looking_back(self, context: str, claimed: dict[str, int], pattern: re.Pattern[str],
                           pattern_bytes: re.Pattern[bytes]) -> bool:
        """Might a line above a header of `context` open its report? No where
        the scanner's look-back stops at the newest line as it is: a line its
        context's report took as its own (`claimed`: 6 headers in 10 of the
        dense log), or one of the header's context without `pattern`; told
        without a split where that line's context is known, else hold()."""
        if self.entries:
            last, text, pos, stop, known = self.entries[-1]
            if known is not None:
                if last <= claimed.get(known, 0):
                    return False
                if known == context:  # (then a str: a line fed alone or a bulk chunk)
                    if stop < 0:
                        return pattern.search(text) is not None  # type: ignore[arg-type]
                    start = text.rfind("\n", pos, stop) + 1 or pos  # type: ignore[arg-type]
                    return pattern.search(text, start, stop) is not None  # type: ignore[arg-type]
        return self.hold(pattern, pattern_bytes)

    def newest_first(self) -> Iterator[tuple[int, str]]:
        """(line number, raw line) of the last LINES lines, newest first."""
        wanted = self.LINES
        for lineno, text, pos, stop, _ in reversed(self.entries):
            if stop < 0:
                yield lineno, text  # type: ignore[misc]
                wanted -= 1
            else:
                newline = "\n" if isinstance(text, str) else b"\n"
                cut = stop
                while wanted and cut >= pos:
                    nl = text.rfind(newline, pos, cut)  # type: ignore[arg-type]
                    line = text[nl + 1 if nl >= 0 else pos:cut]
                    yield lineno, line if isinstance(line, str) else decode(line)
                    wanted, lineno, cut = wanted - 1, lineno - 1, nl
                    if nl < 0:
                        break
            if not wanted:
                return
