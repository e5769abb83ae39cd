"""One run, stage after stage: plan -> build -> boot -> storm -> judge -> results.

`held(request)` is the run as a `with` block: the guest is the caller's between
the storm and the power-off (`make shell`, the pytest plugin, a yardstick's
fetches); `execute(request)` is the same run with nothing done in the block.
Each stage is a module of its own (plan, build_stage, boot, judge); this one
chains them and keeps the run's books: the run directory, the record, and a
verdict for every way a run ends.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import cache, results
from harness.boot import BOOT_TIMEOUT_S, INACTIVITY_S, READY_RE, BootFailed, Session, boot, machine_files, storm
from harness.build_stage import build, preempt_model
from harness.errors import HarnessError, InfraError
from harness.judge import judge
from harness.plan import (
    INJECTIONS,
    MODULE_INJECTIONS,
    Plan,
    RunRequest,
    check_options,
    guest_command_for,
    load_request,
    plan,
)
from harness.record import (
    Draft,
    Durations,
    HostFacts,
    InternalError,
    LockCoverage,
    QemuFacts,
    RunRecord,
    StormFacts,
)
from harness.signals import interrupt_name
from harness.terminal import say
from harness.verdict import Verdict

__all__ = ["BOOT_TIMEOUT_S", "INACTIVITY_S", "INJECTIONS", "MODULE_INJECTIONS", "READY_RE", "Held", "RunOutcome",
           "RunRequest", "check_options", "execute", "guest_command_for", "held", "load_request", "preempt_model"]

# A storm that ended so leaves no guest to hand over: it is dumped or read to its end.
NO_SESSION_AFTER = ("timeout", "stopped-on-report")


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    verdict: Verdict
    record: RunRecord = field(default_factory=RunRecord)   # what verdict.json holds


@dataclass
class Held:
    """A run in a `with` block: the booted guest while the block runs (None when there is
    none to hand over: it never booted, or the storm hung or crashed it) and, once the
    block is left, the run's outcome."""

    plan: Plan | None
    session: Session | None = None
    outcome: RunOutcome | None = None


STAGES = ("load", "build", "image", "boot", "storm", "parse", "verdict", "results")


def enter_stage(stage: str, draft: Draft, fault: str = "") -> None:
    """Note the stage a run has reached (an internal error names it), and raise
    there when the request's harness_fault (MMLOCK_FAULT) is raise:STAGE (reliability
    tests: a bug of ours at that stage must end as an infra error with everything kept)."""
    draft.set(stage=stage)
    if fault == f"raise:{stage}":
        raise RuntimeError(f"injected fault at stage {stage} (MMLOCK_FAULT=raise:{stage})")


def internal_error(exc: BaseException, stage: str) -> str:
    """The reason of an exception that is no verdict: its class, message, and the
    innermost frame of the harness it came through (else the innermost of all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}harness{os.sep}" in f.filename] or frames
    where = ""
    if ours:
        frame = ours[-1]
        name = frame.filename
        if f"{os.sep}harness{os.sep}" in name:
            name = "harness" + name.rsplit(f"{os.sep}harness", 1)[1]
        where = f" at {name}:{frame.lineno} in {frame.name}"
    message = str(exc)[:500]
    return f"internal error in stage {stage}: {type(exc).__name__}{': ' + message if message else ''}{where}"


def _safe_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:40] or "unknown"


def execute(request: RunRequest) -> RunOutcome:
    """The whole run. Config errors found before any work raise (no run dir);
    from then on every failure, HarnessErrors and bugs of ours alike, is
    recorded in the run dir: a bug is an infra-error, never a kernel verdict."""
    with held(request) as run:
        pass
    assert run.outcome is not None
    return run.outcome


def _new_record(run_dir: Path, planned: Plan) -> RunRecord:
    """What verdict.json holds before the first stage."""
    arch, storm_spec, request = planned.arch, planned.storm, planned.request
    return RunRecord(
        run_id=run_dir.name, arch=arch.name, accel=None, accel_reason="", channel="console",
        host=HostFacts(machine=platform.machine(), python=platform.python_version()),
        storm=StormFacts(name=storm_spec.name, duration_s=planned.duration, seed=request.seed, counts={},
                         left_out=dict(storm_spec.left_out)),
        inject=request.inject, lock_coverage=LockCoverage(), durations=Durations(),
        qemu=QemuFacts(binary=arch.qemu_binary, version=""), complete=False, stage="build")


@contextlib.contextmanager
def held(request: RunRequest) -> Iterator[Held]:
    """plan, build, boot, storm; the block; power off, judge, results. Whatever the block
    raises (Ctrl-C, SIGTERM, a bug) ends the run the way it would end a storm: QEMU
    stopped, the log flushed, the verdict written; it is not raised again."""
    with cache.rooted(request.cache_dir), _held(request) as run:
        yield run


@contextlib.contextmanager
def _held(request: RunRequest) -> Iterator[Held]:
    started = time.monotonic()
    try:
        enter_stage("load", Draft(RunRecord()), request.harness_fault)
        planned = plan(request)
    except HarnessError:
        raise
    except Exception as exc:   # a bug of ours before the run dir: still a run dir and a verdict
        yield Held(None, outcome=_failed_before_start(request, exc, started))
        return
    arch = planned.arch
    run_dir, draft = _open_books(planned)
    run = Held(planned)
    yielded = False

    def enter(stage: str) -> None:
        enter_stage(stage, draft, request.harness_fault)

    try:
        built = build(planned, run_dir, draft, enter)
        console_log = run_dir / "console.log"
        with machine_files(planned, built, run_dir) as (argv, setup):
            try:
                with boot(argv, run_dir, console_log, built.accel, draft, setup=setup, pc_re=arch.monitor_pc,
                          inactivity_s=request.inactivity_s, enter=enter) as session:
                    storm(session, planned)
                    run.session = session if session.storm_state not in NO_SESSION_AFTER else None
                    yielded = True
                    yield run
                    run.session = None
                assert session.ending is not None
                ending = session.ending
            except BootFailed as failed:
                ending = failed.ending
        verdict = judge(console_log, ending, built, arch, draft, enter)
        draft.set(complete=True)
    except HarnessError as exc:
        verdict = Verdict(exc.verdict, exc.exit_code, str(exc))
    except KeyboardInterrupt as exc:
        verdict = Verdict("infra-error", InfraError.exit_code, f"interrupted ({interrupt_name(exc)})")
        draft.set(interrupted=True)
    except Exception as exc:   # a bug of ours: never a kernel verdict (bisect skips it)
        verdict = _internal(exc, draft, run_dir)
    run.session = None
    draft.durations(total_s=round(time.monotonic() - started, 2))
    run.outcome = RunOutcome(run_dir, *_write_results(run_dir, arch.name, verdict, draft, request.harness_fault))
    if not yielded:
        yield run


def _open_books(planned: Plan) -> tuple[Path, Draft]:
    """The run's directory (results/latest pointing at it) and its draft record, said aloud."""
    request, arch = planned.request, planned.arch
    run_dir = results.new_run_dir(arch.name, request.label, Path(request.results_dir) if request.results_dir else None)
    results.point_latest(run_dir)
    say(f"run {run_dir.name}: arch={arch.name} profile={planned.profile.name} storm={planned.storm.name} "
        f"duration={planned.duration}s seed={request.seed}")
    for part, why in planned.storm.left_out:
        say(f"storm: {part} left out: {why}")
    return run_dir, Draft(_new_record(run_dir, planned))


