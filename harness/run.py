"""One run, stage after stage: build -> image -> boot -> storm -> parse -> verdict -> results."""
from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import image as image_stage
from harness import qemu, requires, results
from harness import storm as storm_stage
from harness.channel import ChannelClosed, CommandTimeout
from harness.channel import ssh as ssh_channel
from harness.channel.fallback import open_for_run
from harness.configs import (
    Arch,
    Profile,
    Storm,
    load_arch,
    load_profile,
    load_storm,
    profile_names,
    run_profile,
)
from harness.errors import ConfigError, HarnessError, InfraError
from harness.host import require_tool
from harness.kernel import build as kernel_build
from harness.kernel import source as kernel_source
from harness.machine import DUMP_MONITOR, DUMP_SYSRQ, Lifecycle, Machine
from harness.record import RunRecord
from harness.report import parse_file, symbolize
from harness.report.symbols import locate
from harness.signals import interrupt_name
from harness.timeline import first_report_s
from harness.verdict import Ending, Verdict, decide
from harness.watch import ReportWatch

log = logging.getLogger(__name__)

# The release ends at white space: the console arrives in pieces, and a
# match on "kernel=6.1" of "kernel=6.12.118" would take 6.12 for 6.1.
READY_RE = re.compile(rb"MMLOCK-HARNESS: ready kernel=(\S+)\s")
BOOT_TIMEOUT_S = {"kvm": 60, "tcg": 240}
# Boot and storm end early when the guest says nothing for this long: no
# console output and no storm heartbeat (storm-run prints one every
# HEARTBEAT_S). Longer than hung_task_timeout_secs, so the kernel's own
# hang report usually comes first.
INACTIVITY_S = {"kvm": 60, "tcg": 120}
INJECTIONS = {
    # name -> guest command; module kinds go through its debugfs file.
    "sysrq-crash": "echo c > /proc/sysrq-trigger",
}
MODULE_INJECTIONS = ("abba", "recursive", "atomic-sleep", "smp-processor-id", "warn", "bug",
                     "null-deref", "hung-task", "soft-lockup", "rcu-stall", "panic")


@dataclass(frozen=True)
class RunRequest:
    arch: str = "x86_64"
    kernel_src: str | None = None
    kernel_version: str = kernel_source.DEFAULT_VERSION
    profile: str = "lockdep"
    storm: str = "swapoff-fork-mmap"
    seed: int = 1
    duration: int | None = None          # None: the storm's own duration
    accel: str = "auto"
    inject: str | None = None
    storm_enabled: bool = True
    label: str = "run"
    inactivity_s: int | None = None      # None: INACTIVITY_S for the accelerator
    leave_out: tuple[str, ...] = ()      # storm parts not to run (requires.leave_out)
    # Host binaries copied into the guest with their libraries (a yardstick's stress-ng).
    guest_binaries: tuple[str, ...] = ()
    results_dir: str | None = None       # where the run directory goes; None: results_root()
    # End the storm at the first complete kernel report (harness.watch): the run has
    # its answer; verdict.json says stopped_early and when.
    stop_on_report: bool = False
    stagger_s: int | None = None         # seconds between stressor starts; None: the storm's own
    preempt: str = "full"                # the kernel's preemption model (configs.PREEMPT_MODELS)
    faults: tuple[str, ...] = ()         # fault-injection kinds for the storm (configs.FAULT_KINDS)
    # Called with the run's channel once the guest is up, after the storm if any;
    # the guest is powered off when it returns (`shell`, the pytest plugin).
    session: Callable | None = None


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    verdict: Verdict
    record: RunRecord = field(default_factory=RunRecord)   # what verdict.json holds


