"""The judging stage of a run: the console log parsed for kernel reports, their frames
and a hung guest's vCPU pcs named in this run's vmlinux, and the verdict."""
from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness.binutils import locate, symbolize
from harness.build_stage import Built
from harness.configs import Arch
from harness.record import Draft, Symbolized
from harness.report import parse_file
from harness.timeline import first_report_s
from harness.verdict import Ending, Verdict, decide


def judge(console_log: Path, ending: Ending, built: Built, arch: Arch, draft: Draft,
          enter: Callable[[str], None] = lambda stage: None) -> Verdict:
    """Reports in console.log and how the run ended -> the verdict; console.symbolized.log
    beside the log when there are reports."""
    where = locate_pcs(draft, built.kernel.vmlinux, arch)
    if where:
        ending = dataclasses.replace(ending, note=f"{ending.note}; vCPUs at {where}".lstrip("; "))
    enter("parse")
    reports = parse_file(console_log)
    if reports:
        draft.storm(first_report_s=first_report_s(console_log.read_text(errors="replace"), reports))
        symbolize_log(console_log, built.kernel.vmlinux, {"mmlock": built.guest.module}, arch, draft)
    enter("verdict")
    return decide(reports, ending)


def symbolize_log(console_log: Path, vmlinux: Path, modules: dict[str, Path], arch: Arch, draft: Draft) -> None:
    """Frames resolved against this run's vmlinux and module, beside the console log (best effort)."""
    out = console_log.parent / "console.symbolized.log"
    try:
        annotated = symbolize(str(console_log), str(vmlinux), str(out),
                              addr2line=f"{arch.cross_compile}addr2line",
                              modules={name: str(path) for name, path in modules.items()})
        draft.set(symbolized=Symbolized(file=out.name, frames=annotated))
    except (OSError, subprocess.SubprocessError) as exc:
        draft.set(symbolized=Symbolized(error=str(exc)))


def locate_pcs(draft: Draft, vmlinux: Path, arch: Arch) -> str:
    """Name the dumped vCPU pcs (the record's dump.pcs) in vmlinux: dump.where per vCPU,
    one entry per sample; returns "cpu0 f, cpu1 g" of the last sample for a verdict's
    reason, "" when there is nothing to say."""
    samples = draft.record.dump.pcs if draft.record.dump else None
    if not samples:
        return ""
    try:
        names = locate(str(vmlinux), [int(pc, 16) for sample in samples for pc in sample],
                       addr2line=f"{arch.cross_compile}addr2line")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        draft.dump(where_error=str(exc))
        return ""
    cpus = max(len(sample) for sample in samples)
    where = [[names.get(int(sample[cpu], 16), f"{sample[cpu]} (not kernel text)") if cpu < len(sample)
              else "?" for sample in samples] for cpu in range(cpus)]
    draft.dump(where=where)
    return ", ".join(f"cpu{cpu} {places[-1].split('+')[0].split(' ')[0]}" for cpu, places in enumerate(where))
