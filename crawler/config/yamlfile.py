"""Read a YAML file into plain data, keeping the line and column of every key and value
so a problem is reported where the user wrote it, and expanding ``${VAR}`` where the file's
reader allows it.

A file's text may come from strangers (``sources add`` and ``sources import`` write feed
URLs and titles into sources.yaml), so ``${VAR}`` is read from the environment only where
an operator keeps secrets and endpoints; anywhere else it is an error, ``$$`` being the
literal ``$``. A broken file (control characters, unknown tags, absurd nesting) is a
located problem like any other, never an exception.

A clean file is read fast: libyaml (``ruamel.yaml.clib``) composes its node tree and the
nodes are walked, which is ten times quicker than ruamel's round-trip loader on a
10,000-item watchlist. Anything less plain (a broken value, a YAML error, a tag, a merge
key, a duplicate, a directive, deep nesting) is read again by the round-trip loader, whose
problems and positions are the ones users know; ``tests/test_yaml_reader.py`` checks that
both readers agree."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedOrderedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tokens import (
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
)

from crawler.core.errors import ConfigProblem

try:  # libyaml's scanner, parser and composer, in C (ruamel.yaml.clib)
    from _ruamel_yaml import CParser  # type: ignore[import-not-found]
except ImportError:  # ruamel composes in Python then: the same nodes, slower
    CParser = None

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DOLLAR = re.compile(r"\$\$|\$\{[A-Za-z_]*")
# What YAML's reader refuses (C0 but tab and line ends, DEL, C1, surrogates,
# non-characters), also when written as an escape: no config value needs one.
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
MAX_DEPTH = 64
MAX_VALUES = 100_000  # aliases of aliases ("billion laughs") multiply values
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
# what a plain scalar may be but a string ('<<' and '=' are not values)
_TYPED = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "timestamp")}
# a directive (%YAML 1.1 changes what a plain scalar means) at the start of any line
_DIRECTIVE = re.compile(r"(?:^|[\r\n\u2028\u2029])%")
# what may stand before a block collection on its line: indentation and the compact
# indicators of a list item, an explicit key or an explicit value
_LEADING = re.compile(r"(?:^|[\r\n\u2028\u2029])[ \t?:-]*")

KeyPath = tuple[str | int, ...]
ExpandsEnv = Callable[[KeyPath], bool]
"""Whether the value at a key path may read ``${VAR}`` from the environment."""


@dataclass
class LoadedFile:
    """One YAML file as plain data, with the line and column of every key and value."""

    file: str
    data: Any
    values: dict[KeyPath, tuple[int, int]]
    keys: dict[KeyPath, tuple[int, int]]
    # each ``${`` left unexpanded, for the loader to report unless its key is unknown
    unexpanded: list[tuple[KeyPath, ConfigProblem]] = field(default_factory=list)
    count: int = 0  # values read so far

    def written(self, loc: KeyPath) -> KeyPath:
        """``loc`` without what the file does not have (pydantic adds union tags)."""
        known: KeyPath = ()
        for part in loc:
            if (*known, part) in self.values:
                known = (*known, part)
        return known

    def where(self, path: KeyPath, *, key: bool = False) -> tuple[int, int]:
        """Position of the deepest known prefix of ``path``."""
        known = self.written(path)
        if key and known in self.keys:
            return self.keys[known]
        return self.values.get(known, (1, 1))

    def problem(self, path: KeyPath, message: str, *, key: bool = False) -> ConfigProblem:
        line, col = self.where(path, key=key)
        return ConfigProblem(self.file, line, col, message)


def read_yaml(path: Path, shown: str, problems: list[ConfigProblem],
              expands_env: ExpandsEnv = lambda _: False,
              text: str | None = None) -> LoadedFile | None:
    """The file at ``path``, or ``text`` read as if it were that file (an edit being
    validated before it is written)."""
    try:
        if text is None:
            text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(ConfigProblem(shown, 1, 1, "file not found: create it (see "
                                      "docs/configuration.md)"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(shown, 1, 1, f"cannot read file: {exc}"))
        return None
    if found := [_at(text, shown, m.start(), f"control character U+{ord(m.group()):04X}: "
                     "remove it") for m in CONTROL.finditer(text)]:
        problems += found
        return None
    if (fast := read_fast(text, shown, expands_env)) is not None:
        loaded, found = fast
        problems += found
        return loaded
    return read_round_trip(text, shown, problems, expands_env)


def read_round_trip(text: str, shown: str, problems: list[ConfigProblem],
                     expands_env: ExpandsEnv) -> LoadedFile | None:
    """The careful reader: every problem a file can have, located, in ruamel's words."""
    if (deep := _too_deep(text, shown)) is not None:
        problems.append(deep)
        return None
    try:
        raw = YAML(typ="rt").load(text)
    except RecursionError:  # nesting the scanner missed
        problems.append(ConfigProblem(shown, 1, 1, f"nested deeper than {MAX_DEPTH} levels: "
                                      "a config needs a few"))
        return None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (exc.problem or "invalid YAML").replace('"', "'")
        if "duplicate key" in problem and exc.context_mark is not None:
            problem = problem.split(" with value")[0]
            problem += f" (the mapping starts at line {exc.context_mark.line + 1}); " \
                       "remove or rename one of them"
        else:
            problem = plain_words(problem, exc.context or "")
        problems.append(ConfigProblem(shown, line, col, f"YAML: {problem}"))
        return None
    except YAMLError as exc:  # not marked: no position is known
        problems.append(ConfigProblem(shown, 1, 1, f"YAML: {exc}".replace("\n", " ")))
        return None
    except (ValueError, LookupError, TypeError) as exc:  # ruamel builds what it is told
        problems.append(ConfigProblem(shown, 1, 1, f"YAML: a value cannot be built ({exc}): "
                                      "a config needs no tags ('!!float') nor lists as keys"))
        return None
    loaded = LoadedFile(shown, None, {(): (1, 1)}, {})
    try:
        loaded.data = _plain(raw, (), loaded, problems, expands_env)
    except _Broken as exc:
        problems.append(exc.problem)
        return None
    if loaded.data is None:
        loaded.data = {}
    if not isinstance(loaded.data, dict):
        problems.append(ConfigProblem(shown, 1, 1, "the file must be a mapping of keys"))
        return None
    return loaded


