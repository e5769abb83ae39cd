"""The streaming scanner: console lines in, finished reports out.

Memory is bounded: only reports still open keep their lines, each capped
at MAX_TEXT_LINES, at most MAX_OPEN are open at once, and a report closes
after its end marker, after MAX_GAP lines of its own context that are not
report content, or after MAX_SPAN lines in all. Everything else is
looked at once and dropped, so a 1 GB log is scanned in constant memory.
"""
from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from .bulk import MAX_GAP, MAX_SPAN, MAX_TEXT_LINES, STOPS, take_bulk
from .content import OPENER_HINT, OPENERS, SANITIZER_END, TRACE_END, is_content
from .finish import Described, to_report
from .lines import CONSOLE, NO_PREFIX, Line, Recent, split_line
from .model import Report
from .patterns import Group
from .prefilter import HEADER_ANY, TIMESTAMPED, Finder, has_needle, needle_in_line
from .reader import decode_parts
from .table_oops import CONTINUATION_HEADERS, GROUPS, INFO_WITH_STACK

MAX_OPEN = 16
# syzkaller lets a report's text run to the end of the log; past its own end
# we keep this many lines, enough for a title's stack, and no more work.
FROZEN_LINES = 300
# syzkaller keeps the panic_on_warn panic inside a short report (the
# WARNING may lack its own stack); we mirror that for the title.
SHORT_REPORT = 22

_PANIC = "Kernel panic - not syncing"
_GENERIC = ("BUG:", "WARNING:", "INFO:")
_OPENER_HINT_BYTES = re.compile(OPENER_HINT.pattern.encode())
_SANITIZER_TITLES = ("BUG: KASAN", "BUG: KFENCE", "BUG: KCSAN", "BUG: KMSAN", "UBSAN:")


def _any_of(patterns: Iterable[re.Pattern]) -> re.Pattern | None:
    """One pattern that is found where any of `patterns` is (None for none):
    one search instead of one per pattern. A leading '(?i)' stays the
    pattern's own, as '(?i:...)'."""
    parts = []
    for pattern in patterns:
        flags = re.match(r"\(\?([ims]+)\)", pattern.pattern)
        parts.append(f"(?{flags.group(1)}:{pattern.pattern[flags.end():]})" if flags else f"(?:{pattern.pattern})")
    return re.compile("|".join(parts)) if parts else None


_SUPPRESSED = tuple((group, group.header, _any_of(group.suppress)) for group in GROUPS)
_CONTINUATION = _any_of(CONTINUATION_HEADERS)
# ... the same test as substrings where every one is a plain literal (a
# few 'in's, 0.15 us a header line, where the alternation took 0.5).
_CONTINUATION_LITERALS = tuple(p.pattern for p in CONTINUATION_HEADERS) \
    if not any(re.search(r"[\\.^$*+?{}\[\]|()]", p.pattern) or p.flags & ~re.UNICODE
               for p in CONTINUATION_HEADERS) else None


def match_group(text: str) -> Group | None:
    """The group whose header occurs in the line, unless suppressed."""
    if HEADER_ANY.search(text) is None:
        return None
    for group, header, suppress in _SUPPRESSED:
        if header in text and (suppress is None or suppress.search(text) is None):
            return group
    return None


@dataclass(eq=False, slots=True)  # open reports are told apart by identity, not by their text
class _Open:
    group: Group
    start: int
    context: str  # it wants the lines of its context (and, with cpu_traceback, of every CPU's: '[C...')
    header: int = 0  # the line with the header (start may be a 'cut here' above)
    # Its lines, prefix-stripped: the first (the header's) and then pieces of
    # '\n' + line each (one piece per line fed, one per chunk taken in
    # bulk), so that ''.join(text) is the lines joined by '\n'.
    text: list[str] = field(default_factory=list)
    lines: int = 1  # how many lines `text` holds
    last_content: int = 0
    gap: int = 0
    sanitizer: bool = False
    cpu_traceback: bool = False
    frozen: bool = False  # bounds fixed; still collecting text for the title
    room: int = MAX_TEXT_LINES - 1  # lines it may still add to its text


