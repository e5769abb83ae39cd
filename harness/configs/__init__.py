"""The data in configs/ as frozen dataclasses: one registry for every YAML file.

An arch is its YAML file and nothing else; a storm likewise. Unknown names
list the valid ones; malformed files name the file, line and key.

    arches.py    configs/arches/*.yaml          Arch, load_arch, arch_names
    profiles.py  configs/kernel/profiles.yaml   Profile, load_profile, run_profile (preempt, faults)
    storms.py    configs/storms/*.yaml          Storm, StressorSpec, load_storm, storm_names
    tables.py    configs/locks.yaml             LockTarget, load_lock_targets
                 configs/kernel/requires.yaml   Requirements, load_requirements
                 configs/selftest.yaml          SelftestCase, load_selftest_cases
    common.py    REPO_ROOT, CONFIG_DIR, parse_fragment
"""
from __future__ import annotations

from harness.configs.arches import BUSYBOX_FROM, TCG_THREADS, Arch, arch_names, load_arch
from harness.configs.common import CONFIG_DIR, REPO_ROOT, parse_fragment
from harness.configs.profiles import (
    FAULT_KINDS,
    PREEMPT_MODELS,
    FaultSettings,
    Profile,
    load_profile,
    profile_names,
    run_profile,
    with_faults,
    with_preempt,
)
from harness.configs.storms import SWAP_FILE_FS, Storm, StressorSpec, load_storm, storm_names
from harness.configs.tables import (
    LockTarget,
    Requirements,
    SelftestCase,
    load_lock_targets,
    load_requirements,
    load_selftest_cases,
)

__all__ = ["BUSYBOX_FROM", "CONFIG_DIR", "FAULT_KINDS", "PREEMPT_MODELS", "REPO_ROOT", "SWAP_FILE_FS", "TCG_THREADS",
           "Arch", "FaultSettings", "LockTarget", "Profile", "Requirements", "SelftestCase", "Storm", "StressorSpec",
           "arch_names", "load_arch", "load_lock_targets", "load_profile", "load_requirements",
           "load_selftest_cases", "load_storm", "parse_fragment", "profile_names", "run_profile", "storm_names",
           "with_faults", "with_preempt"]
