"""SIGTERM as Ctrl-C: `timeout`, CI cancellation and `kill` end a run the way
Ctrl-C does, through the finally blocks that kill QEMU and flush the console
log, instead of leaving QEMU running with nobody reading it."""
from __future__ import annotations

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT would raise KeyboardInterrupt."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)


def interrupt_name(exc: KeyboardInterrupt) -> str:
    """'SIGTERM' for a Terminated, 'SIGINT' for Ctrl-C."""
    return str(exc) if isinstance(exc, Terminated) else "SIGINT"


def raise_terminated(signum, frame):
    raise Terminated(signum)


def install(signum: int, handler):
    """Set a handler, return the old one; outside the main thread signals stay as they are."""
    if handler is None:
        return None
    try:
        return signal.signal(signum, handler)
    except ValueError:
        return None


def terminate_as_interrupt():
    """From now on SIGTERM raises Terminated (a KeyboardInterrupt); returns the old
    handler. An inherited ignore is kept, as Python keeps one for SIGINT."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        return signal.SIG_IGN
    return install(signal.SIGTERM, raise_terminated)
