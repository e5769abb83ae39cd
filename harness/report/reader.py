"""Reading console logs from disk in bounded memory."""
from __future__ import annotations

import codecs
import os
from collections.abc import Iterator

CHUNK = 1 << 20
MAX_LINE = 4 << 20


def iter_file_blocks(path: str | os.PathLike[str]) -> Iterator[tuple[list[str], str]]:
    """(lines, text) blocks of a file: read in 1 MiB chunks, decoded as UTF-8
    with replacement (binary garbage on a serial line is harmless), split on
    '\\n' only; `text` is the block's complete lines joined by '\\n'."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            pending += decoder.decode(chunk)
            cut = pending.rfind("\n")
            if cut < 0:
                if len(pending) > MAX_LINE:
                    # Garbage without newlines must not grow without bound:
                    # cut it into pseudo-lines (numbering is moot there).
                    yield [pending], pending
                    pending = ""
                continue
            text, pending = pending[:cut], pending[cut + 1:]
            yield text.split("\n"), text
    pending += decoder.decode(b"", final=True)
    if pending:
        yield [pending], pending


def iter_file_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a file, streamed (see iter_file_blocks)."""
    for lines, _ in iter_file_blocks(path):
        yield from lines
