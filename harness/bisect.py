"""Kernel bisection with the harness as the test: a composition of run.execute.

Policy (git plumbing is in bisect_git.py):
  * BAD is run first: its report gives the target title (unless --title) and,
    over a few runs, the rate p at which the target reproduces.
  * Each step runs the storm up to n times: n fixed (--runs) or adaptive,
    the smallest n with (1-p)^n < miss_chance, capped at max_runs.
  * bad: the target title seen k times (default once); good: every run clean;
    skip (git's 125): build error, boot failure, infra error, too few sightings,
    or a different report (unless --other-report=bad).
  * confidence: the product over good steps of 1-(1-p)^runs, the chance that
    none of them was a bad revision whose bug just did not show.

Exit: 0 a culprit named, 1 none (BAD did not reproduce, only skipped commits
left), 2 bad input, 3 infra.
"""
from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TextIO

from harness import bisect_git
from harness.bisect_git import BAD, GOOD, SKIP, Repo
from harness.errors import ConfigError, InfraError

# run verdicts that say nothing about the bug: the step is skipped
ERROR_VERDICTS = ("build-error", "boot-failure", "infra-error", "config-error")
OTHER_REPORT_POLICIES = ("skip", "bad")
INFRA_SKIPS_BEFORE_ABORT = 2      # consecutive steps that only saw infra errors


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


@dataclass
class BisectResult:
    culprit: str | None = None
    culprit_subject: str | None = None
    title: str | None = None
    confidence: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    status: str = "running"          # running | found | inconclusive | interrupted | error
    reason: str = ""
    candidates: list[str] = field(default_factory=list)
    rate: float | None = None        # target rate at BAD
    runs_per_step: int | None = None
    good: str = ""
    bad: str = ""
    tree: str = ""
    commits: int = 0                 # candidates in good..bad
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return {"culprit": self.culprit, "culprit_subject": self.culprit_subject, "title": self.title,
                "confidence": round(self.confidence, 4),
                "steps": [{"rev": s.rev, "verdict": s.verdict, "runs": s.runs, "titles": s.titles,
                           "build_s": s.build_s, "run_s": s.run_s, "hits": s.hits, "role": s.role,
                           "note": s.note, "run_ids": s.run_ids} for s in self.steps],
                "status": self.status, "reason": self.reason, "candidates": self.candidates,
                "rate": self.rate, "runs_per_step": self.runs_per_step, "good": self.good,
                "bad": self.bad, "tree": self.tree, "commits": self.commits, "wall_s": round(self.wall_s, 1)}

    @property
    def exit_code(self) -> int:
        return 0 if self.culprit else 1


def bisect_revisions(repo: Repo, good: str, bad: str, step: Callable[[str], StepResult],
                     on_step: Callable[[StepResult, str], None] | None = None) -> tuple[list[StepResult],
                                                                                        bisect_git.DriveResult]:
    """The driver: git bisect between good and bad with step(rev) as the test.

    The caller holds `bisect_git.preserved(repo)` around this.
    """
    results: list[StepResult] = []
    progress = {"line": ""}

    def test(rev: str) -> str:
        if repo.head() != rev:
            raise bisect_git.GitError(f"expected {rev[:12]} checked out, found {repo.head()[:12]}")
        result = step(rev)
        results.append(result)
        if on_step:
            on_step(result, progress["line"])
        return result.verdict

    drive = bisect_git.drive(repo, good, bad, test, on_progress=lambda line: progress.update(line=line))
    return results, drive


