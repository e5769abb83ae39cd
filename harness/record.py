"""One run's record: what verdict.json holds, as frozen dataclasses.

The runner fills a RunRecord stage by stage; verdict.json is its to_json()
(results.write_verdict, the one writer) and RunRecord.load/from_json is the
one reader: the CLI, matrix, bench, bisect, selftest, soak and the zoo read
fields, never keys. docs/results.md describes every field.

A section is a JSON object as a dataclass: a field that is None is a key
verdict.json does not have (ALWAYS lists the few written as null), and keys
this version does not know are kept in `extra`, so a verdict.json written by
another version reads back and writes out unchanged.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from harness.report.model import Report
from harness.verdict import Verdict

S = TypeVar("S", bound="Section")


@dataclass(frozen=True)
class Section:
    ALWAYS: ClassVar[tuple[str, ...]] = ()               # written even when None
    NESTED: ClassVar[dict[str, type[Section]]] = {}      # fields that are sections themselves
    extra: dict = field(default_factory=dict)            # keys this version does not know, kept

    @classmethod
    def from_json(cls: type[S], data: Any) -> S:
        if not isinstance(data, dict):
            data = {}
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        values = {}
        for name in names:
            if name in data:
                value = data[name]
                nested = cls.NESTED.get(name)
                if nested is not None:   # an empty object is a section not reached yet
                    value = nested.from_json(value) if value else None
                values[name] = value
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**values, extra=extra)

    def to_json(self) -> dict:
        out: dict = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name not in self.ALWAYS:
                continue
            out[f.name] = value.to_json() if isinstance(value, Section) else value
        out.update(self.extra)
        return out


@dataclass(frozen=True)
class HostFacts(Section):
    machine: str | None = None
    python: str | None = None


@dataclass(frozen=True)
class KernelFacts(Section):
    """The source (known before the build), the build's artifacts, the booted release."""

    ALWAYS = ("version", "source", "profile", "preempt", "source_identity", "commit")
    version: str | None = None
    source: str | None = None
    profile: str | None = None
    preempt: str | None = None
    source_identity: str | None = None
    commit: str | None = None
    config_sha256: str | None = None
    image_sha256: str | None = None
    compiler: str | None = None
    cached: bool | None = None
    build_key: str | None = None
    vmlinux: str | None = None
    release: str | None = None


@dataclass(frozen=True)
class StormFacts(Section):
    """The storm as planned; once it ran, how (StormResult.to_json's fields)."""

    name: str | None = None
    duration_s: int | None = None
    seed: int | None = None
    counts: dict = field(default_factory=dict)
    left_out: dict | None = None
    failures: list | None = None
    ended_how: str | None = None
    status: int | None = None
    wall_s: float | None = None
    timeout_reason: str | None = None
    first_report_s: float | None = None

    def to_json(self) -> dict:
        out = super().to_json()
        if self.ended_how is not None and self.status is None:   # the storm ran: its status, even null
            out["status"] = None
        return out


@dataclass(frozen=True)
class LockCoverage(Section):
    """storm.lock_coverage's dict: per target and per mode maps stay maps."""

    available: bool | None = None
    targets: dict | None = None
    never_taken: list | None = None
    classes_seen: int | None = None
    not_in_kernel: dict | None = None
    unavailable_reason: str | None = None
    dependency_chains: int | None = None
    new_dependency_chains: int | None = None
    modes: dict | None = None
    modes_without_targets: list | None = None
    mode_chains_stopped: str | None = None
    classes_acquired: int | None = None
    top_classes: list | None = None


@dataclass(frozen=True)
class Durations(Section):
    build_s: float = 0.0
    boot_s: float = 0.0
    storm_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class QemuFacts(Section):
    binary: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ImageFacts(Section):
    initramfs_sha256: str | None = None
    cached: bool | None = None


@dataclass(frozen=True)
class SshFallback(Section):
    reason: str | None = None
    at_s: float | None = None
    recovered: str | None = None
    rerun: str | None = None


@dataclass(frozen=True)
class SshFacts(Section):
    NESTED: ClassVar[dict[str, type[Section]]] = {"fallback": SshFallback}
    enabled: bool | None = None
    port: int | None = None
    up_s: float | None = None
    reason: str | None = None
    error: str | None = None
    guest_log: str | None = None
    fault: str | None = None
    fault_at_s: float | None = None
    fallback: SshFallback | None = None


@dataclass(frozen=True)
class StoppedEarly(Section):
    title: str | None = None
    why: str | None = None
    header_after_s: float | None = None
    stopped_after_s: float | None = None
    header_to_verdict_s: float | None = None


@dataclass(frozen=True)
class GuestDump(Section):
    done: list | None = None
    wall_s: float | None = None
    pcs: list | None = None
    where: list | None = None
    where_error: str | None = None


