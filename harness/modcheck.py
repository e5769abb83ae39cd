"""`make module-check`: build the test module warning-free against every
arch x kernel version, without building every kernel.

A cell whose O= tree holds a finished build compiles the module against it
as a run would (modpost with Module.symvers). Any other tree is configured
exactly as a build would configure it and brought to `modules_prepare`
only (minutes, not the half hour of a cold cross build); modpost then has no
Module.symvers and only warns about unresolved symbols, while every compiler
warning still fails the cell. So that such a cell still catches a symbol the
kernel does not export (6.5 took `__pte_offset_map_lock` out of reach), each
symbol the module leaves undefined is looked up among the source's
EXPORT_SYMBOL*() lines, outside other arches' directories. The prepared tree
is the one a later full build continues in.
"""
from __future__ import annotations

import functools
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.configs import Arch, arch_names, load_arch, load_profile
from harness.errors import BuildError, ConfigError, HarnessError
from harness.image import compile_module
from harness.kernel.build import (
    build_key,
    compiler_version,
    configure,
    out_dir_for,
    prepare_modules_tree,
    tree_is_built,
    tree_lock,
)
from harness.kernel.source import KNOWN_VERSIONS, resolve
from harness.results import junit_xml, results_root, write_json

_EXPORT_RE = re.compile(r"^(?P<path>[^:]+):EXPORT_(?:PER_CPU_)?SYMBOL(?:_GPL)?(?:_NS(?:_GPL)?)?"
                        r"\(\s*(?P<name>[^),]*)")
# Resolved without an export line of their own: static calls (exported as
# STATIC_CALL_KEY(name), pasted by __PASTE, not ##), and what modpost's
# ignore_undef_symbol() knows is linked into every module (ppc64's TOC and
# register save/restore helpers, s390's expoline thunks).
_RESOLVED_ELSEWHERE_RE = re.compile(r"^(?:__SC[KT]__|\.TOC\.$|_(?:rest|save)(?:gpr[01]|fpr|vr)_|"
                                    r"__s390_indirect_jump_r)")


@functools.cache
def source_exports(source_dir: Path) -> tuple[tuple[str, str], ...]:
    """(path, what the parentheses hold) for every EXPORT_SYMBOL*() under
    `source_dir`, macro bodies included."""
    proc = subprocess.run(["grep", "-rEo", "--include=*.c", "--include=*.S", "--include=*.h",
                           r"EXPORT_(PER_CPU_)?SYMBOL(_GPL)?(_NS(_GPL)?)?\([^),]*", "."],
                          cwd=source_dir, stdout=subprocess.PIPE, text=True, errors="replace")
    if proc.returncode not in (0, 1):
        raise HarnessError(f"grep for EXPORT_SYMBOL under {source_dir} failed ({proc.returncode})")
    return tuple((m.group("path").removeprefix("./"), m.group("name").strip())
                 for m in map(_EXPORT_RE.match, proc.stdout.splitlines()) if m)


def _pasted_pattern(name: str) -> str | None:
    """`get_random_ ##type` -> `get_random_\\w+`: in a name pasted with ##,
    a part that starts or ends with an underscore is taken as written, any
    other part as a macro parameter. Only a name that starts with a written
    prefix gives a pattern (`name ## _test` would match half the kernel)."""
    parts = [part.strip() for part in name.split("##")]
    if not all(re.fullmatch(r"\w+", part) for part in parts):
        return None
    literal = [part.startswith("_") or part.endswith("_") for part in parts]
    if not literal[0]:
        return None
    return "".join(re.escape(part) if lit else r"\w+" for part, lit in zip(parts, literal, strict=True))


@dataclass(frozen=True)
class Exports:
    names: frozenset[str]
    pasted: re.Pattern

    def __contains__(self, symbol: str) -> bool:
        return (symbol in self.names or self.pasted.fullmatch(symbol) is not None
                or _RESOLVED_ELSEWHERE_RE.match(symbol) is not None)


