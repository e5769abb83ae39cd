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
from harness.configs import FAULT_KINDS, LockTarget, Storm
from harness.configs import load_lock_targets as lock_targets
from harness.errors import InfraError
from harness.host import require_tool, run_logged
from harness.watch import ReportSeen

log = logging.getLogger(__name__)

_KTAP_RE = re.compile(r"^(not ok|ok) \d+ (\S+)(?: # (.*))?$")
_KV_RE = re.compile(r'([A-Za-z_][\w.]*)=("[^"]*"|\S+)')
_LOCK_STAT_RE = re.compile(r"^\s*(.+?)(?:-([RW]))?:\s+((?:[\d.]+\s+){11}[\d.]+)\s*$")
_CHAINS_RE = re.compile(r"dependency chains:\s+(\d+)")
# storm-run, with a stagger: the chain count before and after each stressor's start.
_STEP_RE = re.compile(r"^MMLOCK-HARNESS: chains step=(\S+) mode=(\S+) before=(\d*) after=(\d*)\s*$")
# ... and where it stopped sampling because one sample took too long.
_CHAINS_OFF_RE = re.compile(r"^MMLOCK-HARNESS: chains off step=(\S+) mode=(\S+) sample_ms=(\d+)\s*$", re.M)
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
            f"STAGGER_S={storm.stagger_s}\nFAULTS=\"{fault_env(storm, faults)}\"\n")


def parse_mode_chains(output: str, names: list[str]) -> list[dict[str, object]]:
    """storm-run's chain samples around each start -> [{step, mode, new_chains}]: the
    lockdep dependency chains that appeared in the stagger after that start (the new
    mode's paths, and what it newly meets of those already running). Step 0 is the
    test module, "end" everything after the last start."""
    steps: list[dict[str, object]] = []
    for line in output.splitlines():
        match = _STEP_RE.match(line.strip())
        if not match:
            continue
        step, mode, before, after = match.groups()
        new = int(after) - int(before) if before and after else None
        steps.append({"step": step, "mode": _step_name(step, mode, names), "new_chains": new})
    return steps


def _step_name(step: str, mode: str, names: list[str]) -> str:
    return names[int(step) - 1] if step.isdigit() and 0 < int(step) <= len(names) else mode


def chain_sampling_stopped(output: str, names: list[str], stagger_s: int) -> str:
    """Why storm-run stopped sampling chains between starts, or "" if it did not:
    the modes started after that have no new_chains of their own."""
    match = _CHAINS_OFF_RE.search(output)
    if not match:
        return ""
    step, mode, sample_ms = match.groups()
    return (f"after {_step_name(step, mode, names)}: one /proc/lockdep_stats read took {sample_ms} ms, "
            f"longer than the {stagger_s}s stagger; the later starts kept their schedule unsampled "
            f"(their chains are counted under 'all')")


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


# lock_stat prints a class name cut to 37 characters (fewer with a #version or
# /subclass), then "#N" when several keys share the name, "/N" for a subclass.
_CLASS_SUFFIX_RE = re.compile(r"(?:#\d+)?(?:/\d+)?$")
_CUT_AT = 33


def class_matches(cls: str, names: tuple[str, ...]) -> bool:
    """Is this lock_stat class one of these names, any #version or /subclass of it,
    or a name lock_stat cut short?"""
    base = _CLASS_SUFFIX_RE.sub("", cls)
    return any(base == name or (len(base) >= _CUT_AT and name.startswith(base)) for name in names)


def parse_lock_stat(text: str) -> dict[str, dict[str, int]]:
    """/proc/lock_stat -> {class name: {acquisitions, contentions}} (R and W summed)."""
    classes: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        match = _LOCK_STAT_RE.match(line)
        if not match or match.group(1).strip().startswith(("class name", "-", ".")):
            continue
        numbers = match.group(3).split()
        entry = classes.setdefault(match.group(1).strip(), {"acquisitions": 0, "contentions": 0})
        entry["contentions"] += int(float(numbers[1]))
        entry["acquisitions"] += int(float(numbers[7]))
    return classes


