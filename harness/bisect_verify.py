"""After bisect names a culprit: the three things a maintainer asks before believing it.

  * fail:runs: in how many of the runs at the culprit and at its parent each
    report title showed (0-day's table), so a flaky signature beside the
    target is visible, and so is a target that also shows at the parent.
  * revert: does the target go away when the culprit is reverted on BAD
    (KernelCI's "revert" check)? A revert that does not fix it lowers the
    confidence by the share of BAD's rate the revert left standing.
  * suspicious: a culprit that cannot change the kernel that was built (only
    comments, only documentation, only another architecture's directory) is
    flagged with the reason, as syzkaller#1271 asks.

Pure except `implausible`, which reads the culprit's files through git.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from harness.bisect_git import Repo
from harness.bisect_policy import ERROR_VERDICTS, Trial, matches
from harness.report.model import printable

REVERT_VERDICTS = ("fixed", "still-fails", "does-not-apply", "skipped")


# ----- fail:runs ---------------------------------------------------------------------------------

def _usable(trials: list[Trial]) -> list[Trial]:
    """Runs that say something about the kernel: not a build, boot or infra error."""
    return [t for t in trials if t.verdict not in ERROR_VERDICTS]


def _side(rev: str, trials: list[Trial]) -> dict:
    return {"rev": rev, "runs": len(_usable(trials)), "errors": len(trials) - len(_usable(trials)),
            "run_ids": [t.run_id for t in trials if t.run_id]}


def fail_runs(target: str, parent: str, parent_trials: list[Trial], culprit: str,
              culprit_trials: list[Trial]) -> dict:
    """{parent, culprit: {rev, runs, errors, run_ids}, titles: [{title, target, parent_fails,
    culprit_fails, reproduction_pct}]}: the target first, then by sightings, then by name."""
    sides = {"parent": _usable(parent_trials), "culprit": _usable(culprit_trials)}
    titles: dict[str, dict[str, int]] = {target: {"parent": 0, "culprit": 0}}
    for name, trials in sides.items():
        for trial in trials:
            seen = {target} if matches(trial, target) else set()
            seen.update(printable(t) for t in trial.titles if t != target)
            for title in seen:
                titles.setdefault(title, {"parent": 0, "culprit": 0})[name] += 1
    rows: list[dict[str, Any]] = []
    for title, fails in titles.items():
        pct = None
        if sides["parent"] and sides["culprit"]:
            pct = round(100 * (fails["culprit"] / len(sides["culprit"]) - fails["parent"] / len(sides["parent"])))
        rows.append({"title": title, "target": title == target, "parent_fails": fails["parent"],
                     "culprit_fails": fails["culprit"], "reproduction_pct": pct})
    rows.sort(key=lambda r: (not r["target"], -(r["parent_fails"] + r["culprit_fails"]), r["title"]))
    return {"parent": _side(parent, parent_trials), "culprit": _side(culprit, culprit_trials), "titles": rows}


def fail_runs_lines(table: dict) -> list[str]:
    """The table as 0-day prints it: parent on the left, the commit on the right."""
    parent, culprit = table["parent"], table["culprit"]
    lines = [f"{parent['rev'][:16]:>16} {culprit['rev'][:16]}",
             f"{'-' * 16} {'-' * 27}",
             f"{'fail:runs':>16}  {'%reproduction':>13}  {'fail:runs':>11}",
             f"{'|':>16}  {'|':>13}  {'|':>11}"]
    for row in table["titles"]:
        left = f"{row['parent_fails'] or ''}:{parent['runs']}"
        right = f"{row['culprit_fails'] or ''}:{culprit['runs']}"
        pct = "" if row["reproduction_pct"] is None else f"{row['reproduction_pct']}%"
        lines.append(f"{left:>16}  {pct:>13}  {right:>11}     {printable(row['title'])}")
    for name, side in (("parent", parent), ("culprit", culprit)):
        if side["errors"]:
            lines.append(f"{'':>16}  {'':>13}  {'':>11}     ({side['errors']} run(s) at the {name} "
                         "ended in a build, boot or infra error: not counted)")
    return lines


# ----- revert check ------------------------------------------------------------------------------

@dataclass
class RevertCheck:
    verdict: str = "skipped"          # fixed | still-fails | does-not-apply | skipped
    applied: bool = False
    runs: int = 0                     # runs that said something (no build, boot or infra error)
    hits: int = 0                     # of those, runs in which the target showed
    commit: str | None = None         # BAD with the culprit reverted (on no branch)
    reason: str = ""
    titles: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def judge_revert(check: RevertCheck, trials: list[Trial], target: str) -> RevertCheck:
    """The runs at BAD-with-the-culprit-reverted -> fixed, still-fails or skipped."""
    usable = _usable(trials)
    check.runs = len(usable)
    check.hits = sum(1 for t in usable if matches(t, target))
    check.titles = [printable(t.primary) for t in trials if t.primary]
    check.run_ids = [t.run_id for t in trials if t.run_id]
    errors = [t for t in trials if t.verdict in ERROR_VERDICTS]
    if check.hits:
        check.verdict = "still-fails"
        check.reason = f"the target showed in {check.hits}/{check.runs} run(s) with the culprit reverted"
    elif errors:
        check.verdict = "skipped"
        check.reason = f"{errors[0].verdict} with the culprit reverted: {printable(errors[0].reason)}".rstrip(": ")
    elif usable:
        check.verdict = "fixed"
        check.reason = f"the target did not show in {check.runs} run(s) with the culprit reverted"
    return check


def confidence_after_revert(confidence: float, rate: float, check: RevertCheck) -> float:
    """still-fails: scaled by the share of BAD's rate p the revert took away, 1 - q/p with q the
    rate with the culprit reverted (0 when the revert changed nothing). Otherwise unchanged."""
    if check.verdict != "still-fails" or not check.runs or rate <= 0:
        return confidence
    return confidence * max(0.0, 1.0 - (check.hits / check.runs) / rate)


# ----- implausible culprits ----------------------------------------------------------------------

_DOC_TOP = {"README", "MAINTAINERS", "CREDITS", "COPYING"}
_C_FILES = (".c", ".h")
_HASH_FILES = ("Kconfig", "Makefile", "Kbuild")
# comments, and the literals a comment marker may hide in (kept as they are)
_C_TOKENS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def is_documentation(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (parts[0] in ("Documentation", "LICENSES") or (len(parts) == 1 and parts[0] in _DOC_TOP)
            or path.endswith(".rst"))


def other_arch(path: str, kernel_arch: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(kernel_arch) and len(parts) > 2 and parts[0] == "arch" and parts[1] != kernel_arch


def _code_lines(path: str, text: str) -> list[str] | None:
    """The file's lines without comments and blank lines, white space squeezed; None: not a
    kind of file whose comments we know."""
    name = PurePosixPath(path).name
    if name.endswith(_C_FILES):
        text = _C_TOKENS.sub(lambda m: m.group(0) if m.group(0)[0] in "\"'" else
                             " " + "\n" * m.group(0).count("\n"), text)
    elif name.startswith(_HASH_FILES):
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    else:
        return None
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def comment_only(path: str, old: str | None, new: str | None) -> bool:
    """True when the change from old to new text touches only comments and white space."""
    if old is None or new is None:
        return False
    before, after = _code_lines(path, old), _code_lines(path, new)
    return before is not None and before == after


def implausible(repo: Repo, culprit: str, kernel_arch: str) -> str:
    """Why the culprit cannot have changed the kernel that was built, or "" when it may have."""
    parents = repo.parents(culprit)
    if len(parents) != 1:
        return ""                       # a merge or a root: its diff is not one change
    paths = repo.changed_paths(culprit)
    if not paths:
        return "it changes no file"
    kinds: dict[str, list[str]] = {}
    for path in paths:
        if is_documentation(path):
            kind = "documentation"
        elif other_arch(path, kernel_arch):
            kind = f"another architecture's directory (the build is arch/{kernel_arch})"
        elif comment_only(path, repo.text_at(parents[0], path), repo.text_at(culprit, path)):
            kind = "comments"
        else:
            return ""
        kinds.setdefault(kind, []).append(path)
    shown = [f"{kind} ({', '.join(printable(p) for p in found[:3])}{', ...' if len(found) > 3 else ''})"
             for kind, found in kinds.items()]
    return "it touches only " + " and ".join(shown)
