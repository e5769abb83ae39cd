"""Kernel console-log report parser.

Finds every kernel report (lockdep, hangs, stalls, oopses, sanitizers,
WARNINGs, panics, ...) in a console log, with syzkaller-compatible titles
and types, exact 1-based line bounds and cause/consequence marking.
Streaming and pure: nothing here imports outside harness/report/.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

from .merge import finalize_ordered
from .model import Report
from .reader import iter_file_lines, iter_file_pieces
from .stream import scan, scan_pieces

# Symbolisation (report.symbols) runs no tool itself: harness.binutils hands it the host's.
__all__ = ["Report", "iter_file_lines", "parse_file", "parse_lines", "parse_text"]


def parse_lines(lines: Iterable[str]) -> list[Report]:
    """Parse an iterable of console lines (with or without '\\n')."""
    return finalize_ordered(scan(lines))


def parse_text(text: str) -> list[Report]:
    if text.endswith("\n"):
        text = text[:-1]
    return parse_lines(text.split("\n")) if text else []


def parse_file(path: str | os.PathLike[str]) -> list[Report]:
    return finalize_ordered(scan_pieces(iter_file_pieces(path)))
