"""The QEMU process of one run, and its lifecycle.

A Machine starts QEMU (again on another forwarded port when the first one is
taken), hands its stdio to a SerialConsole for framing, reaches the guest
out of band through the console mux (Magic SysRq by serial break, the QEMU
monitor), dumps a hung guest's state before killing it, and stops it with
the console log flushed. Its state is explicit:

    starting -> ready -> storming -> stopping -> gone

(`gone` from anywhere: QEMU may end on its own.)
"""
from __future__ import annotations

import enum
import logging
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect

from harness.channel.base import ChannelClosed, CommandTimeout
from harness.channel.serial import ConsoleLog, QemuStdio, SerialConsole
from harness.record import GuestDump
from harness.verdict import Ending

if TYPE_CHECKING:
    from harness.channel.ssh import SshSetup

log = logging.getLogger(__name__)

MUX_ESCAPE = b"\x01"            # QEMU's mux escape, Ctrl-A: Ctrl-A c the monitor, Ctrl-A b a serial break
MONITOR_PROMPT = re.compile(rb"\(qemu\) ")
QEMU_START_S = 1.0      # a hostfwd that cannot bind ends QEMU within this, before any output
PORT_ATTEMPTS = 3
DUMP_TIMEOUT_S = 45
DUMP_SYSRQ = "wtd"   # blocked tasks, all tasks, held locks
DUMP_MONITOR = ("info cpus", "info registers -a")
PC_SAMPLES = 3          # `info registers -a` again, PC_GAP_S apart: spinning or asleep?
PC_GAP_S = 0.5


