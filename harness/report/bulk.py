"""The scanner's bulk path: many lines of an open report taken at once.

Feeding a report's lines one by one costs microseconds a line. Most of them
only extend the report: same context, plain printk prefix, report content.
take_bulk finds, with a few C-speed searches over the text, how many of the
next lines are like that, and applies their effect in one step (text added,
last content line, gap); the first line that may mean more (a header, an end
marker, another context, the line that makes a gap too long) is left to
Scanner.feed. parse_text (line by line) and parse_file (this path) must
agree, which the golden and conformance tests check on every case.
"""
from __future__ import annotations

import re
from functools import lru_cache
from itertools import compress, count, repeat
from operator import is_, is_not
from typing import TYPE_CHECKING

from .content import LINE_SPLITTERS
from .lines import CONSOLE, NO_PREFIX
from .prefilter import TIMESTAMPED, needles_with
from .table_oops import INFO_WITH_STACK

if TYPE_CHECKING:
    from .stream import Scanner, _Open

MAX_GAP = 60
MAX_SPAN = 5000
MAX_TEXT_LINES = 1500


def take_bulk(self: Scanner, text: str, pos: int, end: int, near: int) -> int:
    """Take the lines from `pos` on at once, as long as feeding them one
    by one would do nothing but add them to the reports of their context
    (or to none): one context with a plain printk prefix (or none), no
    header, no end marker or other line with a meaning, no long gap, no
    other report reaching MAX_SPAN. `near` is the nearest pre-filter hit
    or marker from pos on (-1: none). Returns where the lines it took end
    (pos when it took none)."""
    plain = _PLAIN_CONTEXT.match(text, pos)
    if plain is not None:
        context = "[" + plain.group(1) + "]" if plain.group(1) else CONSOLE
    elif text.startswith("** ", pos) or TIMESTAMPED.match(text, pos) is not None:
        return pos
    else:
        context = NO_PREFIX
    wanting: list[_Open] = []
    active: list[_Open] = []  # the wanting reports not frozen: their gap and end move
    oldest = self.lineno + MAX_SPAN  # the earliest last content line of the others
    cpu = context.startswith("[C")
    for rep in self.open:
        if rep.context == context or (cpu and rep.cpu_traceback):  # it wants the lines (_Open.context)
            if not rep.frozen:
                active.append(rep)
            wanting.append(rep)
        elif rep.last_content < oldest:
            oldest = rep.last_content
    limit = oldest + MAX_SPAN - self.lineno
    if limit <= 0:
        return pos
    stop = end + 1 if near < 0 else text.rfind("\n", pos, near) + 1
    # (searched up to the nearest hit or marker; the line at pos has the prefix of its context if any)
    other = _other_prefix(context).first(text, pos, stop, past_first=context != NO_PREFIX)
    if other >= 0:
        stop = other
    if stop <= pos:
        return pos
    quiet: list[int] = []  # indexes of the lines that are not report content
    if wanting:
        # One regex pass strips the prefixes, splits the lines, and tells
        # questionable frames and lines that are not report content. Every
        # line has the prefix (the other context's line ends the chunk), so
        # there is a text per line, and the lines need no counting.
        chunk = text[pos - 1:stop - 1] if pos else "\n" + text[:stop - 1]
        pieces = LINE_SPLITTERS[context != NO_PREFIX][_UNRELIABLE in chunk].split(chunk)
        texts, questionable, not_content = pieces[3::3], pieces[1::3], pieces[2::3]
        lines = len(texts)
        if lines > limit:
            stop, lines = _line_end(text, pos, limit), limit
            del texts[limit:], questionable[limit:], not_content[limit:]
        if active:
            quiet = list(compress(count(), map(is_not, not_content, repeat(None))))
            # Each line adds to every active report's gap or ends it; the
            # longest gap so far is the first to reach MAX_GAP (which it
            # cannot where there are too few of them).
            run = max(rep.gap for rep in active)
            for i, at in enumerate(quiet if run + len(quiet) > MAX_GAP else ()):
                run = run + 1 if at == (quiet[i - 1] + 1 if i else 0) else 1
                if run > MAX_GAP:  # the line that closes it is fed alone
                    if not at:
                        return pos
                    stop, lines = _line_end(text, pos, at), at
                    del texts[at:], questionable[at:], quiet[i:]
                    break
        if questionable.count(None) != len(questionable):  # split_line's questionable frames are left out
            texts = list(compress(texts, map(is_, questionable, repeat(None))))
        for rep in wanting:
            if rep.room > 0:
                taken = texts[:rep.room]
                rep.text.extend(taken)
                rep.room -= len(taken)
    else:
        lines = text.count("\n", pos, stop - 1) + 1
        if lines > limit:
            stop, lines = _line_end(text, pos, limit), limit
    if active:
        last = lines - 1
        while quiet and quiet[-1] == last:
            quiet.pop()
            last -= 1
        for rep in active:
            if last >= 0:
                rep.last_content = self.claimed[rep.context] = self.lineno + 1 + last
                rep.gap = lines - 1 - last
            else:
                rep.gap += lines
    self._skip(text, pos, stop - 1, lines)
    return stop


