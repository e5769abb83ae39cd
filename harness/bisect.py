"""Kernel bisection with the harness as the test: a composition of run.execute.

Policy per step is in bisect_policy.py, git plumbing in bisect_git.py, the
command and the real test in bisect_cmd.py.
  * BAD is run first: its report gives the target title (unless --title) and,
    over a few runs, the rate p at which the target reproduces.
  * then git bisect, each step judged by bisect_policy.judge.
  * confidence: the product over good steps of 1-(1-p)^runs, the chance that
    none of them was a bad revision whose bug just did not show.
  * then, with a culprit named (bisect_verify.py): the culprit and its parent
    topped up to n runs for the fail:runs table, the culprit reverted on BAD
    and run n times (a revert that does not fix it lowers the confidence),
    and a culprit that cannot have changed the build flagged as suspicious.

Exit: 0 a culprit named, 1 none (BAD did not reproduce, only skipped commits
left), 2 bad input, 3 infra.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness import bisect_git
from harness.bisect_git import BAD, GOOD, SKIP, Repo
from harness.bisect_policy import (
    ERROR_VERDICTS,
    OTHER_REPORT_POLICIES,
    Policy,
    StepResult,
    Trial,
    judge,
    matches,
    runs_for_rate,
    step_confidence,
)
from harness.bisect_verify import (
    RevertCheck,
    confidence_after_revert,
    fail_runs,
    fail_runs_lines,
    implausible,
    judge_revert,
)
from harness.errors import ConfigError, HarnessError, InfraError
from harness.report.model import printable

__all__ = ["BAD", "ERROR_VERDICTS", "GOOD", "OTHER_REPORT_POLICIES", "SKIP", "BisectResult", "Bisection",
           "Policy", "StepResult", "Trial", "bisect_revisions", "judge", "matches", "runs_for_rate",
           "step_confidence"]

INFRA_SKIPS_BEFORE_ABORT = 2      # consecutive steps that only saw infra errors


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
    revert: RevertCheck = field(default_factory=lambda: RevertCheck(reason="no culprit"))
    fail_runs: dict | None = None    # bisect_verify.fail_runs: culprit vs parent per title
    suspicious: bool = False
    suspicious_reason: str = ""
    confidence_note: str = ""        # why the confidence is lower than the bisection's own

    def to_json(self) -> dict:
        return {"culprit": self.culprit, "culprit_subject": self.culprit_subject, "title": self.title,
                "confidence": round(self.confidence, 4),
                "steps": [{"rev": s.rev, "verdict": s.verdict, "runs": s.runs, "titles": s.titles,
                           "build_s": s.build_s, "run_s": s.run_s, "hits": s.hits, "role": s.role,
                           "note": s.note, "run_ids": s.run_ids} for s in self.steps],
                "status": self.status, "reason": self.reason, "candidates": self.candidates,
                "rate": self.rate, "runs_per_step": self.runs_per_step, "good": self.good,
                "bad": self.bad, "tree": self.tree, "commits": self.commits, "wall_s": round(self.wall_s, 1),
                "revert": self.revert.to_json(), "fail_runs": self.fail_runs, "suspicious": self.suspicious,
                "suspicious_reason": self.suspicious_reason, "confidence_note": self.confidence_note}

    def last_lines(self) -> list[str]:
        """What the command prints at the end: culprit, title, the verdicts on it, confidence last."""
        if not self.culprit:
            return [f"no culprit: {printable(self.reason)}"]
        lines = [f"culprit: {self.culprit} {printable(self.culprit_subject or '')}",
                 f"title: {printable(self.title or '')}"]
        if self.suspicious:
            lines.append(f"suspicious: {self.suspicious_reason}")
        if self.fail_runs:
            lines += ["fail:runs (parent | culprit):"] + ["  " + line for line in fail_runs_lines(self.fail_runs)]
        revert = self.revert
        lines.append(f"revert: {revert.verdict}" + (f" ({revert.reason})" if revert.reason else ""))
        why = f"; {self.confidence_note}" if self.confidence_note else ""
        lines.append(f"confidence: {self.confidence:.2f} (target rate at BAD {self.rate}, "
                     f"{len(self.steps)} steps, {self.wall_s:.0f}s){why}")
        return lines

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
                 policy: Policy | None = None, out_dir: Path | None = None, echo: TextIO | None = None,
                 kernel_arch: str = "") -> None:
        self.repo = Repo(tree)
        self.good_rev, self.bad_rev = good, bad
        self.trial_fn = trial_fn
        self.policy = policy if policy is not None else Policy()
        self.out_dir = out_dir
        self.echo = echo if echo is not None else sys.stderr
        self.result = BisectResult(tree=str(self.repo.path))
        self.started = time.monotonic()
        self.kernel_arch = kernel_arch       # ARCH= of the build: another arch/ directory is implausible
        self.trials: dict[str, list[Trial]] = {}   # every run, by revision

    def _trial(self, rev: str) -> Trial:
        trial = self.trial_fn(rev)
        self.trials.setdefault(rev, []).append(trial)
        return trial

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
        note = f"; {printable(step.note)}" if step.note else ""
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
            self.say(f"bisect: {printable(res.reason)}")
            return
        res.title = title
        p = hits / len(trials)
        res.rate = round(p, 3)
        n = policy.runs if policy.runs is not None else runs_for_rate(p, policy.miss_chance, policy.max_runs,
                                                                       policy.hits)
        res.runs_per_step = n
        self.say(f"bisect: target '{printable(title)}' reproduced {hits}/{len(trials)} at BAD (p={p:.2f}); "
                 f"{n} run(s) per step" + ("" if policy.runs else " (adaptive)"))
        if policy.hits > n:
            raise ConfigError(f"--hits={policy.hits} is more than the {n} run(s) per step")
        # 2. optionally GOOD: a GOOD that reproduces makes the whole bisection meaningless
        if policy.verify_good:
            self.repo.checkout(good)
            step = judge(good, self._trial, title, n, policy, role="good-check")
            self.record(step)
            if step.verdict != GOOD:
                res.status = "inconclusive"
                res.reason = f"GOOD {good[:12]} is not clean: {step.verdict} ({step.note or step.titles})"
                self.say(f"bisect: {printable(res.reason)}")
                return
        # 3. git bisect
        infra_streak = [0]

        def step_fn(rev: str) -> StepResult:
            step = judge(rev, self._trial, title, n, policy)
            infra_streak[0] = infra_streak[0] + 1 if step.note.startswith("infra-error") else 0
            if step.note.startswith("other report"):
                self.say(f"bisect: {rev[:12]}: a different report ({printable(step.note[len('other report: '):])}) "
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
            self._verify(drive.culprit, bad, title, p, n)
        else:
            res.status = "inconclusive"
            res.reason = (f"only skipped commits left; the first bad commit is one of "
                          f"{', '.join(c[:12] for c in drive.candidates)}")
            self.say(f"bisect: {printable(res.reason)}")

    # ----- after a culprit: what a maintainer asks -------------------------------------------
    def _verify(self, culprit: str, bad: str, title: str, p: float, n: int) -> None:
        res = self.result
        res.suspicious_reason = implausible(self.repo, culprit, self.kernel_arch)
        res.suspicious = bool(res.suspicious_reason)
        if res.suspicious:
            self.say(f"bisect: suspicious culprit: {res.suspicious_reason}")
        parent = (self.repo.parents(culprit) or [culprit])[0]
        for rev in (culprit, parent):         # both to n runs, so the table compares like with like
            self._runs_at(rev, n, f"fail:runs at the {'culprit' if rev == culprit else 'parent'} {rev[:12]}")
        res.fail_runs = fail_runs(title, parent, self.trials.get(parent, []), culprit, self.trials.get(culprit, []))
        for line in fail_runs_lines(res.fail_runs):
            self.say(f"bisect: {line}")
        self.save()
        res.revert = self._revert_check(culprit, bad, title, n)
        self.say(f"bisect: revert {culprit[:12]} on BAD: {res.revert.verdict} ({res.revert.reason})")
        before = res.confidence
        res.confidence = confidence_after_revert(before, p, res.revert)
        if res.confidence < before:
            res.confidence_note = (f"lowered from {before:.2f}: reverting the culprit on BAD did not fix it "
                                   f"(target {res.revert.hits}/{res.revert.runs} runs reverted, "
                                   f"{p:.2f} at BAD)")
        elif res.revert.verdict in ("does-not-apply", "skipped"):
            res.confidence_note = f"the revert check said nothing ({res.revert.verdict})"

    def _runs_at(self, rev: str, n: int, why: str) -> list[Trial]:
        """Runs at rev until it has n that said something; stops at a build, boot or infra error."""
        usable = [t for t in self.trials.get(rev, []) if t.verdict not in ERROR_VERDICTS]
        if len(usable) >= n:
            return []
        self.repo.checkout(rev)
        self.say(f"bisect: {why}: {n - len(usable)} more run(s)")
        new: list[Trial] = []
        retried = False
        while len(usable) < n:
            trial = self._trial(rev)
            if trial.verdict == "infra-error" and not retried:
                retried = True
                continue
            new.append(trial)
            if trial.verdict in ERROR_VERDICTS:
                break
            usable.append(trial)
        return new

    def _revert_check(self, culprit: str, bad: str, title: str, n: int) -> RevertCheck:
        if not self.policy.revert_check:
            return RevertCheck(reason="--no-revert-check")
        try:
            revert = bisect_git.revert_commit(self.repo, culprit, bad)
        except HarnessError as exc:
            return RevertCheck(reason=f"git: {exc}")
        if revert.commit is None:
            return RevertCheck(verdict="does-not-apply", reason=revert.reason)
        check = RevertCheck(applied=True, commit=revert.commit)
        why = f"revert check at {revert.commit[:12]} (BAD with {culprit[:12]} reverted)"
        return judge_revert(check, self._runs_at(revert.commit, n, why), title)

    def _trial_at_bad(self, bad: str) -> Trial:
        trial = self._trial(bad)
        if trial.verdict == "infra-error":
            trial = self._trial(bad)
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
