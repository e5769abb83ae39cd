"""The cache's cross-process lock: a second run waits for the first, and says so."""
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.cache import exclusive

HOLDER = """
import sys, time
from pathlib import Path
from harness.cache import exclusive
lock, held, release, log = map(Path, sys.argv[1:])
with exclusive(lock):
    held.touch()
    while not release.exists():
        time.sleep(0.05)
    with open(log, "a") as f:
        f.write("first\\n")
"""


def test_exclusive_serializes_processes_and_says_it_waits(tmp_path: Path, capfd):
    lock, held, release, log = (tmp_path / n for n in (".x.lock", "held", "release", "log"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(held), str(release), str(log)],
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "holder never took the lock"
            time.sleep(0.05)
        entered = threading.Event()

        def second() -> None:
            with exclusive(lock):
                entered.set()
                with open(log, "a") as f:
                    f.write("second\n")
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(1.0), "entered while another process held the lock"
        release.touch()
        thread.join(30)
        assert entered.is_set()
        assert log.read_text() == "first\nsecond\n"
        assert f"waiting: another run is filling the cache entry of {lock}" in capfd.readouterr().err
    finally:
        release.touch()
        holder.wait(30)
