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
from itertools import compress, count, repeat
from operator import is_, is_not
from typing import TYPE_CHECKING

from .content import LINE_SPLITTER, QUESTIONABLE_TEXT
from .lines import CONSOLE, NO_PREFIX
from .prefilter import RARE_LEADS_OPEN, TIMESTAMPED, needles_with
from .table_oops import INFO_WITH_STACK

if TYPE_CHECKING:
    from .stream import Scanner, _Open

MAX_GAP = 60
MAX_SPAN = 5000
MAX_TEXT_LINES = 1500


def take_bulk(self: Scanner, text: str, pos: int, end: int, near: int) -> int:
    """Take the lines from `pos` on at once, as long as feeding them one
    by one would do nothing but add them to the reports of their context
    (or to none): one context with a plain printk prefix (or none; printk's
    dropped-messages marker may come before a prefix), no header, no end
    marker or other line with a meaning, no long gap, no other report
    reaching MAX_SPAN. `near` is the nearest pre-filter hit or marker from
    pos on (-1: none). Returns where the lines it took end (pos when it
    took none)."""
    stop = end + 1 if near < 0 else text.rfind("\n", pos, near) + 1  # (near is past the line at pos)
    same = _RUN.match(text, pos, stop)  # the lines of one context from pos on, if they have a plain prefix
    # A line with printk's dropped-messages marker before its prefix is its
    # context's too: from such a line, the run may hold more of them (a run
    # without one at its start ends at the first: the next call takes them).
    marker = same is None and text.startswith("** ", pos)
    if marker:
        same = _RUN_DROPPED.match(text, pos, stop)
    if same is not None:
        caller = same.group(1)
        context = _CONTEXTS.get(caller) or _context(caller)
        stop = same.end() + 1
    elif text.startswith("** ", pos) or TIMESTAMPED.match(text, pos) is not None:
        return pos
    else:
        context = NO_PREFIX
        other = _OTHER_THAN_NO_PREFIX.first(text, pos, stop)
        if other >= 0:
            stop = other
    # The reports that want the lines (_Open.context), and how many lines may
    # go before another reaches MAX_SPAN: at first a bound from
    # Scanner.floor, worked out exactly only where it matters (_limit).
    cpu = context.startswith("[C")
    if cpu and self.tracebacks:
        wanting = [rep for rep in self.open if rep.context == context or rep.cpu_traceback]
        limit, exact = _limit(self, context, cpu), True
    else:
        wanting = self.of_context.get(context) or _NONE
        limit, exact = self.floor + MAX_SPAN - self.lineno, False
        if limit <= 0:
            limit, exact = _limit(self, context, cpu), True
    if limit <= 0:
        return pos
    # The wanting reports not frozen: their gap and end move. (Neither list
    # is changed here: the index's own, or a constant, serve as they are.)
    if len(wanting) == 1:
        active = _NONE if wanting[0].frozen else wanting
    else:
        active = [rep for rep in wanting if not rep.frozen] if wanting else wanting
    if stop <= pos:
        return pos
    last = -1  # the last line that is report content (or a questionable frame), if active
    if wanting:
        # The reports keep the lines prefix-stripped and joined (_Open.text):
        # one regex pass strips the prefixes; every line has the plain prefix
        # of the context (the other context's line ends the chunk), so it
        # counts the lines too, and its first ']' (or second, with a caller
        # id) ends the timestamp.
        chunk = text[pos - 1:stop - 1] if pos else "\n" + text[:stop - 1]
        if context == NO_PREFIX:
            stripped, lines = chunk, chunk.count("\n")
        else:
            stripped, lines = (_STRIP_DROPPED if marker else _STRIP)[context == CONSOLE].subn("\n", chunk)
        if lines > limit and not exact:
            limit = _limit(self, context, cpu)
        run = (active[0].gap if len(active) == 1 else max(rep.gap for rep in active)) if active else 0
        if lines <= limit and (run + lines <= MAX_GAP or not active or not _gap_may_close(stripped, run)):
            # No gap grows too long here: only the last lines' content matters.
            if active:
                last, at = lines - 1, len(stripped)
                while last >= 0:
                    nl = stripped.rfind("\n", 0, at)
                    if _PROBE(stripped, nl).group(2) is None:  # type: ignore[union-attr]  # (it always matches)
                        break
                    last, at = last - 1, nl
            # (A one-character test is a memchr: '? ' would be searched for.)
            kept, dropped = _QUESTIONABLE_LINES.subn("", stripped) if "?" in stripped else (stripped, 0)
            added = lines - dropped
            if len(wanting) == 1 and wanting[0].room >= added:  # (_extend, inline)
                rep = wanting[0]
                if added:
                    rep.text.append(kept)
                    rep.room, rep.lines = rep.room - added, rep.lines + added
            else:
                _extend(wanting, kept, added)
        else:
            taken = _split(text, pos, stop, stripped, run, active, wanting, limit)
            if taken is None:
                return pos
            stop, lines, last = taken
    else:
        lines = text.count("\n", pos, stop - 1) + 1
        if lines > limit and not exact:
            limit = _limit(self, context, cpu)
        if lines > limit:
            stop, lines = _line_end(text, pos, limit), limit
    if active:
        for rep in active:
            if last >= 0:
                rep.last_content = self.claimed[rep.context] = self.lineno + 1 + last
                rep.gap = lines - 1 - last
            else:
                rep.gap += lines
    if self.timestamped:  # (Scanner._skip and Recent.stretch, inline)
        self.lineno += lines
        self.recent.entries.append((self.lineno, text, pos, stop - 1, context))
    else:
        self._skip(text, pos, stop - 1, lines)
    return stop


