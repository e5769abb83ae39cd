"""The run's options, declared once: each is a CLI flag, the make variable of the same
name, and a RunRequest field. `run`, `boot`, `shell`, `bisect`, `soak` and `zoo` take
them all; `build`, `selftest`, `matrix`, `bench` and `module-check` take the ones
that mean something to them (a tuple of names below). `request(args)` turns whichever
a command took into its RunRequest.

The environment is read here and only here (`environment()`), once per command:
the harness's own reliability hooks (MMLOCK_FAULT, MMLOCK_SSH, MMLOCK_SSH_FAULT) and
extra guest binaries (MMLOCK_GUEST_BINARIES) become request fields; no stage reads
the environment for them.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from harness.kernel.source import DEFAULT_VERSION
from harness.plan import RunRequest


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def any_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def empty_is_none(text: str) -> str | None:
    return text or None


def parts(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text.replace(",", " ").split()))


@dataclass(frozen=True)
class Option:
    """One run option: its flag, argparse's keywords, and the RunRequest field it sets."""

    flag: str
    name: str                 # the RunRequest field, argparse's dest
    kwargs: dict[str, Any] = field(default_factory=dict)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(self.flag, dest=self.name, **self.kwargs)


_DEFAULTS = RunRequest()

OPTIONS = {option.name: option for option in (
    Option("--arch", "arch", dict(default=_DEFAULTS.arch, help="guest architecture (configs/arches/*.yaml)")),
    Option("--kernel-src", "kernel_src", dict(
        type=empty_is_none, default=None,
        help="kernel tree to build out-of-tree (default: Debian's linux-source tarball)")),
    Option("--kernel-version", "kernel_version", dict(
        default=DEFAULT_VERSION, help="Debian linux-source version when --kernel-src is not given")),
    Option("--profile", "profile", dict(default=_DEFAULTS.profile,
                                        help="debug profile (configs/kernel/profiles.yaml)")),
    Option("--storm", "storm", dict(default=_DEFAULTS.storm, help="storm (configs/storms/*.yaml)")),
    Option("--seed", "seed", dict(type=any_int, default=_DEFAULTS.seed, help="seed for the stressors' RNGs")),
    Option("--duration", "duration", dict(type=positive_int, default=None,
                                          help="storm length in seconds (default: the storm's own)")),
    Option("--accel", "accel", dict(default=_DEFAULTS.accel,
                                    help="auto, kvm or tcg (auto proves KVM works first)")),
    Option("--inject", "inject", dict(
        default=None, help="trigger a known kernel report in the guest before the storm (self-test)")),
    Option("--inactivity-timeout", "inactivity_s", dict(
        type=positive_int, default=None,
        help="seconds of guest silence (no console output, no storm heartbeat) taken "
             "as a hang (default: 120 under TCG, 60 under KVM)")),
    Option("--leave-out", "leave_out", dict(
        type=parts, default=(), metavar="PARTS",
        help="storm parts not to run, space/comma separated: stressor modes, module, "
             "zram, zswap, swap-files (narrowing a failure down)")),
    Option("--preempt", "preempt", dict(
        default=_DEFAULTS.preempt, metavar="MODEL",
        help="the kernel's preemption model: none, voluntary or full (default full; "
             "none and voluntary are kernels of their own)")),
    Option("--faults", "faults", dict(
        type=parts, default=(), metavar="KINDS",
        help="fault injection for the storm's own tasks, space/comma separated: slab, "
             "page, io (a kernel with fault injection; knobs in the storm's faults:)")),
    Option("--stagger", "stagger_s", dict(
        type=any_int, default=None, metavar="SECONDS",
        help="start the stressors this far apart and count each mode's new lock chains "
             "(default: the storm's own; the default storm starts every mode at once)")),
    Option("--stop-on-report", "stop_on_report", dict(
        action=argparse.BooleanOptionalAction, default=None,
        help="end the storm at the first complete kernel report (default: on for bisect, "
             "soak and zoo, off for run)")),
)}

# Which options each kind of command takes.
BUILD = ("arch", "kernel_src", "kernel_version", "profile")
RUN = tuple(OPTIONS)
SELFTEST = (*BUILD, "accel")
MATRIX = ("profile", "storm", "duration", "seed", "accel", "leave_out")   # --arches, --kernel-versions: its own
BENCH = ("arch", "kernel_version", "profile")
MODULE_CHECK = ("profile",)


def add(parser: argparse.ArgumentParser, names: tuple[str, ...] = RUN) -> None:
    for name in names:
        OPTIONS[name].add_to(parser)


def environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The RunRequest fields the environment sets: the one place a run reads it."""
    env = os.environ if environ is None else environ
    return dict(harness_fault=env.get("MMLOCK_FAULT", ""), ssh=env.get("MMLOCK_SSH", "1") != "0",
                ssh_fault=env.get("MMLOCK_SSH_FAULT", ""),
                guest_binaries=tuple(b for b in env.get("MMLOCK_GUEST_BINARIES", "").split(":") if b))


def request(args: argparse.Namespace, **fields: Any) -> RunRequest:
    """The RunRequest of the run options @args holds and the environment's; @fields set the
    rest (a command's own label and defaults). --stop-on-report, when given, has the last word."""
    given = {name: getattr(args, name) for name in OPTIONS if name != "stop_on_report" and hasattr(args, name)}
    made = RunRequest(**{**environment(), **given, **fields})
    if getattr(args, "stop_on_report", None) is not None:
        made = dataclasses.replace(made, stop_on_report=args.stop_on_report)
    return made
