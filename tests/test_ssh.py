"""The SSH channel without a guest: keys, the forwarded port, and the paramiko
client against the guest's own static dropbear run on the host (127.0.0.1,
in a private mount namespace whose /etc/passwd points root's home at a
temporary directory holding the per-run authorized_keys)."""
from __future__ import annotations

import base64
import os
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from harness import options
from harness.channel import ChannelClosed, CommandTimeout, fallback, shell, ssh
from harness.channel.base import CommandResult

ROOT = Path(__file__).resolve().parent.parent


def _strings(blob: bytes) -> list[bytes]:
    out = []
    while blob:
        (length,) = struct.unpack(">I", blob[:4])
        out.append(blob[4:4 + length])
        blob = blob[4 + length:]
    return out


# -- keys --------------------------------------------------------------------------
def test_keys_are_fresh_ed25519_pairs_in_the_formats_each_side_reads():
    keys, other = ssh.generate_keys("c"), ssh.generate_keys("c")
    assert keys.client_private != other.client_private and keys.host_private != other.host_private
    assert keys.client_private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    pkey = keys.pkey()
    assert isinstance(pkey, paramiko.Ed25519Key)
    assert keys.client_public.split() == ["ssh-ed25519", pkey.get_base64(), "c"]
    # dropbear's key file: string "ssh-ed25519", string seed(32) || public(32)
    name, secret = _strings(keys.host_private)
    assert name == b"ssh-ed25519" and len(secret) == 64
    assert _strings(keys.host_public_blob) == [b"ssh-ed25519", secret[32:]]


def test_overlay_files_are_text_and_carry_no_client_secret():
    keys = ssh.generate_keys()
    files = keys.overlay_files()
    assert files["etc/harness/authorized_keys"] == keys.client_public + "\n"
    assert base64.b64decode(files["etc/harness/ssh_host_ed25519_key.b64"]) == keys.host_private
    assert not any("PRIVATE KEY" in text for text in files.values())


def test_client_files_are_private_and_pin_the_host_key(tmp_path):
    keys = ssh.generate_keys()
    key_file, known = ssh.write_client_files(keys, tmp_path / "ssh", 2222)
    for path in (key_file, known):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert known.read_text() == f"[127.0.0.1]:2222 {keys.host_public}\n"
    assert paramiko.Ed25519Key.from_private_key_file(str(key_file)).get_base64() == keys.pkey().get_base64()


def test_prepare_makes_keys_port_and_net_env(tmp_path):
    setup = ssh.prepare(tmp_path)
    assert setup.enabled and 1024 <= setup.port < 65536 and setup.keys
    files = setup.overlay_files()
    assert files["etc/harness/net.env"] == "NET=1\n" and "etc/harness/authorized_keys" in files
    assert (tmp_path / "ssh" / "id_ed25519").is_file()


def test_an_arch_without_a_network_device_gets_no_ssh(tmp_path):
    setup = ssh.prepare(tmp_path, net_device="")
    assert not setup.enabled and setup.port == 0 and "network device" in setup.reason


