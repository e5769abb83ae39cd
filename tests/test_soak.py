"""The soak loop: N runs, seeds counted up, one summary; Ctrl-C ends it."""
import json
from types import SimpleNamespace

from harness import soak
from harness.errors import EXIT_INFRA
from harness.record import RunRecord
from harness.run import RunRequest


def _fake_execute(verdicts, seen):
    def execute(request):
        index = len(seen)
        seen.append(request.seed)
        verdict, interrupted = verdicts[index]
        data = {"run_id": f"r{index}", "verdict": verdict, "reports": [], "durations": {"total_s": 1.0}}
        if interrupted:
            data["interrupted"] = True
        return SimpleNamespace(record=RunRecord.from_json(data))
    return execute


def test_soak_counts_passes_and_seeds(monkeypatch, tmp_path):
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path))
    seen: list[int] = []
    monkeypatch.setattr(soak, "execute", _fake_execute([("pass", False), ("fail", False), ("pass", False)], seen))
    assert soak.run_soak(3, RunRequest(seed=5)) == 1
    assert seen == [5, 6, 7]
    summary = json.loads((tmp_path / "soak" / "summary.json").read_text())
    assert summary["passed"] == 2 and summary["done"] == 3


def test_ctrl_c_ends_the_soak_not_only_its_run(monkeypatch, tmp_path):
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path))
    seen: list[int] = []
    monkeypatch.setattr(soak, "execute", _fake_execute([("pass", False), ("infra-error", True)] + [("pass", False)] * 8,
                                                       seen))
    assert soak.run_soak(10, RunRequest(seed=1)) == EXIT_INFRA
    assert seen == [1, 2]
    assert json.loads((tmp_path / "soak" / "summary.json").read_text())["done"] == 2


def _titled_execute(per_run_titles, seen):
    def execute(request):
        index = len(seen)
        seen.append(request)
        titles = per_run_titles[index]
        data = {"run_id": f"r{index}", "verdict": "fail" if titles else "pass",
                "reports": [{"title": t} for t in titles], "durations": {"total_s": 1.0}}
        return SimpleNamespace(record=RunRecord.from_json(data))
    return execute


def test_soak_gives_fail_runs_per_signature_and_honours_the_injection(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MMLOCK_RESULTS", str(tmp_path))
    seen: list[RunRequest] = []
    runs = [["possible deadlock in f", "possible deadlock in f"], [], ["possible deadlock in f", "WARNING in g"],
            ["possible deadlock in f"]]
    monkeypatch.setattr(soak, "execute", _titled_execute(runs, seen))
    assert soak.run_soak(4, RunRequest(seed=1, inject="abba", stop_on_report=True)) == 1
    # every run option reaches every run: the injection is not dropped
    assert [r.inject for r in seen] == ["abba"] * 4 and all(r.stop_on_report for r in seen)
    summary = json.loads((tmp_path / "soak" / "summary.json").read_text())
    # a title counts once per run that showed it, of the runs done
    assert summary["fail_runs"] == {"possible deadlock in f": {"fail": 3, "runs": 4},
                                    "WARNING in g": {"fail": 1, "runs": 4}}
    assert summary["inject"] == "abba"
    out = capsys.readouterr().out
    assert "     3:4     possible deadlock in f" in out and "     1:4     WARNING in g" in out
    assert "soak: 1/4 storms with INJECT=abba passed" in out
