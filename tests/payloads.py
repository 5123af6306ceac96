"""Delivered payloads as a receiver reads them: checked against the documented JSON Schema
of their type and version, and read the same way whichever version they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

DOCS = Path(__file__).parent.parent / "docs"
#: The documented JSON Schemas, by file stem, and the registry their $refs resolve in.
SCHEMAS = {path.name.removesuffix(".schema.json"): json.loads(path.read_text())
           for path in sorted(DOCS.glob("*.schema.json"))}
REGISTRY = Registry().with_resources(
    (s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())
_SCHEMA_OF = {("article.matched", 1): "webhook", ("article.matched", 2): "webhook.v2",
              ("digest", 1): "digest", ("digest", 2): "digest.v2",
              ("operator.notice", 1): "notice"}


def schema_of(payload: dict[str, Any]) -> str:
    """The stem of the schema documenting a payload of this type and version."""
    return _SCHEMA_OF[payload["type"], payload["version"]]


def valid_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload, validated against the documented schema of its type and version."""
    jsonschema.Draft202012Validator(SCHEMAS[schema_of(payload)],
                                    registry=REGISTRY).validate(payload)
    return payload


def mentions(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every match object of an ``article.matched`` event, of either version."""
    data = payload["data"]
    if payload["version"] == 1:
        return list(data["matches"])
    return [m for w in data["watchlists"] for item in w["items"] for m in item["mentions"]]


def watchlists_of(payload: dict[str, Any]) -> list[str]:
    """The watchlists an ``article.matched`` event names, of either version."""
    data = payload["data"]
    return [data["watchlist"]] if payload["version"] == 1 else [
        w["name"] for w in data["watchlists"]]