class Lifecycle(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    STORMING = "storming"
    STOPPING = "stopping"
    GONE = "gone"


_MOVES = {
    Lifecycle.STARTING: {Lifecycle.READY, Lifecycle.STOPPING, Lifecycle.GONE},
    Lifecycle.READY: {Lifecycle.STORMING, Lifecycle.STOPPING, Lifecycle.GONE},
    Lifecycle.STORMING: {Lifecycle.READY, Lifecycle.STOPPING, Lifecycle.GONE},
    Lifecycle.STOPPING: {Lifecycle.GONE},
    Lifecycle.GONE: set(),
}


class Machine:
    def __init__(self, argv: list[str], run_dir: Path, console_log: Path,
                 forward: SshSetup | None = None) -> None:
        self.argv = list(argv)
        self.run_dir = run_dir
        self.console_log = console_log
        self.forward = forward            # the SSH port QEMU forwards, if any
        self.state = Lifecycle.STARTING
        self.console = self._spawn()

    # -- lifecycle ------------------------------------------------------------------
    def enter(self, state: Lifecycle) -> None:
        if state is self.state:
            return
        if state not in _MOVES[self.state]:
            raise RuntimeError(f"machine: no way from {self.state.value} to {state.value}")
        log.debug("machine: %s -> %s", self.state.value, state.value)
        self.state = state

    @classmethod
    def start(cls, argv: list[str], run_dir: Path, console_log: Path,
              forward: SshSetup | None = None) -> Machine:
        """Start QEMU. If it ends at once with status 1 and no output while forwarding a
        port, take the port as taken by someone else: pick another (rewriting the argv,
        qemu-cmdline.txt, repro.sh and known_hosts) and start again."""
        machine = cls(argv, run_dir, console_log, forward)
        for _ in range(PORT_ATTEMPTS - 1):
            if forward is None or not forward.enabled or not machine._ended_at_once():
                break
            machine.console.log_handle.close()
            old = f"hostfwd=tcp:127.0.0.1:{forward.port}-:22"
            forward.repick_port()
            new = f"hostfwd=tcp:127.0.0.1:{forward.port}-:22"
            log.warning("QEMU ended at once; taking %s as a port clash and retrying with %s", old, new)
            machine.argv = [arg.replace(old, new) for arg in machine.argv]
            for name in ("qemu-cmdline.txt", "repro.sh"):
                path = run_dir / name
                if path.is_file():
                    path.write_text(path.read_text().replace(old, new))
            machine.console = machine._spawn()
        return machine

    def _spawn(self) -> SerialConsole:
        log_handle = ConsoleLog(self.console_log)
        # Pipes, not a pty: QEMU puts a tty stdio into OPOST|ONLCR mode,
        # which would turn the guest's \r\n into \r\r\n on the way to us;
        # with pipes console.log is byte for byte what the guest sent.
        try:
            child = QemuStdio(self.argv, cwd=str(self.run_dir), timeout=None, maxread=65536,
                               searchwindowsize=16384)
        except (OSError, pexpect.ExceptionPexpect) as exc:
            log_handle.close()
            raise ChannelClosed(f"cannot start {self.argv[0]}: {exc}") from None
        self.process = child.proc
        return SerialConsole(child, log_handle, on_eof=self._reap)

    def _ended_at_once(self) -> bool:
        deadline = time.monotonic() + QEMU_START_S
        while time.monotonic() < deadline and self.alive:
            time.sleep(0.05)
        return (not self.alive and self.exit_status()[0] == 1
                and (not self.console_log.exists() or self.console_log.stat().st_size == 0))

    def wait_ready(self, pattern: re.Pattern, timeout: float) -> re.Match:
        """The guest's ready marker on the console (ChannelClosed, CommandTimeout, GuestSilent)."""
        match = self.console.expect(pattern, timeout)
        self.enter(Lifecycle.READY)
        return match

    # -- the process ------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _reap(self) -> None:
        """EOF comes first and the exit status a moment later: wait for it,
        so a QEMU that died on its own is not taken for one we killed."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def exit_status(self) -> tuple[int | None, int | None]:
        """(exit status, signal) of QEMU once it has ended; (None, None) while running."""
        code = self.process.poll()
        if code is None:
            return None, None
        return (code, None) if code >= 0 else (None, -code)

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait()

    def stop(self, grace_s: float = 5.0) -> None:
        """Keep reading until QEMU ends (or grace_s), kill it if needed, flush the log."""
        if self.console.log_handle.closed:
            return
        self.enter(Lifecycle.STOPPING)
        try:
            if self.alive and grace_s > 0:
                self.console.drain(grace_s)
        finally:   # whatever went wrong above (a bug of ours too), QEMU does not outlive the run
            try:
                self.kill()
                self.console.drain(5)  # what QEMU wrote before it died is still in the pipe
            finally:
                try:
                    self.process.stdin.close()
                except OSError:
                    pass
                self.console.log_handle.flush()
                self.console.log_handle.close()
                self.enter(Lifecycle.GONE)

    def ending(self, ready: bool, storm_state: str, failures: tuple[str, ...], killed: bool, note: str) -> Ending:
        """How QEMU and the guest ended; a QEMU still running is killed first."""
        if self.alive:
            self.kill()
            killed = True
        exit_status, signal = self.exit_status()
        return Ending(reached_ready=ready, storm=storm_state, qemu_exit=exit_status, qemu_signal=signal,
                      killed_by_harness=killed, stressor_failures=failures, note=note)

    # -- out of band: SysRq by serial break, the QEMU monitor ----------------------------
    def sysrq(self, keys: str, quiet_s: float = 2.0, timeout: float = 30.0) -> None:
        """Magic SysRq without the guest's shell: a serial break, then the key."""
        for key in keys:
            self.console.send_raw(MUX_ESCAPE + b"b")
            time.sleep(0.2)
            self.console.send_raw(key.encode())
            self.console.settle(quiet_s, timeout)

    def monitor(self, command: str, timeout: float = 20.0) -> str:
        """One QEMU monitor command through the mux; its output (also in console.log)."""
        self.console.send_raw(MUX_ESCAPE + b"c")
        try:
            self.console.expect(MONITOR_PROMPT, timeout)
            self.console.send_raw(command.encode() + b"\n")
            self.console.expect(MONITOR_PROMPT, timeout)
            return self.console.before()
        finally:
            if self.alive:
                self.console.send_raw(MUX_ESCAPE + b"c")

    def dump_state(self, pc_re: str = "") -> GuestDump:
        """Before a hung guest is killed: Magic SysRq w, t, d (blocked tasks, all tasks, held
        locks, by serial break: no guest shell needed), then each vCPU's registers from the
        monitor, PC_SAMPLES times; all of it lands in console.log. pc_re (the arch's monitor_pc)
        picks each vCPU's pc (a hex string) out of a register dump: one list per sample."""
        self.console.silence_limit_s = None
        self.console.idle_hooks.clear()
        done: list[str] = []
        samples: list[list[str]] = []
        started = time.monotonic()
        try:
            self.sysrq(DUMP_SYSRQ, quiet_s=2.0, timeout=DUMP_TIMEOUT_S)
            done.append(f"sysrq {DUMP_SYSRQ}")
            for command in DUMP_MONITOR:
                text = self.monitor(command, timeout=20)
                done.append(command)
                if command == "info registers -a" and pc_re:
                    samples.append(re.findall(pc_re, text))
            while pc_re and len(samples) < PC_SAMPLES:
                time.sleep(PC_GAP_S)
                samples.append(re.findall(pc_re, self.monitor("info registers -a", timeout=20)))
        except (ChannelClosed, CommandTimeout):
            pass  # best effort: QEMU itself may be gone or wedged
        return GuestDump(done=done, wall_s=round(time.monotonic() - started, 2), pcs=samples or None)

    # -- a `with` block ----------------------------------------------------------------
    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(grace_s=1)
