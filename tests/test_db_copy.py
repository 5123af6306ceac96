"""``newswatch db copy``: a database built by the real pipeline copied from SQLite to
PostgreSQL and back, printing the same ``matches``, ``stories``, ``search`` and
``alerts``; interrupted and resumed; new rows numbered on; refusals said."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from crawler.core.errors import StoreError
from crawler.store import SQLiteStore
from crawler.store.copying import NOT_COPIED, CopyError, Side, copy_database, plan
from crawler.store.migrate import Step
from crawler.store.postgres.copying import PostgresSide
from crawler.store.sqlite.copying import SQLiteSide
from crawler.store.sqlite.schema import STEPS
from tests.conftest import Project
from tests.feeds import Item
from tests.helpers import newswatch
from tests.postgres import fresh_database
from tests.servers import Receiver, Site
from tests.test_postgres_end_to_end import _TIME, configure, serve

#: What the copies must print alike: ids are shown by most of them.
SHOWN = (("matches",), ("matches", "--json"), ("stories",), ("stories", "--json"),
         ("search", "massoud"), ("search", "--json", "mass* NOT balkh"),
         ("search", "پنجشير"), ("search", "مسعود"), ("search", '"winter aid" OR tashkent'),
         ("search", "--watch", "Ahmad Massoud"), ("alerts",), ("mutes",))


@pytest.fixture
def dsn() -> Iterator[str]:
    with fresh_database() as made:
        yield made


def built(root: Path, site: Site, receiver: Receiver) -> Project:
    """A SQLite database as the daemon leaves it: articles, a story of two copies,
    matches, delivered alerts, the search index, a mute (an AUTOINCREMENT table)."""
    serve(site)
    project = Project(root)
    configure(project, site, receiver, "../data/test.db")
    project.cli("once", check=True)
    project.cli("mute", "watch", "Atta Mohammad Noor", "--for", "7d", "--by", "ed",
                check=True)
    return project


def on(root: Path, site: Site, receiver: Receiver, database: str) -> Project:
    project = Project(root)
    configure(project, site, receiver, database)
    return project


def copied(source: str, target: str, *args: str) -> dict[str, int]:
    """``db copy --json``: each table's rows."""
    result = newswatch("db", "copy", "--json", *args, source, target)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert all(t["before"] + t["copied"] == t["rows"] for t in report["tables"]), report
    return {t["table"]: t["rows"] for t in report["tables"]}


def printed(project: Project, *, times: bool = True) -> dict[tuple[str, ...], str]:
    """What each of ``SHOWN`` prints; without times when they differ by the seconds
    between polls of the same feed."""
    return {args: project.cli(*args, check=True).stdout if times else
            _TIME.sub("TIME", project.cli(*args, check=True).stdout) for args in SHOWN}


def later_poll(site: Site) -> None:
    now = datetime.now(UTC)
    serve(site, [Item("Dostum and Atta Mohammad Noor sign a declaration", site.url("/a/6"),
                      "The two leaders signed in Mazar-i-Sharif.", "r6", now),
                 Item("Ahmad Massoud in Dushanbe", site.url("/a/8"),
                      "Ahmad Massoud spoke in Dushanbe.", "r8", now)])


@pytest.mark.postgres
@pytest.mark.slow
def test_copied_to_postgresql_and_back_prints_the_same(tmp_path: Path, site: Site,
                                                       receiver: Receiver, dsn: str) -> None:
    sqlite_project = built(tmp_path / "sqlite", site, receiver)
    before = printed(sqlite_project)
    assert "Massoud" in before[("search", "massoud")]
    assert "مسعود" in before[("search", "پنجشير")], "Dari letter variants are one"

    tables = copied(str(sqlite_project.root / "data" / "test.db"), dsn)
    assert tables["articles"] == 5 and tables["stories"] >= 1 and tables["mutes"] == 1
    assert tables["matches"] > 0 and tables["outbox"] > 0 and tables["story_bands"] > 0
    assert not {"migrations", "article_search", "articles_fts"} & tables.keys()
    pg_project = on(tmp_path / "postgres", site, receiver, dsn)
    assert printed(pg_project) == before

    back = tmp_path / "back.db"
    assert copied(dsn, str(back)) == tables
    back_project = on(tmp_path / "back", site, receiver, str(back))
    assert printed(back_project) == before

    # new rows take fresh ids on every copy (sequences and AUTOINCREMENT set past the
    # copied ids): the same later poll numbers the same new stories and matches
    later_poll(site)
    for project in (sqlite_project, pg_project, back_project):
        project.cli("once", check=True)
        project.cli("mute", "watch", "Ahmad Massoud", "--for", "1d", "--by", "ed",
                    check=True)
    after = printed(sqlite_project, times=False)
    assert "Dushanbe" in after[("stories",)]
    assert printed(pg_project, times=False) == after
    assert printed(back_project, times=False) == after


