#!/usr/bin/env python3
"""A fake QEMU: a real process that replays a recorded console log.

It prints the log up to the guest's ready marker, then behaves like the
guest's shell: each line it receives runs under /bin/sh (so the harness's
marker framing really executes), except that `storm-run` replays the
storm section of the log and `reboot -f` replays the rest and exits 0.
Like QEMU's console mux, Ctrl-A b then a key answers as Magic SysRq does,
and Ctrl-A c toggles a monitor that echoes each command -- in every mode,
also while the "guest" hangs.

Usage: fake_qemu.py LOG [normal|hang-in-storm|die-in-storm|silent|silent-in-storm]
"""
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

READY = "MMLOCK-HARNESS: ready"
STORM_END = "MMLOCK-HARNESS: storm-end"


def out(text):
    sys.stdout.write(text)
    sys.stdout.flush()


SYSRQ = {"w": "Show Blocked State", "t": "Show State", "d": "Show Locks Held"}
# Two x86_64 vCPUs, as `info registers -a` prints them (abridged).
REGISTERS = "".join(
    f"\r\nCPU#{cpu}\r\nRAX=0000000000000000 RBX=ffff888003c0a000 RCX=0000000000000001\r\n"
    f"RIP={rip} RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT={halted}\r\n"
    for cpu, rip, halted in ((0, "ffffffff81a2b3c4", 0), (1, "ffffffff8100d1e0", 1)))
_lock = threading.Lock()


def emit(text):
    with _lock:
        out(text)


def demux(lines):
    """stdin like QEMU's mux: guest lines to the queue, Ctrl-A sequences answered here."""
    data, monitor, pending = b"", False, b""
    while True:
        chunk = os.read(0, 4096)
        if not chunk:
            lines.put(None)
            return
        data += chunk
        while data:
            if data.startswith(b"\x01"):
                if len(data) < 2:
                    break
                if data[1:2] == b"c":
                    monitor = not monitor
                    if monitor:
                        emit("(qemu) ")
                elif data[1:2] == b"b":
                    if len(data) < 3:
                        break
                    key = data[2:3].decode()
                    emit(f"[  99.000000][    C0] sysrq: {SYSRQ.get(key, 'HELP')}\n")
                    data = data[3:]
                    continue
                data = data[2:]
                continue
            cut = data.find(b"\x01")
            piece, data = (data, b"") if cut < 0 else (data[:cut], data[cut:])
            pending += piece
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if monitor:
                    answer = REGISTERS if line.strip() == b"info registers -a" else ""
                    emit(f"{line.decode()}\r\nfake monitor: {line.decode()}\r\n{answer}(qemu) ")
                else:
                    lines.put(line.decode() + "\n")


def main():
    log_path, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "normal")
    text = open(log_path, errors="replace").read()
    lines = queue.Queue()
    threading.Thread(target=demux, args=(lines,), daemon=True).start()
    if mode == "silent":
        time.sleep(3600)
    ready_at = text.index(READY)
    boot_end = text.index("\n", ready_at) + 1
    storm_end = text.find(STORM_END, boot_end)
    storm_end = len(text) if storm_end < 0 else text.index("\n", storm_end) + 1
    boot, storm, rest = text[:boot_end], text[boot_end:storm_end], text[storm_end:]
    emit(boot)
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".storm") as handle:
        handle.write(storm)
    try:
        for line in iter(lines.get, None):
            if "reboot -f" in line:
                emit(rest)
                return 0
            if "storm-run" in line:
                if mode in ("hang-in-storm", "silent-in-storm"):
                    emit(storm[: len(storm) // 2])
                    while mode == "hang-in-storm":   # a hung storm that still heartbeats
                        time.sleep(1)
                        emit("MMLOCK-HARNESS: heartbeat\n")
                    time.sleep(3600)
                if mode == "die-in-storm":
                    emit(storm[: len(storm) // 2])
                    os.kill(os.getpid(), 9)
                line = line.replace("storm-run /etc/harness/storm.plan", f"cat {handle.name}")
            proc = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True)
            emit(proc.stdout + proc.stderr)
    finally:
        os.unlink(handle.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
