"""make bench's pure parts: per-minute math, tables, the generated log. No QEMU."""
from __future__ import annotations

from pathlib import Path

from harness import bench
from harness.record import RunRecord
from harness.report import parse_file

DATA = RunRecord.from_json({
    "storm": {"duration_s": 30, "counts": {
        "swap": {"areas": 3, "swapon": 8, "swapoff": 6, "swapoff_ms": 5949, "errors": 0, "seed": 1001,
                 "duration_ms": 24000},
        "fork": {"workers": 2, "mb": 33, "forks": 30, "vforks": 10, "clones": 5, "clone_vm": 5, "kills": 3},
        "module": {"notifier_register": 100, "gup_calls": 50, "injected": "none"},
    }},
    "lock_coverage": {"targets": {"mmap_lock": {"acquisitions": 900, "contentions": 3},
                                  "swap_lock": {"acquisitions": 100, "contentions": 0}},
                      "new_dependency_chains": 150, "classes_acquired": 412},
})

STRESS_NG_YAML = """---
system-info:
      stress-ng-version: 0.15.06
      cpus: 2

metrics:
    - stressor: fork
      bogo-ops: 188
      wall-clock-time: 20.116774

    - stressor: mremap
      bogo-ops: 9
      nanosecs-per-mremap-call: 14526902.018367
"""


def test_per_minute():
    assert bench.per_minute(30, 30) == 60.0
    assert bench.per_minute(1, 90) == 0.67
    assert bench.per_minute(5, 0) is None


def test_intensity_uses_each_stressors_own_duration_and_skips_settings():
    got = bench.intensity(DATA)
    assert got["swap"]["swapoff"] == 15.0            # 6 in 24 s of duration_ms
    assert got["swap"]["ops"] == 35.0                # swapon + swapoff
    assert "areas" not in got["swap"] and "seed" not in got["swap"] and "swapoff_ms" not in got["swap"]
    assert got["fork"]["ops"] == 100.0               # (30+10+5+5) in the storm's 30 s
    assert "workers" not in got["fork"] and got["fork"]["kills"] == 6.0
    assert got["module"]["ops"] == 300.0 and "injected" not in got["module"]


def test_thoroughness_per_guest_minute_and_ratio():
    got = bench.thoroughness(DATA)
    assert got == {"chains_per_min": 300.0, "acquisitions_per_min": 2000.0, "classes": 412.0}
    assert bench.thoroughness(RunRecord.from_json({"storm": {"duration_s": 30}})) == {"chains_per_min": None,
                                                                "acquisitions_per_min": None, "classes": None}
    assert bench.ratio(300.0, 150.0) == 2.0
    assert bench.ratio(300.0, 0) is None and bench.ratio(None, 3.0) is None


def test_stress_ng_yaml_bogo_ops():
    assert bench.parse_stress_ng_yaml(STRESS_NG_YAML) == {"fork": 188, "mremap": 9}
    assert bench.parse_stress_ng_yaml("") == {}


def test_figure_is_a_median_with_the_load_beside_it():
    fig = bench.figure([3.0, 1.0, None, 2.0], "s", [[1.0, 2.0, 3.0]])
    assert fig["median"] == 2.0 and fig["n"] == 3 and fig["loadavg"] == [[1.0, 2.0, 3.0]]
    assert bench.figure([], "s", [])["median"] is None


def test_the_host_probe_times_a_fixed_loop_and_the_table_shows_it():
    first, second = bench.host_probe(), bench.host_probe()
    assert first is not None and second is not None and 0 < first < 60 and 0 < second < 60
    result = {"date": "2026-12-08T02:00:00Z", "arch": "x86_64", "repeat": 1, "figures": {},
              "machine": {"cores": 2, "cpu_model": "AMD EPYC", "probe_cpu_s_start": 0.61,
                          "probe_cpu_s_end": 1.2}}
    head = bench.render_table(result).splitlines()[1]
    assert head == "cpu=AMD EPYC  probe (fixed Python loop) 0.61 CPU s at the start, 1.20 at the end"
    assert "probe" not in bench.render_table({"figures": {}, "machine": {"cores": 2}})


