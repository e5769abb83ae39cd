"""`make zoo`: real historical mm-locking fixes, each undone on the default source,
and what our storm and a person's stress-ng make of the kernel that results.

A case is configs/zoo/<name>.yaml (the fix, what undoing it breaks, the title
that counts as caught, the run options it needs) beside <name>.patch, the
fix reversed against Debian's tarball. A case of kind `shipped` is a bug the
harness found in Debian's source as it ships (its fix never reached that
stable tree): it runs on the source unchanged, names the fix's patch
(`fix_patch`, forward) and runs once more with it applied, which must pass.
Every patch is checked with `git apply --check` (never fuzz) before
anything is built. The cases are
applied one at a time in one git work tree of the default source, so each
kernel build is incremental in that tree's one O= directory; on each kernel
the default storm and the stress-ng yardstick run for the same time, and
results/zoo/summary.json gets one row a case: caught or not, the title, and
the seconds from the storm's start to the first report. Cases the storm
misses stay in the zoo: it is the frontier, not a showcase.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import yamlfile
from harness.cache import cache_root, exclusive
from harness.configs import CONFIG_DIR, REPO_ROOT, load_storm, run_profile
from harness.errors import ConfigError, InfraError
from harness.host import require_tool
from harness.kernel import source as kernel_source
from harness.record import RunRecord
from harness.report.model import printable
from harness.results import results_root, write_json
from harness.run import RunRequest, execute, load_request

ZOO_DIR = CONFIG_DIR / "zoo"
BASE_TAG = "zoo-base"
# Run options a case may set for our storm (the yardstick always runs stress-ng).
OPTIONS = {"profile": str, "storm": str, "duration": int, "leave_out": list, "preempt": str, "faults": list}
# The capability a case is for: the default storm, or what it would take beyond it.
NEEDS = ("default", "preempt-none", "faults", "swap-fill", "kasan", "rt-priority")
# undone: a fix in Debian's source, reversed; shipped: a bug in it as it ships.
KINDS = ("undone", "shipped")


@dataclass(frozen=True)
class ZooCase:
    name: str
    yaml: Path
    patch: Path              # undone: the fix reversed; shipped: the fix (for the `fixed` run)
    fix: str                 # the fix's title, as in the stable tree and Debian's changelog
    upstream: str            # the fix's upstream commit
    kernel_version: str
    breaks: str              # what undoing the fix breaks, and how a run could see it
    expect: re.Pattern       # a report title that counts as this bug caught
    needs: str               # the capability the case is for (NEEDS)
    options: dict = field(default_factory=dict)
    kind: str = "undone"     # KINDS
    # With it, a report counts only if one of its stack frames matches too: for
    # reports whose title cannot name the place (a stall whose dump has no
    # interrupt frame is titled "in corrupted", as syzkaller titles it).
    expect_frame: re.Pattern | None = None


def case_names(zoo_dir: Path = ZOO_DIR) -> list[str]:
    return sorted(p.stem for p in zoo_dir.glob("*.yaml"))


def load_case(name: str, zoo_dir: Path = ZOO_DIR) -> ZooCase:
    path = zoo_dir / f"{name}.yaml"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or not path.is_file():
        raise ConfigError(f"unknown zoo case '{name}'; valid cases: {', '.join(case_names(zoo_dir)) or '(none)'}")
    top = yamlfile.Fields(yamlfile.load(path), path)
    case_kind = top.choice("kind", KINDS, "undone")
    if case_kind == "shipped":
        fix_patch = top.get("fix_patch", str)
        patch = REPO_ROOT / fix_patch
        if not fix_patch.endswith(".patch") or ".." in Path(fix_patch).parts or not patch.is_file():
            raise ConfigError(f"{top.where('fix_patch')}: a .patch file in the repository, got {fix_patch!r}")
    else:
        patch = path.with_suffix(".patch")
        if not patch.is_file():
            raise ConfigError(f"{path}: no patch beside it ({patch.name})")
    expect = _pattern(top, "expect")
    expect_frame = _pattern(top, "expect_frame") if "expect_frame" in top.data else None
    upstream = top.get("upstream", str)
    if not re.fullmatch(r"[0-9a-f]{12,40}", upstream):
        raise ConfigError(f"{top.where('upstream')}: a commit id (12 to 40 hex digits), got {upstream!r}")
    version = top.get("kernel_version", str)
    if version not in kernel_source.KNOWN_VERSIONS:
        raise ConfigError(f"{top.where('kernel_version')}: one of {', '.join(kernel_source.KNOWN_VERSIONS)}, "
                          f"got {version!r}")
    options = top.sub("options", {})
    chosen: dict = {}
    for key, kind in OPTIONS.items():
        if key in options.data:
            chosen[key] = options.get(key, kind)
    case = ZooCase(name=name, yaml=path, patch=patch, fix=top.get("fix", str), upstream=upstream,
                   kernel_version=version, breaks=" ".join(top.get("breaks", str).split()), expect=expect,
                   needs=top.choice("needs", NEEDS), options=chosen, kind=case_kind,
                   expect_frame=expect_frame)
    options.finish()
    top.finish()
    if chosen.keys() & {"profile", "preempt", "faults"}:
        run_profile(chosen.get("profile", "lockdep"), chosen.get("preempt", "full"), tuple(chosen.get("faults", ())))
    if "storm" in chosen:
        load_storm(chosen["storm"])
    return case


def _pattern(top: yamlfile.Fields, key: str) -> re.Pattern:
    """The key's regular expression, or a ConfigError naming the file, line and key."""
    try:
        return re.compile(top.get(key, str))
    except re.error as exc:
        raise ConfigError(f"{top.where(key)}: not a regular expression: {exc}") from None


