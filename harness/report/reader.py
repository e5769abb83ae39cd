"""Reading console logs from disk in bounded memory."""
from __future__ import annotations

import os
from collections.abc import Iterator

CHUNK = 1 << 20
MAX_LINE = 4 << 20


def iter_file_texts(path: str | os.PathLike[str]) -> Iterator[str]:
    """The file in pieces of whole lines joined by '\\n': read in 1 MiB
    chunks, decoded as UTF-8 with replacement (binary garbage on a serial
    line is harmless), split on '\\n' only. Each piece holds
    `piece.count('\\n') + 1` lines; none is split here, which is left to
    whoever needs the lines. A chunk is cut at its last newline before
    decoding: b'\\n' is never part of a multi-byte UTF-8 sequence."""
    pending = b""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            if pending:
                chunk = pending + chunk
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending = chunk
                if len(pending) > MAX_LINE:
                    # Garbage without newlines must not grow without bound:
                    # cut it into pseudo-lines (numbering is moot there).
                    yield pending.decode("utf-8", "replace")
                    pending = b""
                continue
            pending = chunk[cut + 1:]
            yield chunk[:cut].decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def iter_file_blocks(path: str | os.PathLike[str]) -> Iterator[tuple[list[str], str]]:
    """(lines, text) pieces of a file (see iter_file_texts)."""
    for text in iter_file_texts(path):
        yield text.split("\n"), text


def iter_file_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a file, streamed (see iter_file_texts)."""
    for text in iter_file_texts(path):
        yield from text.split("\n")
