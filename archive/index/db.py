"""The index database: SQLite (embedded default) or PostgreSQL (shared deployments).

One table of records (``captures``), one of indexed WARCs (``warcs``), one of the records
indexing left out (``index_problems``) and one of page texts for full-text search (SQLite FTS5
/ PostgreSQL ``tsvector``; docs/adr/0002-search.md says why).
The custody log has tables of its own in the same database (:mod:`archive.custody.log`), which
:meth:`IndexDB.drop_index` never touches.

Rows are unique per ``(warc_key, warc_offset)``: loading the same WARC twice changes nothing.
Times are integer microseconds (UTC). SQL is written once with ``?`` placeholders; what differs
between the engines (connecting, placeholders, types, full text, bulk loading, locks) is the
dialect's, chosen by the URL's scheme (:mod:`archive.index.dialects`).
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from archive.errors import IndexDatabaseError
from archive.index.cdxj import IndexRow, WarcIndex
from archive.index.dialects import Dialect, dialect_for, dialect_named

#: Row fields whose column is named otherwise.
_COLUMN_NAMES = {"offset": "warc_offset"}
_FIELDS = tuple(f.name for f in fields(IndexRow))
#: Columns of ``captures`` in order (after ``id``): :class:`IndexRow`'s fields, in its order.
COLUMNS = tuple(_COLUMN_NAMES.get(name, name) for name in _FIELDS)
_SELECT_CAPTURES = f"SELECT {', '.join(COLUMNS)} FROM captures"  # noqa: S608 - constant columns

# One schema for both databases, in the dialect's types; the full-text table is the dialect's.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS warcs (
    warc_key TEXT PRIMARY KEY,
    sha256 TEXT,
    size {big},
    records INTEGER NOT NULL,
    run_id TEXT,
    source TEXT,
    warcinfo TEXT,
    cdxj_key TEXT,
    indexed_at TEXT NOT NULL,
    version_id TEXT,
    problems INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS captures (
    id {id_column},
    surt TEXT{byte_order} NOT NULL, url TEXT NOT NULL, ts {big} NOT NULL, status INTEGER,
    mime TEXT NOT NULL, digest TEXT, record_type TEXT NOT NULL, record_id TEXT NOT NULL,
    warc_key TEXT NOT NULL, warc_offset {big} NOT NULL, length {big} NOT NULL,
    source TEXT, run_id TEXT, ip TEXT, concurrent_to TEXT,
    platform TEXT, account TEXT, post_id TEXT, block_digest TEXT, outcome TEXT,
    UNIQUE (warc_key, warc_offset)
);
CREATE TABLE IF NOT EXISTS index_problems (
    warc_key TEXT NOT NULL, warc_offset {big} NOT NULL, record_id TEXT, record_type TEXT,
    target_uri TEXT, check_name TEXT NOT NULL, detail TEXT NOT NULL, found_at TEXT NOT NULL,
    UNIQUE (warc_key, warc_offset, check_name)
);
CREATE INDEX IF NOT EXISTS captures_surt_ts ON captures (surt, ts);
CREATE INDEX IF NOT EXISTS captures_record_id ON captures (record_id);
CREATE INDEX IF NOT EXISTS captures_concurrent ON captures (concurrent_to)
    WHERE concurrent_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS warcs_run ON warcs (run_id);
CREATE INDEX IF NOT EXISTS warcs_airflow_run ON warcs ({airflow_run});
{texts}
"""


def _schema(dialect: Dialect) -> str:
    return _SCHEMA.format(
        big=dialect.big,
        id_column=dialect.id_column,
        byte_order=dialect.byte_order,
        # The Airflow run id in a WARC's warcinfo, as run_warcs() asks for it.
        airflow_run=dialect.json_field("warcinfo", "airflow-run-id"),
        texts=dialect.texts_table,
    )


