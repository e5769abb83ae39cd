"""A finished report's facts: what its text says, described once per text.

The scanner (stream.py) hands each report it closes to `to_report`, which
turns the open report's lines and bounds into a `Report`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .describe import describe
from .frames import stack_names
from .guilty import guilty_file
from .model import Report
from .titles import normalize_title, title_frame, title_kind, title_type

if TYPE_CHECKING:
    from .stream import _Open


@dataclass
class Facts:
    """What a report's text says, whatever its place in the log."""

    title: str
    type: str
    kind: str
    desc_frame: str
    alt_titles: tuple[str, ...]
    reason: str
    frame: str
    frames: tuple[str, ...] | None = None  # worked out when first needed
    guilty_file: str | None = None


class Described:
    """Facts per report text (and header group): a log that repeats a
    report word for word, prefixes aside, pays for describing it once.
    Bounded by the characters of the texts it keeps."""

    MAX_CHARS = 8 << 20
    # A text is filed under its header and its length, and compared whole
    # only with the texts filed there (a memcmp, which stops at the first
    # difference): hashing the whole text (siphash, 2,800 characters a
    # report on the dense log) cost more than all the rest of a lookup.
    # At most PER_KEY texts a key: a guest that prints many reports of one
    # header and length, differing only at their ends, costs PER_KEY
    # comparisons a report, not one for every text kept.
    PER_KEY = 16

    def __init__(self) -> None:
        self.facts: dict[tuple[str, int], list[tuple[str, Facts]]] = {}
        self.chars = 0

    def of(self, rep: _Open, text: str) -> Facts:
        """The facts of `rep`, whose lines joined by '\\n' are `text`."""
        key = (rep.group.header, len(text))
        known = self.facts.get(key)
        if known is not None:
            for seen, facts in known:
                if seen == text:
                    return facts
        facts = _describe(rep, text)
        if known is None:
            self.facts[key] = [(text, facts)]
        elif len(known) < self.PER_KEY:
            known.append((text, facts))
        else:
            return facts
        self.chars += len(text)
        if self.chars > self.MAX_CHARS:
            self.facts, self.chars = {key: [(text, facts)]}, 0
        return facts


def _describe(rep: _Open, text: str) -> Facts:
    desc = describe(text, rep.group)
    title = normalize_title(desc.title)
    type_ = title_type(title)
    kind = (desc.format.kind if desc.format is not None and desc.format.kind else "") \
        or title_kind(title, type_)
    return Facts(title, type_ or "UNKNOWN", kind, desc.frame,
                  tuple(normalize_title(a) for a in desc.alt_titles), desc.corrupted_reason, title_frame(title))


_new = object.__new__


def to_report(rep: _Open, first_of_title: dict[str, tuple[int, int]], described: Described) -> Report:
    """The report of `rep`. Its frames and guilty file are left empty when
    a report of the same title with an earlier header has finished: the
    merge keeps only that one's (and adds this one's count)."""
    text = "".join(rep.text)
    facts = described.of(rep, text)  # (a method call: an instance's __call__ costs a lookup more)
    title = facts.title
    extra: dict = {"header_line": rep.header}
    if facts.desc_frame and facts.desc_frame != "corrupted":
        extra["frame"] = facts.desc_frame
    end = rep.last_content if rep.last_content > rep.start else rep.start
    key = (rep.header, end)  # merge.order_key
    folded = first_of_title.get(title, key) < key
    if not folded:
        first_of_title[title] = key
        if facts.frames is None:
            lines = text.split("\n")
            facts.frames, facts.guilty_file = stack_names(lines), guilty_file(title, lines)
    # Report(**values), with every field given, built 6x faster (28,000 per
    # 100 MB of dense log): a frozen dataclass's __init__ sets each field
    # through object.__setattr__; this fills the instance's __dict__ at once
    # (Report has no __post_init__; tests/test_report_stream.py checks that
    # the reports made so have every field).
    report = _new(Report)
    report.__dict__.update({
        "title": title,
        "type": facts.type,
        "kind": facts.kind,
        "start_line": rep.start,
        "end_line": end,
        "frames": () if folded else facts.frames or (),
        "alt_titles": facts.alt_titles,
        "corrupted": bool(facts.reason),
        "corrupted_reason": facts.reason,
        "primary": True,
        "count": 1,
        "frame": facts.frame,
        "guilty_file": "" if folded else facts.guilty_file or "",
        "extra": extra,
    })
    return report