def exported_for(source_dir: Path, srcarch: str) -> Exports:
    """What the generic code and arch/<srcarch> (the arch's kernel_srcarch) export."""
    arch_dir = f"arch/{srcarch}/"
    names, patterns = set(), set()
    for path, name in source_exports(source_dir):
        if path.startswith("arch/") and not path.startswith(arch_dir):
            continue
        if "##" not in name:
            names.add(name)
        elif (pattern := _pasted_pattern(name)) is not None:
            patterns.add(pattern)
    return Exports(frozenset(names), re.compile("|".join(sorted(patterns)) or r"(?!)"))


def undefined_symbols(module: Path, arch: Arch) -> list[str]:
    """What the module leaves for the kernel to resolve (`nm -u`)."""
    nm = f"{arch.cross_compile}nm"
    proc = subprocess.run([nm, "-u", str(module)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f"{nm} -u {module} failed: {proc.stderr.strip()}")
    return sorted({line.split()[-1] for line in proc.stdout.splitlines() if line.strip()})


def unexported(symbols: list[str], exports: Exports) -> list[str]:
    return [symbol for symbol in symbols if symbol not in exports]


def check_cell(arch_name: str, version: str, profile_name: str, out: Path) -> dict:
    started = time.monotonic()
    cell: dict = {"arch": arch_name, "kernel": version, "profile": profile_name}
    log_file = out / f"{arch_name}-{version}.log"
    log_file.write_text("")
    try:
        arch = load_arch(arch_name)
        profile = load_profile(profile_name)
        source = resolve(None, version)
        tree = out_dir_for(source, arch, profile)
        config_text = configure(source, arch, profile, log_file)
        key = build_key(source, arch, config_text, compiler_version(arch))
        with tree_lock(tree):
            cell["tree"] = "built" if tree_is_built(arch, tree, key) else "modules_prepare"
            if cell["tree"] != "built":
                prepare_modules_tree(source, arch, tree, config_text, log_file)
            extra = () if cell["tree"] == "built" else ("KBUILD_MODPOST_WARN=1",)
            module = compile_module(tree, arch, out / "work" / f"{arch_name}-{version}", log_file,
                                    f"{source.version} {arch_name}", extra)
        if cell["tree"] != "built":
            missing = unexported(undefined_symbols(module, arch), exported_for(source.path, arch.kernel_srcarch))
            if missing:
                raise BuildError(f"test module uses symbols {source.version} does not export for {arch_name}"
                                 f" (no EXPORT_SYMBOL line in the source): {', '.join(missing)}")
        cell.update(ok=True, release=source.version)
    except HarnessError as exc:
        cell.update(ok=False, error=str(exc), verdict=exc.verdict)
    cell["duration_s"] = round(time.monotonic() - started, 1)
    cell["log"] = str(log_file)
    return cell


def run_module_check(arches: list[str], versions: list[str], profile: str = "lockdep") -> int:
    arches = arches or arch_names()
    unknown = sorted(set(arches) - set(arch_names()))
    if unknown:
        raise ConfigError(f"unknown arch(es) {', '.join(unknown)}; valid: {', '.join(arch_names())}")
    bad = sorted(set(versions) - set(KNOWN_VERSIONS))
    if bad:
        raise ConfigError(f"unknown kernel version(s) {', '.join(bad)}; valid: {', '.join(KNOWN_VERSIONS)}")
    out = results_root() / "module-check"
    out.mkdir(parents=True, exist_ok=True)
    cells = []
    for version in versions:
        for arch in arches:
            print(f"module-check: {arch} {version} ...", file=sys.stderr, flush=True)
            cell = check_cell(arch, version, profile, out)
            cells.append(cell)
            state = "ok" if cell["ok"] else "FAILED"
            print(f"module-check: {arch} {version}: {state} ({cell.get('tree', '-')}, {cell['duration_s']} s)"
                  + ("" if cell["ok"] else f"\n  {cell['error']}"), flush=True)
            write_json(out / "summary.json", cells)
    (out / "junit.xml").write_text(junit_xml("module-check", [
        {"name": f"{c['arch']}-{c['kernel']}", "classname": "module-check", "time": c["duration_s"],
         "verdict": "pass" if c["ok"] else "fail", "message": c.get("error", "")} for c in cells]))
    failed = [f"{c['arch']}-{c['kernel']}" for c in cells if not c["ok"]]
    print(f"module-check: {len(cells) - len(failed)}/{len(cells)} builds warning-free"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0