_NESTS = {BlockMappingStartToken: 1, BlockSequenceStartToken: 1, FlowMappingStartToken: 1,
          FlowSequenceStartToken: 1, BlockEndToken: -1, FlowMappingEndToken: -1,
          FlowSequenceEndToken: -1}


class _Unusual(Exception):
    """What the fast reader leaves to the round-trip one."""


def read_fast(text: str, shown: str,
               expands_env: ExpandsEnv) -> tuple[LoadedFile, list[ConfigProblem]] | None:
    """A clean file read from libyaml's nodes, with the problems of its ``${``; None when
    the file needs the round-trip reader."""
    text = text.removeprefix("\ufeff")  # libyaml skips it uncounted: marks index the rest
    if not read_fast_would(text):
        return None
    yaml = YAML(typ="safe", pure=CParser is None)
    yaml.Resolver = _Resolver
    loaded = LoadedFile(shown, None, {(): (1, 1)}, {})
    found: list[ConfigProblem] = []
    try:
        with _collector_paused():
            data = _Walk(text, loaded, found, expands_env).value(yaml.compose(text), ())
    except (YAMLError, RecursionError, _Unusual):
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None
    loaded.data = data
    return loaded, found


def read_fast_would(text: str) -> bool:
    """Whether libyaml may compose ``text`` as the round-trip reader would: not with a
    version directive, tabs (which libyaml accepts in more places), line or mark counts
    of its own (a BOM, U+2028/9), or nesting that would crash its composer."""
    return not (_DIRECTIVE.search(text) or any(c in text for c in "\t\u2028\u2029\ufeff")
                or nests_deep(text))


