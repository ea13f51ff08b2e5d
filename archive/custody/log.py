"""The custody log: who did what to which evidence, when; append-only and hash-chained.

Each entry holds the SHA-256 of the previous entry, and its own hash covers its sequence
number, time, actor, action, object, details and that previous hash (canonical JSON), so
removing, reordering or editing any entry breaks every hash after it. The tables are the
log's own (an index rebuild never touches them) and refuse UPDATE and DELETE by trigger.

Entries are sealed into the store as immutable JSON-lines segments
(``custody/segments/<first seq>-<last seq>.jsonl``), each signed with the organisation key and
stamped by the timestamp authorities when they are configured (:mod:`archive.custody.seal`), so
the log outlives the database and is checked against what was sealed, never against the
database's own word: :meth:`CustodyLog.check` lists the segments in the store and requires the
database to hold exactly what they hold, and names the entries not sealed yet. A new database
whose log is empty first restores the sealed segments (checking their chain), then appends
after them.

Actions: ``capture`` (a WARC reached the store: its SHA-256 and object version), ``index`` (a
WARC's rows were loaded, and the records left out), ``read`` (someone retrieved a capture),
``link`` / ``unlink`` (a capture was linked to a claim / the link withdrawn, with the reason),
``export`` (a bundle was written), ``hold`` / ``release`` (a legal hold was placed on a WARC's
stored version / lifted: :mod:`archive.evidence.holds`), ``verify`` (the pipeline re-read a stored WARC
and checked it: :mod:`archive.custody.audit`), ``seal`` (someone asked the service to seal the log).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import logging
import os
import socket
import tempfile
from collections.abc import Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.custody.seal import (
    SEGMENT_PREFIX,
    CustodyVerdict,
    SegmentAttestor,
    check_log,
    parse_segment,
    read_first_version,
    segment_keys,
    segment_range,
    write_seal,
)
from archive.errors import AttestError, CustodyError
from archive.index.db import IndexDB
from archive.store import Store, file_sha256

if TYPE_CHECKING:
    from archive.trust.signing import Trust

log = logging.getLogger(__name__)

GENESIS = "0" * 64
__all__ = ["SEGMENT_PREFIX", "CustodyLog", "CustodyVerdict", "Entry", "SegmentAttestor"]
#: Seal once this many entries are unsealed (and at the end of each index or crawl).
SEAL_EVERY = 1000

# In the dialect's types; the triggers that keep the log append-only are the dialect's too.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS custody_log (
    seq {big} PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    object TEXT NOT NULL, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS custody_seals (
    last_seq {big} PRIMARY KEY, first_seq {big} NOT NULL, segment_key TEXT NOT NULL,
    sha256 TEXT NOT NULL, sealed_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS custody_log_object ON custody_log (object);
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    at: str
    actor: str
    action: str
    object: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "object": self.object,
            "details": self.details,
            "prev_hash": self.prev_hash,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def json_line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))


#: Columns of ``custody_log`` in order: :class:`Entry`'s fields (``details`` as JSON text).
_COLUMNS = tuple(f.name for f in fields(Entry))
_SEQ, _DETAILS = _COLUMNS.index("seq"), _COLUMNS.index("details")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM custody_log"  # noqa: S608 - constant columns
_INSERT = (
    f"INSERT INTO custody_log ({', '.join(_COLUMNS)}) "  # noqa: S608 - constant columns; values are bound
    f"VALUES ({', '.join('?' * len(_COLUMNS))})"
)


def _entry(values: tuple[Any, ...]) -> Entry:
    """An entry from a row of :data:`_SELECT`."""
    row = list(values)
    row[_SEQ] = int(row[_SEQ])
    row[_DETAILS] = json.loads(row[_DETAILS])
    return Entry(*row)


def entry_hash(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def default_actor() -> str:
    """Who runs this process: ATTEST_ACTOR, else user@host."""
    actor = os.environ.get("ATTEST_ACTOR")
    if actor:
        return actor
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def utc_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CustodyLog:
    """The log in ``db``, sealed into ``store``; ``attestor`` signs and timestamps each segment
    as it is sealed (the organisation key, the TSAs), when configured."""

    def __init__(
        self, db: IndexDB, store: Store | None = None, *, attestor: SegmentAttestor | None = None
    ) -> None:
        self.db = db
        self.store = store
        self.attestor = attestor
        with db.transaction():
            db.lock_schema()
            db.execute_script(
                _SCHEMA.format(big=db.sql.big)
                + db.sql.append_only("custody_log", "the custody log is append-only")
            )
        if store is not None:
            self.restore_from_store()

    # --- writing ----------------------------------------------------------------------------

    def append(
        self,
        action: str,
        obj: str,
        details: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
    ) -> Entry:
        db = self.db
        with db.transaction(exclusive=True):
            db.lock_table("custody_log")
            last = db.rows("SELECT seq, hash FROM custody_log ORDER BY seq DESC LIMIT 1")
            seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
            body = {
                "seq": seq,
                "at": utc_iso(),
                "actor": actor or default_actor(),
                "action": action,
                "object": obj,
                "details": details or {},
                "prev_hash": prev,
            }
            entry = Entry(
                seq,
                str(body["at"]),
                str(body["actor"]),
                action,
                obj,
                details or {},
                prev,
                entry_hash(body),
            )
            self._insert(entry)
        return entry

    def _insert(self, entry: Entry) -> None:
        values = [getattr(entry, column) for column in _COLUMNS]
        values[_DETAILS] = json.dumps(entry.details, sort_keys=True)
        self.db.execute(_INSERT, values)

    # --- reading and checking --------------------------------------------------------------

    def entries(self, *, after: int = 0, until: int | None = None) -> Iterator[Entry]:
        sql = f"{_SELECT} WHERE seq > ?"
        params: list[Any] = [after]
        if until is not None:
            sql += " AND seq <= ?"
            params.append(until)
        for values in self.db.rows(sql + " ORDER BY seq", params):
            yield _entry(values)

    def for_object(self, obj: str) -> list[Entry]:
        return [
            _entry(values)
            for values in self.db.rows(f"{_SELECT} WHERE object = ? ORDER BY seq", (obj,))
        ]

    def verify(self) -> list[str]:
        """Every break in the chain or disagreement with the sealed segments (empty: it holds)."""
        return self.check().problems

    def check(self, trust: Trust | None = None, *, require_seals: bool = False) -> CustodyVerdict:
        """The log checked against the store's sealed segments (see :mod:`archive.custody.seal`);
        ``trust``: the anchors the segments' signatures and timestamps must chain to."""
        return check_log(self, trust, require_seals=require_seals)

    # --- sealing ------------------------------------------------------------------------------

    def last_sealed(self) -> int:
        found = self.db.rows("SELECT max(last_seq) FROM custody_seals")
        return int(found[0][0] or 0)

    def seal(self, *, minimum: int = 1) -> str | None:
        """Write unsealed entries to the store as one immutable segment; returns its key."""
        if self.store is None:
            return None
        start = self.last_sealed()
        entries = list(self.entries(after=start))
        if len(entries) < minimum or not entries:
            return None
        first, last = entries[0].seq, entries[-1].seq
        key = f"{SEGMENT_PREFIX}{first:012d}-{last:012d}.jsonl"
        data = "".join(e.json_line() + "\n" for e in entries).encode("utf-8")
        with tempfile.TemporaryDirectory(prefix="attest-custody-") as tmp:
            path = Path(tmp) / "segment.jsonl"
            path.write_bytes(data)
            sha256 = file_sha256(path)
            self.store.put_file(key, path, sha256)
        sealed_at = utc_iso()
        self.db.execute(
            "INSERT INTO custody_seals (last_seq, first_seq, segment_key, sha256, sealed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (last_seq) DO NOTHING",
            (last, first, key, sha256, sealed_at),
        )
        log.info("custody log sealed", extra={"segment": key, "entries": len(entries)})
        if self.attestor is not None and self.attestor.active:
            write_seal(self.store, key, self.attestor.attest(key, data, sealed_at))
        return key

    def attest_sealed(self) -> list[str]:
        """Sign and timestamp the sealed segments that have no seal file yet (sealed by a
        process without the key, or whose seal could not be stored); their seal says when."""
        if self.store is None or self.attestor is None or not self.attestor.active:
            return []
        done = []
        for key in segment_keys(self.store):
            if self.store.stat(key + ".seal.json") is not None:
                continue
            data = read_first_version(self.store, key, [])
            write_seal(self.store, key, self.attestor.attest(key, data, utc_iso()))
            done.append(key)
        return done

    @contextmanager
    def sealing(self, done: Sized) -> Iterator[None]:
        """Seal the log when the block ends. When the block fails part way (an
        :class:`~archive.errors.AttestError`) after ``done`` (what it records, as it fills
        it) has anything, what it recorded is sealed still (if the store takes it), and the
        error goes on."""
        try:
            yield
        except AttestError:
            if done:
                with contextlib.suppress(AttestError):
                    self.seal()
            raise
        self.seal()

    def maybe_seal(self) -> str | None:
        return self.seal(minimum=SEAL_EVERY)

    def restore_from_store(self) -> int:
        """When the database's log is empty, load the sealed segments from the store."""
        assert self.store is not None
        if self.db.rows("SELECT 1 FROM custody_log LIMIT 1"):
            return 0
        keys = segment_keys(self.store)
        if not keys:
            return 0
        by_seq: dict[int, Entry] = {}
        digests: dict[str, str] = {}
        for key in keys:
            try:
                data = read_first_version(self.store, key, [])
                for entry in parse_segment(data):
                    by_seq.setdefault(entry.seq, entry)
            except (ValueError, KeyError, TypeError) as exc:
                raise CustodyError(f"sealed custody segment {key} cannot be read: {exc}") from exc
            digests[key] = hashlib.sha256(data).hexdigest()
        entries = [by_seq[s] for s in sorted(by_seq)]
        problems = check_chain(iter(entries))
        if problems:
            raise CustodyError("sealed custody segments do not chain: " + "; ".join(problems[:3]))
        with self.db.transaction(exclusive=True):
            for entry in entries:
                self._insert(entry)
            for key in keys:
                first, last = segment_range(key) or (0, 0)
                self.db.execute(
                    "INSERT INTO custody_seals (last_seq, first_seq, segment_key, sha256, sealed_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (last_seq) DO NOTHING",
                    (last, first, key, digests[key], utc_iso()),
                )
        log.warning("custody log restored from %d sealed segment(s) in the store", len(keys))
        return len(entries)


def check_chain(entries: Iterator[Entry], *, prev: str = GENESIS) -> list[str]:
    """Every break in a run of entries; ``prev``: the hash the first one must follow."""
    problems = []
    expected_seq = None
    for entry in entries:
        if expected_seq is not None and entry.seq != expected_seq:
            problems.append(f"entry {entry.seq}: expected sequence number {expected_seq}")
        if entry.prev_hash != prev:
            problems.append(
                f"entry {entry.seq}: previous hash {entry.prev_hash[:12]}… does not match {prev[:12]}…"
            )
        if entry_hash(entry.body()) != entry.hash:
            problems.append(f"entry {entry.seq}: hash does not match its content")
        prev = entry.hash
        expected_seq = entry.seq + 1
    return problems
