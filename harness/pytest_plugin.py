"""A pytest plugin: a booted guest as a fixture.

    pytest_plugins = ["harness.pytest_plugin"]

    def test_uname(guest):
        assert guest.run("uname -r").output.startswith("6.1")

`guest` boots the default image of --guest-arch (x86_64) once per session
(--guest-scope changes that) through the one run of harness.run held open
(`with held(...)`: no thread, no callback) with no storm, over SSH when sshd
comes up and the serial console otherwise, and yields a Guest with
.run(cmd, timeout) and .fetch(path). At teardown the guest is powered off and
the run's verdict checked: a kernel report seen while the tests ran fails the
teardown, naming the report and console.log.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, cast

import pytest

from harness import options
from harness.boot import Session
from harness.channel.base import ChannelClosed, CommandResult
from harness.channel.fallback import StormChannel, pump_console
from harness.run import RunRequest, held

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

    def __init__(self, session: Session, run_dir: Path) -> None:
        self._session: Session | None = session
        self.run_dir = run_dir

    @property
    def channel(self) -> str:
        """"ssh" or "console": what carries the next command."""
        return self._session.channel.name if self._session else "none"

    def _channel(self) -> StormChannel:
        if self._session is None:
            raise ChannelClosed("the guest is not up (it never booted, or it is gone)")
        pump_console(self._session.console)   # console.log as it arrived between the tests' commands
        return self._session.channel

    def run(self, cmd: str, timeout: float = 60.0) -> CommandResult:
        return self._channel().run(cmd, timeout)

    def fetch(self, path: str, timeout: float = 60.0) -> bytes:
        return self._channel().fetch(path, timeout)

    def _gone(self) -> None:
        self._session = None


def _scope(fixture_name: str, config: pytest.Config) -> Scope:
    return cast(Scope, config.getoption("--guest-scope"))   # argparse checked it against SCOPES


@pytest.fixture(scope=_scope)
def guest(request: pytest.FixtureRequest):
    config = request.config
    ask = RunRequest(**options.environment(), arch=config.getoption("--guest-arch"),
                     accel=config.getoption("--guest-accel"),
                     profile=config.getoption("--guest-profile"), label="pytest", storm_enabled=False)
    with held(ask) as run:
        booted = run.session is not None
        if run.session is not None:
            guest = Guest(run.session, run.session.console.log_handle.path.parent)
            yield guest
            guest._gone()
    outcome = run.outcome
    assert outcome is not None
    if not booted:
        raise RuntimeError(f"guest did not boot: {outcome.verdict.verdict}: {outcome.verdict.reason} "
                           f"({outcome.run_dir})")
    if outcome.verdict.exit_code != 0:
        titles = "; ".join(r.title for r in outcome.verdict.reports) or outcome.verdict.reason
        pytest.fail(f"guest run {outcome.run_dir.name}: {outcome.verdict.verdict}: {titles} "
                    f"(see {outcome.run_dir / 'console.log'})", pytrace=False)
