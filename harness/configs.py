"""The data in configs/ as frozen dataclasses: arches, kernel profiles, storms.

An arch is its YAML file and nothing else; a storm likewise. Unknown names
list the valid ones; malformed files name the file, line and key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.errors import ConfigError
from harness.yamlfile import Fields

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
# A storm `command:`: words of plain characters ({duration}/{seed} placeholders allowed).
_COMMAND_RE = re.compile(r"[A-Za-z0-9_./:=,+%@{}-]+(?:\s+[A-Za-z0-9_./:=,+%@{}-]+)*")
# Where the guest's static busybox comes from (Arch.busybox).
BUSYBOX_FROM = ("package", "source")
TCG_THREADS = ("multi", "single")
# Filesystems a storm's swap files can live on (Storm.swap_file_fs).
SWAP_FILE_FS = ("ext2", "ext4")
_OPTION_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$|^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Arch:
    name: str
    kernel_arch: str            # ARCH= for kbuild
    cross_compile: str          # CROSS_COMPILE= prefix, "" for native
    debian_arch: str            # dpkg architecture of the guest userland
    kvm_host: str               # `uname -m` on which KVM can run this guest; "" = never
    busybox: str                # "package": Debian's busybox-static of debian_arch; "source": built from
                                # Debian's source package (no binary packages for debian_arch)
    packages: tuple[str, ...]   # Debian packages needed on the host for this arch
    qemu_binary: str
    machine: str
    cpu: str
    kvm_cpu: str
    memory_mb: int
    smp: int
    console: str
    disk_interface: str         # how swap disks attach: "virtio-blk-pci", ...
    net_device: str
    extra_args: tuple[str, ...]
    tcg_thread: str             # TCG's "thread=": multi (a host thread per vCPU) or single
    monitor_pc: str             # regex, one group: a vCPU's pc (hex) in `info registers -a`; "" = none
    image_target: str
    image_path: str
    append: str
    fragment: str               # kconfig lines for this arch
    version_fragments: tuple[tuple[str, str], ...]  # (kernel "major.minor", extra kconfig lines)
    path: Path
    # Options the shared fragments (base.config, profiles) ask for that this
    # arch cannot have (e.g. SOFTLOCKUP_DETECTOR on s390): left out of those
    # fragments for this arch instead of failing its build.
    unavailable: tuple[str, ...] = ()
    # NUMA: how many nodes the QEMU machine can give the guest (0: it cannot),
    # QEMU arguments given once ({nodes}, {smp}: e.g. a CPU topology with a
    # socket per node) and those of one node, with {node}, {mb} (its share of
    # memory_mb) and {cpus} (its CPUs, "0" or "0-1") filled in for each.
    numa_max_nodes: int = 0
    numa_args: tuple[str, ...] = ()
    numa_node_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    fragments: tuple[Path, ...]
    append: str


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
    # Seconds between the starts of the plan's stressors; storm-run counts the
    # lockdep dependency chains that appear after each start (per-mode chains).
    stagger_s: int = 0
    numa_nodes: int = 1                 # NUMA nodes the guest needs (numa mode: 2)
    # FAULTS=: each kind's knobs (storm YAML `faults:`; defaults where it is silent).
    faults: tuple[tuple[str, FaultSettings], ...] = ()
    # Filled in for one arch (requires.for_arch): (mode, why) of each stressor
    # mode left out because the arch cannot have it.
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def has_fs_disk(self) -> bool:
        """One more disk, with a filesystem for swap files and scratch space."""
        return bool(self.swap_files or self.scratch_mb)


def _names(kind_dir: Path) -> list[str]:
    return sorted(p.stem for p in kind_dir.glob("*.yaml"))


def _find(kind: str, kind_dir: Path, name: str, plural: str = "") -> Path:
    path = kind_dir / f"{name}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path.is_file():
        valid = ", ".join(_names(kind_dir)) or "(none)"
        raise ConfigError(f"unknown {kind} '{name}'; valid {plural or kind + 's'}: {valid}")
    return path


def arch_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    return _names(config_dir / "arches")


def storm_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    return _names(config_dir / "storms")


def load_arch(name: str, config_dir: Path = CONFIG_DIR) -> Arch:
    path = _find("arch", config_dir / "arches", name, "arches")
    top = Fields(yamlfile.load(path), path)
    qemu = top.sub("qemu")
    kernel = top.sub("kernel")
    numa = qemu.sub("numa", {})
    arch = Arch(
        name=top.get("name", str),
        kernel_arch=top.get("kernel_arch", str),
        cross_compile=top.get("cross_compile", str, "") or "",
        debian_arch=top.get("debian_arch", str),
        kvm_host=top.get("kvm_host", str, "") or "",
        busybox=top.choice("busybox", BUSYBOX_FROM, "package"),
        packages=top.str_list("packages", []),
        qemu_binary=qemu.get("binary", str),
        machine=qemu.get("machine", str),
        cpu=qemu.get("cpu", str),
        kvm_cpu=qemu.get("kvm_cpu", str, "host"),
        memory_mb=qemu.get("memory_mb", int),
        smp=qemu.get("smp", int),
        console=qemu.get("console", str),
        disk_interface=qemu.get("disk_interface", str, "virtio-blk-pci"),
        net_device=qemu.get("net_device", str, "virtio-net-pci"),
        extra_args=qemu.str_list("extra_args", []),
        tcg_thread=qemu.choice("tcg_thread", TCG_THREADS, "multi"),
        monitor_pc=qemu.get("monitor_pc", str, "") or "",
        image_target=kernel.get("image_target", str),
        image_path=kernel.get("image_path", str),
        append=kernel.get("append", str, "") or "",
        fragment=kernel.get("fragment", str, "") or "",
        version_fragments=tuple((str(k), str(v)) for k, v in
                                (kernel.get("version_fragments", dict, {}) or {}).items()),
        path=path,
        unavailable=kernel.str_list("unavailable", []),
        numa_max_nodes=numa.get("max_nodes", int, 0),
        numa_args=numa.str_list("args", []),
        numa_node_args=numa.str_list("node_args", []),
    )
    for fields in (numa, qemu, kernel, top):
        fields.finish()
    if arch.name != name:
        raise ConfigError(f"{top.where('name')}: name '{arch.name}' does not match file name '{name}'")
    if arch.memory_mb < 64 or arch.smp < 1:
        raise ConfigError(f"{qemu.where('memory_mb')}: memory_mb must be >= 64 and smp >= 1")
    if arch.numa_max_nodes and (not arch.numa_node_args or arch.numa_max_nodes > arch.smp):
        raise ConfigError(f"{numa.where('max_nodes')}: needs node_args and at most smp ({arch.smp}) nodes")
    if arch.monitor_pc:
        try:
            groups = re.compile(arch.monitor_pc).groups
        except re.error as exc:
            raise ConfigError(f"{qemu.where('monitor_pc')}: not a regular expression: {exc}") from None
        if groups != 1:
            raise ConfigError(f"{qemu.where('monitor_pc')}: needs exactly one group (the pc), has {groups}")
    every_line = arch.fragment + "\n" + "\n".join(text for _, text in arch.version_fragments)
    bad = [line for line in every_line.splitlines() if line.strip() and not _OPTION_RE.match(line.strip())]
    if bad:
        raise ConfigError(f"{kernel.where('fragment')}: not a kconfig line: {bad[0]!r}")
    for option in arch.unavailable:
        if not re.fullmatch(r"CONFIG_[A-Za-z0-9_]+", option):
            raise ConfigError(f"{kernel.where('unavailable')}: not a kconfig option name: {option!r}")
        if option in parse_fragment(every_line):
            raise ConfigError(f"{kernel.where('unavailable')}: {option} is unavailable but the arch's own "
                              "fragment sets it")
    return arch


def profile_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    path = config_dir / "kernel" / "profiles.yaml"
    return sorted(yamlfile.load(path))


PREEMPT_MODELS = ("none", "voluntary", "full")
# FAULTS= kinds -> the kernel's fault-injection attribute (its debugfs directory).
FAULT_KINDS = {"slab": "failslab", "page": "fail_page_alloc", "io": "fail_make_request"}


@dataclass(frozen=True)
class FaultSettings:
    """One fault kind's knobs (Documentation/fault-injection): fail with this
    probability (percent) every interval-th chance, at most `times` times."""
    probability: int = 10
    interval: int = 1
    times: int = 10000
    ignore_gfp_wait: bool = True     # slab, page: only allocations that cannot sleep fail
    verbose: int = 0                 # 1: the kernel prints each failure and its stack


def with_faults(profile: Profile, faults: tuple[str, ...], config_dir: Path = CONFIG_DIR) -> Profile:
    """The profile with the kernel's fault injection built in, when FAULTS= asks for any."""
    unknown = [f for f in faults if f not in FAULT_KINDS]
    if unknown:
        raise ConfigError(f"unknown fault kind(s) {', '.join(unknown)}; valid: {', '.join(FAULT_KINDS)}")
    if not faults:
        return profile
    fragment = config_dir / "kernel" / "profiles" / "faults.config"
    return Profile(name=f"{profile.name}-faults", description=f"{profile.description}; fault injection",
                   fragments=(*profile.fragments, fragment), append=profile.append)


