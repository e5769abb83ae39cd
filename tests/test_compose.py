"""Compositions hand a typed RunRequest to the run, never rebuilt argv or a changed
os.environ: a matrix cell is the template request as JSON to `harness run-request`."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import matrix
from harness.errors import ConfigError
from harness.run import RunRequest
from tests.hostile_tree import make_tree

REPO = Path(__file__).resolve().parent.parent


def test_a_request_survives_json():
    request = RunRequest(arch="aarch64", kernel_src="/src/linux", duration=30, leave_out=("zram", "module"),
                         faults=("slab",), guest_binaries=("/usr/bin/stress-ng",), results_dir="/r", stagger_s=2)
    again = RunRequest.from_json(json.loads(json.dumps(request.to_json())))
    assert again == request and isinstance(again.leave_out, tuple)


def test_a_request_with_an_unknown_field_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown colour; valid: .*accel"):
        RunRequest.from_json({"arch": "x86_64", "colour": "red"})


def test_a_matrix_cell_runs_the_whole_template_request_where_it_says(tmp_path, monkeypatch):
    """kernel_src and inactivity_s never were matrix argv: the cell still runs them, its run
    directory under the cell's, with MMLOCK_RESULTS pointing elsewhere."""
    tree, started, env = make_tree(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("MMLOCK_CACHE", env["MMLOCK_CACHE"])
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path / "elsewhere"))
    template = RunRequest(kernel_src=str(tree), accel="tcg", inactivity_s=7)
    row = matrix._cell("x86_64", "6.1", tmp_path / "matrix", template, matrix.Children())
    assert row["verdict"] == "build-error" and row["exit_code"] == 4, row
    run_dir = Path(row["run_dir"])
    assert run_dir.parent == tmp_path / "matrix" / "cells" / "x86_64-6.1"
    assert json.loads((run_dir / "verdict.json").read_text())["kernel"]["source"] == str(tree)
    assert started.exists() and not (tmp_path / "elsewhere").exists()


def test_run_request_exits_with_the_runs_code(tmp_path):
    request = RunRequest(arch="no-such-arch", results_dir=str(tmp_path))
    env = dict(os.environ, MMLOCK_RESULTS=str(tmp_path / "unused"))
    proc = subprocess.run([sys.executable, "-m", "harness", "run-request", json.dumps(request.to_json())],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no-such-arch" in proc.stderr, proc.stderr


def test_the_environment_is_read_once_at_the_edge_into_request_fields(monkeypatch):
    from harness import options
    from harness.cli import build_parser

    monkeypatch.setenv("MMLOCK_FAULT", "freeze:15")
    monkeypatch.setenv("MMLOCK_SSH", "0")
    monkeypatch.setenv("MMLOCK_SSH_FAULT", "kill-sshd:6")
    monkeypatch.setenv("MMLOCK_GUEST_BINARIES", "/bin/true::/bin/false")
    request = options.request(build_parser().parse_args(["soak", "--stagger", "3", "--inactivity-timeout", "9"]))
    assert (request.harness_fault, request.ssh, request.ssh_fault, request.guest_binaries) == (
        "freeze:15", False, "kill-sshd:6", ("/bin/true", "/bin/false"))
    assert (request.stagger_s, request.inactivity_s) == (3, 9)
    # a request handed on (a matrix cell's JSON) carries them; no stage reads them again
    assert RunRequest.from_json(json.loads(json.dumps(request.to_json()))) == request


def test_every_command_takes_its_run_options_from_one_declaration():
    from harness import options
    from harness.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command, names in (("run", options.RUN), ("boot", options.RUN), ("shell", options.RUN),
                           ("bisect", options.RUN), ("soak", options.RUN), ("zoo", options.RUN),
                           ("matrix", options.MATRIX), ("bench", options.BENCH), ("build", options.BUILD),
                           ("selftest", options.SELFTEST), ("module-check", options.MODULE_CHECK)):
        actions = {a.dest: a for a in sub[command]._actions}
        for name in names:
            declared = options.OPTIONS[name]
            assert actions[name].option_strings[0] == declared.flag, (command, name)
            assert actions[name].default == declared.kwargs.get("default"), (command, name)
        assert set(names) <= {f.name for f in dataclasses.fields(RunRequest)}


def test_a_request_with_a_cache_of_its_own_fills_that_one(tmp_path, monkeypatch):
    """bench's cold sample: the request names the cache; the environment's is left alone."""
    from harness import cache, run

    tree, _, env = make_tree(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("MMLOCK_CACHE", env["MMLOCK_CACHE"])
    own = tmp_path / "own-cache"
    outcome = run.execute(RunRequest(kernel_src=str(tree), accel="tcg", label="boot", cache_dir=str(own),
                                     results_dir=str(tmp_path / "results")))
    assert outcome.verdict.verdict == "build-error"
    assert own.is_dir() and any(own.iterdir())
    assert not Path(env["MMLOCK_CACHE"]).exists() or not any(Path(env["MMLOCK_CACHE"]).iterdir())
    assert cache.cache_root() == Path(env["MMLOCK_CACHE"])   # the run's cache ended with the run
