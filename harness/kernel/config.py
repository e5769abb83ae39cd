"""Kernel configuration: tinyconfig + fragments, merged by the kernel's own
merge_config.sh, then a check that every option asked for really took.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.cache import Store, content_key
from harness.configs import CONFIG_DIR, Arch, Profile, parse_fragment
from harness.errors import BuildError
from harness.host import build_env, run_logged
from harness.kernel.source import KernelSource

log = logging.getLogger(__name__)

CONFIG_RECIPE = "config-v1"  # bump when the merge procedure changes


@dataclass(frozen=True)
class Fragment:
    name: str
    text: str


def without_options(text: str, options: tuple[str, ...]) -> str:
    """A fragment's text without the lines that set any of these options."""
    if not options:
        return text
    kept = [line for line in text.splitlines(keepends=True)
            if not set(parse_fragment(line)) & set(options)]
    return "".join(kept)


def version_matches(version: str, prefix: str) -> bool:
    """"6.12.118" is a 6.12 kernel; "6.120.1" is not."""
    return version == prefix or version.startswith(prefix + ".")


def fragments_for(arch: Arch, profile: Profile, version: str = "") -> list[Fragment]:
    """The fragments in merge order: later ones win. base.config, then every
    arch's fragment for this kernel version (configs/kernel/versions/<x.y>.config),
    the arch's own (and its version's), the profile's. The shared ones leave out
    what the arch lists as `kernel.unavailable`."""
    kernel_dir = CONFIG_DIR / "kernel"
    base = (kernel_dir / "base.config").read_text()
    frags = [Fragment("configs/kernel/base.config", without_options(base, arch.unavailable))]
    for path in sorted((kernel_dir / "versions").glob("*.config")):
        if version_matches(version, path.stem):
            frags.append(Fragment(str(path.relative_to(CONFIG_DIR.parent)),
                                  without_options(path.read_text(), arch.unavailable)))
    arch_file = arch.path.relative_to(CONFIG_DIR.parent)
    frags.append(Fragment(f"{arch_file} (kernel.fragment)", arch.fragment))
    for prefix, text in arch.version_fragments:
        if version_matches(version, prefix):
            frags.append(Fragment(f"{arch_file} (kernel.version_fragments.{prefix})", text))
    for path in profile.fragments:
        frags.append(Fragment(str(path.relative_to(CONFIG_DIR.parent)),
                              without_options(path.read_text(), arch.unavailable)))
    return frags


def make_jobs() -> int:
    """make's -j: one job a core and one more, for the moments a job waits on I/O."""
    return (os.cpu_count() or 1) + 1


@functools.cache
def plugin_free_nm(cross_compile: str) -> str | None:
    """An nm that loads only the compiler's own LTO plugin, or None (plain nm).

    binutils' nm loads every plugin in bfd-plugins at each start; with LLVM's gold
    plugin there (llvm-N-linker-tools, which clang pulls in) that maps libLLVM:
    21 ms a run against 1.6 ms. kbuild runs nm on every object it compiles
    (6.1's scripts/check-local-export), so it was about 4 % of a cold build.
    """
    gcc, nm = shutil.which(f"{cross_compile}gcc"), shutil.which(f"{cross_compile}nm")
    if not gcc or not nm:
        return None
    try:
        plugin = subprocess.run([gcc, "-print-file-name=liblto_plugin.so"], capture_output=True,
                                text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not os.path.isabs(plugin) or not os.path.isfile(plugin) or any(c.isspace() for c in plugin):
        return None
    return f"{cross_compile}nm --plugin {plugin}"


def make_vars(arch: Arch, cc: str | None = None) -> list[str]:
    variables = [f"ARCH={arch.kernel_arch}"]
    if arch.cross_compile:
        variables.append(f"CROSS_COMPILE={arch.cross_compile}")
    if cc:
        variables.append(f"CC={cc}")
        nm = plugin_free_nm(arch.cross_compile)
        if nm:
            variables.append(f"NM={nm}")
    return variables


def check_options(config_text: str, fragments: list[Fragment]) -> None:
    """Every option a fragment asked for must be in the final config as asked."""
    final = parse_fragment(config_text)
    wanted: dict[str, tuple[str, str]] = {}
    for frag in fragments:
        for option, value in parse_fragment(frag.text).items():
            wanted[option] = (value, frag.name)
    problems = []
    for option, (value, origin) in sorted(wanted.items()):
        got = final.get(option, "n")
        if got != value:
            reason = ("it does not exist in this tree or its dependencies are not met"
                      if got == "n" else f"olddefconfig made it {got}")
            problems.append(f"  {option}={value} (from {origin}): {reason}")
    if problems:
        raise BuildError("kernel config: options asked for did not take:\n" + "\n".join(problems))


def merged_config(source: KernelSource, arch: Arch, profile: Profile, compiler: str,
                  scratch: Path, log_file: Path) -> str:
    """The final .config text, cached by everything that decides it."""
    fragments = fragments_for(arch, profile, source.version)
    key = content_key(CONFIG_RECIPE, source.identity, arch.name, arch.kernel_arch,
                      arch.cross_compile, compiler, *[f.text for f in fragments])
    store = Store("configs")
    entry = store.lookup(key)
    if entry:
        return (entry / "config").read_text()
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    frag_files = []
    for index, frag in enumerate(fragments):
        path = scratch / f"fragment-{index}.config"
        path.write_text(frag.text if frag.text.endswith("\n") else frag.text + "\n")
        frag_files.append(path)
    with open(log_file, "a") as log_handle:
        steps = [
            # -j: kconfig's own tools are compiled first (5.4 s serial, 2.4 s at -j3)
            ["make", "-C", source.path, f"O={scratch}", *make_vars(arch), f"-j{make_jobs()}", "tinyconfig"],
            [source.path / "scripts/kconfig/merge_config.sh", "-m", "-O", scratch,
             scratch / ".config", *frag_files],
            ["make", "-C", source.path, f"O={scratch}", *make_vars(arch), f"-j{make_jobs()}", "olddefconfig"],
        ]
        for argv in steps:
            log_handle.write(f"$ {' '.join(map(str, argv))}\n")
            log_handle.flush()
            proc = run_logged([str(a) for a in argv], cwd=source.path, stdout=log_handle, stderr=log_handle,
                              env=build_env())
            if proc.returncode != 0:
                raise BuildError(f"kernel config step failed: {argv[0]} ... {argv[-1]} "
                                 f"(exit {proc.returncode}); see {log_file}")
    text = (scratch / ".config").read_text()
    check_options(text, fragments)
    store.publish(key, {"config": scratch / ".config"}, {"source": source.origin, "arch": arch.name,
                                                         "profile": profile.name})
    return text
