"""The registry's tables beside arches, profiles and storms: lock targets
(configs/locks.yaml), what a storm needs of a kernel (configs/kernel/requires.yaml)
and the detection self-test's cases (configs/selftest.yaml). Loaded like the others:
frozen dataclasses, errors naming the file, the line and the key."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.configs.common import CONFIG_DIR
from harness.errors import ConfigError


@dataclass(frozen=True)
class LockTarget:
    """A target's lockdep class names; with `after`, only the classes of those names
    that lockdep saw taken directly under that class (a generic name such as
    "&p->lock" belongs to swap_info_struct only where it nests in swap_lock)."""
    names: tuple[str, ...]
    after: str = ""
    gone_from: str = ""   # a kernel release without the lock (the target is not expected there)
    why_gone: str = ""


def load_lock_targets(config_dir: Path = CONFIG_DIR, names: tuple[str, ...] = ()) -> dict[str, LockTarget]:
    """Target lock classes by name: the storm's own list, else locks.yaml's default list."""
    path = config_dir / "locks.yaml"
    top = yamlfile.Fields(yamlfile.load(path), path)
    targets = top.sub("targets")
    every: dict[str, LockTarget] = {}
    for name in targets.data:
        if isinstance(targets.data[name], dict):
            entry = targets.sub(name)
            gone_from = why_gone = ""
            if "gone" in entry.data:
                gone = entry.sub("gone")
                gone_from, why_gone = gone.get("from", str), gone.get("why", str)
                gone.finish()
            every[name] = LockTarget(entry.str_list("names"), entry.get("after", str, "") or "",
                                     gone_from, why_gone)
            entry.finish()
        else:
            every[name] = LockTarget(targets.str_list(name))
    default = top.str_list("default")
    targets.finish()
    top.finish()
    wanted = names or default
    unknown = [n for n in wanted if n not in every]
    if unknown:
        where = str(path) if names else top.where("default")   # a storm's own names: its lock_targets
        raise ConfigError(f"{where}: unknown lock target(s) {', '.join(unknown)}; known: {', '.join(every)}")
    return {name: every[name] for name in wanted}


@dataclass(frozen=True)
class Requirements:
    modes: dict[str, tuple[str, ...]]    # mmstress mode -> options ("A|B": either)
    storm: dict[str, tuple[str, ...]]    # storm feature -> options
    path: Path


def load_requirements(config_dir: Path = CONFIG_DIR) -> Requirements:
    path = config_dir / "kernel" / "requires.yaml"
    top = yamlfile.Fields(yamlfile.load(path), path)
    tables = []
    for key in ("modes", "storm"):
        sub = top.sub(key)
        table = {name: sub.str_list(name) for name in sub.data}
        sub.finish()
        for name, options in table.items():
            for alternative in (o for option in options for o in option.split("|")):
                if not alternative.startswith("CONFIG_") or not alternative[7:].replace("_", "").isalnum():
                    raise ConfigError(f"{sub.where(name)}: not a kconfig option name: {alternative!r}")
        tables.append(table)
    top.finish()
    return Requirements(tables[0], tables[1], path)


@dataclass(frozen=True)
class SelftestCase:
    name: str
    inject: str | None
    storm: str
    duration_s: int | None
    verdict: str
    kind: str | None
    title: str | None
    # Arches whose kernel cannot give this report a function (an honest
    # "in corrupted", as syzkaller titles it): the title prefix still counts.
    corrupted_ok: tuple[str, ...] = ()
    # (arch, title prefix) where the kernel words the same fault otherwise.
    title_on: tuple[tuple[str, str], ...] = ()

    def title_for(self, arch: str) -> str | None:
        return dict(self.title_on).get(arch, self.title)


def load_selftest_cases(path: Path = CONFIG_DIR / "selftest.yaml") -> list[SelftestCase]:
    top = yamlfile.Fields(yamlfile.load(path), path)
    cases_map = top.sub("cases")
    cases = []
    for name in cases_map.data:
        entry = cases_map.sub(name)
        expect = entry.sub("expect")
        title_on: list[tuple[str, str]] = []
        if "title_on" in expect.data:
            per_arch = expect.sub("title_on")
            title_on = [(arch, per_arch.get(arch, str)) for arch in per_arch.data]
            per_arch.finish()
        cases.append(SelftestCase(
            name=name, inject=entry.get("inject", str, None), storm=entry.get("storm", str, "selftest"),
            duration_s=entry.get("duration_s", int, None), verdict=expect.get("verdict", str),
            kind=expect.get("kind", str, None), title=expect.get("title", str, None),
            corrupted_ok=expect.str_list("corrupted_ok_on", []), title_on=tuple(title_on)))
        expect.finish()
        entry.finish()
    cases_map.finish()
    top.finish()
    return cases
