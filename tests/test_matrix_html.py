"""The matrix page as a person sees it: rendered by headless Chromium."""
import shutil
import subprocess

import pytest

from harness.matrix import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_summary_page_renders_in_chromium(tmp_path):
    rows = [
        {"arch": "x86_64", "kernel": "6.1", "verdict": "pass", "titles": [], "accel": "tcg",
         "durations": {"total_s": 50}, "run_dir": str(tmp_path / "cells/x86_64-6.1/r")},
        {"arch": "aarch64", "kernel": "6.1", "verdict": "fail", "accel": "tcg", "durations": {"total_s": 70},
         "titles": ["possible deadlock in try_to_unuse"], "run_dir": str(tmp_path / "cells/aarch64-6.1/r")},
    ]
    page = tmp_path / "summary.html"
    page.write_text(render_html(rows, tmp_path))
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert dom.count('class="cell') == 2, dom[:2000]
    assert "possible deadlock in try_to_unuse" in dom
    assert 'href="cells/aarch64-6.1/r/console.log"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=800,400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 1000
