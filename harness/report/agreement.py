"""Scoring the parser against syzkaller-style report cases.

Each case (corpus.split_case) says what syzkaller finds in its console
text: the first report's TITLE and TYPE (and FRAME), or nothing. A case
agrees on detection when we find a report exactly when it expects one,
and, for cases with a crash, on type, title and frame when our first
report's do. Used by the conformance test on ../shared/corpus and by
tools/score_cases.py on cases the parser has never seen.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from . import parse_text
from .titles import title_kind, title_type

# Not scored: messages of syzkaller's own executor, never printed by a
# kernel we test (SYZFAIL/SYZFATAL), and kmemleak results that the
# executor scans for and prints (our guests do not run that scan).
EXCLUDED_TYPES = {"SYZ_FAILURE": "syzkaller executor self-report",
                  "LEAK": "kmemleak scan done by syzkaller's executor"}
# Older cases have no TYPE header; their titles say the same.
_EXCLUDED_TITLES = {"SYZFAIL": "SYZ_FAILURE", "SYZFATAL": "SYZ_FAILURE", "memory leak in": "LEAK"}
# syzkaller's Report.Frame: what follows the title's last ' in '.
_TITLE_FRAME = re.compile(r".* in ((?:<[a-zA-Z0-9_: ]+>)?[a-zA-Z0-9_:]+)")


def title_frame(title: str) -> str:
    match = _TITLE_FRAME.match(title)
    return match.group(1) if match else ""


def excluded_as(header: dict[str, list[str]]) -> str:
    """The excluded type a case falls under, or ""."""
    want_type = (header.get("TYPE") or [""])[0]
    if want_type in EXCLUDED_TYPES:
        return want_type
    title = (header.get("TITLE") or [""])[0]
    return next((t for prefix, t in _EXCLUDED_TITLES.items() if title.startswith(prefix)), "")


def _new_counts() -> Counter:
    return Counter({"cases": 0, "detect": 0, "type": 0, "title": 0, "crash_cases": 0,
                    "typed_cases": 0, "frame": 0, "frame_cases": 0})


@dataclass
class Tally:
    """Agreement counts over many cases, in all and per expected kind."""

    # syzkaller's current report_test.go reads a missing TYPE as the
    # unknown type (""); cases older than types carry none, and for those
    # it means "not said": False leaves them out of the type figure.
    untyped_means_unknown: bool = True
    counts: Counter = field(default_factory=_new_counts)
    kinds: dict[str, Counter] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def add(self, name: str, header: dict[str, list[str]], log: str) -> None:
        """Score one case (not an excluded one: see excluded_as)."""
        want_title = (header.get("TITLE") or [""])[0]
        types = header.get("TYPE")
        want_type: str | None = types[0] if types else ("" if self.untyped_means_unknown else None)
        kind = title_kind(want_title, title_type(want_title)) if want_title else "none"
        tallies = (self.counts, self.kinds.setdefault(kind, _new_counts()))
        reports = parse_text(log)
        got = reports[0] if reports else None

        def count(key: str, ok: bool = True) -> None:
            for c in tallies:
                c[key] += ok

        count("cases")
        if bool(got) == bool(want_title):
            count("detect")
        else:
            self.mismatches.append(f"{name}: detect want={want_title!r} got={got.title if got else None!r}")
        if not want_title:
            return
        want_frame = (header.get("FRAME") or [title_frame(want_title)])[0]
        count("crash_cases")
        count("typed_cases", want_type is not None)
        count("frame_cases", bool(want_frame))
        if got is None:
            return
        got_type = "" if got.type == "UNKNOWN" else got.type
        if want_type is not None:
            count("type", got_type == want_type)
            if got_type != want_type:
                self.mismatches.append(f"{name}: type want={want_type!r} got={got_type!r} ({got.title})")
        count("title", got.title == want_title)
        if got.title != want_title:
            self.mismatches.append(f"{name}: title want={want_title!r} got={got.title!r}")
        if want_frame:
            count("frame", got.frame == want_frame)
            if got.frame != want_frame and got.title == want_title:
                self.mismatches.append(f"{name}: frame want={want_frame!r} got={got.frame!r}")


def rates(counts: Counter) -> dict:
    return {
        "detection": round(counts["detect"] / max(counts["cases"], 1), 4),
        "type": round(counts["type"] / max(counts["typed_cases"], 1), 4),
        "title": round(counts["title"] / max(counts["crash_cases"], 1), 4),
        "frame": round(counts["frame"] / max(counts["frame_cases"], 1), 4),
    }


def summary(counts: Counter) -> str:
    r = rates(counts)
    return (f"{counts['cases']} cases ({counts['crash_cases']} with a crash, {counts['typed_cases']} typed): "
            f"detection {r['detection']:.2%}, type {r['type']:.2%}, title {r['title']:.2%}, "
            f"frame {r['frame']:.2%}")


def table(kinds: dict[str, Counter]) -> list[str]:
    """Per expected kind: cases and agreement."""
    rows = [f"    {'kind':<16} {'cases':>5} {'title':>7} {'type':>7} {'frame':>7}"]
    for kind, c in sorted(kinds.items(), key=lambda kv: (-kv[1]["cases"], kv[0])):
        got = rates(c)
        if not c["crash_cases"]:
            rows.append(f"    {kind:<16} {c['cases']:>5} {'':>7} {'':>7} {'':>7}  detection {got['detection']:.0%}")
            continue
        type_rate = f"{got['type']:>7.1%}" if c["typed_cases"] else f"{'-':>7}"
        rows.append(f"    {kind:<16} {c['cases']:>5} {got['title']:>7.1%} {type_rate} {got['frame']:>7.1%}")
    return rows
