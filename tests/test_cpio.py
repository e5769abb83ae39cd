"""The initramfs writer produces archives the host's cpio reads back exactly."""
import shutil
import subprocess

import pytest

from harness.cpio import CpioWriter


def _write(path, tmp_path):
    src = tmp_path / "payload"
    src.write_bytes(b"#!/bin/sh\necho hi\n")
    src.chmod(0o755)
    with open(path, "wb") as handle:
        cpio = CpioWriter(handle)
        cpio.directory("bin")
        cpio.file_from("bin/hello", src)
        cpio.file("etc-file", b"x" * 5)
        cpio.symlink("bin/sh", "busybox")
        cpio.char_device("console", 5, 1)
        cpio.close()


def test_reproducible(tmp_path):
    _write(tmp_path / "a.cpio", tmp_path)
    _write(tmp_path / "b.cpio", tmp_path)
    assert (tmp_path / "a.cpio").read_bytes() == (tmp_path / "b.cpio").read_bytes()
    assert (tmp_path / "a.cpio").stat().st_size % 512 == 0


def test_duplicate_rejected(tmp_path):
    with open(tmp_path / "d.cpio", "wb") as handle:
        cpio = CpioWriter(handle)
        cpio.file("a", b"")
        with pytest.raises(ValueError):
            cpio.file("a", b"")


@pytest.mark.skipif(not shutil.which("cpio"), reason="host cpio (Debian package cpio) not installed")
def test_host_cpio_reads_it(tmp_path):
    _write(tmp_path / "a.cpio", tmp_path)
    listing = subprocess.run(["cpio", "-itv", "--quiet"], stdin=open(tmp_path / "a.cpio", "rb"),
                             capture_output=True, text=True, check=True).stdout
    assert "bin/hello" in listing and "-rwxr-xr-x" in listing
    assert "bin/sh -> busybox" in listing
    assert listing.splitlines()[-1].startswith("crw-------")
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "bin/hello", "etc-file"], cwd=out,
                   stdin=open(tmp_path / "a.cpio", "rb"), check=True)
    assert (out / "bin/hello").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert (out / "etc-file").read_bytes() == b"xxxxx"
