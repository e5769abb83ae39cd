"""Command line: arguments -> a request; a verdict -> an exit code.

Every make variable is an option of the same name (ARCH= -> --arch).
Exit codes: 0 pass, 1 fail, 2 config-error, 3 infra-error, 4 build-error,
5 boot-failure.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import traceback
from typing import TYPE_CHECKING

from harness import options
from harness.errors import EXIT_INFRA, ConfigError, HarnessError
from harness.options import empty_is_none, parts, positive_int
from harness.signals import interrupt_name, terminate_as_interrupt

if TYPE_CHECKING:
    from harness.run import RunOutcome, RunRequest


def _runs(text: str) -> int | None:
    if text in ("", "auto"):
        return None
    return positive_int(text)


def _request(args: argparse.Namespace, **fields) -> RunRequest:
    """The RunRequest of a command's run options (harness.options); @fields set the rest."""
    from harness import options

    return options.request(args, **fields)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every external command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    deps = sub.add_parser("deps", help="install the host packages arches need (apt-get, as root)")
    deps.add_argument("--arch", default="x86_64", help="one arch or a space/comma separated list")
    deps.add_argument("--kernel-version", default="6.1", help="Debian linux-source versions to install too")
    deps.add_argument("--packages", default="", help="more Debian packages (e.g. chromium for the page tests)")

    build = sub.add_parser("build", help="build (or fetch from cache) the kernel and the guest image")
    options.add(build, options.BUILD)

    boot = sub.add_parser("boot", help="build, boot to the ready marker, power off: no storm")
    options.add(boot)

    run = sub.add_parser("run", help="build, boot, storm, verdict (what `make boot-test` calls)")
    options.add(run)

    shell = sub.add_parser("shell", help="boot the default image and open a shell in the guest "
                                         "(SSH when up, else the serial console)")
    options.add(shell)

    selftest = sub.add_parser("selftest", help="inject every fault kind, one boot each; check the verdicts")
    options.add(selftest, options.SELFTEST)
    selftest.add_argument("--cases", default="", help="comma-separated subset of configs/selftest.yaml cases")

    _add_bisect(sub)

    one = sub.add_parser("run-request", help="one run of a RunRequest given as JSON (what a matrix cell runs)")
    one.add_argument("request", help="the request's JSON (RunRequest.to_json)")

    _add_campaigns(sub)

    parse = sub.add_parser("parse", help="find kernel reports in saved console logs (no QEMU needed)")
    parse.add_argument("--json", action="store_true", help="JSON array, one object per file")
    parse.add_argument("logs", nargs="+", metavar="LOG")
    return parser


def _add_bisect(sub: argparse._SubParsersAction) -> None:
    bisect = sub.add_parser("bisect", help="git bisect a kernel tree with a storm as the test (`make bisect`)")
    options.add(bisect)
    bisect.add_argument("--good", required=True, help="a revision without the bug (an ancestor of --bad)")
    bisect.add_argument("--bad", required=True, help="a revision with the bug")
    bisect.add_argument("--runs", type=_runs, default=None,
                        help="storms per step: a number, or auto (default: from the rate at BAD)")
    bisect.add_argument("--title", type=empty_is_none, default=None,
                        help="the report title to bisect (default: the one BAD produces)")
    bisect.add_argument("--other-report", choices=("skip", "bad"), default="skip",
                        help="a step with a different report: skip it (default) or call it bad")
    bisect.add_argument("--hits", type=positive_int, default=1,
                        help="sightings of the target that make a step bad (default 1)")
    bisect.add_argument("--bad-runs", type=positive_int, default=3,
                        help="adaptive runs: storms at BAD to estimate the reproduction rate (default 3)")
    bisect.add_argument("--max-runs", type=positive_int, default=8,
                        help="adaptive runs: at most this many storms per step (default 8)")
    bisect.add_argument("--verify-good", action="store_true",
                        help="run GOOD first and stop if it is not clean")
    bisect.add_argument("--revert-check", action=argparse.BooleanOptionalAction, default=True,
                        help="with a culprit named, revert it on BAD (a commit on no branch) and run that as "
                             "many times as a step: fixed, still-fails or does-not-apply (default on)")


