"""Read a YAML file into plain data, keeping the line and column of every key and value
so a problem is reported where the user wrote it, and expanding ``${VAR}``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from crawler.core.errors import ConfigProblem

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

KeyPath = tuple[str | int, ...]


@dataclass
class LoadedFile:
    """One YAML file as plain data, with the line and column of every key and value."""

    file: str
    data: Any
    values: dict[KeyPath, tuple[int, int]]
    keys: dict[KeyPath, tuple[int, int]]

    def where(self, path: KeyPath, *, key: bool = False) -> tuple[int, int]:
        """Position of the deepest known prefix of ``path`` (pydantic adds union tags)."""
        known: KeyPath = ()
        for part in path:
            if (*known, part) in self.values:
                known = (*known, part)
        if key and known in self.keys:
            return self.keys[known]
        return self.values.get(known, (1, 1))

    def problem(self, path: KeyPath, message: str, *, key: bool = False) -> ConfigProblem:
        line, col = self.where(path, key=key)
        return ConfigProblem(self.file, line, col, message)


def read_yaml(path: Path, shown: str, problems: list[ConfigProblem]) -> LoadedFile | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(ConfigProblem(shown, 1, 1, "file not found: create it (see "
                                      "docs/configuration.md)"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(shown, 1, 1, f"cannot read file: {exc}"))
        return None
    try:
        raw = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or "invalid YAML").replace('"', "'")
        if "duplicate key" in problem and exc.context_mark is not None:
            problem = problem.split(" with value")[0]
            problem += f" (the mapping starts at line {exc.context_mark.line + 1}); " \
                       "remove or rename one of them"
        problems.append(ConfigProblem(shown, line, col, f"YAML: {problem}"))
        return None
    loaded = LoadedFile(shown, None, {(): (1, 1)}, {})
    loaded.data = _plain(raw, (), loaded, problems)
    if loaded.data is None:
        loaded.data = {}
    if not isinstance(loaded.data, dict):
        problems.append(ConfigProblem(shown, 1, 1, "the file must be a mapping of keys"))
        return None
    return loaded


def _plain(node: Any, path: KeyPath, loaded: LoadedFile, problems: list[ConfigProblem]) -> Any:
    """Turn ruamel nodes into plain data, recording positions and expanding ``${VAR}``."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            kl, kc = node.lc.key(key)
            vl, vc = node.lc.value(key)
            loaded.keys[child] = (kl + 1, kc + 1)
            loaded.values[child] = (vl + 1, vc + 1)
            out[str(key)] = _plain(node[key], child, loaded, problems)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            line, col = node.lc.item(index)
            loaded.values[(*path, index)] = (line + 1, col + 1)
            items.append(_plain(item, (*path, index), loaded, problems))
        return items
    if isinstance(node, str):
        return _expand_env(str(node), path, loaded, problems)
    return node


def _expand_env(text: str, path: KeyPath, loaded: LoadedFile, problems: list[ConfigProblem]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        problems.append(loaded.problem(
            path, f"environment variable {name} is not set: set it, or write "
                  f"${{{name}:-default}} to give a default"))
        return ""

    return _ENV.sub(substitute, text)
