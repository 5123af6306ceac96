"""Issue #14: config files are read from libyaml's nodes (``ruamel.yaml.clib``), ten times
faster than through ruamel's round-trip objects, with the same result. Each file and
snippet here is read both ways and every part of the outcome compared: the data (with
the type of every value), the positions of keys and values, the ``${`` left unexpanded,
the count of values and the problems."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from crawler.config import yamlfile
from crawler.config.yamlfile import KeyPath, LoadedFile, read_yaml

ROOT = Path(__file__).resolve().parent.parent
REPO_FILES = sorted({*ROOT.glob("config/*.yaml"), *ROOT.glob("tests/fixtures/**/*.yaml"),
                     *ROOT.glob("crawler/**/*.yaml")})
EVERYWHERE: Callable[[KeyPath], bool] = lambda _: True  # noqa: E731
NOWHERE: Callable[[KeyPath], bool] = lambda _: False  # noqa: E731


def typed(value: Any) -> Any:
    """``value`` with the exact type of every part, for comparing two readings."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, repr(value))


def outcome(loaded: LoadedFile | None, problems: list[Any]) -> Any:
    if loaded is None:
        return None, [str(p) for p in problems]
    return (typed(loaded.data), loaded.values, loaded.keys,
            [(path, str(p)) for path, p in loaded.unexpanded], loaded.count,
            [str(p) for p in problems])


def read_both(path: Path, expands_env: Callable[[KeyPath], bool] = NOWHERE) -> tuple[Any, Any]:
    """``path`` read by ``read_yaml``, and by it again with the fast path off: the
    round-trip reader alone, as before issue #14."""
    found: list[Any] = []
    fast = outcome(read_yaml(path, path.name, found, expands_env), found)
    careful: list[Any] = []
    with patch.object(yamlfile, "read_fast", lambda *_: None):
        slow = outcome(read_yaml(path, path.name, careful, expands_env), careful)
    return fast, slow


def takes_fast_path(text: str, expands_env: Callable[[KeyPath], bool] = NOWHERE) -> bool:
    return yamlfile.read_fast(text, "f.yaml", expands_env) is not None


