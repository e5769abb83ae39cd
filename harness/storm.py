"""Drive one storm over a channel: write its plan, run it, collect op counts
and lock coverage. The guest side is guest/init/storm-run and the stressors.
"""
from __future__ import annotations

import logging
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.channel import Channel, ChannelClosed, CommandTimeout, GuestSilent
from harness.configs import FAULT_KINDS, Storm
from harness.configs import load_lock_targets as lock_targets
from harness.errors import InfraError
from harness.host import require_tool, run_logged
from harness.lock_figures import (  # noqa: F401  (storm.X: the names its callers and tests use)
    TOP_CLASSES,
    chain_sampling_stopped,
    class_figures,
    class_matches,
    classes_acquired,
    lock_coverage,
    parse_lock_stat,
    parse_mode_chains,
    release_at_least,
)
from harness.watch import ReportSeen

log = logging.getLogger(__name__)

_KTAP_RE = re.compile(r"^(not ok|ok) \d+ (\S+)(?: # (.*))?$")
_KV_RE = re.compile(r'([A-Za-z_][\w.]*)=("[^"]*"|\S+)')
_CHAINS_RE = re.compile(r"dependency chains:\s+(\d+)")
STORM_GRACE_S = 240  # swapoff of a full disk under TCG can take minutes


@dataclass
class StormResult:
    name: str
    duration_s: int
    seed: int
    counts: dict[str, dict[str, object]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    ended_how: str = "not-started"   # completed | timeout | qemu-exited | stopped-on-report
    timeout_reason: str = ""          # for "timeout": the storm deadline, or the guest fell silent
    status: int | None = None
    wall_s: float = 0.0
    lock_coverage: dict[str, object] = field(default_factory=dict)
    mode_chains: list[dict[str, object]] = field(default_factory=list)
    output: str = ""                  # storm-run's own output (the stressors' lines and details): storm.log
    classes: dict[str, dict[str, int]] = field(default_factory=dict)   # lock-classes.txt

    def to_json(self) -> dict:
        return {"name": self.name, "duration_s": self.duration_s, "seed": self.seed,
                "counts": self.counts, "failures": self.failures, "ended_how": self.ended_how,
                "status": self.status, "wall_s": round(self.wall_s, 2),
                **({"timeout_reason": self.timeout_reason} if self.timeout_reason else {})}


ZRAM_DEVICE = "/dev/zram0"
MIN_STAGGERED_S = 5   # the last stressor of a staggered plan still runs this long


def stressor_names(storm: Storm) -> list[str]:
    """The name each plan line's result goes by, in plan order: its mode (a command's
    program name), with .2, .3 for repeats, as parse_counts names the KTAP lines."""
    names: list[str] = []
    for spec in storm.stressors:
        base = spec.mode or spec.command.split()[0]
        for _ in range(spec.instances):
            unique, suffix = base, 2
            while unique in names:
                unique, suffix = f"{base}.{suffix}", suffix + 1
            names.append(unique)
    return names


def plan_lines(storm: Storm, duration: int, seed: int, swap_devices: list[str]) -> list[str]:
    """One command line per stressor instance, as storm-run will start them. With a
    stagger, line i starts i * stagger_s seconds after the first and runs that much
    shorter, so that every stressor ends together."""
    lines = []
    index = 0
    for spec in storm.stressors:
        for _ in range(spec.instances):
            index += 1
            length = duration
            if storm.stagger_s:
                length = max(duration - (index - 1) * storm.stagger_s, min(duration, MIN_STAGGERED_S))
            if spec.command:
                lines.append(spec.command.replace("{duration}", str(length))
                             .replace("{seed}", str(seed * 1000 + index)))
                continue
            words = ["mmstress", spec.mode, "--duration", str(length), "--seed", str(seed * 1000 + index)]
            if spec.mode == "swap":
                priorities = storm.swap_priorities or tuple(range(len(swap_devices), 0, -1))
                for dev, prio in zip(swap_devices, priorities, strict=False):
                    words += ["--dev", f"{dev}:{prio}"]
                if storm.zram_mb:
                    words += ["--dev", f"{ZRAM_DEVICE}:{storm.zram_priority}"]
                for path, prio in swap_files(storm):
                    words += ["--file", f"{path}:{storm.swap_file_mb}:{prio}"]
            words += list(spec.args)
            lines.append(shlex.join(words))
    return lines


def kernel_append(storm: Storm) -> str:
    """The storm's own kernel command line words, with zswap switched on when it asks."""
    words = storm.append.split()
    if storm.zswap_pool_percent:
        words += ["zswap.enabled=1", f"zswap.max_pool_percent={storm.zswap_pool_percent}"]
        if storm.zswap_zpools:
            words.append(f"zswap.zpool={storm.zswap_zpools[0]}")
    return " ".join(words)


HEARTBEAT_S = 10   # storm-run's console heartbeat; the harness's inactivity limit is far longer
SWAPFS_MOUNT = "/mnt/swapfs"   # storm-run makes ext2 on the swap-file disk and mounts it here
SWAPFS_SLACK_MB = 16           # ext2 metadata and a margin, on top of the files


def swap_files(storm: Storm) -> list[tuple[str, int]]:
    """(guest path, priority) of each swap file; priorities default below the devices'."""
    priorities = storm.swap_file_priorities or tuple(range(-1, -storm.swap_files - 1, -1))
    return [(f"{SWAPFS_MOUNT}/swapfile{i}", prio) for i, prio in enumerate(priorities[:storm.swap_files])]


def make_swapfs(image: Path, fs: str, log_file: Path) -> None:
    """A filesystem busybox cannot make (ext4: extents, a journal) made on the host,
    on the swap-file disk's image; storm-run then only mounts it."""
    argv = [require_tool("mke2fs"), "-q", "-F", "-t", fs, "-b", "4096", "-m", "0", str(image)]
    with open(log_file, "a") as handle:
        handle.write(f"$ {shlex.join(argv)}\n")
        proc = run_logged(argv, stdout=handle, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise InfraError(f"mke2fs -t {fs} of {image.name} failed (exit {proc.returncode}); see {log_file}")


def swapfs_size_mb(storm: Storm) -> int:
    if not storm.has_fs_disk:
        return 0
    return storm.swap_files * storm.swap_file_mb + storm.scratch_mb + SWAPFS_SLACK_MB


def fault_env(storm: Storm, faults: tuple[str, ...]) -> str:
    """storm-run's FAULTS: one word per kind, attr:probability:interval:times:ignore_gfp_wait:verbose."""
    words = []
    for kind, knobs in storm.faults:
        if kind in faults:
            words.append(f"{kind}:{FAULT_KINDS[kind]}:{knobs.probability}:{knobs.interval}:{knobs.times}:"
                         f"{'Y' if knobs.ignore_gfp_wait else 'N'}:{knobs.verbose}")
    return " ".join(words)


def injected_faults(counts: dict[str, dict[str, object]]) -> dict[str, int]:
    """storm-run's faults line -> {kind: failures injected}."""
    return {k: v for k, v in counts.get("faults", {}).items() if k in FAULT_KINDS and isinstance(v, int)}


def run_env(storm: Storm, duration: int, seed: int, swapfs_dev: str = "", faults: tuple[str, ...] = ()) -> str:
    files = " ".join(f"{path}:{storm.swap_file_mb}" for path, _ in swap_files(storm))
    disks = storm.swap_devices + (1 if storm.has_fs_disk else 0)
    return (f"DURATION={duration}\nSEED={seed}\nMODULE_STORM={1 if storm.module_storm else 0}\nDISKS={disks}\n"
            f"HEARTBEAT_S={HEARTBEAT_S}\nSWAPFS_DEV={swapfs_dev}\nSWAPFS_MOUNT={SWAPFS_MOUNT}\n"
            f"SWAPFS_TYPE={storm.swap_file_fs}\nSWAPFS_FILES=\"{files}\"\n"
            f"ZRAM_MB={storm.zram_mb}\nZSWAP={1 if storm.zswap_pool_percent else 0}\n"
            f"ZSWAP_ZPOOLS=\"{' '.join(storm.zswap_zpools)}\"\nZSWAP_SWITCH_S={storm.zswap_switch_s}\n"
            f"STAGGER_S={storm.stagger_s}\nFAULTS=\"{fault_env(storm, faults)}\"\n")


def missing_results(storm: Storm, names: list[str], counts: dict[str, dict[str, object]],
                    output: str) -> list[str]:
    """The mmstress lines of the plan that printed no result line: a stressor that never
    ran (its exec failed) or died before its end is a failure, never a quiet pass. Each
    names what the stressor wrote to stderr, as storm-run passes it on."""
    specs = [spec for spec in storm.stressors for _ in range(spec.instances)]
    missing = []
    for number, (name, spec) in enumerate(zip(names, specs, strict=True), 1):
        if spec.mode and name not in counts:
            said = [line.split(": ", 1)[1] for line in output.splitlines()
                    if line.startswith(f"# stressor {number}: ") and ": " in line]
            missing.append(f"{name}: no result line ({said[-1] if said else 'nothing on stderr'})")
    return missing


def parse_counts(output: str) -> tuple[dict[str, dict[str, object]], list[str]]:
    """KTAP result lines -> {stressor: {key: value}}, and the names that said 'not ok'."""
    counts: dict[str, dict[str, object]] = {}
    failures = []
    for line in output.splitlines():
        match = _KTAP_RE.match(line.strip())
        if not match:
            continue
        verdict, name, rest = match.groups()
        values: dict[str, object] = {}
        for key, value in _KV_RE.findall(rest or ""):
            value = value.strip('"')
            values[key] = int(value) if re.fullmatch(r"-?\d{1,18}", value) else value   # int() refuses 4300+ digits
        unique = name
        suffix = 2
        while unique in counts:
            unique = f"{name}.{suffix}"
            suffix += 1
        counts[unique] = values
        if verdict == "not ok":
            failures.append(f"{unique}: {values.get('reason', 'failed')}")
    return counts, failures


# Every lock class the storm took, and the classes lockdep saw taken directly under
# the wanted ones: guest/init/lock-classes and lock-nested (busybox awk in the guest).
CLASSES_CMD = "lock-classes"
NESTED_CMD = "lock-nested"
def nested_under(channel: Channel, names: set[str], timeout: float) -> dict[str, set[str]]:
    """{class: the classes lockdep saw taken directly under it}, for these classes."""
    wanted = sorted(n for n in names if n)
    found: dict[str, set[str]] = {name: set() for name in wanted}
    if not wanted:
        return found
    command = f"{NESTED_CMD} {' '.join(shlex.quote(n) for n in wanted)} 2>/dev/null"
    for line in channel.run(command, timeout).output.splitlines():
        owner, sep, name = line[len("nested "):].partition(" @@ ")
        if line.startswith("nested ") and sep and owner in found:
            found[owner].add(name.strip())
    return found


def _chains(channel: Channel, timeout: float) -> int | None:
    result = channel.run("cat /proc/lockdep_stats 2>/dev/null | grep 'dependency chains'", timeout)
    match = _CHAINS_RE.search(result.output)
    return int(match.group(1)) if match else None


def run_storm(channel: Channel, storm: Storm, duration: int, seed: int, kernel_release: str = "") -> StormResult:
    """Run storm-run in the guest; never raises for a guest that dies or hangs."""
    result = StormResult(storm.name, duration, seed)
    names = stressor_names(storm)
    mode_targets = {name: spec.targets for name, spec in
                    zip(names, (s for s in storm.stressors for _ in range(s.instances)), strict=True) if spec.targets}
    storm_targets = tuple(lock_targets(names=storm.lock_targets))
    targets = lock_targets(names=tuple(dict.fromkeys(storm_targets + tuple(t for ts in mode_targets.values()
                                                                           for t in ts))))
    started = time.monotonic()
    try:
        channel.run("echo 0 > /proc/lock_stat 2>/dev/null; true", 30)
        chains_before = _chains(channel, 30)
        result.ended_how = "running"
        out = channel.run("storm-run /etc/harness/storm.plan", duration + STORM_GRACE_S)
        result.wall_s = time.monotonic() - started
        result.status = out.status
        result.output = out.output
        result.counts, result.failures = parse_counts(out.output)
        result.failures += missing_results(storm, names, result.counts, out.output)
        result.mode_chains = parse_mode_chains(out.output, names)
        result.ended_how = "completed"
        if "MMLOCK-HARNESS: storm-end" not in out.output:
            result.failures.append("storm-run: no storm-end marker")
        classes = classes_acquired(channel.run(f"{CLASSES_CMD} 2>/dev/null", 60).output)
        result.classes = classes
        chains_after = _chains(channel, 30)
        nested = nested_under(channel, {t.after for t in targets.values()}, 60) if classes else {}
        result.lock_coverage = lock_coverage(classes, chains_before, chains_after, targets, storm_targets,
                                             mode_targets, result.mode_chains, nested, kernel_release,
                                             chain_sampling_stopped(out.output, names, storm.stagger_s))
        if classes:
            result.lock_coverage.update(class_figures(classes))
    except ReportSeen:
        # Stop on report: the answer is on the console; lockdep is off after a
        # report anyway, so no lock figures are lost that would mean anything.
        result.ended_how = "stopped-on-report"
        result.wall_s = time.monotonic() - started
    except CommandTimeout as exc:
        result.ended_how = "timeout"
        result.timeout_reason = (exc.reason if isinstance(exc, GuestSilent)
                                 else f"the storm did not finish within {duration + STORM_GRACE_S}s")
        result.wall_s = time.monotonic() - started
        result.output = exc.partial
        result.counts, result.failures = parse_counts(exc.partial)
    except ChannelClosed:
        result.ended_how = "qemu-exited"
        result.wall_s = time.monotonic() - started
    return result
