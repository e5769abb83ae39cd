"""`make module-check`: build the test module warning-free against every
arch x kernel version, without building every kernel.

A cell whose O= tree holds a finished build compiles the module against it
as a run would (modpost with Module.symvers). Any other tree is configured
exactly as a build would configure it and brought to `modules_prepare`
only (minutes, not the half hour of a cold cross build); modpost then has no
Module.symvers and only warns about unresolved symbols, which is not the
module's fault, while every compiler warning still fails the cell. The
prepared tree is the one a later full build continues in.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.configs import arch_names, load_arch, load_profile
from harness.errors import ConfigError, HarnessError
from harness.image import compile_module
from harness.kernel.build import (
    build_key,
    compiler_version,
    configure,
    out_dir_for,
    prepare_modules_tree,
    tree_is_built,
)
from harness.kernel.source import KNOWN_VERSIONS, resolve
from harness.results import junit_xml, results_root, write_json


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
        cell["tree"] = "built" if tree_is_built(arch, tree, key) else "modules_prepare"
        if cell["tree"] != "built":
            prepare_modules_tree(source, arch, tree, config_text, log_file)
        extra = () if cell["tree"] == "built" else ("KBUILD_MODPOST_WARN=1",)
        compile_module(tree, arch, out / "work" / f"{arch_name}-{version}", log_file,
                       f"{source.version} {arch_name}", extra)
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
