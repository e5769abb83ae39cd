"""SSH into the guest: dropbear there (guest/init/net-up), paramiko here.

The serial console stays the record of what the kernel printed; commands
go over SSH when it is up, so their output never interleaves with kernel
messages (channel/fallback.py: SSH while it lasts, then the console;
channel/shell.py: a person's shell). Per run the host makes two fresh ed25519 keys: the client's (its
public half is the guest's authorized_keys) and dropbear's host key (so the
client pins it; no trust on first use, no passwords). QEMU forwards a free
127.0.0.1 port to the guest's port 22.

Commands run under guest/init/mmlock-cmd, which keeps their output in a
guest file: when the SSH connection dies mid-command (sshd killed, network
wedged) the command goes on, and StormChannel, the channel a run uses,
collects its result over the console and stays on the console for the rest
of the run, recording why. A QEMU that exited is ChannelClosed as before.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import secrets
import select
import shlex
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.channel.base import ChannelClosed, CommandResult, CommandTimeout, GuestSilent

log = logging.getLogger(__name__)

USER = "root"
HOST = "127.0.0.1"
KEEPALIVE_S = 2
POLL_S = 0.2
HOST_KEY_FILE = "etc/harness/ssh_host_ed25519_key.b64"   # in the per-run overlay; net-up installs it
CMD_DIR = "/tmp/mmlock-cmd"      # guest/init/mmlock-cmd keeps each command's output there
CONNECT_TIMEOUT_S = {"kvm": 30.0, "tcg": 60.0}
# paramiko logs a traceback at ERROR for every attempt that finds no sshd
# yet; attempts log here instead (quiet), a working transport to paramiko's.
_ATTEMPT_LOG = "harness.channel.ssh.attempt"
logging.getLogger(_ATTEMPT_LOG).setLevel(logging.CRITICAL)


# -- per-run keys -------------------------------------------------------------
def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


@dataclass(frozen=True)
class RunKeys:
    """A client key pair and a host key pair, made fresh for one run."""

    client_private: str      # OpenSSH private key (PEM), for paramiko and ssh -i
    client_public: str       # "ssh-ed25519 AAAA... comment": the guest's authorized_keys
    host_private: bytes      # dropbear's own key file format
    host_public: str         # "ssh-ed25519 AAAA...": what the client pins

    @property
    def host_public_blob(self) -> bytes:
        return base64.b64decode(self.host_public.split()[1])

    def overlay_files(self) -> dict[str, str]:
        """Text files for the per-run initramfs overlay (net-up installs them)."""
        return {"etc/harness/authorized_keys": self.client_public + "\n",
                HOST_KEY_FILE: base64.b64encode(self.host_private).decode() + "\n"}

    def pkey(self) -> paramiko.PKey:
        return paramiko.Ed25519Key.from_private_key(io.StringIO(self.client_private))


def generate_keys(comment: str = "mmlock-harness") -> RunKeys:
    """Two ed25519 pairs via `cryptography` (already paramiko's dependency):
    no subprocess, no ssh-keygen or dropbearkey on the host. paramiko itself
    cannot generate ed25519 keys."""
    client = Ed25519PrivateKey.generate()
    client_private = client.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                          serialization.NoEncryption()).decode()
    client_public = client.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                     serialization.PublicFormat.OpenSSH).decode()
    host = Ed25519PrivateKey.generate()
    seed = host.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())
    public = host.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # dropbear's ed25519 key file (ed25519.c buf_put_ed25519_priv_key):
    # string "ssh-ed25519", string (32-byte seed || 32-byte public key).
    host_private = _ssh_string(b"ssh-ed25519") + _ssh_string(seed + public)
    host_public = "ssh-ed25519 " + base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(public)).decode()
    return RunKeys(client_private, f"{client_public} {comment}", host_private, host_public)


def write_client_files(keys: RunKeys, directory: Path, port: int) -> tuple[Path, Path]:
    """The private key and a known_hosts pinning the host key, for OpenSSH's ssh (mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path, known = directory / "id_ed25519", directory / "known_hosts"
    for path, text in ((key_path, keys.client_private), (known, f"[{HOST}]:{port} {keys.host_public}\n")):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
    return key_path, known


# -- the forwarded port ----------------------------------------------------------
def free_port() -> int:
    """A 127.0.0.1 port nobody listens on, reserved for about a minute.

    Binding port 0 asks the kernel for a free one. Before giving it back we
    connect to it and close the accepted end first, which leaves that end in
    TIME_WAIT: the kernel then hands the port to no other bind(0) for a
    minute, while QEMU's slirp, which binds with SO_REUSEADDR, still can.
    Two runs at once get two ports.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        client = socket.create_connection((HOST, port), timeout=5)
        accepted, _ = listener.accept()
        accepted.close()   # the side that closes first holds TIME_WAIT on (127.0.0.1, port)
        client.close()
    finally:
        listener.close()
    return port


# -- the channel -----------------------------------------------------------------
class SshLost(ChannelClosed):
    """The SSH connection died; the guest (and the command) may well live on."""

    def __init__(self, message: str, command_id: str | None = None, started: float = 0.0) -> None:
        super().__init__(message)
        self.command_id = command_id
        self.started = started


class SshChannel:
    """run/fetch over an authenticated paramiko transport to the guest's dropbear."""

    name = "ssh"

    def __init__(self, transport: paramiko.Transport, idle: Callable[[], object] | None = None) -> None:
        self.transport = transport
        self.idle = idle or (lambda: None)   # called while waiting (StormChannel reads the console)

    @classmethod
    def connect(cls, port: int, keys: RunKeys, timeout: float, alive: Callable[[], bool] = lambda: True,
                idle: Callable[[], object] | None = None, host: str = HOST) -> SshChannel:
        """Wait (bounded, with backoff) until sshd answers and accepts our key.

        QEMU accepts the TCP connection even before the guest listens, so
        "up" means an SSH banner, a pinned host key and a successful auth.
        """
        deadline = time.monotonic() + timeout
        delay, last = 0.25, "no attempt"
        pkey = keys.pkey()
        while True:
            if not alive():
                raise ChannelClosed(f"QEMU exited while waiting for sshd ({last})")
            sock = None
            try:
                sock = socket.create_connection((host, port), timeout=min(10.0, max(1.0, deadline - time.monotonic())))
                transport = paramiko.Transport(sock)
                transport.set_log_channel(_ATTEMPT_LOG)
                transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = 30
                transport.start_client(timeout=30)
                server_key = transport.get_remote_server_key()
                if server_key.asbytes() != keys.host_public_blob:
                    transport.close()
                    raise ChannelClosed(f"sshd on port {port} offered an unknown host key "
                                        f"({server_key.get_name()} {server_key.get_base64()[:24]}...)")
                transport.auth_publickey(USER, pkey)
                transport.set_keepalive(KEEPALIVE_S)
                transport.set_log_channel("paramiko.transport")
                sock.settimeout(None)
                return cls(transport, idle)
            except ChannelClosed:
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                last = f"{type(exc).__name__}: {exc}".strip()
                if sock is not None:
                    sock.close()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelClosed(f"sshd on {host}:{port} did not answer within {timeout:.0f}s ({last})")
            end = time.monotonic() + min(delay, remaining)
            while time.monotonic() < end:
                if idle:
                    idle()
                time.sleep(min(POLL_S, max(0.0, end - time.monotonic())))
            delay = min(delay * 2, 2.0)

    @property
    def alive(self) -> bool:
        return self.transport.is_active()

    def _open(self, command: str) -> paramiko.Channel:
        try:
            chan = self.transport.open_session(timeout=30)
            chan.exec_command(command)
            return chan
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SshLost(f"ssh: cannot start a command: {exc}") from None

    def _collect(self, chan: paramiko.Channel, timeout: float, command_id: str | None,
                 started: float, stderr: bool) -> tuple[int, bytes, bytes]:
        out, err = bytearray(), bytearray()
        deadline = started + timeout
        try:
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if (chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready()
                        and (chan.eof_received or chan.closed)):
                    break
                if chan.closed or not self.transport.is_active():
                    if chan.exit_status_ready():
                        break
                    raise SshLost("ssh connection lost mid-command", command_id, started)
                if time.monotonic() > deadline:
                    raise CommandTimeout(f"ssh command timed out after {timeout:.0f}s",
                                         (out + err).decode(errors="replace"))
                select.select([chan], [], [], POLL_S)
                self.idle()
            status = chan.recv_exit_status()
        finally:
            chan.close()
        if status == -1:
            raise SshLost("ssh connection lost: the command ended without an exit status", command_id, started)
        return status, bytes(out), bytes(err) if stderr else b""

    def run(self, command: str, timeout: float) -> CommandResult:
        command_id = secrets.token_hex(6)
        started = time.monotonic()
        chan = self._open(f"exec mmlock-cmd run {command_id} {shlex.quote(command)}")
        try:
            status, out, _ = self._collect(chan, timeout, command_id, started, stderr=False)
        except GuestSilent as exc:   # the guest says nothing: do not ask it for the output
            raise GuestSilent(f"{exc}: {command}", exc.partial, exc.reason) from None
        except CommandTimeout as exc:
            # The output so far is in the guest's file: fetch it if the guest still answers.
            try:
                partial = self.fetch(f"{CMD_DIR}/{command_id}.out", 5).decode(errors="replace")
            except (ChannelClosed, CommandTimeout, FileNotFoundError):
                partial = exc.partial
            raise CommandTimeout(f"command timed out after {timeout:.0f}s: {command}", partial) from None
        return CommandResult(status, out.decode(errors="replace"), time.monotonic() - started)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        started = time.monotonic()
        chan = self._open(f"cat {shlex.quote(path)}")
        status, out, err = self._collect(chan, timeout, None, started, stderr=True)
        if status != 0:
            raise FileNotFoundError(f"guest: cannot read {path}: {err.decode(errors='replace').strip()}")
        return out

    def close(self) -> None:
        self.transport.close()


@dataclass
class SshSetup:
    """What a run prepares before boot: keys, port, and whether to use SSH at all."""

    enabled: bool
    port: int = 0
    keys: RunKeys | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    reason: str = ""
    fault: str = ""                 # MMLOCK_SSH_FAULT, a self-test: kill-sshd:SECONDS
    run_dir: Path | None = None

    def secret_files(self) -> tuple[str, ...]:
        """The overlay's private files: mode 0600, and stripped from the results' copy after the run."""
        return (HOST_KEY_FILE,) if self.enabled and self.keys else ()

    def repick_port(self) -> None:
        """Another free port (QEMU could not bind this one), and known_hosts for it."""
        self.port = free_port()
        if self.keys:
            where = (self.run_dir or Path(".")) / "ssh"
            self.key_file, self.known_hosts = write_client_files(self.keys, where, self.port)

    def overlay_files(self) -> dict[str, str]:
        files = {"etc/harness/net.env": f"NET={1 if self.enabled else 0}\n"}
        if self.enabled and self.keys:
            files.update(self.keys.overlay_files())
        return files


def prepare(run_dir: Path, net_device: str = "virtio-net-pci", *, enabled: bool = True,
            fault: str = "") -> SshSetup:
    """Keys and a port for one run. A request without SSH (MMLOCK_SSH=0) keeps the guest's
    network down, as does an arch without a network device. @fault: the request's ssh_fault."""
    if not enabled:
        return SshSetup(False, reason="disabled (MMLOCK_SSH=0)", run_dir=run_dir)
    if not net_device:
        return SshSetup(False, reason="the arch has no network device", run_dir=run_dir)
    keys = generate_keys(f"mmlock-harness-{run_dir.name}")
    port = free_port()
    key_file, known = write_client_files(keys, run_dir / "ssh", port)
    return SshSetup(True, port, keys, key_file, known, fault=fault, run_dir=run_dir)
