"""End to end on a cross arch: aarch64 built with Debian's cross compiler,
booted under TCG on qemu-system-aarch64's virt machine, stormed."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent


def test_aarch64_clean_storm_passes(tmp_path):
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "results"))
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--arch", "aarch64", "--duration", "30"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "results" / "latest" / "verdict.json").read_text())
    assert data["arch"] == "aarch64" and data["accel"] == "tcg"
    assert "arch=aarch64" in (tmp_path / "results" / "latest" / "console.log").read_text(errors="replace")
    counts = data["storm"]["counts"]
    for stressor in ("swap", "hog", "fork", "mmap", "module"):
        assert stressor in counts, counts
    assert counts["module"].get("notifier_register", 0) > 0, counts["module"]
    assert data["lock_coverage"]["targets"]["mm_all_locks_mutex"]["acquisitions"] > 0