def _add_campaigns(sub: argparse._SubParsersAction) -> None:
    """The commands that run many runs, or none: matrix, module-check, soak, zoo, bench."""
    matrix = sub.add_parser("matrix", help="run arches x kernel versions; summary.json, junit.xml, summary.html")
    matrix.add_argument("--arches", default="", help="space/comma separated (default: every arch)")
    matrix.add_argument("--kernel-versions", default="6.1", help="space/comma separated")
    matrix.add_argument("--jobs", type=positive_int, default=None, help="cells at once (default from cores/memory)")
    options.add(matrix, options.MATRIX)

    modcheck = sub.add_parser("module-check", help="build the test module warning-free against arches x kernel "
                              "versions (modules_prepare where no kernel is built)")
    modcheck.add_argument("--arches", default="", help="space/comma separated (default: every arch)")
    modcheck.add_argument("--kernel-versions", default="6.1 6.12", help="space/comma separated")
    options.add(modcheck, options.MODULE_CHECK)

    soak = sub.add_parser("soak", help="N clean storms in a row; pass count and any flaky report")
    options.add(soak)
    soak.add_argument("--runs", type=positive_int, default=20)

    zoo = sub.add_parser("zoo", help="undo real historical mm-locking fixes one at a time; our storm and "
                                     "stress-ng on each kernel (`make zoo`)")
    options.add(zoo)
    zoo.add_argument("--cases", type=parts, default=(), metavar="CASES",
                     help="space/comma separated configs/zoo cases (default: all)")
    zoo.add_argument("--yardstick", action=argparse.BooleanOptionalAction, default=True,
                     help="also run stress-ng on each case's kernel (default on)")

    bench = sub.add_parser("bench", help="build, boot, storm and parser figures on this machine (`make bench`)")
    options.add(bench, options.BENCH)
    bench.add_argument("--repeat", type=positive_int, default=3, help="samples per figure (median; default 3)")
    bench.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                       help="also a cold build and boot-test in a scratch cache (default on; 6-10 min more)")
    bench.add_argument("--log-mb", type=positive_int, default=200, help="size of the generated parser log")


def _cmd_deps(args: argparse.Namespace) -> int:
    from harness import configs, host

    arches = [configs.load_arch(a) for a in args.arch.replace(",", " ").split()]
    versions = args.kernel_version.replace(",", " ").split()
    wanted = [f"linux-source-{v}" for v in versions] + args.packages.replace(",", " ").split()
    for arch in arches:
        wanted += [p for p in host.packages_for(arch) if p not in wanted]
    host.ensure_packages(wanted)
    for arch in arches:
        if arch.busybox == "package":   # only the package needs Debian's packages of that arch
            host.ensure_foreign_arch(arch.debian_arch)
    print(f"deps: host packages for {', '.join(a.name for a in arches)} are installed")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from harness import configs, image, results
    from harness.kernel import build, source

    arch = configs.load_arch(args.arch)
    profile = configs.load_profile(args.profile)
    src = source.resolve(args.kernel_src, args.kernel_version)
    log_dir = results.results_root() / "build-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{arch.name}-{profile.name}.log"
    log_file.write_text("")
    kernel = build.build_kernel(src, arch, profile, log_file)
    guest = image.build_image(kernel, log_file, options.environment()["guest_binaries"])
    cpu = "" if kernel.cached else f", {kernel.cpu_s:.0f} CPU s"
    print(f"kernel:    {kernel.image} ({'cached' if kernel.cached else 'built'}, {kernel.duration_s:.1f}s{cpu})")
    print(f"vmlinux:   {kernel.vmlinux}")
    print(f"config:    {kernel.config}")
    print(f"initramfs: {guest.initramfs} ({'cached' if guest.cached else 'built'})")
    print(f"build log: {log_file}")
    return 0


def _cmd_run(args: argparse.Namespace, storm_enabled: bool) -> int:
    from harness.run import execute

    outcome = execute(_request(args, storm_enabled=storm_enabled, label="run" if storm_enabled else "boot"))
    return print_outcome(outcome)


