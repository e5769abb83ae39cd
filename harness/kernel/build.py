"""Kernel build: one out-of-tree O= directory per source+arch+profile,
ccache for compiles, and a content-addressed artifact cache so a second
run with nothing changed builds nothing.
"""
from __future__ import annotations

import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.cache import Store, cache_root, content_key, exclusive, file_sha256
from harness.configs import Arch, Profile, parse_fragment
from harness.errors import BuildError, InfraError
from harness.host import build_env, require_tool
from harness.kernel.config import make_jobs, make_vars, merged_config
from harness.kernel.source import KernelSource

log = logging.getLogger(__name__)

BUILD_RECIPE = "build-v1"  # bump when the build procedure changes
_OBJECT_LINE = re.compile(r"^\s+(CC|AS|CC \[M\])\s+\S+\.o$")


@dataclass(frozen=True)
class KernelBuild:
    key: str
    arch: Arch
    profile: Profile
    source: KernelSource
    out_dir: Path            # the O= tree (needed to build modules)
    image: Path
    vmlinux: Path
    config: Path
    image_sha256: str
    config_sha256: str
    compiler: str
    cached: bool
    duration_s: float
    log: Path
    cpu_s: float = 0.0       # user+sys of every process the build ran (make, compilers, linkers)


def how_built(kernel: KernelBuild) -> str:
    """'cached (0.4s)' or 'built (301.2s, 598 CPU s)' for the messages a build prints."""
    if kernel.cached:
        return f"cached ({kernel.duration_s:.1f}s)"
    return f"built ({kernel.duration_s:.1f}s, {kernel.cpu_s:.0f} CPU s)"


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children: a build's figure that the host's
    other load moves less than its wall time. Process-wide: a second build running in the
    same process at the same time would be counted too (make matrix's cells and the bench's
    samples are processes of their own)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compiler_version(arch: Arch) -> str:
    gcc = require_tool(f"{arch.cross_compile}gcc")
    proc = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines()[0] if proc.stdout else gcc


def layout_root(source: KernelSource) -> Path | None:
    """R for a tree the harness keeps at R/src/<name> under its cache (Debian's unpacked
    source, the zoo's work tree, the bisect fixture): its O= trees are R/build/<name>-<tag>/
    <arch>-<profile>, the same path relative to the source from every such R, so ccache
    (base_dir R, compiles with relative paths) builds a second tree of the same content
    from the first one's objects. None for any other tree (a KERNEL_SRC of the user's)."""
    tree = source.path
    if tree.parent.name != "src":
        return None
    root, parent = cache_root().resolve(), tree.parent.parent.resolve()
    return tree.parent.parent if parent == root or root in parent.parents else None


def out_dir_for(source: KernelSource, arch: Arch, profile: Profile) -> Path:
    """Stable per tree path (not per revision): bisect and variants rebuild in place."""
    tree_tag = content_key(str(source.path))[:10]
    root = layout_root(source) or cache_root()
    return root / "build" / f"{source.path.name}-{tree_tag}" / f"{arch.name}-{profile.name}"


def ccache_settings(source: KernelSource, out: Path) -> tuple[dict[str, str], list[str]]:
    """Environment and make variables for compiles that hit across trees of one layout:
    ccache rewrites paths under R relative to the O= tree and ignores which O= tree it is;
    the file prefix map then turns the relative source paths back into mm/x.c for
    __FILE__ (WARN, BUG) and the debug info, as kbuild's absolute map does otherwise.
    Depend mode: a miss compiles once and takes the includes from kbuild's -MMD output,
    where preprocessor mode ran the preprocessor first (0.11 CPU s a unit, a fifth of a
    cold build); hits come from the direct-mode manifest in either mode."""
    env = {"CCACHE_DIR": os.environ.get("CCACHE_DIR") or str(cache_root() / "ccache"), "CCACHE_DEPEND": "1"}
    root = layout_root(source)
    if root is None:
        return env, []
    env.update(CCACHE_BASEDIR=str(root), CCACHE_NOHASHDIR="1")
    return env, [f"KCFLAGS=-ffile-prefix-map={os.path.relpath(source.path, out)}/="]