def compose(text: str) -> Node:
    """The text's node tree, each node with the span of its text (character offsets):
    by libyaml where the fast reader would read the text, by ruamel's composer (ten
    times slower) otherwise. For editing in place (``crawler.config.edit``)."""
    if CParser is not None and read_fast_would(text):
        node: Node = YAML(typ="safe", pure=False).compose(text)
    else:
        node = YAML(typ="rt").compose(text)
    return node


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a file's nodes are built and walked: its passes
    over the growing trees took as long as the reading itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def nests_deep(text: str) -> bool:
    """Whether the nesting passes MAX_DEPTH. libyaml's composer recurses in C, one frame
    per level, and crashes the process on 100,000 nested brackets: it never sees such a
    text. (A text its scanner refuses is safe: the composer stops where the scanner does.)"""
    return CParser is not None and _may_nest_deep(text) and _deepest(text) is not None


def _may_nest_deep(text: str) -> bool:
    """A bound that errs high: every bracket, however quoted, may open a level; a block
    collection starts right after its line's indentation and compact indicators, deeper
    than its parent, and each indentation may hold a mapping and its indentless list."""
    brackets = text.count("[") + text.count("{")
    indent = max(map(len, _LEADING.findall(text)), default=0)
    return brackets + 2 * (indent + 1) > MAX_DEPTH


def _deepest(text: str) -> Any:
    """The token that opens level MAX_DEPTH + 1, by libyaml's scanner (ruamel's without
    it), which does not recurse; None if there is none or the scanner stops before."""
    depth = 0
    scanner = CParser(text) if CParser is not None else None
    try:
        tokens = iter(scanner.get_token, None) if scanner else YAML(typ="rt").scan(text)
        for token in tokens:
            depth += _NESTS.get(type(token), 0)
            if depth > MAX_DEPTH:
                return token
    except YAMLError:
        pass  # the parser reports it, located
    finally:
        if scanner:
            scanner.dispose()
    return None


class _Resolver(VersionedResolver):
    """Scalars typed as YAML 1.2, as the round-trip loader reads a file without a
    ``%YAML`` directive; its own resolver looks the version up anew for every scalar,
    which took more time than libyaml's whole parse."""

    processing_version = (1, 2)


class _Walk:
    """Plain data from composed nodes, as ``_plain`` makes it from round-trip objects: the
    same values (typed scalars are built by ruamel's round-trip constructor), positions,
    count and ``${`` handling. It raises ``_Unusual`` on anything ``_plain`` would report
    or that only the round-trip objects show (tags, merge keys, duplicates)."""

    def __init__(self, text: str, loaded: LoadedFile, found: list[ConfigProblem],
                 expands_env: ExpandsEnv) -> None:
        self.text = text
        self.loaded = loaded
        self.found = found
        self.expands_env = expands_env
        self.resolver = _Resolver()
        self.constructor = YAML(typ="rt").constructor

    def value(self, node: Node | None, path: KeyPath) -> Any:
        loaded = self.loaded
        loaded.count += 1
        if len(path) > MAX_DEPTH or loaded.count > MAX_VALUES:
            raise _Unusual
        if node is None:  # an empty document
            return None
        tag = node.tag
        if isinstance(node, ScalarNode):
            if tag != _STR_TAG:
                return self.typed(node)
            text = node.value
            if CONTROL.search(text):
                raise _Unusual
            if self.expands_env(path):
                return _expand_env(text, path, loaded, self.found)
            return _unescape(text, path, loaded)
        if isinstance(node, MappingNode) and tag == _MAP_TAG:
            out: dict[str, Any] = {}
            seen = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise _Unusual  # a complex key
                key = key_node.value if key_node.tag == _STR_TAG else self.typed(key_node)
                if key in seen:
                    raise _Unusual  # a duplicate: reported in ruamel's words
                seen.add(key)
                child = (*path, str(key))
                mark = key_node.start_mark
                loaded.keys[child] = (mark.line + 1, mark.column + 1)
                mark = value_node.start_mark
                loaded.values[child] = (mark.line + 1, mark.column + 1)
                out[str(key)] = self.value(value_node, child)
            return out
        if isinstance(node, SequenceNode) and tag == _SEQ_TAG:
            items = []
            for index, item in enumerate(node.value):
                mark = item.start_mark
                loaded.values[(*path, index)] = (mark.line + 1, mark.column + 1)
                items.append(self.value(item, (*path, index)))
            return items
        raise _Unusual  # a tagged collection

    def typed(self, node: ScalarNode) -> Any:
        """A plain scalar that is not a string (a number, a boolean, null, a date), as
        the round-trip loader types it; an explicit tag is left to that loader."""
        tag = node.tag
        if node.style or not node.value or self.text[node.start_mark.index] in "&!" or \
                tag not in _TYPED or tag != str(self.resolver.resolve(ScalarNode, node.value,
                                                                      (True, False))):
            # quoted or tagged; an empty value, which the parsers place differently; an
            # anchored one, typed apart by the round-trip loader (libyaml keeps no anchor)
            raise _Unusual
        try:
            value = self.constructor.construct_object(node)
        except YAMLError as exc:
            raise _Unusual from exc
        if isinstance(value, bytes | set | TaggedScalar):
            raise _Unusual
        return value