def print_outcome(outcome: RunOutcome) -> int:
    """What `run` and `boot` print about a finished run; the exit code."""
    from harness.report.model import printable

    storm, coverage = outcome.record.storm_facts, outcome.record.coverage
    for report in outcome.verdict.reports:
        lines = f" (console.log:{report.start_line}-{report.end_line})" if report.start_line else ""
        print(f"  report: {printable(report.title)}{lines}")
    for name, values in storm.counts.items():
        shown = " ".join(f"{k}={v}" for k, v in values.items())
        print(printable(f"  storm {name}: {shown}"))
    for part, why in (storm.left_out or {}).items():
        print(f"  note: {part} left out: {why}")
    if coverage.never_taken:
        print(f"  warning: target locks never taken: {', '.join(coverage.never_taken)}")
    for target, why in (coverage.not_in_kernel or {}).items():
        print(f"  note: target lock {target} {why}")
    modes = coverage.modes or {}
    chains = [f"{name}={v['new_chains']}" for name, v in modes.items() if v.get("new_chains") is not None]
    if chains:
        print(f"  new lock chains after each start: {' '.join(chains)}")
    if coverage.mode_chains_stopped:
        print(f"  note: chain sampling stopped {coverage.mode_chains_stopped}")
    for name in coverage.modes_without_targets or []:
        print(f"  warning: mode {name} took none of its target locks ({', '.join(modes[name]['targets'])})")
    print(f"results: {outcome.run_dir}")
    print(f"verdict: {outcome.verdict.verdict} (exit {outcome.verdict.exit_code}): "
          f"{printable(outcome.verdict.reason)}")
    return outcome.verdict.exit_code


def _cmd_shell(args: argparse.Namespace) -> int:
    from harness.channel.shell import interactive
    from harness.run import held

    used = "none (the guest never came up)"
    with held(_request(args, storm_enabled=False, label="shell")) as run:
        if run.session is not None:
            used = interactive(run.session.channel)
    outcome = run.outcome
    assert outcome is not None
    print(f"shell: {used}; results: {outcome.run_dir}")
    print(f"verdict: {outcome.verdict.verdict} (exit {outcome.verdict.exit_code}): {outcome.verdict.reason}")
    return outcome.verdict.exit_code


def _cmd_bisect(args: argparse.Namespace) -> int:
    from harness.bisect_cmd import Policy, run_bisect_command

    template = _request(args, label="bisect", stop_on_report=True)
    policy = Policy(runs=args.runs, bad_runs=args.bad_runs, max_runs=args.max_runs, hits=args.hits,
                    other_report=args.other_report, title=args.title, verify_good=args.verify_good,
                    revert_check=args.revert_check)
    return run_bisect_command(template, args.good, args.bad, policy, verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    from harness.terminal import safe_stdio

    with safe_stdio():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    terminate_as_interrupt()
    try:
        return _dispatch(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"verdict: {exc.verdict} (exit {exc.exit_code})", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(f"interrupted ({interrupt_name(exc)})", file=sys.stderr)
        return 130
    except Exception as exc:   # a bug of ours outside a run: infra, never "kernel report" (1)
        from harness.run import internal_error

        print(f"error: {internal_error(exc, args.command)}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        print(f"verdict: infra-error (exit {EXIT_INFRA})", file=sys.stderr)
        return EXIT_INFRA


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "deps":
        return _cmd_deps(args)
    if args.command == "build":
        return _cmd_build(args)
    if args.command == "selftest":
        from harness.selftest import run_selftest

        return run_selftest(_request(args), [c for c in args.cases.split(",") if c])
    if args.command == "shell":
        return _cmd_shell(args)
    if args.command == "bisect":
        return _cmd_bisect(args)
    if args.command == "matrix":
        from harness.matrix import default_jobs, run_matrix
        from harness.run import check_options

        kvers = args.kernel_versions.replace(",", " ").split()
        template = _request(args)
        for kver in kvers:   # the cells' shared values, before any cell starts
            check_options(dataclasses.replace(template, kernel_version=kver))
        return run_matrix(args.arches.replace(",", " ").split(), kvers, args.jobs or default_jobs(), template)
    if args.command == "module-check":
        from harness.modcheck import run_module_check

        return run_module_check(args.arches.replace(",", " ").split(),
                                args.kernel_versions.replace(",", " ").split(), args.profile)
    if args.command == "soak":
        from harness.soak import run_soak

        return run_soak(args.runs, _request(args, label="soak", stop_on_report=True))
    if args.command == "zoo":
        from harness.zoo import run_zoo

        if args.inject:
            raise ConfigError("zoo: --inject is not for the zoo (each case is a real bug, not an injection)")
        return run_zoo(args.cases, _request(args, label="zoo", stop_on_report=True), yardstick=args.yardstick)
    if args.command == "bench":
        from harness.bench import run_bench

        return run_bench(_request(args), args.repeat, args.cold, args.log_mb)
    if args.command == "parse":
        from harness.report.cli import parse_command

        return parse_command(args.logs, args.json)
    if args.command == "run-request":
        from harness.run import RunRequest, execute

        return print_outcome(execute(RunRequest.from_json(json.loads(args.request))))
    return _cmd_run(args, storm_enabled=args.command == "run")


if __name__ == "__main__":
    sys.exit(main())