@dataclass(frozen=True)
class Symbolized(Section):
    file: str | None = None
    frames: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class InternalError(Section):
    type: str | None = None
    stage: str | None = None
    traceback: str | None = None


def report_from_json(data: dict) -> Report:
    """A report of verdict.json; what it lacks of the required fields is empty."""
    names = {f.name for f in dataclasses.fields(Report)}
    values: dict[str, Any] = {"title": "", "type": "", "kind": "", "start_line": 0, "end_line": 0}
    values.update({k: tuple(v) if k in ("frames", "alt_titles") else v for k, v in data.items() if k in names})
    unknown = {k: v for k, v in data.items() if k not in names}
    if unknown:
        values["extra"] = {**values.get("extra", {}), **unknown}
    return Report(**values)


# Written (null or not) in every record of a run that got past loading its options.
_SETUP = ("accel", "accel_reason", "channel", "inject", "lock_coverage", "qemu")


@dataclass(frozen=True)
class RunRecord(Section):
    """verdict.json. `host` is set once the run is past loading its options: from
    then on the setup fields (_SETUP) are written, null or not."""

    NESTED: ClassVar[dict[str, type[Section]]] = {
        "host": HostFacts, "kernel": KernelFacts, "storm": StormFacts, "lock_coverage": LockCoverage,
        "durations": Durations, "qemu": QemuFacts, "image": ImageFacts, "ssh": SshFacts,
        "stopped_early": StoppedEarly, "dump": GuestDump, "symbolized": Symbolized, "internal_error": InternalError}
    run_id: str = ""
    verdict: str | None = None
    exit_code: int | None = None
    reason: str = ""
    arch: str = ""
    accel: str | None = None
    accel_reason: str | None = None
    channel: str | None = None
    host: HostFacts | None = None
    kernel: KernelFacts | None = None
    storm: StormFacts | None = None
    inject: str | None = None
    reports: tuple[Report, ...] = ()
    lock_coverage: LockCoverage | None = None
    durations: Durations = field(default_factory=Durations)
    qemu: QemuFacts | None = None
    complete: bool = False
    stage: str | None = None
    image: ImageFacts | None = None
    inactivity_s: float | None = None
    ssh: SshFacts | None = None
    stopped_early: StoppedEarly | None = None
    faults: dict | None = None
    dump: GuestDump | None = None
    symbolized: Symbolized | None = None
    interrupted: bool | None = None
    internal_error: InternalError | None = None

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        record = super().from_json(data)
        reports = data.get("reports") if isinstance(data, dict) else None
        return dataclasses.replace(record, reports=tuple(report_from_json(r) for r in reports or ()))

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """A run directory's verdict.json (or the file itself)."""
        path = path / "verdict.json" if path.is_dir() else path
        return cls.from_json(json.loads(path.read_text()))

    def to_json(self) -> dict:
        out = super().to_json()
        out["reports"] = [r.to_json() for r in self.reports]
        if self.host is not None:
            for name in _SETUP:
                value = getattr(self, name)
                out[name] = value.to_json() if isinstance(value, Section) else ({} if value is None and
                                                                                 name == "lock_coverage" else value)
        if self.kernel is None and self.host is not None:
            out["kernel"] = {}
        return {name: out[name] for name in _ORDER if name in out} | {k: v for k, v in out.items() if k not in _ORDER}

    # -- reading ---------------------------------------------------------------
    def as_verdict(self) -> Verdict:
        return Verdict(self.verdict or "infra-error", self.exit_code if self.exit_code is not None else 3,
                       self.reason, self.reports)

    def titles(self, primary_only: bool = False) -> list[str]:
        """Report titles, in the order found; with primary_only those of primary reports."""
        return [r.title for r in self.reports if r.primary or not primary_only]

    @property
    def storm_facts(self) -> StormFacts:
        return self.storm or StormFacts()

    @property
    def coverage(self) -> LockCoverage:
        return self.lock_coverage or LockCoverage()


_ORDER = [f.name for f in dataclasses.fields(RunRecord) if f.name != "extra"]


class Draft:
    """A run's record while it runs: each stage adds its facts to `record` (frozen; each
    change a new one), and the last one is what verdict.json holds. A stage that fails
    halfway leaves what it found before."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.header_at: float | None = None   # when the report a storm stopped on began (monotonic)

    def set(self, **fields: Any) -> None:
        self.record = dataclasses.replace(self.record, **fields)

    def kernel(self, **fields: Any) -> None:
        self.set(kernel=dataclasses.replace(self.record.kernel or KernelFacts(), **fields))

    def storm(self, **fields: Any) -> None:
        self.set(storm=dataclasses.replace(self.record.storm_facts, **fields))

    def durations(self, **fields: Any) -> None:
        self.set(durations=dataclasses.replace(self.record.durations, **fields))

    def dump(self, **fields: Any) -> None:
        self.set(dump=dataclasses.replace(self.record.dump or GuestDump(), **fields))
