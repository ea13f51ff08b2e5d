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

from archive.custody.log import (
    GENESIS,
    SEGMENT_PREFIX,
    CustodyLog,
    Entry,
    SegmentAttestor,
    check_chain,
    default_actor,
    entry_hash,
)
from archive.custody.seal import SEAL_SUFFIX, parse_segment
from archive.errors import CustodyError, IndexDatabaseError
from archive.index.db import IndexDB
from archive.store import FileStore
from archive.trust.signing import Trust


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
        with pytest.raises(IndexDatabaseError, match="append-only"):
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
    assert any("in the database differs from the sealed segment" in p for p in problems)
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
    assert len(problems) == 2
    assert "cannot be read" in problems[0]
    assert "SHA-256" in problems[1]
    path.unlink()
    verdict = log.check()
    assert len(verdict.problems) == 1
    assert "the store has no such segment" in verdict.problems[0]
    assert verdict.unsealed == (1, 4)


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


# --- verification anchored in the store ------------------------------------------------------


def attack(db: IndexDB, *statements: str) -> None:
    """What someone with write access to the database can do: drop the guards, change rows."""
    for trigger in ("custody_log_no_update", "custody_log_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for sql in statements:
        db.execute(sql)


def test_deleting_the_newest_entries_with_their_seal_rows_is_detected_from_the_store(
    db: IndexDB, log: CustodyLog
) -> None:
    fill(log, 3)
    log.seal()
    fill(log, 3, start=3)
    log.seal()
    attack(
        db, "DELETE FROM custody_log WHERE seq > 3", "DELETE FROM custody_seals WHERE last_seq > 3"
    )
    assert check_chain(log.entries()) == []  # the database agrees with itself
    verdict = log.check()
    assert not verdict.ok
    assert "entries 4-6 are sealed in the store but missing from the database" in verdict.problems


def test_rewritten_entries_with_recomputed_hashes_are_detected_from_the_store(
    db: IndexDB, log: CustodyLog
) -> None:
    fill(log, 5)
    log.seal()
    # entry 2 rewritten, every later hash recomputed, the seal table made to agree
    entries = list(log.entries())
    forged: list[Entry] = []
    prev = entries[0].hash
    for entry in entries[1:]:
        changed = dataclasses.replace(entry, prev_hash=prev)
        if entry.seq == 2:
            changed = dataclasses.replace(changed, actor="mallory", details={"n": 99})
        changed = dataclasses.replace(changed, hash=entry_hash(changed.body()))
        forged.append(changed)
        prev = changed.hash
    attack(db, "DELETE FROM custody_log WHERE seq > 1", "DELETE FROM custody_seals")
    for entry in forged:
        log._insert(entry)
    assert check_chain(log.entries()) == []
    problems = log.verify()
    differ = [p for p in problems if "in the database differs from the sealed segment" in p]
    assert [p.split()[1] for p in differ] == ["2", "3", "4", "5"]


def test_entries_not_sealed_yet_are_named(log: CustodyLog) -> None:
    fill(log, 3)
    log.seal()
    fill(log, 2, start=3)
    verdict = log.check()
    assert verdict.ok
    assert verdict.sealed_through == 3
    assert verdict.unsealed == (4, 5)
    assert any(n.startswith("entries 4-5 are not sealed yet") for n in verdict.notes)
    assert [(s.first, s.last) for s in verdict.segments] == [(1, 3)]


@pytest.fixture
def signing(tmp_path: Path) -> Iterator[tuple[SegmentAttestor, Trust, Any]]:
    from support.pki import make_pki
    from support.tsa import local_tsa

    from archive.trust.signing import load_signer, load_trust
    from archive.trust.timestamps import authorities

    pki = make_pki(tmp_path / "pki")
    trust_file = tmp_path / "trust.pem"
    trust_file.write_bytes(pki.org_public.read_bytes() + pki.root.read_bytes())
    with local_tsa(pki, tmp_path / "tsa") as tsa:
        attestor = SegmentAttestor(load_signer(pki.org_key), authorities([tsa.url], [""]))
        yield attestor, load_trust([trust_file]), tsa


def test_segments_are_signed_and_timestamped_and_a_rewritten_store_is_detected(
    db: IndexDB, store: FileStore, signing: tuple[SegmentAttestor, Trust, Any]
) -> None:
    attestor, trust, tsa = signing
    log = CustodyLog(db, store, attestor=attestor)
    fill(log, 4)
    key = log.seal()
    assert key is not None
    assert store.stat(key + SEAL_SUFFIX) is not None
    assert tsa.requests == 1
    verdict = log.check(trust, require_seals=True)
    assert verdict.ok, verdict.problems
    (segment,) = verdict.segments
    assert segment.signer is not None
    assert segment.signer.startswith("key ")
    assert segment.trusted
    assert len(segment.timestamps) == 1

    # Whoever controls the disk and the database rewrites both, consistently...
    path = store.root / key
    os.chmod(path, 0o644)
    text = path.read_text(encoding="utf-8").replace("investigator-1", "investigator-9")
    path.write_text(text, encoding="utf-8")
    attack(db, "DELETE FROM custody_log", "DELETE FROM custody_seals")
    for entry in parse_segment(text.encode("utf-8")):
        log._insert(entry)
    # ...but cannot sign: the seal says the segment changed after it was sealed.
    problems = log.check(trust, require_seals=True).problems
    assert any("the segment was changed after it was sealed" in p for p in problems)

    # Removing the seal file too: still refused where segments are signed.
    (store.root / (key + SEAL_SUFFIX)).unlink()
    problems = log.check(trust, require_seals=True).problems
    assert any("not signed or timestamped" in p for p in problems)


def test_a_segment_sealed_before_the_key_is_signed_later(
    db: IndexDB, store: FileStore, signing: tuple[SegmentAttestor, Trust, Any]
) -> None:
    attestor, trust, _ = signing
    fill(CustodyLog(db, store), 2)
    CustodyLog(db, store).seal()
    signed = CustodyLog(db, store, attestor=attestor)
    assert not signed.check(trust, require_seals=True).ok
    assert signed.attest_sealed() == [f"{SEGMENT_PREFIX}000000000001-000000000002.jsonl"]
    assert signed.attest_sealed() == []
    assert signed.check(trust, require_seals=True).ok


def test_attest_custody_verify_checks_the_database_against_the_store(
    tmp_path: Path, signing: tuple[SegmentAttestor, Trust, Any]
) -> None:
    from support.cli import run_attest
    from support.storedarchive import stored_archive

    archive = stored_archive(tmp_path)
    archive.custody.seal()
    archive.db.close()
    _, _, tsa = signing
    pki_dir = tmp_path / "pki"
    env = dict(
        os.environ,
        ATTEST_HOME=str(archive.home),
        ATTEST_SIGNING_KEY=str(pki_dir / "org.pem"),
        ATTEST_TSA_URLS=tsa.url,
        ATTEST_TRUST=f"{tmp_path / 'trust.pem'}",
    )
    for name in ("ATTEST_STORE", "ATTEST_INDEX"):
        env.pop(name, None)
    # Sealed before the key was configured: unsigned, which verification now refuses...
    unsigned = run_attest(["custody", "verify"], env)
    assert unsigned.returncode == 1, unsigned.stdout + unsigned.stderr
    assert "not signed or timestamped" in unsigned.stdout
    # ...until `attest custody seal` signs and stamps it.
    sealed = run_attest(["custody", "seal"], env)
    assert sealed.returncode == 0, sealed.stderr
    assert "signed and timestamped custody/segments/" in sealed.stdout
    ok = run_attest(["custody", "verify"], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "signed by key " in ok.stdout
    assert f"timestamped by {tsa.url}" in ok.stdout
    verdict = json.loads(run_attest(["custody", "verify", "--json"], env).stdout)
    last = verdict["sealed_through"]
    assert verdict["ok"]
    assert verdict["unsealed"] is None

    with IndexDB(str(archive.home / "index.sqlite")) as db:
        attack(db, f"DELETE FROM custody_log WHERE seq > {last - 2}",
               f"DELETE FROM custody_seals WHERE last_seq > {last - 2}")  # fmt: skip
    broken = run_attest(["custody", "verify"], env)
    assert broken.returncode == 1
    assert (
        f"BROKEN entries {last - 1}-{last} are sealed in the store but missing from the database"
        in broken.stdout
    )
    assert "DOES NOT VERIFY" in broken.stdout
