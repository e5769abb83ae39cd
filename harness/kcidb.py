"""Runs as KCIDB JSON (schema v5.3): the checkouts, builds, tests, issues and
incidents kernel CI systems exchange. Written beside verdict.json (and for a
matrix beside summary.json); never submitted anywhere.

Pure: works on verdict.json dicts, so a saved run can be exported again.
  * ids are `mmlock:` + a hash of what decides the object: the source's
    content (checkout), the build key (build), the build and the storm's
    inputs (test), the report title (issue); the same inputs give the same
    ids, so a rerun replaces its earlier result instead of adding one.
  * our verdicts map to KCIDB statuses: pass PASS, fail FAIL (the build
    PASS); build-error: the build FAIL, the test SKIP; config-error (the
    storm cannot run on this kernel) SKIP; boot-failure and infra-error
    ERROR (the state of the kernel is unknown).
  * file links are relative to the directory of the kcidb.json, as `file:`
    URIs ("file:console.log"): KCIDB's schema wants a URI there and a bare
    relative path is not one; whoever publishes the directory can rebase them.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from harness.report.model import printable

ORIGIN = "mmlock"
VERSION = {"major": 5, "minor": 3}
BUILD_STATUS = {"build-error": "FAIL"}           # else PASS when the build ran, SKIP when it did not
TEST_STATUS = {"pass": "PASS", "fail": "FAIL", "build-error": "SKIP", "config-error": "SKIP",
               "boot-failure": "ERROR", "infra-error": "ERROR"}
# files a run directory may hold, as test output_files (console.log is the log_url)
OUTPUT_FILES = ("console.symbolized.log", "verdict.json", "junit.xml", "repro.sh", "qemu-cmdline.txt")
KINDS = ("checkouts", "builds", "tests", "issues", "incidents")


def object_id(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = str(part).encode()
        digest.update(len(data).to_bytes(8, "little") + data)
    return f"{ORIGIN}:{digest.hexdigest()[:32]}"


def _text(value: Any, limit: int = 4096) -> str:
    """Guest-derived or free text as KCIDB takes it: printable, no NUL, bounded."""
    return printable(str(value)).replace("\0", "")[:limit]


def _misc(**values: Any) -> dict:
    """KCIDB has no nulls, not even in misc: what is unknown is left out."""
    return {key: value for key, value in values.items() if value is not None}


def _url(prefix: str, name: str) -> str:
    return f"file:{prefix}{name}"


def _path_part(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name) or "unnamed"


def from_run(data: dict, files: Iterable[str] = (), prefix: str = "") -> dict[str, list[dict]]:
    """One run's verdict.json -> KCIDB objects. `files`: the names present in its directory;
    `prefix`: that directory relative to where the kcidb.json goes ("" beside it, "cells/x/" ...)."""
    files = set(files)
    kernel = data.get("kernel") or {}
    storm = data.get("storm") or {}
    verdict = data.get("verdict") or "infra-error"
    arch = str(data.get("arch") or "unknown")
    durations = data.get("durations") or {}

    source = kernel.get("source")
    if kernel.get("source_identity"):           # the content: a tree's HEAD and local changes, a tarball
        what: tuple = ("content", kernel["source_identity"])
    elif source:                                # a verdict.json from before source_identity
        what = ("origin", source, kernel.get("version"))
    else:                                       # the run ended before the source was resolved
        what = ("unresolved", arch, kernel.get("version"), storm.get("name"))
    checkout: dict[str, Any] = {
        "id": object_id("checkout", *what), "origin": ORIGIN, "valid": bool(source),
        "comment": _text(f"Linux {kernel.get('version') or '?'} from {source or 'a source never resolved'}"),
        "misc": {"source": _text(source or ""), "version": _text(kernel.get("version") or "")},
    }
    if re.fullmatch(r"[0-9a-f]{40}", kernel.get("commit") or ""):
        checkout["git_commit_hash"] = kernel["commit"]

    built = bool(kernel.get("build_key"))
    config_name = str(kernel.get("profile") or "")
    if kernel.get("preempt") not in (None, "", "full"):
        config_name += f"-preempt-{kernel['preempt']}"
    build: dict[str, Any] = {
        "id": object_id("build", kernel.get("build_key") or (checkout["id"], arch, config_name)),
        "origin": ORIGIN, "checkout_id": checkout["id"],
        "architecture": re.sub(r"[^a-z0-9_]", "_", arch.lower()),
        "config_name": _text(config_name),
        "status": BUILD_STATUS.get(verdict, "PASS" if built else "SKIP"),
        "duration": float(durations.get("build_s") or 0.0),
        "misc": {key: kernel[key] for key in ("build_key", "config_sha256", "image_sha256", "cached", "preempt")
                 if kernel.get(key) is not None},
    }
    if kernel.get("compiler"):
        build["compiler"] = _text(kernel["compiler"])
    if "build.log" in files:
        build["log_url"] = _url(prefix, "build.log")
    if "kernel.config" in files:
        build["config_url"] = _url(prefix, "kernel.config")

    inputs = (storm.get("name"), storm.get("duration_s"), storm.get("seed"), data.get("inject"),
              sorted(storm.get("left_out") or {}))
    test: dict[str, Any] = {
        "id": object_id("test", build["id"], *inputs),
        "origin": ORIGIN, "build_id": build["id"],
        "path": f"mmlock.{_path_part(str(storm.get('name') or 'run'))}",
        "status": TEST_STATUS.get(verdict, "ERROR"),
        "comment": _text(f"{verdict}: {data.get('reason') or ''}".rstrip(": ")),
        "duration": round(max(0.0, float(durations.get("total_s") or 0.0) - float(durations.get("build_s") or 0.0)),
                          2),
        "environment": {"comment": _text(f"QEMU {arch}, accel {data.get('accel') or 'none'}"),
                        "misc": _misc(accel=data.get("accel"), qemu=(data.get("qemu") or {}).get("version"))},
        "misc": _misc(run_id=data.get("run_id"), verdict=verdict, exit_code=data.get("exit_code"),
                      storm=storm.get("name"), seed=storm.get("seed"), duration_s=storm.get("duration_s"),
                      inject=data.get("inject"), complete=bool(data.get("complete"))),
    }
    if "console.log" in files:
        test["log_url"] = _url(prefix, "console.log")
    outputs = [{"name": name, "url": _url(prefix, name)} for name in OUTPUT_FILES if name in files]
    if outputs:
        test["output_files"] = outputs

    issues, incidents = [], []
    for report in data.get("reports") or []:
        title = _text(report.get("title") or "untitled report", 1024)
        issue = {"id": object_id("issue", title), "version": 1, "origin": ORIGIN, "comment": title,
                 "culprit": {"code": True},
                 "misc": {"type": _text(report.get("type") or ""), "kind": _text(report.get("kind") or "")}}
        issues.append(issue)
        incidents.append({
            "id": object_id("incident", test["id"], issue["id"]), "origin": ORIGIN,
            "issue_id": issue["id"], "issue_version": 1, "build_id": build["id"], "test_id": test["id"],
            "present": True, "comment": title,
            "misc": {"primary": bool(report.get("primary")),
                     "console_lines": f"{report.get('start_line', 0)}-{report.get('end_line', 0)}"}})
    return {"checkouts": [checkout], "builds": [build], "tests": [test], "issues": issues, "incidents": incidents}


def document(parts: Iterable[dict[str, list[dict]]]) -> dict:
    """Objects of several runs as one KCIDB document; an id seen twice is kept once (the first)."""
    parts = list(parts)
    out: dict[str, Any] = {"version": dict(VERSION)}
    for kind in KINDS:
        seen: dict[str, dict] = {}
        for part in parts:
            for obj in part.get(kind, []):
                seen.setdefault(obj["id"], obj)
        out[kind] = list(seen.values())
    return out
