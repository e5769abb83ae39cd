"""A hostile guest (tests/hostile_guest.py: the fake QEMU replaying a console laced
with escape sequences, bidi controls, NUL, noncharacters and invalid UTF-8, and an
'sshd' with a hostile banner) through the real stages: every output channel
(stdout, stderr, verdict.json, junit.xml, summary.html, the matrix's JUnit and
summary.json, bisect.json) holds no raw control byte and no character printable()
would escape, parses as what it is, and shows the hostile text escaped; console.log
alone keeps the guest's bytes verbatim."""
import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.model import printable
from tests.hostile_guest import HOSTILE, MARK

REPO = Path(__file__).resolve().parent.parent
RAW_CONTROL = set(range(0x20)) - {0x09, 0x0A} | {0x7F}
ESCAPED_MARK = printable(MARK)            # \x1b]0;pwned, as text


def assert_clean_text(text: str, where: str) -> None:
    """Nothing printable() would escape (newlines aside): no control, escape introducer,
    bidi control, separator, lone surrogate or noncharacter."""
    assert printable(text, newlines=True) == text, f"{where}: unescaped guest text: {text[:200]!r}"


def assert_clean_bytes(data: bytes, where: str) -> str:
    bad = sorted({b for b in data if b in RAW_CONTROL})
    assert not bad, f"{where}: raw control bytes {[hex(b) for b in bad]}"
    text = data.decode("utf-8")     # strict: valid UTF-8
    assert_clean_text(text, where)
    return text


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


class PageParser(HTMLParser):
    VOID = frozenset({"meta", "br"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.texts += [v for _, v in attrs if v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.texts.append(data)


def check_html(text: str, where: str) -> list[str]:
    page = PageParser()
    page.feed(text)
    page.close()
    assert page.stack == [], f"{where}: unclosed {page.stack}"
    assert page.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "table", "tr", "th", "td", "b",
                         "small", "br", "a"}, page.tags
    for piece in page.texts:
        assert_clean_text(piece, where)
    return page.texts


def check_xml(text: str, where: str) -> list[str]:
    root = ET.fromstring(text.encode())
    found = []
    for element in root.iter():
        found += [element.text or "", element.tail or "", *element.attrib.values()]
    for piece in found:
        assert_clean_text(piece, where)
    return found


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "hostile_guest.py"), str(work)], cwd=REPO,
                          capture_output=True, timeout=300)
    print(f"hostile guest: {len(HOSTILE)} payloads, run in {time.monotonic() - started:.1f}s", file=sys.stderr)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return work, proc


def test_the_guest_really_was_hostile(hostile_run):
    work, _ = hostile_run
    console = (work / "results" / "run" / "console.log").read_bytes()
    assert MARK.encode() in console and "\u202e".encode() in console and b"\x00" in console
    assert "\ufffe\uffff".encode() in console and "\x9b".encode() in console


def test_terminal_gets_no_raw_guest_bytes(hostile_run):
    _, proc = hostile_run
    out = assert_clean_bytes(proc.stdout, "stdout")
    err = assert_clean_bytes(proc.stderr, "stderr")
    assert f"report: stressor failed: hog: {ESCAPED_MARK}" in out
    assert f"verdict: fail (exit 1): stressor failed: hog: {ESCAPED_MARK}" in out
    assert f'Indecipherable protocol version "{ESCAPED_MARK}' in err, "the SSH banner, escaped, via log.warning"
    assert f"bisect: target 'stressor failed: hog: {ESCAPED_MARK}" in err
    for shown in ("\\u202e", "\\u2066", "\\x9b", "\\x00", "ok\\x07\\x08\\x08", "\\x7f",
                  "\\ufffe\\uffff\\U0010ffff", "\\ufeff", "\\u200b"):
        assert shown in out, shown


def test_json_files_are_valid_and_escaped(hostile_run):
    work, _ = hostile_run
    for path in (work / "results" / "run" / "verdict.json", work / "results" / "matrix" / "summary.json",
                 work / "results" / "bisect" / "bisect.json"):
        text = assert_clean_bytes(path.read_bytes(), path.name)
        data = json.loads(text)
        values = strings(data)
        for value in values:
            assert_clean_text(value, path.name)
        assert any(ESCAPED_MARK in v for v in values), f"{path.name}: the hostile text is there, escaped"
    data = json.loads((work / "results" / "run" / "verdict.json").read_text())
    assert data["kernel"]["release"].startswith(f"6.1.192{ESCAPED_MARK}")
    assert ESCAPED_MARK in data["ssh"]["error"]
    assert any(ESCAPED_MARK in name for name in data["storm"]["counts"]), "stressor names are keys: escaped too"


def test_junit_files_are_valid_xml_and_escaped(hostile_run):
    work, _ = hostile_run
    for path in (work / "results" / "run" / "junit.xml", work / "results" / "matrix" / "junit.xml"):
        text = assert_clean_bytes(path.read_bytes(), str(path))
        assert any(ESCAPED_MARK in piece for piece in check_xml(text, str(path)))


def test_summary_html_is_valid_and_escaped(hostile_run):
    work, _ = hostile_run
    path = work / "results" / "matrix" / "summary.html"
    text = assert_clean_bytes(path.read_bytes(), path.name)
    assert any(ESCAPED_MARK in piece for piece in check_html(text, path.name))
