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
