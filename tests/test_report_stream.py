"""Streaming behaviour, serial-line quirks, merging and the parse CLI."""
from __future__ import annotations

import io
import json
import re
import tracemalloc
from pathlib import Path

from harness.report import Report, parse_file, parse_lines, parse_text
from harness.report.cli import parse_command
from harness.report.lines import CONSOLE, NO_PREFIX, split_line
from harness.report.merge import finalize
from harness.report.reader import MAX_APART, decode, decode_parts
from harness.report.stream import MAX_TEXT_LINES, Scanner

WARNING = [
    "------------[ cut here ]------------",
    "WARNING: CPU: 0 PID: 7 at mm/mmap.c:10 do_thing+0x1/0x2",
    "Modules linked in:",
    "RIP: 0010:do_thing+0x1/0x2",
    "Call Trace:",
    " <TASK>",
    " caller_fn+0x10/0x20",
    " </TASK>",
    "---[ end trace 0000000000000000 ]---",
]


def stamped(lines, t0=100.0, caller=""):
    return [f"[{t0 + i / 1000:12.6f}]{caller} {line}" for i, line in enumerate(lines)]


def noise(n, t0=1.0):
    for i in range(n):
        yield f"[{t0 + i / 1e6:12.6f}] random: harmless message number {i}"


# -- line splitting ------------------------------------------------------------

def test_split_line_prefixes_and_quirks():
    assert split_line("[   12.345678] BUG: foo\r\n").text == "BUG: foo"
    line = split_line("[   12.345678][  T123] WARNING: bar\r")
    assert (line.text, line.context) == ("WARNING: bar", "[T123]")
    assert split_line("[    1.000000][    C1] x").context == "[C1]"
    assert split_line("[    1.000000] x").context == CONSOLE
    assert split_line("userspace says hi").context == NO_PREFIX
    dropped = split_line("** 5 printk messages dropped ** [    2.000000] BUG: baz")
    assert (dropped.text, dropped.context) == ("BUG: baz", CONSOLE)
    assert split_line("[    1.0] ? foo+0x1/0x2").questionable
    assert split_line("[c000] [c001] foo+0x1/0x2 (unreliable)").questionable


def test_crlf_and_lf_logs_parse_the_same():
    lf = "\n".join(stamped(WARNING)) + "\n"
    crlf = lf.replace("\n", "\r\n")
    assert parse_text(lf) == parse_text(crlf)
    assert parse_text(lf)[0].title == "WARNING in do_thing"


def test_lines_with_or_without_newlines():
    with_nl = [line + "\n" for line in stamped(WARNING)]
    assert parse_lines(with_nl) == parse_lines(stamped(WARNING))


def test_caller_ids_separate_interleaved_reports():
    a = stamped(WARNING, caller="[  T10]")
    b = stamped(["userspace-ish kernel chatter"] * len(WARNING), caller="[  T11]")
    mixed = [x for pair in zip(a, b, strict=False) for x in pair]
    reports = parse_lines(mixed)
    assert [r.title for r in reports] == ["WARNING in do_thing"]
    assert (reports[0].start_line, reports[0].end_line) == (1, 2 * len(WARNING) - 1)


def test_untimestamped_userspace_warning_is_not_a_report():
    log = stamped(["mmlock: loaded"]) + ["runner: WARNING: nothing to do"]
    assert parse_lines(log) == []


# -- streaming and memory --------------------------------------------------------

def test_generator_is_consumed_lazily_in_bounded_memory():
    consumed = 0

    def lines():
        nonlocal consumed
        for line in noise(60_000):
            consumed += 1
            yield line
        yield from stamped(WARNING, t0=500.0)
        for line in noise(60_000, t0=600.0):
            consumed += 1
            yield line

    tracemalloc.start()
    reports = parse_lines(lines())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert consumed == 120_000
    assert [r.title for r in reports] == ["WARNING in do_thing"]
    assert reports[0].start_line == 60_001
    # 120k lines are ~8 MB of text; keeping them would show up here.
    assert peak < 2 * 1024 * 1024, peak


def test_open_report_text_is_capped():
    scanner = Scanner()
    for line in stamped(WARNING[:5]):
        scanner.feed(line)
    for i in range(MAX_TEXT_LINES * 3):
        scanner.feed(f"[  200.{i:06d}]  frame_{i}+0x1/0x2")
    assert scanner.open and scanner.open[0].lines <= MAX_TEXT_LINES
    assert finalize(scanner.finish())[0].title == "WARNING in do_thing"