def tree_lock(out: Path):
    """One process at a time in an O= tree (and its config scratch dir): two runs of
    the same arch and profile at once (soaks side by side, a developer beside CI)
    would otherwise run make in the same directory. Not re-entrant: take it once."""
    return exclusive(out.parent / f".{out.name}.lock")


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGINT to make's whole group (make deletes half-written targets, as on a Ctrl-C
    at a terminal), SIGKILL after 10 s for whatever is left."""
    for sig, wait_s in ((signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        try:   # make is gone; anything else still in its group goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break


def _run_make(argv: list[str], cwd: Path, log_file: Path, expected_objects: int, env: dict) -> int:
    """Run make, keep the full log, show objects done/total; return objects built."""
    done = 0
    last_print = 0.0
    interactive = sys.stderr.isatty()
    with open(log_file, "a", buffering=1) as log_handle:
        log_handle.write(f"$ {' '.join(argv)}\n")
        log_handle.flush()
        log.debug("$ %s", " ".join(argv))
        # Its own process group: on Ctrl-C or an error here, make and every
        # compiler under it are stopped together, never left running.
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", env=env, start_new_session=True)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log_handle.write(line)
                if _OBJECT_LINE.match(line):
                    done += 1
                now = time.monotonic()
                if now - last_print > (1 if interactive else 15):
                    last_print = now
                    total = f"/{expected_objects}" if expected_objects else ""
                    end = "\r" if interactive else "\n"
                    print(f"build: {done}{total} objects compiled", end=end, file=sys.stderr, flush=True)
            proc.wait()
        except BaseException:
            _stop_group(proc)
            raise
        if interactive:
            print(file=sys.stderr)
    if proc.returncode != 0:
        errors = [ln.rstrip() for ln in log_file.read_text(errors="replace").splitlines()
                  if " error: " in ln or (ln.startswith("make") and "Error" in ln)]
        summary = "\n  ".join(errors[:8]) or "(no error lines found)"
        raise BuildError(f"kernel build failed (make exit {proc.returncode}); first errors:\n  {summary}\n"
                         f"full log: {log_file}")
    return done


def configure(source: KernelSource, arch: Arch, profile: Profile, log_file: Path) -> str:
    """The .config the build will use (cached: seconds), before anything is compiled."""
    out = out_dir_for(source, arch, profile)
    with tree_lock(out):
        return merged_config(source, arch, profile, compiler_version(arch),
                             out.parent / f".config-{arch.name}-{profile.name}", log_file)


def build_key(source: KernelSource, arch: Arch, config_text: str, compiler: str) -> str:
    """The artifact cache key of a kernel build (and the stamp of its O= tree)."""
    return content_key(BUILD_RECIPE, source.identity, config_text, compiler, arch.name, arch.image_target)


def build_kernel(source: KernelSource, arch: Arch, profile: Profile, log_file: Path) -> KernelBuild:
    started, cpu_started = time.monotonic(), _children_cpu_s()
    require_tool("make")
    compiler = compiler_version(arch)
    out = out_dir_for(source, arch, profile)
    config_text = configure(source, arch, profile, log_file)
    key = build_key(source, arch, config_text, compiler)
    store = Store("kernels")
    entry = store.lookup(key)
    if entry is None:
        with tree_lock(out):
            entry = store.lookup(key)   # built by another run while this one waited?
            cached = entry is not None
            if entry is None:
                if parse_fragment(config_text).get("CONFIG_KERNEL_LZ4") == "y":
                    require_tool("lz4")   # the image's compressor: a clear error, not make's
                ensure_tree(source, arch, out, config_text, key, log_file)
                entry = store.publish(key, {
                    "image": out / arch.image_path,
                    "vmlinux": out / "vmlinux",
                    "config": out / ".config",
                }, {"source": source.origin, "version": source.version, "arch": arch.name,
                    "profile": profile.name, "compiler": compiler})
    else:
        cached = True
        log.info("kernel: artifact cache hit %s", key[:12])
    return KernelBuild(
        key=key, arch=arch, profile=profile, source=source, out_dir=out,
        image=entry / "image", vmlinux=entry / "vmlinux", config=entry / "config",
        image_sha256=file_sha256(entry / "image"), config_sha256=file_sha256(entry / "config"),
        compiler=compiler, cached=cached, duration_s=time.monotonic() - started, log=log_file,
        cpu_s=_children_cpu_s() - cpu_started)


def _configured(source: KernelSource, arch: Arch, out: Path, config_text: str,
                log_file: Path, extra_env: dict[str, str] | None = None) -> tuple[list[str], dict]:
    """Write the .config into the O= tree (only if it differs), run olddefconfig
    and check it kept the config; return the make command line and environment."""
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / ".config"
    # Rewriting an identical .config would make kbuild redo syncconfig only;
    # skipping it keeps the no-change rebuild near zero.
    if not config_path.is_file() or config_path.read_text() != config_text:
        config_path.write_text(config_text)
    cc = f"{arch.cross_compile}gcc"
    ccache_env, ccache_vars = ccache_settings(source, out)
    env = build_env(**ccache_env, **(extra_env or {}))
    if shutil.which("ccache"):
        cc = f"ccache {cc}"
    else:
        log.warning("ccache not found (Debian package: ccache): rebuilds will be slow")
    if not shutil.which(f"{arch.cross_compile}gcc"):
        raise InfraError(f"{arch.cross_compile}gcc not found: install the cross compiler for {arch.name}")
    base = ["make", "-C", str(source.path), f"O={out}", *make_vars(arch, cc), *ccache_vars, f"-j{make_jobs()}"]
    _run_make(base + ["olddefconfig"], source.path, log_file, 0, env)
    if (out / ".config").read_text() != config_text:
        raise BuildError(f"kernel config changed under olddefconfig in {out}; see {log_file}")
    return base, env


def tree_is_built(arch: Arch, out: Path, key: str) -> bool:
    stamp = out / ".harness-key"
    return stamp.is_file() and stamp.read_text() == key and (out / arch.image_path).is_file()


def ensure_tree(source: KernelSource, arch: Arch, out: Path, config_text: str, key: str,
                log_file: Path, extra_env: dict[str, str] | None = None) -> None:
    """Bring the O= tree to this config and source, incrementally (extra_env: for make,
    e.g. the bench's CCACHE_RECACHE)."""
    if tree_is_built(arch, out, key):
        return
    count_file = out / ".harness-objects"
    expected = int(count_file.read_text()) if count_file.is_file() else 0
    print(f"build: {arch.name} {source.origin} ({source.version}) in {out}", file=sys.stderr, flush=True)
    base, env = _configured(source, arch, out, config_text, log_file, extra_env)
    done = _run_make(base + [arch.image_target, "vmlinux", "modules"], source.path, log_file, expected, env)
    if done > expected:
        count_file.write_text(str(done))
    if not (out / arch.image_path).is_file():
        raise BuildError(f"kernel build produced no {arch.image_path}; see {log_file}")
    (out / ".harness-key").write_text(key)


def prepare_modules_tree(source: KernelSource, arch: Arch, out: Path, config_text: str, log_file: Path) -> None:
    """Just enough of the O= tree to compile an external module against it
    (`make modules_prepare`: generated headers, asm-offsets, modpost); a later
    full build of the same tree continues from there."""
    print(f"prepare: {arch.name} {source.origin} ({source.version}) in {out}", file=sys.stderr, flush=True)
    base, env = _configured(source, arch, out, config_text, log_file)
    _run_make(base + ["modules_prepare"], source.path, log_file, 0, env)
