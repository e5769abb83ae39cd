"""SIGTERM ends the harness the way Ctrl-C does: through its finally blocks."""
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.matrix import Children

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import signal, sys, time
from harness.signals import interrupt_name, terminate_as_interrupt
if sys.argv[1:] == ["inherit-ignore"]:  # as if the parent shell had ignored it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
terminate_as_interrupt()
try:
    print("ready", flush=True)
    time.sleep(60)
except KeyboardInterrupt as exc:
    print("cleaned up after", interrupt_name(exc), flush=True)
    sys.exit(130)
"""


def _child(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_sigterm_runs_the_cleanup_and_says_which_signal():
    proc = _child()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "cleaned up after SIGTERM" in out


def test_an_inherited_sigterm_ignore_is_kept():
    proc = _child("inherit-ignore")
    try:
        proc.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert proc.poll() is None, "SIGTERM was ignored before, it still is"
    finally:
        proc.kill()
        proc.wait()


def test_matrix_children_are_stopped_and_no_new_ones_start():
    children, result = Children(), {}

    def cell():
        result["proc"] = children.run(["sleep", "60"])

    worker = threading.Thread(target=cell)
    worker.start()
    deadline = time.monotonic() + 10
    while not children._procs and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    children.stop()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert result["proc"].returncode == -signal.SIGTERM
    try:
        children.run(["true"])
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("a cell started after the matrix was stopped")
