"""The terminal boundary: what the harness writes to stdout and stderr passes
printable() (newlines kept), whoever wrote it: our progress lines, a log
record with an SSH banner in it, a traceback, argparse. The guest's bytes
never reach the user's terminal raw; console.log keeps them verbatim.

Only `sys.stdout.buffer` stays raw: the interactive `shell` is the guest's
own terminal session by request.
"""
from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO, cast

from harness.report.model import printable


class SafeStream:
    """A text stream that escapes what it is given and writes it to `raw`.

    A write of exactly "\\r" passes: the kernel build's progress line on a tty
    ends so (print(..., end="\\r") writes the end on its own); a carriage return
    inside any text is escaped like every other control."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(text if text == "\r" else printable(text, newlines=True))
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> object:   # flush, isatty, fileno, buffer, encoding...
        return getattr(self.raw, name)


def safe(stream: TextIO) -> TextIO:
    return stream if isinstance(stream, SafeStream) else cast(TextIO, SafeStream(stream))


@contextlib.contextmanager
def safe_stdio() -> Iterator[None]:
    """sys.stdout and sys.stderr through SafeStream for the duration."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = safe(sys.stdout), safe(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def say(message: str) -> None:
    """A run's progress line on stderr, stamped: `[HH:MM:SS] build: kernel`."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
