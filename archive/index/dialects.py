"""What differs between the index database's engines, SQLite and PostgreSQL: one object each.

:class:`~archive.index.db.IndexDB` writes its SQL once, with ``?`` placeholders, and asks its
dialect for the rest: connecting, the driver's placeholder style, transactions, running a
script of DDL, column types and the DDL with no common form (the full-text table, append-only
triggers, an expression over a JSON column), the insert into the full-text table, full-text
queries, loading rows in bulk (how many were added, and their ids), the cache a loading
connection keeps, the columns a table has, the locks that serialise schema changes and
writers, and which driver errors become :class:`~archive.errors.IndexDatabaseError`.

The dialect is chosen by the index URL's scheme in one mapping, :data:`DIALECTS` (as the
store's backends are, :data:`archive.store.STORE_SCHEMES`); a path without a scheme is SQLite.
"""

from __future__ import annotations

import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

from archive.errors import ConfigError


class Dialect(ABC):
    """The part of the index database's SQL and driver use that differs between engines."""

    #: The dialect's name (``IndexDB.dialect``), for messages.
    name: str
    #: Column type of 64-bit integers (times in microseconds, offsets, sizes).
    big: str
    #: Definition of a table's generated integer key column.
    id_column: str
    #: What makes a text column compare byte by byte (SURT range queries need it).
    byte_order: str
    #: DDL of the full-text table ``texts`` (``capture_id``, ``body``).
    texts_table: str
    #: Inserts a page's text (``capture_id``, ``body``), once.
    insert_text: str

    @abstractmethod
    def connect(self, url: str) -> Any:
        """A connection to the database at ``url``, in autocommit mode."""

    @property
    @abstractmethod
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors, wrapped as :class:`~archive.errors.IndexDatabaseError`."""

    def placeholders(self, sql: str) -> str:
        """``sql``, written with ``?`` placeholders, as the driver takes it."""
        return sql

    @abstractmethod
    def executemany(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run ``sql`` once for each of ``rows``."""

    @abstractmethod
    def transaction(self, conn: Any, *, exclusive: bool) -> AbstractContextManager[None]:
        """One transaction; ``exclusive`` also serialises writers where the engine needs it."""

    @abstractmethod
    def schema_transaction(self, conn: Any, lock: int) -> AbstractContextManager[None]:
        """Around the creation of the index's own tables at every start (see the subclasses)."""

    @abstractmethod
    def run_script(self, conn: Any, script: str) -> None:
        """Run statements separated by ``;`` (DDL, no parameters), in the current transaction
        if there is one."""

    @abstractmethod
    def table_columns(self, conn: Any, table: str) -> set[str]:
        """The columns of ``table`` (empty when there is no such table)."""

    @abstractmethod
    def json_field(self, column: str, name: str) -> str:
        """An expression for the string field ``name`` of a JSON object held in ``column``."""

    def lock_schema(self, key: int) -> str | None:
        """SQL that waits for other connections' schema changes under ``key`` (in a
        transaction, until it ends); None when the engine needs none."""
        return None

    def lock_table(self, table: str) -> str | None:
        """SQL that keeps other connections from writing ``table`` until an exclusive
        transaction ends; None when such a transaction does that already."""
        return None

    @abstractmethod
    def append_only(self, table: str, message: str) -> str:
        """DDL of triggers that refuse UPDATE and DELETE on ``table`` with ``message``."""

    @abstractmethod
    def prepare_loading(self, conn: Any) -> None:
        """Set up a connection that is about to load many rows (once per connection)."""

    @abstractmethod
    def insert_captures(
        self, conn: Any, sql: str, key: str, rows: list[tuple[Any, ...]], *, ids: bool
    ) -> tuple[int, int | None]:
        """Run the insert ``sql`` (which skips rows already there) for the rows of the WARC
        ``key``: the rows added, and, when ``ids`` is asked and the engine knows it, the id of
        the first (rows inserted in one go then have consecutive ids); else None."""

    @abstractmethod
    def search(self, query: str, limit: int, offset: int) -> tuple[str, tuple[Any, ...]] | None:
        """SQL and parameters of a full-text search, columns (capture id, url, ts, snippet,
        record id), best first; None when ``query`` has nothing to search for."""


