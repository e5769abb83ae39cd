"""Reading syzkaller-style report cases: a header of expectations, a blank
line, the console log verbatim (pkg/report/testdata/linux/report/N).

The console text is extracted as syzkaller's report_test.go does: the
header and an optional 'REPORT:' section after the log are not console
output. Used by the conformance test and by `make bench`'s dense log.
"""
from __future__ import annotations

from pathlib import Path

_HEADER_KEYS = ("TITLE", "ALT", "TYPE", "FRAME", "START", "END", "CORRUPTED", "SUPPRESSED",
                "PANICKED", "EXECUTOR", "#")


def split_case(raw: bytes) -> tuple[dict[str, list[str]], str]:
    """(header keys -> values, console text) of one case file's bytes."""
    text = raw.decode("utf-8", errors="replace").replace("\r", "")
    head, _, log = text.partition("\n\n")
    if not text.startswith(_HEADER_KEYS) and text.startswith("\n"):
        head, log = "", text[1:]
    header: dict[str, list[str]] = {}
    for line in head.split("\n"):
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        header.setdefault(key.strip(), []).append(value.strip())
    return header, log.split("\nREPORT:\n", 1)[0]


def load_case(path: Path) -> tuple[dict[str, list[str]], str]:
    return split_case(path.read_bytes())


def case_paths(corpus: Path) -> list[Path]:
    """The numbered case files of a corpus folder, in case-number order."""
    return sorted((p for p in corpus.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
