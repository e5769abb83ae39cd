#!/usr/bin/env python3
"""A fake QEMU: a real process that replays a recorded console log.

It prints the log up to the guest's ready marker, then behaves like the
guest's shell: each line it receives runs under /bin/sh (so the harness's
marker framing really executes), except that `storm-run` replays the
storm section of the log and `reboot -f` replays the rest and exits 0.

Usage: fake_qemu.py LOG [normal|hang-in-storm|die-in-storm|silent]
"""
import os
import subprocess
import sys
import tempfile
import time

READY = "MMLOCK-HARNESS: ready"
STORM_END = "MMLOCK-HARNESS: storm-end"


def out(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def main():
    log_path, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "normal")
    text = open(log_path, errors="replace").read()
    if mode == "silent":
        time.sleep(3600)
    ready_at = text.index(READY)
    boot_end = text.index("\n", ready_at) + 1
    storm_end = text.find(STORM_END, boot_end)
    storm_end = len(text) if storm_end < 0 else text.index("\n", storm_end) + 1
    boot, storm, rest = text[:boot_end], text[boot_end:storm_end], text[storm_end:]
    out(boot)
    with tempfile.NamedTemporaryFile("w", delete=False, suffix=".storm") as handle:
        handle.write(storm)
    try:
        for line in sys.stdin:
            if "reboot -f" in line:
                out(rest)
                return 0
            if "storm-run" in line:
                if mode == "hang-in-storm":
                    out(storm[: len(storm) // 2])
                    time.sleep(3600)
                if mode == "die-in-storm":
                    out(storm[: len(storm) // 2])
                    os.kill(os.getpid(), 9)
                line = line.replace("storm-run /etc/harness/storm.plan", f"cat {handle.name}")
            proc = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True)
            out(proc.stdout + proc.stderr)
    finally:
        os.unlink(handle.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