#: PostgreSQL advisory locks under which schemas change: the index's tables, and the tables
#: other modules keep in this database (:meth:`IndexDB.lock_schema`).
_INDEX_SCHEMA_LOCK = 7304811
_OTHER_SCHEMA_LOCK = 7304812


@dataclass(frozen=True)
class SearchHit:
    capture_id: int
    url: str
    ts: int
    snippet: str
    record_id: str


#: Columns of ``warcs`` in order, as :meth:`IndexDB.run_warcs` and :meth:`IndexDB.warc` give them.
RUN_WARC_COLUMNS = (
    "warc_key",
    "sha256",
    "size",
    "records",
    "run_id",
    "source",
    "warcinfo",
    "cdxj_key",
    "indexed_at",
    "version_id",
    "problems",
)
_INSERT_CAPTURES = (
    f"INSERT INTO captures ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "  # noqa: S608 - constant columns; values are bound
    "ON CONFLICT (warc_key, warc_offset) DO NOTHING"
)
_INSERT_WARC = (
    f"INSERT INTO warcs ({', '.join(RUN_WARC_COLUMNS)}) "  # noqa: S608 - constant columns; values are bound
    f"VALUES ({', '.join('?' * len(RUN_WARC_COLUMNS))}) ON CONFLICT (warc_key) DO NOTHING"
)
_RECORD_ID = COLUMNS.index("record_id")
#: Columns added since the first schema: (table, column, type), added to older databases.
_ADDED_COLUMNS = (
    ("warcs", "version_id", "TEXT"),
    ("warcs", "problems", "INTEGER NOT NULL DEFAULT 0"),
    ("captures", "outcome", "TEXT"),
)


def run_warcs_query(dialect: Dialect | str, run: str) -> tuple[str, tuple[str, ...]]:
    """SQL and parameters of :meth:`IndexDB.run_warcs` (an index serves both forms of ``run``);
    ``dialect``: the database's, or its name."""
    if isinstance(dialect, str):
        dialect = dialect_named(dialect)
    dag_id, sep, airflow_run = run.partition("/")
    params: tuple[str, ...]
    if not sep:
        where, params = "run_id = ?", (run,)
    else:
        where = (
            f"{dialect.json_field('warcinfo', 'airflow-run-id')} = ? AND "
            f"{dialect.json_field('warcinfo', 'airflow-dag-id')} = ?"
        )
        params = (airflow_run, dag_id)
    columns = ", ".join(RUN_WARC_COLUMNS)
    return f"SELECT {columns} FROM warcs WHERE {where} ORDER BY warc_key", params  # noqa: S608 - constant columns; values are bound