@pytest.mark.postgres
@pytest.mark.slow
def test_an_interrupted_copy_resumes_where_it_stopped(tmp_path: Path, site: Site,
                                                      receiver: Receiver, dsn: str) -> None:
    """Stopped after every two batches of one row, in every step (tables, references
    filled in, search index), until a run completes: no row twice, none missing."""
    sqlite_project = built(tmp_path / "sqlite", site, receiver)
    source = str(sqlite_project.root / "data" / "test.db")
    runs = 0
    while True:
        runs += 1
        assert runs < 500, "a resumed copy makes progress"
        done = 0

        def stop(step: str, table: str) -> None:
            nonlocal done
            done += 1
            if done == 2:
                raise KeyboardInterrupt

        try:
            report = copy_database(source, dsn, batch=1, progress=stop)
        except KeyboardInterrupt:
            continue
        break
    assert runs > 20, f"every table was interrupted part way ({runs} runs)"
    assert report.resumed and report.indexed <= 2
    with psycopg.connect(dsn) as conn:
        urls = [u for u, in conn.execute("SELECT url FROM articles")]
        searched = conn.execute("SELECT count(*) FROM article_search").fetchone()
    assert len(urls) == len(set(urls)) == 5 and searched == (5,)
    pg_project = on(tmp_path / "postgres", site, receiver, dsn)
    assert printed(pg_project) == printed(sqlite_project)

    again = newswatch("db", "copy", source, dsn)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stdout and "every table's row count matches" in again.stdout


WRITTEN = ("INSERT INTO sources (name, url, next_check_at, created_at) VALUES "
           "('Written meanwhile', 'http://127.0.0.1/w', '2026-01-01', '2026-01-01')")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_copy_reads_one_snapshot_while_the_source_is_written(
        tmp_path: Path, site: Site, receiver: Receiver, dsn: str) -> None:
    """A row a daemon stores after the copy began is not in it, and the counts agree:
    SQLite's read transaction and PostgreSQL's REPEATABLE READ hold one state. The
    source is given as ${VAR} with a password, which no output shows."""
    source = built(tmp_path / "sqlite", site, receiver).root / "data" / "test.db"

    def writing(write: Callable[[], None]) -> Callable[[str, str], None]:
        def progress(step: str, table: str) -> None:
            if step == "copy" and table == "mutes":  # before sources are read
                write()
        return progress

    def on_sqlite() -> None:
        with sqlite3.connect(source) as conn:
            conn.execute(WRITTEN)

    copy_database(str(source), dsn, progress=writing(on_sqlite))
    with psycopg.connect(dsn) as conn:
        names = [n for n, in conn.execute("SELECT name FROM sources")]
    assert names == ["RSS One"]

    def on_postgres() -> None:
        with psycopg.connect(dsn) as conn:
            conn.execute(WRITTEN)

    back = tmp_path / "back.db"
    copy_database(dsn, str(back), progress=writing(on_postgres))
    with sqlite3.connect(back) as copy:
        assert copy.execute("SELECT name FROM sources").fetchall() == [("RSS One",)]

    secret = "pw-never-shown-5e1c"
    with_password = dsn.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    result = newswatch("db", "copy", "${NEWSWATCH_COPY_FROM}", str(tmp_path / "again.db"),
                       env={"NEWSWATCH_COPY_FROM": with_password})
    assert result.returncode == 0, result.stderr
    assert "postgresql://postgres:***@127.0.0.1" in result.stdout
    assert secret not in result.stdout + result.stderr
    refused = newswatch("db", "copy", "${NEWSWATCH_COPY_FROM}", str(back),
                        env={"NEWSWATCH_COPY_FROM": with_password})
    assert refused.returncode == 2 and "postgres:***@" in refused.stderr
    assert secret not in refused.stdout + refused.stderr


@pytest.mark.postgres
@pytest.mark.slow
def test_a_postgresql_target_holding_other_data_is_refused(
        tmp_path: Path, site: Site, receiver: Receiver, dsn: str) -> None:
    sqlite_project = built(tmp_path / "sqlite", site, receiver)
    other = on(tmp_path / "other", site, receiver, dsn)
    other.sources = [{"name": "Elsewhere", "feed": site.url("/rss.xml")}]
    other.cli("once", check=True)
    result = newswatch("db", "copy", str(sqlite_project.root / "data" / "test.db"), dsn)
    assert result.returncode == 2
    assert "already holds data that is not a part copy of" in result.stderr
    assert "copy into an empty database" in result.stderr


