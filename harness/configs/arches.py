"""configs/arches/*.yaml -> Arch: an arch is its YAML file and nothing else."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.configs.common import _OPTION_RE, CONFIG_DIR, _find, _names, parse_fragment
from harness.errors import ConfigError
from harness.yamlfile import Fields

# Where the guest's static busybox comes from (Arch.busybox).
BUSYBOX_FROM = ("package", "source")
TCG_THREADS = ("multi", "single")


@dataclass(frozen=True)
class Arch:
    name: str
    kernel_arch: str            # ARCH= for kbuild
    kernel_srcarch: str         # kbuild's SRCARCH: the arch/ directory of ARCH= (x86 for x86_64, i386)
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
    smp_topology: str           # how -smp lays the CPUs out ("sockets={smp}"), "" = QEMU's default
    console: str
    disk_interface: str         # how swap disks attach: "virtio-blk-pci", ...
    net_device: str
    extra_args: tuple[str, ...]
    tcg_thread: str             # TCG's "thread=": multi (a host thread per vCPU) or single
    tcg_host_tsc: bool          # under TCG the guest's TSC is the host's: tell it the rate (harness/hosttsc.py)
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
    # memory_mb) and {cpus} (its CPUs, "0" or "0-1") filled in for each;
    # or kernel command-line words ({nodes}) where the kernel makes the nodes
    # itself (x86_64 without ACPI has no SRAT to read QEMU's from).
    numa_max_nodes: int = 0
    numa_args: tuple[str, ...] = ()
    numa_node_args: tuple[str, ...] = ()
    numa_append: str = ""



def arch_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    return _names(config_dir / "arches")



def load_arch(name: str, config_dir: Path = CONFIG_DIR) -> Arch:
    path = _find("arch", config_dir / "arches", name, "arches")
    top = Fields(yamlfile.load(path), path)
    qemu = top.sub("qemu")
    kernel = top.sub("kernel")
    numa = qemu.sub("numa", {})
    arch = Arch(
        name=top.get("name", str),
        kernel_arch=top.get("kernel_arch", str),
        kernel_srcarch=top.get("kernel_srcarch", str, "") or top.get("kernel_arch", str),
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
        smp_topology=qemu.get("smp_topology", str, "") or "",
        console=qemu.get("console", str),
        disk_interface=qemu.get("disk_interface", str, "virtio-blk-pci"),
        net_device=qemu.get("net_device", str, "virtio-net-pci"),
        extra_args=qemu.str_list("extra_args", []),
        tcg_thread=qemu.choice("tcg_thread", TCG_THREADS, "multi"),
        tcg_host_tsc=qemu.get("tcg_host_tsc", bool, False),
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
        numa_append=numa.get("append", str, "") or "",
    )
    for fields in (numa, qemu, kernel, top):
        fields.finish()
    if arch.name != name:
        raise ConfigError(f"{top.where('name')}: name '{arch.name}' does not match file name '{name}'")
    if arch.memory_mb < 64 or arch.smp < 1:
        raise ConfigError(f"{qemu.where('memory_mb')}: memory_mb must be >= 64 and smp >= 1")
    if arch.numa_max_nodes and (not (arch.numa_node_args or arch.numa_append) or arch.numa_max_nodes > arch.smp):
        raise ConfigError(f"{numa.where('max_nodes')}: needs node_args or append, and at most smp ({arch.smp}) "
                          "nodes")
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

