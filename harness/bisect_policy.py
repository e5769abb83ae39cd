"""Bisect policy: what one revision's runs say (good, bad or skip) and how
many runs a step needs. Pure: no git, no runs; `judge` takes the run as a callable.

  * Each step runs the storm up to n times: n fixed (--runs) or adaptive,
    the smallest n with (1-p)^n < miss_chance, capped at max_runs.
  * bad: the target title seen k times (default once); good: every run clean;
    skip (git's 125): build error, boot failure, infra error, too few sightings,
    or a different report (unless --other-report=bad).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from harness.bisect_git import BAD, GOOD, SKIP
from harness.errors import ConfigError

__all__ = ["BAD", "GOOD", "SKIP"]

# run verdicts that say nothing about the bug: the step is skipped
ERROR_VERDICTS = ("build-error", "boot-failure", "infra-error", "config-error")
OTHER_REPORT_POLICIES = ("skip", "bad")


@dataclass(frozen=True)
class Trial:
    """One storm at one revision, as bisect sees it."""

    verdict: str                      # the run's: pass, fail, build-error, boot-failure, ...
    titles: tuple[str, ...] = ()      # every report title of the run (primary first)
    alt_titles: tuple[str, ...] = ()
    build_s: float = 0.0
    run_s: float = 0.0
    run_id: str = ""
    reason: str = ""

    @property
    def primary(self) -> str | None:
        return self.titles[0] if self.titles else None


@dataclass
class StepResult:
    """The verdict on one revision after one or more runs."""

    rev: str
    verdict: str                      # good | bad | skip
    runs: int = 0
    titles: list[str] = field(default_factory=list)
    build_s: float = 0.0
    run_s: float = 0.0
    hits: int = 0                     # runs in which the target title showed up
    note: str = ""
    role: str = "step"                # "bad-check", "good-check" or "step"
    run_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Policy:
    runs: int | None = None           # fixed runs per step; None: adaptive
    bad_runs: int = 3                 # adaptive: runs at BAD to estimate the rate
    max_runs: int = 8                 # adaptive: cap on runs per step
    hits: int = 1                     # k: sightings of the target that make a step bad
    miss_chance: float = 0.05         # adaptive: (1-p)^n must be below this
    other_report: str = "skip"        # skip | bad
    title: str | None = None          # target title; None: BAD's own
    verify_good: bool = False         # also run GOOD first (one more step)
    revert_check: bool = True         # with a culprit: revert it on BAD and run that n times

    def check(self) -> None:
        if self.runs is not None and self.runs < 1:
            raise ConfigError(f"RUNS must be at least 1 (or 'auto'), got {self.runs}")
        if self.hits < 1 or (self.runs is not None and self.hits > self.runs):
            raise ConfigError(f"--hits must be between 1 and RUNS, got {self.hits}")
        if self.bad_runs < 1 or self.max_runs < 1:
            raise ConfigError("--bad-runs and --max-runs must be at least 1")
        if self.other_report not in OTHER_REPORT_POLICIES:
            raise ConfigError(f"--other-report={self.other_report}: valid: {', '.join(OTHER_REPORT_POLICIES)}")
        if not 0 < self.miss_chance < 1:
            raise ConfigError("--miss-chance must be between 0 and 1")


def runs_for_rate(p: float, miss_chance: float = 0.05, cap: int = 8, hits: int = 1) -> int:
    """Smallest n with (1-p)^n < miss_chance, at least `hits`, at most `cap`."""
    if p >= 1.0:
        return max(1, hits)
    if p <= 0.0:
        return cap
    n = math.ceil(math.log(miss_chance) / math.log(1.0 - p))
    if (1.0 - p) ** n >= miss_chance:     # exactly on the boundary: one more
        n += 1
    return max(hits, min(cap, max(1, n)))


def matches(trial: Trial, title: str) -> bool:
    return title in trial.titles or title in trial.alt_titles


def judge(rev: str, trial_fn: Callable[[str], Trial], title: str, runs: int, policy: Policy,
          role: str = "step") -> StepResult:
    """Up to `runs` storms at rev (the tree is already there) -> good, bad or skip."""
    step = StepResult(rev=rev, verdict=SKIP, role=role)
    others: list[str] = []
    errors: list[str] = []
    infra_retried = False
    while step.runs < runs:
        trial = trial_fn(rev)
        step.runs += 1
        step.build_s += trial.build_s
        step.run_s += trial.run_s
        if trial.run_id:
            step.run_ids.append(trial.run_id)
        if trial.primary:
            step.titles.append(trial.primary)
        if trial.verdict in ERROR_VERDICTS:
            if trial.verdict == "infra-error" and not infra_retried:
                infra_retried = True          # one more try for a flaky host
                step.runs -= 1
                continue
            errors.append(f"{trial.verdict}: {trial.reason}".strip())
            break
        if matches(trial, title):
            step.hits += 1
            if step.hits >= policy.hits:
                break
        elif trial.verdict != "pass":
            others.append(trial.primary or trial.reason or trial.verdict)
    step.build_s, step.run_s = round(step.build_s, 1), round(step.run_s, 1)
    if step.hits >= policy.hits:
        step.verdict = BAD
    elif errors:
        step.note = errors[0]
    elif others:
        step.verdict = BAD if policy.other_report == "bad" else SKIP
        step.note = f"other report: {others[0]}"
    elif step.hits:
        step.note = f"target seen {step.hits} time(s), fewer than {policy.hits}"
    else:
        step.verdict = GOOD
    return step


def step_confidence(p: float, runs: int) -> float:
    """The chance that `runs` clean runs of a bad revision would have shown the bug at least once."""
    return 1.0 - (1.0 - p) ** runs
