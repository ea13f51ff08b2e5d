"""The custody log: append-only, hash-chained, sealed into the store and restored from it."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.custody import (
    GENESIS,
    SEGMENT_PREFIX,
    CustodyLog,
    Entry,
    check_chain,
    default_actor,
    entry_hash,
)
from archive.errors import CustodyError, IndexError_
from archive.indexdb import IndexDB
from archive.store import FileStore


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[IndexDB]:
    database = IndexDB(str(tmp_path / "index.sqlite"))
    yield database
    database.close()


@pytest.fixture
def log(db: IndexDB, store: FileStore) -> CustodyLog:
    return CustodyLog(db, store)


def fill(log: CustodyLog, count: int, *, start: int = 0) -> list[Entry]:
    actions = ("capture", "index", "read")
    return [
        log.append(
            actions[i % 3],
            f"file:///store/warcs/src/{i:03d}.warc.gz",
            {"sha256": hashlib.sha256(str(i).encode()).hexdigest(), "n": i, "place": "Nouméa"},
            actor=f"investigator-{i % 2}",
        )
        for i in range(start, start + count)
    ]


def test_appends_form_a_hash_chain_that_verifies(log: CustodyLog) -> None:
    entries = fill(log, 5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    for entry in entries:
        assert entry.hash == entry_hash(entry.body())
        assert len(entry.hash) == 64
        assert entry.at.endswith("Z")
    assert list(log.entries()) == entries
    assert log.verify() == []
    assert check_chain(iter(entries)) == []
    assert [e.seq for e in log.for_object("file:///store/warcs/src/002.warc.gz")] == [3]


def test_the_hash_covers_every_field(log: CustodyLog) -> None:
    (entry,) = fill(log, 1)
    for name, value in [
        ("seq", 2),
        ("at", "2026-11-28T00:00:00.000000Z"),
        ("actor", "someone-else"),
        ("action", "export"),
        ("object", "file:///elsewhere"),
        ("details", {"n": 1}),
        ("prev_hash", "f" * 64),
    ]:
        changes: dict[str, Any] = {name: value}
        changed = dataclasses.replace(entry, **changes)
        assert entry_hash(changed.body()) != entry.hash, name


def test_update_and_delete_are_refused(db: IndexDB, log: CustodyLog) -> None:
    entries = fill(log, 3)
    for sql in (
        "UPDATE custody_log SET actor = 'mallory' WHERE seq = 2",
        "UPDATE custody_log SET hash = prev_hash",
        "DELETE FROM custody_log WHERE seq = 3",
        "DELETE FROM custody_log",
    ):
        with pytest.raises(IndexError_, match="append-only"):
            db.execute(sql)
    assert list(log.entries()) == entries
    assert log.verify() == []


def test_an_inserted_forgery_breaks_the_chain(db: IndexDB, log: CustodyLog) -> None:
    # The triggers stop UPDATE and DELETE; a row slipped in with INSERT is caught by the chain.
    fill(log, 2)
    forged = {
        "seq": 3,
        "at": "2026-11-28T00:00:00.000000Z",
        "actor": "mallory",
        "action": "read",
        "object": "x",
        "details": {},
        "prev_hash": "0" * 64,
    }
    db.execute(
        "INSERT INTO custody_log (seq, at, actor, action, object, details, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (3, forged["at"], "mallory", "read", "x", "{}", forged["prev_hash"], entry_hash(forged)),
    )
    problems = log.verify()
    assert problems
    assert "entry 3: previous hash" in problems[0]


def test_index_rebuild_never_touches_the_log(db: IndexDB, log: CustodyLog) -> None:
    entries = fill(log, 4)
    log.seal()
    db.drop_index()
    assert list(log.entries()) == entries
    assert log.last_sealed() == 4
    assert log.verify() == []


# --- sealing ---------------------------------------------------------------------------------


def test_seal_writes_immutable_segments_of_the_unsealed_entries(
    log: CustodyLog, store: FileStore
) -> None:
    assert log.seal() is None  # nothing to seal
    first = fill(log, 3)
    key = log.seal()
    assert key == f"{SEGMENT_PREFIX}000000000001-000000000003.jsonl"
    assert log.seal() is None  # nothing new
    fill(log, 2, start=3)
    assert log.seal(minimum=5) is None  # fewer than asked for
    assert log.maybe_seal() is None
    second = log.seal()
    assert second == f"{SEGMENT_PREFIX}000000000004-000000000005.jsonl"
    assert list(store.keys(SEGMENT_PREFIX)) == [key, second]
    path = store.root / key
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [e.as_dict() for e in first]
    assert log.last_sealed() == 5
    assert log.verify() == []


def sealed_log(log: CustodyLog, store: FileStore) -> tuple[list[Entry], Path]:
    entries = fill(log, 4)
    key = log.seal()
    assert key is not None
    path = store.root / key
    os.chmod(path, 0o644)  # the store wrote it read-only; an attacker with the disk need not care
    return entries, path


def test_an_edited_sealed_segment_is_reported(log: CustodyLog, store: FileStore) -> None:
    _, path = sealed_log(log, store)
    text = path.read_text(encoding="utf-8")
    assert '"actor":"investigator-1"' in text
    path.write_text(text.replace('"actor":"investigator-1"', '"actor":"investigator-9"', 1))
    problems = log.verify()
    assert any("differs from the database" in p for p in problems)
    assert any("SHA-256" in p for p in problems)
    assert all(path.name in p for p in problems)


def test_a_segment_edited_without_changing_its_entries_is_reported(
    log: CustodyLog, store: FileStore
) -> None:
    _, path = sealed_log(log, store)
    path.write_bytes(path.read_bytes() + b"\n")  # same entries, other bytes than were sealed
    problems = log.verify()
    assert len(problems) == 1
    assert "SHA-256" in problems[0]


def test_a_damaged_segment_is_reported_not_raised(log: CustodyLog, store: FileStore) -> None:
    _, path = sealed_log(log, store)
    path.write_bytes(path.read_bytes()[:-40])
    problems = log.verify()
    assert len(problems) == 1
    assert "cannot be read" in problems[0]
    path.unlink()
    problems = log.verify()
    assert len(problems) == 1
    assert "cannot be read" in problems[0]


# --- restoring from the store ----------------------------------------------------------------


def test_a_new_database_restores_the_sealed_log_and_continues_the_chain(
    log: CustodyLog, store: FileStore, tmp_path: Path
) -> None:
    sealed = fill(log, 3)
    log.seal()
    sealed += fill(log, 2, start=3)
    log.seal()
    unsealed = fill(log, 1, start=5)  # lost with the database: never sealed

    with IndexDB(str(tmp_path / "new.sqlite")) as fresh:
        restored = CustodyLog(fresh, store)
        assert list(restored.entries()) == sealed
        assert restored.last_sealed() == 5
        assert restored.verify() == []
        assert restored.restore_from_store() == 0  # only into an empty log
        entry = restored.append("read", "file:///store/x", actor="after-restore")
        assert entry.seq == 6
        assert entry.prev_hash == sealed[-1].hash
        assert entry.hash != unsealed[0].hash
        assert restored.verify() == []
        assert check_chain(restored.entries()) == []


def test_restoring_from_tampered_segments_is_refused(
    log: CustodyLog, store: FileStore, tmp_path: Path
) -> None:
    _, path = sealed_log(log, store)
    lines = path.read_text(encoding="utf-8").splitlines()
    del lines[1]  # an entry removed
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    with IndexDB(str(tmp_path / "new.sqlite")) as fresh:
        with pytest.raises(CustodyError, match="do not chain"):
            CustodyLog(fresh, store)
        assert fresh.rows("SELECT count(*) FROM custody_log") == [(0,)]
        path.write_text("{not json\n", encoding="utf-8")
        with pytest.raises(CustodyError, match="cannot be read"):
            CustodyLog(fresh, store)


def test_a_log_without_a_store_works_and_never_seals(db: IndexDB) -> None:
    log = CustodyLog(db)
    fill(log, 2)
    assert log.seal() is None
    assert log.verify() == []


# --- check_chain -----------------------------------------------------------------------------


@pytest.fixture
def chain(log: CustodyLog) -> list[Entry]:
    return fill(log, 6)


def test_check_chain_detects_an_edited_entry(chain: list[Entry]) -> None:
    edited = list(chain)
    edited[2] = dataclasses.replace(chain[2], actor="mallory")
    assert check_chain(iter(edited)) == ["entry 3: hash does not match its content"]


def test_check_chain_detects_an_edit_with_its_own_hash_recomputed(chain: list[Entry]) -> None:
    edited = list(chain)
    changed = dataclasses.replace(chain[2], details={"n": 99})
    edited[2] = dataclasses.replace(changed, hash=entry_hash(changed.body()))
    problems = check_chain(iter(edited))
    assert len(problems) == 1
    assert problems[0].startswith("entry 4: previous hash")


def test_check_chain_detects_a_removed_entry(chain: list[Entry]) -> None:
    removed = chain[:3] + chain[4:]
    problems = check_chain(iter(removed))
    assert "entry 5: expected sequence number 4" in problems
    assert any(p.startswith("entry 5: previous hash") for p in problems)
    assert check_chain(iter(chain[1:])) != []  # the first entry removed
    assert check_chain(iter(chain[:-1])) == []  # the tail is only detectable against a seal


def test_check_chain_detects_a_reordered_pair(chain: list[Entry]) -> None:
    swapped = [chain[0], chain[2], chain[1], *chain[3:]]
    problems = check_chain(iter(swapped))
    assert "entry 3: expected sequence number 2" in problems
    assert any(p.startswith("entry 2: previous hash") for p in problems)
    assert any(p.startswith("entry 4: previous hash") for p in problems)


def test_default_actor(monkeypatch: pytest.MonkeyPatch, log: CustodyLog) -> None:
    monkeypatch.setenv("ATTEST_ACTOR", "case-officer-7")
    assert default_actor() == "case-officer-7"
    assert log.append("read", "x").actor == "case-officer-7"
    monkeypatch.delenv("ATTEST_ACTOR")
    assert "@" in default_actor()