@pytest.mark.parametrize("path", REPO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_file_in_the_repo_reads_the_same_and_fast(path: Path) -> None:
    for expands_env in (NOWHERE, EVERYWHERE):
        fast, slow = read_both(path, expands_env)
        assert fast == slow
    assert takes_fast_path(path.read_text(encoding="utf-8"))


def test_the_docs_yaml_examples_read_the_same(tmp_path: Path) -> None:
    blocks = [block for doc in [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
              for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.DOTALL)]
    assert len(blocks) > 10
    for n, block in enumerate(blocks):
        path = tmp_path / f"block{n}.yaml"
        path.write_text(block)
        fast, slow = read_both(path)
        assert fast == slow, block
        if slow[0] is not None:  # a whole file, not a list fragment
            assert takes_fast_path(block), block


SCALARS = [
    "yes", "no", "on", "off", "y", "n", "True", "TRUE", "true", "False", "null", "Null",
    "NULL", "~", "", "0o17", "017", "0x1F", "0b101", "1_000", "+12", "-3", "-0", "0", "00",
    "1.5", "1e3", "1.0e+3", ".inf", "-.Inf", ".NaN", "0.", ".5", "+.5", "12:30", "1:30:00",
    "2026-01-02", "2026-01-02T03:04:05Z", "2026-01-02 03:04:05.5 +02:00", "2026-1-2",
    "=", "<<", "'single'", '"double"', '"1"', "'true'", '"esc\\u00e9\\t"', "'it''s'",
    "$$5", "${NW_YAML_SET}", "${NW_YAML_UNSET:-dflt}", "${NW_YAML_UNSET}", "a $${x} b",
    "http://example.org/a?b=c#d", "-x", "a: b", "&a 5", "&s text", "!!str 5", "!!int 5",
    '!!int "5"', "!!float 1", "!!bool yes", '!!null ""', "!secret x", "! a",
    "!<tag:yaml.org,2002:str> a", "!!timestamp 2026-01-01", "!!binary aGk=",
    "|\n  two\n  lines\n", ">\n  folded\n  text\n\n  more\n", "|-\n  x\n", ">+\n  x\n\n",
    "plain\n  continued\n  over lines", '"quoted\n  over lines"', "😀 \u00e9", "a\u2028b",
    '"a\\u2028b"', '"\\x01"', '"\\N"', "[]", "{}", "[a, 'b', 1, true, null]",
    "{k: v, n: 1}", "!!map {a: 1}", "!!seq [a]", "!!set {a, b}", "!!omap [a: 1]",
    "!x [a]", "!x {a: 1}", "[http://x.org/a, b]", "{url: http://x.org}", '{"a":1}',
]


@pytest.mark.parametrize("scalar", SCALARS)
def test_values_of_every_kind_read_the_same(tmp_path: Path, scalar: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NW_YAML_SET", "from the environment")
    monkeypatch.delenv("NW_YAML_UNSET", raising=False)
    body = scalar.replace("\n", "\n  ")
    for text in (f"key: {body}\n", f"list:\n  - {body}\n  - after\n",
                 f"flow: [{scalar}, z]\n" if "\n" not in scalar else "a: 1\n",
                 f"{scalar}: value\n" if "\n" not in scalar else "b: 2\n"):
        path = tmp_path / "f.yaml"
        path.write_text(text, encoding="utf-8")
        for expands_env in (NOWHERE, EVERYWHERE):
            fast, slow = read_both(path, expands_env)
            assert fast == slow, text


DOCUMENTS = [
    "", "# only a comment\n", "---\n", "---\na: 1\n...\n", "a: 1\n---\nb: 2\n", "just text\n",
    "- a\n- b\n", "{}\n", "[]\n", "~\n", "a:\n- b\n- c\nd: e\n", "- - a\n  - b\n- c\n",
    "- a: b\n  c: d\n- e: f\n", "a:\n  b:\n    c: [1, {d: e}]\n", "? a\n: b\n",
    "? [a, b]\n: c\n", "[a]: b\n", "{a: b}: c\n", "a: 1\nb: 2\na: 3\n", "a: {x: 1, x: 2}\n",
    "1: a\n'1': b\n", "1: a\n1.0: b\n", "true: a\n1: b\n", "null: a\n~: b\n",
    "a: &x 1\nb: *x\n", "a: &x {k: v}\nb: *x\nc: [*x, *x]\n", "a: &x [1, 2]\nb: [*x, *x]\n",
    "&t true: x\n", "a: &b true\nc: *b\n", "a: &r [*r]\n", "a: *nothing\n",
    "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n", "m:\n  <<: [{a: 1}, {b: 2}]\n",
    "%YAML 1.1\n---\na: yes\nb: 0777\n", "%YAML 1.2\n---\na: yes\n",
    "%TAG !e! tag:example.org,2026:\n---\na: !e!x 1\n", "\ufeffa: 1\nb: [x, y]\n",
    "\ufeffa: &x 5\nb: *x\n", "a: yes\ufeffb\n", "yes\t: yes\n",
    "a: 1\r\nb:\r\n  - x\r\n", "a: 1\rb: 2\r", "a: \"x\u2028y\"\nb: 1\n",
    "a: [\"😀😀\", b]\nc: {d: \"é\", e: f}\n", "a: b: c\n", "a:\n\tb: 1\n", "a: 'open\n",
    "a: [1, 2\n", "a: {b: 1\n", "- a\nb: 1\n", "a:\n  - b\n - c\n", "a: @x\n", "a: `x\n",
    "k" * 1100 + ": v\n", "a: " + "[" * 70 + "]" * 70 + "\n",
    "a:\n" + "".join(" " * i + "k:\n" for i in range(1, 80)) + "  v\n",
    "a: " + "? " * 70 + "x\n", "- " * 70 + "x\n", "a: {b: [c, {d: [e, f]}]}\n",
    "a: b # comment\n# more\nc: d\n", "a: |\n  keep\n  # not a comment\n", "'a': 1\n\"b\": 2\n",
    "a: 1\nb: 2\n" * 3, "a:\n  - name: x\n    aliases: [y, z]\n  - name: w\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_of_every_shape_read_the_same(tmp_path: Path, text: str) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    fast, slow = read_both(path)
    assert fast == slow


@pytest.mark.parametrize(("text", "expected"), [
    ("base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n",
     "f.yaml:3:3: m: YAML merge keys ('<<') are not supported: write the keys out"),
    ("a: !!float 1no\n", "f.yaml:1:1: YAML: a value cannot be built (could not convert "
     "string to float: '1no'): a config needs no tags ('!!float') nor lists as keys"),
    ("? - -\n", "f.yaml:1:1: YAML: a value cannot be built (unhashable type: "
     "'CommentedSeq'): a config needs no tags ('!!float') nor lists as keys"),
    ("a: !!omap [b: 1]\n",
     "f.yaml:1:4: a: YAML tag 'tag:yaml.org,2002:omap' is not supported: remove it"),
])
def test_merge_keys_ordered_maps_and_tagged_values_are_problems(tmp_path: Path, text: str,
                                                          expected: str) -> None:
    """They used to raise out of the reader (a traceback from ``newswatch check``)."""
    path = tmp_path / "f.yaml"
    path.write_text(text)
    found: list[Any] = []
    assert read_yaml(path, "f.yaml", found) is None
    assert [str(p) for p in found] == [expected]


def test_without_libyaml_the_python_composer_reads_the_same(tmp_path: Path) -> None:
    """ruamel.yaml.clib is a dependency, but a platform without its wheel still loads."""
    path = tmp_path / "f.yaml"
    with patch.object(yamlfile, "CParser", None):
        for n, text in enumerate([*(p.read_text() for p in REPO_FILES), *DOCUMENTS]):
            path.write_text(text, encoding="utf-8")
            fast, slow = read_both(path)
            assert fast == slow, text
            if n < len(REPO_FILES):
                assert takes_fast_path(text)


def test_a_plain_watchlist_takes_the_fast_path_with_its_typed_values() -> None:
    text = ("watchlists:\n  - name: people\n    channels: [hook]\n    min_score: 0.5\n"
            "    enabled: true\n    since: 2026-01-02\n    at: 2026-01-02T03:04:05Z\n"
            "    watch:\n      - {name: Ahmad Masoud, aliases: [Ahmad Massoud]}\n"
            "      - name: &who Atta Noor\n        note: *who\n        count: 0x1F\n")
    assert takes_fast_path(text)
    loaded = yamlfile.read_fast(text, "f.yaml", NOWHERE)
    assert loaded is not None
    people = loaded[0].data["watchlists"][0]
    assert (people["min_score"], people["enabled"], people["watch"][1]["note"]) == \
        (0.5, True, "Atta Noor")
    assert type(people["since"]) is date and isinstance(people["at"], datetime)
    assert loaded[0].values[("watchlists", 0, "watch", 1, "count")] == (12, 16)


@pytest.mark.parametrize("text", [
    "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "a: " + '[ "]", ' * 100_000 + "]" * 100_000 + "\n",
    "? " * 100_000 + "x\n",
    "- " * 100_000 + "x\n",
    "a:\n" + "".join(" " * i + "k:\n" for i in range(1, 3000)) + "  v\n",
])
def test_deep_nesting_never_reaches_libyamls_composer(text: str) -> None:
    """It recurses in C and crashes the process near 50,000 levels."""
    assert yamlfile.nests_deep(text)
    assert not takes_fast_path(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("a: " + '[ "]", ' * 100_000 + "]" * 100_000 + "\n", "f.yaml:1:445"),
    ("? " * 100_000 + "x\n", "f.yaml:1:129"),
])
def test_deep_nesting_behind_quoted_brackets_or_keys_is_located(
        tmp_path: Path, text: str, expected: str) -> None:
    """The brackets' balance and the indentation hid it: it was found by the parser's
    recursion running out, at 1:1."""
    path = tmp_path / "f.yaml"
    path.write_text(text)
    found: list[Any] = []
    assert read_yaml(path, "f.yaml", found) is None
    assert [str(p) for p in found] == [
        f"{expected}: nested deeper than 64 levels: a config needs a few"]
