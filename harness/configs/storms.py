"""configs/storms/*.yaml -> Storm: what runs in the guest, its swap areas, its faults' knobs."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.configs.common import CONFIG_DIR, _find, _names
from harness.configs.profiles import FAULT_KINDS, FaultSettings
from harness.errors import ConfigError
from harness.yamlfile import Fields

# A storm `command:`: words of plain characters ({duration}/{seed} placeholders allowed).
_COMMAND_RE = re.compile(r"[A-Za-z0-9_./:=,+%@{}-]+(?:\s+[A-Za-z0-9_./:=,+%@{}-]+)*")
# Filesystems a storm's swap files can live on (Storm.swap_file_fs).
SWAP_FILE_FS = ("ext2", "ext4")


# zswap's allocators (zswap.zpool=): each needs its own kernel option (requires.yaml).
ZPOOLS = ("zsmalloc", "zbud", "z3fold")


@dataclass(frozen=True)
class StressorSpec:
    mode: str                   # an mmstress mode, or "" for a `command:` entry
    args: tuple[str, ...]
    instances: int
    # Instead of `mode:`, a command line for another guest program, given to
    # storm-run as is ({duration} and {seed} filled in): storm-run splits it
    # on whitespace and does no quoting, so quotes and shell syntax are refused.
    command: str = ""
    # Lock targets (configs/locks.yaml names) this stressor is there to reach:
    # none of them taken during the storm is a warning naming the mode.
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Storm:
    name: str
    description: str
    duration_s: int
    swap_devices: int
    swap_size_mb: int
    swap_priorities: tuple[int, ...]
    stressors: tuple[StressorSpec, ...]
    module_storm: bool
    append: str
    path: Path
    lock_targets: tuple[str, ...] = ()  # names from configs/locks.yaml; () = its default list
    # Swap files on a disk filesystem (ext2 on one more disk, made in the guest).
    swap_files: int = 0
    swap_file_mb: int = 32
    swap_file_priorities: tuple[int, ...] = ()
    swap_file_fs: str = "ext2"          # SWAP_FILE_FS: ext2 (made in the guest) or ext4 (made on the host)
    # Room for a program's own files (stress-ng's --temp-path) on the same disk
    # filesystem, mounted at storm.SWAPFS_MOUNT; 0 = none.
    scratch_mb: int = 0
    # A zram swap device (/dev/zram0) of this size beside the disks; 0 = none.
    zram_mb: int = 0
    zram_priority: int = -1
    # zswap in front of every swap area: its pool limit in percent of RAM; 0 = off.
    zswap_pool_percent: int = 0
    # zswap's allocators, switched in turn every zswap_switch_s seconds of the storm
    # (the first from boot); one name and no switching by default.
    zswap_zpools: tuple[str, ...] = ()
    zswap_switch_s: int = 0
    # Seconds between the starts of the plan's stressors; storm-run counts the
    # lockdep dependency chains that appear after each start (per-mode chains).
    stagger_s: int = 0
    numa_nodes: int = 1                 # NUMA nodes the guest needs (numa mode: 2)
    # Guest RAM the storm needs, in MiB; the arch's qemu.memory_mb when larger (0: the arch's).
    memory_mb: int = 0
    # FAULTS=: each kind's knobs (storm YAML `faults:`; defaults where it is silent).
    faults: tuple[tuple[str, FaultSettings], ...] = ()
    # Filled in for one arch (requires.for_arch): (mode, why) of each stressor
    # mode left out because the arch cannot have it.
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def has_fs_disk(self) -> bool:
        """One more disk, with a filesystem for swap files and scratch space."""
        return bool(self.swap_files or self.scratch_mb)



def storm_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    return _names(config_dir / "storms")



def load_storm(name: str, config_dir: Path = CONFIG_DIR) -> Storm:
    path = _find("storm", config_dir / "storms", name)
    top = Fields(yamlfile.load(path), path)
    swap = top.sub("swap")
    files = swap.sub("files", {})
    zram = swap.sub("zram", {})
    zswap = swap.sub("zswap", {})
    scratch = top.sub("scratch", {})
    faults = _fault_settings(top.sub("faults", {}))
    # The swap files and the scratch space share one filesystem: one type.
    fs_types = {fields.choice("fs", SWAP_FILE_FS) for fields in (files, scratch) if "fs" in fields.data}
    if len(fs_types) > 1:
        raise ConfigError(f"{scratch.where('fs')}: the scratch space shares the swap files' filesystem, "
                          f"one type for both, got {' and '.join(sorted(fs_types))}")
    stressors = []
    raw = top.get("stressors", list)
    for index, item in enumerate(raw):
        entry = Fields(item, path, f"stressors[{index}].")
        command = entry.get("command", str, "") or ""
        if command:
            if "mode" in entry.data or "args" in entry.data:
                raise ConfigError(f"{entry.where('command')}: give either mode (+ args) or command, not both")
            if not _COMMAND_RE.fullmatch(command.strip()):
                raise ConfigError(f"{entry.where('command')}: storm-run runs a command line without a shell: "
                                  f"no quotes, redirections, pipes or other shell syntax, got {command!r}")
            mode = ""
        else:
            mode = entry.get("mode", str)
            if not re.fullmatch(r"[a-z][a-z0-9-]*", mode):
                raise ConfigError(f"{entry.where('mode')}: invalid stressor mode {mode!r}")
        instances = entry.get("instances", int, 1)
        if instances < 1:
            raise ConfigError(f"{entry.where('instances')}: must be >= 1")
        stressors.append(StressorSpec(mode, entry.str_list("args", []) if not command else (), instances,
                                      " ".join(command.split()), entry.str_list("targets", [])))
        entry.finish()
    storm = Storm(
        name=top.get("name", str),
        description=top.get("description", str, ""),
        duration_s=top.get("duration_s", int, 60),
        swap_devices=swap.get("devices", int, 3),
        swap_size_mb=swap.get("size_mb", int, 64),
        swap_priorities=tuple(swap.get("priorities", list, [])),
        stressors=tuple(stressors),
        module_storm=top.get("module_storm", bool, True),
        append=top.get("append", str, "") or "",
        path=path,
        lock_targets=top.str_list("lock_targets", []),
        swap_files=files.get("count", int, 0),
        swap_file_mb=files.get("size_mb", int, 32),
        swap_file_priorities=tuple(files.get("priorities", list, [])),
        swap_file_fs=fs_types.pop() if fs_types else "ext2",
        scratch_mb=scratch.get("size_mb", int, 0),
        zram_mb=zram.get("size_mb", int, 0),
        zram_priority=zram.get("priority", int, -1),
        zswap_pool_percent=zswap.get("max_pool_percent", int, 0),
        zswap_zpools=tuple(zswap.str_list("zpools", [])),
        zswap_switch_s=zswap.get("switch_s", int, 0),
        stagger_s=top.get("stagger_s", int, 0),
        numa_nodes=top.get("numa_nodes", int, 1),
        memory_mb=top.get("memory_mb", int, 0),
        faults=faults,
    )
    for fields in (zram, zswap, scratch):
        fields.finish()
    files.finish()
    swap.finish()
    top.finish()
    if storm.name != name:
        raise ConfigError(f"{top.where('name')}: name '{storm.name}' does not match file name '{name}'")
    if storm.swap_priorities and len(storm.swap_priorities) != storm.swap_devices:
        raise ConfigError(f"{swap.where('priorities')}: {len(storm.swap_priorities)} priorities "
                          f"for {storm.swap_devices} devices")
    if any(not isinstance(p, int) or isinstance(p, bool) for p in storm.swap_priorities):
        raise ConfigError(f"{swap.where('priorities')}: priorities must be integers")
    if storm.swap_file_priorities and len(storm.swap_file_priorities) != storm.swap_files:
        raise ConfigError(f"{files.where('priorities')}: {len(storm.swap_file_priorities)} priorities "
                          f"for {storm.swap_files} files")
    if any(not isinstance(p, int) or isinstance(p, bool) for p in storm.swap_file_priorities):
        raise ConfigError(f"{files.where('priorities')}: priorities must be integers")
    if storm.swap_files < 0 or storm.swap_file_mb < 1:
        raise ConfigError(f"{files.where('count')}: count must be >= 0 and size_mb >= 1")
    if not 0 <= storm.scratch_mb <= 65536:
        raise ConfigError(f"{scratch.where('size_mb')}: must be 0..65536")
    if storm.zram_mb < 0 or not -1 <= storm.zram_priority <= 32767:
        raise ConfigError(f"{zram.where('size_mb')}: size_mb must be >= 0 and priority -1..32767")
    if not 0 <= storm.zswap_pool_percent <= 100:
        raise ConfigError(f"{zswap.where('max_pool_percent')}: must be 0..100")
    unknown = [z for z in storm.zswap_zpools if z not in ZPOOLS]
    if unknown or len(set(storm.zswap_zpools)) != len(storm.zswap_zpools):
        raise ConfigError(f"{zswap.where('zpools')}: {', '.join(unknown) or 'a repeated name'}: "
                          f"each of {', '.join(ZPOOLS)} at most once")
    if not 0 <= storm.zswap_switch_s <= 600 or (storm.zswap_switch_s and len(storm.zswap_zpools) < 2):
        raise ConfigError(f"{zswap.where('switch_s')}: 0..600 seconds, and switching needs two zpools")
    if not 1 <= storm.numa_nodes <= 8:
        raise ConfigError(f"{top.where('numa_nodes')}: must be 1..8")
    if storm.memory_mb and not 64 <= storm.memory_mb <= 4096:
        raise ConfigError(f"{top.where('memory_mb')}: must be 64..4096 MiB (or 0: the arch's)")
    if not 0 <= storm.stagger_s <= 60:
        raise ConfigError(f"{top.where('stagger_s')}: must be 0..60 seconds")
    return storm


def _fault_settings(section: Fields) -> tuple[tuple[str, FaultSettings], ...]:
    """The storm's `faults:` section: {kind: {probability, interval, times, ...}}, checked."""
    settings = []
    for kind in FAULT_KINDS:
        entry = section.sub(kind, {})
        value = FaultSettings(entry.get("probability", int, 10), entry.get("interval", int, 1),
                              entry.get("times", int, 10000), entry.get("ignore_gfp_wait", bool, True),
                              entry.get("verbose", int, 0))
        entry.finish()
        for key, ok, allowed in (("probability", 0 <= value.probability <= 100, "0..100"),
                                 ("interval", 1 <= value.interval <= 1_000_000, "1..1000000"),
                                 ("times", 1 <= value.times <= 100_000_000, "1..100000000"),
                                 ("verbose", value.verbose in (0, 1, 2), "0, 1 or 2")):
            if not ok:
                raise ConfigError(f"{entry.where(key)}: must be {allowed}, got {getattr(value, key)}")
        settings.append((kind, value))
    section.finish()
    return tuple(settings)