def with_preempt(profile: Profile, model: str, config_dir: Path = CONFIG_DIR) -> Profile:
    """The profile built for another preemption model (PREEMPT=): full is the profiles'
    own; none and voluntary add profiles/preempt-<model>.config, a kernel (and an O=
    tree) of their own. Static models, so every arch has them."""
    if model not in PREEMPT_MODELS:
        raise ConfigError(f"unknown preemption model '{model}'; valid: {', '.join(PREEMPT_MODELS)}")
    if model == "full":
        return profile
    fragment = config_dir / "kernel" / "profiles" / f"preempt-{model}.config"
    return Profile(name=f"{profile.name}-preempt-{model}",
                   description=f"{profile.description}; built with preempt={model}",
                   fragments=(*profile.fragments, fragment), append=profile.append)


def run_profile(name: str, preempt: str = "full", faults: tuple[str, ...] = (),
                config_dir: Path = CONFIG_DIR) -> Profile:
    """The profile a run builds: the named one, for its preemption model, with fault
    injection when FAULTS= asks for any (each a kernel of its own)."""
    return with_faults(with_preempt(load_profile(name, config_dir), preempt, config_dir), faults, config_dir)


def load_profile(name: str, config_dir: Path = CONFIG_DIR) -> Profile:
    path = config_dir / "kernel" / "profiles.yaml"
    top = Fields(yamlfile.load(path), path)
    if name not in top.data:
        valid = ", ".join(sorted(top.data))
        raise ConfigError(f"unknown profile '{name}'; valid profiles: {valid}")
    entry = top.sub(name)
    fragments = []
    for frag in entry.str_list("fragments"):
        frag_path = config_dir / "kernel" / frag
        if not frag_path.is_file():
            raise ConfigError(f"{entry.where('fragments')}: no such fragment file {frag_path}")
        fragments.append(frag_path)
    profile = Profile(name=name, description=entry.get("description", str, ""),
                      fragments=tuple(fragments), append=entry.get("append", str, "") or "")
    entry.finish()
    return profile


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
        stagger_s=top.get("stagger_s", int, 0),
        numa_nodes=top.get("numa_nodes", int, 1),
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
    if not 1 <= storm.numa_nodes <= 8:
        raise ConfigError(f"{top.where('numa_nodes')}: must be 1..8")
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


def parse_fragment(text: str) -> dict[str, str]:
    """kconfig lines -> {CONFIG_X: value}; '# CONFIG_X is not set' maps to 'n'."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = _OPTION_RE.match(line.strip())
        if match:
            if match.group(3):
                options[match.group(3)] = "n"
            else:
                options[match.group(1)] = match.group(2)
    return options