def test_mmlock_ssh_0_disables_networking(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLOCK_SSH", "0")
    setup = ssh.prepare(tmp_path, enabled=options.environment()["ssh"])
    assert not setup.enabled and setup.port == 0
    assert setup.overlay_files() == {"etc/harness/net.env": "NET=0\n"}
    channel = fallback.open_for_run(object(), setup, "tcg")
    assert channel.name == "console" and channel.opened_over == "console"
    assert "MMLOCK_SSH=0" in channel.facts()["reason"] and "_t0" not in channel.facts()


# -- the port ------------------------------------------------------------------------
def test_free_ports_differ_and_stay_bindable_for_qemu():
    ports = {ssh.free_port() for _ in range(20)}
    assert len(ports) == 20
    for port in list(ports)[:5]:
        # what QEMU's slirp does for hostfwd: SO_REUSEADDR, bind, listen
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        sock.close()


def test_reserved_port_is_not_handed_to_other_bind0_callers():
    port = ssh.free_port()
    handed = set()
    socks = []
    for _ in range(200):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        handed.add(sock.getsockname()[1])
        socks.append(sock)
    for sock in socks:
        sock.close()
    assert port not in handed


# -- a real dropbear on the host ---------------------------------------------------------
# The guest's dropbear comes from Debian's source package (apt-get source, a deb-src
# entry added when there is none) and is compiled for the host's arch: a download and a
# compile, so every test that talks to it is e2e (make test), not make unit.
real_sshd = pytest.mark.e2e


def _host_dropbear() -> Path:
    from harness import configs, image, userland
    from harness.errors import InfraError

    host = image.host_debian_arch()
    arches = [configs.load_arch(p.stem) for p in sorted((ROOT / "configs" / "arches").glob("*.yaml"))]
    arch = next((a for a in arches if a.debian_arch == host), None)
    if arch is None:
        pytest.skip(f"no guest arch runs on a {host} host")
    try:
        return userland.dropbear_for(arch)
    except InfraError as exc:   # a missing tool or package source; a BuildError fails the test
        pytest.skip(f"cannot build dropbear here: {exc}")


class HostSshd:
    """dropbear -F on 127.0.0.1:port inside `unshare -m`, root's home in tmp."""

    def __init__(self, tmp: Path, keys: ssh.RunKeys, port: int) -> None:
        if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
            pytest.skip("needs a private mount namespace (root, unshare -m)")
        self.tmp, self.keys, self.port = tmp, keys, port
        self.cmd_dir = tmp / "mmlock-cmd"
        home, bindir = tmp / "home", tmp / "bin"
        (home / ".ssh").mkdir(parents=True)
        home.chmod(0o700)
        (home / ".ssh" / "authorized_keys").write_text(keys.client_public + "\n")
        bindir.mkdir()
        (bindir / "mmlock-cmd").write_bytes((ROOT / "guest" / "init" / "mmlock-cmd").read_bytes())
        (bindir / "mmlock-cmd").chmod(0o755)
        shell = tmp / "shell"
        shell.write_text(f"#!/bin/sh\nPATH={bindir}:$PATH MMLOCK_CMD_DIR={self.cmd_dir}\n"
                         "export PATH MMLOCK_CMD_DIR\nexec /bin/sh \"$@\"\n")
        shell.chmod(0o755)
        (tmp / "passwd").write_text(f"root:x:0:0:root:{home}:{shell}\n")
        (tmp / "shells").write_text(f"{shell}\n")
        (tmp / "hostkey").write_bytes(keys.host_private)
        self.env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", MMLOCK_CMD_DIR=str(self.cmd_dir))
        self.proc: subprocess.Popen | None = None

    def start(self, binary: Path) -> None:
        script = (f"mount --bind {self.tmp}/passwd /etc/passwd && mount --bind {self.tmp}/shells /etc/shells "
                  f"&& exec {binary} -F -E -p 127.0.0.1:{self.port} -r {self.tmp}/hostkey")
        self.proc = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=subprocess.DEVNULL,
                                     stderr=open(self.tmp / "dropbear.log", "wb"))

    def kill_all(self) -> None:
        """The server and its per-connection children, as `killall dropbear` in the guest."""
        if self.proc is None:
            return
        subprocess.run(["pkill", "-TERM", "-P", str(self.proc.pid)], check=False)
        self.proc.terminate()
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill_all()


@pytest.fixture(scope="module")
def dropbear_binary():
    return _host_dropbear()


@pytest.fixture
def sshd(tmp_path, dropbear_binary):
    server = HostSshd(tmp_path, ssh.generate_keys(), ssh.free_port())
    server.start(dropbear_binary)
    yield server
    server.stop()


def _connect(server, timeout=15.0, **kw):
    return ssh.SshChannel.connect(server.port, server.keys, timeout, **kw)


