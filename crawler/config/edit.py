"""Edit one watch item of watchlists.yaml in place: its name, its aliases and its context
rules when they are a plain list of terms. What the web desk's form and ``newswatch
watchlists edit`` change.

The file is the user's: its comments, order, quoting, line breaks and anchors stay as
written. ruamel's round-trip dump would rewrap every long flow list of aliases, so the
edit is made as splices into the text instead, at the spans ruamel's composer gives each
node; only the edited item's lines change. Every edit is checked by reading the new text
back: the whole file must read as before but for the edited item, which must read as
asked, or the edit is refused. A value shared through a YAML anchor (``&afghan``) is not
edited here, since the change would reach every item using it.

A save is a compare-and-swap: the form carries the ``version`` (a hash of the bytes) it
was loaded from, and the save is refused if the file changed since. The new text is
validated as ``newswatch check`` validates (``load_config`` over the directory with the
edited file substituted), then written atomically (a temporary file in the same
directory, renamed over) with the file's mode, so the daemon's reload sees either the
old file or the new. Where the directory or file cannot be written (the shipped systemd
unit mounts ``/etc`` read-only), the error carries the YAML for the user to copy.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crawler.config.checks import SettingsCheck
from crawler.config.load import Config, load_config
from crawler.config.models import WATCHLISTS_FILE, WatchItem
from crawler.config.yamlfile import (
    CONTROL,
    LoadedFile,
    compose,
    escape_env,
    read_fast,
    read_round_trip,
)
from crawler.core.errors import ConfigError, ConfigProblem, NewswatchError

#: The context rules an item's form may edit, when written as a plain list of terms.
RULE_KEYS = ("any_of", "none_of")


class EditError(NewswatchError):
    """An edit that cannot be made; the message names the watchlist and the item."""

    def __init__(self, watchlist: str, item: str, message: str) -> None:
        super().__init__(f"watchlist {watchlist!r}, watch item {item!r}: {message}")
        self.watchlist = watchlist
        self.item = item


class ChangedSince(EditError):
    """The file changed since the form was loaded: reload it and edit again."""


class InvalidEdit(EditError):
    """The edited config does not pass ``check``; ``problems`` say where, as
    FILE:LINE:COL."""

    def __init__(self, watchlist: str, item: str, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__(watchlist, item, "the edit is not saved: the config would not pass "
                         "`newswatch check`:\n" + "\n".join(str(p) for p in self.problems))


class ReadOnly(EditError):
    """The file cannot be written here; ``text`` is the whole edited file to copy."""

    def __init__(self, watchlist: str, item: str, path: Path, reason: str,
                 text: str) -> None:
        super().__init__(watchlist, item, f"{path} cannot be written here ({reason}): copy "
                         "the YAML below into it by hand, where it can be written")
        self.path = path
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class Loaded:
    """watchlists.yaml as read for an edit, and the version a save compares against."""

    path: Path
    text: str
    version: str


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(directory: Path) -> Loaded:
    """The watchlists file of a config directory, as its bytes say (no newline
    translation: a save keeps the file's line ends)."""
    path = Path(directory) / WATCHLISTS_FILE
    data = path.read_bytes()
    return Loaded(path, data.decode("utf-8"), version_of(data))


@dataclass(frozen=True)
class ItemValue:
    """What a form edits of one watch item. ``aliases`` are their texts (an alias written
    as a mapping, ``{text: NRF, case_sensitive: true}``, keeps its mapping while kept).
    A rule kind is a tuple of terms when the item writes it as a plain list, or leaves
    it out with no watchlist default; otherwise it is None and ``fixed`` says why."""

    watchlist: str
    name: str
    aliases: tuple[str, ...] = ()
    any_of: tuple[str, ...] | None = ()
    none_of: tuple[str, ...] | None = ()
    fixed: dict[str, str] = field(default_factory=dict)

    def changed(self, *, rename: str | None = None, add_aliases: Iterable[str] = (),
                remove_aliases: Iterable[str] = (), add_any_of: Iterable[str] = (),
                remove_any_of: Iterable[str] = (), add_none_of: Iterable[str] = (),
                remove_none_of: Iterable[str] = ()) -> ItemValue:
        """This value with terms added and removed (the CLI's flags); removing a term
        the item lacks, or adding one it has, is an error saying so."""
        def apply(kind: str, current: tuple[str, ...] | None, add: Iterable[str],
                  remove: Iterable[str]) -> tuple[str, ...] | None:
            add, remove = list(add), list(remove)
            if not add and not remove:
                return current
            if current is None:
                raise EditError(self.watchlist, self.name,
                                f"{kind} cannot be edited here: {self.fixed[kind]}")
            terms = list(current)
            for term in remove:
                if term not in terms:
                    raise EditError(self.watchlist, self.name, f"{kind} has no {term!r} "
                                    f"(it has: {', '.join(terms) or 'none'})")
                terms.remove(term)
            for term in add:
                if term in terms:
                    raise EditError(self.watchlist, self.name, f"{kind} has {term!r} "
                                    "already")
                terms.append(term)
            return tuple(terms)

        return dataclasses.replace(
            self, name=self.name if rename is None else rename,
            aliases=apply("aliases", self.aliases, add_aliases, remove_aliases) or (),
            any_of=apply("any_of", self.any_of, add_any_of, remove_any_of),
            none_of=apply("none_of", self.none_of, add_none_of, remove_none_of))

    def as_dict(self) -> dict[str, Any]:
        return {"watchlist": self.watchlist, "name": self.name,
                "aliases": list(self.aliases),
                **{k: None if getattr(self, k) is None else list(getattr(self, k))
                   for k in RULE_KEYS},
                "fixed": dict(self.fixed)}


# --- reading the document ---------------------------------------------------------------


@dataclass
class _Document:
    """A watchlists file as plain data (as the loader reads it) and as composed nodes
    (with the span of every value), and where one item is in both."""

    text: str
    shown: str
    data: dict[str, Any]
    root: Node
    watchlist: str
    item: str
    uses: Counter[int] = field(default_factory=Counter)
    wl_index: int = 0
    index: int = 0

    def shared(self, node: Node) -> bool:
        """Whether ``node`` or anything in it is also used elsewhere (``&a`` / ``*a``)."""
        if self.uses[id(node)] > 1:
            return True
        if isinstance(node, MappingNode):
            return any(self.shared(k) or self.shared(v) for k, v in node.value)
        if isinstance(node, SequenceNode):
            return any(self.shared(v) for v in node.value)
        return False

    @property
    def newline(self) -> str:
        """The file's line end, for the lines an edit adds."""
        return "\r\n" if "\r\n" in self.text else "\n"

    def error(self, message: str) -> EditError:
        return EditError(self.watchlist, self.item, message)

    @property
    def plain(self) -> dict[str, Any]:
        return self.data["watchlists"][self.wl_index]["watch"][self.index]  # type: ignore[no-any-return]

    @property
    def node(self) -> MappingNode:
        node = _value(_value(self.root, "watchlists").value[self.wl_index], "watch")
        item = node.value[self.index]
        if not isinstance(item, MappingNode):
            raise self.error("the item is not written as a mapping")
        return item


def _value(node: Node, key: str) -> Any:
    found = _pair(node, key)
    return found[1] if found else None


def _pair(node: Node, key: str) -> tuple[ScalarNode, Node] | None:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
    return None


def _read(text: str, shown: str, watchlist: str, item: str) -> _Document:
    problems: list[ConfigProblem] = []
    loaded = _plain(text, shown, problems)
    if loaded is None:
        raise InvalidEdit(watchlist, item, problems)
    try:
        root = compose(text)
    except YAMLError as exc:  # the reader read it: this is not expected
        raise EditError(watchlist, item, f"{shown}: {exc}") from exc
    doc = _Document(text, shown, loaded.data, root, watchlist, item, _uses(root))
    lists = loaded.data.get("watchlists")
    if not isinstance(lists, list):
        raise doc.error(f"{shown} has no list of watchlists")
    wl = next((i for i, w in enumerate(lists) if isinstance(w, dict)
               and w.get("name") == watchlist), None)
    if wl is None:
        raise doc.error(f"{shown} has no such watchlist")
    items = lists[wl].get("watch")
    found = next((i for i, w in enumerate(items or []) if isinstance(w, dict)
                  and w.get("name") == item), None) if isinstance(items, list) else None
    if found is None:
        raise doc.error(f"watchlist {watchlist!r} has no such watch item")
    doc.wl_index, doc.index = wl, found
    if doc.uses[id(doc.node)] > 1:
        raise doc.error("the item is written through a YAML anchor or alias (&, *): edit "
                        f"{shown} by hand")
    return doc


def _plain(text: str, shown: str, problems: list[ConfigProblem]) -> LoadedFile | None:
    """The file as plain data, as the loader reads it (libyaml's nodes when the file is
    plain, the round-trip reader otherwise) with its problems; None if it is broken."""
    fast = read_fast(text, shown, lambda _: False)
    if fast is not None and not fast[1]:
        return fast[0]
    return read_round_trip(text, shown, problems, lambda _: False)


def _uses(root: Node) -> Counter[int]:
    """How many times each node is reached: an alias (``*a``) is the anchored node
    itself, so a node reached twice is shared, and editing it would edit every use."""
    seen: Counter[int] = Counter()
    stack = [root]
    while stack:
        node = stack.pop()
        seen[id(node)] += 1
        if seen[id(node)] > 1:
            continue
        if isinstance(node, MappingNode):
            stack += [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            stack += node.value
    return seen


def _text_of(entry: Any) -> str:
    return str(entry["text"]) if isinstance(entry, dict) else str(entry)


def item_value(text: str, watchlist: str, item: str,
               shown: str = WATCHLISTS_FILE) -> ItemValue:
    """The editable value of one watch item of the watchlists file ``text``."""
    return _item_value(_read(text, shown, watchlist, item))


def _item_value(doc: _Document) -> ItemValue:
    plain, node, watchlist = doc.plain, doc.node, doc.watchlist
    defaults = doc.data["watchlists"][doc.wl_index].get("defaults") or {}
    fixed: dict[str, str] = {}
    rules: dict[str, tuple[str, ...] | None] = {}
    for kind in RULE_KEYS:
        why = _rules_fixed(doc, kind, plain, node, defaults)
        if why:
            fixed[kind] = why
            rules[kind] = None
        else:
            rules[kind] = tuple(str(t) for t in plain.get(kind) or ())
    aliases = plain.get("aliases") or []
    if (pair := _pair(node, "aliases")) and doc.shared(pair[1]):
        fixed["aliases"] = "the aliases are a YAML anchor or alias (&, *) shared elsewhere"
    return ItemValue(watchlist, str(plain["name"]), tuple(_text_of(a) for a in aliases),
                     rules["any_of"], rules["none_of"], fixed)


def _rules_fixed(doc: _Document, kind: str, plain: dict[str, Any], node: MappingNode,
                 defaults: dict[str, Any]) -> str | None:
    """Why the item's ``kind`` rules cannot be edited as a list of terms; None if they
    can."""
    if kind not in plain:
        if kind in defaults:
            return (f"the item takes {kind} from the watchlist's defaults; writing its own "
                    "would replace them")
        return None
    pair = _pair(node, kind)
    value = plain[kind]
    if pair is None or not isinstance(pair[1], SequenceNode) or not isinstance(value, list) \
            or not all(isinstance(t, str) for t in value):
        return (f"{kind} is written as rules ({{terms: ..., within: N}}), not as a list of "
                "terms")
    if doc.shared(pair[1]):
        return f"{kind} is a YAML anchor or alias (&, *) shared elsewhere"
    return None


# --- splicing -------------------------------------------------------------------------------


_DUMPER = YAML(typ="rt")
_DUMPER.default_flow_style = True
_DUMPER.width = 1 << 30


def _flow(value: Any) -> str:
    """``value`` as one line of flow YAML (a scalar quoted where it must be, in a flow
    list or mapping or after a key alike)."""
    out = io.StringIO()
    _DUMPER.dump([value], out)
    written = out.getvalue().rstrip("\n")
    assert written.startswith("[") and written.endswith("]") and "\n" not in written
    return written[1:-1]


def _term(value: str, style: str | None = None) -> str:
    """A term as a scalar, quoted as ``style`` says (that of its neighbours: a file
    written as JSON stays JSON-like), plain where it can be otherwise."""
    value = escape_env(value)
    if style == '"':
        return json.dumps(value, ensure_ascii=False)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return _flow(value)


def _style(nodes: Sequence[Node]) -> str | None:
    """The quoting all these scalars share, if they share one."""
    styles = {getattr(n, "style", None) if isinstance(n, ScalarNode) else "?" for n in nodes}
    return styles.pop() if len(styles) == 1 and styles != {"?"} else None


def _entry(value: Any) -> str:
    """A kept alias or a new term, as written anew (a rewrite of a whole list)."""
    if isinstance(value, dict):
        return _flow({k: escape_env(v) if isinstance(v, str) else v
                      for k, v in value.items()})
    return _term(str(value))


Splice = tuple[int, int, str]


def _content_end(node: Node) -> int:
    """Where a value's own text ends: a block collection's end mark is where the next
    token starts (the next key, after its indentation), so its last entry says."""
    if not isinstance(node, MappingNode | SequenceNode) or node.flow_style or not node.value:
        return int(node.end_mark.index)
    last = node.value[-1]
    return _content_end(last[1] if isinstance(last, tuple) else last)


def _line_start(text: str, at: int) -> int:
    return text.rfind("\n", 0, at) + 1


def _line_end(text: str, at: int) -> int:
    """Just past the line break ending the line ``at`` is on (or ``at`` itself when it
    starts a line: a block collection ends where the next line begins)."""
    if at == 0 or text[at - 1] == "\n":
        return at
    end = text.find("\n", at)
    return len(text) if end < 0 else end + 1


def _indent_of(text: str, at: int) -> str:
    return " " * (at - _line_start(text, at))


def _block_prefix(doc: _Document, item: Node) -> str:
    """The ``   - `` before a block list's entry, to write a new entry alike."""
    start = item.start_mark.index
    prefix = doc.text[_line_start(doc.text, start):start]
    if prefix.strip() != "-" or not prefix.rstrip().endswith("-"):
        raise doc.error("a list written in a way this editor does not change (an entry "
                        f"not alone on its line): edit {doc.shown} by hand")
    return prefix


def _seq_splices(doc: _Document, key: ScalarNode, seq: SequenceNode, old: list[Any],
                 new: list[str]) -> list[Splice]:
    """Splices turning the list ``old`` (written as ``seq``) into ``new``: entries are
    removed and added in place where the kept ones keep their order, else the list is
    written anew on one line."""
    text = doc.text
    olds = [_text_of(o) for o in old]
    kept = [i for i, t in enumerate(olds) if t in new]
    kept_texts = [olds[i] for i in kept]
    if kept_texts != [t for t in new if t in olds] or len(set(olds)) != len(olds):
        return [_rewrite(doc, key, seq, [old[olds.index(t)] if t in olds else t
                                         for t in new])]
    nodes = seq.value
    splices: list[Splice] = []
    if seq.flow_style:
        last = kept[-1] if kept else -1
        if last < 0:  # nothing kept: the entries' span written anew
            inner = ", ".join(_term(t) for t in new)
            return [(nodes[0].start_mark.index, nodes[-1].end_mark.index, inner)]
        for i in range(len(nodes)):
            if i in kept:
                continue
            if i < last:
                splices.append((nodes[i].start_mark.index, nodes[i + 1].start_mark.index, ""))
        if last < len(nodes) - 1:
            splices.append((nodes[last].end_mark.index, nodes[-1].end_mark.index, ""))
        style = _style(nodes)
        for anchor, added in _placed(olds, new):
            if anchor is None:
                at = nodes[kept[0]].start_mark.index
                splices.append((at, at, "".join(f"{_term(t, style)}, " for t in added)))
            else:
                at = nodes[olds.index(anchor)].end_mark.index
                splices.append((at, at, "".join(f", {_term(t, style)}" for t in added)))
        return splices
    prefix = _block_prefix(doc, nodes[0])
    for node in nodes:
        _block_prefix(doc, node)
    for i, node in enumerate(nodes):
        if i not in kept:
            splices.append((_line_start(text, node.start_mark.index),
                            _line_end(text, _content_end(node)), ""))
    style = _style(nodes)
    for anchor, added in _placed(olds, new):
        lines = "".join(f"{prefix}{_term(t, style)}{doc.newline}" for t in added)
        if anchor is None:
            at = _line_start(text, nodes[kept[0] if kept else 0].start_mark.index)
        else:
            at = _line_end(text, _content_end(nodes[olds.index(anchor)]))
        if at == len(text) and not text.endswith("\n"):
            lines = doc.newline + lines.removesuffix(doc.newline)
        splices.append((at, at, lines))
    return splices


def _placed(olds: list[str], new: list[str]) -> list[tuple[str | None, list[str]]]:
    """The new entries in runs, each after the kept entry it follows (None: first)."""
    runs: list[tuple[str | None, list[str]]] = []
    anchor: str | None = None
    for term in new:
        if term in olds:
            anchor = term
        elif runs and runs[-1][0] == anchor:
            runs[-1][1].append(term)
        else:
            runs.append((anchor, [term]))
    return runs


def _rewrite(doc: _Document, key: ScalarNode, value: Node, entries: list[Any]) -> Splice:
    """The whole value after ``key:`` written anew as a one-line flow list."""
    end = value.end_mark.index
    tail = ""
    if isinstance(value, MappingNode | SequenceNode) and not value.flow_style:
        end = _line_end(doc.text, _content_end(value))
        tail = doc.newline if doc.text[end - 1:end] == "\n" else ""
    return (key.end_mark.index, end,
            ": [" + ", ".join(_entry(e) for e in entries) + "]" + tail)


def _key_splices(doc: _Document, key: str, old: list[Any] | None,
                 new: list[str]) -> list[Splice]:
    """Splices making the item's ``key`` the list ``new``: the key is added (after the
    name for aliases, last otherwise), edited, or removed when ``new`` is empty."""
    node, text = doc.node, doc.text
    pair = _pair(node, key)
    if old is not None and [_text_of(o) for o in old] == new:
        return []
    if pair is None:
        if not new:
            return []
        name = _pair(node, "name")
        style = _style([name[1]]) if name else None
        quoted = json.dumps(key) if style == '"' else key
        written = f"{quoted}: [{', '.join(_term(t, style) for t in new)}]"
        after = _pair(node, "name") if key == "aliases" else None
        last = (after or node.value[-1])[1]
        if node.flow_style:
            return [(last.end_mark.index, last.end_mark.index, f", {written}")]
        first = node.value[0][0]
        at = _line_end(text, _content_end(last))
        line = f"{_indent_of(text, first.start_mark.index)}{written}{doc.newline}"
        if at == len(text) and not text.endswith("\n"):
            line = doc.newline + line.removesuffix(doc.newline)
        return [(at, at, line)]
    key_node, value = pair
    if not new:
        index = [k for k, _ in node.value].index(key_node)
        if node.flow_style:
            before = node.value[index - 1][1] if index else None
            if before is None:
                raise doc.error(f"{key} is the first key of a flow mapping: edit "
                                f"{doc.shown} by hand")
            return [(before.end_mark.index, value.end_mark.index, "")]
        start = _line_start(text, key_node.start_mark.index)
        if text[start:key_node.start_mark.index].strip():
            raise doc.error(f"{key} is the first key of the item: edit {doc.shown} by hand")
        return [(start, _line_end(text, _content_end(value)), "")]
    if not isinstance(value, SequenceNode) or not value.value:
        return [_rewrite(doc, key_node, value, list(new))]
    return _seq_splices(doc, key_node, value, old or [], new)


def _apply(text: str, splices: list[Splice]) -> str:
    parts, at = [], 0
    for start, end, insert in sorted(splices, key=lambda s: (s[0], s[1])):
        if start < at:
            raise AssertionError("overlapping splices")
        parts += [text[at:start], insert]
        at = end
    parts.append(text[at:])
    return "".join(parts)


def _check_terms(doc: _Document, kind: str, terms: Iterable[str]) -> None:
    for term in terms:
        if not term.strip() or "\n" in term or "\r" in term or CONTROL.search(term):
            raise doc.error(f"{kind}: {term!r} is not a term (one line of text, not blank)")


def edit(text: str, new: ItemValue, item: str | None = None,
         shown: str = WATCHLISTS_FILE) -> str:
    """The watchlists file ``text`` with watch item ``item`` (default ``new.name``) of
    watchlist ``new.watchlist`` made ``new``, all else byte for byte as it was.

    Raises EditError if the item cannot be edited so (a value shared through an
    anchor, a rule with ``within``) or if the text read back differs anywhere else."""
    doc = _read(text, shown, new.watchlist, item or new.name)
    current = _item_value(doc)
    plain, node = doc.plain, doc.node
    _check_terms(doc, "name", [new.name])
    _check_terms(doc, "aliases", new.aliases)
    splices: list[Splice] = []
    expected = copy.deepcopy(doc.data)
    want = expected["watchlists"][doc.wl_index]["watch"][doc.index]
    if new.name != current.name:
        value = _value(node, "name")
        if not isinstance(value, ScalarNode) or value.style in ("|", ">") or \
                doc.shared(value):
            raise doc.error(f"the name is not written on one line, or is an anchor: edit "
                            f"{shown} by hand")
        splices.append((value.start_mark.index, value.end_mark.index,
                        _term(new.name, value.style)))
        want["name"] = new.name
    if new.aliases != current.aliases:
        if "aliases" in current.fixed:
            raise doc.error(f"aliases cannot be edited here: {current.fixed['aliases']}")
        old = list(plain.get("aliases") or [])
        splices += _key_splices(doc, "aliases", old, list(new.aliases))
        by_text = {_text_of(o): o for o in old}
        want["aliases"] = [by_text.get(a, a) for a in new.aliases]
        if not new.aliases:
            want.pop("aliases", None)
    for kind in RULE_KEYS:
        terms = getattr(new, kind)
        if terms is None or terms == getattr(current, kind):
            continue
        if getattr(current, kind) is None:
            raise doc.error(f"{kind} cannot be edited here: {current.fixed[kind]}")
        _check_terms(doc, kind, terms)
        splices += _key_splices(doc, kind, plain.get(kind), list(terms))
        want[kind] = list(terms)
        if not terms:
            want.pop(kind, None)
    edited = _apply(text, splices)
    problems: list[ConfigProblem] = []
    reread = _plain(edited, shown, problems)
    if reread is None or reread.data != expected:
        raise doc.error("the edit could not be made without changing more than the item "
                        f"(an unusual layout?): edit {shown} by hand"
                        + "".join(f"\n{p}" for p in problems))
    return edited


# --- validating and saving ------------------------------------------------------------------


def applied(config: Config, new: ItemValue, item: str | None = None) -> Config:
    """``config`` with watch item ``item`` (default ``new.name``) made ``new`` in memory,
    without reading or validating the files: what a preview needs at once while the form
    changes (``validate`` the edited text before saving). A term the schema refuses is an
    EditError saying so."""
    name = item or new.name
    wl = next((w for w in config.watchlists if w.name == new.watchlist), None)
    current = next((i for i in wl.watch if i.name == name), None) if wl else None
    if wl is None or current is None:
        raise EditError(new.watchlist, name, "no such watch item in the config")
    data = current.model_dump(mode="json", exclude_none=True)
    by_text = {_text_of(a): a for a in data.get("aliases", [])}
    data.update(name=new.name, aliases=[by_text.get(a, a) for a in new.aliases])
    for kind in RULE_KEYS:
        terms = getattr(new, kind)
        if terms is not None:
            data.pop(kind, None)
            if terms:
                data[kind] = list(terms)
    try:
        edited = WatchItem.model_validate(data)
    except ValidationError as exc:
        raise EditError(new.watchlist, name, "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())) from exc
    watch = [edited if i is current else i for i in wl.watch]
    watchlists = tuple(w.model_copy(update={"watch": watch}) if w is wl else w
                       for w in config.watchlists)
    digest = version_of(repr(new).encode())[:8]
    return dataclasses.replace(config, watchlists=watchlists,
                               version=f"{config.version}+edit.{digest}")


def validate(directory: Path, text: str, new: ItemValue,
             checks: Sequence[SettingsCheck] = (), item: str | None = None) -> Config:
    """The config with ``text`` as watchlists.yaml, validated as ``check`` validates
    (``checks``: those of the layers above); InvalidEdit lists its problems, naming the
    item as ``item`` (default ``new.name``)."""
    try:
        return load_config(directory, checks=checks, texts={WATCHLISTS_FILE: text})
    except ConfigError as exc:
        raise InvalidEdit(new.watchlist, item or new.name, exc.problems) from exc


Probe = Callable[[Path], str | None]


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be replaced by a rename in its directory (a read-only file
    system, a directory or file not writable by this user); None if it can. ``access``
    answers for the real user, and for root too on a read-only mount."""
    directory = path.parent
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError as exc:
        return str(exc)
    if not os.access(directory, os.W_OK):
        return f"the directory {directory} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path.name} is not writable"
    return None


@dataclass(frozen=True)
class Saved:
    """A save done: the file's new text and version, and the config it validated to."""

    path: Path
    text: str
    version: str
    config: Config


def save(directory: Path, new: ItemValue, version: str, item: str | None = None, *,
         checks: Sequence[SettingsCheck] = (), probe: Probe = unwritable) -> Saved:
    """Write the edit of watch item ``item`` (default ``new.name``) if watchlists.yaml
    is still at ``version`` and the edited config passes ``check``.

    Raises ChangedSince, InvalidEdit, ReadOnly (with the YAML to copy), or EditError.
    Concurrent saves through this function are serialised by a lock on the file, and the
    version is compared again under it; an editor that writes meanwhile is not stopped
    (nothing locks it out), only detected up to the rename."""
    path = (Path(directory) / WATCHLISTS_FILE).resolve()  # a symlink's target is edited
    name = item or new.name
    with open(path, "rb") as locked:
        fcntl.flock(locked, fcntl.LOCK_EX)
        current = path.read_bytes()
        if version_of(current) != version:
            raise ChangedSince(new.watchlist, name, f"{path} changed since the form was "
                               "loaded: load it again and redo the edit")
        text = edit(current.decode("utf-8"), new, name, str(path))
        config = validate(Path(directory), text, new, checks, name)
        if (why := probe(path)) is not None:
            raise ReadOnly(new.watchlist, name, path, why, text)
        try:
            _replace(path, text.encode("utf-8"))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise ReadOnly(new.watchlist, name, path, exc.strerror or str(exc),
                               text) from exc
            raise
    return Saved(path, text, version_of(text.encode("utf-8")), config)


def _replace(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` at once or not at all, with its mode (and owner, where
    this user may set it)."""
    before = path.stat()
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, stat.S_IMODE(before.st_mode))
        if (before.st_uid, before.st_gid) != (os.getuid(), os.getgid()):
            # else the file becomes this user's: it stays readable to its mode
            with contextlib.suppress(PermissionError):
                os.chown(temporary, before.st_uid, before.st_gid)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