class Bisection:
    """One bisection: checks, BAD first, then git bisect; bisect.json after every step."""

    def __init__(self, tree: Path | str, good: str, bad: str, trial_fn: Callable[[str], Trial],
                 policy: Policy = Policy(), out_dir: Path | None = None, echo: TextIO | None = None) -> None:
        self.repo = Repo(tree)
        self.good_rev, self.bad_rev = good, bad
        self.trial_fn = trial_fn
        self.policy = policy
        self.out_dir = out_dir
        self.echo = echo if echo is not None else sys.stderr
        self.result = BisectResult(tree=str(self.repo.path))
        self.started = time.monotonic()

    # ----- output ----------------------------------------------------------------------------
    def say(self, line: str) -> None:
        print(line, file=self.echo, flush=True)

    def save(self) -> None:
        self.result.wall_s = time.monotonic() - self.started
        if self.out_dir is not None:
            from harness.results import write_json

            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.out_dir / "bisect.json", self.result.to_json())

    def record(self, step: StepResult, progress: str = "") -> None:
        self.result.steps.append(step)
        n = len(self.result.steps)
        what = {"bad-check": " (BAD)", "good-check": " (GOOD)"}.get(step.role, "")
        seen = f"target {step.hits}/{step.runs} run{'s' if step.runs != 1 else ''}"
        note = f"; {step.note}" if step.note else ""
        left = f" [{progress}]" if progress else ""
        subject = self.repo.subject(step.rev)
        self.say(f"bisect: step {n}{what} {step.rev[:12]} {step.verdict}: {seen}{note} "
                 f"(build {step.build_s:.0f}s, run {step.run_s:.0f}s){left} {subject[:60]!r}")
        self.save()

    # ----- the bisection ---------------------------------------------------------------------
    def run(self) -> BisectResult:
        self.policy.check()
        self.repo.check_is_repo()
        with bisect_git.exclusive(self.repo):
            return self._run_locked()

    def _run_locked(self) -> BisectResult:
        good, bad = self.repo.check_bisectable(self.good_rev, self.bad_rev)
        res = self.result
        res.good, res.bad = good, bad
        res.commits = self.repo.count_between(good, bad)
        self.say(f"bisect: {res.commits} commit(s) in {good[:12]}..{bad[:12]} of {self.repo.path}")
        self.save()
        try:
            with bisect_git.preserved(self.repo):
                self._run(good, bad)
        except KeyboardInterrupt:
            res.status, res.reason = "interrupted", "interrupted by the user"
            self.save()
            raise
        except Exception as exc:
            res.status, res.reason = "error", str(exc)
            self.save()
            raise
        self.save()
        return res

    def _run(self, good: str, bad: str) -> None:
        res, policy = self.result, self.policy
        # 1. BAD: does it reproduce, with which title, how often?
        self.repo.checkout(bad)
        bad_runs = policy.runs if policy.runs is not None else policy.bad_runs
        trials = [self._trial_at_bad(bad) for _ in range(bad_runs)]
        title = policy.title or self._target_title(trials)
        hits = sum(1 for t in trials if title and matches(t, title))
        check = self._as_step(bad, trials, title, hits)
        self.record(check)
        if not title or hits == 0:
            seen = sorted({t.primary for t in trials if t.primary})
            res.status = "inconclusive"
            res.reason = (f"BAD {bad[:12]} did not reproduce "
                          + (f"'{title}'" if title else "any report") + f" in {len(trials)} run(s)"
                          + (f"; reports seen: {'; '.join(seen)}" if seen else ""))
            self.say(f"bisect: {res.reason}")
            return
        res.title = title
        p = hits / len(trials)
        res.rate = round(p, 3)
        n = policy.runs if policy.runs is not None else runs_for_rate(p, policy.miss_chance, policy.max_runs,
                                                                       policy.hits)
        res.runs_per_step = n
        self.say(f"bisect: target '{title}' reproduced {hits}/{len(trials)} at BAD (p={p:.2f}); "
                 f"{n} run(s) per step" + ("" if policy.runs else " (adaptive)"))
        if policy.hits > n:
            raise ConfigError(f"--hits={policy.hits} is more than the {n} run(s) per step")
        # 2. optionally GOOD: a GOOD that reproduces makes the whole bisection meaningless
        if policy.verify_good:
            self.repo.checkout(good)
            step = judge(good, self.trial_fn, title, n, policy, role="good-check")
            self.record(step)
            if step.verdict != GOOD:
                res.status = "inconclusive"
                res.reason = f"GOOD {good[:12]} is not clean: {step.verdict} ({step.note or step.titles})"
                self.say(f"bisect: {res.reason}")
                return
        # 3. git bisect
        infra_streak = [0]

        def step_fn(rev: str) -> StepResult:
            step = judge(rev, self.trial_fn, title, n, policy)
            infra_streak[0] = infra_streak[0] + 1 if step.note.startswith("infra-error") else 0
            if step.note.startswith("other report"):
                self.say(f"bisect: {rev[:12]}: a different report ({step.note[len('other report: '):]}) "
                         f"-> {step.verdict} (--other-report={policy.other_report})")
            return step

        def on_step(step: StepResult, progress: str) -> None:
            self.record(step, progress)
            if infra_streak[0] >= INFRA_SKIPS_BEFORE_ABORT:
                raise InfraError(f"{infra_streak[0]} steps in a row hit infrastructure errors; last: {step.note}")

        _, drive = bisect_revisions(self.repo, good, bad, step_fn, on_step)
        res.candidates = drive.candidates
        if drive.culprit:
            res.culprit = drive.culprit
            res.culprit_subject = self.repo.subject(drive.culprit)
            res.confidence = self._confidence(p)
            res.status = "found"
            self.say(f"bisect: culprit {drive.culprit[:12]} {res.culprit_subject!r} "
                     f"(confidence {res.confidence:.2f}, {len(res.steps)} steps)")
        else:
            res.status = "inconclusive"
            res.reason = (f"only skipped commits left; the first bad commit is one of "
                          f"{', '.join(c[:12] for c in drive.candidates)}")
            self.say(f"bisect: {res.reason}")

    def _trial_at_bad(self, bad: str) -> Trial:
        trial = self.trial_fn(bad)
        if trial.verdict == "infra-error":
            trial = self.trial_fn(bad)
            if trial.verdict == "infra-error":
                raise InfraError(f"BAD {bad[:12]}: {trial.reason}")
        return trial

    def _as_step(self, rev: str, trials: list[Trial], title: str | None, hits: int) -> StepResult:
        step = StepResult(rev=rev, verdict=BAD if hits else SKIP, runs=len(trials), hits=hits, role="bad-check",
                          titles=[t.primary for t in trials if t.primary],
                          build_s=round(sum(t.build_s for t in trials), 1),
                          run_s=round(sum(t.run_s for t in trials), 1),
                          run_ids=[t.run_id for t in trials if t.run_id])
        errors = [f"{t.verdict}: {t.reason}" for t in trials if t.verdict in ERROR_VERDICTS]
        if errors:
            step.note = errors[0]
        return step

    @staticmethod
    def _target_title(trials: list[Trial]) -> str | None:
        """The most frequent primary title among BAD's runs (the first seen on a tie)."""
        titles = [t.primary for t in trials if t.verdict == "fail" and t.primary]
        if not titles:
            return None
        counts = Counter(titles)
        best = max(counts.values())
        return next(t for t in titles if counts[t] == best)

    def _confidence(self, p: float) -> float:
        confidence = 1.0
        for step in self.result.steps:
            if step.role == "step" and step.verdict == GOOD:
                confidence *= step_confidence(p, step.runs)
        return confidence


