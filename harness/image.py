"""The guest image: busybox, the init, the test module and the stressors,
packed into an initramfs. Cached by content; a per-run overlay (the storm
plan and run settings) is a second small cpio appended to the base.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import userland
from harness.cache import Store, cache_root, content_key, exclusive, file_sha256, tree_key
from harness.configs import REPO_ROOT, Arch
from harness.cpio import CpioWriter
from harness.errors import BuildError, InfraError
from harness.host import build_env, require_tool, run_logged
from harness.kernel.build import KernelBuild, ensure_tree, tree_lock
from harness.kernel.config import make_vars

log = logging.getLogger(__name__)

GUEST_DIR = REPO_ROOT / "guest"
IMAGE_RECIPE = "image-v1"
# guest/init programs in every image's bin/ (the storm, its lock figures, INJECT=).
GUEST_SCRIPTS = ("storm-run", "lock-classes", "lock-nested", "mmlock-inject")
# Extra dynamic host binaries for the guest (bench puts Debian's stress-ng
# there): host paths separated by ':'; each goes to bin/<name> with its ld.so
# and shared libraries at the paths ldd names. Part of the image's key.
EXTRA_BINARIES_ENV = "MMLOCK_GUEST_BINARIES"
_LDD_PATH_RE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


@dataclass(frozen=True)
class GuestImage:
    initramfs: Path          # base archive (cached)
    module: Path
    stressors: Path
    busybox: Path
    sha256: str
    cached: bool


def _sources(sub: str) -> list[Path]:
    root = GUEST_DIR / sub
    return [p for p in root.rglob("*") if p.is_file() and p.suffix not in (".o", ".ko", ".cmd", ".md")]


def host_debian_arch() -> str:
    proc = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def busybox_for(arch: Arch, log_file: Path | None = None) -> Path:
    """A static busybox for the guest: the host's, Debian's package for the guest arch, or
    (`busybox: source`, no binary packages for that arch) built from Debian's source package."""
    if arch.busybox == "source":
        return userland.busybox_from_source(arch, log_file)
    if arch.debian_arch == host_debian_arch():
        path = Path("/bin/busybox")
        if not path.is_file():
            raise InfraError("/bin/busybox not found (Debian package: busybox-static)")
        return path
    dest = cache_root() / "userland" / arch.debian_arch / "busybox"
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        proc = run_logged(["apt-get", "download", f"busybox-static:{arch.debian_arch}"], cwd=tmp,
                          capture_output=True, text=True)
        debs = list(Path(tmp).glob("busybox-static_*.deb"))
        if proc.returncode != 0 or not debs:
            raise InfraError(f"cannot download busybox-static:{arch.debian_arch} "
                             f"(`dpkg --add-architecture {arch.debian_arch} && apt-get update` first?): "
                             f"{proc.stderr.strip()[-300:]}")
        run_logged(["dpkg-deb", "-x", str(debs[0]), f"{tmp}/x"], check=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(tmp) / "x/bin/busybox", dest)
    return dest


def build_stressors(arch: Arch, out: Path, log_file: Path) -> Path:
    require_tool(f"{arch.cross_compile}gcc")
    with open(log_file, "a") as handle:
        proc = run_logged(["make", "-C", str(GUEST_DIR / "stressors"), f"CROSS_COMPILE={arch.cross_compile}",
                           f"OUT={out}"], stdout=handle, stderr=subprocess.STDOUT, env=build_env())
    binary = out / "mmstress"
    if proc.returncode != 0 or not binary.is_file():
        raise BuildError(f"stressors failed to build for {arch.name}; see {log_file}")
    return binary


def build_module(kernel: KernelBuild, work: Path, log_file: Path) -> Path:
    # The module needs the O= tree at exactly this kernel; bring it there.
    with tree_lock(kernel.out_dir):
        ensure_tree(kernel.source, kernel.arch, kernel.out_dir, kernel.config.read_text(), kernel.key, log_file)
        return compile_module(kernel.out_dir, kernel.arch, work, log_file,
                              f"{kernel.source.version} {kernel.arch.name}")


def compile_module(out_dir: Path, arch: Arch, work: Path, log_file: Path, what: str,
                   extra_vars: tuple[str, ...] = ()) -> Path:
    """Copy guest/module to `work` and build it against the O= tree `out_dir`;
    any compiler warning is a BuildError."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(GUEST_DIR / "module", work)
    proc = run_logged(["make", "-C", str(out_dir), f"M={work}", *make_vars(arch), *extra_vars, "modules"],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                      env=build_env())
    with open(log_file, "a") as handle:
        handle.write(proc.stdout)
    modules = sorted(work.glob("*.ko"))
    if proc.returncode != 0 or not modules:
        tail = "\n  ".join(proc.stdout.splitlines()[-5:])
        raise BuildError(f"test module failed to build against {what} ({out_dir}):\n  {tail}\nsee {log_file}")
    # Kernel-side code builds warning-free on every arch and kernel: a
    # warning is a build error, caught in every run rather than in review.
    warnings = module_warnings(proc.stdout)
    if warnings:
        raise BuildError(f"test module built with warnings against {what}:\n  " + "\n  ".join(warnings[:5]))
    return modules[0]


def module_warnings(output: str) -> list[str]:
    """Compiler warnings in a module build's output (modpost's upper-case
    WARNINGs about a missing Module.symvers are not the module's fault)."""
    return [line for line in output.splitlines() if "warning:" in line]


