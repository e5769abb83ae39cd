"""One exception class per party at fault, each with its exit code.

Only findings in the kernel under test are a FAIL (exit 1); everything
else says who has to act: the user (2), the host or QEMU (3), the kernel
build (4), or the boot (5).
"""
from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2
EXIT_INFRA = 3
EXIT_BUILD = 4
EXIT_BOOT = 5

VERDICT_NAMES = {
    EXIT_PASS: "pass",
    EXIT_FAIL: "fail",
    EXIT_CONFIG: "config-error",
    EXIT_INFRA: "infra-error",
    EXIT_BUILD: "build-error",
    EXIT_BOOT: "boot-failure",
}


class HarnessError(Exception):
    """Base class: a run that could not reach a verdict on the kernel."""

    exit_code = EXIT_INFRA

    @property
    def verdict(self) -> str:
        return VERDICT_NAMES[self.exit_code]


class ConfigError(HarnessError):
    """Bad arguments, bad YAML, unknown names: the user must fix the input."""

    exit_code = EXIT_CONFIG


class InfraError(HarnessError):
    """The host, a tool or QEMU failed; the kernel under test is not to blame."""

    exit_code = EXIT_INFRA


class BuildError(HarnessError):
    """The kernel, the module or the stressors did not build."""

    exit_code = EXIT_BUILD


class BootError(HarnessError):
    """The guest never reached the init's ready marker."""

    exit_code = EXIT_BOOT
