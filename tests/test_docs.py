"""The README is a guide (short, nothing dated) and every link between it and
docs/ lands: on an existing file and, with #anchor, on a heading there."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
# Pages the README already names that are being written elsewhere; a link to one
# is checked as soon as it exists.
PENDING = {"docs/zoo.md"}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_readme_is_short_and_holds_no_dated_figures():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    dated = re.findall(r".*\b20\d\d-\d\d-\d\d\b.*", text)
    assert not dated, f"dated measurements belong in docs/benchmarks.md: {dated}"


def test_every_link_lands_on_a_file_and_heading():
    broken = []
    for page in PAGES:
        for target in LINK_RE.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                if str(dest.relative_to(ROOT)) not in PENDING:
                    broken.append(f"{page.name}: {target} (no such file)")
                continue
            if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_slug_matches_githubs():
    assert _slug("6.1: a boot deadlock in the RCU Tasks self test (patched)") == \
        "61-a-boot-deadlock-in-the-rcu-tasks-self-test-patched"
    assert _slug("Leaving parts out: LEAVE_OUT") == "leaving-parts-out-leave_out"


def test_the_layout_map_names_every_module_once_and_each_is_small():
    """docs/layout.md: every module of harness/ in one of its tables, none twice; each <= 400 lines."""
    text = (ROOT / "docs" / "layout.md").read_text()
    named = re.findall(r"`([a-z_]+(?:\.py|/))`", "\n".join(line.split("|")[1] for line in text.splitlines()
                                                             if line.startswith("| `")))
    harness = ROOT / "harness"
    packages = {p.name + "/" for p in harness.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in harness.glob("*.py") if p.name != "__init__.py"} | packages
    assert sorted(named) == sorted(set(named)), "a module in two rooms"
    assert set(named) == modules, (sorted(modules - set(named)), sorted(set(named) - modules))
    long = {str(p.relative_to(ROOT)): n for p in harness.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
