"""The matrix summary page: one cell per arch x kernel, coloured by verdict,
linking to each cell's console log; guest text escaped."""
import os

from harness.matrix import COLOURS, default_jobs, last_stage, render_html


def test_summary_html(tmp_path):
    run_dir = tmp_path / "cells" / "x86_64-6.1" / "run1"
    rows = [
        {"arch": "x86_64", "kernel": "6.1", "verdict": "pass", "titles": [], "accel": "tcg",
         "durations": {"total_s": 50}, "run_dir": str(run_dir)},
        {"arch": "aarch64", "kernel": "6.1", "verdict": "fail", "accel": "tcg", "durations": {"total_s": 70},
         "titles": ["possible deadlock in try_to_unuse<script>\x1b[31m"], "run_dir": str(tmp_path / "a")},
    ]
    page = render_html(rows, tmp_path)
    assert page.count("<td class='cell") == 2
    assert COLOURS["pass"] in page and COLOURS["fail"] in page
    assert "href='cells/x86_64-6.1/run1/console.log'" in page
    assert "try_to_unuse&lt;script&gt;" in page and "\x1b" not in page and "<script>" not in page
    assert page.index("aarch64") < page.index("x86_64"), "rows sorted by arch"


def test_default_jobs_is_one_per_core_within_memory():
    assert default_jobs(cores=8, mem_gb=64) == 8, "cores bound it"
    assert default_jobs(cores=8, mem_gb=12) == 4, "3 GB per cell bound it"
    assert default_jobs(cores=8, mem_gb=2) == 1, "never fewer than one"
    assert default_jobs(cores=1, mem_gb=0.5) == 1
    assert 1 <= default_jobs() <= (os.cpu_count() or 1), "this host: within its cores"


def test_progress_names_the_stage_a_running_cell_is_in(tmp_path):
    log = tmp_path / "harness.log"
    assert last_stage(log) == "", "no log yet: no stage"
    log.write_text("[07:55:07] run 1: arch=riscv64\n[07:55:07] build: kernel\n"
                   "build: 71 objects compiled\n" + "x" * 20000 + "\n[08:01:12] boot: qemu-system-riscv64\n"
                   "OpenSBI v1.2\n")
    assert last_stage(log) == "boot: qemu-system-riscv64"
    log.write_text("[07:55:07] build: kernel\nbuild: 71 objects compiled\nbuild: 90 objects compiled\n")
    assert last_stage(log) == "build: kernel (90 objects compiled)"


def test_ci_workflow_covers_every_arch_and_kernel_version():
    """The CI matrix is the same cross product `make matrix` knows: a new arch
    YAML or kernel version without a CI job is caught here."""
    from pathlib import Path

    import yaml

    from harness.configs import arch_names
    from harness.kernel.source import KNOWN_VERSIONS
    workflow = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "matrix.yml"
    cross = yaml.safe_load(workflow.read_text())["jobs"]["boot-test"]["strategy"]["matrix"]
    assert sorted(cross["arch"]) == sorted(arch_names())
    assert sorted(cross["kernel_version"]) == sorted(KNOWN_VERSIONS)


def test_progress_lines_from_parallel_cells_never_run_together(capsys):
    """Cells start from worker threads while the main thread reports results:
    each progress line must reach stderr whole, newline included."""
    import sys
    import threading

    from harness.matrix import _say

    def worker(n: int) -> None:
        for i in range(300):
            _say(f"matrix: cell {n} line {i}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 6 * 300
    assert all(line.startswith("matrix: cell ") and line.count("matrix:") == 1 for line in lines)
