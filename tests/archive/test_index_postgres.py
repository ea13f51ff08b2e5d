"""The index on PostgreSQL: the same loads, queries, search and custody log as on SQLite.

PostgreSQL runs on this machine (``ATTEST_TEST_PG``, default 127.0.0.1:5432, user root, trust
auth). This module creates databases of its own (``attest_test_<hex>``) and drops them at the
end; both backends index the same WARCs and must answer every CDX query with the same rows.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.indexwarcs import (
    GZIP_URL,
    POST_URL,
    Sample,
    sample_warc,
    series_warcs,
)

from archive.custody.log import GENESIS, CustodyLog, check_chain
from archive.errors import IndexDatabaseError
from archive.index.db import COLUMNS, IndexDB
from archive.index.query import parse_query, run_query
from archive.ingest.indexer import index_keys, index_warc, rebuild
from archive.store import FileStore, file_sha256

ADMIN_DSN = os.environ.get("ATTEST_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
SAMPLE_KEY = "warcs/src/2026/11/28/sample-00000.warc.gz"


@pytest.fixture(scope="module")
def new_database() -> Iterator[Callable[[], str]]:
    """Makes empty PostgreSQL databases (URLs) for this module; drops them all at its end."""
    made: list[str] = []

    def make() -> str:
        name = f"attest_test_{uuid.uuid4().hex}"
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"

    yield make
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (made,)
        ).fetchall()
    assert left == []


@pytest.fixture(scope="module")
def warcs(tmp_path_factory: pytest.TempPathFactory) -> tuple[FileStore, list[str], Sample]:
    """A store with the sample WARC and the capture series, shared by both backends."""
    directory = tmp_path_factory.mktemp("warcs")
    store = FileStore(directory / "store")
    sample = sample_warc(directory)
    store.put_file(SAMPLE_KEY, sample.path, file_sha256(sample.path))
    keys = [SAMPLE_KEY]
    for path, key in series_warcs(directory):
        store.put_file(key, path, file_sha256(path))
        keys.append(key)
    return store, keys, sample


@pytest.fixture(scope="module")
def backends(
    warcs: tuple[FileStore, list[str], Sample],
    new_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, IndexDB]]:
    """Both backends, each with every WARC indexed."""
    store, keys, _ = warcs
    dbs = {
        "sqlite": IndexDB(str(tmp_path_factory.mktemp("sqlite") / "index.sqlite")),
        "postgresql": IndexDB(new_database()),
    }
    for db in dbs.values():
        results = index_keys(db, store, keys)
        assert [r.error for r in results] == [None] * len(keys)
    yield dbs
    for db in dbs.values():
        db.close()


def all_rows(db: IndexDB) -> list[tuple[Any, ...]]:
    return db.rows(f"SELECT {', '.join(COLUMNS)} FROM captures ORDER BY warc_key, warc_offset")


def all_texts(db: IndexDB) -> list[tuple[Any, ...]]:
    return db.rows(
        "SELECT c.warc_key, c.warc_offset, t.body FROM texts t "
        "JOIN captures c ON c.id = t.capture_id ORDER BY 1, 2"
    )


def warc_table(db: IndexDB) -> list[tuple[Any, ...]]:
    return db.rows(
        "SELECT warc_key, sha256, size, records, run_id, source, warcinfo, cdxj_key "
        "FROM warcs ORDER BY warc_key"
    )


def test_the_backend_is_postgresql(backends: dict[str, IndexDB]) -> None:
    pg = backends["postgresql"]
    assert pg.dialect == "postgresql"
    (version,) = pg.rows("SHOW server_version")[0]
    assert int(str(version).split(".")[0]) >= 13
    assert pg.counts() == backends["sqlite"].counts()
    assert pg.counts()["warcs"] == 3


def test_both_backends_hold_identical_rows(backends: dict[str, IndexDB]) -> None:
    sqlite, pg = backends["sqlite"], backends["postgresql"]
    rows = all_rows(pg)
    assert len(rows) == 12 + 24
    assert rows == all_rows(sqlite)
    assert all_texts(pg) == all_texts(sqlite)
    assert warc_table(pg) == warc_table(sqlite)
    assert {type(v) for row in rows for v in row if v is not None} <= {str, int}


def test_loading_again_changes_nothing_on_postgresql(
    backends: dict[str, IndexDB], warcs: tuple[FileStore, list[str], Sample]
) -> None:
    store, keys, _ = warcs
    pg = backends["postgresql"]
    before = (all_rows(pg), all_texts(pg), pg.counts())
    assert all(r.skipped for r in index_keys(pg, store, keys))
    forced = index_keys(pg, store, keys, force=True)
    assert [r.added for r in forced] == [0, 0, 0]
    assert [r.rows for r in forced] == [12, 20, 4]
    assert (all_rows(pg), all_texts(pg), pg.counts()) == before


def test_select_and_lookups_on_postgresql(
    backends: dict[str, IndexDB], warcs: tuple[FileStore, list[str], Sample]
) -> None:
    _, _, sample = warcs
    for db in backends.values():
        rows = db.select(low="com,example)/news/harbour.html", high=None, exact=True)
        assert [r.record_type for r in rows] == ["request", "response"]
        post = db.by_record_id(sample.post.response.record_id)
        assert post is not None
        assert (post.url, post.platform, post.account, post.post_id) == (
            POST_URL,
            "mastodon",
            "alice",
            "42",
        )
        assert len(db.concurrent_with(post.record_id)) == 3
        assert [r.url for r in db.by_run(sample_run(db))][:1] == [GZIP_URL]
        assert db.warc(SAMPLE_KEY) is not None
    pg, sqlite = backends["postgresql"], backends["sqlite"]
    assert pg.by_run(sample_run(pg)) == sqlite.by_run(sample_run(sqlite))


def sample_run(db: IndexDB) -> str:
    warc = db.warc(SAMPLE_KEY)
    assert warc is not None
    return str(warc["run_id"])


CDX_QUERIES: list[dict[str, list[str]]] = [
    {"url": ["http://example.com/"]},
    {"url": ["https://www.example.com/"]},
    {"url": ["example.com/path/*"]},
    {"url": ["example.com/path"], "matchType": ["prefix"]},
    {"url": ["example.com"], "matchType": ["host"]},
    {"url": ["*.example.com"]},
    {"url": ["example.com"], "matchType": ["domain"], "limit": ["3"]},
    {"url": ["com"], "matchType": ["domain"]},
    {"url": ["example.com/"], "from": ["20261101100000"], "to": ["20261101103000"]},
    {"url": ["example.com/"], "from": ["2026-11-15"]},
    {"url": ["*.example.com"], "from": ["20261103"], "to": ["20261106"]},
    {"url": ["example.com/"], "closest": ["20261114"]},
    {"url": ["example.com/"], "closest": ["20261114"], "limit": ["2"]},
    {"url": ["*.example.com"], "closest": ["20261105"]},
    {"url": ["example.com/"], "sort": ["reverse"]},
    {"url": ["*.example.com"], "reverse": ["true"], "limit": ["4"]},
    {"url": ["*.example.com"], "filter": ["mime:image"]},
    {"url": ["*.example.com"], "filter": ["=status:404"]},
    {"url": ["*.example.com"], "filter": ["!mime:html", "!=status:404"]},
    {"url": ["*.example.com"], "filter": ["~url:http://example\\.com/path/"]},
    {"url": ["example.com/"], "collapse": ["digest"]},
    {"url": ["example.com/"], "collapse": ["timestamp:10"]},
    {"url": ["*.example.com"], "collapse": ["urlkey"]},
    {"url": ["*.example.com"], "collapse": ["timestamp:6"], "reverse": ["true"]},
    {"url": ["social.example/@alice/42"]},
    {"url": ["urn:text:https://social.example/@alice/42"]},
    {"url": ["example.com/' OR 1=1 --"]},
]


@pytest.mark.parametrize(
    "params",
    CDX_QUERIES,
    ids=["&".join(f"{k}={v}" for k, vs in q.items() for v in vs) for q in CDX_QUERIES],
)
def test_cdx_queries_answer_the_same_on_both_backends(
    backends: dict[str, IndexDB], params: dict[str, list[str]]
) -> None:
    query = parse_query(params)
    answers = {name: list(run_query(db, query)) for name, db in backends.items()}
    assert answers["postgresql"] == answers["sqlite"]
    if "OR 1=1" not in params["url"][0]:
        assert answers["postgresql"], "the query should find something"
    else:
        assert answers["postgresql"] == []


def test_full_text_search_through_postgresql(
    backends: dict[str, IndexDB], warcs: tuple[FileStore, list[str], Sample]
) -> None:
    _, _, sample = warcs
    pg = backends["postgresql"]
    (hit,) = pg.search("referendum")
    assert hit.url == POST_URL
    assert hit.record_id == sample.post.response.record_id
    assert "[[referendum]]" in hit.snippet
    assert "Statement" in hit.snippet
    (diesel,) = pg.search("diesel")
    assert diesel.url == GZIP_URL
    assert "[[diesel]]" in diesel.snippet
    assert pg.search("scriptword") == []
    assert pg.search("Loading") == []
    assert pg.search("' OR 1=1 --") == []
    assert [h.url for h in pg.search("front page version")] == [
        "http://example.com/",
    ] * 4
    sqlite = backends["sqlite"]
    for words in ("referendum", "diesel", "tanker reef", "front page", '"reaches the harbour"'):
        assert {h.record_id for h in pg.search(words)} == {
            h.record_id for h in sqlite.search(words)
        }, words
    # Host names in text: PostgreSQL's parser keeps "sub.example.com" as one token, FTS5 splits
    # it into words, so SQLite finds more pages for "example.com" (never fewer).
    pg_hosts = {h.url for h in pg.search("example.com")}
    assert "http://example.com/path/a" in pg_hosts
    assert pg_hosts <= {h.url for h in sqlite.search("example.com")}


def test_rebuild_on_postgresql_equals_the_incremental_index(
    warcs: tuple[FileStore, list[str], Sample], new_database: Callable[[], str]
) -> None:
    store, keys, _ = warcs
    with IndexDB(new_database()) as pg:
        custody = CustodyLog(pg, store=None)
        index_keys(pg, store, keys, custody=custody)
        rows, texts, log = all_rows(pg), all_texts(pg), list(custody.entries())
        results = rebuild(pg, store, custody=custody)
        assert [r.added for r in results] == [20, 4, 12]  # the store's keys, sorted
        assert all_rows(pg) == rows
        assert all_texts(pg) == texts
        assert list(custody.entries())[: len(log)] == log
        assert custody.verify() == []


def test_custody_log_on_postgresql(
    new_database: Callable[[], str], tmp_path: Path, warcs: tuple[FileStore, list[str], Sample]
) -> None:
    store = FileStore(tmp_path / "custody-store")
    with IndexDB(new_database()) as pg:
        log = CustodyLog(pg, store)
        entries = [log.append("read", f"obj-{i}", {"i": i, "who": "Ōtaki"}) for i in range(5)]
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert entries[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
        assert log.verify() == []
        for sql in ("UPDATE custody_log SET actor = 'mallory'", "DELETE FROM custody_log"):
            with pytest.raises(IndexDatabaseError, match="append-only"):
                pg.execute(sql)
        assert list(log.entries()) == entries
        key = log.seal()
        assert key is not None
        assert key.endswith("000000000001-000000000005.jsonl")
        pg.drop_index()  # a rebuild never touches the log
        assert list(log.entries()) == entries
        # A second CustodyLog on the same database (a second process) keeps the same chain.
        assert CustodyLog(pg, store).append("read", "obj-5").seq == 6

    with IndexDB(new_database()) as fresh:
        restored = CustodyLog(fresh, store)
        assert [e.seq for e in restored.entries()] == [1, 2, 3, 4, 5]
        assert list(restored.entries()) == entries
        following = restored.append("read", "after-restore")
        assert (following.seq, following.prev_hash) == (6, entries[-1].hash)
        assert restored.verify() == []
        assert check_chain(restored.entries()) == []


def test_index_warc_on_postgresql_logs_custody(
    warcs: tuple[FileStore, list[str], Sample], new_database: Callable[[], str]
) -> None:
    store, _, sample = warcs
    with IndexDB(new_database()) as pg:
        custody = CustodyLog(pg)
        result = index_warc(pg, store, SAMPLE_KEY, custody=custody)
        assert (result.added, result.texts) == (12, 3)
        again = index_warc(pg, store, SAMPLE_KEY, custody=custody, force=True)
        assert again.added == 0
        events = custody.for_object(store.object_uri(SAMPLE_KEY))
        assert [e.action for e in events] == ["capture", "index", "index"]
        assert [e.details["added"] for e in events[1:]] == [12, 0]
        assert {e.details["sha256"] for e in events} == {file_sha256(sample.path)}


def test_a_bad_postgresql_url_is_an_index_error_without_the_password() -> None:
    with pytest.raises(IndexDatabaseError) as caught:
        IndexDB("postgresql://root:hunter2@127.0.0.1:1/nowhere?connect_timeout=2")
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)
