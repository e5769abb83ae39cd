"""An interactive shell in the guest (`python -m harness shell`): OpenSSH's ssh with the
run's key if installed, else a paramiko shell, else the serial console."""
from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import subprocess
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, TextIO

from harness.channel.fallback import StormChannel, pump_console
from harness.channel.ssh import HOST, POLL_S, USER, SshChannel

if TYPE_CHECKING:
    from harness.channel.serial import SerialConsole


def interactive(channel: StormChannel, stdin: TextIO | None = None, stdout: BinaryIO | None = None) -> str:
    """OpenSSH's ssh with the run's key if installed, else a paramiko shell,
    else the serial console; console.log keeps recording. Returns which."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout.buffer
    setup, console = channel.setup, channel.console
    if channel.ssh is not None and setup and setup.key_file and shutil.which("ssh"):
        stop = threading.Event()

        def pump() -> None:
            while not stop.wait(POLL_S):
                pump_console(console)

        argv = ["ssh", "-i", str(setup.key_file), "-p", str(setup.port),
                "-o", f"UserKnownHostsFile={setup.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", f"{USER}@{HOST}"]
        print(f"[more shells while this one lives: {shlex.join(argv)}]", file=sys.stderr, flush=True)
        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        try:
            subprocess.call(argv)
        finally:
            stop.set()
            thread.join()
        return "ssh"
    if channel.ssh is not None:
        _paramiko_shell(channel.ssh, stdin, stdout, lambda: pump_console(console))
        return "paramiko"
    _console_shell(console, stdin, stdout)
    return "console"


@contextlib.contextmanager
def _raw_tty(stdin: TextIO) -> Iterator[None]:
    if not stdin.isatty():
        yield
        return
    saved = termios.tcgetattr(stdin.fileno())
    tty.setraw(stdin.fileno())
    try:
        yield
    finally:
        termios.tcsetattr(stdin.fileno(), termios.TCSADRAIN, saved)


def _paramiko_shell(ssh: SshChannel, stdin: TextIO, stdout: BinaryIO, idle: Callable[[], object]) -> None:
    size = shutil.get_terminal_size((80, 24))
    chan = ssh.transport.open_session(timeout=30)
    chan.get_pty(os.environ.get("TERM", "vt100"), size.columns, size.lines)
    chan.invoke_shell()
    inputs: list = [chan, stdin]
    with _raw_tty(stdin):
        while not chan.closed:
            ready, _, _ = select.select(inputs, [], [], POLL_S)
            if chan in ready:
                data = chan.recv(65536)
                if not data:
                    break
                stdout.write(data)
                stdout.flush()
            if stdin in ready:
                data = os.read(stdin.fileno(), 4096)
                if data:
                    chan.sendall(data)
                else:   # end of our input: the guest's shell sees it and ends
                    chan.shutdown_write()
                    inputs.remove(stdin)
            idle()
    chan.close()


def _console_shell(console: SerialConsole, stdin: TextIO, stdout: BinaryIO) -> None:
    """Line mode on the serial console: kernel messages interleave, as they do there."""
    stdout.write(b"[serial console: one line at a time; end with Ctrl-D or 'exit']\n")
    console.send_line("stty echo 2>/dev/null")
    while getattr(console, "alive", True):
        ready, _, _ = select.select([stdin], [], [], POLL_S)
        stdout.write(pump_console(console))
        stdout.flush()
        if stdin in ready:
            line = stdin.readline()
            if not line or line.strip() == "exit":
                return
            console.send_line(line.rstrip("\n"))
