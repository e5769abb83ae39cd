"""After scanning: order reports, mark causes and consequences, de-duplicate.

A panic, lockup, stall or hang that follows another report is usually
its consequence (panic_on_warn, a lockdep splat that then spins, a BUG
that leaves a lock held): both are reported, the cause stays primary and
the consequence gets primary=False. Reports with the same title are then
folded into the first one, with `count` saying how often it was seen.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .model import Report

# Kinds that are typically the aftermath of an earlier report.
CONSEQUENCE_KINDS = frozenset({"panic", "soft-lockup", "hard-lockup", "rcu-stall", "hang"})
_ALONE = "report format is marked as corrupted"
# Of these, the ones that can themselves cause a later panic or stall.
_STALL_KINDS = CONSEQUENCE_KINDS - {"panic"}


# A stall this many lines after a cause is still taken as its effect; an
# unrelated WARNING long before a lockup should not hide the lockup.
CONSEQUENCE_WINDOW = 2000


class Merger:
    """mark_primary and dedupe, one report at a time, in header order:
    memory holds one report per distinct title, not one per report."""

    def __init__(self) -> None:
        self.cause_end: int | None = None  # end of the last report that is not a stall/panic
        self.seen_any = False
        self.out: list[Report] = []
        self.first: dict[str, int] = {}
        # Per kept report, what its later namesakes add (applied by result()).
        self.folded: list[tuple[int, bool]] = []

    def add(self, rep: Report) -> None:
        primary = True
        if rep.kind == "panic" and self.seen_any:
            primary = False  # a panic after a report is that report's end
        elif rep.kind in _STALL_KINDS and self.cause_end is not None \
                and rep.start_line - self.cause_end <= CONSEQUENCE_WINDOW:
            primary = False  # a lockup right after e.g. a lockdep splat is its effect
        if rep.kind not in CONSEQUENCE_KINDS:
            self.cause_end = rep.end_line
        self.seen_any = True
        index = self.first.get(rep.title)
        if index is not None:  # folded into its namesake: only its count and primary matter
            count, kept_primary = self.folded[index]
            self.folded[index] = (count + rep.count, kept_primary or primary)
            return
        if not primary and rep.kind == "panic" and rep.corrupted_reason == _ALONE:
            # 'Fatal exception' & co. are truncated reports only when alone.
            rep = replace(rep, corrupted=False, corrupted_reason="")
        if rep.primary != primary:
            rep = replace(rep, primary=primary)
        self.first[rep.title] = len(self.out)
        self.out.append(rep)
        self.folded.append((0, False))

    def result(self) -> list[Report]:
        """The reports so far, each with its namesakes' count folded in."""
        return [rep if not count else replace(rep, count=rep.count + count, primary=rep.primary or primary)
                for rep, (count, primary) in zip(self.out, self.folded, strict=True)]


def order_key(rep: Report) -> tuple[int, int]:
    # By header line: a report's start may reach back to a 'cut here' or
    # '====' line printed before another CPU's header.
    return rep.extra.get("header_line", rep.start_line), rep.end_line


def finalize_ordered(reports: Iterable[Report]) -> list[Report]:
    """finalize for reports already in order_key order (the scanner's)."""
    merger = Merger()
    for rep in reports:
        merger.add(rep)
    return merger.result()


def finalize(reports: Iterable[Report]) -> list[Report]:
    return finalize_ordered(sorted(reports, key=order_key))
