"""Host tools: find them, or install the Debian packages that provide them.

A missing tool names its package. Installing needs root; otherwise the
exact apt-get line is printed and the run stops with an infra error.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.configs import Arch
from harness.errors import InfraError

log = logging.getLogger(__name__)

# What every run needs on the host, whatever the arch: kernel build
# dependencies, the default kernel source, the guest userland, caching.
COMMON_PACKAGES = (
    "make", "gcc", "libc6-dev", "bc", "bison", "flex", "libelf-dev", "libssl-dev",
    "cpio", "kmod", "xz-utils", "lz4", "ccache", "busybox-static", "binutils", "patch",
)

# tool -> package, for the error a user sees when a tool is missing.
TOOL_PACKAGES = {
    "make": "make", "gcc": "gcc", "bc": "bc", "bison": "bison", "flex": "flex",
    "ccache": "ccache", "cpio": "cpio", "xz": "xz-utils", "lz4": "lz4", "git": "git",
    "qemu-system-x86_64": "qemu-system-x86", "qemu-system-i386": "qemu-system-x86",
    "qemu-system-aarch64": "qemu-system-arm", "qemu-system-arm": "qemu-system-arm",
    "qemu-system-riscv64": "qemu-system-misc", "qemu-system-ppc64": "qemu-system-ppc",
    "qemu-system-s390x": "qemu-system-misc", "addr2line": "binutils", "mke2fs": "e2fsprogs",
    "patch": "patch",
}


def packages_for(arch: Arch) -> list[str]:
    wanted = list(COMMON_PACKAGES)
    wanted += [p for p in arch.packages if p not in wanted]
    return wanted


def ensure_foreign_arch(debian_arch: str) -> None:
    """Guest userland for another arch comes from Debian's packages of that arch."""
    host_arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                               check=False).stdout.strip()
    if not debian_arch or debian_arch == host_arch:
        return
    foreign = subprocess.run(["dpkg", "--print-foreign-architectures"], capture_output=True, text=True,
                             check=False).stdout.split()
    if debian_arch in foreign:
        return
    if os.geteuid() != 0:
        raise InfraError(f"the {debian_arch} guest userland needs Debian's {debian_arch} packages; run as root:\n"
                         f"  dpkg --add-architecture {debian_arch} && apt-get update")
    log.info("adding Debian architecture %s for the guest userland", debian_arch)
    subprocess.run(["dpkg", "--add-architecture", debian_arch], check=True)
    subprocess.run(["apt-get", "update"], capture_output=True, check=False,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def missing_packages(packages: Sequence[str]) -> list[str]:
    """Which of these Debian packages are not installed (dpkg's view)."""
    if not shutil.which("dpkg-query"):
        raise InfraError("dpkg-query not found: this harness installs its tools on Debian only; "
                         f"install these packages by hand: {' '.join(packages)}")
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}:${Status}\n", *packages],
        capture_output=True, text=True, check=False)
    installed = set()
    for line in proc.stdout.splitlines():
        name, _, status = line.partition(":")
        if status.endswith(" installed"):
            installed.add(name)
    return [p for p in packages if p.split(":")[0] not in installed]


def ensure_packages(packages: Sequence[str]) -> None:
    """Install what is missing via apt-get when root; otherwise say the exact command."""
    missing = missing_packages(packages)
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise InfraError("missing Debian packages; run as root:\n  "
                         f"apt-get update && {shlex.join(command)}")
    log.info("installing Debian packages: %s", " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        # A fresh machine has empty package lists: update once and retry.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
        proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-5:])
        raise InfraError(f"apt-get failed to install {' '.join(missing)}:\n{tail}")


def require_tool(tool: str) -> str:
    """Absolute path of a host tool, or an InfraError naming its package."""
    path = shutil.which(tool)
    if path:
        return path
    package = TOOL_PACKAGES.get(tool)
    hint = f" (Debian package: {package}; `make deps` installs it)" if package else ""
    raise InfraError(f"required tool '{tool}' not found on PATH{hint}")


def run_logged(argv: Sequence[str], check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with the command printed at debug level (habit: print every command)."""
    log.debug("$ %s", shlex.join(str(a) for a in argv))
    return subprocess.run([str(a) for a in argv], check=check, **kwargs)


def run_appending(argv: Sequence[str], log_path: Path, cwd: Path | None = None) -> tuple[int, str]:
    """Run argv with its output appended to log_path (a log kept run after run); its exit
    status and the text this run added, not the file's (a search of the whole file once
    found an earlier run's line first)."""
    offset = log_path.stat().st_size if log_path.is_file() else 0
    with open(log_path, "a") as log:
        proc = run_logged(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    with open(log_path, "rb") as log:
        log.seek(offset)
        return proc.returncode, log.read().decode(errors="replace")


# Variables from the caller's make or shell that would silently change a
# kernel build: the harness passes what it means on the command line.
_BUILD_ENV_DROP = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARCH", "CROSS_COMPILE", "O",
                   "CC", "LD", "LLVM", "KBUILD_OUTPUT", "KCONFIG_CONFIG", "KERNEL_SRC", "M")


def build_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _BUILD_ENV_DROP}
    env.update(extra)
    return env
