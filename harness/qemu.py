"""QEMU: the command line from an Arch, a KVM probe that proves KVM really
runs a guest, and the swap disks of a run.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.cache import cache_root, content_key
from harness.configs import Arch
from harness.errors import ConfigError, InfraError
from harness.host import require_tool
from harness.hosttsc import host_tsc_khz

log = logging.getLogger(__name__)

ACCELS = ("auto", "kvm", "tcg")
KVM_PROBE_TIMEOUT_S = 10.0
_PROBE_MARKER = b"Linux version"


@dataclass(frozen=True)
class BootSpec:
    """Everything one QEMU invocation needs, independent of the arch."""

    kernel: Path
    initrd: Path
    append: str
    accel: str                       # "kvm" or "tcg", already decided
    disks: tuple[Path, ...] = ()
    console_log: Path | None = None  # QEMU's own chardev log (integrity cross-check)
    monitor: Path | None = None      # unix socket for the QEMU monitor
    hostfwd_port: int = 0            # 0: no SSH forwarding
    extra: tuple[str, ...] = field(default_factory=tuple)


def qemu_version(binary: str) -> str:
    proc = subprocess.run([require_tool(binary), "--version"], capture_output=True, text=True, check=False)
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    return first.replace("QEMU emulator version ", "").strip()


def kernel_cmdline(arch: Arch, *parts: str) -> str:
    """console, panic=-1 (a dying kernel ends QEMU together with -no-reboot), then the rest."""
    words = [f"console={arch.console}", "panic=-1", "rdinit=/init"]
    for part in (arch.append, *parts):
        words += part.split()
    return " ".join(words)


def smp_arg(arch: Arch) -> str:
    """-smp's value: the CPU count, laid out as the arch says (qemu.smp_topology)."""
    layout = arch.smp_topology.format(smp=arch.smp)
    return f"{arch.smp},{layout}" if layout else str(arch.smp)


def accel_append(arch: Arch, accel: str) -> str:
    """Kernel command-line words for this accelerator: under TCG, an x86 guest told its
    TSC's rate and that its CPUs' TSCs are in step (they are the host's one counter:
    harness/hosttsc.py) where the arch asks (qemu.tcg_host_tsc)."""
    if accel != "tcg" or not arch.tcg_host_tsc:
        return ""
    khz, why_not = host_tsc_khz()
    if khz is None:
        log.info("tsc: the guest calibrates its TSC itself: %s", why_not)
        return ""
    return f"tsc_early_khz={khz} tsc=reliable"


def argv(arch: Arch, spec: BootSpec) -> list[str]:
    if spec.accel not in ("kvm", "tcg"):
        raise ConfigError(f"accel must be kvm or tcg here, not {spec.accel!r}")
    args = [
        arch.qemu_binary,
        "-machine", arch.machine,
        "-accel", "kvm" if spec.accel == "kvm" else f"tcg,thread={arch.tcg_thread}",
        "-cpu", arch.kvm_cpu if spec.accel == "kvm" else arch.cpu,
        "-m", str(arch.memory_mb),
        "-smp", smp_arg(arch),
        "-kernel", str(spec.kernel),
        "-initrd", str(spec.initrd),
        "-append", spec.append,
        "-display", "none",
        "-nodefaults",
        "-no-reboot",
    ]
    # The console shares its chardev with the monitor (mux): Ctrl-A b sends a
    # serial break (SysRq without the guest's shell), Ctrl-A c the monitor.
    chardev = "stdio,id=con0,signal=off,mux=on"
    if spec.console_log:
        chardev += f",logfile={spec.console_log}"
    args += ["-chardev", chardev, "-serial", "chardev:con0", "-mon", "chardev=con0,mode=readline"]
    if spec.monitor:
        args += ["-monitor", f"unix:{spec.monitor},server=on,wait=off"]
    for index, disk in enumerate(spec.disks):
        args += ["-drive", f"file={disk},format=raw,if=none,id=swap{index},cache=unsafe",
                 "-device", f"{arch.disk_interface},drive=swap{index},serial={disk_serial(index)}"]
    if arch.net_device:
        # The guest runs a kernel nobody reviewed: restrict=on cuts it off from the
        # host and the outside (slirp drops every connection the guest starts);
        # only the forwarded SSH port, on the host's loopback, reaches it.
        netdev = "user,id=net0,restrict=on"
        if spec.hostfwd_port:
            netdev += f",hostfwd=tcp:127.0.0.1:{spec.hostfwd_port}-:22"
        args += ["-netdev", netdev, "-device", f"{arch.net_device},netdev=net0"]
    args += list(arch.extra_args) + list(spec.extra)
    return args


def disk_serial(index: int) -> str:
    """The serial number of the run's disk `index`. virtio-blk probes disks in
    parallel on some machines (s390x's virtio-ccw: vdb can be the fourth disk),
    so the guest finds each by its serial: storm-run links /dev/<serial> to it."""
    return f"mmlock-swap{index}"


