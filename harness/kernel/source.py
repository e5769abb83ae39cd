"""Where the kernel source comes from and what identifies its content.

Default: the tarball Debian's linux-source-<ver> package installs, unpacked
once under the cache. KERNEL_SRC: any tree, never written to (builds are
out-of-tree with O=).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from harness.cache import cache_root, content_key, exclusive
from harness.configs import CONFIG_DIR
from harness.errors import ConfigError, InfraError
from harness.host import require_tool

log = logging.getLogger(__name__)

DEFAULT_VERSION = "6.1"
PATCH_DIR = CONFIG_DIR / "kernel" / "patches"
KNOWN_VERSIONS = ("6.1", "6.12")


@dataclass(frozen=True)
class KernelSource:
    path: Path
    origin: str        # "debian:linux-source-6.1" or the user's path
    identity: str      # what decides the content: used in cache keys
    version: str       # e.g. 6.1.192
    commit: str = ""   # a git tree's HEAD, when the tree is exactly that commit (no local change)


def tarball_for(version: str) -> Path:
    return Path(f"/usr/src/linux-source-{version}.tar.xz")


def _makefile_version(tree: Path) -> str:
    fields = {}
    try:
        head = (tree / "Makefile").read_text(errors="replace").splitlines()[:12]
    except OSError:
        return ""
    for line in head:
        match = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)", line)
        if match:
            fields[match.group(1)] = match.group(2)
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        return ""
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields.get("SUBLEVEL"):
        version += f".{fields['SUBLEVEL']}"
    return version + fields.get("EXTRAVERSION", "")


def is_kernel_tree(tree: Path) -> bool:
    return (tree / "Kconfig").is_file() and (tree / "arch").is_dir() and bool(_makefile_version(tree))


def _git_identity(tree: Path) -> tuple[str, str] | None:
    """(HEAD plus any uncommitted change, HEAD when there is none), or None when not a git work tree."""
    if not (tree / ".git").exists() or not shutil.which("git"):
        return None
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return None
    diff = subprocess.run(["git", "-C", str(tree), "diff", "HEAD", "--binary"],
                          capture_output=True, check=False).stdout
    untracked = subprocess.run(
        ["git", "-C", str(tree), "ls-files", "--others", "--exclude-standard"],
        capture_output=True, check=False).stdout
    sha = head.stdout.strip()
    return content_key("git", sha, diff, untracked), "" if diff or untracked else sha


def _walk_identity(tree: Path) -> str:
    """Names, sizes and mtimes of every file: cheap enough for a kernel tree."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            digest.update(f"{os.path.relpath(full, tree)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def validate_tree(tree: Path) -> Path:
    """The tree as an absolute path, or a ConfigError saying what is wrong with it."""
    tree = tree.expanduser().resolve()
    if not tree.is_dir():
        raise ConfigError(f"KERNEL_SRC={tree}: no such directory")
    if not is_kernel_tree(tree):
        raise ConfigError(f"KERNEL_SRC={tree}: not a kernel source tree "
                          "(expected a top-level Makefile with VERSION/PATCHLEVEL, Kconfig and arch/)")
    if (tree / ".config").exists() or (tree / "include" / "config").is_dir():
        raise ConfigError(f"KERNEL_SRC={tree}: the tree has been configured or built in place; "
                          "out-of-tree builds need a clean tree (run 'make mrproper' there)")
    return tree


def from_tree(tree: Path) -> KernelSource:
    tree = validate_tree(tree)
    identity, commit = _git_identity(tree) or (_walk_identity(tree), "")
    return KernelSource(tree, str(tree), identity, _makefile_version(tree), commit)


def patches_for(version: str) -> list[Path]:
    """configs/kernel/patches/<version>/*.patch, in name order: fixes the harness needs in
    Debian's tarball of that version (a boot deadlock, not the mm code under test).
    Each says why in its header; a KERNEL_SRC tree is never patched."""
    return sorted((PATCH_DIR / version).glob("*.patch"))


def _apply_patches(tree: Path, patches: list[Path]) -> None:
    tool = require_tool("patch") if patches else ""
    for patch in patches:
        proc = subprocess.run([tool, "-p1", "--forward", "--batch", "-d", str(tree), "-i", str(patch)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise InfraError(f"{patch} does not apply to {tree.name}: "
                             f"{(proc.stdout + proc.stderr).strip()[-400:]}")
        log.info("applied %s", patch.name)


def default_source(version: str = DEFAULT_VERSION) -> KernelSource:
    """Debian's linux-source-<version> tarball, unpacked once into the cache."""
    if version not in KNOWN_VERSIONS:
        raise ConfigError(f"unknown kernel version '{version}'; valid versions: {', '.join(KNOWN_VERSIONS)}")
    tarball = tarball_for(version)
    if not tarball.is_file():
        raise InfraError(f"{tarball} not found (Debian package: linux-source-{version}; "
                         "`make deps` installs it)")
    st = tarball.stat()
    patches = patches_for(version)
    # Without patches the key is what it always was (built kernels stay cached).
    identity = content_key("tarball", tarball.name, str(st.st_size), str(st.st_mtime_ns),
                           *(part for p in patches for part in (p.name, p.read_bytes())))
    dest_root = cache_root() / "src"
    tree = dest_root / f"linux-source-{version}"
    stamp = dest_root / f"linux-source-{version}.unpacked"
    with exclusive(dest_root / f".linux-source-{version}.lock"):
        if not (stamp.is_file() and stamp.read_text() == identity and is_kernel_tree(tree)):
            log.info("unpacking %s into %s (once)", tarball, dest_root)
            shutil.rmtree(tree, ignore_errors=True)
            staging = dest_root / f".unpack-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            try:
                # The host's tar with xz is several times faster than tarfile.
                if shutil.which("tar") and shutil.which("xz"):
                    subprocess.run(["tar", "-C", str(staging), "-xf", str(tarball)], check=True)
                else:
                    with tarfile.open(tarball) as archive:
                        archive.extractall(staging)
            except (subprocess.CalledProcessError, tarfile.TarError, OSError) as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise InfraError(f"cannot unpack {tarball}: {exc}") from None
            _apply_patches(staging / f"linux-source-{version}", patches)
            os.rename(staging / f"linux-source-{version}", tree)
            shutil.rmtree(staging, ignore_errors=True)
            stamp.write_text(identity)
    return KernelSource(tree, f"debian:linux-source-{version}", identity, _makefile_version(tree))


def resolve(kernel_src: str | None, version: str = DEFAULT_VERSION) -> KernelSource:
    if kernel_src:
        return from_tree(Path(kernel_src))
    return default_source(version)
