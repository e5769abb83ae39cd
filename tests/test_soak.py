"""The soak loop: N runs, seeds counted up, one summary; Ctrl-C ends it."""
import json
from types import SimpleNamespace

from harness import soak
from harness.errors import EXIT_INFRA
from harness.run import RunRequest


def _fake_execute(verdicts, seen):
    def execute(request):
        index = len(seen)
        seen.append(request.seed)
        verdict, interrupted = verdicts[index]
        data = {"run_id": f"r{index}", "verdict": verdict, "reports": [], "durations": {"total_s": 1.0}}
        if interrupted:
            data["interrupted"] = True
        return SimpleNamespace(data=data)
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
