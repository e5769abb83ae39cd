"""End to end on x86_64: a real kernel build, real QEMU, a real storm.

These take minutes on a cold cache (the kernel build) and under a minute
each once it is warm.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent
REQUIRED_FIELDS = ("verdict", "exit_code", "arch", "accel", "kernel", "storm", "reports", "durations", "qemu")


def _cli(tmp_path, *args, timeout=3000):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    latest = tmp_path / "results" / "latest"
    data = json.loads((latest / "verdict.json").read_text()) if (latest / "verdict.json").exists() else {}
    return proc, data, latest


def test_clean_storm_passes(tmp_path):
    proc, data, run_dir = _cli(tmp_path, "run", "--arch", "x86_64", "--duration", "30", "--seed", "3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("verdict: pass (exit 0)")
    for field in REQUIRED_FIELDS:
        assert field in data, field
    assert data["verdict"] == "pass" and data["exit_code"] == 0 and data["reports"] == []
    assert data["accel"] in ("kvm", "tcg") and data["accel_reason"]
    assert data["kernel"]["version"].startswith("6.1") and len(data["kernel"]["config_sha256"]) == 64
    assert data["storm"]["name"] == "swapoff-fork-mmap" and data["storm"]["seed"] == 3
    counts = data["storm"]["counts"]
    for stressor in ("swap", "hog", "fork", "mmap", "module"):
        assert stressor in counts, f"{stressor} printed no result line: {counts}"
    assert counts["swap"].get("swapoff", 0) > 0, counts["swap"]
    # Where the wall time went: the stressors ran for most of the storm's length.
    phases = counts["phases"]
    parts = ("setup_ms", "start_ms", "run_ms", "module_stop_ms", "report_ms")
    assert sum(phases[p] for p in parts) == phases["total_ms"], phases
    assert phases["start_ms"] + phases["run_ms"] >= 25_000, phases
    for name in ("console.log", "qemu-console.log", "junit.xml", "kernel.config", "qemu-cmdline.txt",
                 "build.log", "repro.sh"):
        assert (run_dir / name).is_file(), name
    assert os.access(run_dir / "repro.sh", os.X_OK)
    # Nothing lost: our log holds every byte QEMU's own chardev log holds.
    assert (run_dir / "console.log").read_bytes() == (run_dir / "qemu-console.log").read_bytes()


def test_warm_rerun_builds_nothing(tmp_path):
    proc, data, _ = _cli(tmp_path, "boot", "--arch", "x86_64")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert data["kernel"]["cached"] is True and data["image"]["cached"] is True
    assert data["durations"]["build_s"] < 60


def test_guest_crash_is_a_fail_with_the_panic_title(tmp_path):
    proc, data, run_dir = _cli(tmp_path, "run", "--arch", "x86_64", "--inject", "sysrq-crash",
                               "--duration", "10")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert data["verdict"] == "fail"
    titles = [r["title"] for r in data["reports"]]
    assert any("sysrq" in t.lower() for t in titles), titles
    assert proc.stdout.strip().splitlines()[-1].startswith("verdict: fail (exit 1)")
    assert (run_dir / "console.log").read_bytes() == (run_dir / "qemu-console.log").read_bytes()


def test_module_check_builds_the_module_against_the_built_tree(tmp_path):
    """`make module-check` for one cell: the x86_64 6.1 tree the runs above built
    (a finished tree: modpost with Module.symvers), summary and JUnit written."""
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    proc = subprocess.run([sys.executable, "-m", "harness", "module-check", "--arches", "x86_64",
                           "--kernel-versions", "6.1"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "results" / "module-check"
    (cell,) = json.loads((out / "summary.json").read_text())
    assert cell["ok"] is True and cell["tree"] == "built" and cell["arch"] == "x86_64"
    assert 'failures="0"' in (out / "junit.xml").read_text()
    assert "1/1 builds warning-free" in proc.stdout
