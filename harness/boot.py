"""Boot and storm: a booted guest you can hold.

    with machine_files(plan, built, run_dir) as (argv, setup):
        with boot(argv, run_dir, console_log, accel, draft, setup=setup) as session:
            storm(session, plan)        # or a shell, or a test's commands
    session.ending                      # how the guest and QEMU ended

`boot` yields a Session once the guest printed its ready marker and a channel
(SSH, else the console) is open; a guest that never gets there raises
BootFailed with its Ending. Leaving the block powers the guest off (a hung
one is dumped first) and stops QEMU with console.log flushed, also on an
exception and on SIGTERM (harness.signals makes it one).
"""
from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import image as image_stage
from harness import qemu, results
from harness import storm as storm_stage
from harness.build_stage import Built
from harness.channel import ChannelClosed, CommandResult, CommandTimeout
from harness.channel import ssh as ssh_channel
from harness.channel.fallback import StormChannel, open_for_run
from harness.channel.serial import SerialConsole
from harness.errors import InfraError
from harness.host import require_tool
from harness.lock_figures import lock_classes_text
from harness.machine import DUMP_MONITOR, DUMP_SYSRQ, Lifecycle, Machine
from harness.plan import Plan, guest_command_for
from harness.record import Draft, LockCoverage, SshFacts, StoppedEarly
from harness.terminal import say
from harness.verdict import Ending
from harness.watch import ReportWatch

# The release ends at white space: the console arrives in pieces, and a
# match on "kernel=6.1" of "kernel=6.12.118" would take 6.12 for 6.1.
READY_RE = re.compile(rb"MMLOCK-HARNESS: ready kernel=(\S+)\s")
BOOT_TIMEOUT_S = {"kvm": 60, "tcg": 240}
# Boot and storm end early when the guest says nothing for this long: no
# console output and no storm heartbeat (storm-run prints one every
# HEARTBEAT_S). Longer than hung_task_timeout_secs, so the kernel's own
# hang report usually comes first.
INACTIVITY_S = {"kvm": 60, "tcg": 120}


