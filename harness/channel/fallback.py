"""The channel a run hands to the storm: SSH while it lasts, then the console.

Commands run under guest/init/mmlock-cmd, which keeps their output in a
guest file: when the SSH connection dies mid-command (sshd killed, network
wedged) the command goes on, and StormChannel collects its result over the
console and stays on the console for the rest of the run, recording why.
A QEMU that exited is ChannelClosed as before.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.channel import ssh
from harness.channel.base import ChannelClosed, CommandResult, CommandTimeout
from harness.channel.ssh import SshChannel, SshLost, SshSetup

if TYPE_CHECKING:
    from harness.channel.serial import SerialConsole

log = logging.getLogger(__name__)


def pump_console(console: object) -> bytes:
    """Read what the console has (pexpect writes it to console.log) while nobody else does."""
    pump = getattr(console, "pump", None)
    return pump() if pump is not None else b""


@dataclass
class StormChannel:
    """The Channel a run hands to the storm: SSH, and the console once SSH is gone."""

    console: SerialConsole
    ssh: SshChannel | None
    record: dict = field(default_factory=dict)    # what happened to SSH: verdict.json's "ssh" (facts())
    fault: str = ""
    setup: SshSetup | None = None
    opened_over: str = "console"                  # what carried the first command: verdict.json's "channel"
    _fault_done: bool = False

    @property
    def name(self) -> str:
        return "ssh" if self.ssh is not None else "console"

    def facts(self) -> dict:
        """The record without its bookkeeping (keys starting with _): verdict.json's "ssh"."""
        return {k: v for k, v in self.record.items() if not k.startswith("_")}

    def _fall_back(self, reason: str, lost_at: float) -> None:
        log.warning("ssh: %s; the console carries the rest of the run", reason)
        self.record["fallback"] = {"reason": reason, "at_s": round(lost_at - self.record.get("_t0", 0), 2)}
        if self.ssh is not None:
            self.ssh.close()
        self.ssh = None

    def _console_alive(self, grace_s: float = 1.0) -> bool:
        """A guest that died takes the SSH connection with it: give QEMU a moment to exit."""
        end = time.monotonic() + grace_s
        while time.monotonic() < end:
            if not getattr(self.console, "alive", True):
                return False
            pump_console(self.console)
            time.sleep(0.1)
        return getattr(self.console, "alive", True)

    def _idle(self) -> None:
        pump_console(self.console)
        idle = getattr(self.console, "idle", None)
        if idle is not None:
            idle()   # the console's hooks and its silence limit (GuestSilent)
        match = re.fullmatch(r"kill-sshd:(\d+(?:\.\d+)?)", self.fault)
        if match and not self._fault_done and self.ssh is not None:
            started = self.record.get("_command_started", time.monotonic())
            if time.monotonic() - started >= float(match.group(1)):
                self._fault_done = True
                self.record["fault"] = f"killall dropbear sent on the console after {match.group(1)}s"
                self.record["fault_at_s"] = round(time.monotonic() - self.record.get("_t0", 0), 2)
                self.console.send_line("killall dropbear")

    def _lost(self, exc: SshLost) -> None:
        """SSH died: QEMU with it (ChannelClosed), or only SSH (the console from now on)."""
        lost_at = time.monotonic()
        if not self._console_alive():
            raise ChannelClosed(f"QEMU exited ({exc})") from None
        self._fall_back(str(exc), lost_at)

    def run(self, command: str, timeout: float) -> CommandResult:
        if self.ssh is not None:
            self.record["_command_started"] = time.monotonic()
            try:
                return self.ssh.run(command, timeout)
            except SshLost as exc:
                self._lost(exc)
                if exc.command_id:
                    left = max(5.0, timeout - (time.monotonic() - exc.started))
                    return self._recover(exc.command_id, command, left)
        return self.console.run(command, timeout)

    def _recover(self, command_id: str, command: str, timeout: float) -> CommandResult:
        """The command outlived its SSH connection: wait for it over the console."""
        started = time.monotonic()
        result = self.console.run(f"mmlock-cmd wait {command_id} {int(timeout)}", timeout + 30)
        output = result.output
        if f"MMLOCK-CMD: running {command_id}" in output:
            raise CommandTimeout(f"command timed out after {timeout:.0f}s: {command}",
                                 output.replace(f"MMLOCK-CMD: running {command_id}", ""))
        if f"MMLOCK-CMD: unknown {command_id}" in output:
            self.record["fallback"]["rerun"] = command[:200]
            return self.console.run(command, timeout)
        self.record["fallback"]["recovered"] = command[:200]
        return CommandResult(result.status, output, time.monotonic() - started)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        if self.ssh is not None:
            try:
                return self.ssh.fetch(path, timeout)
            except SshLost as exc:
                self._lost(exc)
        return self.console.fetch(path, timeout)

    def close(self) -> None:
        if self.ssh is not None:
            self.ssh.close()
        for key in [k for k in self.record if k.startswith("_")]:
            del self.record[key]


def open_for_run(console: SerialConsole, setup: SshSetup | None, accel: str) -> StormChannel:
    """After the ready marker: the run's channel, SSH if sshd answers in time. Never raises
    for SSH trouble (the console is the fallback); what happened is in its facts()."""
    record: dict = {"enabled": bool(setup and setup.enabled), "_t0": time.monotonic()}
    channel = StormChannel(console, None, record, setup.fault if setup else "", setup)
    if setup is None or not setup.enabled or setup.keys is None:
        record["reason"] = setup.reason if setup else "not prepared"
        return channel
    record["port"] = setup.port
    started = time.monotonic()
    try:
        channel.ssh = SshChannel.connect(setup.port, setup.keys, ssh.CONNECT_TIMEOUT_S.get(accel, 60.0),
                                         alive=lambda: getattr(console, "alive", True),
                                         idle=lambda: pump_console(console))
        channel.ssh.idle = channel._idle
        record["up_s"] = round(time.monotonic() - started, 2)
        channel.opened_over = "ssh"
        log.info("ssh: sshd up %.1fs after the ready marker (port %d)", record["up_s"], setup.port)
    except ChannelClosed as exc:
        record["error"] = str(exc)
        log.warning("ssh: %s; using the console", exc)
        if getattr(console, "alive", False):
            try:   # the guest's side of the story, for verdict.json
                record["guest_log"] = console.run("cat /tmp/net-up.log /tmp/dropbear.log 2>&1 | tail -n 20",
                                                  20).output[-2000:]
            except (ChannelClosed, CommandTimeout):
                pass
    return channel
