"""What every config loader shares: where configs/ is, finding a named file (an unknown
name lists the valid ones), kconfig fragment lines."""
from __future__ import annotations

import re
from pathlib import Path

from harness.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
_OPTION_RE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$|^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def _names(kind_dir: Path) -> list[str]:
    return sorted(p.stem for p in kind_dir.glob("*.yaml"))


def _find(kind: str, kind_dir: Path, name: str, plural: str = "") -> Path:
    path = kind_dir / f"{name}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not path.is_file():
        valid = ", ".join(_names(kind_dir)) or "(none)"
        raise ConfigError(f"unknown {kind} '{name}'; valid {plural or kind + 's'}: {valid}")
    return path



def parse_fragment(text: str) -> dict[str, str]:
    """kconfig lines -> {CONFIG_X: value}; '# CONFIG_X is not set' maps to 'n'."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = _OPTION_RE.match(line.strip())
        if match:
            if match.group(3):
                options[match.group(3)] = "n"
            else:
                options[match.group(1)] = match.group(2)
    return options