def _at(text: str, shown: str, offset: int, message: str) -> ConfigProblem:
    line = text.count("\n", 0, offset) + 1
    return ConfigProblem(shown, line, offset - (text.rfind("\n", 0, offset) + 1) + 1, message)


def _too_deep(text: str, shown: str) -> ConfigProblem | None:
    """Where the nesting passes MAX_DEPTH, found before parsing: the parser recurses (and
    its scanner slows down with each open bracket), the scanner used here does not."""
    if not _may_nest_deep(text) or (token := _deepest(text)) is None:
        return None
    mark = token.start_mark
    return ConfigProblem(shown, mark.line + 1, mark.column + 1,
                         f"nested deeper than {MAX_DEPTH} levels: a config needs a few")


def _plain(node: Any, path: KeyPath, loaded: LoadedFile, problems: list[ConfigProblem],
           expands_env: ExpandsEnv) -> Any:
    """Turn ruamel nodes into plain data, recording positions and expanding ``${VAR}``
    where ``expands_env`` allows. A value no config can hold (a tag but ``!!str``, a
    control character, absurd nesting) is a problem of the file: it is raised as
    ``_Broken`` so the file is reported, not validated."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, CommentedOrderedMap):  # the round-trip loader keeps no tag on it
        tag = "tag:yaml.org,2002:omap"
    if (tag is not None and tag != _STR_TAG) or isinstance(node, bytes | set):
        raise _Broken(loaded.problem(path, _field(path) + f"YAML tag '{tag or '?'}' is not "
                                     "supported: remove it"))
    if len(path) > MAX_DEPTH:
        raise _Broken(loaded.problem(path, f"nested deeper than {MAX_DEPTH} levels: a config "
                                     "needs a few"))
    loaded.count += 1
    if loaded.count > MAX_VALUES:
        raise _Broken(loaded.problem(path, f"more than {MAX_VALUES} values (aliases of "
                                     "aliases?): a config needs far fewer"))
    if isinstance(node, TaggedScalar):
        node = str(node.value)
    if isinstance(node, CommentedMap):
        if node.merge:  # its merged keys have no position
            raise _Broken(loaded.problem(path, _field(path) + "YAML merge keys ('<<') are "
                                         "not supported: write the keys out"))
        out: dict[str, Any] = {}
        for key in node:
            child = (*path, str(key))
            kl, kc = node.lc.key(key)
            vl, vc = node.lc.value(key)
            loaded.keys[child] = (kl + 1, kc + 1)
            loaded.values[child] = (vl + 1, vc + 1)
            out[str(key)] = _plain(node[key], child, loaded, problems, expands_env)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            line, col = node.lc.item(index)
            loaded.values[(*path, index)] = (line + 1, col + 1)
            items.append(_plain(item, (*path, index), loaded, problems, expands_env))
        return items
    if isinstance(node, str):
        if found := CONTROL.search(node):
            raise _Broken(loaded.problem(path, _field(path) + "control character "
                                         f"U+{ord(found.group()):04X}: remove it"))
        if expands_env(path):
            return _expand_env(str(node), path, loaded, problems)
        return _unescape(str(node), path, loaded)
    return node


_PLAIN = (  # (what the parser says, what its context says, what it means)
    ("found character '\\t' that cannot start any token", "",
     "tabs cannot indent YAML; use spaces"),
    ("mapping values are not allowed here", "",
     "a ':' where none can stand: quote a value that holds ': ', or check the indentation"),
    ("could not find expected ':'", "",
     "a line that is neither 'key: value' nor '- item': check its indentation and colon"),
    ("found unexpected end of stream", "quoted scalar", "a quote is opened but never closed"),
    ("expected ',' or ']'", "", "a list in [ ] is not closed, or lacks a comma"),
    ("expected ',' or '}'", "", "a mapping in { } is not closed, or lacks a comma"),
    ("found undefined alias", "",
     "'*name' refers to no '&name' above it; quote a value that starts with '*'"),
    ("that cannot start any token", "",
     "a value cannot start with this character unquoted; put the value in quotes"),
    ("expected <block end>, but found '-'", "",
     "a list item '- ' at the wrong indentation: align it with the items above"),
)


def plain_words(problem: str, context: str) -> str:
    """What a ruamel parser error means to someone editing a config, with the parser's own
    words after it for a search; unknown errors keep the parser's words alone."""
    for says, within, means in _PLAIN:
        if says in problem and within in context:
            return f"{means} (parser: {problem})"
    return problem


