"""The run's secrets and what the guest's shell is sent: per-run keys are 0600 wherever
they land, the guest's private host key leaves the results' initramfs once QEMU is
gone, and a path sent to the guest shell is one quoted word."""
import base64
import stat
import sys
from pathlib import Path

from harness import boot, image, run
from harness.channel import ssh
from harness.machine import Machine

FAKE = Path(__file__).parent / "fake_qemu.py"
CLEAN = Path(__file__).parent / "data" / "consoles" / "x86_64-clean.log"


def cpio_members(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """newc cpio members (all of them, across concatenated archives) -> (mode, data)."""
    found, pos = {}, 0
    while True:
        pos = archive.find(b"070701", pos)
        if pos < 0:
            return found
        fields = [int(archive[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_at = pos + 110
        name = archive[name_at:name_at + namesize - 1].decode()
        data_at = (name_at + namesize + 3) & ~3
        found[name] = (mode, archive[data_at:data_at + size])
        pos = (data_at + size + 3) & ~3


def _setup(tmp_path):
    setup = ssh.prepare(tmp_path, "virtio-net-pci")
    base = tmp_path / "base.cpio"
    base.write_bytes(b"")
    overlay = {"etc/harness/run.env": "X=1\n", **setup.overlay_files()}
    return setup, base, overlay


def test_overlay_with_the_host_key_is_private_and_stripped_after_the_run(tmp_path):
    setup, base, overlay = _setup(tmp_path)
    secret = setup.secret_files()
    assert secret == (ssh.HOST_KEY_FILE,)
    initramfs = tmp_path / "initramfs.cpio"
    image.write_overlay(base, initramfs, overlay, private=secret)
    assert stat.S_IMODE(initramfs.stat().st_mode) == 0o600
    members = cpio_members(initramfs.read_bytes())
    assert stat.S_IMODE(members[ssh.HOST_KEY_FILE][0]) == 0o600
    assert stat.S_IMODE(members["etc/harness/run.env"][0]) == 0o644
    key_text = overlay[ssh.HOST_KEY_FILE].strip().encode()
    assert key_text in initramfs.read_bytes()

    boot.strip_secrets(base, initramfs, overlay, secret)
    kept = initramfs.read_bytes()
    assert key_text not in kept and base64.b64decode(key_text) not in kept
    assert ssh.HOST_KEY_FILE not in cpio_members(kept)
    assert "etc/harness/run.env" in cpio_members(kept) and "etc/harness/authorized_keys" in cpio_members(kept)
    # the client's side: private key and known_hosts 0600 in results/<run>/ssh
    for name in ("id_ed25519", "known_hosts"):
        assert stat.S_IMODE((tmp_path / "ssh" / name).stat().st_mode) == 0o600
    assert setup.keys.client_private.split("\n")[1] not in kept.decode(errors="replace")


def test_without_ssh_nothing_is_secret(tmp_path):
    setup = ssh.prepare(tmp_path, "virtio-net-pci", enabled=False)
    assert setup.secret_files() == ()
    assert ssh.HOST_KEY_FILE not in setup.overlay_files()


def test_serial_fetch_sends_the_path_as_one_quoted_word(tmp_path):
    """The fake QEMU runs each line under a real /bin/sh: an unquoted path would run `touch`."""
    name = "a b;touch pwned;$(touch pwned2)`touch pwned3`'x\"*"
    (tmp_path / name).write_bytes(b"\x00\x01payload\xff")
    with Machine.start([sys.executable, str(FAKE), str(CLEAN)], tmp_path, tmp_path / "console.log") as machine:
        machine.wait_ready(run.READY_RE, 30)
        assert machine.console.fetch(name, 30) == b"\x00\x01payload\xff"
    assert not list(tmp_path.glob("pwned*"))
