"""The serial console: framing over QEMU's stdio chardev, read with pexpect.

Every byte goes to console.log as it arrives (unbuffered file, written by
pexpect's logfile_read before anyone interprets it). Commands are framed by
a random marker and their exit status, never by guessing prompts; the
marker is split with quotes in what we type, so the echo never matches.

The QEMU process behind the stream (start, SysRq and monitor through the
mux, kill, exit status) is harness.machine's; this module only reads and
writes the stream.
"""
from __future__ import annotations

import base64
import logging
import re
import secrets
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
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


class QemuStdio(PopenSpawn):
    """PopenSpawn whose reads wait for output instead of polling for it.

    pexpect 4.9's PopenSpawn.read_nonblocking returns at once when its reader
    thread has queued nothing, so expect() spins (a 0.1 ms sleep, then the
    search window copied and searched again) for as long as the guest is
    quiet: 0.3-0.4 CPU s of the harness during a 2-3 s boot, taken from the
    guest's TCG threads on a small host. Here the first chunk is waited for,
    blocking on the queue, and whatever else has arrived is taken with it."""

    _read_reached_eof: bool = False

    def read_nonblocking(self, size: int, timeout: float | None) -> bytes:
        if not self._buf and not self._read_reached_eof and size:
            wait = self.timeout if timeout == -1 else timeout
            try:
                first = self._read_queue.get(timeout=1e6 if wait is None else max(0.0, wait))
            except Empty:
                return self.string_type()
            if first is None:
                self._read_reached_eof = True
            else:
                self._buf += self._decoder.decode(first, final=False)
        return super().read_nonblocking(size, 0.001)


IDLE_SLICE_S = 2.0              # how often a long wait checks for silence and runs idle hooks


class SerialConsole:
    """The guest's console on a spawned QEMU's stdio (Machine spawns it; `on_eof` lets
    the machine collect QEMU's exit status when the stream ends)."""

    name = "console"

    def __init__(self, child: PopenSpawn, log_handle: ConsoleLog,
                 on_eof: Callable[[], None] = lambda: None) -> None:
        self.child = child
        self.log_handle = log_handle
        self.on_eof = on_eof
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
                self.on_eof()
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
                self.on_eof()
                return
            except pexpect.TIMEOUT:
                continue

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: the mux's Ctrl-A sequences too (harness.machine)."""
        try:
            self.child.send(data)
        except OSError as exc:
            raise ChannelClosed(f"console write failed: {exc}") from None

    def before(self) -> str:
        """What came before the last match, as text."""
        return self._text(self.child.before)

    def pump(self) -> bytes:
        """Read what has arrived (and so log it) while nobody else reads."""
        data = b""
        try:
            while True:
                chunk = self.child.read_nonblocking(65536, 0)
                if not chunk:
                    return data
                data += chunk
        except Exception:
            return data

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
        self.on_eof()

    # -- commands ----------------------------------------------------------
    def send_line(self, text: str) -> None:
        self.send_raw(text.encode() + b"\n")

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

    @property
    def alive(self) -> bool:
        """Whether the process at the stream's far end still runs."""
        return self.child.proc.poll() is None
