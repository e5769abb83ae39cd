import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of configs/ that a test may break."""
    import shutil

    dest = tmp_path / "configs"
    shutil.copytree(REPO / "configs", dest)
    return dest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Text a test hands over with record_property("summary", text) (the
    conformance test's agreement per kind), printed after the run: also when
    the tests ran in xdist workers, whose own output pytest does not show."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", ()):
            if name == "summary":
                terminalreporter.write_sep("-", report.nodeid)
                terminalreporter.write_line(str(value))
