"""`make bench`: how fast and how thorough the harness is on this machine.

A composition: kernel builds go through harness.kernel.build, storms through
the boot-test's RunRequest in a child `harness run-request` (ours, end to end)
and run.execute (Debian's stress-ng as a yardstick),
parsing through harness.report. Each figure is a median over REPEAT
samples with the load average at its start; machine facts sit beside them
in results/bench/bench.json. Numbers never fail the bench; a figure that
could not be measured does (exit 3).
"""
from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness import bench_builds
from harness.bench_builds import repeat_samples
from harness.bench_figures import (  # noqa: F401  (bench.X: the names its tests and docs use)
    DATA_DIR,
    HEADLINE,
    META_KEYS,
    STRESS_NG_STRESSORS,
    THOROUGHNESS,
    YARDSTICKS,
    _fmt,
    _split_case,
    comparison,
    cpu_model,
    figure,
    generate_log,
    host_probe,
    intensity,
    loadavg,
    markdown_table,
    per_minute,
    previous_run,
    ratio,
    render_table,
    rows,
    storm_seconds,
    thoroughness,
)
from harness.configs import REPO_ROOT
from harness.errors import EXIT_INFRA, HarnessError
from harness.host import run_appending
from harness.plan import RunRequest
from harness.record import RunRecord
from harness.results import results_root, write_json
from harness.yardstick import parse_stress_ng_yaml  # noqa: F401  (bench's own name for it, in its tests)

_KERNEL_BUILT_RE = re.compile(r"build: kernel built \((\d+(?:\.\d+)?)s(?:, (\d+) CPU s)?\)")


