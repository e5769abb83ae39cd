"""`make bench`'s kernel build figures: warm (the artifact cache), make in the O= dir
with nothing changed and after a touch, and a second tree of the same source (ccache
across trees). Each is a function of the Bench it adds its figures to."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.bench_figures import figure, loadavg
from harness.cache import cache_root
from harness.kernel.build import KernelBuild

if TYPE_CHECKING:
    from harness.bench import Bench


def ccache_stats() -> dict[str, int]:
    """ccache's counters (`ccache --print-stats`) for the harness's cache dir; {} without ccache."""
    tool = shutil.which("ccache")
    if not tool:
        return {}
    env = dict(os.environ, CCACHE_DIR=os.environ.get("CCACHE_DIR") or str(cache_root() / "ccache"))
    proc = subprocess.run([tool, "--print-stats"], capture_output=True, text=True, env=env, check=False)
    counters = {}
    for line in proc.stdout.splitlines():
        name, _, value = line.partition("\t")
        if value.strip().isdigit():
            counters[name] = int(value)
    return counters


def repeat_samples(count: int, measure: Callable[[], float | None]) -> tuple[list[float | None], list[list[float]]]:
    samples: list[float | None] = []
    loads: list[list[float]] = []
    for _ in range(count):
        loads.append(loadavg())
        samples.append(measure())
    return samples, loads


def _kernel_inputs(bench: Bench):
    from harness.configs import load_arch, load_profile
    from harness.kernel import source

    return (source.resolve(None, bench.kernel_version), load_arch(bench.arch), load_profile(bench.profile))

def build_warm(bench: Bench) -> KernelBuild:
    from harness.kernel import build

    src, arch, profile = _kernel_inputs(bench)
    log_file = bench.out_dir / "build.log"

    def once() -> float | None:
        started = time.monotonic()
        kernel = build.build_kernel(src, arch, profile, log_file)
        return time.monotonic() - started if kernel.cached else None
    samples, loads = repeat_samples(bench.repeat, once)
    bench.put("kernel build, warm (no change)", figure(samples, "s", loads,
             "build_kernel with nothing changed: the merged config's key hits the artifact cache"))
    return build.build_kernel(src, arch, profile, log_file)

def build_incremental(bench: Bench, kernel: KernelBuild) -> None:
    """touch mm/swapfile.c in the unpacked tree and let ensure_tree run make in the O= dir.

    The touched file's content is unchanged, so ccache would answer; CCACHE_RECACHE makes
    it compile for real, as after an edit. The artifact cache entry is left alone.
    """
    from harness.kernel import build

    touched = kernel.source.path / "mm" / "swapfile.c"
    stamp = kernel.out_dir / ".harness-key"
    log_file = bench.out_dir / "build.log"

    def once(touch: bool) -> float | None:
        if not touched.is_file() or not stamp.is_file():
            return None
        key = stamp.read_text()
        config_text = (kernel.out_dir / ".config").read_text()
        if touch:
            os.utime(touched)
        stamp.unlink()   # ensure_tree runs make again when its stamp is gone
        started = time.monotonic()
        with build.tree_lock(kernel.out_dir):
            build.ensure_tree(kernel.source, kernel.arch, kernel.out_dir, config_text, key, log_file,
                              extra_env={"CCACHE_RECACHE": "1"})
        return time.monotonic() - started
    samples, loads = repeat_samples(bench.repeat, lambda: once(False))
    bench.put("kernel make in the O= dir, nothing changed", figure(
        samples, "s", loads, "what a rebuild costs without the artifact cache: olddefconfig + make"))
    samples, loads = repeat_samples(bench.repeat, lambda: once(True))
    bench.put("kernel rebuild after touching mm/swapfile.c", figure(
        samples, "s", loads, "olddefconfig + make bzImage vmlinux modules in the O= dir; "
        "the touched file really recompiled (CCACHE_RECACHE)"))

def build_second_tree(bench: Bench, kernel: KernelBuild) -> None:
    """The same source copied to another path under the cache and built in that tree's
    own, empty O= directory: what a bisect fixture, a zoo tree or a second clone costs
    when ccache answers for the first tree's objects (harness.kernel.build.layout_root).
    ccache's hits and misses during the build are noted beside the figure."""
    from harness.kernel import build
    from harness.kernel import source as kernel_source

    root = cache_root() / "bench-second-tree"
    tree = root / "src" / kernel.source.path.name
    log_file = bench.out_dir / "build.log"
    config_text = kernel.config.read_text()
    stats: list[dict[str, int]] = []

    def once() -> float | None:
        shutil.rmtree(root, ignore_errors=True)
        tree.parent.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(kernel.source.path), str(tree)], check=True)
        second = kernel_source.from_tree(tree)
        out = build.out_dir_for(second, kernel.arch, kernel.profile)
        before = ccache_stats()
        started = time.monotonic()
        try:
            with build.tree_lock(out):
                build.ensure_tree(second, kernel.arch, out, config_text, "bench-second-tree", log_file)
            return time.monotonic() - started
        finally:
            after = ccache_stats()
            stats.append({k: after.get(k, 0) - before.get(k, 0) for k in after})
            shutil.rmtree(root, ignore_errors=True)
    samples, loads = repeat_samples(1, once)   # a full make each: one sample
    hits = sum(s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0) for s in stats)
    misses = sum(s.get("cache_miss", 0) for s in stats)
    bench.put("kernel build, second tree of the same source", figure(
        samples, "s", loads, f"a copy at another path, its own empty O= tree; ccache {hits} hits, "
        f"{misses} misses"))
