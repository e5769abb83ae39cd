"""Valid files for any bytes: verdict.json, junit.xml and summary.html written from
random and hostile text (invalid UTF-8 decoded every way the harness decodes, NUL,
U+FFFE/U+FFFF, lone surrogates, every control, 1 MB lines) parse with json.loads,
a real XML parser (expat, via ElementTree) and an HTML parser, hold nothing that
printable() would escape, and keep the text, escaped. Seeded: the same cases each run;
MMLOCK_FUZZ_CASES raises the count."""
import json
import os
import random
import sys
import time
import xml.etree.ElementTree as ET

from harness import run
from harness.matrix import render_html
from harness.record import Draft, RunRecord
from harness.report.model import Report, printable
from harness.verdict import Verdict
from tests.test_hostile_guest import assert_clean_bytes, assert_clean_text, check_html, strings

RANDOM_CASES = int(os.environ.get("MMLOCK_FUZZ_CASES", "400"))
SEED = 20261206
MB = 1 << 20

HOSTILE = [
    "", "\x00", "\x00" * 64, "\ud800", "\udfff", "\udc80\udcff", "\ud83d", "\ufffe", "\uffff", "\U0010ffff",
    "\U0001fffe", "\ufdd0", "\x1b]0;t\x07", "\x1b[2J", "\x9b", "\x85", "\u202e", "\u2066\u2069", "\u2028\u2029",
    "\ufeff", "]]>", "<![CDATA[x]]>", "<script>alert(1)</script>", "&amp;&#0;&#x1b;", "'\"", "\r\n\r", "\t",
    "-->", "<!--", "\\x1b", "\\", "\x7f", "a" * MB, "\x1b" * MB, ("x\x00\ufffe\ud800" * (MB // 4)),
]


def _bytes_cases(rng: random.Random, n: int) -> list[str]:
    """Random bytes decoded as the harness decodes guest output: replace (the console),
    surrogateescape (lone surrogates), latin-1 (C1 controls)."""
    out = []
    for i in range(n):
        data = bytes(rng.randrange(256) for _ in range(rng.choice((1, 8, 64, 512))))
        out.append(data.decode(("utf-8", "utf-8", "latin-1")[i % 3],
                               ("replace", "surrogateescape", "strict")[i % 3]))
    return out


def _codepoint_cases(rng: random.Random, n: int) -> list[str]:
    """Random code points, weighted toward the dangerous ranges (surrogates included)."""
    ranges = [(0, 0x20), (0x7F, 0xA0), (0xD800, 0xE000), (0xFFF0, 0x10000), (0x2000, 0x2070), (0x20, 0x7F),
              (0x80, 0x110000)]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.choice((1, 4, 32, 256))):
            lo, hi = rng.choice(ranges)
            chars.append(chr(rng.randrange(lo, hi)))
        out.append("".join(chars))
    return out


def _write(run_dir, text: str):
    """The text in every guest-fed field of verdict.json and junit.xml (a long one in the
    title, the reason and the release only: the same code, a tenth of the time)."""
    every = text if len(text) < 4096 else "short"
    report = Report(title=text, type="BUG", kind="bug", start_line=1, end_line=2, frames=(every,),
                    alt_titles=(every,), corrupted_reason=every, extra={every: every})
    verdict = Verdict("fail", 1, f"kernel report: {text}", (report,))
    data = {"run_id": run_dir.name, "arch": "x86_64", "kernel": {"release": text}, "reports": [],
            "storm": {"counts": {every: {every: every}}}, "ssh": {"error": every, "guest_log": every},
            "durations": {"total_s": 1.0}}
    return run._write_results(run_dir, every, verdict, Draft(RunRecord.from_json(data)))


def test_files_are_valid_for_any_text(tmp_path):
    rng = random.Random(SEED)
    cases = HOSTILE + _bytes_cases(rng, RANDOM_CASES // 2) + _codepoint_cases(rng, RANDOM_CASES - RANDOM_CASES // 2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    started = time.monotonic()
    for index, text in enumerate(cases):
        where = f"case {index} ({text[:40]!r}, {len(text)} chars)"
        verdict, _ = _write(run_dir, text)
        assert verdict.verdict == "fail", where   # the writing itself never became an internal error
        # verdict.json: json.loads, every string clean, the text kept (escaped)
        loaded = json.loads(assert_clean_bytes((run_dir / "verdict.json").read_bytes(), where))
        for value in strings(loaded):
            assert_clean_text(value, where)
        assert loaded["reports"][0]["title"] == printable(text, newlines=True), where
        assert loaded["kernel"]["release"] == printable(text, newlines=True), where
        # junit.xml: a real XML parser
        root = ET.fromstring(assert_clean_bytes((run_dir / "junit.xml").read_bytes(), where).encode())
        failure = root.find("testcase/failure")
        assert failure is not None and failure.get("message") == f"kernel report: {printable(text)}", where
        for element in root.iter():
            for piece in (element.text or "", *element.attrib.values()):
                assert_clean_text(piece, where)
        # summary.html: an HTML parser, nesting and tags checked, every text and attribute clean
        every = text if len(text) < 4096 else "short"
        row = {"arch": every, "kernel": every, "verdict": every, "titles": [text, every], "accel": every,
               "durations": {"total_s": 1.0},
               "run_dir": str(run_dir / every.replace("/", "_")[:50].replace("\x00", ""))}
        page = render_html([row], tmp_path)
        texts = check_html(page, where)
        if text.strip():
            assert any(printable(text) in piece for piece in texts), where
    elapsed = time.monotonic() - started
    large = sum(1 for c in cases if len(c) >= MB // 4)
    print(f"fuzz: {len(cases)} cases ({len(HOSTILE)} hostile, {large} of 256K-1M characters, "
          f"{len(cases) - len(HOSTILE)} random, seed {SEED}) in {elapsed:.1f}s", file=sys.stderr)
    assert len(cases) >= 400