def test_tables_show_every_figure_with_its_load_and_what_was_not_measured():
    result = {"date": "2026-11-23T07:00:00Z", "arch": "x86_64", "repeat": 3,
              "machine": {"cores": 2, "memory_mb": 24000, "accels": ["tcg"], "qemu_version": "7.2.0"},
              "figures": {"boot to ready (tcg)": bench.figure([30.0, 40.0, 35.0], "s",
                                                              [[6.8, 9.1, 9.5], [7.5, 9.0, 9.4]]),
                          "parser throughput": bench.figure([12345.6], "MB/s", [[1.0, 1.0, 1.0]])},
              "comparison": bench.comparison({
                  "ours: new lock dependency chains / guest min": bench.figure([1671.0], "/min", []),
                  "stress-ng: new lock dependency chains / guest min": bench.figure([1110.0], "/min", []),
                  "seed-paths: distinct lock classes acquired in the storm": bench.figure([300.0], "classes", []),
                  "ours: distinct lock classes acquired in the storm": bench.figure([450.0], "classes", [])}),
              "notes": ["cold figures skipped (BENCH_COLD=0)"], "unmeasured": ["x: why"]}
    text = bench.render_table(result)
    lines = text.splitlines()
    assert "cores=2" in lines[0] and "accel=tcg" in lines[0] and "repeat=3" in lines[0]
    boot = next(line for line in lines if line.startswith("boot to ready (tcg)"))
    assert "35.00" in boot and " s " in boot and "6.8/9.1/9.5 .. 7.5" in boot
    assert "12,346" in text
    assert "ours / stress-ng, new lock dependency chains: 1,671 / 1,110 = 1.51x" in text
    assert "ours / seed-paths, distinct lock classes acquired: 450 / 300 = 1.50x" in text
    assert "ours / stress-ng vm class" not in text, "a yardstick that was not run has no line"
    assert result["comparison"]["target-lock acquisitions"] == {
        "ours": None, "seed-paths": None, "ours_over_seed-paths": None, "stress-ng": None,
        "ours_over_stress-ng": None, "stress-ng vm class": None, "ours_over_stress-ng_vm_class": None}
    assert "note: cold figures skipped" in text and "NOT MEASURED: x: why" in text
    md = bench.markdown_table(result).splitlines()
    assert md[0].startswith("| figure |") and md[2].startswith("| boot to ready (tcg) | 35.00 | s | 3 |")


def test_the_table_shows_each_figure_beside_its_target_and_the_previous_run(tmp_path: Path):
    result = {"date": "2026-12-07T12:00:00Z", "arch": "x86_64", "repeat": 1, "machine": {},
              "figures": {"kernel build, cold (empty ccache + cache)": bench.figure([292.5], "s", []),
                          "boot to ready (tcg)": bench.figure([3.4], "s", []),
                          "ours: swapoff cycles / guest min": bench.figure([40.0], "/min", [])}}
    old = tmp_path / "bench.json"
    old.write_text(__import__("json").dumps({"arch": "x86_64", "date": "2026-12-02T10:00:00Z", "figures": {
        "kernel build, cold (empty ccache + cache)": bench.figure([424.0], "s", [])}}))
    result["previous"] = bench.previous_run(old, "x86_64")
    lines = bench.render_table(result).splitlines()
    assert "target" in lines[1] and "previous (2026-12-02)" in lines[1]
    cold = next(line for line in lines if line.startswith("kernel build, cold"))
    assert "<= 300: met" in cold and cold.rstrip().endswith(" 424")
    boot = next(line for line in lines if line.startswith("boot to ready"))
    assert "<= 3: not met" in boot and boot.rstrip().endswith("-")
    assert bench.previous_run(old, "aarch64") == {} and bench.previous_run(tmp_path / "none.json", "x86_64") == {}


