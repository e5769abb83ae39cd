"""Every option and config value is checked before anything is built or booted:
each bad value, with a kernel tree whose build would fail loudly (and make,
compilers and QEMU on PATH that would too), is a config error (exit 2) naming
the value, and no tool started, no run directory, no cache entry."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_tree import evidence, make_tree

REPO = Path(__file__).resolve().parent.parent

# (command and its options, text the error must hold); TREE is the hostile tree.
BAD_VALUES = [
    (["run", "--accel", "bogus"], "unknown ACCEL 'bogus'"),
    (["run", "--accel", "KVM"], "unknown ACCEL 'KVM'"),
    (["run", "--profile", "bogus"], "bogus"),
    (["run", "--storm", "bogus"], "valid storms:"),
    (["run", "--leave-out", "bogus"], "--leave-out bogus"),
    (["run", "--inject", "bogus"], "unknown injection 'bogus'"),
    (["run", "--inject", "hung-task:²"], "seconds must be a whole number"),
    (["run", "--inject", "hung-task:1;reboot"], "seconds must be a whole number"),
    (["run", "--arch", "bogus"], "unknown arch 'bogus'"),
    (["run", "--duration", "90000"], "DURATION must be between 1 and 86400"),
    (["run", "--kernel-version", "9.9", "NO_TREE"], "unknown kernel version '9.9'"),
    (["run", "--preempt", "lazy"], "unknown preemption model 'lazy'"),
    (["run", "--faults", "bogus"], "bogus"),
    (["run", "--stagger", "99"], "STAGGER must be 0..60 seconds"),
    (["boot", "--accel", "bogus"], "unknown ACCEL 'bogus'"),
    (["shell", "--accel", "bogus"], "unknown ACCEL 'bogus'"),
    (["soak", "--runs", "2", "--accel", "bogus"], "unknown ACCEL 'bogus'"),
    (["soak", "--runs", "2", "--storm", "bogus"], "valid storms:"),
    (["selftest", "--accel", "bogus"], "unknown ACCEL 'bogus'"),
    (["selftest", "--profile", "bogus"], "bogus"),
    (["selftest", "--cases", "bogus"], "unknown self-test case(s) bogus"),
    (["selftest", "--kernel-version", "9.9", "NO_TREE"], "unknown kernel version '9.9'"),
    (["matrix", "--arches", "x86_64", "--accel", "bogus", "NO_TREE"], "unknown ACCEL 'bogus'"),
    (["matrix", "--arches", "x86_64", "--storm", "bogus", "NO_TREE"], "valid storms:"),
    (["matrix", "--arches", "x86_64", "--profile", "bogus", "NO_TREE"], "bogus"),
    (["matrix", "--arches", "x86_64", "--leave-out", "bogus", "NO_TREE"], "--leave-out bogus"),
    (["matrix", "--arches", "x86_64", "--kernel-versions", "9.9", "NO_TREE"], "unknown kernel version '9.9'"),
    (["matrix", "--arches", "bogus", "NO_TREE"], "unknown arch 'bogus'"),
    (["bisect", "--good", "HEAD~1", "--bad", "HEAD", "--accel", "bogus"], "unknown ACCEL 'bogus'"),
    (["bisect", "--good", "HEAD~1", "--bad", "HEAD", "--storm", "bogus"], "valid storms:"),
    (["bisect", "--good", "HEAD~1", "--bad", "HEAD", "--inject", "bogus"], "unknown injection 'bogus'"),
    (["zoo", "--accel", "bogus", "NO_TREE"], "unknown ACCEL 'bogus'"),
    (["zoo", "--storm", "bogus", "NO_TREE"], "valid storms:"),
    (["zoo", "--cases", "bogus", "NO_TREE"], "unknown zoo case 'bogus'"),
    (["build", "--profile", "bogus"], "bogus"),
    (["build", "--kernel-version", "9.9", "NO_TREE"], "unknown kernel version '9.9'"),
]


@pytest.mark.parametrize(("argv", "says"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_bad_value_is_refused_before_any_work(tmp_path, argv, says):
    tree, started, env = make_tree(tmp_path, git=argv[0] == "bisect")
    args = [a for a in argv if a != "NO_TREE"]
    if "NO_TREE" not in argv:
        args += ["--kernel-src", str(tree)]
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert says in out, out
    assert "Traceback" not in out
    assert evidence(tmp_path, started) == [], out


def test_the_hostile_tree_does_fail_loudly_when_built(tmp_path):
    """The guard above can fail: with good values, the same tree and tools start at once."""
    tree, started, env = make_tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "harness", "boot", "--kernel-src", str(tree)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode not in (0, 2), proc.stdout + proc.stderr
    assert started.exists() and evidence(tmp_path, started)
