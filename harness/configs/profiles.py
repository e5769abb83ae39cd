"""configs/kernel/profiles.yaml -> Profile, and the profile a run builds (its
preemption model, fault injection)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.configs.common import CONFIG_DIR
from harness.errors import ConfigError
from harness.yamlfile import Fields


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    fragments: tuple[Path, ...]
    append: str



def profile_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    path = config_dir / "kernel" / "profiles.yaml"
    return sorted(yamlfile.load(path))


PREEMPT_MODELS = ("none", "voluntary", "full")
# FAULTS= kinds -> the kernel's fault-injection attribute (its debugfs directory).
FAULT_KINDS = {"slab": "failslab", "page": "fail_page_alloc", "io": "fail_make_request"}


@dataclass(frozen=True)
class FaultSettings:
    """One fault kind's knobs (Documentation/fault-injection): fail with this
    probability (percent) every interval-th chance, at most `times` times."""
    probability: int = 10
    interval: int = 1
    times: int = 10000
    ignore_gfp_wait: bool = True     # slab, page: only allocations that cannot sleep fail
    verbose: int = 0                 # 1: the kernel prints each failure and its stack


def with_faults(profile: Profile, faults: tuple[str, ...], config_dir: Path = CONFIG_DIR) -> Profile:
    """The profile with the kernel's fault injection built in, when FAULTS= asks for any."""
    unknown = [f for f in faults if f not in FAULT_KINDS]
    if unknown:
        raise ConfigError(f"unknown fault kind(s) {', '.join(unknown)}; valid: {', '.join(FAULT_KINDS)}")
    if not faults:
        return profile
    fragment = config_dir / "kernel" / "profiles" / "faults.config"
    return Profile(name=f"{profile.name}-faults", description=f"{profile.description}; fault injection",
                   fragments=(*profile.fragments, fragment), append=profile.append)


def with_preempt(profile: Profile, model: str, config_dir: Path = CONFIG_DIR) -> Profile:
    """The profile built for another preemption model (PREEMPT=): full is the profiles'
    own; none and voluntary add profiles/preempt-<model>.config, a kernel (and an O=
    tree) of their own. Static models, so every arch has them."""
    if model not in PREEMPT_MODELS:
        raise ConfigError(f"unknown preemption model '{model}'; valid: {', '.join(PREEMPT_MODELS)}")
    if model == "full":
        return profile
    fragment = config_dir / "kernel" / "profiles" / f"preempt-{model}.config"
    return Profile(name=f"{profile.name}-preempt-{model}",
                   description=f"{profile.description}; built with preempt={model}",
                   fragments=(*profile.fragments, fragment), append=profile.append)


def run_profile(name: str, preempt: str = "full", faults: tuple[str, ...] = (),
                config_dir: Path = CONFIG_DIR) -> Profile:
    """The profile a run builds: the named one, for its preemption model, with fault
    injection when FAULTS= asks for any (each a kernel of its own)."""
    return with_faults(with_preempt(load_profile(name, config_dir), preempt, config_dir), faults, config_dir)


def load_profile(name: str, config_dir: Path = CONFIG_DIR) -> Profile:
    path = config_dir / "kernel" / "profiles.yaml"
    top = Fields(yamlfile.load(path), path)
    if name not in top.data:
        valid = ", ".join(sorted(top.data))
        raise ConfigError(f"unknown profile '{name}'; valid profiles: {valid}")
    entry = top.sub(name)
    fragments = []
    for frag in entry.str_list("fragments"):
        frag_path = config_dir / "kernel" / frag
        if not frag_path.is_file():
            raise ConfigError(f"{entry.where('fragments')}: no such fragment file {frag_path}")
        fragments.append(frag_path)
    profile = Profile(name=name, description=entry.get("description", str, ""),
                      fragments=tuple(fragments), append=entry.get("append", str, "") or "")
    entry.finish()
    return profile
