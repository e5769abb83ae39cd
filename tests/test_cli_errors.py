"""User mistakes: a clear message, the config-error exit code, no traceback."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import configs
from harness.errors import BuildError
from harness.kernel import config as kconfig
from harness.kernel import source

REPO = Path(__file__).resolve().parent.parent


def _cli(*args, tmp_path):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_unknown_arch_lists_valid_ones(tmp_path):
    proc = _cli("run", "--arch", "foo", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "unknown arch 'foo'; valid arches:" in proc.stderr and "x86_64" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_duration_must_be_a_number(tmp_path):
    proc = _cli("run", "--duration", "abc", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "expected a whole number of seconds, got 'abc'" in proc.stderr


def test_kernel_src_that_is_not_a_tree(tmp_path):
    (tmp_path / "notakernel").mkdir()
    proc = _cli("run", "--kernel-src", str(tmp_path / "notakernel"), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "not a kernel source tree" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_injection_and_accel(tmp_path):
    proc = _cli("run", "--inject", "nonsense", tmp_path=tmp_path)
    assert proc.returncode == 2 and "unknown injection 'nonsense'" in proc.stderr
    proc = _cli("run", "--storm", "nope", tmp_path=tmp_path)
    assert proc.returncode == 2 and "valid storms:" in proc.stderr


def test_leave_out_of_a_part_the_storm_lacks(tmp_path):
    proc = _cli("run", "--storm", "seed-paths", "--leave-out", "module,zswap", tmp_path=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--leave-out zswap: storm seed-paths has no such part; its parts: swap, hog" in proc.stderr


def test_make_passes_leave_out_through(tmp_path):
    proc = subprocess.run(["make", "-n", "soak", "matrix", "LEAVE_OUT=zram zswap", "VENV=/nonexistent"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    commands = [line for line in proc.stdout.replace("\\\n", " ").splitlines() if " -m harness soak " in line
                or " -m harness matrix " in line]
    assert len(commands) == 2, proc.stdout + proc.stderr
    assert all("--leave-out 'zram zswap'" in line for line in commands)


def test_every_subcommand_has_help(tmp_path):
    for sub in ("build", "boot", "run", "parse", "deps", "selftest"):
        proc = _cli(sub, "--help", tmp_path=tmp_path)
        assert proc.returncode == 0 and "usage:" in proc.stdout


@pytest.mark.e2e   # unpacks Debian's kernel tarball and compiles its kconfig tools: not in `make unit`
@pytest.mark.skipif(not source.tarball_for("6.1").is_file(), reason="linux-source-6.1 not installed (make deps)")
def test_fragment_option_missing_from_tree_is_a_build_error_naming_it(tmp_path, monkeypatch):
    src = source.default_source("6.1")
    monkeypatch.setenv("MMLOCK_CACHE", str(tmp_path / "cache"))
    arch = configs.load_arch("x86_64")
    arch = dataclasses.replace(arch, fragment=arch.fragment + "CONFIG_MMLOCK_NO_SUCH_OPTION=y\n")
    with pytest.raises(BuildError) as info:
        kconfig.merged_config(src, arch, configs.load_profile("lockdep"), "gcc", tmp_path / "scratch",
                              tmp_path / "build.log")
    message = str(info.value)
    assert "CONFIG_MMLOCK_NO_SUCH_OPTION=y" in message
    assert "does not exist in this tree" in message
    assert BuildError.exit_code == 4


def test_module_check_names_unknown_arches_and_versions(tmp_path):
    proc = _cli("module-check", "--arches", "x86_64 sparc", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "unknown arch(es) sparc; valid: " in proc.stderr and "riscv64" in proc.stderr
    proc = _cli("module-check", "--arches", "x86_64", "--kernel-versions", "5.10", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "unknown kernel version(s) 5.10; valid: 6.1, 6.12" in proc.stderr
    assert not (tmp_path / "results" / "module-check" / "summary.json").exists()


@pytest.mark.parametrize("args, message", [
    (("run", "--preempt", "lazy"), "unknown preemption model 'lazy'; valid: none, voluntary, full"),
    (("run", "--stagger", "99"), "STAGGER must be 0..60 seconds, got 99"),
    (("run", "--faults", "slab,disk"), "unknown fault kind(s) disk; valid: slab, page, io"),
    (("soak", "--runs", "2", "--preempt", "rt"), "unknown preemption model 'rt'"),
    (("zoo", "--cases", "nope"), "unknown zoo case 'nope'; valid cases: "),
    (("zoo", "--inject", "abba"), "--inject is not for the zoo"),
])
def test_bad_new_run_options_stop_before_any_work(tmp_path, args, message):
    proc = _cli(*args, tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").glob("*-run*"))
