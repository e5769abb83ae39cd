"""The plan of one run: a RunRequest checked whole, before any work, into the Arch,
Profile, Storm and duration it names (ConfigError naming the valid values)."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import qemu, requires
from harness.configs import REPO_ROOT, Arch, Profile, Storm, load_arch, load_storm, run_profile
from harness.errors import ConfigError
from harness.kernel import source as kernel_source

# INJECT= kinds: the guest's injector (guest/init/mmlock-inject) lists them; sysrq
# kinds take no SECONDS, the test module's may.
INJECTOR = REPO_ROOT / "guest" / "init" / "mmlock-inject"


def _injector_kinds(variable: str) -> tuple[str, ...]:
    match = re.search(rf'^{variable}="([^"]*)"$', INJECTOR.read_text(), re.M)
    if match is None:
        raise ConfigError(f"{INJECTOR}: no {variable}= line")
    return tuple(match.group(1).split())


INJECTIONS = _injector_kinds("SYSRQ_KINDS")
MODULE_INJECTIONS = _injector_kinds("MODULE_KINDS")


@dataclass(frozen=True)
class RunRequest:
    arch: str = "x86_64"
    kernel_src: str | None = None
    kernel_version: str = kernel_source.DEFAULT_VERSION
    profile: str = "lockdep"
    storm: str = "swapoff-fork-mmap"
    seed: int = 1
    duration: int | None = None          # None: the storm's own duration
    accel: str = "auto"
    inject: str | None = None
    storm_enabled: bool = True
    label: str = "run"
    inactivity_s: int | None = None      # None: INACTIVITY_S for the accelerator
    leave_out: tuple[str, ...] = ()      # storm parts not to run (requires.leave_out)
    # Host binaries copied into the guest with their libraries (a yardstick's stress-ng).
    guest_binaries: tuple[str, ...] = ()
    results_dir: str | None = None       # where the run directory goes; None: results_root()
    cache_dir: str | None = None         # a cache of its own (bench's cold sample); None: MMLOCK_CACHE's
    # End the storm at the first complete kernel report (harness.watch): the run has
    # its answer; verdict.json says stopped_early and when.
    stop_on_report: bool = False
    stagger_s: int | None = None         # seconds between stressor starts; None: the storm's own
    preempt: str = "full"                # the kernel's preemption model (configs.PREEMPT_MODELS)
    faults: tuple[str, ...] = ()         # fault-injection kinds for the storm (configs.FAULT_KINDS)
    # The harness's own reliability hooks (set from MMLOCK_FAULT, MMLOCK_SSH, MMLOCK_SSH_FAULT
    # at the command line's edge, harness.options): raise:STAGE (a bug of ours at that stage)
    # or freeze:SECONDS (every vCPU stopped that far into the storm); SSH or the console only;
    # kill-sshd:SECONDS (the SSH fallback's self-test).
    harness_fault: str = ""
    ssh: bool = True
    ssh_fault: str = ""

    def to_json(self) -> dict:
        """The request for a child process (`python -m harness run-request JSON`: a matrix cell)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object) -> RunRequest:
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - names:
            unknown = sorted(set(data) - names) if isinstance(data, dict) else [type(data).__name__]
            raise ConfigError(f"not a run request: unknown {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)



@dataclass(frozen=True)
class Plan:
    """A request and what it names, checked."""

    request: RunRequest
    arch: Arch
    profile: Profile
    storm: Storm
    duration: int


def guest_command_for(inject: str) -> str:
    """KIND or KIND:SECONDS -> the guest command that triggers it."""
    kind, _, seconds = inject.partition(":")
    if seconds and not re.fullmatch(r"[0-9]{1,6}", seconds):   # not isdigit(): it takes '²' and '٣'
        raise ConfigError(f"injection '{inject}': seconds must be a whole number")
    if (kind in INJECTIONS and not seconds) or kind in MODULE_INJECTIONS:
        return f"mmlock-inject {kind} {seconds}".rstrip()
    valid = ", ".join(INJECTIONS + MODULE_INJECTIONS)
    raise ConfigError(f"unknown injection '{inject}'; valid: {valid}")


def check_options(request: RunRequest) -> tuple[Profile, Storm, int]:
    """Every value of a request that does not depend on the arch, checked before any
    work (a matrix checks these once for all its cells): ConfigError naming the valid ones."""
    if request.accel not in qemu.ACCELS:
        raise ConfigError(f"unknown ACCEL '{request.accel}'; valid: {', '.join(qemu.ACCELS)}")
    if not request.kernel_src and request.kernel_version not in kernel_source.KNOWN_VERSIONS:
        raise ConfigError(f"unknown kernel version '{request.kernel_version}'; valid versions: "
                          f"{', '.join(kernel_source.KNOWN_VERSIONS)} (or KERNEL_SRC=<a tree>)")
    profile = run_profile(request.profile, request.preempt, request.faults)
    storm = requires.leave_out(load_storm(request.storm), request.leave_out)
    if request.stagger_s is not None:
        if not 0 <= request.stagger_s <= 60:
            raise ConfigError(f"STAGGER must be 0..60 seconds, got {request.stagger_s}")
        storm = dataclasses.replace(storm, stagger_s=request.stagger_s)
    duration = storm.duration_s if request.duration is None else request.duration
    if duration < 1 or duration > 86400:
        raise ConfigError(f"DURATION must be between 1 and 86400 seconds, got {duration}")
    if request.inject:
        guest_command_for(request.inject)
    if request.inactivity_s is not None and request.inactivity_s < 1:
        raise ConfigError(f"INACTIVITY must be at least 1 second, got {request.inactivity_s}")
    return profile, storm, duration


def load_request(request: RunRequest) -> tuple[Arch, Profile, Storm, int]:
    """The request checked whole (check_options, then what the arch must give) before any work."""
    arch = load_arch(request.arch)
    profile, storm, duration = check_options(request)
    storm = requires.for_arch(storm, arch)
    if storm.memory_mb > arch.memory_mb:   # a storm that needs a bigger guest
        arch = dataclasses.replace(arch, memory_mb=storm.memory_mb)
    qemu.numa_args(arch, storm.numa_nodes, storm.name)   # the arch can give what the storm wants
    if request.kernel_src:
        kernel_source.validate_tree(Path(request.kernel_src))
    return arch, profile, storm, duration


def plan(request: RunRequest) -> Plan:
    return Plan(request, *load_request(request))