class Scanner:
    """Feed lines with `feed`, then call `finish`; reports come out of both."""

    def __init__(self) -> None:
        self.lineno = 0
        self.open: list[_Open] = []
        # The open reports by context, each in the order of `open` (_opened
        # and _dropped keep them), and those that take every CPU's lines.
        self.of_context: dict[str, list[_Open]] = {}
        self.tracebacks: list[_Open] = []
        # No open report that MAX_SPAN can close (all but the frozen ones
        # with no room left) has its last content line before this: a bound,
        # raised where all are looked at, so that most lines need not look.
        self.floor = 0
        self.recent = Recent()  # the last few lines, for a report's opener look-back
        # Per context, the last line some report took as its own: such a
        # line (e.g. a KASAN closing '====') cannot open the next report.
        self.claimed: dict[str, int] = {}
        self.timestamped = False
        # Per title, the earliest merge.order_key finished so far: a later
        # report of that title is folded into it (merge.Merger), so its
        # frames and guilty file would be thrown away unread.
        self.first_of_title: dict[str, tuple[int, int]] = {}
        self.described = Described()

    def feed(self, raw: str) -> Sequence[Report]:
        self.lineno += 1
        if not self.open and self.timestamped and HEADER_ANY.search(raw) is None \
                and "** replaying previous" not in raw:
            # Fast path for the bulk of a log: nothing open, no header here.
            self.recent.line(self.lineno, raw)
            return ()
        line = split_line(raw)
        text, context = line.text, line.context
        done: list[Report] = []
        if text == "** replaying previous printk message **":
            self._drop_torn_header()
        group = match_group(text) if text else None
        if context != NO_PREFIX:
            self.timestamped = True
        elif group is not None and self.timestamped and group.header in _GENERIC \
                and not text.startswith(group.header):
            # The kernel timestamps its lines; an untimestamped 'foo: WARNING:'
            # is guest userspace talking, not a kernel report.
            group = None
        if group is not None and not self._continues(line):
            done = self._start(group, line)
        elif self.open:
            cpu, span = context.startswith("[C"), self.lineno - MAX_SPAN
            if self.floor >= span and not (cpu and self.tracebacks):  # only its context's reports act
                mine = self.of_context.get(context)
                for rep in list(mine) if mine else ():
                    if not (rep.frozen and rep.room <= 0):
                        self._add(rep, line, done)
            else:
                for rep in list(self.open):
                    if rep.frozen and rep.room <= 0:
                        continue  # waits, full, for its context's report to end
                    if rep.context == context or (cpu and rep.cpu_traceback):  # it wants the line
                        self._add(rep, line, done)
                    elif rep.last_content < span:  # MAX_SPAN lines since its last content
                        done.extend(self._close(rep))
                self.raise_floor()
        self.recent.entries.append((self.lineno, raw, -1, -1, context))  # (Recent.line, inline)
        return done

    def feed_text(self, text: str) -> list[Report]:
        """Feed many lines at once: `text` is whole lines joined by '\\n'.
        While no report is open, the lines up to the next pre-filter hit
        are skipped without being split, which is most of a long log."""
        done: list[Report] = []
        stops = Finder(text, STOPS)  # headers and the bulk path's markers
        pos, end = 0, len(text)
        while pos <= end:
            # (Finder.next's remembered answer, inline: most positions are before it)
            near = stops.answer if pos <= stops.best else stops.next(pos)  # in this line: fed, not taken in bulk
            if not self.open:
                while near >= 0 and not needle_in_line(text, near):  # a marker alone is skipped too
                    near = stops.next(text.find("\n", near) + 1 or end + 1)
                start = end + 1 if near < 0 else text.rfind("\n", pos, near) + 1
                if start > pos:
                    self._skip(text, pos, start - 1)
                    pos = start
                    continue
            elif (near < 0 or text.find("\n", pos, near) >= 0) \
                    and (taken := take_bulk(self, text, pos, end, near)) > pos:
                pos = taken
                continue
            nl = text.find("\n", pos)
            if nl < 0:
                nl = end
            done.extend(self.feed(text[pos:nl]))
            pos = nl + 1
        return done

    def feed_piece(self, piece: bytes) -> list[Report]:
        """feed_text for undecoded whole lines (reader.iter_file_pieces).
        Most pieces of a long log have no needle, nothing open and nothing
        left to learn about timestamps: those are only counted, their
        last few lines decoded, the rest never."""
        if self.open or not self.timestamped or has_needle(piece):
            parts = decode_parts(piece)
            if len(parts) == 1:
                return self.feed_text(parts[0])
            return [report for text in parts for report in self.feed_text(text)]
        self._count_lines(piece, 0, len(piece))
        return []

    def _skip(self, text: str, pos: int, stop: int, lines: int = 0) -> None:
        """Account for the lines in text[pos:stop] (stop is at a '\\n' or the
        end; `lines` of them if known) without looking at them, but for the
        last few and timestamps."""
        if not self.timestamped and TIMESTAMPED.search(text, pos, stop) is not None:
            self.timestamped = True
        self._count_lines(text, pos, stop, lines)

    def _count_lines(self, text: str | bytes, pos: int, stop: int, lines: int = 0) -> None:
        """Number the lines in text[pos:stop] and keep them for the last few."""
        self.lineno += lines or text.count("\n" if isinstance(text, str) else b"\n", pos, stop) + 1  # type: ignore[arg-type]
        self.recent.stretch(self.lineno, text, pos, stop)

    def finish(self) -> list[Report]:
        done: list[Report] = []
        for rep in list(self.open):
            if rep in self.open:
                done.extend(self._close(rep))
        return done

    # -- internals ---------------------------------------------------------

    def _drop_torn_header(self) -> None:
        """printk says the previous line was cut and is printed again in
        full next: forget a report opened by the torn fragment."""
        for rep in list(self.open):
            if rep.start == self.lineno - 1 and rep.lines <= 1:
                self._dropped(rep)

    def raise_floor(self) -> None:
        """`floor` as high as it can be: the earliest last content line of
        the open reports that MAX_SPAN can close."""
        floor = self.lineno
        for rep in self.open:
            if rep.last_content < floor and (rep.room > 0 or not rep.frozen):
                floor = rep.last_content
        self.floor = floor

    def _opened(self, rep: _Open) -> None:
        self.open.append(rep)
        mine = self.of_context.get(rep.context)
        if mine is None:
            self.of_context[rep.context] = [rep]
        else:
            mine.append(rep)

    def _dropped(self, rep: _Open) -> None:
        self.open.remove(rep)
        mine = self.of_context[rep.context]
        mine.remove(rep)
        if not mine:
            del self.of_context[rep.context]
        if rep.cpu_traceback:
            self.tracebacks.remove(rep)

    def _continues(self, line: Line) -> bool:
        """Headers that are part of an already open report (see table)."""
        if _CONTINUATION_LITERALS is not None:
            text = line.text
            for literal in _CONTINUATION_LITERALS:
                if literal in text:
                    break
            else:
                return False
        elif _CONTINUATION is None or _CONTINUATION.search(line.text) is None:
            return False
        return any(not rep.frozen for rep in self.of_context.get(line.context, ()))

    def _start(self, group: Group, line: Line) -> list[Report]:
        done: list[Report] = []
        text, context = line.text, line.context
        is_panic = _PANIC in text
        shared = context in (CONSOLE, NO_PREFIX)
        # (The console's and unprefixed lines' reports in the order of `open`.)
        mine = self.open if shared else self.of_context.get(context)
        for rep in list(mine) if mine else ():
            if rep.context != context and not (shared and rep.context in (CONSOLE, NO_PREFIX)):
                continue
            if is_panic and not rep.frozen and rep.lines <= SHORT_REPORT:
                rep.frozen, rep.room = True, min(rep.room, FROZEN_LINES)  # title may need the panic's stack
            elif not rep.frozen and rep.context == context and context.startswith("["):
                # syzkaller: with printk caller ids a report's text runs on
                # past the next header of the same task/CPU, and its title
                # may need what follows (a stall interrupted by a WARNING).
                rep.frozen, rep.room = True, min(rep.room, FROZEN_LINES)
            elif not rep.frozen:
                done.extend(self._close(rep))
        start = self.lineno
        recent = self.recent
        for lineno, prev_raw in recent.newest_first() \
                if recent.worth_looking_back(context, self.claimed, OPENER_HINT, _OPENER_HINT_BYTES) else ():
            prev = split_line(prev_raw)
            if lineno <= self.claimed.get(prev.context, 0):
                break
            if prev.context != context:
                continue  # another CPU's line in between
            if not OPENERS.match(prev.text):
                break
            start = lineno
        # (Positional: group, start, context, header, text, lines, last_content, gap, sanitizer.)
        rep = _Open(group, start, context, self.lineno, [text], 1, self.lineno, 0,
                    text.startswith(_SANITIZER_TITLES, text.find(group.header)))
        self._opened(rep)
        self.claimed[context] = self.lineno
        if len(self.open) > MAX_OPEN:
            done.extend(self._close(self.open[0]))
        return done

    def _add(self, rep: _Open, line: Line, done: list[Report]) -> None:
        text = line.text
        if not line.questionable and rep.room > 0 \
                and "Disabling lock debugging due to kernel taint" not in text:
            rep.text.append("\n" + text)
            rep.room -= 1
            rep.lines += 1
        if "Sending NMI from CPU" in text and not rep.cpu_traceback:
            rep.cpu_traceback = True
            if rep in self.open:  # (a report closed earlier in the same line's loop stays out)
                self.tracebacks.append(rep)
        if rep.frozen:
            return
        for marker in INFO_WITH_STACK:
            if marker in text:
                done.extend(self._close(rep))
                return
        if TRACE_END.match(text) or (rep.sanitizer and SANITIZER_END.match(text)):
            rep.last_content = self.claimed[rep.context] = self.lineno
            done.extend(self._close(rep))
            return
        if line.questionable or is_content(text):
            rep.last_content = self.claimed[rep.context] = self.lineno
            rep.gap = 0
            return
        rep.gap += 1
        if rep.gap > MAX_GAP:
            done.extend(self._close(rep))

    def _close(self, rep: _Open) -> list[Report]:
        """Finish `rep` and any frozen report waiting on its context."""
        out: list[Report] = []
        if rep in self.open:
            self._dropped(rep)
        if not rep.frozen:
            for other in list(self.of_context.get(rep.context, ())):
                if other.frozen:
                    self._dropped(other)
                    out.append(to_report(other, self.first_of_title, self.described))
        out.append(to_report(rep, self.first_of_title, self.described))
        return out


