"""The serial console: QEMU's stdio chardev under pexpect.

Every byte goes to console.log as it arrives (unbuffered file, written by
pexpect's logfile_read before anyone interprets it). Commands are framed by
a random marker and their exit status, never by guessing prompts; the
marker is split with quotes in what we type, so the echo never matches.

The chardev is a mux shared with the QEMU monitor (Ctrl-A c switches,
Ctrl-A b sends a serial break): a guest whose shell is stuck still answers
Magic SysRq through a break, and QEMU itself answers monitor commands.
"""
from __future__ import annotations

import base64
import logging
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pexpect
from pexpect.popen_spawn import PopenSpawn

from harness.channel.base import ChannelClosed, CommandResult, CommandTimeout, GuestSilent
from harness.errors import InfraError

log = logging.getLogger(__name__)


class ConsoleLog:
    """console.log, unbuffered. A write error (a full disk) is remembered,
    not raised inside pexpect's reader, so the harness can stop the run
    cleanly and say why; what was written before it stays on disk."""

    def __init__(self, path: Path) -> None:
        self.handle: BinaryIO = open(path, "ab", buffering=0)
        self.path = path
        self.error: OSError | None = None
        self.last_data = time.monotonic()   # when the guest last sent anything

    def write(self, data: bytes) -> None:
        if data:   # pexpect logs an empty read on every timeout
            self.last_data = time.monotonic()
        if self.error is not None:
            return
        try:
            self.handle.write(data)
        except OSError as exc:
            self.error = exc

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as exc:
            self.error = self.error or exc

    @property
    def closed(self) -> bool:
        return self.handle.closed

    def close(self) -> None:
        try:
            self.handle.close()
        except OSError as exc:
            self.error = self.error or exc


MUX_ESCAPE = b"\x01"            # QEMU's mux escape, Ctrl-A
MONITOR_PROMPT = re.compile(rb"\(qemu\) ")
IDLE_SLICE_S = 2.0              # how often a long wait checks for silence and runs idle hooks


