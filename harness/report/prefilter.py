"""One pre-filter over every header the table knows: where to look closely.

Most of a console log is not a report. Instead of matching each line
against every header, the scanner asks for the next position where one of
a few needles occurs; every group header contains one of them
(tests/test_report_stream.py checks that), so a line without a needle
cannot open a report and is skipped with C-speed search.

Each needle is a scan of the whole text, so there are as few as can be,
and each is cheap: sre scans for a pattern's leading literal character in
a tight C loop (about 3 GB/s) and only tries the rest where it occurs.
The needles are built from the table's headers: each header is filed
under one lead character it contains (LEADS), and a lead's needle is that
character followed by a trie of what comes after it in its headers, each
branch checked back to the header's first character by a look-behind. A
branch starts with a literal, which sre rejects in a few nanoseconds, so
even a common lead character such as 'n' (one byte in 50 of a console)
costs little more than a rare one: five passes cover all thirty headers,
where one needle per shared prefix took thirteen. The position a needle
gives is the lead character's, somewhere in the header's line, which is
all the scanner needs.
"""
from __future__ import annotations

import heapq
import re
from collections.abc import Iterable

from .table_oops import GROUPS

_REPLAYING = "** replaying previous"
# Lead characters, in the order headers are filed under them. Chosen by
# measurement (docs/benchmarks.md): three capitals for the all-capital
# headers (BUG:, WARNING:, INFO:, UBSAN:, SYZFAIL:), then 'v' and 'n',
# which between them are in every other header.
LEADS = "NUZvn"
# ... of which these are rare in a console (the dense bench log has 1,923 'Z'
# per 100 MB, the quiet one 18,202): their needle is found by str.find of
# the lead character, a memchr at several GB/s, and matched there, where
# sre's scan for a leading character costs as much as for a common one
# (about 35 ms per 100 MB).
RARE_LEADS = "Z"
# ... and, for the needles searched while reports are open (bulk.STOPS: the
# text between reports), 'N' and 'U' too: 87,000 and 76,000 per 100 MB of
# dense log, where a pass of sre's scan costs about 5 instructions a
# character, 500 million per 100 MB, and a match at each lead found by
# memchr about 1,500 (the quiet log has 2-3 times as many of each; its
# undecoded pieces keep RARE_LEADS).
RARE_LEADS_OPEN = "NUZ"


class Rare:
    """A needle whose lead character is rare: `search` finds the lead with
    str.find (bytes.find) and matches the needle's pattern there; the same
    answers as the pattern's own search."""

    __slots__ = ("lead", "match", "pattern")

    def __init__(self, pattern: re.Pattern) -> None:
        self.lead = pattern.pattern[:1]
        self.pattern = pattern
        self.match = pattern.match

    def search(self, text, pos: int = 0) -> re.Match | None:  # (text: str or bytes)
        find, lead, match = text.find, self.lead, self.match
        while (pos := find(lead, pos)) >= 0:
            found = match(text, pos)
            if found is not None:
                return found
            pos += 1
        return None


Needle = str | re.Pattern | Rare


def _source(needle: Needle) -> str:
    """The needle as regex source."""
    return re.escape(needle) if isinstance(needle, str) else \
        needle.pattern.pattern if isinstance(needle, Rare) else needle.pattern


def _trie(tails: list[tuple[str, str]]) -> str:
    """A regex for the tails (what follows the lead character), each
    followed by a look-behind for its whole header ('' when the lead
    character starts the header): branches grouped by their next
    character, so that each position is rejected after one comparison."""
    alternatives: list[str] = []
    by_first: dict[str, list[tuple[str, str]]] = {}
    for tail, header in tails:
        if not tail:
            if not header:
                return ""  # the lead character alone is a hit
            alternatives.append(f"(?<={re.escape(header)})")
        else:
            by_first.setdefault(tail[0], []).append((tail[1:], header))
    for first, rest in by_first.items():
        if len(rest) == 1:
            tail, header = rest[0]
            alternatives.append(re.escape(first + tail) + (f"(?<={re.escape(header)})" if header else ""))
        else:
            alternatives.append(re.escape(first) + _trie(rest))
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


