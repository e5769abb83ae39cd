"""The host's TSC rate, for x86 guests under TCG.

QEMU's TCG gives an x86 guest the host's own time-stamp counter (plus an
offset): the guest's TSC counts at the host's rate. A guest with no HPET or
ACPI PM timer to calibrate it against (x86_64 boots without ACPI) would time
its TSC against the emulated PIT, which fails when the host is loaded (the
vCPU thread is preempted inside the timed loop): the kernel then marks the TSC
unstable and keeps time in 4 ms jiffies. Told the rate (`tsc_early_khz=`), it
calibrates nothing, and skips the delay-loop calibration too. And since every
vCPU reads that one counter, the guest's TSCs are in step (`tsc=reliable`):
QEMU's TCG CPUs are AMD without the invariant-TSC bit, which a kernel on two
CPUs would otherwise take for unsynchronized TSCs (and keep jiffies time).
Both only where the host's own TSC is constant (cpuinfo's constant_tsc and
nonstop_tsc).

The rate is measured here against CLOCK_MONOTONIC with RDTSC run through
ctypes (ten bytes of machine code in an executable page): about 0.15 s once a
process, a few parts in a million. None where that cannot be done (not an
x86_64 host, or executable memory refused): the guest calibrates as before.
"""
from __future__ import annotations

import ctypes
import functools
import mmap
import platform
import statistics
import time
from collections.abc import Callable

# rdtsc; shl rdx, 32; or rax, rdx; ret
_RDTSC_X86_64 = bytes((0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3))
_KEEP: list[object] = []   # the executable page lives as long as the process


def _rdtsc() -> Callable[[], int]:
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_RDTSC_X86_64)
    _KEEP.append(page)
    return ctypes.CFUNCTYPE(ctypes.c_uint64)(ctypes.addressof(ctypes.c_char.from_buffer(page)))


def _sample(rdtsc: Callable[[], int], wait_s: float) -> float:
    """kHz over one wait; each end is the counter read between two clock reads."""
    t0a = time.perf_counter_ns()
    c0 = rdtsc()
    t0b = time.perf_counter_ns()
    time.sleep(wait_s)
    t1a = time.perf_counter_ns()
    c1 = rdtsc()
    t1b = time.perf_counter_ns()
    return (c1 - c0) * 2e6 / ((t1a + t1b) - (t0a + t0b))


def cpuinfo_field(*keys: str) -> str | None:
    """The value of the first /proc/cpuinfo line that starts with one of keys, or None."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(keys):
                    return line.split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    return None


def _cpu_flags() -> set[str]:
    return set((cpuinfo_field("flags") or "").split())


@functools.lru_cache(maxsize=1)
def host_tsc_khz() -> tuple[int | None, str]:
    """(the host TSC's rate in kHz, or None; why not)."""
    if platform.machine() != "x86_64":
        return None, f"not an x86_64 host ({platform.machine()})"
    flags = _cpu_flags()
    if not {"constant_tsc", "nonstop_tsc"} <= flags:
        return None, "the host's TSC does not count at a constant rate (no constant_tsc, nonstop_tsc)"
    try:
        rdtsc = _rdtsc()
    except (OSError, ValueError) as exc:
        return None, f"no executable page for RDTSC ({exc})"
    rates = [_sample(rdtsc, 0.05) for _ in range(3)]
    khz = statistics.median(rates)
    if not 100_000 <= khz <= 20_000_000 or max(rates) - min(rates) > khz / 1000:
        return None, f"the host's TSC reads no steady rate ({', '.join(f'{r:.0f}' for r in rates)} kHz)"
    return round(khz), ""