def test_parse_file_handles_chunk_boundaries_and_bad_bytes(tmp_path: Path):
    pad = b"x" * ((1 << 20) - 3) + b"\n"  # next char straddles the 1 MiB chunk edge
    body = "\n".join(stamped(WARNING)).encode() + b"\n"
    path = tmp_path / "console.log"
    path.write_bytes(pad[:-1] + "é".encode() + b"\n\xff\xfe garbage\n" + body)
    reports = parse_file(path)
    assert [r.title for r in reports] == ["WARNING in do_thing"]
    assert reports[0].start_line == 3



def test_pieces_decode_in_parts_with_their_non_ascii_lines_apart():
    pieces = [b"", b"\n", b"a\nb", b"\xc3\xa9", b"a\n\xc3\xa9\nb", b"\n\n\xff\n\n", b"x\xe2\x82\ny\n\xe2\x82",
              b"ok\n" * 5000 + "caf\xe9\n".encode() + b"ok\n" * 5000 + b"\xff end",
              b"\n".join(b"line %d \xc3\xa9" % i for i in range(3 * MAX_APART))]
    for piece in pieces:
        parts = decode_parts(piece)
        assert "\n".join(parts) == decode(piece)
        assert all(part.isascii() or "\n" not in part for part in parts[:2 * MAX_APART])
    assert [part.isascii() for part in decode_parts(pieces[7])] == [True, False, True, False]


def test_undecoded_quiet_pieces_keep_numbering_and_openers(tmp_path: Path):
    """parse_file only counts the lines of a quiet 1 MiB piece (no needle,
    nothing open, timestamps seen before): line numbers, the 'cut here'
    line at the very end of such a piece that opens the next piece's
    report, and bytes that do not decode must come out as parse_text has
    them."""
    quiet = "\n".join(noise(16_000)).encode() + b"\n"  # ~1 MB, 16,000 lines

    def piece(tail: bytes) -> bytes:  # exactly one 1 MiB read: 16,001 lines and the tail
        fill = (1 << 20) - len(quiet) - len(tail) - len(b"[    8.800000] \n")
        return quiet + b"[    8.800000] " + b"x" * fill + b"\n" + tail

    cut = ("\n".join(stamped(WARNING[:1], t0=9.0)) + "\n").encode()
    odd = "[    8.900000] caf\u00e9 \udcff\n".encode("utf-8", "surrogateescape")
    log = piece(b"") + piece(odd + cut) + "\n".join(stamped(WARNING[1:], t0=9.1)).encode() + b"\n" + quiet
    path = tmp_path / "console.log"
    path.write_bytes(log)
    reports = parse_file(path)
    assert reports == parse_text(log.decode("utf-8", "replace"))
    assert [(r.title, r.start_line) for r in reports] == [("WARNING in do_thing", 2 * 16_001 + 2)]


# -- merging -----------------------------------------------------------------------

def _rep(title, kind, line):
    return Report(title=title, type="X", kind=kind, start_line=line, end_line=line + 1,
                  extra={"header_line": line})


def test_consequences_are_not_primary_and_duplicates_fold():
    merged = finalize([
        _rep("kernel panic: panic_on_warn set", "panic", 50),
        _rep("WARNING in f", "warning", 10),
        _rep("WARNING in f", "warning", 30),
        _rep("BUG: soft lockup in g", "soft-lockup", 40),
    ])
    assert [(r.title, r.primary, r.count) for r in merged] == [
        ("WARNING in f", True, 2),
        ("BUG: soft lockup in g", False, 1),
        ("kernel panic: panic_on_warn set", False, 1),
    ]


def test_folded_reports_keep_the_first_ones_frames_and_file():
    """The scanner skips frames and guilty file of a report whose title an
    earlier one already has; the merged report is the first one's."""
    second = [line.replace("caller_fn", "other_caller").replace("mm/mmap.c", "mm/util.c") for line in WARNING]
    reports = parse_lines(stamped(WARNING) + stamped(second, t0=200.0))
    assert [(r.title, r.count, r.frames, r.guilty_file) for r in reports] == \
        [("WARNING in do_thing", 2, ("caller_fn",), "mm/mmap.c")]
    alone = parse_lines(stamped(second, t0=200.0))
    assert (alone[0].frames, alone[0].guilty_file) == (("other_caller",), "mm/util.c")

def test_stall_long_after_an_unrelated_report_stays_primary():
    merged = finalize([_rep("WARNING in f", "warning", 10),
                       _rep("BUG: soft lockup in g", "soft-lockup", 90_000)])
    assert [r.primary for r in merged] == [True, True]


def test_lone_stall_and_lone_panic_are_primary():
    assert finalize([_rep("INFO: task hung in f", "hang", 5)])[0].primary
    assert finalize([_rep("kernel panic: x", "panic", 5)])[0].primary