class BootFailed(Exception):
    """The guest never became a Session: no ready marker, or no shell after it."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.note or "the guest did not come up")
        self.ending = ending


@dataclass
class Session:
    """A booted guest: commands over `channel`, QEMU in `machine`, how it went so far."""

    machine: Machine
    channel: StormChannel
    accel: str
    release: str
    run_dir: Path
    draft: Draft
    pc_re: str = ""
    storm_state: str = "not-started"   # completed | timeout | qemu-exited | stopped-on-report
    failures: tuple[str, ...] = ()
    note: str = ""
    ending: Ending | None = None      # once the block is left

    @property
    def console(self) -> SerialConsole:
        return self.machine.console

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        return self.channel.run(command, timeout)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        return self.channel.fetch(path, timeout)

    def _lost(self, exc: BaseException) -> None:
        if isinstance(exc, ChannelClosed):
            self.storm_state = "qemu-exited"   # QEMU went away before we asked: a panic, a reset, a crash
        elif isinstance(exc, CommandTimeout):
            self.storm_state, self.note = "timeout", self.note or str(exc)

    def power_off(self) -> Ending:
        """End the guest as the storm left it: dumped when hung, the report's last lines read
        when stopped on one, else rebooted (QEMU exits); then how it all ended."""
        console = self.console
        console.silence_limit_s = None
        console.idle_hooks.clear()
        try:
            if self.storm_state == "timeout":
                dump_guest_state(self.machine, self.draft, "storm", self.pc_re)
            elif self.storm_state == "stopped-on-report":
                console.settle(1.0, 3.0)   # the report's last lines, then QEMU is killed
            elif self.storm_state != "qemu-exited":
                console.send_line("sync; reboot -f")
                console.drain(60)
        except (ChannelClosed, CommandTimeout) as exc:
            self._lost(exc)
            if self.storm_state == "timeout":
                dump_guest_state(self.machine, self.draft, "storm", self.pc_re)
        self.ending = self.machine.ending(True, self.storm_state, self.failures, self.machine.alive, self.note)
        return self.ending


@contextlib.contextmanager
def machine_files(plan: Plan, built: Built, run_dir: Path) -> Iterator[tuple[list[str], ssh_channel.SshSetup]]:
    """The run directory's files for a boot: kernel.img and initramfs.cpio copied in (repro.sh
    keeps working after the cache moves on), the per-run overlay (storm plan, SSH keys), swap
    disks, qemu-cmdline.txt, repro.sh. Yields QEMU's argv (relative paths) and the SSH setup;
    on the way out the disks go and the results' initramfs loses the guest's private key."""
    request, arch, storm, duration = plan.request, plan.arch, plan.storm, plan.duration
    shutil.copy2(built.kernel.image, run_dir / "kernel.img")
    swap_devices = [qemu.guest_disk(i) for i in range(storm.swap_devices)]
    swapfs_dev = qemu.guest_disk(storm.swap_devices) if storm.has_fs_disk else ""
    lines = storm_stage.plan_lines(storm, duration, request.seed, swap_devices)
    # per-run keys and forwarded port
    ssh_setup = ssh_channel.prepare(run_dir, arch.net_device, enabled=request.ssh, fault=request.ssh_fault)
    overlay = {
        "etc/harness/storm.plan": "\n".join(lines) + "\n",
        "etc/harness/run.env": storm_stage.run_env(storm, duration, request.seed, swapfs_dev, request.faults),
        **ssh_setup.overlay_files(),
    }
    initramfs = run_dir / "initramfs.cpio"
    secret = ssh_setup.secret_files()
    image_stage.write_overlay(built.guest.initramfs, initramfs, overlay, private=secret)
    disks: tuple[Path, ...] = ()
    try:
        disks = qemu.make_swap_disks(run_dir, storm.swap_devices, storm.swap_size_mb,
                                     storm_stage.swapfs_size_mb(storm))
        if storm.has_fs_disk and storm.swap_file_fs != "ext2":   # ext2 is made by storm-run in the guest
            storm_stage.make_swapfs(disks[-1], storm.swap_file_fs, run_dir / "build.log")
        spec = qemu.BootSpec(
            kernel=Path("kernel.img"), initrd=Path("initramfs.cpio"),
            append=qemu.kernel_cmdline(arch, plan.profile.append, storm_stage.kernel_append(storm),
                                       qemu.numa_append(arch, storm.numa_nodes),
                                       qemu.accel_append(arch, built.accel)),
            accel=built.accel, disks=tuple(Path(d.name) for d in disks),
            console_log=Path("qemu-console.log"), monitor=None, hostfwd_port=ssh_setup.port,
            extra=qemu.numa_args(arch, storm.numa_nodes, storm.name))
        argv = qemu.argv(arch, spec)
        require_tool(argv[0])
        (run_dir / "qemu-cmdline.txt").write_text(" ".join(argv) + "\n")
        repro = run_dir / "repro.sh"
        repro.write_text(results.repro_script(argv, [(d.name, d.stat().st_size >> 20) for d in disks]))
        repro.chmod(0o755)
        yield argv, ssh_setup
    finally:
        for disk in disks:  # up to 64 MiB each once written: never left behind
            disk.unlink(missing_ok=True)
        strip_secrets(built.guest.initramfs, initramfs, overlay, secret)


@contextlib.contextmanager
def boot(argv: list[str], run_dir: Path, console_log: Path, accel: str, draft: Draft, *,
         setup: ssh_channel.SshSetup | None = None, pc_re: str = "", inactivity_s: float | None = None,
         enter: Callable[[str], None] = lambda stage: None) -> Iterator[Session]:
    """QEMU started, the guest at its ready marker, a channel open: the Session. A guest
    that stops answering gets its state dumped (pc_re, the arch's monitor_pc, picks each
    vCPU's pc out of the monitor's register dumps). ChannelClosed and CommandTimeout from
    the block end the session as a crash or a hang; anything else passes, QEMU stopped."""
    boot_started = time.monotonic()
    try:
        machine = Machine.start(argv, run_dir, console_log, setup)
    except ChannelClosed as exc:
        raise InfraError(str(exc)) from None
    console = machine.console
    console.silence_limit_s = float(inactivity_s or INACTIVITY_S[accel])
    draft.set(inactivity_s=console.silence_limit_s)
    channel: StormChannel | None = None
    try:
        try:
            enter("boot")
            match = machine.wait_ready(READY_RE, BOOT_TIMEOUT_S[accel])
        except (ChannelClosed, CommandTimeout) as exc:
            draft.durations(boot_s=round(time.monotonic() - boot_started, 2))
            killed = isinstance(exc, CommandTimeout)
            if killed:
                dump_guest_state(machine, draft, "boot", pc_re)
            raise BootFailed(machine.ending(False, "not-started", (), killed, f"({exc})")) from None
        release = match.group(1).decode(errors="replace")
        draft.kernel(release=release)
        draft.durations(boot_s=round(time.monotonic() - boot_started, 2))
        say(f"boot: guest ready after {draft.record.durations.boot_s:.1f}s")
        session = Session(machine, StormChannel(console, None), accel, release, run_dir, draft, pc_re)
        try:
            enter("storm")
            console.run("stty -echo 2>/dev/null; true", 30)
            # SSH when sshd answers, else the console; console.log records either way.
            channel = session.channel = open_for_run(console, setup, accel)
            draft.set(channel=channel.opened_over)
        except (ChannelClosed, CommandTimeout) as exc:
            session._lost(exc)
            raise BootFailed(session.power_off()) from None
        try:
            yield session
        except (ChannelClosed, CommandTimeout) as exc:
            session._lost(exc)
        session.power_off()
    finally:
        if channel is not None:
            channel.close()
            draft.set(ssh=SshFacts.from_json(channel.facts()))   # a fallback mid-storm included
        machine.stop(grace_s=1)


def storm(session: Session, plan: Plan) -> None:
    """The request's injection, then its storm (if enabled): op counts, lock coverage and
    how it ended into the session and its draft record."""
    request, storm_spec, duration = plan.request, plan.storm, plan.duration
    console, draft = session.console, session.draft
    if request.inject:
        say(f"inject: {request.inject}")
        try:
            console.run(guest_command_for(request.inject), 60)
        except CommandTimeout:
            pass  # the injection may take the shell with it; the console still records
    if not request.storm_enabled:
        return
    say(f"storm: {storm_spec.name} for {duration}s")
    session.machine.enter(Lifecycle.STORMING)
    console.idle_hooks += fault_hooks(session.machine, request.harness_fault)
    watch = ReportWatch(console.log_handle.path, console.silent_for) if request.stop_on_report else None
    if watch is not None:
        console.idle_hooks.append(watch.hook)
    storm_started = time.monotonic()
    result = storm_stage.run_storm(session.channel, storm_spec, duration, request.seed, session.release)
    if watch is not None and watch.seen is not None and result.ended_how == "stopped-on-report":
        seen = watch.seen
        draft.set(stopped_early=StoppedEarly(title=seen.title, why=seen.why,
                                             header_after_s=round(seen.header_at - storm_started, 2),
                                             stopped_after_s=round(seen.complete_at - storm_started, 2)))
        draft.header_at = seen.header_at
        say(f"storm: stopped on report {seen.title!r} ({seen.why}) "
            f"{seen.complete_at - storm_started:.1f}s into the storm")
    if result.output:   # guest text: printable only, as everything taken from the guest
        (session.run_dir / "storm.log").write_text(results.sanitize_block(result.output))
    if result.classes:  # class names are guest text too
        (session.run_dir / "lock-classes.txt").write_text(results.sanitize_block(lock_classes_text(result.classes)))
    session.storm_state, session.note, session.failures = result.ended_how, result.timeout_reason, tuple(
        result.failures)
    draft.storm(**result.to_json())
    if request.faults:
        draft.set(faults={kind: storm_stage.injected_faults(result.counts).get(kind) for kind in request.faults})
    draft.set(lock_coverage=LockCoverage.from_json(result.lock_coverage))
    draft.durations(storm_s=round(result.wall_s, 2))
    say(f"storm: {result.ended_how} after {result.wall_s:.1f}s over {draft.record.channel}")
    if session.machine.alive:
        session.machine.enter(Lifecycle.READY)
    console.silence_limit_s = None   # a person at a shell may think for a while
    console.idle_hooks.clear()


def boot_and_storm(argv: list[str], run_dir: Path, console_log: Path, accel: str, plan: Plan, draft: Draft,
                   setup: ssh_channel.SshSetup | None = None,
                   enter: Callable[[str], None] = lambda stage: None) -> Ending:
    """boot, then storm: how it ended (a boot that failed included)."""
    try:
        with boot(argv, run_dir, console_log, accel, draft, setup=setup, pc_re=plan.arch.monitor_pc,
                  inactivity_s=plan.request.inactivity_s, enter=enter) as session:
            storm(session, plan)
    except BootFailed as failed:
        return failed.ending
    assert session.ending is not None
    return session.ending


def dump_guest_state(machine: Machine, draft: Draft, stage: str, pc_re: str = "") -> None:
    """Before a hung guest is killed: its state in console.log (Machine.dump_state); what was
    done, and the vCPU pcs for judge.locate_pcs, in the record's dump."""
    say(f"{stage}: guest not responding; dumping state (sysrq {', '.join(DUMP_SYSRQ)}; "
        f"monitor: {'; '.join(DUMP_MONITOR)})")
    draft.set(dump=machine.dump_state(pc_re))


def fault_hooks(machine: Machine, fault: str) -> list[Callable[[], None]]:
    """A harness_fault (MMLOCK_FAULT) of freeze:SECONDS (reliability tests): stop every vCPU
    through the monitor that many seconds into the storm, a guest hung so hard nothing answers."""
    match = re.fullmatch(r"freeze:(\d+(?:\.\d+)?)", fault)
    if not match:
        return []
    started = time.monotonic()

    def freeze() -> None:
        if time.monotonic() - started >= float(match.group(1)):
            machine.console.idle_hooks.remove(freeze)
            say(f"fault: freezing the guest (monitor: stop) {match.group(1)}s into the storm")
            machine.monitor("stop", timeout=20)
    return [freeze]


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