def _line_end(text: str, pos: int, lines: int) -> int:
    """Where the first `lines` lines from `pos` end (after their '\\n')."""
    for _ in range(lines):
        pos = text.index("\n", pos) + 1
    return pos


class _LineStarts:
    """A regex that matches only at line starts ('(?m)^...'), searched as
    '\\n...' past the first line: sre finds a leading literal with memchr
    but tries a leading '^' at every position, 2-3 times slower."""

    def __init__(self, pattern: str) -> None:
        assert pattern.startswith("(?m)^")
        self.at_start = re.compile(pattern)
        self.after_newline = re.compile("(?m)\n" + pattern[len("(?m)^"):])

    def first(self, text: str, pos: int, endpos: int, past_first: bool = False) -> int:
        """The first line start in [pos, endpos] where it matches (pos is a
        line start; with `past_first`, known not to match), or -1."""
        if not past_first and self.at_start.match(text, pos, endpos) is not None:
            return pos
        match = self.after_newline.search(text, pos, endpos)
        return -1 if match is None else match.start() + 1


@lru_cache(maxsize=1024)
def _other_prefix(context: str) -> _LineStarts:
    """A line start whose printk prefix is not the plain one of `context`
    (for lines without one: a line that may have one, or a dropped marker)."""
    if context == NO_PREFIX:
        return _LineStarts(r"(?m)^(?=\*\* |[^\n]*\[ *[0-9]+\.[0-9]+\])")
    caller = r"\[ *" + re.escape(context[1:-1]) + r"\]" if context.startswith("[") \
        else r"(?!\[ *[CT][0-9]+\])"
    return _LineStarts(r"(?m)^(?!\[ *[0-9]+\.[0-9]+\]" + caller + ")")


_PLAIN_CONTEXT = re.compile(r"\[ *[0-9]+\.[0-9]+\](?:\[ *([CT][0-9]+)\])?")

# Lines the bulk path leaves to feed(): they may end, close or widen a report.
# (' login: ' before a timestamp makes lines.split_line take the prefix from there.)
MEANINGFUL = ("---[ end ", "=" * 20, "Sending NMI from CPU", "Disabling lock debugging", "\r", " login: ") \
    + INFO_WITH_STACK
# ... and the pre-filter's needles, for the nearest of either while a report
# is open: all but '\r' and the '=' row share a pass with some header (8
# passes over a piece of log, where headers and markers apart took 9).
STOPS = needles_with(MEANINGFUL)
# powerpc's questionable frames: their test reads the whole line, made only where one may be.
_UNRELIABLE = " (unreliable)"
