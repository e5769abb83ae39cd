"""The test module's README names every key its stats line prints and every
fault kind it injects, read from the source: no compile (the mmstress keys,
which need the binary run, are in test_guest_build.py)."""
import re
from pathlib import Path

MODULE = Path(__file__).resolve().parent.parent / "guest" / "module"


def test_module_readme_documents_every_stats_key_and_fault_kind():
    source = (MODULE / "mmlock.c").read_text()
    names = re.findall(r'\[ST_\w+\]\s*=\s*"(\w+)"', source)
    assert "gup_calls" in names
    module_readme = (MODULE / "README.md").read_text()
    missing = [key for key in names + ["running", "threads", "storms", "injected"]
               if f"`{key}`" not in module_readme and f"{key}=" not in module_readme]
    assert not missing, f"stats keys missing from guest/module/README.md: {missing}"
    kinds = re.findall(r'\{ "([a-z-]+)",\s+inject_', source)
    assert len(kinds) == 11
    assert all(f"`{kind}`" in module_readme for kind in kinds)