# ----- the real test: one harness run at whatever the tree has checked out ----------------------

def trial_from_outcome(outcome) -> Trial:
    """A run.RunOutcome -> Trial; Ctrl-C inside the run is passed on, not turned into a skip."""
    data = outcome.data
    if data.get("interrupted"):
        raise KeyboardInterrupt("interrupted during a run")
    reports = data.get("reports") or []
    primary = [r for r in reports if r.get("primary")]
    ordered = primary + [r for r in reports if r not in primary]
    durations = data.get("durations") or {}
    build_s = float(durations.get("build_s") or 0.0)
    total_s = float(durations.get("total_s") or 0.0)
    return Trial(verdict=outcome.verdict.verdict, titles=tuple(r["title"] for r in ordered),
                 alt_titles=tuple(a for r in reports for a in r.get("alt_titles") or ()),
                 build_s=round(build_s, 1), run_s=round(max(0.0, total_s - build_s), 1),
                 run_id=data.get("run_id") or outcome.run_dir.name, reason=outcome.verdict.reason)


def harness_trial(template, tree: Path, log: TextIO) -> Callable[[str], Trial]:
    """rev -> Trial: one run.execute on the tree as checked out; its chatter goes to `log`."""
    from harness.run import execute

    def trial(rev: str) -> Trial:
        request = replace(template, kernel_src=str(tree), label=f"bisect-{rev[:12]}")
        print(f"===== {time.strftime('%H:%M:%S')} run at {rev}", file=log, flush=True)
        with _output_to(log):
            outcome = execute(request)
        result = trial_from_outcome(outcome)
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
    load_request(replace(template, kernel_src=str(tree)))   # arch, storm, profile, duration, tree
    out_dir = results_root() / "bisect"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "bisect.log", "w", buffering=1) as log:
        trial_fn = harness_trial(template, tree, sys.stderr if verbose else log)
        bisection = Bisection(tree, good, bad, trial_fn, policy, out_dir)
        result = bisection.run()
    print(f"results: {out_dir / 'bisect.json'} (runs: {out_dir / 'bisect.log'})")
    if result.culprit:
        print(f"culprit: {result.culprit} {result.culprit_subject}")
        print(f"title: {result.title}")
        print(f"confidence: {result.confidence:.2f} (target rate at BAD {result.rate}, "
              f"{len(result.steps)} steps, {result.wall_s:.0f}s)")
    else:
        print(f"no culprit: {result.reason}")
    return result.exit_code