# -- parse CLI -----------------------------------------------------------------------

def test_parse_command_exit_codes(tmp_path: Path):
    clean = tmp_path / "clean.log"
    clean.write_text("\n".join(stamped(["nothing to see"])) + "\n")
    dirty = tmp_path / "dirty.log"
    dirty.write_text("\n".join(stamped(WARNING)) + "\n")
    out, err = io.StringIO(), io.StringIO()
    assert parse_command([str(clean)], as_json=False, out=out, err=err) == 0
    assert parse_command([str(clean), str(dirty)], as_json=False, out=out, err=err) == 1
    assert "WARNING in do_thing" in out.getvalue()
    missing = tmp_path / "missing.log"
    assert parse_command([str(dirty), str(missing)], as_json=False, out=out, err=err) == 2
    assert "cannot read" in err.getvalue() and "Traceback" not in err.getvalue()
    assert parse_command([str(tmp_path)], as_json=False, out=out, err=err) == 2


def test_parse_command_json(tmp_path: Path):
    dirty = tmp_path / "dirty.log"
    dirty.write_text("\n".join(stamped(WARNING)) + "\n")
    out = io.StringIO()
    assert parse_command([str(dirty)], as_json=True, out=out) == 1
    doc = json.loads(out.getvalue())
    assert doc[0]["file"] == str(dirty)
    rep = doc[0]["reports"][0]
    assert rep["title"] == "WARNING in do_thing" and rep["kind"] == "warning"
    assert rep["start_line"] == 1 and rep["end_line"] == len(WARNING)


def test_memory_does_not_grow_with_the_number_of_reports(tmp_path: Path):
    """Reports are merged as they come, in header order (one kept per
    title), so thousands of reports cost no more than one."""
    frames = [f"  frame_{i}+0x1/0x2" for i in range(60)]
    one = WARNING[:5] + frames + WARNING[6:]
    path = tmp_path / "many.log"
    with open(path, "w") as handle:
        for k in range(3000):
            handle.write("\n".join(stamped(one, t0=10.0 + k)) + "\n")
    tracemalloc.start()
    reports = parse_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(r.title, r.count) for r in reports] == [("WARNING in do_thing", 3000)]
    assert peak < 8_000_000, f"{peak} bytes traced for 3000 reports of one title"  # all kept: ~17 MB


def test_every_header_contains_a_prefilter_needle():
    """A line the pre-filter skips must not be able to open a report."""
    from harness.report.prefilter import NEEDLES, Finder, build_needles, has_needle
    from harness.report.table_oops import CONTINUATION_HEADERS, GROUPS

    def hit(text: str) -> bool:
        return any((n in text) if isinstance(n, str) else n.search(text) is not None for n in NEEDLES)

    for group in GROUPS:
        assert hit(group.header), group.header
    for header in CONTINUATION_HEADERS:
        assert hit(header.pattern.replace("\\", "")), header.pattern
    text = "quiet line\n[    1.0] BUG: x\nquiet\n[    2.0] Kernel panic - not syncing: y"
    finder = Finder(text)
    first = finder.next(0)  # somewhere in the header's line: all the scanner needs
    assert text.rfind("\n", 0, first) + 1 == text.index("[    1.0] BUG: x")
    second = finder.next(text.index("\n", first))
    assert text.rfind("\n", 0, second) + 1 == text.index("[    2.0] Kernel panic")
    assert finder.next(second + 1) == -1
    assert not has_needle(b"panic=-1 default fault quiet\n" * 3)
    # A needle matches where its header is, not where its lead character is alone.
    assert not has_needle(b"Kernel: panic 1 KASAN: BUG-free UG: invalid_opcode: int 3: DEBUG kmalloc\n")
    # A header without a lead character gets a needle of its own.
    assert build_needles(["BUG:", "xyz: odd"])[1:] == ("xyz: odd",)
    assert all(has_needle(f"x {header} y".encode()) for header in
               ("Kernel panic", "rust_kernel: panicked", "general protection fault", "divide_error: ",
                "fatal error: runtime", "PANIC: double fault", "panic: x"))