def _internal(exc: Exception, draft: Draft, run_dir: Path) -> Verdict:
    """An exception of ours -> an infra-error verdict; its traceback beside the run's other files."""
    stage = draft.record.stage or "?"
    reason = internal_error(exc, stage)
    draft.set(internal_error=InternalError(type=type(exc).__name__, stage=stage, traceback="harness-error.txt"))
    try:
        (run_dir / "harness-error.txt").write_text(
            results.sanitize_block("".join(traceback.format_exception(exc))))
    except OSError:
        pass
    print(f"error: {reason} (traceback: {run_dir / 'harness-error.txt'})", file=sys.stderr, flush=True)
    return Verdict("infra-error", InfraError.exit_code, reason)


def _write_results(run_dir: Path, arch: str, verdict: Verdict, draft: Draft,
                   fault: str = "") -> tuple[Verdict, RunRecord]:
    """verdict.json and junit.xml from the run's record, every guest string through printable
    (results.safe); the record returned is what was written. A results disk that is full, or
    a bug in the writing, must not cost the verdict on stdout."""
    draft.set(verdict=verdict.verdict, exit_code=verdict.exit_code, reason=verdict.reason, reports=verdict.reports)
    record = draft.record
    try:
        if record.stopped_early and draft.header_at is not None:
            draft.set(stopped_early=dataclasses.replace(
                record.stopped_early, header_to_verdict_s=round(time.monotonic() - draft.header_at, 2)))
        enter_stage("results", draft, fault)
        record = RunRecord.from_json(results.safe(draft.record.to_json()))
        verdict = dataclasses.replace(verdict, reason=record.reason)
        results.write_run_files(run_dir, arch, verdict, record)
    except OSError as exc:  # a full results disk must not cost the verdict on stdout
        print(f"error: cannot write results to {run_dir}: {exc.strerror}", file=sys.stderr)
        if verdict.exit_code == 0:
            verdict = Verdict("infra-error", InfraError.exit_code, f"cannot write results: {exc.strerror}")
    except Exception as exc:   # a bug of ours in the writing: a minimal verdict.json still says so
        verdict = _internal(exc, draft, run_dir)
        whole = draft.record
        minimal = RunRecord(run_id=whole.run_id, arch=whole.arch, kernel=whole.kernel, durations=whole.durations,
                            stage=whole.stage, internal_error=whole.internal_error, complete=whole.complete,
                            verdict=verdict.verdict, exit_code=verdict.exit_code, reason=verdict.reason)
        try:
            record = RunRecord.from_json(results.safe(minimal.to_json()))
            results.write_verdict(run_dir, record)
        except Exception as again:   # nothing left to write with: say so on stderr
            print(f"error: cannot write {run_dir / 'verdict.json'}: {internal_error(again, 'results')}",
                  file=sys.stderr)
    return verdict, record


def _failed_before_start(request: RunRequest, exc: Exception, started: float) -> RunOutcome:
    run_dir = results.new_run_dir(_safe_label(request.arch), request.label,
                                  Path(request.results_dir) if request.results_dir else None)
    results.point_latest(run_dir)
    draft = Draft(RunRecord(run_id=run_dir.name, arch=request.arch, complete=False, stage="load",
                            durations=Durations(total_s=round(time.monotonic() - started, 2))))
    verdict = _internal(exc, draft, run_dir)
    return RunOutcome(run_dir, *_write_results(run_dir, request.arch, verdict, draft, request.harness_fault))