class _Broken(Exception):
    """A value that makes its whole file unusable: reported alone, nothing validated."""

    def __init__(self, problem: ConfigProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _field(path: KeyPath) -> str:
    """``key: `` for the nearest key of a path, as a problem's message starts."""
    name = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
    return f"{name}: " if name else ""


def _unescape(text: str, path: KeyPath, loaded: LoadedFile) -> str:
    """``$$`` is ``$``; a ``${`` here is not expanded, and says so (it may have been
    planted by a remote feed or OPML file before they were escaped)."""
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        loaded.unexpanded.append((path, loaded.problem(
            path, _field(path) + f"'{match.group(0)}' is not expanded here: only a channel's "
                  "url, secret, urls, to, from and smtp.*, and database, read the environment; "
                  "write $${ for a literal ${")))
        return match.group(0)

    return _DOLLAR.sub(substitute, text) if "$" in text else text


def one_line(text: str) -> str:
    """Text from elsewhere (an OPML title) as one line a config can hold: no control
    characters, each run of spaces and line breaks one space."""
    return " ".join(CONTROL.sub("", text).split())


def escape_env(text: str) -> str:
    """``text`` as a config value that reads back as itself wherever it is written."""
    return text.replace("$", "$$")


def expand_env(text: str, missing: Callable[[str], None]) -> str:
    """``text`` with each ``${VAR}`` (or ``${VAR:-default}``) read from the environment
    and ``$$`` as ``$``; ``missing(NAME)`` for each variable unset with no default."""
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        missing(name)
        return ""

    return _ENV.sub(substitute, text)


def _expand_env(text: str, path: KeyPath, loaded: LoadedFile, problems: list[ConfigProblem]) -> str:
    return expand_env(text, lambda name: problems.append(loaded.problem(
        path, f"environment variable {name} is not set: set it, or write "
              f"${{{name}:-default}} to give a default")))