def release_at_least(release: str, version: str) -> bool:
    """Is kernel release "6.12.117" (or "6.12.0-rc3+") at least version "6.12"?"""
    def numbers(text: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", text.split("-")[0])[:3])
    have = numbers(release)
    return bool(have) and have >= numbers(version)


def lock_coverage(classes: dict[str, dict[str, int]], chains_before: int | None, chains_after: int | None,
                  targets: dict[str, LockTarget], storm_targets: tuple[str, ...] | None = None,
                  mode_targets: dict[str, tuple[str, ...]] | None = None,
                  mode_chains: list[dict[str, object]] | None = None,
                  nested: dict[str, set[str]] | None = None, kernel_release: str = "",
                  chains_stopped: str = "") -> dict[str, object]:
    """Acquisitions of each target class; never_taken among storm_targets (all targets when
    None). Per mode: its new chains (staggered storms) and which of its own targets the
    storm took; a mode whose targets were all untouched is listed in modes_without_targets.
    classes: {lock_stat class: {acquisitions, contentions}}; nested: {class: the classes
    lockdep saw taken directly under it}, for targets with `after`. A target gone from
    kernel_release on (locks.yaml `gone`) is listed in not_in_kernel, not as never taken."""
    per_target: dict[str, dict[str, object]] = {}
    acquired: dict[str, int] = {}
    gone = {t: f"not in {spec.gone_from} and later: {spec.why_gone}" for t, spec in targets.items()
            if spec.gone_from and kernel_release and release_at_least(kernel_release, spec.gone_from)}
    for target, spec in targets.items():
        mine = sorted(c for c in classes if class_matches(c, spec.names)
                      and (not spec.after or c in (nested or {}).get(spec.after, set())))
        acquired[target] = sum(classes[c]["acquisitions"] for c in mine)
        per_target[target] = {"acquisitions": acquired[target],
                              "contentions": sum(classes[c]["contentions"] for c in mine), "classes": mine}
    never = sorted(t for t, n in acquired.items() if n == 0 and t not in gone
                   and (storm_targets is None or t in storm_targets))
    coverage: dict[str, object] = {
        "available": bool(classes),
        "targets": per_target,
        # An empty lock_stat says nothing about the storm: lockdep switches
        # itself off at its first report (or any oops), and stops counting.
        "never_taken": never if classes else [],
        "classes_seen": len(classes),
    }
    if gone:
        coverage["not_in_kernel"] = gone
    if not classes:
        coverage["unavailable_reason"] = ("/proc/lock_stat had no lock class: lockdep is off "
                                          "(an earlier report turns it off) or LOCK_STAT is not set")
    if chains_after is not None:
        coverage["dependency_chains"] = chains_after
        if chains_before is not None:
            coverage["new_dependency_chains"] = chains_after - chains_before
    modes: dict[str, dict[str, object]] = {}
    for step in mode_chains or []:
        modes[str(step["mode"])] = {"new_chains": step["new_chains"]}
    without = []
    for mode, wanted in (mode_targets or {}).items():
        taken = [t for t in wanted if acquired.get(t, 0) > 0]
        modes.setdefault(mode, {}).update({"targets": list(wanted), "targets_taken": taken})
        if classes and not taken and any(t not in gone for t in wanted):
            without.append(mode)
    if modes:
        coverage["modes"] = modes
        coverage["modes_without_targets"] = without
    if chains_stopped:
        coverage["mode_chains_stopped"] = chains_stopped
    return coverage


# Every lock class the storm took, and the classes lockdep saw taken directly under
# the wanted ones: guest/init/lock-classes and lock-nested (busybox awk in the guest).
CLASSES_CMD = "lock-classes"
NESTED_CMD = "lock-nested"
_CLASS_LINE_RE = re.compile(r"^lockclass (\d+) (\d+) (.+?)(?:-[RW])?\s*$", re.M)
TOP_CLASSES = 20


def classes_acquired(output: str) -> dict[str, dict[str, int]]:
    """CLASSES_CMD's output -> {class: {acquisitions, contentions}}, R and W of a class summed."""
    classes: dict[str, dict[str, int]] = {}
    for acquisitions, contentions, name in _CLASS_LINE_RE.findall(output):
        entry = classes.setdefault(name, {"acquisitions": 0, "contentions": 0})
        entry["acquisitions"] += int(acquisitions)
        entry["contentions"] += int(contentions)
    return classes


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


def class_figures(classes: dict[str, dict[str, int]]) -> dict[str, object]:
    """How many classes the storm acquired, and the busiest of them."""
    taken = {name: v["acquisitions"] for name, v in classes.items() if v["acquisitions"]}
    top = sorted(taken.items(), key=lambda item: (-item[1], item[0]))[:TOP_CLASSES]
    return {"classes_acquired": len(taken),
            "top_classes": [{"class": name, "acquisitions": count} for name, count in top]}


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
        result.mode_chains = parse_mode_chains(out.output, names)
        result.ended_how = "completed"
        if "MMLOCK-HARNESS: storm-end" not in out.output:
            result.failures.append("storm-run: no storm-end marker")
        classes = classes_acquired(channel.run(f"{CLASSES_CMD} 2>/dev/null", 60).output)
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