@real_sshd
def test_connect_waits_for_a_late_sshd(tmp_path, dropbear_binary):
    server = HostSshd(tmp_path, ssh.generate_keys(), ssh.free_port())
    timer = threading.Timer(1.5, server.start, [dropbear_binary])
    timer.start()
    started = time.monotonic()
    try:
        channel = _connect(server)
        assert 1.4 < time.monotonic() - started < 10
        assert channel.run("echo up", 10).output == "up\n"
        channel.close()
    finally:
        timer.join()
        server.stop()


def test_connect_gives_up_in_bounded_time_and_when_qemu_is_gone():
    keys, port = ssh.generate_keys(), ssh.free_port()
    started = time.monotonic()
    with pytest.raises(ChannelClosed, match="did not answer within 2s"):
        ssh.SshChannel.connect(port, keys, 2.0)
    assert time.monotonic() - started < 5
    with pytest.raises(ChannelClosed, match="QEMU exited"):
        ssh.SshChannel.connect(port, keys, 30.0, alive=lambda: False)


@real_sshd
def test_unknown_host_key_is_refused(sshd):
    wrong = ssh.RunKeys(sshd.keys.client_private, sshd.keys.client_public,
                        sshd.keys.host_private, ssh.generate_keys().host_public)
    with pytest.raises(ChannelClosed, match="unknown host key"):
        ssh.SshChannel.connect(sshd.port, wrong, 15.0)


@real_sshd
def test_run_gives_status_combined_output_and_duration(sshd):
    channel = _connect(sshd)
    result = channel.run("echo out; echo err >&2; sleep 0.3; exit 3", 10)
    assert isinstance(result, CommandResult)
    assert result.status == 3 and result.output == "out\nerr\n" and 0.3 <= result.duration_s < 5
    assert channel.run("true", 10).status == 0
    # quoting survives: the command reaches sh -c as typed
    assert channel.run("printf '%s|' \"a b\" 'c\"d' $((1+2))", 10).output == 'a b|c"d|3|'
    channel.close()


@real_sshd
def test_fetch_is_binary_exact_and_missing_files_raise(sshd, tmp_path):
    blob = os.urandom(300_000) + b"\r\n\x00end"
    (tmp_path / "blob").write_bytes(blob)
    channel = _connect(sshd)
    assert channel.fetch(str(tmp_path / "blob"), 20) == blob
    with pytest.raises(FileNotFoundError):
        channel.fetch(str(tmp_path / "missing"), 10)
    channel.close()


@real_sshd
def test_a_command_that_overruns_is_a_timeout_with_partial_output(sshd, monkeypatch):
    channel = _connect(sshd)
    started = time.monotonic()
    monkeypatch.setattr(ssh, "CMD_DIR", str(sshd.cmd_dir))
    with pytest.raises(CommandTimeout) as info:
        channel.run("echo begun; sleep 30", 1.0)
    assert time.monotonic() - started < 6
    assert info.value.partial == "begun\n"
    assert channel.run("echo still usable", 10).status == 0
    channel.close()


@real_sshd
def test_sshd_killed_mid_command_is_noticed_within_seconds(sshd):
    channel = _connect(sshd)
    threading.Timer(1.0, sshd.kill_all).start()
    started = time.monotonic()
    with pytest.raises(ssh.SshLost) as info:
        channel.run("sleep 20; echo late", 60)
    assert time.monotonic() - started < 5
    assert info.value.command_id
    deadline = time.monotonic() + 5   # dropbear says goodbye before its socket closes
    while channel.alive and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not channel.alive


