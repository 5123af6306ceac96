"""One table of queries, both backends: SQLite (FTS5) and PostgreSQL (tsvector) find the
same articles for each, Dari letter variants included; order and snippets may differ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.core.errors import StoreError
from crawler.process.search import parse_query
from crawler.store import PostgresStore, SQLiteStore, Store
from tests.contract.conftest import NOW, article, new, no_alerts, source
from tests.postgres import fresh_database

pytestmark = pytest.mark.postgres

#: (title, text) of each article; article n + 1 is the n-th.
CORPUS = [
    ("Ahmad Massoud in Panjshir", "Ahmad Massoud met elders to discuss the aid convoy."),
    ("Talks in Doha", "Intra-Afghan dialogue resumed in Doha on Tuesday."),
    ("Prices", "Wheat prices rose 4.5 percent; the ministry blamed the drought."),
    ("Salang pass", "The Salang pass reopened after snow; traffic_police said trucks wait."),
    ("احمد مسعود در پنجشیر", "احمد مسعود با بزرگان پنجشیر دیدار کرد."),
    # Arabic yeh and kaf where Dari writes Persian ones, harakat, a ZWNJ
    ("أحمد مسعود", "أحمد مَسعود گفت كه گفت\u200cوگو ادامه دارد در پنجشير."),
    ("Massoud", "Ahmad Shah Massoud was killed in 2001; his son Ahmad leads the NRF."),
    ("Panjshir valley", "Massoud Ahmad, a shopkeeper, is no relation."),
    ("Kabul weather", "Snow is expected in Kabul and Mazar-i-Sharif."),
    ("Envoys", "Atta Muhammad Nur met envoys in Tashkent. Balkh's governor spoke."),
]

QUERIES = [
    "massoud", "Massoud", "ahmad massoud", '"ahmad massoud"', '"massoud ahmad"',
    "panjshir OR doha", "massoud AND NOT shah", "massoud NOT shah",
    "massoud NOT (shah OR shopkeeper)",
    "mass*", '"ahmad mass"*', "intra-afghan", '"intra afghan dialogue"', "4.5", '"4 5"',
    "traffic", "traffic_police", "mazar-i-sharif", "sharif", "balkh's", "balkh",
    "(panjshir OR kabul) AND snow", "panjshir kabul", "احمد مسعود", '"احمد مسعود"',
    "پنجشیر", "پنجشير", "كه", "گفت‌وگو", "گفتوگو", "مسعود AND NOT پنجشیر", "مس*",
    '"panjshir ahmad"', "nothing-here", "2001",
]

#: Queries FTS5 refuses; PostgreSQL's search refuses them too.
REFUSED = ["NOT massoud", "massoud OR NOT shah", "(massoud", "massoud AND"]


def _fill(store: Store) -> None:
    store.sync_sources([source("A")], NOW)
    batch = [new(article("A", n, text, title)) for n, (title, text) in enumerate(CORPUS)]
    store.add_articles(batch, NOW, "v1", no_alerts)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    with fresh_database() as dsn:
        sqlite: Store = SQLiteStore(Path(tmp_path_factory.mktemp("search")) / "s.db")
        postgres: Store = PostgresStore(dsn)
        for store in (sqlite, postgres):
            _fill(store)
        yield sqlite, postgres
        sqlite.close()
        postgres.close()


def found(store: Store, text: str) -> set[int]:
    return {r["id"] for r in store.search(parse_query(text), limit=100)}


@pytest.mark.parametrize("text", QUERIES)
def test_both_backends_find_the_same_articles(stores: tuple[Store, Store], text: str) -> None:
    sqlite, postgres = stores
    assert found(postgres, text) == found(sqlite, text)


def test_the_table_finds_something_and_dari_variants_meet(stores: tuple[Store, Store]) -> None:
    """The table is not vacuous: the queries find articles but for those meant to find
    none (a phrase from the title into the summary among them), and Arabic-letter and
    Persian-letter spellings find the same two Dari articles."""
    sqlite, postgres = stores
    assert {q for q in QUERIES if not found(sqlite, q)} == {
        "panjshir kabul", "مسعود AND NOT پنجشیر", '"panjshir ahmad"', "nothing-here"}
    assert found(postgres, "پنجشیر") == found(postgres, "پنجشير") == {5, 6}
    assert found(postgres, '"ahmad massoud"') == {1}
    assert found(postgres, '"4 5"') == found(postgres, "4.5") == {3}


@pytest.mark.parametrize("text", REFUSED)
def test_both_backends_refuse_what_fts5_cannot_read(stores: tuple[Store, Store],
                                                     text: str) -> None:
    for store in stores:
        with pytest.raises(StoreError, match="cannot search for"):
            found(store, text)


def test_rank_order_and_filters(stores: tuple[Store, Store]) -> None:
    sqlite, postgres = stores
    for order in ("newest", "rank"):
        for store in stores:
            rows = store.search(parse_query("massoud"), order=order, source="A", limit=2)
            assert len(rows) == 2
    assert postgres.search(parse_query("massoud"), source="B") == []
    assert sqlite.search(parse_query("massoud"), source="B") == []
