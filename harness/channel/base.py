"""The one interface every channel (serial console, SSH, fake) offers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    status: int
    output: str
    duration_s: float


class ChannelClosed(Exception):
    """The guest went away (QEMU exited, connection lost) while we talked to it."""


class CommandTimeout(Exception):
    """A command did not finish in time; the guest may be hung."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


class GuestSilent(CommandTimeout):
    """Nothing came from the guest (console output, storm heartbeats) for too long.
    `reason` says how long, unchanged when a caller adds the command to the message."""

    def __init__(self, message: str, partial: str = "", reason: str = "") -> None:
        super().__init__(message, partial)
        self.reason = reason or message


class Channel(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, command: str, timeout: float) -> CommandResult: ...

    def fetch(self, path: str, timeout: float = 60.0) -> bytes: ...
