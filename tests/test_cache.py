"""The cache: its cross-process lock (a second run waits for the first, and says so),
ccache across trees, the tools kbuild runs."""
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.cache import exclusive

HOLDER = """
import sys, time
from pathlib import Path
from harness.cache import exclusive
lock, held, release, log = map(Path, sys.argv[1:])
with exclusive(lock):
    held.touch()
    while not release.exists():
        time.sleep(0.05)
    with open(log, "a") as f:
        f.write("first\\n")
"""


def test_exclusive_serializes_processes_and_says_it_waits(tmp_path: Path, capfd):
    lock, held, release, log = (tmp_path / n for n in (".x.lock", "held", "release", "log"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(held), str(release), str(log)],
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "holder never took the lock"
            time.sleep(0.05)
        entered = threading.Event()

        def second() -> None:
            with exclusive(lock):
                entered.set()
                with open(log, "a") as f:
                    f.write("second\n")
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(1.0), "entered while another process held the lock"
        release.touch()
        thread.join(30)
        assert entered.is_set()
        assert log.read_text() == "first\nsecond\n"
        assert f"waiting: another run is filling the cache entry of {lock}" in capfd.readouterr().err
    finally:
        release.touch()
        holder.wait(30)


def test_trees_of_one_layout_share_ccache_and_others_keep_absolute_paths(tmp_path, monkeypatch):
    """A second tree of the harness's (R/src/<name>) builds from the first one's ccache
    objects: the same path from its O= to its source, ccache's base_dir at R, the O=
    not hashed, and __FILE__/debug paths mapped back to mm/x.c."""
    from harness.configs import load_arch, load_profile
    from harness.kernel import build
    from harness.kernel.source import KernelSource

    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    arch, profile = load_arch("x86_64"), load_profile("lockdep")
    default = KernelSource(tmp_path / "cache" / "src" / "linux-source-6.1", "debian", "a", "6.1.1")
    zoo = KernelSource(tmp_path / "cache" / "zoo" / "src" / "linux-source-6.1", "zoo", "b", "6.1.1")
    outs = [build.out_dir_for(s, arch, profile) for s in (default, zoo)]
    assert outs[0].parent.parent == tmp_path / "cache" / "build"
    assert outs[1].parent.parent == tmp_path / "cache" / "zoo" / "build"
    relative = {os.path.relpath(s.path, o) for s, o in zip((default, zoo), outs, strict=True)}
    assert relative == {"../../../src/linux-source-6.1"}
    env, make_vars = build.ccache_settings(zoo, outs[1])
    assert env["CCACHE_BASEDIR"] == str(tmp_path / "cache" / "zoo") and env["CCACHE_NOHASHDIR"] == "1"
    assert env["CCACHE_DEPEND"] == "1"   # no preprocessor run on a miss
    assert make_vars == ["KCFLAGS=-ffile-prefix-map=../../../src/linux-source-6.1/="]
    # a user's tree is never written beside, and keeps kbuild's absolute paths
    user = KernelSource(tmp_path / "home" / "linux", "/home/linux", "c", "6.1.1")
    out = build.out_dir_for(user, arch, profile)
    assert out.is_relative_to(tmp_path / "cache" / "build")
    env, make_vars = build.ccache_settings(user, out)
    assert "CCACHE_BASEDIR" not in env and make_vars == []


def test_kernel_builds_run_an_nm_that_loads_only_gccs_lto_plugin(tmp_path):
    """kbuild runs nm on every object; binutils' nm loads every plugin in bfd-plugins
    (LLVM's gold plugin maps libLLVM: 13x slower a run). make_vars names an nm that
    loads gcc's own LTO plugin only, and it lists what plain nm lists."""
    from harness.configs import load_arch
    from harness.kernel import config

    if not shutil.which("gcc") or not shutil.which("nm"):
        pytest.skip("gcc or nm not installed")
    source = tmp_path / "t.c"
    source.write_text("int visible_symbol(void) { return 1; }\nstatic int hidden;\nint *p = &hidden;\n")
    subprocess.run(["gcc", "-c", "-o", str(tmp_path / "t.o"), str(source)], check=True)
    nm = config.plugin_free_nm("")
    assert nm is not None, "gcc has no liblto_plugin.so (gcc -print-file-name=liblto_plugin.so)"
    words = nm.split()
    assert words[:2] == ["nm", "--plugin"] and Path(words[2]).is_file() and words[2].endswith("liblto_plugin.so")
    listed = [subprocess.run([*argv, str(tmp_path / "t.o")], capture_output=True, text=True, check=True).stdout
              for argv in (words, ["nm"])]
    assert "T visible_symbol" in listed[0] and listed[0] == listed[1]
    arch = load_arch("x86_64")
    assert f"NM={nm}" in config.make_vars(arch, "ccache gcc")
    assert not any(v.startswith("NM=") for v in config.make_vars(arch))   # config steps run no nm
