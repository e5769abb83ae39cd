"""Lock figures of a storm, pure: /proc/lock_stat's classes matched to the lock targets
(configs/locks.yaml), the dependency chains each stressor start brought, the busiest
classes. harness/storm.py gathers the text in the guest; this reads it."""
from __future__ import annotations

import re

from harness.configs import LockTarget

_LOCK_STAT_RE = re.compile(r"^\s*(.+?)(?:-([RW]))?:\s+((?:[\d.]+\s+){11}[\d.]+)\s*$")
# storm-run, with a stagger: the chain count before and after each stressor's start.
_STEP_RE = re.compile(r"^MMLOCK-HARNESS: chains step=(\S+) mode=(\S+) before=(\d*) after=(\d*)\s*$")
# ... and where it stopped sampling because one sample took too long.
_CHAINS_OFF_RE = re.compile(r"^MMLOCK-HARNESS: chains off step=(\S+) mode=(\S+) sample_ms=(\d+)\s*$", re.M)
_CLASS_LINE_RE = re.compile(r"^lockclass (\d+) (\d+) (.+?)(?:-[RW])?\s*$", re.M)
TOP_CLASSES = 20


def classes_acquired(output: str) -> dict[str, dict[str, int]]:
    """guest/init/lock-classes's output -> {class: {acquisitions, contentions}}, R and W of a class summed."""
    classes: dict[str, dict[str, int]] = {}
    for acquisitions, contentions, name in _CLASS_LINE_RE.findall(output):
        entry = classes.setdefault(name, {"acquisitions": 0, "contentions": 0})
        entry["acquisitions"] += int(acquisitions)
        entry["contentions"] += int(contentions)
    return classes


def lock_classes_text(classes: dict[str, dict[str, int]]) -> str:
    """lock-classes.txt: every class the storm took, busiest first, one a line:
    acquisitions, contentions and the class name, tab-separated."""
    rows = sorted(classes.items(), key=lambda item: (-item[1]["acquisitions"], item[0]))
    return "".join(f"{v['acquisitions']}\t{v['contentions']}\t{name}\n" for name, v in rows)


def class_figures(classes: dict[str, dict[str, int]]) -> dict[str, object]:
    """How many classes the storm acquired, and the busiest of them."""
    taken = {name: v["acquisitions"] for name, v in classes.items() if v["acquisitions"]}
    top = sorted(taken.items(), key=lambda item: (-item[1], item[0]))[:TOP_CLASSES]
    return {"classes_acquired": len(taken),
            "top_classes": [{"class": name, "acquisitions": count} for name, count in top]}


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