def load_cases(names: tuple[str, ...] = (), zoo_dir: Path = ZOO_DIR) -> list[ZooCase]:
    """The named cases (all when none), every YAML checked before anything runs."""
    wanted = names or tuple(case_names(zoo_dir))
    if not wanted:
        raise ConfigError(f"no zoo cases in {zoo_dir}")
    return [load_case(name, zoo_dir) for name in wanted]


def _git(tree: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([require_tool("git"), "-C", str(tree), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise InfraError(f"git {' '.join(args)} in {tree} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc


def check_patch(case: ZooCase, tree: Path) -> None:
    """The case's patch applies to @tree exactly (git apply --check, no fuzz), or a ConfigError."""
    proc = subprocess.run([require_tool("git"), "apply", "--check", "-p1", str(case.patch)],
                          cwd=tree, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError(f"{case.patch}: does not apply to {tree.name}: "
                          f"{(proc.stderr or proc.stdout).strip()[-400:]}")


def zoo_tree(source: kernel_source.KernelSource) -> Path:
    """A git work tree with the default source's content (its harness patches applied),
    at a fixed path so its O= tree, and so every case's build, is incremental. Made
    once per source identity; every case starts from its base commit."""
    # R/src/<name>: the layout whose builds ccache shares with the default source's
    # (harness.kernel.build.layout_root), so even the zoo's first build is warm.
    tree = cache_root() / "zoo" / "src" / source.path.name
    stamp = tree.parent / f"{source.path.name}.base"
    if not (stamp.is_file() and stamp.read_text() == source.identity and (tree / ".git").is_dir()):
        print(f"zoo: making a git work tree of {source.origin} in {tree} (once)", file=sys.stderr, flush=True)
        shutil.rmtree(tree, ignore_errors=True)
        tree.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(source.path), str(tree)], check=True)
        _git(tree, "init", "-q")
        # Debian's tarball ignores everything at the top (.gitignore '/*'): -f.
        _git(tree, "add", "-f", "-A")
        _git(tree, "-c", "user.name=mmlock-harness", "-c", "user.email=zoo@mmlock-harness.invalid",
             "commit", "-q", "-m", f"{source.origin} {source.version}")
        _git(tree, "tag", "-f", BASE_TAG)
        stamp.write_text(source.identity)
    return tree


def apply_case(tree: Path, case: ZooCase | None, fixed: bool = False) -> None:
    """The tree back at its base, then the case's bug: an undone case's patch, a
    shipped case's nothing (None: the clean base). @fixed: a shipped case's fix."""
    _git(tree, "reset", "-q", "--hard", BASE_TAG)
    _git(tree, "clean", "-fdxq")
    if case is not None and (case.kind == "shipped") == fixed:
        _git(tree, "apply", "-p1", str(case.patch))


def _first_caught(record: RunRecord, case: ZooCase) -> tuple[bool, str]:
    """Did the run report this bug? (caught, the title it gave, or the first one)."""
    reports = [r for r in record.reports if r.primary]
    for report in reports:
        if case.expect.search(report.title) and (
                case.expect_frame is None or any(case.expect_frame.search(f) for f in report.frames)):
            return True, report.title
    return False, reports[0].title if reports else ""


def side(record: RunRecord, case: ZooCase) -> dict:
    """One run's column of the zoo table."""
    caught, title = _first_caught(record, case)
    verdict = record.verdict
    return {"run_id": record.run_id, "verdict": verdict,
            "result": "build-error" if verdict == "build-error" else
                      "caught" if caught else "other-report" if title else
                      "infra-error" if verdict in ("infra-error", "boot-failure", "config-error") else "missed",
            "title": printable(title), "first_report_s": record.storm_facts.first_report_s,
            "storm_s": record.durations.storm_s}


def run_case(case: ZooCase, base: RunRequest, tree: Path, yardstick: bool) -> dict:
    from harness import yardstick as peer
    apply_case(tree, case)
    runs = Path(base.results_dir or results_root() / "zoo" / "runs")
    request = replace(base, kernel_src=str(tree), label=f"zoo-{case.name}", results_dir=str(runs),
                      profile=case.options.get("profile", base.profile),
                      storm=case.options.get("storm", base.storm),
                      duration=case.options.get("duration", base.duration),
                      leave_out=tuple(case.options.get("leave_out", base.leave_out)),
                      preempt=case.options.get("preempt", base.preempt),
                      faults=tuple(case.options.get("faults", base.faults)))
    started = time.monotonic()
    ours = side(execute(request).record, case)
    row: dict = {"case": case.name, "kind": case.kind, "fix": case.fix, "upstream": case.upstream,
                 "needs": case.needs, "options": case.options, "ours": ours}
    if case.needs != "default" and ours["result"] != "build-error":
        # The same kernel source with the default storm, profile and model: what
        # the capability adds is the difference between the two runs.
        plain = replace(base, kernel_src=str(tree), label=f"zoo-{case.name}-default", results_dir=str(runs))
        row["default"] = side(execute(plain).record, case)
    if yardstick and ours["result"] != "build-error":
        theirs = peer.run(replace(request, storm="stress-ng", leave_out=()))
        row["stress_ng"] = {**side(theirs.record, case), **theirs.evidence()}
    if case.kind == "shipped" and ours["result"] != "build-error":
        # The same run with the fix: what ours reported must be gone.
        apply_case(tree, case, fixed=True)
        row["fixed"] = side(execute(replace(request, label=f"zoo-{case.name}-fixed")).record, case)
    row["wall_s"] = round(time.monotonic() - started, 1)
    row["date"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return row


def table(rows: list[dict]) -> str:
    def cell(part: dict | None) -> str:
        if not part:
            return "-"
        when = f" {part['first_report_s']:.1f}s" if part.get("first_report_s") is not None else ""
        swapped = "" if part.get("swapped", True) else " (did not swap)"
        earlier = " (earlier run)" if part.get("earlier_run") else ""
        return f"{part['result']}{when}{swapped}{earlier}"
    width = max([36] + [len(row["case"]) for row in rows])
    lines = [f"{'case':{width}} {'needs':13} {'ours':22} {'default storm':22} {'stress-ng':28} "
             f"{'ours, fix applied':18} title (ours)"]
    for row in rows:
        lines.append(f"{row['case']:{width}} {row['needs']:13} {cell(row['ours']):22} "
                     f"{cell(row.get('default')):22} {cell(row.get('stress_ng')):28} "
                     f"{cell(row.get('fixed')):18} {row['ours']['title']}")
    return "\n".join(lines)


def run_zoo(names: tuple[str, ...], base: RunRequest, yardstick: bool = True) -> int:
    """Every named case (all when none): 0 when every run reached a verdict, 3 otherwise."""
    cases = load_cases(names)
    versions = {case.kernel_version for case in cases}
    if versions != {base.kernel_version}:
        raise ConfigError(f"zoo cases for kernel {', '.join(sorted(versions))}, the run is for "
                          f"{base.kernel_version}: choose cases of one version (CASES=) or KERNEL_VERSION=")
    if base.kernel_src:
        raise ConfigError("the zoo undoes fixes in Debian's source of its version; KERNEL_SRC is not for it")
    load_request(base)   # ACCEL, arch, profile, storm... before the source is unpacked and copied
    source = kernel_source.default_source(base.kernel_version)
    for case in cases:   # every patch checked against the pristine source before any work
        check_patch(case, source.path)
    out = results_root() / "zoo"
    out.mkdir(parents=True, exist_ok=True)
    # A run of some cases (CASES=) updates their rows; the others' stay as they were.
    earlier = previous_rows(out / "summary.json", base, {case.name for case in cases})
    kept_yardsticks = {} if yardstick else earlier_yardsticks(out / "summary.json", base)
    rows: list[dict] = []
    with exclusive(cache_root() / "zoo" / f".{source.path.name}.lock"):
        tree = zoo_tree(source)
        try:
            for index, case in enumerate(cases, 1):
                print(f"zoo: [{index}/{len(cases)}] {case.name}: {case.fix}", file=sys.stderr, flush=True)
                rows.append(run_case(case, base, tree, yardstick))
                if case.name in kept_yardsticks:
                    rows[-1]["stress_ng"] = kept_yardsticks[case.name]
                ours = rows[-1]["ours"]
                print(f"zoo: [{index}/{len(cases)}] {case.name}: ours {ours['result']} {ours['title']}",
                      file=sys.stderr, flush=True)
                write_json(out / "summary.json", summary(merged(earlier, rows), base))
        finally:
            apply_case(tree, None)
    write_json(out / "summary.json", summary(merged(earlier, rows), base))
    print(table(merged(earlier, rows)))
    unfinished = [r["case"] for r in rows if r["ours"]["result"] == "infra-error"]
    return 3 if unfinished else 0


def _old_rows(path: Path, base: RunRequest) -> list[dict]:
    """The rows of an earlier summary.json of the same arch and kernel version; [] when
    there is none or it does not read."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if (old.get("arch"), old.get("kernel_version")) != (base.arch, base.kernel_version):
        return []
    return [row for row in old.get("rows", []) if isinstance(row, dict)]


def previous_rows(path: Path, base: RunRequest, now: set[str]) -> list[dict]:
    """The rows of an earlier summary.json of the same arch and kernel version, but
    for the cases run now; [] when there is none or it does not read."""
    return [row for row in _old_rows(path, base) if row.get("case") not in now and row.get("case") in case_names()]


def earlier_yardsticks(path: Path, base: RunRequest) -> dict[str, dict]:
    """{case: its stress-ng side from an earlier summary.json}, marked with that run's date:
    what a run without the yardstick (YARDSTICK=0) keeps in its rows, since stress-ng and
    the case's kernel are what they were."""
    return {row["case"]: {**row["stress_ng"], "earlier_run": row.get("date", "")}
            for row in _old_rows(path, base) if row.get("case") and isinstance(row.get("stress_ng"), dict)}


def merged(earlier: list[dict], rows: list[dict]) -> list[dict]:
    """Earlier rows and this run's, in the zoo's case order."""
    order = {name: index for index, name in enumerate(case_names())}
    return sorted(earlier + rows, key=lambda row: order.get(row["case"], len(order)))


def summary(rows: list[dict], base: RunRequest) -> dict:
    both = [r for r in rows if r["ours"]["result"] == "caught" and r.get("stress_ng", {}).get("result") == "caught"]
    return {"arch": base.arch, "kernel_version": base.kernel_version, "seed": base.seed,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "host_cpus": os.cpu_count(), "cases": len(rows),
            "caught": {"ours": sum(r["ours"]["result"] == "caught" for r in rows),
                       "stress_ng": sum(r.get("stress_ng", {}).get("result") == "caught" for r in rows),
                       "both": len(both)},
            "rows": rows}