class SerialConsole:
    name = "console"

    def __init__(self, argv: list[str], console_log: Path, env: dict | None = None,
                 cwd: Path | None = None) -> None:
        self.log_handle = ConsoleLog(console_log)
        self.started = time.monotonic()
        # Pipes, not a pty: QEMU puts a tty stdio into OPOST|ONLCR mode,
        # which would turn the guest's \r\n into \r\r\n on the way to us;
        # with pipes console.log is byte for byte what the guest sent.
        try:
            self.child = PopenSpawn(argv, env=env, cwd=str(cwd) if cwd else None, timeout=None,
                                    maxread=65536, searchwindowsize=16384)
        except (OSError, pexpect.ExceptionPexpect) as exc:
            self.log_handle.close()
            raise ChannelClosed(f"cannot start {argv[0]}: {exc}") from None
        self.child.logfile_read = self.log_handle
        self.child.delaybeforesend = None
        # While set, a wait that sees nothing from the guest for this long ends
        # in GuestSilent (boot and storm; never an interactive session).
        self.silence_limit_s: float | None = None
        self.idle_hooks: list[Callable[[], None]] = []  # run every IDLE_SLICE_S while waiting

    # -- liveness ----------------------------------------------------------
    def silent_for(self) -> float:
        return time.monotonic() - self.log_handle.last_data

    def idle(self) -> None:
        """Called while waiting (here, or by a channel waiting on SSH): idle hooks,
        then GuestSilent once the guest has said nothing for silence_limit_s."""
        for hook in list(self.idle_hooks):
            hook()
        limit = self.silence_limit_s
        if limit is not None and self.silent_for() > limit:
            raise GuestSilent(f"nothing from the guest for {self.silent_for():.0f}s "
                              f"(inactivity limit {limit:.0f}s)")

    # -- reading -----------------------------------------------------------
    def expect(self, pattern: bytes | re.Pattern, timeout: float) -> re.Match:
        """Wait for a regex on the console; ChannelClosed on EOF, CommandTimeout on timeout,
        GuestSilent when the guest goes quiet for silence_limit_s."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            watched = self.silence_limit_s is not None or self.idle_hooks
            try:
                self.child.expect([pattern], timeout=max(0.0, min(left, IDLE_SLICE_S) if watched else left))
                break
            except pexpect.EOF:
                self.check_log()
                self._reap()
                raise ChannelClosed("QEMU exited") from None
            except pexpect.TIMEOUT:
                self.check_log()
                if time.monotonic() >= deadline:
                    raise CommandTimeout(f"no match for {pattern!r} within {timeout:.0f}s") from None
                self.idle()
        self.check_log()
        match = self.child.match
        assert isinstance(match, re.Match)
        return match

    def settle(self, quiet_s: float, timeout: float) -> None:
        """Read (and log) until the guest has been quiet for quiet_s, QEMU exits, or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.silent_for() < quiet_s:
            try:
                self.child.expect([pexpect.EOF], timeout=min(0.5, max(0.0, deadline - time.monotonic())))
                self._reap()
                return
            except pexpect.TIMEOUT:
                continue

    # -- out of band: SysRq by serial break, the QEMU monitor ----------------
    def sysrq(self, keys: str, quiet_s: float = 2.0, timeout: float = 30.0) -> None:
        """Magic SysRq without the guest's shell: a serial break, then the key."""
        for key in keys:
            self._send_raw(MUX_ESCAPE + b"b")
            time.sleep(0.2)
            self._send_raw(key.encode())
            self.settle(quiet_s, timeout)

    def monitor(self, command: str, timeout: float = 20.0) -> str:
        """One QEMU monitor command through the mux; its output (also in console.log)."""
        self._send_raw(MUX_ESCAPE + b"c")
        try:
            self.expect(MONITOR_PROMPT, timeout)
            self._send_raw(command.encode() + b"\n")
            self.expect(MONITOR_PROMPT, timeout)
            return self._text(self.child.before)
        finally:
            if self.alive:
                self._send_raw(MUX_ESCAPE + b"c")

    def _send_raw(self, data: bytes) -> None:
        try:
            self.child.send(data)
        except OSError as exc:
            raise ChannelClosed(f"console write failed: {exc}") from None

    def check_log(self) -> None:
        """Stop the run, loudly, once console.log cannot be written."""
        if self.log_handle.error is not None:
            raise InfraError(f"cannot write {self.log_handle.path}: {self.log_handle.error.strerror}; "
                             "the console log is kept up to that point")

    def drain(self, timeout: float) -> None:
        """Read (and so log) whatever arrives until QEMU exits or the timeout."""
        try:
            self.child.expect([pexpect.EOF], timeout=timeout)
        except pexpect.TIMEOUT:
            return
        self._reap()

    def _reap(self) -> None:
        """EOF comes first and the exit status a moment later: wait for it,
        so a QEMU that died on its own is not taken for one we killed."""
        try:
            self.child.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    # -- commands ----------------------------------------------------------
    def send_line(self, text: str) -> None:
        self._send_raw(text.encode() + b"\n")

    def run(self, command: str, timeout: float) -> CommandResult:
        token = "MMLOCK" + secrets.token_hex(6)
        begin = f"{token}-begin"
        end_re = re.compile(rb"%s-end (\d+)\r?\n" % token.encode())
        # What we type contains the token split by quotes, so the tty echo
        # of this line never matches the begin or end pattern.
        split = f"'{token[:3]}''{token[3:]}'"
        self.send_line(f"echo {split}-begin; {command}; echo {split}-end $?")
        started = time.monotonic()
        try:
            self.expect(re.compile(begin.encode() + rb"\r?\n"), timeout)
            remaining = max(1.0, timeout - (time.monotonic() - started))
            match = self.expect(end_re, remaining)
        except GuestSilent as exc:
            raise GuestSilent(f"{exc}: {command}", self._text(self.child.before), exc.reason) from exc
        except CommandTimeout as exc:
            raise CommandTimeout(f"command timed out after {timeout:.0f}s: {command}",
                                 self._text(self.child.before)) from exc
        output = self._text(self.child.before)
        return CommandResult(int(match.group(1)), output, time.monotonic() - started)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        result = self.run(f"base64 {shlex.quote(path)}", timeout)
        if result.status != 0:
            raise FileNotFoundError(f"guest: cannot read {path}: {result.output.strip()}")
        # Kernel messages may interleave; keep only base64-looking lines.
        lines = [ln.strip() for ln in result.output.splitlines()
                 if re.fullmatch(r"[A-Za-z0-9+/=]+", ln.strip())]
        return base64.b64decode("".join(lines))

    @staticmethod
    def _text(data: object) -> str:
        if isinstance(data, bytes):
            return data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "")
        return ""

    # -- lifetime ----------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.child.proc.poll() is None

    def exit_status(self) -> tuple[int | None, int | None]:
        """(exit status, signal) of QEMU once it has ended; (None, None) while running."""
        code = self.child.proc.poll()
        if code is None:
            return None, None
        return (code, None) if code >= 0 else (None, -code)

    def kill(self) -> None:
        if self.alive:
            self.child.proc.kill()
            self.child.proc.wait()

    def close(self, grace_s: float = 5.0) -> None:
        """Keep reading until QEMU ends (or grace_s), kill it if needed, flush the log."""
        if self.log_handle.closed:
            return
        try:
            if self.alive and grace_s > 0:
                self.drain(grace_s)
        finally:   # whatever went wrong above (a bug of ours too), QEMU does not outlive the run
            try:
                self.kill()
                self.drain(5)  # what QEMU wrote before it died is still in the pipe
            finally:
                try:
                    self.child.proc.stdin.close()
                except OSError:
                    pass
                self.log_handle.flush()
                self.log_handle.close()
