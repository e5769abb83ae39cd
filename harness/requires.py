"""Does the kernel under test have what a storm needs? configs/kernel/requires.yaml
maps each stressor mode and storm feature to kernel options; the built .config is
checked against it before booting, so a storm that cannot run on a kernel stops
with the modes and options named instead of a guest full of failed stressors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.configs import CONFIG_DIR, Storm, parse_fragment
from harness.errors import ConfigError


@dataclass(frozen=True)
class Requirements:
    modes: dict[str, tuple[str, ...]]    # mmstress mode -> options ("A|B": either)
    storm: dict[str, tuple[str, ...]]    # storm feature -> options
    path: Path


def load(config_dir: Path = CONFIG_DIR) -> Requirements:
    path = config_dir / "kernel" / "requires.yaml"
    top = yamlfile.Fields(yamlfile.load(path), path)
    tables = []
    for key in ("modes", "storm"):
        sub = top.sub(key)
        table = {name: sub.str_list(name) for name in sub.data}
        sub.finish()
        for name, options in table.items():
            for alternative in (o for option in options for o in option.split("|")):
                if not alternative.startswith("CONFIG_") or not alternative[7:].replace("_", "").isalnum():
                    raise ConfigError(f"{sub.where(name)}: not a kconfig option name: {alternative!r}")
        tables.append(table)
    top.finish()
    return Requirements(tables[0], tables[1], path)


def features(storm: Storm) -> list[str]:
    """The storm's parts outside its stressors, by their key in requires.yaml."""
    wanted = []
    if storm.module_storm:
        wanted.append("module_storm")
    if storm.swap_files:
        wanted.append(f"swap_files.{storm.swap_file_fs}")
    if storm.zram_mb:
        wanted.append("zram")
    if storm.zswap_pool_percent:
        wanted.append("zswap")
    if storm.numa_nodes > 1:
        wanted.append("numa_nodes")
    return wanted


def _missing(options: tuple[str, ...], have: dict[str, str]) -> list[str]:
    return [option for option in options
            if not any(have.get(o, "n") in ("y", "m") for o in option.split("|"))]


def unmet(storm: Storm, config_text: str, reqs: Requirements) -> list[tuple[str, list[str]]]:
    """(mode or feature, the options it lacks) for each part of the storm the kernel cannot run."""
    have = parse_fragment(config_text)
    problems = []
    parts: list[tuple[str, tuple[str, ...]]] = []
    for spec in storm.stressors:
        if not spec.mode or any(name == f"mode {spec.mode}" for name, _ in parts):
            continue
        if spec.mode not in reqs.modes:
            raise ConfigError(f"{reqs.path}: mode '{spec.mode}' of storm '{storm.name}' is not listed "
                              "under modes (list it, with [] if it needs nothing)")
        parts.append((f"mode {spec.mode}", reqs.modes[spec.mode]))
    for feature in features(storm):
        if feature not in reqs.storm:
            raise ConfigError(f"{reqs.path}: storm feature '{feature}' is not listed under storm")
        parts.append((feature.replace(".", " on "), reqs.storm[feature]))
    for name, options in parts:
        missing = _missing(options, have)
        if missing:
            problems.append((name, missing))
    return problems


def check(storm: Storm, config_text: str, kernel: str, reqs: Requirements | None = None,
          profiles: dict[str, str] | None = None) -> None:
    """Raise a ConfigError listing what the storm needs and the kernel lacks.
    profiles: {profile name: its fragments' text}, to point at those that ask for all of it."""
    reqs = reqs or load()
    problems = unmet(storm, config_text, reqs)
    if not problems:
        return
    lines = [f"{name}: {', '.join(o.replace('|', ' or ') for o in missing)} not set" for name, missing in problems]
    hint = ""
    wanted = [option for _, missing in problems for option in missing]
    fitting = [name for name, text in (profiles or {}).items() if not _missing(tuple(wanted), parse_fragment(text))]
    if fitting:
        hint = f"\nthe {', '.join(fitting)} profile asks for them: --profile {fitting[0]}"
    raise ConfigError(f"storm '{storm.name}' cannot run on {kernel}; it lacks what these need:\n  "
                      + "\n  ".join(lines) + hint)