def _stage(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class Bench:
    def __init__(self, template: RunRequest, repeat: int, cold: bool, log_mb: int, out_dir: Path) -> None:
        """@template: the command's run options (arch, kernel version, profile and what the
        environment set); every run of the bench is a request made from it."""
        self.template = template
        self.arch, self.kernel_version, self.profile = template.arch, template.kernel_version, template.profile
        self.repeat, self.cold, self.log_mb, self.out_dir = repeat, cold, log_mb, out_dir
        self.runs_dir = out_dir / "runs"
        self.result: dict = {"arch": self.arch, "repeat": repeat, "cold": cold, "profile": self.profile,
                             "kernel_version": self.kernel_version, "figures": {}, "notes": [], "unmeasured": [],
                             "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    # -- bookkeeping
    def put(self, key: str, fig: dict) -> None:
        self.result["figures"][key] = fig
        if fig.get("median") is None:
            self.result["unmeasured"].append(key)
        write_json(self.out_dir / "bench.json", self.result)

    def failed(self, key: str, why: str) -> None:
        self.result["unmeasured"].append(f"{key}: {why}")
        _stage(f"could not measure {key}: {why}")
        write_json(self.out_dir / "bench.json", self.result)

    # -- runs
    def boot_test_request(self, label: str, cache_dir: str | None = None) -> RunRequest:
        return replace(self.template, label="run", results_dir=str(self.runs_dir / label), cache_dir=cache_dir)

    def _boot_test(self, label: str, cache_dir: str | None = None) -> tuple[float, RunRecord, str]:
        """What `make boot-test` runs (the CLI's run with its defaults), end to end in a child
        `harness run-request` of its own: the wall time includes the interpreter's start, as a
        person's would. @cache_dir: a cache of its own (the cold sample)."""
        request = self.boot_test_request(label, cache_dir)
        run_root = Path(str(request.results_dir))
        run_root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        returncode, output = run_appending(
            [sys.executable, "-m", "harness", "run-request", json.dumps(request.to_json())], run_root / "harness.log",
            cwd=REPO_ROOT)
        wall = time.monotonic() - started
        verdict = run_root / "latest" / "verdict.json"
        record = RunRecord.load(verdict) if verdict.is_file() else RunRecord(reason=f"run exited {returncode}")
        return wall, record, output

    def _yardstick_run(self, storm: str, accel: str, stress_ng: bool) -> tuple[RunRecord, dict[str, int], str]:
        """Another storm in the same guest (kernel, image, accel) for the same time as ours;
        with stress_ng, Debian's stress-ng run as a person runs it (harness.yardstick): its
        bogo ops, and why its swap stressor's work does not count ("" when it does)."""
        from harness import yardstick
        from harness.run import execute

        request = replace(self.template, storm=storm, accel=accel, label=f"bench-{storm}",
                          results_dir=str(self.runs_dir / storm))
        if not stress_ng:
            return execute(request).record, {}, ""
        run = yardstick.run(request, storm)
        self.result.setdefault("yardstick_swap", {}).setdefault(storm, []).append(
            {"run_id": run.record.run_id, **run.evidence()})
        return run.record, run.bogo, run.swap_problem()

    def storms(self, accels: list[str]) -> None:
        ours_runs: list[tuple[float, RunRecord, list[float]]] = []
        others: dict[str, list[tuple[RunRecord, dict[str, int], list[float]]]] = {
            label: [] for label, _, _ in YARDSTICKS}
        for rep in range(self.repeat):
            _stage(f"storm {rep + 1}/{self.repeat}: boot-test (ours, harness run-request)")
            load = loadavg()
            wall, data, _ = self._boot_test("ours")
            if data.storm_facts.ended_how == "completed":
                ours_runs.append((wall, data, load))
            else:
                _stage(f"ours: run did not complete ({data.verdict}: {data.reason})")
            for label, storm, stress_ng in YARDSTICKS:
                _stage(f"storm {rep + 1}/{self.repeat}: {label} in the same guest")
                load = loadavg()
                try:
                    sdata, bogo, problem = self._yardstick_run(storm, data.accel or "auto", stress_ng)
                except HarnessError as exc:
                    _stage(f"{label} run failed: {exc}")
                    continue
                if problem:
                    # A yardstick that did not swap is a crippled peer: no figure, no ratio.
                    _stage(f"{label}: not counted: {problem}")
                    self.result["notes"].append(f"{label} run {sdata.run_id} not counted: {problem}")
                elif sdata.storm_facts.ended_how == "completed":
                    others[label].append((sdata, bogo, load))
                else:
                    _stage(f"{label}: run did not complete ({sdata.verdict}: {sdata.reason})")
        theirs = others["stress-ng"]
        self.result["runs"] = {"ours": [d.run_id for _, d, _ in ours_runs],
                               **{label: [d.run_id for d, _, _ in runs] for label, runs in others.items()}}
        if ours_runs:
            self.result["real_storm_log"] = str(self.runs_dir / "ours" / ours_runs[0][1].run_id / "console.log")
        loads = [x[2] for x in ours_runs]
        self.put("make boot-test, warm (end to end)", figure([w for w, _, _ in ours_runs], "s", loads,
                 f"build (cached) + boot + {storm_seconds(ours_runs[0][1]) if ours_runs else '?'} s storm + verdict"))
        boots: dict[str, list] = {}
        for _, data, load in ours_runs:
            boots.setdefault(str(data.accel), []).append((data.durations.boot_s, load))
        # (not stress-ng's boots: its initramfs is 33 MB bigger)
        for accel in accels:
            if accel not in boots:
                boots[accel] = self._boot_only(accel)
        for accel, pairs in boots.items():
            self.put(f"boot to ready ({accel})", figure([p[0] for p in pairs], "s", [p[1] for p in pairs],
                                                       "QEMU start to the guest's ready marker"))
        # intensity: our per-stressor ops per guest minute, and swapoff cycles
        per_stressor: dict[str, list[float | None]] = {}
        swapoffs: list[float | None] = []
        for _, data, _ in ours_runs:
            for name, ops in intensity(data).items():
                if "ops" in ops:
                    per_stressor.setdefault(name, []).append(ops["ops"])
            swap = data.storm_facts.counts.get("swap", {})
            if "swapoff" in swap:
                seconds = swap.get("duration_ms", 0) / 1000 or storm_seconds(data)
                swapoffs.append(per_minute(swap["swapoff"], seconds))
        for name, values in per_stressor.items():
            self.put(f"ours: {name} ops / guest min", figure(values, "ops/min", loads,
                     "+".join(HEADLINE[name.split('.')[0]])))
        self.put("ours: swapoff cycles / guest min", figure(swapoffs, "/min", loads))
        self.result["intensity_detail"] = [intensity(d) for _, d, _ in ours_runs]
        # thoroughness: ours (the default storm), the seed-paths storm, stress-ng's
        for label, runs, lds in (("ours", [d for _, d, _ in ours_runs], loads),
                                 *((lb, [d for d, _, _ in rs], [x[2] for x in rs]) for lb, rs in others.items())):
            th = [thoroughness(d) for d in runs]
            for what, per, key, unit in THOROUGHNESS:
                self.put(f"{label}: {what} {per}", figure([t[key] for t in th], unit, lds))
        for label in ("stress-ng", "stress-ng vm class"):
            bogo_rows: dict[str, list[float | None]] = {}
            for data, bogo, _ in others[label]:
                for name, count in bogo.items():
                    bogo_rows.setdefault(name, []).append(per_minute(count, storm_seconds(data)))
            for name, values in sorted(bogo_rows.items()):
                self.put(f"{label}: {name} bogo ops / guest min", figure(values, "ops/min",
                                                                          [x[2] for x in others[label]]))
            if not any(v for vals in bogo_rows.values() for v in vals):
                self.failed(f"{label} bogo ops", "stress-ng reported no (or only zero) bogo ops")
            if label == "stress-ng":
                for name in STRESS_NG_STRESSORS:
                    if theirs and name not in bogo_rows:
                        self.result["notes"].append(f"stress-ng's {name} stressor reported no metrics")
        self.result["comparison"] = comparison(self.result["figures"])
        self.result["targets"] = {"ours": [d.coverage.targets for _, d, _ in ours_runs],
                                  **{label: [d.coverage.targets for d, _, _ in runs]
                                     for label, runs in others.items()}}
        write_json(self.out_dir / "bench.json", self.result)

    def _boot_only(self, accel: str) -> list:
        """Boots alone (no storm) under an accelerator ours did not use, in this process."""
        from harness.run import execute

        pairs = []
        request = replace(self.template, accel=accel, storm_enabled=False, label="boot",
                          results_dir=str(self.runs_dir / f"boot-{accel}"))
        for _ in range(self.repeat):
            load = loadavg()
            try:
                record = execute(request).record
            except HarnessError as exc:
                _stage(f"boot ({accel}) failed: {exc}")
                continue
            if record.kernel and record.kernel.release:
                pairs.append((record.durations.boot_s, load))
        return pairs

    # -- cold
    def cold_boot_test(self) -> None:
        """The boot-test with an empty cache (ccache included): cold e2e and cold kernel build."""
        scratch = Path(tempfile.mkdtemp(prefix="mmlock-bench-cold-", dir=Path.home() / ".cache"))
        try:
            _stage(f"cold: boot-test with a cache of its own, {scratch} (a full kernel build)")
            load = loadavg()
            wall, data, output = self._boot_test("cold", cache_dir=str(scratch))
            match = _KERNEL_BUILT_RE.search(output)
            self.put("kernel build, cold (empty ccache + cache)", figure(
                [float(match.group(1))] if match else [], "s", [load],
                "build_kernel alone (the source unpack and image build are not in it)"))
            self.put("kernel build, cold, CPU (user+sys)", figure(
                [float(match.group(2))] if match and match.group(2) else [], "CPU s", [load],
                "every process of the cold build: less moved by a noisy host than the wall time"))
            ok = data.storm_facts.ended_how == "completed"
            self.put("make boot-test, cold (end to end)", figure([wall] if ok else [], "s", [load],
                     "source unpack + kernel + image (dropbear too) + boot + storm"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # -- parser
    def parser(self) -> None:
        with tempfile.TemporaryDirectory(prefix="mmlock-bench-log-") as tmp:
            path = Path(tmp) / "big-console.log"
            _stage(f"parser: generating a {self.log_mb} MB console log")
            info = generate_log(path, self.log_mb * 1_000_000)
            self.result["generated_log"] = info
            speeds, rss, loads = [], [], []
            for _ in range(self.repeat):
                loads.append(loadavg())
                proc = subprocess.run([sys.executable, "-m", "harness.bench", "--parse-worker", str(path)],
                                      capture_output=True, text=True, check=False, cwd=REPO_ROOT)
                try:
                    got = json.loads(proc.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    self.failed("parser throughput", f"worker failed: {proc.stderr.strip()[-300:]}")
                    return
                speeds.append(info["bytes"] / 1e6 / got["seconds"])
                rss.append(got["max_rss_kb"] / 1024)
                self.result["generated_log"]["reports_found"] = got["reports"]
            self.put(f"parser throughput ({info['bytes'] / 1e6:.0f} MB log)", figure(speeds, "MB/s", loads))
            self.put("parser peak memory (ru_maxrss)", figure(rss, "MiB", loads,
                     "whole worker process, Python included"))
        from harness import parser_bench

        try:
            figures, facts = parser_bench.figures(100, self.repeat)
        except HarnessError as exc:
            self.failed("parser throughput, report-dense and quiet logs", str(exc))
        else:
            self.result["parser_logs"] = facts
            for key, fig in figures.items():
                self.put(key, fig)
        real = self.result.get("real_storm_log")
        if real and Path(real).is_file():
            from harness.report import parse_file

            def once() -> float:
                started = time.monotonic()
                parse_file(real)
                return (time.monotonic() - started) * 1000
            samples, loads = repeat_samples(self.repeat, once)
            size = Path(real).stat().st_size
            self.put(f"parse a real storm console.log ({size / 1e3:.0f} KB)", figure(
                samples, "ms", loads, "our first storm's console.log (the storm's own output goes over ssh)"))
        else:
            self.failed("parse a real storm console.log", "no storm run produced a console.log")

    def machine(self) -> dict:
        from harness import qemu
        from harness.configs import load_arch

        arch = load_arch(self.arch)
        facts = {"cores": os.cpu_count(), "memory_mb": _memory_mb(), "loadavg_start": loadavg(),
                 "host": f"{platform.system()} {platform.release()} {platform.machine()}",
                 "python": platform.python_version(), "qemu_binary": arch.qemu_binary,
                 "qemu_version": qemu.qemu_version(arch.qemu_binary) if shutil.which(arch.qemu_binary) else "",
                 "accels": ["tcg"], "kvm": "", "cpu_model": cpu_model(), "probe_cpu_s_start": host_probe()}
        self.result["machine"] = facts
        return facts


def run_bench(template: RunRequest, repeat: int, cold: bool, log_mb: int) -> int:
    from harness import qemu
    from harness.configs import load_arch

    out_dir = results_root() / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = previous_run(out_dir / "bench.json", template.arch)
    bench = Bench(template, repeat, cold, log_mb, out_dir)
    if previous:   # the table shows each figure beside the run this one replaces
        bench.result["previous"] = previous
    arch = template.arch
    facts = bench.machine()
    steps: list[tuple[str, Callable[[], object]]] = []
    kernel_box: list = []

    def warm() -> None:
        _stage("kernel build, warm")
        kernel_box.append(bench_builds.build_warm(bench))
        accel, reason = qemu.choose_accel("auto", load_arch(arch), kernel_box[0].image)
        facts["kvm"] = reason
        if accel == "kvm":
            facts["accels"].append("kvm")

    steps.append(("kernel build, warm", warm))
    def rebuild() -> None:
        _stage("kernel rebuild after a touch")
        bench_builds.build_incremental(bench, kernel_box[0])

    steps.append(("kernel rebuild", rebuild))
    def second_tree() -> None:
        _stage("kernel build, second tree of the same source")
        bench_builds.build_second_tree(bench, kernel_box[0])

    steps.append(("second tree", second_tree))
    steps.append(("storms", lambda: bench.storms(facts["accels"])))
    steps.append(("parser", bench.parser))
    if cold:
        steps.append(("cold", bench.cold_boot_test))
    for name, step in steps:
        try:
            step()
        except (HarnessError, OSError, IndexError, KeyError) as exc:
            bench.failed(name, f"{type(exc).__name__}: {exc}")
    facts["loadavg_end"] = loadavg()
    facts["probe_cpu_s_end"] = host_probe()
    if not cold:
        bench.result["notes"].append("cold figures skipped (BENCH_COLD=0)")
    write_json(out_dir / "bench.json", bench.result)
    print(render_table(bench.result))
    print(f"bench: {out_dir / 'bench.json'}")
    return EXIT_INFRA if bench.result["unmeasured"] else 0


def _parse_worker(path: str) -> None:
    from harness.report import parse_file

    started, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    reports = parse_file(path)
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "reports": len(reports),
                      "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu.ru_utime - cpu.ru_stime,
                      "max_rss_kb": usage.ru_maxrss}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--parse-worker":
        _parse_worker(sys.argv[2])
    else:
        print("usage: python -m harness bench (this module's own entry is the parser worker)", file=sys.stderr)
        sys.exit(2)