def test_bulk_path_agrees_with_line_by_line_on_tricky_logs(tmp_path: Path):
    """parse_file takes plain lines of an open report in bulk; these logs
    hold what must stop it: other contexts, a login prompt before a
    timestamp, carriage returns, questionable frames, a long gap, lines
    without a timestamp, an NMI backtrace."""
    body = WARNING[:4] + [" ? noise+0x1/0x2", "  frame_a+0x1/0x2 (unreliable)"] + WARNING[4:]
    logs = {
        "interleaved": [x for pair in zip(stamped(body, caller="[  T10]"),
                                          stamped(["chatter"] * len(body), caller="[    C1]"), strict=False)
                        for x in pair],
        "login": stamped(body[:4]) + ["[    1.5] ok login: [    1.6][  T7] Call Trace:"] + stamped(body[4:], 2.0),
        "crlf": [line + "\r" for line in stamped(body)],
        "gap": stamped(body[:5]) + list(noise(80, 5.0)) + stamped(body[5:], 9.0),
        "untimestamped": body,
        "nmi": stamped(body[:5] + ["Sending NMI from CPU 0 to CPUs 1:"]) + stamped(body[5:], caller="[    C1]"),
        # A report of CPU 1's own and the NMI backtrace's both take CPU 1's lines (two active
        # reports), with the same gap and with gaps that reach MAX_GAP at different lines.
        "nmi-two": stamped(body[:5] + ["Sending NMI from CPU 0 to CPUs 1:"])
        + stamped(["BUG: spinlock lockup suspected on CPU#1"] + body[4:-1] + ["quiet"] * 40 + body[6:-1]
                  + ["quiet"] * 70 + body[4:], 5.0, caller="[    C1]"),
        "nmi-gaps": stamped(body[:5] + ["Sending NMI from CPU 0 to CPUs 1:"])
        + stamped(["quiet"] * 30 + ["BUG: spinlock lockup suspected on CPU#1"] + ["quiet"] * 40 + body[4:-1]
                  + ["quiet"] * 20 + body[6:], 5.0, caller="[    C1]"),
    }
    for name, lines in logs.items():
        path = tmp_path / f"{name}.log"
        path.write_text("\n".join(lines) + "\n")
        assert [r.to_json() for r in parse_file(path)] == [r.to_json() for r in parse_lines(lines)], name
        assert parse_lines(lines), name


def test_opener_hint_holds_every_opener_and_recent_finds_it():
    """A header's look-back splits its lines only where OPENER_HINT is found;
    it must be found in every line OPENERS takes, whole or in a stretch."""
    from harness.report.content import OPENER_HINT, OPENERS
    from harness.report.lines import Recent

    openers = ["------------[ cut here ]------------", "8<--- cut here ---", "=" * 66,
               "DEBUG_LOCKS_WARN_ON(1)", "refcount_t: underflow; use-after-free.", "list_add corruption. x",
               "list_del corruption, y", "rust_kernel: panicked at z", "kernel BUG at mm/x.c:1!",
               "cut\r here"]
    for line in openers:
        raw = f"[   1.000000][ T1] {line}"
        assert OPENER_HINT.search(raw), line
        if "\r" not in line:
            assert OPENERS.match(split_line(raw).text), line
    pattern_bytes = re.compile(OPENER_HINT.pattern.encode())
    for at in range(6):
        lines = ["[   1.0] plain"] * 6
        lines[at] = "[   1.0] " + "=" * 30
        text = "\n".join(lines)
        for stretch in (text, text.encode()):
            recent = Recent()
            recent.stretch(6, stretch, 0, len(stretch))
            assert recent.hold(OPENER_HINT, pattern_bytes) == (at >= 2)  # the last four lines
        recent = Recent()
        for n, line in enumerate(lines, 1):
            recent.line(n, line)
        assert recent.hold(OPENER_HINT, pattern_bytes) == (at >= 2)


def test_scanner_reports_have_every_field():
    """finish.to_report fills a Report's __dict__ directly: with every field."""
    from dataclasses import fields

    names = {f.name for f in fields(Report)}
    reports = list(Scanner().feed_text("\n".join(stamped(WARNING))))
    scanner = Scanner()
    for line in stamped(WARNING + ["BUG: KASAN: use-after-free in foo+0x1/0x2"]):
        reports.extend(scanner.feed(line))
    reports.extend(scanner.finish())
    assert len(reports) == 3
    for rep in reports:
        assert rep.__dict__.keys() == names
        assert rep == Report(**{name: getattr(rep, name) for name in names})


def test_many_reports_of_one_header_and_length_are_each_described_and_the_cache_stays_small():
    """The description cache files texts by header and length: reports that differ only in
    a same-length frame each get their own title, and one key keeps at most PER_KEY texts."""
    scanner = Scanner()
    reports: list[Report] = []
    for n in range(40):
        lines = [line.replace("do_thing", f"do_th{n:03d}") for line in WARNING]
        reports.extend(scanner.feed_text("\n".join(stamped(lines, t0=100.0 + n)) + "\n"))
    reports.extend(scanner.finish())
    assert [rep.title for rep in reports] == [f"WARNING in do_th{n:03d}" for n in range(40)]
    assert max(len(texts) for texts in scanner.described.facts.values()) == scanner.described.PER_KEY
