"""Parser speed without a kernel: `make bench`'s dense and quiet figures.

Two generated logs, each parsed by a fresh worker process
(`python -m harness.bench --parse-worker LOG`) so that its peak RSS is the
parser's own:
- report-dense: syzkaller's report cases (../shared/corpus, MMLOCK_CORPUS
  elsewhere) back to back, each case's console text extracted as
  syzkaller's report_test.go does; without the corpus, our golden cases.
- quiet: the recorded consoles of tests/data/consoles that hold no report,
  their lines interleaved and repeated.
`python -m harness.parser_bench [--mb N] [--repeat N]` prints both figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.bench_figures import DATA_DIR, _split_case, figure, loadavg
from harness.configs import REPO_ROOT
from harness.errors import HarnessError
from harness.report import parse_text
from harness.report.corpus import case_paths, load_case

CORPUS = Path(os.environ.get("MMLOCK_CORPUS") or REPO_ROOT.parent / "shared" / "corpus" / "syzkaller-linux-reports")


def _write_repeated(dest: Path, pieces: list[str], target_bytes: int) -> int:
    written = index = 0
    with open(dest, "w", encoding="utf-8", errors="surrogateescape") as handle:
        while written < target_bytes:
            piece = pieces[index % len(pieces)]
            handle.write(piece)
            written += len(piece.encode("utf-8", errors="surrogateescape"))
            index += 1
    return written


def dense_log(dest: Path, target_bytes: int, corpus: Path = CORPUS, data_dir: Path = DATA_DIR) -> dict:
    """Report cases back to back up to target_bytes; {bytes, cases, source}."""
    if corpus.is_dir():
        logs, source = [load_case(p)[1] for p in case_paths(corpus)], str(corpus)
    else:
        logs = [_split_case(p.read_text(errors="replace")) for p in sorted((data_dir / "reports").iterdir())
                if p.is_file()]
        source = str(data_dir / "reports")
    logs = [log if log.endswith("\n") else log + "\n" for log in logs if log.strip()]
    if not logs:
        raise HarnessError(f"no report cases under {source}")
    return {"bytes": _write_repeated(dest, logs, target_bytes), "cases": len(logs), "source": source}


def quiet_log(dest: Path, target_bytes: int, data_dir: Path = DATA_DIR) -> dict:
    """Report-free console lines up to target_bytes; {bytes, source}."""
    consoles = [p.read_text(errors="replace") for p in sorted((data_dir / "consoles").glob("*.log"))]
    quiet = [c for c in consoles if not parse_text(c)]
    if not quiet:
        raise HarnessError(f"no report-free console under {data_dir / 'consoles'}")
    lines = [ln + "\n" for c in quiet for ln in c.splitlines()]
    blocks = ["".join(lines[(i * 97 + k) % len(lines)] for k in range(200)) for i in range(len(lines))]
    return {"bytes": _write_repeated(dest, blocks, target_bytes), "source": str(data_dir / "consoles")}


def parse_in_worker(path: Path) -> dict:
    """{seconds, cpu_seconds, reports, max_rss_kb} of one parse in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "harness.bench", "--parse-worker", str(path)],
                          capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise HarnessError(f"parser worker failed: {proc.stderr.strip()[-300:]}") from exc


def figures(mb: int, repeat: int) -> tuple[dict[str, dict], dict]:
    """Figures (name -> bench figure) and facts about the generated logs."""
    out: dict[str, dict] = {}
    facts: dict = {}
    with tempfile.TemporaryDirectory(prefix="mmlock-bench-parser-") as tmp:
        for name, make in (("report-dense", dense_log), ("quiet", quiet_log)):
            path = Path(tmp) / f"{name}.log"
            info = make(path, mb * 1_000_000)
            speeds, cpu, rss, loads = [], [], [], []
            for _ in range(repeat):
                loads.append(loadavg())
                got = parse_in_worker(path)
                speeds.append(info["bytes"] / 1e6 / got["seconds"])
                cpu.append(info["bytes"] / 1e6 / got["cpu_seconds"])
                rss.append(got["max_rss_kb"] / 1024)
                info["reports_found"] = got["reports"]
            facts[name] = info
            size = f"{info['bytes'] / 1e6:.0f} MB"
            out[f"parser throughput, {name} log ({size})"] = figure(speeds, "MB/s", loads, "wall clock")
            out[f"parser throughput, {name} log ({size}), per CPU second"] = figure(
                cpu, "MB/s", loads, "user+system CPU time: less sensitive to other load on the machine")
            out[f"parser peak memory, {name} log ({size})"] = figure(rss, "MiB", loads,
                                                                    "whole worker process, Python included")
    return out, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.parser_bench", description=__doc__)
    parser.add_argument("--mb", type=int, default=100, help="size of each generated log (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="samples per figure (median; default 3)")
    args = parser.parse_args(argv)
    out, facts = figures(args.mb, args.repeat)
    for name, fig in out.items():
        print(f"{name}: {fig['median']} {fig['unit']}  (samples {fig['samples']}, load {fig['loadavg']})")
    print(json.dumps(facts, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
