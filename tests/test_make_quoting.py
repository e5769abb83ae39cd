"""make passes each variable to the CLI as one word, whatever it holds: a quote, a
$(...), a ; in a value runs no host command. The targets run for real against a
fake interpreter (VENV=) that records its argv."""
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TARGETS = ["boot-test", "boot", "build", "shell", "selftest", "soak", "bisect", "matrix", "module-check", "bench"]


def _fake_venv(tmp_path: Path) -> tuple[Path, Path]:
    venv, calls = tmp_path / "venv", tmp_path / "calls"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    # one call per line, each argument NUL-terminated
    python.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> {calls}\necho >> {calls}\n")
    python.chmod(0o755)
    (venv / ".installed").touch()
    later = max((REPO / "pyproject.toml").stat().st_mtime, (REPO / "scripts" / "venv.sh").stat().st_mtime) + 60
    os.utime(venv / ".installed", (later, later))
    return venv, calls


def _calls(path: Path) -> list[list[str]]:
    return [line.split("\0")[:-1] for line in path.read_text().splitlines() if line]


@pytest.mark.parametrize("target", TARGETS)
def test_a_hostile_value_stays_one_word(tmp_path, target):
    venv, calls = _fake_venv(tmp_path)
    pwned = tmp_path / "pwned"
    hostile = {
        "ARCH": f"x86_64' ; touch {pwned} ; '",
        "TITLE": f"possible deadlock in f's $(shell touch {pwned}2) `touch {pwned}3` $$(touch {pwned}4)",
        "KERNEL_SRC": f"/src/it's a tree;touch {pwned}5",
        "LEAVE_OUT": "zram,zswap",
        "GOOD": "v6.1", "BAD": "HEAD", "ARCHES": f"x86_64 '\"{pwned}6", "PROFILE": "lock'dep",
    }
    env = dict(os.environ, PROFILE_FROM_ENV="unused")
    proc = subprocess.run(["make", "--no-print-directory", target, f"VENV={venv}",
                           *(f"{k}={v}" for k, v in hostile.items())],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(tmp_path.glob("pwned*")), "a value ran a host command"
    argvs = _calls(calls)
    main = argvs[-1]
    assert main[:2] == ["-m", "harness"], argvs
    if "--arch" in main:
        assert main[main.index("--arch") + 1] == hostile["ARCH"]
    if target == "matrix":
        assert main[main.index("--arches") + 1] == hostile["ARCHES"]
    if "--kernel-src" in main:
        assert main[main.index("--kernel-src") + 1] == hostile["KERNEL_SRC"]
    if "--profile" in main:
        assert main[main.index("--profile") + 1] == hostile["PROFILE"]
    if target == "bisect":
        assert main[main.index("--title") + 1] == hostile["TITLE"]
    if target in ("boot-test", "soak", "matrix"):
        assert main[main.index("--leave-out") + 1] == "zram,zswap"


def test_a_hostile_value_from_the_environment_stays_one_word(tmp_path):
    venv, calls = _fake_venv(tmp_path)
    pwned = tmp_path / "pwned"
    env = dict(os.environ, VENV=str(venv), STORM=f"x$(shell touch {pwned})'$$(touch {pwned}2)'")
    proc = subprocess.run(["make", "--no-print-directory", "boot-test"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(tmp_path.glob("pwned*"))
    main = _calls(calls)[-1]
    assert main[main.index("--storm") + 1] == env["STORM"]


def test_a_newline_in_a_value_is_refused(tmp_path):
    venv, calls = _fake_venv(tmp_path)
    proc = subprocess.run(["make", "--no-print-directory", "boot-test", f"VENV={venv}", "PROFILE=lockdep\nkasan"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "PROFILE holds a newline" in proc.stderr, proc.stderr
    assert not calls.exists()
