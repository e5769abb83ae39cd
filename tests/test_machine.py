"""The machine that owns QEMU: its lifecycle states, the port retry, stop, the state dump,
against real processes (the fake QEMU replaying a recorded log, a stand-in that cannot bind)."""
import re
import sys
import time
from pathlib import Path

import pytest

from harness import configs, machine, run
from harness.channel import ssh
from harness.channel.base import CommandTimeout
from harness.machine import Lifecycle, Machine

FAKE = Path(__file__).parent / "fake_qemu.py"
CLEAN = Path(__file__).parent / "data" / "consoles" / "x86_64-clean.log"

# Exits 1 at once, silently, when asked to forward the port named in the file argv[1]
# holds (as QEMU does when the port is taken); otherwise says hello and waits.
CLASHING = ("import sys, time\n"
            "taken = open(sys.argv[1]).read().strip()\n"
            "if any(f'127.0.0.1:{taken}-:22' in a for a in sys.argv): sys.exit(1)\n"
            "print('up', flush=True); time.sleep(60)\n")


def test_a_boot_walks_the_states_and_stop_leaves_nothing_running(tmp_path):
    started = Machine.start([sys.executable, str(FAKE), str(CLEAN)], tmp_path, tmp_path / "console.log")
    assert started.state is Lifecycle.STARTING
    with started as m:
        m.wait_ready(run.READY_RE, 30)
        assert m.state is Lifecycle.READY
        m.enter(Lifecycle.STORMING)
        m.enter(Lifecycle.READY)
        with pytest.raises(RuntimeError, match="no way from ready to starting"):
            m.enter(Lifecycle.STARTING)
    assert m.state is Lifecycle.GONE and not m.alive and m.console.log_handle.closed
    assert "MMLOCK-HARNESS: ready" in (tmp_path / "console.log").read_text()
    with pytest.raises(RuntimeError, match="no way from gone to ready"):
        m.enter(Lifecycle.READY)


def test_waiting_on_a_quiet_guest_blocks_instead_of_spinning(tmp_path):
    # pexpect's own PopenSpawn polls its reader's queue: 0.3 CPU s in this 1.5 s wait,
    # taken from a TCG guest's threads on a small host; a blocking read takes about none.
    with Machine.start([sys.executable, str(FAKE), str(CLEAN)], tmp_path, tmp_path / "console.log") as m:
        m.wait_ready(run.READY_RE, 30)
        used = time.process_time()
        with pytest.raises(CommandTimeout):
            m.console.expect(re.compile(b"never said"), 1.5)
        assert time.process_time() - used < 0.1


def test_a_killed_qemu_is_an_ending_killed_by_the_harness(tmp_path):
    with Machine.start([sys.executable, str(FAKE), str(CLEAN), "silent"], tmp_path, tmp_path / "c.log") as m:
        ending = m.ending(False, "not-started", (), False, "")
    assert ending.killed_by_harness and ending.qemu_signal == 9 and not ending.reached_ready


def test_the_dump_of_a_silent_guest_has_sysrq_and_each_vcpus_pc(tmp_path, monkeypatch):
    monkeypatch.setattr(machine, "DUMP_TIMEOUT_S", 2)
    with Machine.start([sys.executable, str(FAKE), str(CLEAN), "silent"], tmp_path, tmp_path / "c.log") as m:
        dump = m.dump_state(configs.load_arch("x86_64").monitor_pc)
    assert dump.done == ["sysrq wtd", "info cpus", "info registers -a"]
    assert dump.pcs == [["ffffffff81a2b3c4", "ffffffff8100d1e0"]] * machine.PC_SAMPLES
    assert "sysrq: Show Locks Held" in (tmp_path / "c.log").read_text()


def test_a_port_qemu_cannot_bind_is_swapped_for_another_everywhere(tmp_path):
    setup = ssh.SshSetup(True, ssh.free_port(), ssh.generate_keys(), run_dir=tmp_path)
    taken = tmp_path / "taken"
    taken.write_text(f"{setup.port}\n")
    old = setup.port
    argv = [sys.executable, "-c", CLASHING, str(taken), f"user,hostfwd=tcp:127.0.0.1:{setup.port}-:22"]
    (tmp_path / "qemu-cmdline.txt").write_text(" ".join(argv) + "\n")
    with Machine.start(argv, tmp_path, tmp_path / "console.log", setup) as m:
        assert setup.port != old and m.alive
        assert m.argv[-1] == f"user,hostfwd=tcp:127.0.0.1:{setup.port}-:22"
        assert re.search(rf":{setup.port}-:22\b", (tmp_path / "qemu-cmdline.txt").read_text())
        assert f"[127.0.0.1]:{setup.port} " in (tmp_path / "ssh" / "known_hosts").read_text()
        m.console.expect(re.compile(rb"up"), 10)
