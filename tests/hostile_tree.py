"""A kernel tree whose build fails loudly: any make in it, any compiler, any QEMU
touches STARTED. Tests that must prove nothing was built or booted look for it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

MAKEFILE = """VERSION = 6
PATCHLEVEL = 1
SUBLEVEL = 0
EXTRAVERSION =
$(shell touch {started})
%:
\t@echo "hostile tree: the build started" >&2; exit 1
"""
TOOLS = ("make", "gcc", "cc", "ld", "x86_64-linux-gnu-gcc", "qemu-system-x86_64", "qemu-system-aarch64",
         "qemu-system-i386", "qemu-system-arm", "qemu-system-riscv64", "qemu-system-ppc64", "qemu-system-s390x",
         "apt-get", "dpkg-source")


def make_tree(root: Path, git: bool = False) -> tuple[Path, Path, dict]:
    """(tree, STARTED, env): env puts tools on PATH that touch STARTED and fail."""
    started = root / "STARTED"
    tree = root / "linux"
    (tree / "arch" / "x86").mkdir(parents=True)
    (tree / "Kconfig").write_text("mainmenu \"hostile\"\n")
    (tree / "Makefile").write_text(MAKEFILE.format(started=started))
    fakebin = root / "fakebin"
    fakebin.mkdir()
    for tool in TOOLS:
        path = fakebin / tool
        path.write_text(f"#!/bin/sh\ntouch {started}\necho \"hostile: {tool} started\" >&2\nexit 1\n")
        path.chmod(0o755)
    env = dict(os.environ, PATH=f"{fakebin}:{os.environ['PATH']}", MMLOCK_RESULTS=str(root / "results"),
               MMLOCK_CACHE=str(root / "cache"))
    env.pop("MMLOCK_FAULT", None)
    if git:
        genv = dict(env, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid", GIT_COMMITTER_NAME="t",
                    GIT_COMMITTER_EMAIL="t@example.invalid", GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
        for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"],
                     ["commit", "-q", "--allow-empty", "-m", "second"]):
            subprocess.run(["git", *argv], cwd=tree, env=genv, check=True, capture_output=True)
    return tree, started, env


def evidence(root: Path, started: Path) -> list[str]:
    """What would show that work started: STARTED, a run's files, cache entries."""
    found = [str(started)] if started.exists() else []
    results = root / "results"
    if results.exists():
        found += [str(p) for p in results.rglob("*") if p.name in ("verdict.json", "console.log", "build.log")]
    cache = root / "cache"
    if cache.exists():
        found += [str(p) for p in cache.iterdir()]
    return found
