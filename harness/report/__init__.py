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
from .stream import scan, scan_blocks

__all__ = ["Report", "parse_lines", "parse_text", "parse_file", "iter_file_lines"]

_CHUNK = 1 << 20


def parse_lines(lines: Iterable[str]) -> list[Report]:
    """Parse an iterable of console lines (with or without '\\n')."""
    return finalize(scan(lines))


def parse_text(text: str) -> list[Report]:
    if text.endswith("\n"):
        text = text[:-1]
    return parse_lines(text.split("\n")) if text else []


def iter_file_blocks(path: Union[str, "os.PathLike[str]"]) -> Iterator[tuple[list[str], str]]:
    """(lines, text) blocks of a file: read in 1 MiB chunks, decoded as UTF-8
    with replacement (binary garbage on a serial line is harmless), split on
    '\\n' only; `text` is the block's complete lines joined by '\\n'."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            if not chunk:
                break
            pending += decoder.decode(chunk)
            cut = pending.rfind("\n")
            if cut < 0:
                continue  # a single line longer than a chunk: keep reading
            text, pending = pending[:cut], pending[cut + 1:]
            yield text.split("\n"), text
    pending += decoder.decode(b"", final=True)
    if pending:
        yield [pending], pending


def iter_file_lines(path: Union[str, "os.PathLike[str]"]) -> Iterator[str]:
    """The lines of a file, streamed (see iter_file_blocks)."""
    for lines, _ in iter_file_blocks(path):
        yield from lines


def parse_file(path: Union[str, "os.PathLike[str]"]) -> list[Report]:
    return finalize(scan_blocks(iter_file_blocks(path)))