def _limit(self: Scanner, context: str, cpu: bool) -> int:
    """How many lines take_bulk may take before a report that does not want
    them reaches MAX_SPAN (Scanner.floor raised on the way)."""
    oldest = self.lineno + MAX_SPAN  # the earliest last content line of the others
    for rep in self.open:
        # (A frozen report with no room left waits for its context's report
        # to end: Scanner.feed does not close it at MAX_SPAN.)
        if rep.last_content < oldest and (rep.room > 0 or not rep.frozen) \
                and not (rep.context == context or (cpu and rep.cpu_traceback)):
            oldest = rep.last_content
    self.raise_floor()
    return oldest + MAX_SPAN - self.lineno


def _split(text: str, pos: int, stop: int, stripped: str, run: int, active: list[_Open],
           wanting: list[_Open], limit: int) -> tuple[int, int, int] | None:
    """take_bulk's lines one by one, where a gap may grow too long (or the
    lines run past `limit`):
    one regex pass splits the (prefix-stripped) lines and tells questionable
    frames and lines that are not report content. (stop, lines, last
    content line) of what is taken, None if nothing is."""
    pieces = LINE_SPLITTER.split(stripped)
    texts, questionable, not_content = pieces[3::3], pieces[1::3], pieces[2::3]
    lines = len(texts)
    if lines > limit:
        stop, lines = _line_end(text, pos, limit), limit
        del texts[limit:], questionable[limit:], not_content[limit:]
    quiet: list[int] = []  # indexes of the lines that are not report content
    if active:
        quiet = list(compress(count(), map(is_not, not_content, repeat(None))))
        # Each line adds to every active report's gap or ends it; the
        # longest gap so far is the first to reach MAX_GAP (which it
        # cannot where there are too few of them).
        for i, at in enumerate(quiet if run + len(quiet) > MAX_GAP else ()):
            run = run + 1 if at == (quiet[i - 1] + 1 if i else 0) else 1
            if run > MAX_GAP:  # the line that closes it is fed alone
                if not at:
                    return None
                stop, lines = _line_end(text, pos, at), at
                del texts[at:], questionable[at:], quiet[i:]
                break
    if questionable.count(None) != len(questionable):  # split_line's questionable frames are left out
        texts = list(compress(texts, map(is_, questionable, repeat(None))))
    if texts:
        _extend(wanting, "\n" + "\n".join(texts), len(texts))
    last = lines - 1
    while quiet and quiet[-1] == last:
        quiet.pop()
        last -= 1
    return stop, lines, last


def _gap_may_close(stripped: str, run: int) -> bool:
    """Could lines that are not report content make a gap longer than
    MAX_GAP in `stripped` (prefix-stripped lines, '\\n' before each), after
    `run` such lines? False only where they cannot. Any MAX_GAP + 1 lines
    in a row hold a line whose index is a multiple of MAX_GAP (but 0): only
    those are tested, and only the runs through one that is not content
    (and the first run, which continues `run`) measured."""
    if run and _quiet_run(stripped, 0, MAX_GAP + 1 - run, back=False):
        return True
    pos = 0
    while (hop := _HOP.match(stripped, pos)) is not None:
        pos = hop.end()
        if _quiet_run(stripped, pos, MAX_GAP + 1):
            return True
    return False


def _quiet_run(stripped: str, nl: int, need: int, back: bool = True) -> bool:
    """Is the line after the '\\n' at `nl` not report content, and one of
    `need` such lines in a row (counting back and on, or only on)?"""
    if _PROBE(stripped, nl).group(2) is None:  # type: ignore[union-attr]
        return False
    length, at = 1, nl
    while back and length < need and at:
        at = stripped.rfind("\n", 0, at)
        if _PROBE(stripped, at).group(2) is None:  # type: ignore[union-attr]
            break
        length += 1
    at = nl
    while length < need:
        at = stripped.find("\n", at + 1)
        if at < 0 or _PROBE(stripped, at).group(2) is None:  # type: ignore[union-attr]
            break
        length += 1
    return length >= need