def test_generated_log_has_the_size_asked_for_and_real_reports(tmp_path: Path):
    path = tmp_path / "big.log"
    info = bench.generate_log(path, 2_000_000)
    size = path.stat().st_size
    assert size == info["bytes"] and 2_000_000 <= size < 2_100_000
    text = path.read_text()
    assert "TITLE:" not in text, "the golden files' headers are not console text"
    reports = parse_file(path)
    kinds = {r.kind for r in reports}
    assert info["reports_inserted"] > 40
    assert {"lockdep", "hang", "warning", "bug"} <= kinds, kinds


def test_generated_log_is_deterministic(tmp_path: Path):
    bench.generate_log(tmp_path / "a", 300_000)
    bench.generate_log(tmp_path / "b", 300_000)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_every_headline_key_is_one_its_stressor_prints():
    """A headline key the stressor does not print would count 0 forever, silently."""
    root = Path(bench.REPO_ROOT)
    for mode, keys in bench.HEADLINE.items():
        if mode == "module":
            source = (root / "guest/module/mmlock.c").read_text()
        elif mode in ("zram", "zswap"):
            source = (root / "guest/init/storm-run").read_text()
        else:
            source = (root / f"guest/stressors/{mode}.c").read_text()
        missing = [k for k in keys if f'"{k}"' not in source and f"{k}=" not in source]
        assert not missing, f"{mode}: {missing}"


def test_parser_bench_logs_are_dense_and_quiet(tmp_path: Path):
    from harness import parser_bench

    dense = parser_bench.dense_log(tmp_path / "dense.log", 300_000, corpus=tmp_path / "no-corpus")
    assert dense["source"].endswith("reports") and 300_000 <= dense["bytes"] < 400_000
    assert len(parse_file(tmp_path / "dense.log")) >= 10
    quiet = parser_bench.quiet_log(tmp_path / "quiet.log", 300_000)
    assert 300_000 <= quiet["bytes"] < 400_000
    assert parse_file(tmp_path / "quiet.log") == [], "the quiet log holds no report"
    got = parser_bench.parse_in_worker(tmp_path / "quiet.log")
    assert got["reports"] == 0 and got["cpu_seconds"] > 0 and got["max_rss_kb"] > 0


def test_the_boot_test_sample_is_the_commands_request_not_a_make_child(tmp_path):
    from harness.plan import RunRequest

    template = RunRequest(arch="aarch64", kernel_version="6.12", profile="kasan", ssh=False)
    sample = bench.Bench(template, 1, True, 1, tmp_path)
    warm, cold = sample.boot_test_request("ours"), sample.boot_test_request("cold", "/scratch")
    assert (warm.arch, warm.kernel_version, warm.profile, warm.ssh, warm.label) == (
        "aarch64", "6.12", "kasan", False, "run")
    assert warm.results_dir == str(tmp_path / "runs" / "ours") and warm.cache_dir is None
    assert cold.cache_dir == "/scratch" and RunRequest.from_json(cold.to_json()) == cold


def test_a_sample_reads_only_the_text_its_own_run_appended_to_the_kept_log(tmp_path):
    """The cold sample's harness.log is kept run after run: the build line searched for is
    this run's, not an earlier bench's (which once gave yesterday's 302.6 s as today's)."""
    import sys

    from harness.host import run_appending

    log = tmp_path / "harness.log"
    log.write_text("[12:27:04] build: kernel built (302.6s); guest image\n")
    code, text = run_appending([sys.executable, "-c", "print('build: kernel built (349.6s, 608 CPU s)')"], log)
    assert code == 0 and text == "build: kernel built (349.6s, 608 CPU s)\n"
    match = bench._KERNEL_BUILT_RE.search(text)
    assert match and match.groups() == ("349.6", "608")
    assert log.read_text().count("kernel built") == 2   # the log itself keeps both
    code, text = run_appending([sys.executable, "-c", "import sys; sys.exit(3)"], log)
    assert (code, text) == (3, "")
