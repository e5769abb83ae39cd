"""`python -m harness bisect`: the real test (one harness run at whatever the
tree has checked out) and the command around a Bisection."""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from harness.bisect import Bisection
from harness.bisect_git import Repo
from harness.bisect_policy import Policy, Trial
from harness.errors import ConfigError, HarnessError


def trial_from_outcome(outcome) -> Trial:
    """A run.RunOutcome -> Trial; Ctrl-C inside the run is passed on, not turned into a skip."""
    record = outcome.record
    if record.interrupted:
        raise KeyboardInterrupt("interrupted during a run")
    primary = [r for r in record.reports if r.primary]
    ordered = primary + [r for r in record.reports if r not in primary]
    build_s, total_s = float(record.durations.build_s or 0.0), float(record.durations.total_s or 0.0)
    return Trial(verdict=outcome.verdict.verdict, titles=tuple(r.title for r in ordered),
                 alt_titles=tuple(a for r in record.reports for a in r.alt_titles),
                 build_s=round(build_s, 1), run_s=round(max(0.0, total_s - build_s), 1),
                 run_id=record.run_id or outcome.run_dir.name, reason=outcome.verdict.reason)


def harness_trial(template, tree: Path, log: TextIO) -> Callable[[str], Trial]:
    """rev -> Trial: one run.execute on the tree as checked out; its chatter goes to `log`
    (through printable, as a terminal would get it). A bug of ours is an infra-error
    trial, which judge() retries once and then skips (git's 125): never bad."""
    from harness.run import execute, internal_error
    from harness.terminal import safe

    log = safe(log)

    def trial(rev: str) -> Trial:
        request = replace(template, kernel_src=str(tree), label=f"bisect-{rev[:12]}")
        print(f"===== {time.strftime('%H:%M:%S')} run at {rev}", file=log, flush=True)
        try:
            with _output_to(log):
                outcome = execute(request)
            result = trial_from_outcome(outcome)
        except HarnessError:
            raise
        except Exception as exc:
            reason = internal_error(exc, "bisect trial")
            print(f"===== infra-error {reason}", file=log, flush=True)
            return Trial(verdict="infra-error", reason=reason)
        print(f"===== {result.verdict} {result.primary or ''} ({outcome.run_dir})", file=log, flush=True)
        return result

    return trial


@contextlib.contextmanager
def _output_to(log: TextIO):
    """A run's stage lines and log records into `log`, so stderr keeps one line per step."""
    if log is sys.stderr:
        yield
        return
    moved = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stderr, sys.__stderr__):
            moved.append((handler, handler.setStream(log)))
    try:
        with contextlib.redirect_stderr(log):
            yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def run_bisect_command(template, good: str, bad: str, policy: Policy, verbose: bool = False) -> int:
    """What `python -m harness bisect` does; returns the exit code (errors raise HarnessError)."""
    from harness.results import results_root
    from harness.run import load_request

    if not template.kernel_src:
        raise ConfigError("bisect needs KERNEL_SRC=<a kernel git tree>")
    tree = Path(template.kernel_src).expanduser().resolve()
    repo = Repo(tree)
    policy.check()
    repo.check_bisectable(good, bad)          # git problems first: clearer than "not a kernel tree"
    arch = load_request(replace(template, kernel_src=str(tree)))[0]   # arch, storm, profile, duration, tree
    out_dir = results_root() / "bisect"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "bisect.log", "w", buffering=1) as log:
        trial_fn = harness_trial(template, tree, sys.stderr if verbose else log)
        bisection = Bisection(tree, good, bad, trial_fn, policy, out_dir, kernel_arch=arch.kernel_arch)
        result = bisection.run()
    print(f"results: {out_dir / 'bisect.json'} (runs: {out_dir / 'bisect.log'})")
    for line in result.last_lines():
        print(line)
    return result.exit_code