class SqliteDialect(Dialect):
    """SQLite (the embedded default): one file, FTS5 for full text; one writer at a time."""

    name = "sqlite"
    big = "INTEGER"
    id_column = "INTEGER PRIMARY KEY"  # SQLite's rowid
    byte_order = ""  # SQLite compares text byte by byte unless told otherwise
    texts_table = """CREATE VIRTUAL TABLE IF NOT EXISTS texts USING fts5(
    body, capture_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);"""
    # An FTS5 table has no unique constraint to skip on: a capture's text is added with it.
    insert_text = "INSERT INTO texts (capture_id, body) VALUES (?, ?)"

    def connect(self, url: str) -> sqlite3.Connection:
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def executemany(
        self, conn: sqlite3.Connection, sql: str, rows: Iterable[Sequence[Any]]
    ) -> None:
        conn.executemany(sql, rows)

    @contextmanager
    def transaction(self, conn: sqlite3.Connection, *, exclusive: bool) -> Iterator[None]:
        # IMMEDIATE takes the write lock at once (waiting for it), so two writers never
        # deadlock upgrading their read locks.
        conn.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_transaction(
        self, conn: sqlite3.Connection, lock: int
    ) -> AbstractContextManager[None]:
        # None: each statement on its own, so opening an index whose tables exist takes no
        # write lock and never waits for a process that is loading it.
        return nullcontext()

    def run_script(self, conn: sqlite3.Connection, script: str) -> None:
        # Statement by statement: executescript() would first commit a transaction under way.
        for statement in _statements(script):
            conn.execute(statement)

    def table_columns(self, conn: sqlite3.Connection, table: str) -> set[str]:
        return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}

    def json_field(self, column: str, name: str) -> str:
        return f"""json_extract({column}, '$."{name}"')"""

    def append_only(self, table: str, message: str) -> str:
        raise_it = f"BEGIN SELECT RAISE(ABORT, {_literal(message)}); END;"
        return (
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}\n"
            f"{raise_it}\n"
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}\n"
            f"{raise_it}\n"
        )

    def prepare_loading(self, conn: sqlite3.Connection) -> None:
        # A loading connection keeps index pages in memory (default 2 MB; 256 MB cut the
        # insert time by 40% at a million rows); readers keep the default.
        conn.execute("PRAGMA cache_size=-262144")

    def insert_captures(
        self,
        conn: sqlite3.Connection,
        sql: str,
        key: str,
        rows: list[tuple[Any, ...]],
        *,
        ids: bool,
    ) -> tuple[int, int | None]:
        # SQLite counts the rows an INSERT added (not those ON CONFLICT skipped), and gives
        # rows inserted in one go consecutive ids: no count or id query needed.
        before = conn.total_changes
        conn.executemany(sql, rows)
        added = conn.total_changes - before
        if not ids or not added or added != len(rows):
            return added, None
        last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
        return added, last - added + 1

    def search(self, query: str, limit: int, offset: int) -> tuple[str, tuple[Any, ...]] | None:
        match = fts5_query(query)
        if not match:
            return None
        sql = (
            "SELECT c.id, c.url, c.ts, snippet(texts, 0, '[[', ']]', '…', 24), c.record_id "
            "FROM texts JOIN captures c ON c.id = texts.capture_id "
            "WHERE texts MATCH ? ORDER BY rank, c.ts DESC LIMIT ? OFFSET ?"
        )
        return sql, (match, limit, offset)