class _InOrder:
    """Reports come out of the scanner as they finish; this hands them on in
    header order, as soon as no open report can come before them."""

    HOLD = 512  # beyond this many waiting, order gives way to memory

    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner
        self.waiting: list[tuple[tuple[int, int], int, Report]] = []
        self.seq = 0

    def release(self, done: Iterable[Report], final: bool = False) -> Iterator[Report]:
        for rep in done:
            # (merge.order_key, inline: the scanner's reports all have a header_line)
            heapq.heappush(self.waiting, ((rep.extra["header_line"], rep.end_line), self.seq, rep))
            self.seq += 1
        bound = min((rep.header for rep in self.scanner.open), default=self.scanner.lineno + 1)
        while self.waiting and (final or self.waiting[0][0][0] < bound or len(self.waiting) > self.HOLD):
            yield heapq.heappop(self.waiting)[2]


def scan(lines: Iterable[str]) -> Iterator[Report]:
    """Yield reports in header order (merge.order_key)."""
    scanner = Scanner()
    order = _InOrder(scanner)
    for raw in lines:
        yield from order.release(scanner.feed(raw))
    yield from order.release(scanner.finish(), final=True)


def scan_pieces(pieces: Iterable[bytes]) -> Iterator[Report]:
    """Like scan, for undecoded pieces of whole lines (reader.iter_file_pieces)."""
    scanner = Scanner()
    order = _InOrder(scanner)
    for piece in pieces:
        yield from order.release(scanner.feed_piece(piece))
    yield from order.release(scanner.finish(), final=True)
