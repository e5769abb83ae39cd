"""Guest-side C code: the mmstress stressor binary and the mmlock module.

Builds mmstress for the host (and for aarch64 when the cross compiler is
installed), runs the harmless modes on the host and checks their KTAP
result lines, and builds the module against the kernel O= tree named by
MMLOCK_KERNEL_BUILD.  Swap mode needs root and real block devices, so on
the host only its argument errors are exercised.  The breadth modes run on
the host where they can: procwalk on the test's own processes (and, as
root, alone in a new PID namespace), remote, locked, thp and ksm with
--no-tune (the host's khugepaged and ksmd knobs are not ours to change);
compact runs without privileges and must say that it needs root (or name
CONFIG_COMPACTION where the host lacks it).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

# Every test here compiles guest userland (mmstress, or the module against a kernel
# tree) before it runs anything: e2e (make test), not make unit.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
STRESSORS = ROOT / "guest" / "stressors"
MODULE = ROOT / "guest" / "module"
MODES = ("swap", "hog", "fork", "mmap", "procwalk", "remote", "locked", "thp", "ksm", "compact")

KTAP_RE = re.compile(r'^(ok|not ok) 1 (\S+) # (.*)$')
KV_RE = re.compile(r'(\w+)=("[^"]*"|\S+)')


def make_mmstress(out: Path, cross_compile: str = "") -> subprocess.CompletedProcess:
    cmd = ["make", "-j4", "-C", str(STRESSORS), f"OUT={out}"]
    if cross_compile:
        cmd.append(f"CROSS_COMPILE={cross_compile}")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def elf_info(path: Path) -> tuple[int, bool]:
    """(e_machine, has PT_INTERP) of an ELF file, 32 or 64 bit."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file"
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    machine = struct.unpack_from(endian + "H", data, 18)[0]
    if is64:
        phoff = struct.unpack_from(endian + "Q", data, 32)[0]
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 54)
    else:
        phoff = struct.unpack_from(endian + "I", data, 28)[0]
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 42)
    types = [struct.unpack_from(endian + "I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return machine, 3 in types  # PT_INTERP == 3


def assert_clean_build(proc: subprocess.CompletedProcess, binary: Path) -> None:
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stderr == "", f"build wrote to stderr (warnings?):\n{proc.stderr}"
    assert binary.is_file()


def parse_ktap(stdout: str) -> tuple[str, str, dict[str, str]]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"want exactly one output line, got: {stdout!r}"
    match = KTAP_RE.match(lines[0])
    assert match, f"not a KTAP result line: {lines[0]!r}"
    verdict, mode, rest = match.groups()
    values = {k: v.strip('"') for k, v in KV_RE.findall(rest)}
    return verdict, mode, values


@pytest.fixture(scope="module")
def mmstress(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mmstress-host")
    proc = make_mmstress(out)
    binary = out / "mmstress"
    assert_clean_build(proc, binary)
    return binary


def run(binary: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def test_host_build_is_static_and_leaves_source_clean(mmstress):
    _, has_interp = elf_info(mmstress)
    assert not has_interp, "mmstress is dynamically linked"
    stray = [p.name for p in STRESSORS.iterdir() if p.suffix in (".o", ".d") or p.name == "mmstress"]
    assert not stray, f"build wrote into the source directory: {stray}"


@pytest.mark.parametrize("mode,args,positive", [
    ("mmap", ["--workers", "1", "--mb", "8"],
     ["maps", "touches", "mprotects", "mremap_grow", "pageout"]),
    ("fork", ["--workers", "2", "--mb", "8"],
     ["forks", "vforks", "clones", "exits", "child_touches"]),
    ("fork", ["--workers", "1", "--mb", "8", "--vmas", "32", "--quick", "2"],
     ["forks", "quick_workers", "quick_forks", "quick_kills"]),
    ("hog", ["--mb", "16"], ["pages", "filled", "touches", "verifies"]),
    # within the host's default vm.max_map_count (65530): nothing to raise
    ("fork", ["--workers", "1", "--mb", "4", "--vmas", "0", "--big-exit", "20000"],
     ["big_exits", "big_exit_vmas", "big_build_ms"]),
])
def test_mode_runs_on_host(mmstress, mode, args, positive):
    start = time.monotonic()
    proc = run(mmstress, mode, "--duration", "2", "--seed", "42", *args)
    elapsed = time.monotonic() - start
    verdict, name, values = parse_ktap(proc.stdout)
    assert (verdict, name) == ("ok", mode), proc.stdout + proc.stderr
    assert proc.returncode == 0
    assert values["errors"] == "0"
    assert values["seed"] == "42"
    for key in positive:
        assert int(values[key]) > 0, f"{key} is 0: {proc.stdout}"
    assert elapsed < 15


def _assert_ok(proc: subprocess.CompletedProcess, mode: str, positive: list[str]) -> dict[str, str]:
    verdict, name, values = parse_ktap(proc.stdout)
    assert (verdict, name, proc.returncode) == ("ok", mode, 0), proc.stdout + proc.stderr
    assert values["errors"] == "0"
    for key in positive:
        assert int(values[key]) > 0, f"{key} is 0: {proc.stdout}"
    return values


def test_procwalk_on_own_processes(mmstress):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        proc = run(mmstress, "procwalk", "--duration", "1.5", "--seed", "3",
                   "--pids", f"{os.getpid()},{sleeper.pid}")
    finally:
        sleeper.kill()
        sleeper.wait()
    values = _assert_ok(proc, "procwalk", ["smaps", "smaps_rollup", "pagemap", "maps", "status",
                                           "clear_refs", "bytes"])
    assert values["pids"] == "2"
    if Path("/proc/self/numa_maps").exists():
        assert int(values["numa_maps"]) > 0


def test_procwalk_scans_every_process_with_an_mm(mmstress):
    """In a PID namespace of its own, 'every process' is mmstress and its workers."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare(1) for a private PID namespace")
    proc = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", str(mmstress), "procwalk",
                           "--duration", "1.5", "--seed", "4", "--workers", "2"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 and not proc.stdout:
        pytest.skip(f"unshare failed here: {proc.stderr.strip()}")
    values = _assert_ok(proc, "procwalk", ["scans", "smaps", "pagemap", "clear_refs"])
    assert int(values["pids"]) >= 3  # the parent and two workers


@pytest.mark.parametrize("mode,args,positive", [
    ("remote", ["--mb", "8"], ["children", "vm_reads", "vm_writes", "mem_reads", "mem_writes",
                               "pages_read", "pageouts"]),
    ("locked", ["--mb", "8"], ["map_populate", "map_shared", "mremaps", "munmaps", "touches"]),
])
def test_breadth_mode_runs_on_host(mmstress, mode, args, positive):
    start = time.monotonic()
    proc = run(mmstress, mode, "--duration", "1.5", "--seed", "5", *args)
    values = _assert_ok(proc, mode, positive)
    assert values["corruptions"] == "0"
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("mode,sysdir,feature,args,positive", [
    ("thp", "/sys/kernel/mm/transparent_hugepage", "CONFIG_TRANSPARENT_HUGEPAGE", ["--mb", "8"],
     ["maps", "munmap_partial", "mprotects", "touches"]),
    ("ksm", "/sys/kernel/mm/ksm", "CONFIG_KSM", ["--mb", "4"],
     ["maps", "mergeable", "writes", "verifies", "pageouts", "forks"]),
])
def test_thp_and_ksm_untuned_on_host(mmstress, mode, sysdir, feature, args, positive):
    proc = run(mmstress, mode, "--duration", "1.5", "--seed", "6", "--no-tune", *args)
    if not Path(sysdir).exists():
        verdict, _, values = parse_ktap(proc.stdout)
        assert verdict == "not ok" and feature in values["reason"]
        return
    values = _assert_ok(proc, mode, positive)
    assert values["tuned"] == "0" and values["corruptions"] == "0"


def test_compact_needs_root_or_names_the_feature(mmstress):
    cmd = [str(mmstress), "compact", "--duration", "1", "--interval", "200"]
    if not Path("/proc/sys/vm/compact_memory").exists():
        want = "CONFIG_COMPACTION"
    else:
        want = "needs root"
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("root without setpriv(1): would compact the host's memory")
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    verdict, name, values = parse_ktap(proc.stdout)
    assert (verdict, name, proc.returncode) == ("not ok", "compact", 1)
    assert want in values["reason"]
    readme = (STRESSORS / "README.md").read_text()
    for key in values:
        assert re.search(rf"\b{key}\b", readme), f"compact key {key} missing from the README"


@pytest.mark.parametrize("mode,args,reason", [
    ("procwalk", ["--pids", "12a"], "bad --pids"),
    ("procwalk", ["--mb", "4"], "not valid for this mode"),
    ("hog", ["--no-tune"], "not valid for this mode"),
    ("compact", ["--workers", "2"], "not valid for this mode"),
    ("fork", ["--big-exit", "1000001"], "bad --big-exit"),
    ("fork", ["--big-exit", "-1"], "bad --big-exit"),
    ("mmap", ["--big-exit", "10"], "not valid for this mode"),
    ("oom", ["--group", "30001"], "bad --group"),
    ("oom", ["--group", "x"], "bad --group"),
    ("memcg", ["--group", "10"], "not valid for this mode"),
])
def test_breadth_argument_errors(mmstress, mode, args, reason):
    proc = run(mmstress, mode, "--duration", "1", *args)
    verdict, name, values = parse_ktap(proc.stdout)
    assert (verdict, name, proc.returncode) == ("not ok", mode, 1)
    assert reason in values["reason"]


def test_sigterm_is_an_early_stop_that_still_reports(mmstress):
    proc = subprocess.Popen([str(mmstress), "hog", "--mb", "8", "--duration", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    verdict, name, values = parse_ktap(out)
    assert (verdict, name, proc.returncode) == ("ok", "hog", 0), out + err
    assert int(values["touches"]) > 0


def test_unknown_mode_prints_usage(mmstress):
    proc = run(mmstress, "bogus")
    assert proc.returncode != 0
    assert proc.stdout == ""
    for mode in MODES:
        assert mode in proc.stderr


@pytest.mark.parametrize("args,reason", [
    ([], "at least one --dev"),
    (["--dev", "/dev/nonexistent"], "bad --dev"),
    (["--dev", "/dev/nonexistent:99999"], "bad --dev"),
    (["--file", "/x:notanumber:1"], "bad --file"),
    (["--workers", "2"], "not valid for this mode"),
    (["--bogus"], "unknown option"),
    (["--seed", "abc"], "bad --seed"),
])
def test_swap_argument_errors(mmstress, args, reason):
    proc = run(mmstress, "swap", "--duration", "1", *args)
    verdict, name, values = parse_ktap(proc.stdout)
    assert (verdict, name, proc.returncode) == ("not ok", "swap", 1)
    assert reason in values["reason"]


def _tmpfs_dir() -> Path | None:
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if (len(fields) > 2 and fields[2] == "tmpfs" and fields[1] in ("/dev/shm", "/tmp", "/run")
                and os.access(fields[1], os.W_OK)):
            return Path(fields[1])
    return None


def test_swap_file_on_tmpfs_is_refused(mmstress):
    base = _tmpfs_dir()
    if base is None:
        pytest.skip("no writable tmpfs mount on this host")
    path = base / f"mmstress-test-swap.{os.getpid()}"
    proc = run(mmstress, "swap", "--duration", "1", "--file", f"{path}:8:1")
    verdict, _, values = parse_ktap(proc.stdout)
    assert verdict == "not ok" and proc.returncode == 1
    assert "tmpfs" in values["reason"]
    assert not path.exists(), "swap file created on tmpfs"


def test_aarch64_cross_build(tmp_path):
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc not installed")
    proc = make_mmstress(tmp_path, "aarch64-linux-gnu-")
    binary = tmp_path / "mmstress"
    assert_clean_build(proc, binary)
    machine, has_interp = elf_info(binary)
    assert machine == 183  # EM_AARCH64
    assert not has_interp


def test_i386_build_runs_remote_on_host(tmp_path):
    """32-bit: user addresses above 2 GiB are offsets into /proc/<pid>/mem,
    so off_t must be 64-bit there (pread gave EINVAL on i386 guests)."""
    if shutil.which("i686-linux-gnu-gcc") is None:
        pytest.skip("i686-linux-gnu-gcc not installed (make test-deps installs it)")
    proc = make_mmstress(tmp_path, "i686-linux-gnu-")
    binary = tmp_path / "mmstress"
    assert_clean_build(proc, binary)
    assert elf_info(binary)[0] == 3  # EM_386
    try:
        proc = run(binary, "remote", "--duration", "1.5", "--seed", "5", "--workers", "1", "--mb", "4")
    except OSError as exc:
        pytest.skip(f"this host cannot run i386 binaries: {exc}")
    values = _assert_ok(proc, "remote", ["mem_reads", "mem_writes", "vm_reads"])
    assert values["corruptions"] == "0"


def test_module_builds_without_warnings(tmp_path):
    kdir = os.environ.get("MMLOCK_KERNEL_BUILD")
    if not kdir:
        pytest.skip("set MMLOCK_KERNEL_BUILD to a built kernel O= tree to build the module")
    if not (Path(kdir) / "Module.symvers").is_file():
        pytest.skip(f"{kdir} has no Module.symvers: kernel build not finished")
    src = tmp_path / "mmlock"
    shutil.copytree(MODULE, src, ignore=shutil.ignore_patterns("*.md"))
    proc = subprocess.run(["make", "-C", kdir, f"M={src}", "W=1", "modules"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if "warning" in line.lower()]
    assert not warnings, "\n".join(warnings)
    assert (src / "mmlock.ko").is_file()
    assert not list(MODULE.glob("*.o")), "module build wrote into guest/module"


def test_readmes_document_every_output_key(mmstress):
    """The harness parses these lines: every key printed must be documented."""
    readme = (STRESSORS / "README.md").read_text()
    for mode, args in (("hog", ["--mb", "4"]), ("fork", ["--mb", "4", "--workers", "1"]),
                       ("mmap", ["--mb", "4", "--workers", "1"]),
                       ("procwalk", ["--pids", str(os.getpid())]), ("remote", ["--mb", "2"]),
                       ("locked", ["--mb", "2"]), ("thp", ["--mb", "4", "--no-tune"]),
                       ("ksm", ["--mb", "2", "--no-tune"])):
        _, _, values = parse_ktap(run(mmstress, mode, "--duration", "0.3", *args).stdout)
        missing = [key for key in values if not re.search(rf"\b{key}\b", readme)]
        assert not missing, f"{mode} keys missing from guest/stressors/README.md: {missing}"
    # the module's stats keys and fault kinds: tests/test_guest_docs.py (no compile needed)


WORDS = os.sysconf("SC_PAGE_SIZE") // 8


@pytest.mark.parametrize("kind,holds", [
    ("zero", f"{WORDS}/{WORDS} words differ, {WORDS} zero;"),
    ("stale", "generation 0's pattern;"),
    # PFNs read as 0 without CAP_SYS_ADMIN: only root sees which page it is
    ("zeropage", ", the shared zero page)" if os.geteuid() == 0 else f"{WORDS} zero; pte present pfn 0x0)"),
])
def test_hog_reports_an_injected_corruption_with_what_the_page_holds(mmstress, kind, holds):
    """The verification path end to end: a page the 'kernel' zeroed, or whose
    last write it lost, fails the check, and the report says which it was and
    where the PTE stands."""
    proc = run(mmstress, "hog", "--mb", "2", "--workers", "1", "--duration", "0.5", "--seed", "7",
               "--inject-corruption", kind)
    verdict, mode, values = parse_ktap(proc.stdout)
    assert (verdict, mode, proc.returncode) == ("not ok", "hog", 1), proc.stdout + proc.stderr
    assert values["corruptions"] == "1"
    reason = values["reason"]
    page = 2 * 1024 * 1024 // os.sysconf("SC_PAGE_SIZE") // 2
    assert reason.startswith(f"hog worker 0: data corruption at page {page} word 0: got ")
    assert holds in reason and "; pte present pfn " in reason, reason
    assert (", the shared zero page" in reason) == (kind == "zeropage" and os.geteuid() == 0), reason
