"""Reading console logs from disk in bounded memory."""
from __future__ import annotations

import os
from collections.abc import Iterator

CHUNK = 1 << 20
MAX_LINE = 4 << 20


def iter_file_pieces(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """The file in pieces of whole lines joined by '\\n', undecoded: read
    in 1 MiB chunks, each cut at its last newline (the rest goes to the
    next piece). Each piece holds `piece.count(b'\\n') + 1` lines; none is
    split here, which is left to whoever needs the lines."""
    pending = b""  # (never holds a newline)
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending += chunk
                if len(pending) > MAX_LINE:
                    # Garbage without newlines must not grow without bound:
                    # cut it into pseudo-lines (numbering is moot there).
                    yield pending
                    pending = b""
                continue
            # (One copy of the piece: joined from a view, not pending + chunk cut again.)
            piece = b"".join((pending, memoryview(chunk)[:cut])) if pending else chunk[:cut]
            pending = chunk[cut + 1:]
            yield piece
    if pending:
        yield pending


def decode(piece: bytes) -> str:
    """UTF-8 with replacement (binary garbage on a serial line is harmless).
    b'\\n' is never part of a multi-byte sequence, so pieces and lines
    decode alike whole or apart."""
    return piece.decode("utf-8", "replace")


# At most this many lines of a piece are decoded apart (decode_parts); past
# them the rest of the piece is decoded whole.
MAX_APART = 16
_WINDOW = 1 << 16  # (how much decode_parts tests at a time: no large string made to be thrown away)


def decode_parts(piece: bytes) -> list[str]:
    """decode(piece) as consecutive texts of whole lines (joined by '\\n',
    they are decode(piece)): the lines with a byte that is not ASCII apart
    from the stretches between them. A str with one non-ASCII character
    takes two or four bytes for every character, so that one such line in a
    piece of log would double the bytes every search, copy and hash reads;
    the stretches are ASCII strings of one byte a character."""
    if piece.isascii():
        return [decode(piece)]
    parts: list[str] = []
    view, pos, scan, end = memoryview(piece), 0, 0, len(piece)  # piece[pos:scan] is ASCII
    while scan < end and len(parts) < 2 * MAX_APART:
        try:
            str(view[scan:scan + _WINDOW], "ascii")
            scan += _WINDOW
            continue
        except UnicodeDecodeError as error:  # (its start: the first byte that is not ASCII)
            bad = scan + error.start
        start, stop = piece.rfind(b"\n", pos, bad) + 1 or pos, piece.find(b"\n", bad)
        if start > pos:
            parts.append(str(view[pos:start - 1], "ascii"))
        if stop < 0:
            pos = start
            break
        parts.append(str(view[start:stop], "utf-8", "replace"))
        pos = scan = stop + 1
    parts.append(str(view[pos:], "utf-8", "replace"))
    return parts


def iter_file_texts(path: str | os.PathLike[str]) -> Iterator[str]:
    """The file in pieces of whole lines (iter_file_pieces), decoded."""
    for piece in iter_file_pieces(path):
        yield decode(piece)


def iter_file_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a file, streamed (see iter_file_texts)."""
    for text in iter_file_texts(path):
        yield from text.split("\n")
