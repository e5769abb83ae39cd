"""Does the kernel under test have what a storm needs? configs/kernel/requires.yaml
maps each stressor mode and storm feature to kernel options; the built .config is
checked against it before booting, so a storm that cannot run on a kernel stops
with the modes and options named instead of a guest full of failed stressors.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.configs import Arch, Requirements, Storm, load_storm, parse_fragment
from harness.configs import load_requirements as load
from harness.errors import ConfigError

# Modes that need the storm's NUMA nodes from the arch's QEMU machine.
NODE_MODES = ("numa",)
# The narrower storm a kernel without the other subsystems can still run.
SEED_STORM = "seed-paths"


def for_arch(storm: Storm, arch: Arch, reqs: Requirements | None = None) -> Storm:
    """The storm as it runs on this arch. A mode that needs an option the arch
    lists as kernel.unavailable (every alternative of it), or NUMA nodes its
    QEMU machine cannot give, is left out and named in left_out, with the lock
    targets only it was there for, and the nodes it wanted. Anything else a
    kernel lacks is still check()'s error."""
    reqs = reqs or load()
    unavailable = set(arch.unavailable)
    nodes_ok = storm.numa_nodes <= max(arch.numa_max_nodes, 1)
    left = {}
    for spec in storm.stressors:
        gone = [option for option in reqs.modes.get(spec.mode, ())
                if set(option.split("|")) <= unavailable] if spec.mode else []
        if gone:
            left[spec.mode] = (f"{', '.join(gone)} unavailable on {arch.name} "
                               f"({arch.path.name}: kernel.unavailable)")
        elif spec.mode in NODE_MODES and not nodes_ok:
            left[spec.mode] = (f"needs {storm.numa_nodes} NUMA nodes; the {arch.name} machine gives "
                               f"{f'at most {arch.numa_max_nodes}' if arch.numa_max_nodes else 'one'} "
                               f"({arch.path.name}: qemu.numa)")
    if not left:
        return storm
    # Nodes for the modes left out only: a storm that wants them for itself
    # still meets qemu.numa_args's config error.
    nodes = 1 if not nodes_ok and any(mode in NODE_MODES for mode in left) else storm.numa_nodes
    return _without(storm, left, numa_nodes=nodes)


def _without(storm: Storm, left: dict[str, str], **changes) -> Storm:
    """The storm without the stressor modes in @left, the lock targets only
    they were there for, and @left added to its left_out."""
    kept = [spec for spec in storm.stressors if spec.mode not in left]
    still = {target for spec in kept for target in spec.targets}
    dropped = {target for spec in storm.stressors if spec.mode in left for target in spec.targets} - still
    return dataclasses.replace(storm, stressors=tuple(kept), **changes,
                               lock_targets=tuple(t for t in storm.lock_targets if t not in dropped),
                               left_out=storm.left_out + tuple(left.items()))


# The parts of a storm besides its stressor modes that --leave-out takes,
# with the Storm field that turns each off, and whether the storm has it.
PART_FIELDS = {
    "module": ("module_storm", False, lambda s: s.module_storm),
    "zram": ("zram_mb", 0, lambda s: s.zram_mb > 0),
    "zswap": ("zswap_pool_percent", 0, lambda s: s.zswap_pool_percent > 0),
    "swap-files": ("swap_files", 0, lambda s: s.swap_files > 0),
}
LEFT_OUT_BY_REQUEST = "left out by --leave-out"


def storm_parts(storm: Storm) -> list[str]:
    """What --leave-out can name in this storm: its modes, then its other parts."""
    modes = list(dict.fromkeys(spec.mode for spec in storm.stressors if spec.mode))
    return modes + [part for part, (_, _, has) in PART_FIELDS.items() if has(storm)]


def leave_out(storm: Storm, parts: Sequence[str]) -> Storm:
    """The storm without the parts named (stressor modes, or module, zram,
    zswap, swap-files), each named in left_out: narrowing a failure down to
    what it takes, without editing the storm's YAML. A part the storm does
    not have is a config error listing the ones it has."""
    if not parts:
        return storm
    valid = storm_parts(storm)
    unknown = [part for part in parts if part not in valid]
    if unknown:
        raise ConfigError(f"--leave-out {', '.join(unknown)}: storm {storm.name} has no such part; "
                          f"its parts: {', '.join(valid)}")
    left = dict.fromkeys(parts, LEFT_OUT_BY_REQUEST)
    changes = {PART_FIELDS[part][0]: PART_FIELDS[part][1] for part in left if part in PART_FIELDS}
    kept_modes = {spec.mode for spec in storm.stressors if spec.mode not in left}
    if storm.numa_nodes > 1 and any(mode in left for mode in NODE_MODES) and not kept_modes & set(NODE_MODES):
        changes["numa_nodes"] = 1      # the nodes were there for the modes left out
    return _without(storm, left, **changes)


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
        wanted += [f"zswap.{zpool}" for zpool in storm.zswap_zpools]
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
    elif storm.name != SEED_STORM and not unmet(load_storm(SEED_STORM), config_text, reqs):
        hint = f"\nthe {SEED_STORM} storm runs on this kernel: --storm {SEED_STORM}"
    raise ConfigError(f"storm '{storm.name}' cannot run on {kernel}; it lacks what these need:\n  "
                      + "\n  ".join(lines) + hint)
