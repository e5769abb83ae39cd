"""YAML loading that remembers where every key came from.

Errors about a config name the file, the line and the key, so a user can
fix a typo without reading Python.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError


class LineDict(dict):
    """A mapping that knows the 1-based source line of each of its keys."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[str, int] = {}
        self.line = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path: Path) -> Any:
    """Parse a YAML file; syntax errors become ConfigErrors with file:line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


class Fields:
    """Typed access to one mapping of a config file, with precise errors.

    Every key read is ticked off; `finish()` rejects the keys nobody read,
    so a misspelt option is an error instead of a silent default.
    """

    def __init__(self, data: Any, path: Path, prefix: str = "") -> None:
        if not isinstance(data, dict):
            line = getattr(data, "line", 0)
            raise ConfigError(f"{path}:{line}: {prefix or 'top level'}: expected a mapping")
        self.data = data
        self.path = path
        self.prefix = prefix
        self.seen: set[str] = set()

    def where(self, key: str) -> str:
        lines = getattr(self.data, "lines", {})
        line = lines.get(key, getattr(self.data, "line", 0))
        return f"{self.path}:{line}: key '{self.prefix}{key}'"

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if default is ...:
                line = getattr(self.data, "line", 0)
                raise ConfigError(f"{self.path}:{line}: missing key '{self.prefix}{key}'")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if value is None and type(None) in kinds:
            return value
        # bool is an int in Python; a YAML `yes` must not pass for a number.
        if isinstance(value, bool) and bool not in kinds:
            value_ok = False
        else:
            value_ok = isinstance(value, kinds)
        if not value_ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigError(f"{self.where(key)}: expected {names}, got {type(value).__name__} {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        """A string that must be one of @choices."""
        value = self.get(key, str, default)
        if value not in choices:
            raise ConfigError(f"{self.where(key)}: {key} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def sub(self, key: str, default: Any = ...) -> Fields:
        value = self.get(key, dict, default)
        return Fields(value if value is not None else LineDict(), self.path, f"{self.prefix}{key}.")

    def str_list(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default)
        for item in value:
            if not isinstance(item, (str, int)) or isinstance(item, bool):
                raise ConfigError(f"{self.where(key)}: expected a list of strings, got {item!r}")
        return tuple(str(item) for item in value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            key = unknown[0]
            known = ", ".join(sorted(self.seen))
            raise ConfigError(f"{self.where(key)}: unknown key (known keys here: {known})")
