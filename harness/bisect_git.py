"""Git plumbing for bisect: checks on the user's tree, `git bisect` driven
step by step, and the guarantee that the tree ends where it started.

No policy here: `drive` asks a callable for "good", "bad" or "skip" at each
revision git checks out and feeds the answer back to `git bisect`.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, InfraError
from harness.signals import install, raise_terminated

GOOD, BAD, SKIP = "good", "bad", "skip"
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
_ONLY_SKIPPED = "only 'skip'ped commits left to test"
_LEFT = re.compile(r"\(roughly (\d+) steps?\)")
_CANDIDATE = re.compile(r"^([0-9a-f]{40})$", re.M)


class GitError(InfraError):
    """git itself failed in a way the user's input does not explain."""


class Repo:
    """A git work tree, driven through the git CLI."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser().resolve()

    def git(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
            input: str | bytes | None = None) -> subprocess.CompletedProcess:
        """git in this tree; text in and out unless `input` is bytes (a patch: bytes both ways)."""
        text = not isinstance(input, bytes)
        proc = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=text,
                              errors="replace" if text else None, check=False,
                              env=dict(os.environ, **env) if env else None,
                              **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}))
        if check and proc.returncode != 0:
            out = proc.stderr or proc.stdout
            said = out if isinstance(out, str) else out.decode(errors="replace")
            raise GitError(f"git {' '.join(args)} failed in {self.path}: {said.strip()}")
        return proc

    def out(self, *args: str) -> str:
        return self.git(*args).stdout.strip()

    # ----- checks before anything is touched -------------------------------------------------
    def check_is_repo(self) -> None:
        if not shutil.which("git"):
            raise InfraError("git not found (Debian package: git)")
        if not self.path.is_dir():
            raise ConfigError(f"KERNEL_SRC={self.path}: no such directory")
        proc = self.git("rev-parse", "--show-toplevel", check=False)
        if proc.returncode != 0:
            raise ConfigError(f"KERNEL_SRC={self.path} is not a git work tree: bisect needs the "
                              "kernel's git history")
        if Path(proc.stdout.strip()).resolve() != self.path:
            raise ConfigError(f"KERNEL_SRC={self.path} is inside the git tree {proc.stdout.strip()}; "
                              "give the top of the work tree")

    def resolve(self, rev: str, what: str) -> str:
        if not rev or rev.startswith("-"):
            raise ConfigError(f"{what}={rev!r}: not a revision")
        proc = self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise ConfigError(f"{what}={rev}: unknown revision in {self.path}")
        return proc.stdout.strip()

    def dirty(self) -> list[str]:
        """Modified, staged or untracked (not ignored) paths: any of them would end up in every build."""
        proc = self.git("status", "--porcelain", "--untracked-files=normal")
        return [line for line in proc.stdout.splitlines() if line.strip()]

    def bisect_in_progress(self) -> bool:
        git_dir = Path(self.out("rev-parse", "--absolute-git-dir"))
        return (git_dir / "BISECT_START").exists()

    def check_bisectable(self, good: str, bad: str) -> tuple[str, str]:
        """(good sha, bad sha) or a ConfigError naming what is wrong."""
        self.check_is_repo()
        good_sha, bad_sha = self.resolve(good, "GOOD"), self.resolve(bad, "BAD")
        if good_sha == bad_sha:
            raise ConfigError(f"GOOD and BAD are the same commit ({good_sha[:12]})")
        if self.git("merge-base", "--is-ancestor", good_sha, bad_sha, check=False).returncode != 0:
            raise ConfigError(f"GOOD={good} ({good_sha[:12]}) is not an ancestor of BAD={bad} ({bad_sha[:12]})")
        if self.bisect_in_progress():
            raise ConfigError(f"a git bisect is already in progress in {self.path} "
                              "(finish it or run 'git bisect reset' there first)")
        dirty = self.dirty()
        if dirty:
            shown = "\n  ".join(dirty[:10]) + ("\n  ..." if len(dirty) > 10 else "")
            raise ConfigError(f"KERNEL_SRC={self.path} has uncommitted changes or untracked files; "
                              f"bisect checks out other revisions there, so it must be clean "
                              f"(commit or stash them):\n  {shown}")
        return good_sha, bad_sha

    # ----- small queries --------------------------------------------------------------------
    def head(self) -> str:
        return self.out("rev-parse", "HEAD")

    def branch(self) -> str | None:
        proc = self.git("symbolic-ref", "-q", "HEAD", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def subject(self, rev: str) -> str:
        return self.out("log", "-1", "--format=%s", rev)

    def count_between(self, good: str, bad: str) -> int:
        """Commits in good..bad: the candidates for the first bad one."""
        return int(self.out("rev-list", "--count", f"{good}..{bad}"))

    def checkout(self, rev: str) -> None:
        self.git("checkout", "-q", "--detach", rev)

    def parents(self, rev: str) -> list[str]:
        return self.out("rev-list", "--parents", "-n", "1", rev).split()[1:]

    def changed_paths(self, rev: str) -> list[str]:
        """Paths rev changes against its first parent (every path of a root commit)."""
        parents = self.parents(rev)
        args = ["diff", "--name-only", "-z", "--no-renames", parents[0], rev] if parents else \
            ["diff-tree", "-r", "--root", "--name-only", "-z", "--no-commit-id", rev]
        return [p for p in self.git(*args).stdout.split("\0") if p]

    def text_at(self, rev: str, path: str) -> str | None:
        """The file's text at rev (undecodable bytes replaced), None where it does not exist."""
        proc = self.git("cat-file", "blob", f"{rev}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None


# Who the revert commits are by, and when: the same inputs make the same commit.
_REVERT_IDENTITY = {"GIT_AUTHOR_NAME": "mmlock-harness", "GIT_AUTHOR_EMAIL": "mmlock-harness@localhost.invalid",
                    "GIT_COMMITTER_NAME": "mmlock-harness", "GIT_COMMITTER_EMAIL": "mmlock-harness@localhost.invalid"}


@dataclass(frozen=True)
class Revert:
    commit: str | None          # `onto` with the culprit reverted; None: it does not apply
    reason: str = ""            # why not, in git's words where git has them


def revert_commit(repo: Repo, culprit: str, onto: str) -> Revert:
    """A commit object holding `onto` with `culprit` reverted, as `git revert` would (a three-way
    apply of its reverse diff), made in a scratch index: no ref moves, the work tree and the
    index are not touched. The commit is on no branch (git gc drops it in time); its author,
    committer and date are fixed, so the same culprit on the same BAD is the same commit."""
    parents = repo.parents(culprit)
    if len(parents) != 1:
        what = f"a merge commit ({len(parents)} parents)" if parents else "a root commit (no parent)"
        return Revert(None, f"{culprit[:12]} is {what}: reverting it needs a choice of mainline, "
                            "which bisect does not guess")
    diff = repo.git("diff", "--binary", "--full-index", parents[0], culprit, input=b"").stdout
    if not diff.strip():
        return Revert(None, f"{culprit[:12]} changes no file: there is nothing to revert")
    with tempfile.TemporaryDirectory(prefix="mmlock-revert-") as scratch:
        env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
        repo.git("read-tree", onto, env=env)
        proc = repo.git("apply", "--cached", "--reverse", "--3way", env=env, input=diff, check=False)
        if proc.returncode != 0:
            said = " ".join((proc.stderr + proc.stdout).decode(errors="replace").split())
            return Revert(None, f"the revert of {culprit[:12]} does not apply to {onto[:12]}: {said[:300]}")
        tree = repo.git("write-tree", env=env).stdout.strip()
    when = repo.out("log", "-1", "--format=%ct", onto)
    message = f'Revert "{repo.subject(culprit)}"\n\nThis reverts commit {culprit}.\n'
    env = dict(_REVERT_IDENTITY, GIT_AUTHOR_DATE=f"{when} +0000", GIT_COMMITTER_DATE=f"{when} +0000")
    return Revert(repo.git("commit-tree", tree, "-p", onto, "-F", "-", env=env, input=message).stdout.strip())


@contextlib.contextmanager
def exclusive(repo: Repo) -> Iterator[None]:
    """One harness bisect per tree: a flock on a file in the git dir (never in the work tree)."""
    path = Path(repo.out("rev-parse", "--absolute-git-dir")) / "mmlock-harness-bisect.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another bisect is running in {repo.path} (lock {path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield     # the file stays (empty of meaning once unlocked): unlinking it would race a waiter
    finally:
        os.close(fd)


@dataclass
class Original:
    ref: str | None     # refs/heads/<name> when on a branch
    sha: str


@contextlib.contextmanager
def preserved(repo: Repo) -> Iterator[Original]:
    """The tree goes back to its original branch (or detached commit) however the body ends.

    Ctrl-C and SIGTERM during the body arrive as KeyboardInterrupt; the
    cleanup itself runs with both ignored so a second Ctrl-C cannot cut it short.
    """
    original = Original(repo.branch(), repo.head())
    old_term = install(signal.SIGTERM, raise_terminated)
    try:
        yield original
    finally:
        old_int = install(signal.SIGINT, signal.SIG_IGN)
        install(signal.SIGTERM, signal.SIG_IGN)
        try:
            restore(repo, original)
        finally:
            install(signal.SIGINT, old_int)
            install(signal.SIGTERM, old_term)


def restore(repo: Repo, original: Original) -> None:
    if repo.bisect_in_progress():
        proc = repo.git("bisect", "reset", check=False)
        if repo.bisect_in_progress():
            raise GitError(f"git bisect reset failed in {repo.path}: {(proc.stderr or proc.stdout).strip()}")
    target = original.ref[len("refs/heads/"):] if original.ref else original.sha
    if repo.branch() != original.ref or repo.head() != original.sha:
        args = ["checkout", "-q", target] if original.ref else ["checkout", "-q", "--detach", target]
        repo.git(*args)
    if repo.head() != original.sha or repo.branch() != original.ref:
        raise GitError(f"could not restore {repo.path} to {target}; it is at {repo.head()[:12]}")


@dataclass
class DriveResult:
    culprit: str | None                       # the first bad commit, when git named one
    candidates: list[str] = field(default_factory=list)   # when only skipped commits are left
    tested: list[tuple[str, str]] = field(default_factory=list)  # (rev, good|bad|skip) in order
    log: str = ""                             # git bisect log


def drive(repo: Repo, good: str, bad: str, test: Callable[[str], str],
          max_steps: int | None = None, on_progress: Callable[[str], None] | None = None) -> DriveResult:
    """`git bisect start bad good`, then test(HEAD) -> good|bad|skip until git names a commit.

    The caller owns restoring the tree (see `preserved`); `git bisect reset`
    happens there, also when `test` raises.
    """
    result = DriveResult(None)
    proc = repo.git("bisect", "start", bad, good, "--")
    output = proc.stdout
    limit = max_steps if max_steps is not None else 2 * repo.count_between(good, bad) + 2
    while True:
        if _conclude(output, result):
            break
        if len(result.tested) >= limit:
            raise GitError(f"git bisect did not conclude after {limit} steps")
        rev = repo.head()
        if on_progress:
            left = _LEFT.search(output)
            on_progress(f"~{left.group(1)} step(s) left after this" if left else "")
        verdict = test(rev)
        if verdict not in (GOOD, BAD, SKIP):
            raise ValueError(f"test returned {verdict!r}, expected good, bad or skip")
        result.tested.append((rev, verdict))
        proc = repo.git("bisect", verdict, rev, check=False)
        if proc.returncode != 0 and _ONLY_SKIPPED not in proc.stdout + proc.stderr:
            raise GitError(f"git bisect {verdict} {rev[:12]} failed: {(proc.stderr or proc.stdout).strip()}")
        output = proc.stdout + proc.stderr
    result.log = repo.git("bisect", "log", check=False).stdout
    return result


def _conclude(output: str, result: DriveResult) -> bool:
    match = _FIRST_BAD.search(output)
    if match:
        result.culprit = match.group(1)
        return True
    if _ONLY_SKIPPED in output:
        result.candidates = _CANDIDATE.findall(output)
        return True
    return False
