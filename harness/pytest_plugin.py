"""A pytest plugin: a booted guest as a fixture.

    pytest_plugins = ["harness.pytest_plugin"]

    def test_uname(guest):
        assert guest.run("uname -r").output.startswith("6.1")

`guest` boots the default image of --guest-arch (x86_64) once per session
(--guest-scope changes that) through the one run of harness.run with no
storm, over SSH when sshd comes up and the serial console otherwise, and
yields a Guest with .run(cmd, timeout) and .fetch(path). At teardown the
guest is powered off and the run's verdict checked: a kernel report seen
while the tests ran fails the teardown, naming the report and console.log.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Literal, cast

import pytest

from harness.channel.base import ChannelClosed, CommandResult
from harness.channel.fallback import StormChannel, pump_console
from harness.run import RunOutcome, RunRequest, execute

Scope = Literal["session", "package", "module", "class", "function"]
SCOPES: tuple[Scope, ...] = ("session", "package", "module", "class", "function")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mmlock-harness guest")
    group.addoption("--guest-arch", default="x86_64", help="guest architecture (configs/arches/*.yaml)")
    group.addoption("--guest-accel", default="auto", help="auto, kvm or tcg")
    group.addoption("--guest-profile", default="lockdep", help="kernel debug profile")
    group.addoption("--guest-scope", default="session", choices=SCOPES,
                    help="how long one booted guest lives (default: the whole session)")


class Guest:
    """What a test gets: commands and files of one booted guest."""

    def __init__(self, booted: BootedGuest) -> None:
        self._booted = booted

    @property
    def channel(self) -> str:
        """"ssh" or "console": what carries the next command."""
        return self._booted.channel.name if self._booted.channel else "none"

    @property
    def run_dir(self) -> Path | None:
        return self._booted.run_dir

    def _channel(self) -> StormChannel:
        if self._booted.channel is None:
            raise ChannelClosed("the guest is not up (it never booted, or it is gone)")
        return self._booted.channel

    def run(self, cmd: str, timeout: float = 60.0) -> CommandResult:
        with self._booted.lock:
            return self._channel().run(cmd, timeout)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        with self._booted.lock:
            return self._channel().fetch(path, timeout)


class BootedGuest:
    """harness.run.execute in a thread, held at its session hook until stop()."""

    def __init__(self, request: RunRequest) -> None:
        self.request = replace(request, storm_enabled=False, session=self._session)
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.release = threading.Event()
        self.channel: StormChannel | None = None
        self.outcome: RunOutcome | None = None
        self.error: BaseException | None = None
        self.run_dir: Path | None = None
        self.thread = threading.Thread(target=self._main, name="mmlock-guest", daemon=True)

    def _session(self, channel: StormChannel) -> None:
        self.channel = channel
        self.ready.set()
        # Keep console.log written as it arrives while the tests are between commands.
        while not self.release.wait(0.5):
            with self.lock:
                pump_console(channel.console)

    def _main(self) -> None:
        try:
            self.outcome = execute(self.request)
            self.run_dir = self.outcome.run_dir
        except BaseException as exc:
            self.error = exc
        finally:
            self.ready.set()

    def start(self) -> Guest:
        self.thread.start()
        self.ready.wait()
        if self.channel is None:
            self.thread.join()
            if self.error:
                raise RuntimeError(f"guest did not boot: {self.error}") from self.error
            verdict = self.outcome.verdict if self.outcome else None
            raise RuntimeError(f"guest did not boot: {verdict.verdict if verdict else '?'}: "
                               f"{verdict.reason if verdict else ''} ({self.run_dir})")
        self.run_dir = self.channel.setup.run_dir if self.channel.setup else None
        return Guest(self)

    def stop(self, timeout: float = 300.0) -> RunOutcome | None:
        self.release.set()
        self.thread.join(timeout)
        if self.error:
            raise self.error
        return self.outcome


def _scope(fixture_name: str, config: pytest.Config) -> Scope:
    return cast(Scope, config.getoption("--guest-scope"))   # argparse checked it against SCOPES


@pytest.fixture(scope=_scope)
def guest(request: pytest.FixtureRequest):
    config = request.config
    booted = BootedGuest(RunRequest(arch=config.getoption("--guest-arch"),
                                    accel=config.getoption("--guest-accel"),
                                    profile=config.getoption("--guest-profile"), label="pytest"))
    yield booted.start()
    outcome = booted.stop()
    if outcome is not None and outcome.verdict.exit_code != 0:
        titles = "; ".join(r.title for r in outcome.verdict.reports) or outcome.verdict.reason
        pytest.fail(f"guest run {outcome.run_dir.name}: {outcome.verdict.verdict}: {titles} "
                    f"(see {outcome.run_dir / 'console.log'})", pytrace=False)

