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


def mark_primary(reports: list[Report]) -> list[Report]:
    """`reports` sorted by start line; returns them with `primary` set."""
    out: list[Report] = []
    cause_end = None  # end line of the last report that is not a stall/panic
    seen_any = False
    for rep in reports:
        primary = True
        if rep.kind == "panic" and seen_any:
            primary = False  # a panic after a report is that report's end
        elif rep.kind in _STALL_KINDS and cause_end is not None \
                and rep.start_line - cause_end <= CONSEQUENCE_WINDOW:
            primary = False  # a lockup right after e.g. a lockdep splat is its effect
        if rep.kind not in CONSEQUENCE_KINDS:
            cause_end = rep.end_line
        seen_any = True
        if not primary and rep.kind == "panic" and rep.corrupted_reason == _ALONE:
            # 'Fatal exception' & co. are truncated reports only when alone.
            rep = replace(rep, corrupted=False, corrupted_reason="")
        out.append(rep if rep.primary == primary else replace(rep, primary=primary))
    return out


def dedupe(reports: Iterable[Report]) -> list[Report]:
    """Fold reports with equal titles into the first, counting them."""
    first: dict[str, int] = {}
    out: list[Report] = []
    for rep in reports:
        index = first.get(rep.title)
        if index is None:
            first[rep.title] = len(out)
            out.append(rep)
            continue
        kept = out[index]
        out[index] = replace(kept, count=kept.count + rep.count,
                             primary=kept.primary or rep.primary)
    return out


def finalize(reports: Iterable[Report]) -> list[Report]:
    # By header line: a report's start may reach back to a 'cut here' or
    # '====' line printed before another CPU's header.
    ordered = sorted(reports, key=lambda r: (r.extra.get("header_line", r.start_line), r.end_line))
    return dedupe(mark_primary(ordered))