class IndexDB:
    """A connection to the index database, safe to share between threads (one lock)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._prepared_for_loading = False
        try:
            #: What differs in this database's SQL (see :mod:`archive.index.dialects`).
            self.sql = dialect_for(url)
            self._conn = self.sql.connect(url)
        except Exception as exc:  # the driver's errors, a missing driver, a bad path or URL
            raise IndexDatabaseError(
                f"cannot open the index database {redact(url)}: {exc}"
            ) from exc
        self.ensure_schema()

    @property
    def dialect(self) -> str:
        """The database's dialect by name: ``sqlite`` or ``postgresql``."""
        return self.sql.name

    # --- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> IndexDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _wrapped(self, *more: type[Exception]) -> Iterator[None]:
        """The driver's errors (and ``more``) raised as IndexDatabaseError."""
        try:
            yield
        except (*self.sql.errors, *more) as exc:
            raise IndexDatabaseError(f"index database: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock, self._wrapped(ValueError):
            return self._conn.execute(self.sql.placeholders(sql), params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self.execute(sql, params).fetchall())

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[None]:
        """One transaction; ``exclusive`` also serialises writers (custody appends)."""
        with self._lock, self.sql.transaction(self._conn, exclusive=exclusive):
            yield

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock, self._wrapped():
            self.sql.executemany(self._conn, sql, rows)

    def execute_script(self, script: str) -> None:
        """Run DDL statements separated by ``;`` (no parameters), in the transaction under
        way if there is one."""
        with self._lock, self._wrapped():
            self.sql.run_script(self._conn, script)

    def table_columns(self, table: str) -> set[str]:
        """The columns of ``table`` (empty when there is no such table)."""
        with self._lock, self._wrapped():
            return self.sql.table_columns(self._conn, table)

    def lock_schema(self) -> None:
        """In a transaction that creates or changes tables of its own module (the custody
        log's, claim links): wait until no other connection is doing so (PostgreSQL: an
        advisory lock until the transaction ends; SQLite needs none)."""
        statement = self.sql.lock_schema(_OTHER_SCHEMA_LOCK)
        if statement is not None:
            self.execute(statement)

    def lock_table(self, table: str) -> None:
        """In a ``transaction(exclusive=True)``: no other connection writes ``table`` until it
        ends (PostgreSQL: a table lock; in SQLite such a transaction holds the one writer lock
        already)."""
        statement = self.sql.lock_table(table)
        if statement is not None:
            self.execute(statement)

    def ensure_schema(self) -> None:
        with (
            self._lock,
            self._wrapped(),
            self.sql.schema_transaction(self._conn, _INDEX_SCHEMA_LOCK),
        ):
            # An index made by an earlier attest: its tables get the newer columns first.
            for table, column, kind in _ADDED_COLUMNS:
                have = self.sql.table_columns(self._conn, table)
                if have and column not in have:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            self.sql.run_script(self._conn, _schema(self.sql))

    # --- loading ----------------------------------------------------------------------------

    def is_indexed(self, warc_key: str) -> bool:
        return bool(self.rows("SELECT 1 FROM warcs WHERE warc_key = ?", (warc_key,)))

    def load(
        self,
        index: WarcIndex,
        *,
        sha256: str | None,
        size: int | None,
        cdxj_key: str | None,
        indexed_at: str,
    ) -> int:
        """Insert a WARC's rows and texts in one transaction; returns the rows added."""
        return self.load_values(
            index.key,
            [row_values(row) for row in index.rows],
            index.texts,
            warc={
                "sha256": sha256,
                "size": size,
                "run_id": index.run_id,
                "source": index.source,
                "warcinfo": index.warcinfo,
                "cdxj_key": cdxj_key,
                "indexed_at": indexed_at,
            },
        )

    def load_values(
        self,
        key: str,
        values: list[tuple[Any, ...]],
        texts: dict[str, str],
        *,
        warc: dict[str, Any],
    ) -> int:
        """:meth:`load` for rows given as :func:`row_values` tuples (as worker processes send)."""
        import json

        with self._lock, self._wrapped():
            if not self._prepared_for_loading:
                self.sql.prepare_loading(self._conn)
                self._prepared_for_loading = True
        with self.transaction():
            with self._wrapped():
                added, first_id = self.sql.insert_captures(
                    self._conn, _INSERT_CAPTURES, key, values, ids=bool(texts)
                )
            if texts and added:
                if first_id is not None:
                    ids = {row[_RECORD_ID]: first_id + i for i, row in enumerate(values)}
                else:
                    ids = dict(
                        self.rows("SELECT record_id, id FROM captures WHERE warc_key = ?", (key,))
                    )
                pairs = [(ids[rid], body) for rid, body in texts.items() if rid in ids]
                self.executemany(self.sql.insert_text, pairs)
            problems = warc.get("problems") or []
            warc_row = {
                **{column: warc.get(column) for column in RUN_WARC_COLUMNS},
                "warc_key": key,
                "records": len(values),
                "warcinfo": json.dumps(warc.get("warcinfo") or {}, sort_keys=True),
                "indexed_at": warc["indexed_at"],
                "problems": len(problems),
            }
            self.execute(_INSERT_WARC, [warc_row[column] for column in RUN_WARC_COLUMNS])
            if problems:
                self.executemany(
                    "INSERT INTO index_problems (warc_key, warc_offset, record_id, record_type, "
                    "target_uri, check_name, detail, found_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (warc_key, warc_offset, check_name) DO NOTHING",
                    [
                        (
                            key,
                            p["offset"],
                            p.get("record_id"),
                            p.get("record_type"),
                            p.get("target_uri"),
                            p["check"],
                            p["detail"],
                            warc["indexed_at"],
                        )
                        for p in problems
                    ],
                )
        return added

    def problems(self, warc_key: str | None = None) -> list[dict[str, Any]]:
        """The records indexing left out because a check failed (all WARCs', or one's)."""
        names = (
            "warc_key",
            "offset",
            "record_id",
            "record_type",
            "target_uri",
            "check",
            "detail",
            "found_at",
        )
        sql = (
            "SELECT warc_key, warc_offset, record_id, record_type, target_uri, check_name, "
            "detail, found_at FROM index_problems"
        )
        params: tuple[Any, ...] = ()
        if warc_key is not None:
            sql += " WHERE warc_key = ?"
            params = (warc_key,)
        rows = self.rows(sql + " ORDER BY warc_key, warc_offset", params)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def drop_index(self) -> None:
        """Empty the index tables (not the custody log's) before a rebuild."""
        with self.transaction():
            self.execute("DELETE FROM texts")
            self.execute("DELETE FROM captures")
            self.execute("DELETE FROM index_problems")
            self.execute("DELETE FROM warcs")

    # --- reading ----------------------------------------------------------------------------

    def select(
        self,
        *,
        low: str,
        high: str | None,
        exact: bool,
        ts_from: int | None = None,
        ts_to: int | None = None,
        record_types: Sequence[str] | None = None,
        order: str = "asc",
        closest: int | None = None,
        limit: int | None = None,
        run_ids: Sequence[str] | None = None,
    ) -> list[IndexRow]:
        """Rows whose key equals ``low`` (``exact``) or lies in ``[low, high)``."""
        where = ["surt = ?"] if exact else ["surt >= ?", "surt < ?"]
        params: list[Any] = [low] if exact else [low, high]
        if ts_from is not None:
            where.append("ts >= ?")
            params.append(ts_from)
        if ts_to is not None:
            where.append("ts <= ?")
            params.append(ts_to)
        if record_types:
            where.append(f"record_type IN ({', '.join('?' * len(record_types))})")
            params.extend(record_types)
        if run_ids:
            where.append(f"run_id IN ({', '.join('?' * len(run_ids))})")
            params.extend(run_ids)
        if closest is not None:
            order_by = "abs(ts - ?), ts, id"
            params.append(closest)
        elif order == "desc":
            order_by = "surt DESC, ts DESC, id DESC"
        else:
            order_by = "surt, ts, id"
        sql = f"{_SELECT_CAPTURES} WHERE {' AND '.join(where)} ORDER BY {order_by}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_row(values) for values in self.rows(sql, params)]

    def by_record_id(self, record_id: str) -> IndexRow | None:
        found = self.rows(
            f"{_SELECT_CAPTURES} WHERE record_id = ? ORDER BY id LIMIT 1",
            (record_id,),
        )
        return _row(found[0]) if found else None

    def at(self, warc_key: str, offset: int) -> IndexRow | None:
        """The record at ``offset`` in the WARC ``warc_key`` (rows are unique per place)."""
        found = self.rows(
            f"{_SELECT_CAPTURES} WHERE warc_key = ? AND warc_offset = ?",
            (warc_key, offset),
        )
        return _row(found[0]) if found else None

    def concurrent_with(self, record_id: str) -> list[IndexRow]:
        """Records that name this one in WARC-Concurrent-To (metadata, derivatives, request).

        A revisit's ``concurrent_to`` holds its WARC-Refers-To (its original): later revisits
        of a record were not written with it, so they are not among these.
        """
        return [
            _row(v)
            for v in self.rows(
                f"{_SELECT_CAPTURES} "
                "WHERE concurrent_to = ? AND record_type <> 'revisit' ORDER BY id",
                (record_id,),
            )
        ]

    def by_run(
        self, run_id: str, *, record_types: Sequence[str] = ("response", "resource")
    ) -> list[IndexRow]:
        marks = ", ".join("?" * len(record_types))
        return [
            _row(v)
            for v in self.rows(
                f"{_SELECT_CAPTURES} WHERE warc_key IN "  # noqa: S608 - constant columns; values are bound
                f"(SELECT warc_key FROM warcs WHERE run_id = ?) "
                f"AND record_type IN ({marks}) ORDER BY ts, id",
                (run_id, *record_types),
            )
        ]

    def tls_chain_for(self, run_id: str | None, surt_host: str) -> IndexRow | None:
        found = self.rows(
            f"{_SELECT_CAPTURES} WHERE record_type = 'metadata' "
            "AND mime LIKE ? AND run_id IS NOT DISTINCT FROM ? AND surt >= ? AND surt < ? "
            "ORDER BY ts LIMIT 1",
            ("%attest-tls-chain%", run_id, surt_host, surt_host + "\U0010ffff"),
        )
        return _row(found[0]) if found else None

    def run_warcs(self, run: str) -> list[dict[str, Any]]:
        """The indexed WARCs a run wrote: ``run`` is an attest run id, or ``DAG_ID/RUN_ID`` of
        an Airflow DAG run (the ids each WARC's ``warcinfo`` carries)."""
        sql, params = run_warcs_query(self.sql, run)
        return [dict(zip(RUN_WARC_COLUMNS, row, strict=True)) for row in self.rows(sql, params)]

    def run_records(
        self,
        warc_keys: Sequence[str],
        *,
        record_types: Sequence[str] = ("response", "revisit", "resource"),
        limit: int | None = None,
    ) -> list[IndexRow]:
        """The records of these WARCs, in capture order."""
        if not warc_keys:
            return []
        sql = (
            f"{_SELECT_CAPTURES} "
            f"WHERE warc_key IN ({', '.join('?' * len(warc_keys))}) "
            f"AND record_type IN ({', '.join('?' * len(record_types))}) ORDER BY ts, id"
        )
        params: list[Any] = [*warc_keys, *record_types]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_row(v) for v in self.rows(sql, params)]

    def warc(self, warc_key: str) -> dict[str, Any] | None:
        found = self.rows(
            f"SELECT {', '.join(RUN_WARC_COLUMNS)} FROM warcs WHERE warc_key = ?",  # noqa: S608 - constant columns; values are bound
            (warc_key,),
        )
        if not found:
            return None
        return dict(zip(RUN_WARC_COLUMNS, found[0], strict=True))

    def counts(self) -> dict[str, int]:
        return {
            "warcs": int(self.rows("SELECT count(*) FROM warcs")[0][0]),
            "records": int(self.rows("SELECT count(*) FROM captures")[0][0]),
            "texts": int(self.rows("SELECT count(*) FROM texts")[0][0]),
        }

    def summary(self) -> dict[str, int]:
        """WARCs and records indexed, from the ``warcs`` table (cheap on any size of index)."""
        warcs, records = self.rows("SELECT count(*), coalesce(sum(records), 0) FROM warcs")[0]
        return {"warcs": int(warcs), "records": int(records)}

    def search(self, query: str, *, limit: int = 20, offset: int = 0) -> list[SearchHit]:
        """Pages whose visible text matches ``query`` (words, "quoted phrases"), best first."""
        found = self.sql.search(query, limit, offset)
        if found is None:
            return []
        sql, params = found
        return [SearchHit(int(i), u, int(t), s, r) for i, u, t, s, r in self.rows(sql, params)]


#: A row's values in the order of :data:`COLUMNS`.
row_values: Callable[[IndexRow], tuple[Any, ...]] = operator.attrgetter(*_FIELDS)


def _row(values: Sequence[Any]) -> IndexRow:
    return IndexRow(*values)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
