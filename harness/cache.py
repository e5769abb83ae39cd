"""The content-addressed cache under ~/.cache/mmlock-harness (or $MMLOCK_CACHE).

Keys are sha256 of everything that decides an artifact's content; entries
are directories published atomically by rename, so a killed build never
leaves a half-written entry that a later run would trust.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_ROOT: list[Path] = []   # a run's own cache (RunRequest.cache_dir) while it runs


def cache_root() -> Path:
    root = _ROOT[-1] if _ROOT else os.environ.get("MMLOCK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mmlock-harness")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def rooted(root: str | None) -> Iterator[None]:
    """The cache at @root for a run's stages (bench's cold sample: an empty cache); None: the
    usual one. The request says where, not an environment variable written for the run."""
    if root is None:
        yield
        return
    _ROOT.append(Path(root))
    try:
        yield
    finally:
        _ROOT.pop()


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an flock on @lock_file: one process at a time fills a shared cache entry
    (matrix cells of one kernel version unpack the same source tree; two runs of one
    arch share its O= tree). Says so on stderr when it has to wait."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting: another run is filling the cache entry of {lock_file} ...",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def content_key(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_key(root: Path, files: Iterable[Path]) -> str:
    """Hash of the relative names and contents of some files under root."""
    parts: list[str | bytes] = []
    for path in sorted(files):
        parts.append(str(path.relative_to(root)))
        parts.append(path.read_bytes())
    return content_key(*parts)


class Store:
    """One kind of cached artifact: <root>/<kind>/<key>/ with a meta.json."""

    def __init__(self, kind: str, root: Path | None = None) -> None:
        self.dir = (root or cache_root()) / kind
        self.dir.mkdir(parents=True, exist_ok=True)

    def lookup(self, key: str) -> Path | None:
        entry = self.dir / key
        return entry if (entry / "meta.json").is_file() else None

    def publish(self, key: str, files: dict[str, Path], meta: dict) -> Path:
        """Copy files into a fresh entry and rename it into place."""
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=self.dir))
        try:
            for name, source in files.items():
                shutil.copy2(source, staging / name)
            (staging / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            final = self.dir / key
            if final.exists():
                shutil.rmtree(final)
            os.rename(staging, final)
            return final
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @staticmethod
    def meta(entry: Path) -> dict:
        return json.loads((entry / "meta.json").read_text())