def guest_command_for(inject: str) -> str:
    """KIND or KIND:SECONDS -> the guest command that triggers it."""
    kind, _, seconds = inject.partition(":")
    if seconds and not re.fullmatch(r"[0-9]{1,6}", seconds):   # not isdigit(): it takes '²' and '٣'

        raise ConfigError(f"injection '{inject}': seconds must be a whole number")
    if kind in INJECTIONS and not seconds:
        return INJECTIONS[kind]
    if kind in MODULE_INJECTIONS:
        arg = f"{kind} {seconds}" if seconds else kind
        return f"insmod /lib/modules/mmlock.ko 2>/dev/null; echo {arg} > /sys/kernel/debug/mmlock/inject"
    valid = ", ".join(list(INJECTIONS) + list(MODULE_INJECTIONS))
    raise ConfigError(f"unknown injection '{inject}'; valid: {valid}")


def _stage(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def check_options(request: RunRequest) -> tuple[Profile, Storm, int]:
    """Every value of a request that does not depend on the arch, checked before any
    work (a matrix checks these once for all its cells): ConfigError naming the valid ones."""
    if request.accel not in qemu.ACCELS:
        raise ConfigError(f"unknown ACCEL '{request.accel}'; valid: {', '.join(qemu.ACCELS)}")
    if not request.kernel_src and request.kernel_version not in kernel_source.KNOWN_VERSIONS:
        raise ConfigError(f"unknown kernel version '{request.kernel_version}'; valid versions: "
                          f"{', '.join(kernel_source.KNOWN_VERSIONS)} (or KERNEL_SRC=<a tree>)")
    profile = run_profile(request.profile, request.preempt, request.faults)
    storm = requires.leave_out(load_storm(request.storm), request.leave_out)
    if request.stagger_s is not None:
        if not 0 <= request.stagger_s <= 60:
            raise ConfigError(f"STAGGER must be 0..60 seconds, got {request.stagger_s}")
        storm = dataclasses.replace(storm, stagger_s=request.stagger_s)
    duration = storm.duration_s if request.duration is None else request.duration
    if duration < 1 or duration > 86400:
        raise ConfigError(f"DURATION must be between 1 and 86400 seconds, got {duration}")
    if request.inject:
        guest_command_for(request.inject)
    if request.inactivity_s is not None and request.inactivity_s < 1:
        raise ConfigError(f"INACTIVITY must be at least 1 second, got {request.inactivity_s}")
    return profile, storm, duration


def load_request(request: RunRequest) -> tuple[Arch, Profile, Storm, int]:
    """The request checked whole (check_options, then what the arch must give) before any work."""
    arch = load_arch(request.arch)
    profile, storm, duration = check_options(request)
    storm = requires.for_arch(storm, arch)
    qemu.numa_args(arch, storm.numa_nodes, storm.name)   # the arch can give what the storm wants
    if request.kernel_src:
        kernel_source.validate_tree(Path(request.kernel_src))
    return arch, profile, storm, duration


STAGES = ("load", "build", "image", "boot", "storm", "parse", "verdict", "results")


def enter_stage(stage: str, data: dict) -> None:
    """Note the stage a run has reached (an internal error names it), and raise
    there when MMLOCK_FAULT=raise:STAGE asks (reliability tests: a bug of ours
    at that stage must end as an infra error with everything kept)."""
    data["stage"] = stage
    if os.environ.get("MMLOCK_FAULT", "") == f"raise:{stage}":
        raise RuntimeError(f"injected fault at stage {stage} (MMLOCK_FAULT=raise:{stage})")


def internal_error(exc: BaseException, stage: str) -> str:
    """The reason of an exception that is no verdict: its class, message, and the
    innermost frame of the harness it came through (else the innermost of all)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}harness{os.sep}" in f.filename] or frames
    where = ""
    if ours:
        frame = ours[-1]
        name = frame.filename
        if f"{os.sep}harness{os.sep}" in name:
            name = "harness" + name.rsplit(f"{os.sep}harness", 1)[1]
        where = f" at {name}:{frame.lineno} in {frame.name}"
    message = str(exc)[:500]
    return f"internal error in stage {stage}: {type(exc).__name__}{': ' + message if message else ''}{where}"


def _safe_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:40] or "unknown"


def execute(request: RunRequest) -> RunOutcome:
    """The whole run. Config errors found before any work raise (no run dir);
    from then on every failure, HarnessErrors and bugs of ours alike, is
    recorded in the run dir: a bug is an infra-error, never a kernel verdict."""
    started = time.monotonic()
    probe: dict = {}
    try:
        enter_stage("load", probe)
        arch, profile, storm, duration = load_request(request)
    except HarnessError:
        raise
    except Exception as exc:   # a bug of ours before the run dir: still a run dir and a verdict
        return _failed_before_start(request, exc, started)
    run_dir = results.new_run_dir(arch.name, request.label,
                                  Path(request.results_dir) if request.results_dir else None)
    results.point_latest(run_dir)
    data: dict = {
        "run_id": run_dir.name, "verdict": None, "exit_code": None, "reason": "",
        "arch": arch.name, "accel": None, "accel_reason": "", "channel": "console",
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "kernel": {}, "storm": {"name": storm.name, "duration_s": duration, "seed": request.seed, "counts": {},
                                "left_out": dict(storm.left_out)},
        "inject": request.inject, "reports": [], "lock_coverage": {},
        "durations": {"build_s": 0.0, "boot_s": 0.0, "storm_s": 0.0, "total_s": 0.0},
        "qemu": {"binary": arch.qemu_binary, "version": ""}, "complete": False, "stage": "build",
    }
    _stage(f"run {run_dir.name}: arch={arch.name} profile={profile.name} storm={storm.name} "
           f"duration={duration}s seed={request.seed}")
    for part, why in storm.left_out:
        _stage(f"storm: {part} left out: {why}")
    try:
        verdict = _execute_stages(request, arch, profile, storm, duration, run_dir, data)
        data["complete"] = True
    except HarnessError as exc:
        verdict = Verdict(exc.verdict, exc.exit_code, str(exc))
    except KeyboardInterrupt as exc:
        verdict = Verdict("infra-error", InfraError.exit_code, f"interrupted ({interrupt_name(exc)})")
        data["interrupted"] = True
    except Exception as exc:   # a bug of ours: never a kernel verdict (bisect skips it)
        verdict = _internal(exc, data, run_dir)
    data["durations"]["total_s"] = round(time.monotonic() - started, 2)
    return RunOutcome(run_dir, *_write_results(run_dir, arch.name, verdict, data))


def _internal(exc: Exception, data: dict, run_dir: Path) -> Verdict:
    """An exception of ours -> an infra-error verdict; its traceback beside the run's other files."""
    reason = internal_error(exc, data.get("stage", "?"))
    data["internal_error"] = {"type": type(exc).__name__, "stage": data.get("stage", "?"),
                              "traceback": "harness-error.txt"}
    try:
        (run_dir / "harness-error.txt").write_text(
            results.sanitize_block("".join(traceback.format_exception(exc))))
    except OSError:
        pass
    print(f"error: {reason} (traceback: {run_dir / 'harness-error.txt'})", file=sys.stderr, flush=True)
    return Verdict("infra-error", InfraError.exit_code, reason)


def _write_results(run_dir: Path, arch: str, verdict: Verdict, data: dict) -> tuple[Verdict, RunRecord]:
    """verdict.json and junit.xml from the run's record, every guest string through printable
    (results.safe); the record returned is what was written. A results disk that is full, or
    a bug in the writing, must not cost the verdict on stdout."""
    data["verdict"], data["exit_code"], data["reason"] = verdict.verdict, verdict.exit_code, verdict.reason
    data["reports"] = [r.to_json() for r in verdict.reports]
    record = RunRecord.from_json(data)
    try:
        stopped = data.get("stopped_early")
        if stopped:
            stopped["header_to_verdict_s"] = round(time.monotonic() - stopped.pop("_header_at"), 2)
        enter_stage("results", data)
        record = RunRecord.from_json(results.safe(data))
        verdict = dataclasses.replace(verdict, reason=record.reason)
        results.write_run_files(run_dir, arch, verdict, record)
    except OSError as exc:  # a full results disk must not cost the verdict on stdout
        print(f"error: cannot write results to {run_dir}: {exc.strerror}", file=sys.stderr)
        if verdict.exit_code == 0:
            verdict = Verdict("infra-error", InfraError.exit_code, f"cannot write results: {exc.strerror}")
    except Exception as exc:   # a bug of ours in the writing: a minimal verdict.json still says so
        verdict = _internal(exc, data, run_dir)
        minimal = {key: data.get(key) for key in ("run_id", "arch", "kernel", "durations", "stage",
                                                  "internal_error", "complete")}
        minimal.update(verdict=verdict.verdict, exit_code=verdict.exit_code, reason=verdict.reason, reports=[])
        try:
            record = RunRecord.from_json(results.safe(minimal))
            results.write_verdict(run_dir, record)
        except Exception as again:   # nothing left to write with: say so on stderr
            print(f"error: cannot write {run_dir / 'verdict.json'}: {internal_error(again, 'results')}",
                  file=sys.stderr)
    return verdict, record


def _failed_before_start(request: RunRequest, exc: Exception, started: float) -> RunOutcome:
    run_dir = results.new_run_dir(_safe_label(request.arch), request.label,
                                  Path(request.results_dir) if request.results_dir else None)
    results.point_latest(run_dir)
    data: dict = {"run_id": run_dir.name, "verdict": None, "exit_code": None, "reason": "",
                  "arch": request.arch, "reports": [], "complete": False, "stage": "load",
                  "durations": {"build_s": 0.0, "boot_s": 0.0, "storm_s": 0.0,
                                "total_s": round(time.monotonic() - started, 2)}}
    verdict = _internal(exc, data, run_dir)
    return RunOutcome(run_dir, *_write_results(run_dir, request.arch, verdict, data))


def _execute_stages(request: RunRequest, arch: Arch, profile: Profile, storm: Storm, duration: int,
                    run_dir: Path, data: dict) -> Verdict:
    build_log = run_dir / "build.log"
    build_log.write_text(f"# build log of run {run_dir.name}: kernel, module and stressors\n")
    t0 = time.monotonic()
    enter_stage("build", data)
    _stage("build: kernel")
    source = kernel_source.resolve(request.kernel_src, request.kernel_version)
    data["kernel"] = {"version": source.version, "source": source.origin, "profile": request.profile,
                      "preempt": request.preempt,    # as asked; from the built config once there is one
                      "source_identity": source.identity, "commit": source.commit}   # a build error keeps these
    # Before compiling: does this kernel have what the storm's modes need?
    if request.storm_enabled:
        profiles = {name: "".join(p.read_text() for p in load_profile(name).fragments)
                    for name in profile_names() if name != request.profile}
        requires.check(storm, kernel_build.configure(source, arch, profile, build_log),
                       f"{source.origin} with profile {profile.name}", profiles=profiles)
    kernel = kernel_build.build_kernel(source, arch, profile, build_log)
    _stage(f"build: kernel {'cached' if kernel.cached else 'built'} ({kernel.duration_s:.1f}s); guest image")
    enter_stage("image", data)
    guest = image_stage.build_image(kernel, build_log, request.guest_binaries)
    with open(build_log, "a") as handle:
        handle.write(f"kernel: {'cache hit' if kernel.cached else 'built'} {kernel.key} ({source.origin})\n"
                     f"image: {'cache hit' if guest.cached else 'built'} {guest.initramfs}\n")
    data["durations"]["build_s"] = round(time.monotonic() - t0, 2)
    shutil.copy2(kernel.config, run_dir / "kernel.config")
    data["kernel"].update({"preempt": preempt_model(kernel.config.read_text()),
                           "config_sha256": kernel.config_sha256, "image_sha256": kernel.image_sha256,
                           "compiler": kernel.compiler, "cached": kernel.cached, "build_key": kernel.key,
                           "vmlinux": str(kernel.vmlinux)})
    data["image"] = {"initramfs_sha256": guest.sha256, "cached": guest.cached}

    accel, accel_reason = qemu.choose_accel(request.accel, arch, kernel.image)
    data["accel"], data["accel_reason"] = accel, accel_reason
    data["qemu"]["version"] = qemu.qemu_version(arch.qemu_binary)
    _stage(f"boot: accel={accel} ({accel_reason})")

    # Per-run files: the kernel image and initramfs copied in so repro.sh
    # keeps working after the cache moves on; relative paths in the argv.
    shutil.copy2(kernel.image, run_dir / "kernel.img")
    swap_devices = [qemu.guest_disk(i) for i in range(storm.swap_devices)]
    swapfs_dev = qemu.guest_disk(storm.swap_devices) if storm.has_fs_disk else ""
    plan = storm_stage.plan_lines(storm, duration, request.seed, swap_devices)
    ssh_setup = ssh_channel.prepare(run_dir, arch.net_device)   # per-run keys and forwarded port
    overlay = {
        "etc/harness/storm.plan": "\n".join(plan) + "\n",
        "etc/harness/run.env": storm_stage.run_env(storm, duration, request.seed, swapfs_dev, request.faults),
        **ssh_setup.overlay_files(),
    }
    initramfs = run_dir / "initramfs.cpio"
    secret = ssh_setup.secret_files()
    image_stage.write_overlay(guest.initramfs, initramfs, overlay, private=secret)
    disks: tuple[Path, ...] = ()
    try:
        disks = qemu.make_swap_disks(run_dir, storm.swap_devices, storm.swap_size_mb,
                                     storm_stage.swapfs_size_mb(storm))
        if storm.has_fs_disk and storm.swap_file_fs != "ext2":   # ext2 is made by storm-run in the guest
            storm_stage.make_swapfs(disks[-1], storm.swap_file_fs, build_log)
        spec = qemu.BootSpec(
            kernel=Path("kernel.img"), initrd=Path("initramfs.cpio"),
            append=qemu.kernel_cmdline(arch, profile.append, storm_stage.kernel_append(storm)),
            accel=accel, disks=tuple(Path(d.name) for d in disks),
            console_log=Path("qemu-console.log"), monitor=None, hostfwd_port=ssh_setup.port,
            extra=qemu.numa_args(arch, storm.numa_nodes, storm.name))
        argv = qemu.argv(arch, spec)
        require_tool(argv[0])
        (run_dir / "qemu-cmdline.txt").write_text(" ".join(argv) + "\n")
        repro = run_dir / "repro.sh"
        repro.write_text(results.repro_script(argv, [(d.name, d.stat().st_size >> 20) for d in disks]))
        repro.chmod(0o755)

        console_log = run_dir / "console.log"
        ending = boot_and_storm(argv, run_dir, console_log, accel, request, storm, duration, data, ssh_setup,
                                arch.monitor_pc)
    finally:
        for disk in disks:  # up to 64 MiB each once written: never left behind
            disk.unlink(missing_ok=True)
        strip_secrets(guest.initramfs, initramfs, overlay, secret)
    where = _locate_pcs(data, kernel.vmlinux, arch)
    if where:
        ending = dataclasses.replace(ending, note=f"{ending.note}; vCPUs at {where}".lstrip("; "))

    enter_stage("parse", data)
    reports = parse_file(console_log)
    if reports:
        data["storm"]["first_report_s"] = first_report_s(console_log.read_text(errors="replace"), reports)
        _symbolize(console_log, kernel.vmlinux, {"mmlock": guest.module}, arch, run_dir, data)
    enter_stage("verdict", data)
    return decide(reports, ending)


def preempt_model(config_text: str) -> str:
    """The preemption model a built kernel's .config chose: none, voluntary or full."""
    for option, model in (("CONFIG_PREEMPT_NONE=y", "none"), ("CONFIG_PREEMPT_VOLUNTARY=y", "voluntary"),
                          ("CONFIG_PREEMPT=y", "full")):
        if option in config_text.splitlines():
            return model
    return "unknown"


def strip_secrets(base: Path, initramfs: Path, overlay: dict[str, str], secret: tuple[str, ...]) -> None:
    """QEMU read the run's initramfs when it started and is gone now: the copy the
    results keep (repro.sh boots it; CI uploads results/) loses the guest's private
    host key. If it cannot be rewritten, it goes."""
    if not secret:
        return
    try:
        image_stage.write_overlay(base, initramfs, {k: v for k, v in overlay.items() if k not in secret})
    except OSError:
        initramfs.unlink(missing_ok=True)


def _symbolize(console_log: Path, vmlinux: Path, modules: dict[str, Path], arch: Arch, run_dir: Path,
               data: dict) -> None:
    """Frames resolved against this run's vmlinux and module, beside the console log (best effort)."""
    out = run_dir / "console.symbolized.log"
    try:
        annotated = symbolize(str(console_log), str(vmlinux), str(out),
                              addr2line=f"{arch.cross_compile}addr2line",
                              modules={name: str(path) for name, path in modules.items()})
        data["symbolized"] = {"file": out.name, "frames": annotated}
    except (OSError, subprocess.SubprocessError) as exc:
        data["symbolized"] = {"error": str(exc)}


def boot_and_storm(argv: list[str], run_dir: Path, console_log: Path, accel: str, request: RunRequest,
                    storm: Storm, duration: int, data: dict,
                    ssh_setup: ssh_channel.SshSetup | None = None, pc_re: str = "") -> Ending:
    """Boot to the ready marker, storm, power off. A guest that stops answering
    (in boot or storm) gets its state dumped first; pc_re (the arch's
    monitor_pc) picks each vCPU's pc out of the monitor's register dumps."""
    boot_started = time.monotonic()
    try:
        # With another forwarded port if QEMU could not bind its own.
        machine = Machine.start(argv, run_dir, console_log, ssh_setup)
    except ChannelClosed as exc:
        raise InfraError(str(exc)) from None
    console = machine.console
    console.silence_limit_s = float(request.inactivity_s or INACTIVITY_S[accel])
    data["inactivity_s"] = console.silence_limit_s
    storm_state = "not-started"
    failures: tuple[str, ...] = ()
    killed = False
    channel = None
    note = ""
    try:
        try:
            enter_stage("boot", data)
            match = machine.wait_ready(READY_RE, BOOT_TIMEOUT_S[accel])
            data["kernel"]["release"] = match.group(1).decode(errors="replace")
        except (ChannelClosed, CommandTimeout) as exc:
            data["durations"]["boot_s"] = round(time.monotonic() - boot_started, 2)
            killed = isinstance(exc, CommandTimeout)
            if killed:
                dump_guest_state(machine, data, "boot", pc_re)
            return machine.ending(False, storm_state, failures, killed, f"({exc})")
        data["durations"]["boot_s"] = round(time.monotonic() - boot_started, 2)
        _stage(f"boot: guest ready after {data['durations']['boot_s']:.1f}s")
        try:
            enter_stage("storm", data)
            console.run("stty -echo 2>/dev/null; true", 30)
            # SSH when sshd answers, else the console; console.log records either way.
            channel = open_for_run(console, ssh_setup, accel, data)
            if request.inject:
                _stage(f"inject: {request.inject}")
                try:
                    console.run(guest_command_for(request.inject), 60)
                except CommandTimeout:
                    pass  # the injection may take the shell with it; the console still records
            if request.storm_enabled:
                _stage(f"storm: {storm.name} for {duration}s")
                machine.enter(Lifecycle.STORMING)
                console.idle_hooks += fault_hooks(machine)
                watch = ReportWatch(console_log, console.silent_for) if request.stop_on_report else None
                if watch is not None:
                    console.idle_hooks.append(watch.hook)
                storm_started = time.monotonic()
                result = storm_stage.run_storm(channel, storm, duration, request.seed,
                                              data["kernel"].get("release", ""))
                if watch is not None and watch.seen is not None and result.ended_how == "stopped-on-report":
                    seen = watch.seen
                    data["stopped_early"] = {
                        "title": seen.title, "why": seen.why,
                        "header_after_s": round(seen.header_at - storm_started, 2),
                        "stopped_after_s": round(seen.complete_at - storm_started, 2),
                        "_header_at": seen.header_at}
                    _stage(f"storm: stopped on report {seen.title!r} ({seen.why}) "
                           f"{seen.complete_at - storm_started:.1f}s into the storm")
                if result.output:   # guest text: printable only, as everything taken from the guest
                    (run_dir / "storm.log").write_text(results.sanitize_block(result.output))
                storm_state = result.ended_how
                note = result.timeout_reason
                failures = tuple(result.failures)
                data["storm"].update(result.to_json())
                if request.faults:
                    data["faults"] = {kind: storm_stage.injected_faults(result.counts).get(kind)
                                      for kind in request.faults}
                data["lock_coverage"] = result.lock_coverage
                data["durations"]["storm_s"] = round(result.wall_s, 2)
                _stage(f"storm: {result.ended_how} after {result.wall_s:.1f}s over {data['channel']}")
                if machine.alive:
                    machine.enter(Lifecycle.READY)
            console.silence_limit_s = None   # a person at a shell may think for a while
            console.idle_hooks.clear()
            if request.session and storm_state not in ("timeout", "stopped-on-report"):
                request.session(channel)
            if storm_state == "timeout":
                dump_guest_state(machine, data, "storm", pc_re)
            elif storm_state == "stopped-on-report":
                console.settle(1.0, 3.0)   # the report's last lines, then QEMU is killed
            else:
                console.send_line("sync; reboot -f")
                console.drain(60)
        except ChannelClosed:
            # QEMU went away before we asked it to: a panic, a reset or a crash.
            storm_state = "qemu-exited"
        except CommandTimeout as exc:
            storm_state = "timeout"
            note = note or str(exc)
            dump_guest_state(machine, data, "storm", pc_re)
        killed = machine.alive
        return machine.ending(True, storm_state, failures, killed, note)
    finally:
        if channel is not None:
            channel.close()
        machine.stop(grace_s=1)


def dump_guest_state(machine: Machine, data: dict, stage: str, pc_re: str = "") -> None:
    """Before a hung guest is killed: its state in console.log (Machine.dump_state); what was
    done, and the vCPU pcs for _locate_pcs, in data["dump"]."""
    _stage(f"{stage}: guest not responding; dumping state (sysrq {', '.join(DUMP_SYSRQ)}; "
           f"monitor: {'; '.join(DUMP_MONITOR)})")
    data["dump"] = machine.dump_state(pc_re).to_json()


def _locate_pcs(data: dict, vmlinux: Path, arch: Arch) -> str:
    """Name the dumped vCPU pcs (data["dump"]["pcs"]) in vmlinux: data["dump"]["where"]
    per vCPU, one entry per sample; returns "cpu0 f, cpu1 g" of the last sample for
    a verdict's reason, "" when there is nothing to say."""
    samples = data.get("dump", {}).get("pcs")
    if not samples:
        return ""
    try:
        names = locate(str(vmlinux), [int(pc, 16) for sample in samples for pc in sample],
                       addr2line=f"{arch.cross_compile}addr2line")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        data["dump"]["where_error"] = str(exc)
        return ""
    cpus = max(len(sample) for sample in samples)
    where = [[names.get(int(sample[cpu], 16), f"{sample[cpu]} (not kernel text)") if cpu < len(sample)
              else "?" for sample in samples] for cpu in range(cpus)]
    data["dump"]["where"] = where
    return ", ".join(f"cpu{cpu} {places[-1].split('+')[0].split(' ')[0]}" for cpu, places in enumerate(where))


def fault_hooks(machine: Machine) -> list[Callable[[], None]]:
    """MMLOCK_FAULT=freeze:SECONDS (reliability tests): stop every vCPU through the
    monitor that many seconds into the storm, a guest hung so hard nothing answers."""
    match = re.fullmatch(r"freeze:(\d+(?:\.\d+)?)", os.environ.get("MMLOCK_FAULT", ""))
    if not match:
        return []
    started = time.monotonic()

    def freeze() -> None:
        if time.monotonic() - started >= float(match.group(1)):
            machine.console.idle_hooks.remove(freeze)
            _stage(f"fault: freezing the guest (monitor: stop) {match.group(1)}s into the storm")
            machine.monitor("stop", timeout=20)
    return [freeze]