def test_a_copy_into_sqlite_resumes_and_refuses_other_data(
        tmp_path: Path, site: Site, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite to SQLite, no server needed: Ctrl-C keeps the batches committed and says
    how to go on; the same command goes on; a finished copy run again copies nothing;
    a target holding another database's rows, or another schema, is refused."""
    source = built(tmp_path / "sqlite", site, receiver).root / "data" / "test.db"
    target = tmp_path / "copy.db"
    inserted = 0
    insert = SQLiteSide.insert

    def interrupted(self: SQLiteSide, *args: Any) -> None:
        nonlocal inserted
        inserted += 1
        if inserted == 4:
            raise KeyboardInterrupt
        insert(self, *args)

    monkeypatch.setattr(SQLiteSide, "insert", interrupted)
    result = newswatch("db", "copy", "--batch-size", "1", str(source), str(target))
    assert result.returncode == 130
    assert "interrupted: every batch committed so far is kept; run the same command " \
        "again" in result.stderr
    monkeypatch.undo()
    result = newswatch("db", "copy", "--json", "--batch-size", "2", str(source), str(target))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed"] and sum(t["before"] for t in report["tables"]) == 3
    tables = {t["table"]: t["rows"] for t in report["tables"]}
    assert all(t["before"] + t["copied"] == t["rows"] for t in report["tables"])
    result = newswatch("db", "copy", "--json", str(source), str(target))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed"] and not any(t["copied"] for t in report["tables"])
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'mutes'"
                            ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM articles").fetchone() == (tables["articles"],)

    other = tmp_path / "other.db"
    store = SQLiteStore(other)
    store.close()
    with sqlite3.connect(other) as conn:  # a source of its own, as `sources` leaves one
        conn.execute("INSERT INTO sources (name, url, next_check_at, created_at) "
                     "VALUES ('Other', 'http://127.0.0.1/x', '2026-01-01', '2026-01-01')")
    result = newswatch("db", "copy", str(source), str(other))
    assert result.returncode == 2
    assert f"target {other} already holds data that is not a part copy of {source}" \
        in result.stderr

    older = tmp_path / "older.db"
    SQLiteStore(older, steps=STEPS[:-1]).close()
    result = newswatch("db", "copy", str(older), str(tmp_path / "new.db"))
    assert result.returncode == 2 and not (tmp_path / "new.db").exists()
    assert (f"source {older} has schema version {len(STEPS) - 1}, older than this "
            f"newswatch's ({len(STEPS)}): open it with this newswatch first") in result.stderr
    newer = tmp_path / "newer.db"
    SQLiteStore(newer, steps=[*STEPS, Step(len(STEPS) + 1, "a later step", lambda _: None)]).close()
    result = newswatch("db", "copy", str(source), str(newer))
    assert result.returncode == 2
    assert (f"target {newer} has schema version {len(STEPS) + 1}, newer than this "
            f"newswatch's ({len(STEPS)}): copy into an empty database") in result.stderr
    assert copied(str(source), str(older)) == tables, "an empty older target is migrated"
    with pytest.raises(StoreError, match="does not exist"):
        copy_database(str(tmp_path / "missing.db"), str(tmp_path / "new.db"))
    with pytest.raises(CopyError, match="the same database"):
        copy_database(str(source), str(source))


def test_tables_are_copied_in_foreign_key_order_with_the_circle_broken(
        tmp_path: Path) -> None:
    """Read from the catalog: a table follows those it references; the reference to its
    own table and the one closing stories ↔ articles (from the smaller table) wait."""
    SQLiteStore(tmp_path / "new.db").close()
    side = SQLiteSide(tmp_path / "new.db", must_exist=True)
    try:
        shapes = [s for s in side.tables() if s.name not in NOT_COPIED]
    finally:
        side.close()
    order = plan(shapes, {"stories": 10, "articles": 20})
    names = [p.shape.name for p in order]
    later = {p.shape.name: p.later for p in order if p.later}
    assert later == {"stories": ("first_article_id",), "articles": ("similar_to",)}
    for first, then in (("sources", "articles"), ("stories", "articles"),
                        ("articles", "matches"), ("outbox", "outbox_items"),
                        ("users", "sessions")):
        assert names.index(first) < names.index(then)
    assert "migrations" not in names and not any(n.startswith("articles_fts") for n in names)
    # the circle is broken on the side with fewer rows
    flipped = {p.shape.name: p.later for p in plan(shapes, {"stories": 30, "articles": 20})}
    assert flipped["articles"] == ("story_id", "similar_to")


@pytest.mark.postgres
def test_both_backends_have_the_same_tables_keys_and_references(tmp_path: Path,
                                                                 dsn: str) -> None:
    """What the copy reads from each catalog agrees, so every schema step (on both
    backends, with one number) keeps the databases copyable either way."""
    SQLiteStore(tmp_path / "new.db").close()
    sides: list[Side] = [SQLiteSide(tmp_path / "new.db", must_exist=True), PostgresSide(dsn)]
    try:
        sides[1].migrate()
        found = [{s.name: (set(s.columns), s.key, set(s.references)) for s in side.tables()
                  if s.name not in NOT_COPIED} for side in sides]
        assert [side.version() for side in sides] == [len(STEPS)] * 2
    finally:
        for side in sides:
            side.close()
    assert found[0] == found[1]