class PostgresDialect(Dialect):
    """PostgreSQL (shared deployments): ``tsvector`` full text; psycopg, imported when used."""

    name = "postgresql"
    big = "BIGINT"
    id_column = "BIGSERIAL PRIMARY KEY"
    byte_order = ' COLLATE "C"'
    texts_table = """CREATE TABLE IF NOT EXISTS texts (
    capture_id BIGINT PRIMARY KEY REFERENCES captures (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);
CREATE INDEX IF NOT EXISTS texts_tsv ON texts USING GIN (tsv);"""
    insert_text = (
        "INSERT INTO texts (capture_id, body) VALUES (?, ?) ON CONFLICT (capture_id) DO NOTHING"
    )

    def connect(self, url: str) -> Any:
        import psycopg

        return psycopg.connect(url, autocommit=True)

    @cached_property
    def errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    def placeholders(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def executemany(self, conn: Any, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(self.placeholders(sql), list(rows))

    @contextmanager
    def transaction(self, conn: Any, *, exclusive: bool) -> Iterator[None]:
        # Writers that must not interleave take a lock of their own (lock_table, lock_schema).
        with conn.transaction():
            yield

    @contextmanager
    def schema_transaction(self, conn: Any, lock: int) -> Iterator[None]:
        # Two processes creating the schema at once would collide: serialise them.
        with conn.transaction():
            conn.execute(self.lock_schema(lock))
            yield

    def run_script(self, conn: Any, script: str) -> None:
        conn.execute(script)  # no parameters: psycopg sends the statements as one query

    def table_columns(self, conn: Any, table: str) -> set[str]:
        found = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND table_schema = current_schema()",
            (table,),
        )
        return {str(name) for (name,) in found}

    def json_field(self, column: str, name: str) -> str:
        return f"({column}::jsonb ->> {_literal(name)})"

    def lock_schema(self, key: int) -> str:
        return f"SELECT pg_advisory_xact_lock({int(key)})"

    def lock_table(self, table: str) -> str:
        return f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"

    def append_only(self, table: str, message: str) -> str:
        return (
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$\n"
            f"BEGIN RAISE EXCEPTION {_literal(message)}; END; $$ LANGUAGE plpgsql;\n"
            f"DROP TRIGGER IF EXISTS {table}_no_change ON {table};\n"
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}\n"
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only();\n"
        )

    def prepare_loading(self, conn: Any) -> None:
        pass  # the server's caches are the server's business

    def insert_captures(
        self, conn: Any, sql: str, key: str, rows: list[tuple[Any, ...]], *, ids: bool
    ) -> tuple[int, int | None]:
        # The rows added are counted (rows of other WARCs never change this one's count); their
        # ids are read back by the caller.
        def count() -> int:
            found = conn.execute("SELECT count(*) FROM captures WHERE warc_key = %s", (key,))
            return int(found.fetchone()[0])

        before = count()
        self.executemany(conn, sql, rows)
        return count() - before, None

    def search(self, query: str, limit: int, offset: int) -> tuple[str, tuple[Any, ...]] | None:
        sql = (
            "SELECT c.id, c.url, c.ts, ts_headline('simple', t.body, q, "
            "'StartSel=[[, StopSel=]], MaxWords=30, MinWords=12, MaxFragments=2'), c.record_id "
            "FROM texts t JOIN captures c ON c.id = t.capture_id, "
            "websearch_to_tsquery('simple', ?) q WHERE t.tsv @@ q "
            "ORDER BY ts_rank(t.tsv, q) DESC, c.ts DESC LIMIT ? OFFSET ?"
        )
        return sql, (query, limit, offset)


SQLITE = SqliteDialect()
POSTGRESQL = PostgresDialect()

#: The dialect of each index URL scheme; a path without a scheme is SQLite's.
DIALECTS: dict[str, Dialect] = {
    "sqlite": SQLITE,
    "postgresql": POSTGRESQL,
    "postgres": POSTGRESQL,
}


def dialect_for(url: str) -> Dialect:
    """The dialect of an index URL: a file path, ``sqlite:///path`` or ``postgresql://...``."""
    scheme, sep, _ = url.partition("://")
    dialect = DIALECTS.get(scheme if sep else "sqlite")
    if dialect is None:
        raise ConfigError(f"ATTEST_INDEX={url!r}: {_USE}")
    return dialect


def dialect_named(name: str) -> Dialect:
    """The dialect called ``name`` (``sqlite``, ``postgresql``)."""
    return {d.name: d for d in DIALECTS.values()}[name]


_USE = "use a file path, sqlite:///path or postgresql://user@host/db"


def sqlite_path(url: str) -> Path:
    if url.startswith("sqlite:///"):
        return (
            Path(url[len("sqlite:///") - 1 :])
            if url.startswith("sqlite:////")
            else Path(url[len("sqlite:///") :])
        )
    if "://" in url:
        raise ConfigError(f"ATTEST_INDEX={url!r}: {_USE}")
    return Path(url)


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def fts5_query(query: str) -> str:
    """A user's words and "phrases" as an FTS5 query (all must match), with no operators."""
    terms = []
    for phrase, word in _TERM.findall(query):
        text = (phrase or word).replace('"', "")
        tokens = re.findall(r"\w+", text)
        if tokens:
            terms.append('"' + " ".join(tokens) + '"')
    return " ".join(terms)


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQLite script (a trigger's ``BEGIN ... END;`` is one)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
