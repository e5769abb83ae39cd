"""`parse` subcommand backend: list the kernel reports found in console logs.

Exit status: 0 when no file holds a report, 1 when any does, 2 when a file
cannot be read (the message goes to stderr; other files are still parsed).
"""
from __future__ import annotations

import json
import sys
from typing import TextIO

from . import parse_file
from .model import Report, printable

EXIT_CLEAN = 0
EXIT_REPORTS = 1
EXIT_UNREADABLE = 2


def _summary_line(rep: Report) -> str:
    flags = []
    if not rep.primary:
        flags.append("consequence")
    if rep.count > 1:
        flags.append(f"x{rep.count}")
    if rep.corrupted:
        flags.append(f"corrupted: {rep.corrupted_reason}")
    tail = f" ({', '.join(flags)})" if flags else ""
    return (f"  lines {rep.start_line}-{rep.end_line}  {rep.kind:<15} {rep.type:<26} "
            f"{rep.title}{tail}")


def parse_command(paths: list[str], as_json: bool, out: TextIO = sys.stdout,
                  err: TextIO | None = None) -> int:
    err = err if err is not None else sys.stderr
    status = EXIT_CLEAN
    documents: list[dict] = []
    for path in paths:
        try:
            reports = parse_file(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(f"error: cannot read {path}: {reason}", file=err)
            documents.append({"file": path, "error": reason, "reports": []})
            status = EXIT_UNREADABLE
            continue
        if reports and status == EXIT_CLEAN:
            status = EXIT_REPORTS
        documents.append({"file": path, "reports": [r.to_json() for r in reports]})
        if not as_json:
            primary = sum(1 for r in reports if r.primary)
            print(f"{path}: {len(reports)} report(s), {primary} primary", file=out)
            for rep in reports:
                print(printable(_summary_line(rep)), file=out)
    if as_json:
        json.dump(documents, out, indent=2)
        out.write("\n")
    return status


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.report.cli [--json] FILE...` for quick looks."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    if not paths:
        print("usage: python -m harness.report.cli [--json] CONSOLE_LOG...", file=sys.stderr)
        return EXIT_UNREADABLE
    return parse_command(paths, as_json)


if __name__ == "__main__":
    sys.exit(main())
