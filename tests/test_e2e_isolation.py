"""End to end on x86_64: the guest is boxed in. From inside a real guest, a connect to
a listener this test opened on the host's loopback (QEMU's user net maps it at
10.0.2.2) and on the host's other addresses fails, the guest has no default route,
and SSH, the one thing forwarded to it, still works. Nothing reaches the listener.
The results keep no private host key."""
import json
import os
import re
import socket
import sys
import time

import pytest

from harness import run
from harness.channel import ssh
from tests.test_secrets import cpio_members

pytestmark = pytest.mark.e2e


def _host_addresses() -> list[str]:
    """The host's non-loopback IPv4 addresses (where a guest with a route out would go)."""
    found = set()
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))   # TEST-NET: no packet is sent
        found.add(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    return sorted(a for a in found if not a.startswith("127."))


def test_guest_reaches_nothing_but_its_forwarded_ssh(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("MMLOCK_SSH", raising=False)
    monkeypatch.delenv("MMLOCK_FAULT", raising=False)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", 0))      # the host's loopback and every other address
    listener.listen(8)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    targets = ["10.0.2.2", "10.0.2.3", *_host_addresses()]
    seen: dict = {}

    def inside(channel) -> None:
        seen["channel"] = channel.name
        seen["routes"] = channel.run("ip route; ip -4 addr show dev eth0 | grep inet", 30).output
        # the control: the same nc reaches the guest's own sshd, so a failure below is the box's
        seen["control"] = channel.run("echo | nc -w 5 127.0.0.1 22 | head -c 8", 30).output
        for target in targets:
            out = channel.run(f"nc -w 5 {target} {port} </dev/null; echo nc-exit=$?", 60)
            seen[target] = out.output.strip().replace("\n", " ")
        seen["after"] = channel.run("echo still-here", 30).output.strip()

    started = time.monotonic()
    with run.held(run.RunRequest(arch="x86_64", storm_enabled=False, label="isolation")) as booted:
        if booted.session is not None:
            inside(booted.session.channel)
    outcome = booted.outcome
    assert outcome is not None
    accepted = []
    try:
        while True:
            conn, peer = listener.accept()
            accepted.append(peer)
            conn.close()
    except (TimeoutError, BlockingIOError):
        pass
    finally:
        listener.close()
    lines = [f"isolation: booted in {time.monotonic() - started:.0f}s, channel {seen.get('channel')}, "
             f"listener 0.0.0.0:{port}"]
    lines += [f"isolation: guest routes: {seen.get('routes', '').strip()!r}"]
    lines += [f"isolation: control, guest -> its own sshd 127.0.0.1:22: {seen.get('control', '').strip()!r}"]
    lines += [f"isolation: guest -> {t}:{port}: {seen.get(t)}" for t in targets]
    lines += [f"isolation: connections the host listener accepted: {accepted}"]
    print("\n".join(lines), file=sys.stderr)
    assert outcome.verdict.verdict == "pass", outcome.verdict.reason
    argv = (outcome.run_dir / "qemu-cmdline.txt").read_text()
    assert re.search(r"-netdev user,id=net0,restrict=on,hostfwd=tcp:127\.0\.0\.1:\d+-:22 ", argv), argv
    assert seen["channel"] == "ssh" and seen["after"] == "still-here", "SSH, the one way in, works"
    assert "default" not in seen["routes"] and "10.0.2.15/24" in seen["routes"]
    for target in targets:
        assert "nc-exit=0" not in seen[target], (target, seen[target])
    assert seen["control"].startswith("SSH-2.0"), seen["control"]
    assert accepted == [], "nothing from the guest reached the host's listener"
    # the results keep no private host key; the client's files are private
    data = json.loads((outcome.run_dir / "verdict.json").read_text())
    assert data["channel"] == "ssh"
    assert ssh.HOST_KEY_FILE not in cpio_members((outcome.run_dir / "initramfs.cpio").read_bytes())
    for name in ("id_ed25519", "known_hosts"):
        assert oct((outcome.run_dir / "ssh" / name).stat().st_mode & 0o777) == "0o600"
    assert os.path.getsize(outcome.run_dir / "console.log") > 0
