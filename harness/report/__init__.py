"""Kernel console-log report parser.

Finds every kernel report (lockdep, hangs, stalls, oopses, sanitizers,
WARNINGs, panics, ...) in a console log, with syzkaller-compatible titles
and types, exact 1-based line bounds and cause/consequence marking.
Streaming and pure: nothing here imports outside harness/report/.
"""
from __future__ import annotations

import codecs
import os
from typing import Iterable, Iterator, Union

from .merge import finalize
from .model import Report
from .stream import scan

__all__ = ["Report", "parse_lines", "parse_text", "parse_file", "iter_file_lines"]

_CHUNK = 1 << 20


def parse_lines(lines: Iterable[str]) -> list[Report]:
    """Parse an iterable of console lines (with or without '\\n')."""
    return finalize(scan(lines))


def parse_text(text: str) -> list[Report]:
    if text.endswith("\n"):
        text = text[:-1]
    return parse_lines(text.split("\n")) if text else []


def iter_file_lines(path: Union[str, "os.PathLike[str]"]) -> Iterator[str]:
    """Lines of a file split on '\\n' only, read in 1 MiB chunks and decoded
    as UTF-8 with replacement, so binary garbage on a serial line is harmless."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            pending += decoder.decode(chunk)
            parts = pending.split("\n")
            pending = parts.pop()
            yield from parts
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def parse_file(path: Union[str, "os.PathLike[str]"]) -> list[Report]:
    return parse_lines(iter_file_lines(path))
