"""The docs stay true to the code: every config key documented, the payload example valid."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ruamel.yaml import YAML

from crawler.config import Settings, SourceConfig, WatchlistConfig, WatchlistsFile
from tests.payloads import SCHEMAS, schema_of, valid_payload

DOCS = Path(__file__).parent.parent / "docs"


def keys_of(model: type[BaseModel], prefix: str = "") -> set[str]:
    """The leaf keys a model accepts, dotted (``defaults.interval``)."""
    found = set()
    for attribute, field in model.model_fields.items():
        name = field.alias or attribute  # the key as written in YAML (``from``)
        inner = _models(field.annotation)
        if not inner or name == "channels":
            found.add(prefix + name)
        for nested in inner:
            found |= keys_of(nested, f"{prefix}{name}.")
    return found


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models(arg)]


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.\[\]]+)`", text, re.MULTILINE))
    documented = {d.replace("[]", "") for d in documented}
    channel_keys = {k.removeprefix("channels.") for k in keys_of(Settings)
                    if k.startswith("channels.")}
    expected = ({k for k in keys_of(Settings) if not k.startswith("channels.")}
                | channel_keys | keys_of(SourceConfig) | keys_of(WatchlistConfig))
    assert expected - documented == set()


def test_every_webhook_doc_example_matches_the_schema_of_its_type() -> None:
    text = (DOCS / "webhooks.md").read_text()
    examples = [json.loads(e) for e in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    assert sorted(schema_of(e) for e in examples) == sorted(SCHEMAS), \
        "one example per documented schema"
    for example in examples:
        valid_payload(example)


def test_watchlist_doc_examples_are_valid_config() -> None:
    text = (DOCS / "watchlists.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    whole = [b for b in blocks if b.startswith("watchlists:")]
    assert len(whole) >= 2
    for block in whole:
        WatchlistsFile.model_validate(YAML(typ="safe").load(block))


def _prose(path: Path) -> str:
    """The text with markdown quoting, list markers and line breaks flattened."""
    text = re.sub(r"^\s*(?:>|-)\s?", "", path.read_text(), flags=re.MULTILINE)
    return " ".join(text.split())


def test_readme_contributing_and_architecture_state_the_same_pipeline() -> None:
    root = DOCS.parent
    sentence = _prose(root / "README.md").split("**collect → process → store → alert.**")[1]
    sentence = sentence.split(" alert delivers and publishes.")[0]
    for page in (root / "CONTRIBUTING.md", DOCS / "architecture.md"):
        assert f"**collect → process → store → alert.**{sentence} alert delivers and " \
               "publishes." in _prose(page), page


def test_architecture_names_every_layer_package_and_the_import_rule() -> None:
    text = (DOCS / "architecture.md").read_text()
    packages = sorted(p.name for p in (DOCS.parent / "crawler").iterdir()
                      if (p / "__init__.py").exists())
    assert packages == ["app", "cli", "collect", "config", "core", "process", "store"]
    for name in packages:
        assert f"`crawler/{name}`" in text
    assert "import-linter" in text
