"""Reports + how the run ended -> a verdict. Pure: works on a saved log."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import EXIT_BOOT, EXIT_FAIL, EXIT_INFRA, EXIT_PASS, VERDICT_NAMES
from harness.report.model import Report


@dataclass(frozen=True)
class Ending:
    """How the guest and QEMU ended, as observed by the runner."""

    reached_ready: bool
    storm: str = "not-started"          # completed | timeout | qemu-exited | not-started | stopped-on-report
    qemu_exit: int | None = None        # exit status, None if killed by a signal or by us
    qemu_signal: int | None = None
    killed_by_harness: bool = False
    stressor_failures: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    verdict: str
    exit_code: int
    reason: str
    reports: tuple[Report, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "exit_code": self.exit_code, "reason": self.reason}


def _synthetic(title: str, type_: str, kind: str) -> Report:
    return Report(title=title, type=type_, kind=kind, start_line=0, end_line=0,
                  extra={"synthetic": True})


def _make(code: int, reason: str, reports: list[Report]) -> Verdict:
    return Verdict(VERDICT_NAMES[code], code, reason, tuple(reports))


def decide(reports: list[Report], ending: Ending) -> Verdict:
    """Kernel reports win over everything else: they are findings whatever the ending."""
    reports = list(reports)
    primary = [r for r in reports if r.primary] or reports
    if primary:
        return _make(EXIT_FAIL, f"kernel report: {primary[0].title}", reports)
    qemu_crashed = not ending.killed_by_harness and (
        ending.qemu_signal is not None or (ending.qemu_exit not in (None, 0)))
    if not ending.reached_ready:
        if qemu_crashed:
            return _make(EXIT_INFRA, f"QEMU died before the guest was ready "
                         f"(exit {ending.qemu_exit}, signal {ending.qemu_signal}) {ending.note}".strip(), [])
        return _make(EXIT_BOOT, f"the guest never reached the ready marker {ending.note}".strip(), [])
    if ending.storm == "timeout":
        hang = _synthetic("INFO: guest stopped responding during the storm", "HANG", "hang")
        why = ending.note or "the storm did not finish in time"
        return _make(EXIT_FAIL, f"the guest stopped responding: {why}", [hang])
    if ending.storm == "qemu-exited":
        if qemu_crashed:
            return _make(EXIT_INFRA, f"QEMU died during the storm (exit {ending.qemu_exit}, "
                         f"signal {ending.qemu_signal})", [])
        reset = _synthetic("guest reset during the storm without a report", "BUG", "reset")
        return _make(EXIT_FAIL, "the guest reset during the storm with no kernel report", [reset])
    if ending.stressor_failures:
        failed = [_synthetic(f"stressor failed: {f}", "STRESSOR", "stressor") for f in ending.stressor_failures]
        return _make(EXIT_FAIL, f"stressor failed: {ending.stressor_failures[0]}", failed)
    if ending.storm not in ("completed", "not-started"):
        return _make(EXIT_INFRA, f"unexpected storm state {ending.storm}", [])
    return _make(EXIT_PASS, "no kernel report" + (", storm completed" if ending.storm == "completed" else ""), [])
