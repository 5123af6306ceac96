"""The import-graph script finds circles, so the figures it gives can be trusted."""

from __future__ import annotations

from scripts.import_graph import circles, package


def test_circles_are_found_and_a_chain_is_not_one() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set(), "f": {"f"}}
    assert circles(edges) == [["a", "b", "c"]]


def test_modules_are_counted_under_their_layer_package() -> None:
    assert package("crawler.store.sqlite.base") == "crawler.store"
    assert package("crawler.cli") == "crawler.cli"
    assert package("alerts.webhook") == "alerts"