def parse_ldd(output: str) -> list[Path]:
    """`ldd BINARY` output -> the absolute paths of its libraries and ld.so (vdso has none)."""
    paths = []
    for line in output.splitlines():
        match = _LDD_PATH_RE.search(line)
        if match and Path(match.group(1)) not in paths:
            paths.append(Path(match.group(1)))
    return paths


def extra_binary_files(arch: Arch, binaries: list[str]) -> dict[str, tuple[Path, int]]:
    """Host binaries with their ld.so and libraries: name in the archive -> (file, mode)."""
    if not binaries:
        return {}
    if arch.debian_arch != host_debian_arch():
        raise InfraError(f"{EXTRA_BINARIES_ENV}: host binaries fit {host_debian_arch()} guests only, "
                         f"not {arch.name}")
    files: dict[str, tuple[Path, int]] = {}
    for item in binaries:
        binary = Path(shutil.which(item) or item)
        if not binary.is_file():
            raise InfraError(f"{EXTRA_BINARIES_ENV}: no such binary {item}")
        files[f"bin/{binary.name}"] = (binary.resolve(), 0o755)
        proc = run_logged(["ldd", str(binary)], capture_output=True, text=True)
        if proc.returncode != 0 and "not a dynamic executable" not in proc.stdout + proc.stderr:
            raise InfraError(f"ldd {binary} failed: {proc.stderr.strip()[-300:]}")
        for lib in parse_ldd(proc.stdout):
            files[str(lib).lstrip("/")] = (lib.resolve(), 0o755)
    return files


def _parent_dirs(names: list[str]) -> list[str]:
    dirs = {str(parent) for name in names for parent in Path(name).parents if str(parent) != "."}
    return sorted(dirs, key=lambda d: (d.count("/"), d))


def build_image(kernel: KernelBuild, log_file: Path, binaries: tuple[str, ...] = ()) -> GuestImage:
    """The guest image for this kernel; binaries: host programs to add (with their
    libraries): the request's guest_binaries (a yardstick's, and MMLOCK_GUEST_BINARIES's)."""
    arch = kernel.arch
    busybox = busybox_for(arch, log_file)
    extra = userland.guest_files(arch, log_file)   # static dropbear, net-up, mmlock-cmd
    extra.update(extra_binary_files(arch, list(dict.fromkeys(binaries))))
    key = content_key(IMAGE_RECIPE, kernel.key, file_sha256(busybox),
                      *(f"{name}:{mode:o}:{file_sha256(path)}" for name, (path, mode) in sorted(extra.items())),
                      tree_key(GUEST_DIR, _sources("init") + _sources("module") + _sources("stressors")))
    store = Store("images")
    entry = store.lookup(key)
    cached = entry is not None
    if entry is None:
        work = cache_root() / "work" / f"{arch.name}-{key[:12]}"
        with exclusive(work.with_name(f".{work.name}.lock")):
            entry = store.lookup(key)   # packed by another run while this one waited?
            cached = entry is not None
            if entry is None:
                entry = _pack_image(store, key, kernel, work, busybox, extra, log_file)
    initramfs = entry / "initramfs.cpio"
    return GuestImage(initramfs=initramfs, module=entry / "mmlock.ko", stressors=entry / "mmstress",
                      busybox=busybox, sha256=file_sha256(initramfs), cached=cached)


def _pack_image(store: Store, key: str, kernel: KernelBuild, work: Path, busybox: Path,
                extra: dict[str, tuple[Path, int]], log_file: Path) -> Path:
    """Stressors, module and userland into one initramfs, published under key."""
    arch = kernel.arch
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    stressors = build_stressors(arch, work / "stressors", log_file)
    module = build_module(kernel, work / "module", log_file)
    initramfs = work / "initramfs.cpio"
    with open(initramfs, "wb") as handle:
        cpio = CpioWriter(handle)
        base_dirs = ("bin", "sbin", "dev", "etc", "etc/harness", "lib", "lib/modules", "proc", "sys",
                     "tmp", "root", "mnt")
        for name in base_dirs:
            cpio.directory(name)
        for name in _parent_dirs(list(extra)):
            if name not in base_dirs:
                cpio.directory(name)
        cpio.char_device("dev/console", 5, 1)
        cpio.char_device("dev/null", 1, 3, 0o666)
        cpio.file_from("bin/busybox", busybox, 0o755)
        cpio.file_from("init", GUEST_DIR / "init" / "init", 0o755)
        for script in GUEST_SCRIPTS:
            cpio.file_from(f"bin/{script}", GUEST_DIR / "init" / script, 0o755)
        cpio.file_from("bin/mmstress", stressors, 0o755)
        cpio.file_from("lib/modules/mmlock.ko", module, 0o644)
        for name, (path, mode) in sorted(extra.items()):
            cpio.file_from(name, path, mode)
        cpio.close()
    entry = store.publish(key, {"initramfs.cpio": initramfs, "mmlock.ko": module, "mmstress": stressors},
                          {"arch": arch.name, "kernel": kernel.key})
    shutil.rmtree(work, ignore_errors=True)
    return entry


def write_overlay(base: Path, dest: Path, files: dict[str, str], private: tuple[str, ...] = ()) -> Path:
    """base initramfs + a small cpio of per-run files (the kernel unpacks both). With
    `private` files (a key), those are mode 0600 in the archive and `dest` is 0600 too."""
    mode = 0o600 if private else 0o644
    dest.unlink(missing_ok=True)
    with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
        with open(base, "rb") as source:
            shutil.copyfileobj(source, handle)
        cpio = CpioWriter(handle)
        for name, text in sorted(files.items()):
            cpio.file(name, text.encode(), 0o600 if name in private else 0o644)
        cpio.close()
    os.chmod(dest, mode)   # whatever the umask
    return dest