def guest_disk(index: int) -> str:
    """The guest's stable path of the run's disk `index` (see disk_serial)."""
    return f"/dev/{disk_serial(index)}"


def numa_append(arch: Arch, nodes: int) -> str:
    """Kernel command-line words for `nodes` NUMA nodes where the kernel makes them
    (qemu.numa.append); "" for one node. numa_args checks the arch can give them."""
    return arch.numa_append.format(nodes=nodes) if nodes > 1 else ""


def numa_args(arch: Arch, nodes: int, storm_name: str = "") -> tuple[str, ...]:
    """QEMU arguments that give the guest `nodes` NUMA nodes (memory and CPUs split
    evenly), from the arch's qemu.numa; () for one node."""
    if nodes <= 1:
        return ()
    if nodes > arch.numa_max_nodes:
        can = f"at most {arch.numa_max_nodes}" if arch.numa_max_nodes else "none (no qemu.numa)"
        raise ConfigError(f"storm '{storm_name}' wants {nodes} NUMA nodes; the {arch.name} machine "
                          f"({arch.path.name}) can give {can}")
    args = [a.format(nodes=nodes, smp=arch.smp) for a in arch.numa_args]
    if not arch.numa_node_args:
        return tuple(args)
    per_cpu = arch.smp // nodes
    for node in range(nodes):
        first = node * per_cpu
        last = arch.smp - 1 if node == nodes - 1 else first + per_cpu - 1
        cpus = str(first) if first == last else f"{first}-{last}"
        mb = arch.memory_mb // nodes if node < nodes - 1 else arch.memory_mb - (nodes - 1) * (arch.memory_mb // nodes)
        args += [a.format(node=node, mb=mb, cpus=cpus) for a in arch.numa_node_args]
    return tuple(args)


def make_swap_disks(run_dir: Path, count: int, size_mb: int, swapfs_mb: int = 0) -> tuple[Path, ...]:
    """Sparse raw images, one per swap device, then one for the swap files' filesystem
    when swapfs_mb; they cost no disk until written."""
    sizes = [(f"swap{index}.img", size_mb) for index in range(count)]
    if swapfs_mb:
        sizes.append(("swapfs.img", swapfs_mb))
    disks = []
    for name, mb in sizes:
        path = run_dir / name
        with open(path, "wb") as handle:
            handle.truncate(mb << 20)
        disks.append(path)
    return tuple(disks)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _probe_once(arch: Arch, kernel: Path) -> tuple[bool, str]:
    args = [arch.qemu_binary, "-machine", arch.machine, "-accel", "kvm", "-cpu", arch.kvm_cpu,
            "-m", "128", "-kernel", str(kernel),
            "-append", f"console={arch.console} earlyprintk=serial,{arch.console} panic=-1",
            "-display", "none", "-nodefaults", "-no-reboot", "-serial", "stdio"]
    log.debug("kvm probe: %s", " ".join(args))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + KVM_PROBE_TIMEOUT_S
    try:
        while time.monotonic() < deadline and _PROBE_MARKER not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    finally:
        proc.kill()
        _, err = proc.communicate()
    if _PROBE_MARKER in seen:
        return True, "a kernel printed its banner under KVM"
    if proc.returncode not in (0, -9) and err:
        return False, "QEMU failed under KVM: " + err.decode(errors="replace").strip().splitlines()[-1]
    return False, f"no kernel output within {KVM_PROBE_TIMEOUT_S:.0f}s under KVM (guest does not run)"


def choose_accel(requested: str, arch: Arch, kernel: Path) -> tuple[str, str]:
    """Decide kvm or tcg; return (accel, reason). ACCEL=kvm that cannot work is an infra error."""
    if requested not in ACCELS:
        raise ConfigError(f"unknown ACCEL '{requested}'; valid: {', '.join(ACCELS)}")
    if requested == "tcg":
        return "tcg", "requested"
    why_not = ""
    if arch.kvm_host != platform.machine():
        why_not = f"guest arch {arch.name} cannot run under KVM on a {platform.machine()} host"
    elif not os.access("/dev/kvm", os.R_OK | os.W_OK):
        why_not = "/dev/kvm is missing or not accessible"
    if not why_not:
        key = content_key(_boot_id(), qemu_version(arch.qemu_binary), arch.name, arch.kvm_cpu, arch.machine)
        cache_file = cache_root() / "kvm-probe.json"
        try:
            known = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            known = {}
        if key in known:
            works, reason = known[key]
            reason += " (probed earlier on this host boot)"
        else:
            works, reason = _probe_once(arch, kernel)
            known[key] = (works, reason)
            cache_file.write_text(json.dumps(known))
        if works:
            return "kvm", reason
        why_not = reason
    if requested == "kvm":
        raise InfraError(f"ACCEL=kvm but KVM cannot run the guest: {why_not}")
    return "tcg", f"KVM unusable: {why_not}"