def build_needles(headers: Iterable[str], leads: str = LEADS, rare: str = RARE_LEADS) -> tuple[Needle, ...]:
    """One needle per lead character that some header holds (a header's
    first lead decides), and a plain string for a header holding none;
    the needles of the `rare` leads are found by their lead (Rare)."""
    left = list(dict.fromkeys(headers))
    needles: list[Needle] = []
    for lead in leads:
        mine = [h for h in left if lead in h]
        left = [h for h in left if lead not in h]
        if mine:
            tails = []
            for header in mine:
                at = header.index(lead)
                tails.append((header[at + 1:], header if at else ""))
            trie = _trie(tails)
            # A literal after the lead would make sre search for the whole
            # prefix ('ZFA'), a loop 2x slower than its one-character scan:
            # an empty look-ahead ends the prefix at the lead.
            needle = re.compile(lead + ("" if trie.startswith("(?:") else "(?=)") + trie)
            needles.append(Rare(needle) if lead in rare else needle)
    return (*needles, *left)


def needles_with(markers: Iterable[str], rare: str = RARE_LEADS) -> tuple[Needle, ...]:
    """NEEDLES and the `markers` in one set: each marker filed under a lead
    among the headers' (one pass over a text finds either)."""
    # Not a header, but the scanner must see it: printk re-prints a torn line
    # (filed under 'v', where a pass of its own took 24 ms per 100 MB).
    return build_needles([*(g.header for g in GROUPS), *markers, _REPLAYING], rare=rare)


NEEDLES = needles_with(())
# Does a line hold a header? The header needles as one alternation: sre
# skips to a lead character and rejects most after one comparison, 3-4x
# faster on a line without a header than an alternation of the headers
# themselves (which tries every header at each of their first characters).
_HEADER_NEEDLES = build_needles(g.header for g in GROUPS)
HEADER_ANY = re.compile("|".join(_source(n) for n in _HEADER_NEEDLES))
# The header needles over undecoded bytes (all are ASCII, and a decoded
# piece holds a needle exactly when its bytes do): a piece of log with
# none of them, read while no report is open, need not be decoded at all
# (a torn-line replay there has no report to drop).
_BYTE_NEEDLES = tuple(n.encode() if isinstance(n, str) else Rare(re.compile(_source(n).encode()))
                      if isinstance(n, Rare) else re.compile(_source(n).encode()) for n in _HEADER_NEEDLES)


def needle_in_line(text: str, at: int) -> bool:
    """Does a needle (NEEDLES) occur in the line of `text` that holds position `at`?"""
    start, stop = text.rfind("\n", 0, at) + 1, text.find("\n", at)
    line = text[start:] if stop < 0 else text[start:stop]
    return any((n in line) if isinstance(n, str) else n.search(line) is not None for n in NEEDLES)


def has_needle(piece: bytes) -> bool:
    """Does any header needle occur in the piece?"""
    return any((n in piece) if isinstance(n, bytes) else n.search(piece) is not None for n in _BYTE_NEEDLES)


# A line with a printk timestamp (the multi-line form of lines._PREFIX's start).
TIMESTAMPED = re.compile(r"(?m)^(?:\*\* [0-9]+ printk messages dropped \*\* )?(?:[^\n]* login: )?"
                         r"(?:[^\[\]\n]{0,64}[#$] )?(?:<[0-9]+>)?\[ *[0-9]+\.[0-9]+\]")
_NOWHERE = 1 << 62


class Finder:
    """The next needle position in one text, each needle searched at most
    once per occurrence (its next position is remembered, in a heap)."""

    def __init__(self, text: str, needles: tuple[Needle, ...] = NEEDLES) -> None:
        self.text = text
        self.needles = needles
        self.heap = [(-1, i) for i in range(len(needles))]  # (next position, needle); -1: not searched
        self.best = -1  # `answer` is next()'s for every pos up to it
        self.answer = -1

    def next(self, pos: int) -> int:
        """The smallest position >= pos where a needle starts, or -1."""
        if pos <= self.best:
            return self.answer
        heap, text = self.heap, self.text
        while heap[0][0] < pos:
            needle = self.needles[heap[0][1]]
            if isinstance(needle, str):
                found = text.find(needle, pos)
            else:
                match = needle.search(text, pos)
                found = match.start() if match is not None else -1
            heapq.heapreplace(heap, (found if found >= 0 else _NOWHERE, heap[0][1]))
        self.best = best = heap[0][0]
        self.answer = answer = -1 if best == _NOWHERE else best
        return answer