def _extend(wanting: list[_Open], kept: str, lines: int) -> None:
    """Add `lines` lines ('\\n' before each) to each wanting report, as far as its room goes."""
    if not lines:
        return
    for rep in wanting:
        room = rep.room
        if room >= lines:
            rep.text.append(kept)
            rep.room, rep.lines = room - lines, rep.lines + lines
        elif room > 0:
            rep.text.append("\n" + "\n".join(kept[1:].split("\n", room)[:room]))
            rep.room, rep.lines = 0, rep.lines + room


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
        self.pattern = pattern
        self.after_newline = re.compile("(?m)\n" + pattern[len("(?m)^"):])
        # (Compiled when first asked for: a caller id's is never, and each
        # compile of these costs about 0.1 ms, a few hundred per log.)
        self.at_start: re.Pattern | None = None

    def first(self, text: str, pos: int, endpos: int, past_first: bool = False) -> int:
        """The first line start in [pos, endpos] where it matches (pos is a
        line start; with `past_first`, known not to match), or -1."""
        if self.at_start is None:
            self.at_start = re.compile(self.pattern)
        if not past_first and self.at_start.match(text, pos, endpos) is not None:
            return pos
        match = self.after_newline.search(text, pos, endpos)
        return -1 if match is None else match.start() + 1


def _context(caller: str | None) -> str:
    """The context of a plain prefix's caller id (None: none), kept for the next time."""
    context = "[" + caller + "]" if caller else CONSOLE
    if len(_CONTEXTS) >= 1024:
        _CONTEXTS.clear()
    _CONTEXTS[caller] = context
    return context


_CONTEXTS: dict[str | None, str] = {}
_NONE: list[_Open] = []  # (no report; never added to)
# A line start that may have a printk prefix (or a dropped marker): the end of
# a run of lines without one.
_OTHER_THAN_NO_PREFIX = _LineStarts(r"(?m)^(?=\*\* |[^\n]*\[ *[0-9]+\.[0-9]+\])")
# The lines from a line start on that have the plain printk prefix of its
# context: group 1 the caller id (the console's: none), matched again on each
# line by a backreference: one pattern for all contexts, where one compiled
# per caller id took 0.05-0.1 ms each (a few hundred per log, one per task
# that prints). Possessive: nothing here can give back a character the next
# could take; sre then keeps no state to backtrack into.
_RUN_SOURCE = (r"\[ *+[0-9]++\.[0-9]++\]"
               r"(?:\[ *+([CT][0-9]++)\][^\n]*+(?:\n<DROPPED>\[ *+[0-9]++\.[0-9]++\]\[ *+\1\][^\n]*+)*+"
               r"|(?!\[ *+[CT][0-9]++\])[^\n]*+(?:\n<DROPPED>\[ *+[0-9]++\.[0-9]++\](?!\[ *+[CT][0-9]++\])[^\n]*+)*+)")
_RUN = re.compile(_RUN_SOURCE.replace("<DROPPED>", ""))
# ... where printk's '** N printk messages dropped ** ' may come before any
# line's prefix (lines._PREFIX takes it with the prefix): tried only from a
# line that has one (the optional group costs the common lines 3 % more).
_DROPPED = r"(?:\*\* [0-9]++ printk messages dropped \*\* )?"
_RUN_DROPPED = re.compile(_DROPPED + _RUN_SOURCE.replace("<DROPPED>", _DROPPED))

# Lines the bulk path leaves to feed(): they may end, close or widen a report.
# (' login: ' before a timestamp makes lines.split_line take the prefix from there.)
# (And powerpc's questionable frames, ' (unreliable)' at the end: that test reads the whole line.)
MEANINGFUL = ("---[ end ", "=" * 20, "Sending NMI from CPU", "Disabling lock debugging", "\r", " login: ",
              " (unreliable)") + INFO_WITH_STACK
# ... and the pre-filter's needles, for the nearest of either while a report
# is open: all but '\r' and the '=' row share a pass with some header (8
# passes over a piece of log, where headers and markers apart took 9).
STOPS = needles_with(MEANINGFUL, rare=RARE_LEADS_OPEN)
# [console] The plain prefix of each line of a chunk of a caller id's lines
# (a console's): the timestamp, the caller id, a space. And a questionable
# frame's line, both after the line's '\n'.
_PREFIXES = (r"\[[^\]]*+\]\[[^\]]*+\] ?", r"\[[^\]]*+\] ?")
_STRIP = tuple(re.compile(r"\n" + prefix) for prefix in _PREFIXES)
_STRIP_DROPPED = tuple(re.compile(r"\n" + _DROPPED + prefix) for prefix in _PREFIXES)  # (for chunks with a marker)
_QUESTIONABLE_LINES = re.compile("\n(?:" + QUESTIONABLE_TEXT + ")[^\n]*+")
# The splitter's answer for the line after a '\n' (group 2 '' if not content).
_PROBE = LINE_SPLITTER.match
# From a '\n', MAX_GAP lines on, to the next '\n' (possessive: sre keeps no
# state to backtrack into, 3x faster).
_HOP = re.compile(r"(?:\n[^\n]*+){" + str(MAX_GAP) + r"}+(?=\n)")
