"""Patches the harness applies to Debian's tarballs (configs/kernel/patches/<version>/):
they apply cleanly to the real tarball, they are part of the source identity, and one
that does not apply stops the run naming it."""
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.kernel import source

PATCH = textwrap.dedent("""\
    why: the header a patch carries

    --- a/kernel/toy.c
    +++ b/kernel/toy.c
    @@ -1,3 +1,3 @@
     int a;
    -int b;
    +int b_fixed;
     int c;
    """)


def _toy_tarball(tmp_path: Path) -> Path:
    tarball = tmp_path / "linux-source-6.1.tar.xz"
    if tarball.is_file():
        return tarball
    tree = tmp_path / "t" / "linux-source-6.1"
    (tree / "arch").mkdir(parents=True)
    (tree / "kernel").mkdir()
    (tree / "Kconfig").write_text("\n")
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 1\nEXTRAVERSION =\n")
    (tree / "kernel" / "toy.c").write_text("int a;\nint b;\nint c;\n")
    with tarfile.open(tarball, "w:xz") as archive:
        archive.add(tree, arcname="linux-source-6.1")
    return tarball


def _setup(tmp_path, monkeypatch, patch_text: str | None) -> None:
    tarball = _toy_tarball(tmp_path)
    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(source, "tarball_for", lambda version: tarball)
    patches = tmp_path / "patches"
    (patches / "6.1").mkdir(parents=True, exist_ok=True)
    for old in (patches / "6.1").glob("*.patch"):
        old.unlink()
    if patch_text is not None:
        (patches / "6.1" / "0001-toy.patch").write_text(patch_text)
    monkeypatch.setattr(source, "PATCH_DIR", patches)


def test_patches_are_applied_and_change_the_identity(tmp_path, monkeypatch):
    _setup(tmp_path, monkeypatch, None)
    plain = source.default_source("6.1")
    assert "int b;" in (plain.path / "kernel" / "toy.c").read_text()
    _setup(tmp_path, monkeypatch, PATCH)
    patched = source.default_source("6.1")
    assert patched.identity != plain.identity, "kernels built before the patch are not reused"
    assert (patched.path / "kernel" / "toy.c").read_text() == "int a;\nint b_fixed;\nint c;\n"
    assert source.default_source("6.1").identity == patched.identity, "stable once applied"
    _setup(tmp_path, monkeypatch, None)
    again = source.default_source("6.1")
    assert again.identity == plain.identity and "int b;" in (again.path / "kernel" / "toy.c").read_text()


def test_a_patch_that_does_not_apply_names_itself(tmp_path, monkeypatch):
    _setup(tmp_path, monkeypatch, PATCH.replace("-int b;", "-int q;"))
    with pytest.raises(InfraError, match=r"0001-toy.patch does not apply to linux-source-6.1"):
        source.default_source("6.1")


# Decompresses Debian's whole kernel tarball (installed by make deps): 12-19 s on 2 cores, so e2e.
@pytest.mark.e2e
@pytest.mark.parametrize("version", source.KNOWN_VERSIONS)
def test_shipped_patches_apply_cleanly_to_the_debian_tarball(tmp_path, version):
    """Exactly, without fuzz or offset: the files each patch touches, from the real tarball."""
    patches = source.patches_for(version)
    if not patches:
        pytest.skip(f"no patches for {version}")
    tarball = source.tarball_for(version)
    if not tarball.is_file():
        pytest.skip(f"{tarball} not installed (make deps)")
    touched = sorted({line[len("+++ b/"):].split("\t")[0].strip() for p in patches
                      for line in p.read_text().splitlines() if line.startswith("+++ b/")})
    subprocess.run(["tar", "-C", str(tmp_path), "-xf", str(tarball),
                    *(f"linux-source-{version}/{name}" for name in touched)], check=True)
    for patch in patches:
        proc = subprocess.run(["patch", "-p1", "--forward", "--batch", "-d", str(tmp_path / f"linux-source-{version}"),
                               "-i", str(patch)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "offset" not in proc.stdout and "fuzz" not in proc.stdout, proc.stdout