class LocalConsole:
    """Stands in for the serial console: runs commands with the host's sh."""

    name = "console"
    alive = True

    def __init__(self, env: dict) -> None:
        self.env = env
        self.commands: list[str] = []
        self.lines: list[str] = []

    def run(self, command: str, timeout: float) -> CommandResult:
        self.commands.append(command)
        started = time.monotonic()
        proc = subprocess.run(["sh", "-c", command], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        return CommandResult(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        return Path(path).read_bytes()

    def send_line(self, text: str) -> None:
        self.lines.append(text)


@real_sshd
def test_storm_channel_recovers_the_interrupted_command_over_the_console(sshd):
    console = LocalConsole(sshd.env)
    record: dict = {}
    channel = fallback.StormChannel(console, _connect(sshd), record)
    channel.ssh.idle = channel._idle
    assert channel.run("echo over ssh", 10).output == "over ssh\n" and console.commands == []
    threading.Timer(1.0, sshd.kill_all).start()
    started = time.monotonic()
    result = channel.run("sleep 3; echo finished; exit 7", 60)
    # the command was not run twice: it went on in the "guest" and its result came over the console
    assert result.status == 7 and result.output == "finished\n"
    assert time.monotonic() - started < 10
    assert channel.name == "console"
    assert record["fallback"]["recovered"].startswith("sleep 3") and "lost" in record["fallback"]["reason"]
    assert console.commands[0].startswith("mmlock-cmd wait ")
    assert channel.run("echo now console", 10).output == "now console\n"
    channel.close()


@real_sshd
def test_storm_channel_reports_qemu_exit_as_channel_closed(sshd):
    console = LocalConsole(sshd.env)
    channel = fallback.StormChannel(console, _connect(sshd), {})
    console.alive = False
    threading.Timer(0.5, sshd.kill_all).start()
    with pytest.raises(ChannelClosed, match="QEMU exited"):
        channel.run("sleep 10", 30)


@real_sshd
def test_fault_hook_kills_sshd_through_the_console(sshd):
    console = LocalConsole(sshd.env)
    record: dict = {}
    channel = fallback.StormChannel(console, _connect(sshd), record, fault="kill-sshd:1")
    channel.ssh.idle = channel._idle
    original = console.send_line

    def send_line(text: str) -> None:
        original(text)
        sshd.kill_all()

    console.send_line = send_line
    result = channel.run("sleep 3; echo ok", 30)
    assert console.lines == ["killall dropbear"] and "fault" in record
    assert result.output == "ok\n" and channel.name == "console"


def _pipe_with(text: str):
    read_fd, write_fd = os.pipe()
    os.write(write_fd, text.encode())
    os.close(write_fd)
    return os.fdopen(read_fd, "r")


@real_sshd
def test_paramiko_interactive_shell(sshd):
    import io

    channel = _connect(sshd)
    out = io.BytesIO()
    with _pipe_with("echo shell-$((40+2))\nexit\n") as stdin:
        shell._paramiko_shell(channel, stdin, out, lambda: None)
    assert b"shell-42" in out.getvalue()
    channel.close()


def test_console_interactive_shell_sends_lines_until_exit(tmp_path):
    import io

    console = LocalConsole(dict(os.environ))
    out = io.BytesIO()
    with _pipe_with("echo one\nexit\necho never\n") as stdin:
        shell._console_shell(console, stdin, out)
    assert console.lines == ["stty echo 2>/dev/null", "echo one"]
    assert b"serial console" in out.getvalue()


@pytest.mark.e2e   # a real QEMU process: not in `make unit`
def test_qemu_that_cannot_bind_its_port_is_restarted_on_another(tmp_path):
    import shutil as _shutil

    from harness.machine import Machine

    qemu = _shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.skip("qemu-system-x86_64 not installed")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    setup = ssh.SshSetup(True, taken.getsockname()[1], ssh.generate_keys(), run_dir=tmp_path)
    argv = [qemu, "-M", "none", "-nodefaults", "-display", "none",
            "-netdev", f"user,id=n,hostfwd=tcp:127.0.0.1:{setup.port}-:22"]
    (tmp_path / "qemu-cmdline.txt").write_text(" ".join(argv) + "\n")
    old_port = setup.port
    machine = Machine.start(argv, tmp_path, tmp_path / "console.log", setup)
    try:
        assert setup.port != old_port and machine.alive
        assert f"127.0.0.1:{setup.port}-:22" in machine.argv[-1]
        assert f":{setup.port}-:22" in (tmp_path / "qemu-cmdline.txt").read_text()
        assert f"[127.0.0.1]:{setup.port} " in (tmp_path / "ssh" / "known_hosts").read_text()
    finally:
        machine.stop(grace_s=0)
        taken.close()
