"""Golden corpus: our own console logs with the reports we expect in them.

Each file under tests/data/reports/ is a header, a blank line, then the
raw log (kept byte for byte: some cases have '\\r\\n' line ends, printk
caller ids, no timestamps, interleaved CPUs or userspace output). The
header lists every expected report as a block of syzkaller-style keys
(TITLE:, TYPE:, ...) plus our own (KIND:, START:, END:, PRIMARY:,
COUNT:, GUILTY: the file syzkaller would blame, when the log names files);
'#' lines are comments and are kept. Line numbers count from the
first line after the blank line.

UPDATE_GOLDEN=1 rewrites the headers from what the parser now returns;
review the diff before committing it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.report import parse_file, parse_text

DATA = Path(__file__).resolve().parent / "data" / "reports"
CASES = sorted(p for p in DATA.iterdir() if p.is_file()) if DATA.is_dir() else []
ALL_KINDS = {"lockdep", "atomic-sleep", "preempt", "hang", "rcu-stall", "soft-lockup",
             "hard-lockup", "warning", "bug", "oops", "panic", "kasan", "kfence", "ubsan",
             "kcsan", "list-corruption", "refcount"}


def split_case(path: Path) -> tuple[list[str], str]:
    raw = path.read_bytes().decode("utf-8", errors="replace")
    head, _sep, log = raw.partition("\n\n")
    if raw.startswith("\n"):
        head, log = "", raw[1:]
    return (head.split("\n") if head else []), log


def expected_blocks(header: list[str]) -> list[dict]:
    blocks: list[dict] = []
    for line in header:
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "TITLE":
            blocks.append({"title": value, "primary": True, "count": 1, "corrupted": "", "guilty": ""})
        elif key == "TYPE":
            blocks[-1]["type"] = value
        elif key == "KIND":
            blocks[-1]["kind"] = value
        elif key in ("START", "END", "COUNT"):
            blocks[-1][{"START": "start", "END": "end", "COUNT": "count"}[key]] = int(value)
        elif key == "PRIMARY":
            blocks[-1]["primary"] = value == "Y"
        elif key == "CORRUPTED":
            blocks[-1]["corrupted"] = value
        elif key == "GUILTY":
            blocks[-1]["guilty"] = value
    return blocks


def actual_blocks(reports) -> list[dict]:
    return [{"title": r.title, "type": r.type, "kind": r.kind, "start": r.start_line,
             "end": r.end_line, "primary": r.primary, "count": r.count,
             "corrupted": r.corrupted_reason, "guilty": r.guilty_file} for r in reports]


def render(header: list[str], blocks: list[dict]) -> str:
    lines = [line for line in header if line.startswith("#")]
    for b in blocks:
        lines += [f"TITLE: {b['title']}", f"TYPE: {b['type']}", f"KIND: {b['kind']}",
                  f"START: {b['start']}", f"END: {b['end']}",
                  f"PRIMARY: {'Y' if b['primary'] else 'N'}"]
        if b["count"] != 1:
            lines.append(f"COUNT: {b['count']}")
        if b["corrupted"]:
            lines.append(f"CORRUPTED: {b['corrupted']}")
        if b["guilty"]:
            lines.append(f"GUILTY: {b['guilty']}")
    return "\n".join(lines)


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_golden(path: Path, tmp_path: Path) -> None:
    header, log = split_case(path)
    got = actual_blocks(parse_text(log))
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes((render(header, got) + "\n\n" + log).encode("utf-8"))
        return
    assert got == expected_blocks(header)
    # The file reader (chunked, incremental decoding) must agree with text parsing.
    copy = tmp_path / "console.log"
    copy.write_bytes(log.encode("utf-8"))
    assert actual_blocks(parse_file(copy)) == got


def test_corpus_covers_every_kind() -> None:
    seen = set()
    for path in CASES:
        seen.update(b.get("kind") for b in expected_blocks(split_case(path)[0]))
    assert seen >= ALL_KINDS, f"no golden case for kinds {sorted(ALL_KINDS - seen)}"
