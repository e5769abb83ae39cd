"""Debian's stress-ng as a yardstick, run the way a person runs it, with proof it worked.

A comparison against stress-ng means something only if stress-ng did its work:
its swap stressor makes swap files in --temp-path and swaps on and off them,
which needs a disk filesystem (configs/storms/stress-ng.yaml gives it ext4 on
its own disk). After the storm the run reads stress-ng's bogo ops and the
guest's /proc/vmstat: a yardstick whose swap stressor did no swapon/swapoff,
or whose guest wrote no page to swap, is said to be so, never turned into a ratio.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field, replace

from harness.host import ensure_packages
from harness.record import RunRecord
from harness.run import RunRequest, held

STRESS_NG_YAML = "/tmp/stress-ng.yaml"   # where the stress-ng storms tell it to write
STORMS = ("stress-ng", "stress-ng-vm")
# What the guest swapped, read after the storm (cumulative since boot; the
# yardstick storms swapon nothing of their own, so it is all stress-ng's).
VMSTAT_KEYS = ("pswpout", "pswpin")


def parse_stress_ng_yaml(text: str) -> dict[str, int]:
    """stress-ng --yaml output -> {stressor: bogo-ops} (a tiny reader of its fixed layout)."""
    ops: dict[str, int] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^\s*-\s*stressor:\s*(\S+)", line)
        if match:
            current = match.group(1)
            continue
        match = re.match(r"^\s*bogo-ops:\s*(\d+)", line)
        if match and current:
            ops[current] = int(match.group(1))
            current = None
    return ops


def parse_vmstat(text: str) -> dict[str, int]:
    """/proc/vmstat lines -> the VMSTAT_KEYS counters found."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in VMSTAT_KEYS and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


@dataclass(frozen=True)
class YardstickRun:
    """One stress-ng storm: the run's record, stress-ng's bogo ops per
    stressor, and the guest's swap counters after it."""

    record: RunRecord
    bogo: dict[str, int] = field(default_factory=dict)
    vmstat: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.record.storm_facts.ended_how == "completed"

    def swap_problem(self) -> str:
        """Why this run's swap stressor cannot count as having swapped, or "" when it did."""
        if not self.bogo:
            return "stress-ng wrote no bogo ops (no /tmp/stress-ng.yaml from the guest)"
        if self.bogo.get("swap", 0) <= 0:
            return f"stress-ng's swap stressor did no swapon/swapoff (bogo ops {self.bogo.get('swap', 'missing')})"
        if self.vmstat.get("pswpout", 0) <= 0:
            return "the guest wrote no page to swap during stress-ng's storm (/proc/vmstat pswpout 0)"
        return ""

    def evidence(self) -> dict[str, object]:
        """What bench.json and the zoo's summary say about the yardstick's work."""
        problem = self.swap_problem()
        return {"swap_bogo_ops": self.bogo.get("swap"), **self.vmstat, "swapped": not problem,
                **({"swap_problem": problem} if problem else {})}


def run(request: RunRequest, storm: str = "stress-ng") -> YardstickRun:
    """A stress-ng storm on the request's kernel (arch, source, profile, accel, duration
    and results directory as given); stress-ng copied into the guest image."""
    if storm not in STORMS:
        raise ValueError(f"not a stress-ng storm: {storm}")
    ensure_packages(["stress-ng"])
    binary = shutil.which("stress-ng") or "/usr/bin/stress-ng"
    fetched: dict[str, str] = {}
    with held(replace(request, storm=storm, inject=None, storm_enabled=True,
                      guest_binaries=(*request.guest_binaries, binary))) as run:
        if run.session is not None:
            fetched["yaml"] = run.session.run(f"cat {STRESS_NG_YAML}", 60).output
            fetched["vmstat"] = run.session.run("cat /proc/vmstat", 60).output
    assert run.outcome is not None
    return YardstickRun(run.outcome.record, parse_stress_ng_yaml(fetched.get("yaml", "")),
                        parse_vmstat(fetched.get("vmstat", "")))
