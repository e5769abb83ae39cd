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
from functools import lru_cache
from typing import NamedTuple

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
        context = "[" + caller[1:-1].strip() + "]" if caller else CONSOLE
        text = raw[match.end():]
    questionable = False
    if "<EOI>" not in text:
        q = _QUESTIONABLE.match(text)
        if q is not None:
            questionable = True
            text = " " + text[q.end():]
        elif text.endswith(" (unreliable)"):  # powerpc's way of saying '?'
            questionable = True
            text = text[: -len(" (unreliable)")]
    return Line(text, context, questionable)
