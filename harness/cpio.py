"""A reproducible newc cpio writer: no root, no host cpio, fixed metadata.

The kernel unpacks newc archives (and concatenations of them) as its
initramfs; device nodes can be written here without mknod privileges.
"""
from __future__ import annotations

import stat
from pathlib import Path
from typing import BinaryIO

_TRAILER = "TRAILER!!!"


class CpioWriter:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.inode = 1
        self.written: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        name = name.lstrip("/")
        if name in self.written and name != _TRAILER:
            raise ValueError(f"cpio: duplicate entry {name}")
        self.written.add(name)
        encoded = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
        self.inode += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.handle.write(header + encoded)
        self.handle.write(b"\0" * (-(len(header) + len(encoded)) % 4))
        self.handle.write(data)
        self.handle.write(b"\0" * (-len(data) % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def file_from(self, name: str, source: Path, mode: int | None = None) -> None:
        if mode is None:
            mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
        self.file(name, source.read_bytes(), mode)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def close(self) -> None:
        self._entry(_TRAILER, 0)
        self.handle.write(b"\0" * (-self.handle.tell() % 512))
