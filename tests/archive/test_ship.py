"""Shipping a run's WARCs from its spool into the store (archive/ingest/ship.py).

Real spools (``RunSpool`` and ``RotatingWarcWriter``, as the recorder writes them) and a real
file store; the golden WARCs (tests/golden) stand for a damaged file and for one a crash cut
short. A store that cannot take anything is a file store whose root is a regular file. A
WARC leaves the spool only once it is verified, stored and checked; the run's ledger and
report follow it into the store; each WARC's ``capture`` custody entry is logged once.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.custody.log import CustodyLog
from archive.errors import IntegrityError
from archive.index.db import IndexDB
from archive.ingest.ship import (
    ShippedWarc,
    ShipReport,
    record_capture,
    recover,
    run_base,
    ship_file,
    ship_spool,
    upload_record,
)
from archive.ingest.spool import RotatingWarcWriter, RunSpool, store_key, warc_filename
from archive.store import FileStore, file_sha256
from archive.warc.read import verify_warc
from archive.warc.write import Block, RecordSpec

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
RUN_ID = "5a1e7c3d-2b4f-4a6e-9c8d-7e6f5a4b3c2d"
STARTED = datetime(2026, 11, 28, 23, 59, 30, tzinfo=UTC)


class Clock:
    """Each reading a second after the last, from ``start``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def resource(n: int, size: int = 3000) -> RecordSpec:
    data = random.Random(n).randbytes(size)  # incompressible: files rotate by size
    return RecordSpec(
        record_type="resource",
        block=Block.from_bytes(data),
        target_uri=f"urn:test:{n}",
        content_type="text/plain",
    )


def new_spool(root: Path, run_id: str = RUN_ID, started: datetime = STARTED) -> RunSpool:
    return RunSpool.create(
        root, run_id, {"run_id": run_id, "started": started.isoformat(), "sources": ["news"]}
    )


def write_warcs(
    spool: RunSpool, records: int, *, max_size: int = 8000, start: datetime = STARTED
) -> list[Path]:
    """``records`` resources of source ``news``, rotated into closed files; their paths."""
    closed: list[Path] = []
    writer = RotatingWarcWriter(
        spool.path,
        "news",
        spool.run_id,
        lambda name: [("software", "attest tests")],
        max_size=max_size,
        clock=Clock(start),
        on_closed=closed.append,
    )
    for n in range(records):
        writer.write(resource(n))
    writer.close()
    return closed


def name_for(moment: datetime, serial: int = 0, run_id: str = RUN_ID) -> str:
    return warc_filename("attest-news", moment, serial, run_id)


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[RunSpool]:
    spool = new_spool(tmp_path / "spool")
    yield spool
    spool.release()


def down_store(tmp_path: Path) -> FileStore:
    """A store that cannot take any object: its root is a regular file."""
    root = tmp_path / "not-a-directory"
    root.write_bytes(b"")
    return FileStore(root)


# --- shipping a spool ------------------------------------------------------------------------


def test_every_closed_warc_is_stored_checked_and_only_then_removed_from_the_spool(
    spool: RunSpool, store: FileStore
) -> None:
    paths = write_warcs(spool, 6)
    assert len(paths) > 1
    expected = {p.name: (file_sha256(p), p.stat().st_size, p.read_bytes()) for p in paths}
    counts = {p.name: verify_warc(p).record_count for p in paths}
    (spool.path / "ledger.jsonl").write_text('{"url": "http://news.example/"}\n')
    (spool.path / "recorder.log").write_text("recorder started\n")

    report = ship_spool(spool, store)

    assert report.complete
    assert (report.run_id, report.pending, report.sealed) == (RUN_ID, [], [])
    assert [s.filename for s in report.shipped] == [p.name for p in paths]
    for shipped in report.shipped:
        sha256, size, data = expected[shipped.filename]
        assert shipped.key == store_key(shipped.filename, "news")
        assert shipped.key.startswith("warcs/news/2026/11/")
        assert (shipped.sha256, shipped.size, shipped.records) == (
            sha256,
            size,
            counts[shipped.filename],
        )
        assert shipped.uri == store.object_uri(shipped.key)
        assert shipped.version_id is None  # a file store keeps no versions
        assert (store.root / shipped.key).read_bytes() == data
    # The run's ledger, recorder log and report, under the day the run started.
    base = f"runs/2026/11/28/{RUN_ID}"
    assert report.ledger_key == f"{base}/ledger.jsonl"
    assert sorted(k for k in store.keys("runs/")) == [
        f"{base}/ledger.jsonl",
        f"{base}/recorder.log",
        f"{base}/run-report.json",
    ]
    stored_report = json.loads((store.root / base / "run-report.json").read_text())
    assert stored_report["run"]["run_id"] == RUN_ID
    assert [s["key"] for s in stored_report["ship"]["shipped"]] == [s.key for s in report.shipped]
    assert not spool.path.exists(), "an emptied spool is removed"


def test_a_damaged_warc_is_never_uploaded_and_stays_in_the_spool(
    spool: RunSpool, store: FileStore
) -> None:
    good = write_warcs(spool, 2, max_size=1_000_000)
    damaged = spool.path / name_for(STARTED + timedelta(hours=1))
    shutil.copyfile(GOLDEN / "tampered.warc.gz", damaged)

    report = ship_spool(spool, store)

    assert [s.filename for s in report.shipped] == [p.name for p in good]
    ((pending, why),) = report.pending
    assert pending == str(damaged)
    assert why.startswith(f"{damaged}: block-digest: ")
    assert "at offset 1673 record <urn:uuid:4b800c08-0abe-5fa1-8e49-869aba0137b5>" in why
    assert not report.complete
    assert damaged.read_bytes() == (GOLDEN / "tampered.warc.gz").read_bytes()
    assert store.stat(store_key(damaged.name, "news")) is None
    # The run is not done: its ledger waits with it, and the spool stays.
    assert report.ledger_key is None
    assert list(store.keys("runs/")) == []
    assert spool.path.is_dir()


def test_when_the_store_is_down_the_warcs_wait_in_the_spool_for_a_later_run(
    spool: RunSpool, store: FileStore, tmp_path: Path
) -> None:
    paths = write_warcs(spool, 4)
    kept = {p: p.read_bytes() for p in paths}

    report = ship_spool(spool, down_store(tmp_path))

    assert report.shipped == []
    assert [file for file, _ in report.pending] == [str(p) for p in paths]
    assert all("cannot store" in why for _, why in report.pending)
    assert {p: p.read_bytes() for p in paths} == kept

    later = ship_spool(spool, store)  # the store is back
    assert later.complete
    assert [s.filename for s in later.shipped] == [p.name for p in paths]
    assert not spool.path.exists()


def test_an_interrupted_file_is_sealed_at_its_last_whole_record_and_shipped(
    spool: RunSpool, store: FileStore
) -> None:
    cut_short = spool.path / (name_for(STARTED) + ".open")
    shutil.copyfile(GOLDEN / "truncated.warc.gz", cut_short)
    size = cut_short.stat().st_size

    untouched = ship_spool(spool, store)  # a live run's open file is left alone
    assert (untouched.shipped, untouched.sealed, untouched.ledger_key) == ([], [], None)
    assert cut_short.exists()
    assert spool.path.is_dir()

    report = ship_spool(spool, store, seal_open=True)
    (sealed,) = report.sealed
    assert sealed.path == spool.path / name_for(STARTED)
    assert (sealed.records, sealed.cut_bytes) == (4, size - 2253)
    (shipped,) = report.shipped
    assert shipped.records == 4
    stored = store.root / shipped.key
    assert stored.read_bytes() == (GOLDEN / "truncated.warc.gz").read_bytes()[:2253]
    assert verify_warc(stored).ok
    assert report.as_dict()["sealed"] == [
        {"file": str(sealed.path), "records": 4, "cut_bytes": size - 2253}
    ]
    assert not spool.path.exists()


# --- one file --------------------------------------------------------------------------------


def test_a_file_whose_name_is_not_an_attest_warc_is_refused_and_kept(
    tmp_path: Path, store: FileStore
) -> None:
    path = tmp_path / "good.warc.gz"
    shutil.copyfile(GOLDEN / "good.warc.gz", path)
    with pytest.raises(
        IntegrityError, match=re.escape("good.warc.gz: not an attest WARC file name")
    ):
        ship_file(path, store)
    assert path.exists()
    assert list(store.keys()) == []


def test_a_retry_after_the_upload_finds_the_same_bytes_stored_and_finishes(
    tmp_path: Path, store: FileStore
) -> None:
    """The try that uploaded died before removing its spool copy: the next one finds the
    object, equal to its file, and removes the copy."""
    path = tmp_path / name_for(STARTED)
    shutil.copyfile(GOLDEN / "good.warc.gz", path)
    first = ship_file(path, store)
    assert not path.exists()
    shutil.copyfile(GOLDEN / "good.warc.gz", path)  # the spool copy the dead try left
    again = ship_file(path, store)
    assert (again.key, again.sha256, again.size) == (first.key, first.sha256, first.size)
    assert not path.exists()


def test_other_bytes_under_the_same_key_are_never_overwritten(
    spool: RunSpool, store: FileStore, tmp_path: Path
) -> None:
    name = name_for(STARTED)
    elsewhere = tmp_path / name
    shutil.copyfile(GOLDEN / "good.warc.gz", elsewhere)
    ship_file(elsewhere, store)  # what the store already holds under the key
    key = store_key(name, "news")
    held = (store.root / key).read_bytes()
    other = spool.path / name
    write_warcs(spool, 1)[0].rename(other)

    report = ship_spool(spool, store)

    ((pending, why),) = report.pending
    assert pending == str(other)
    assert "already exists with sha256" in why
    assert (store.root / key).read_bytes() == held
    assert other.exists()


# --- where the run's report is, and what it recorded -----------------------------------------


def test_run_base_is_the_day_the_run_started() -> None:
    assert run_base("2026-11-28T23:59:30+00:00", RUN_ID) == f"runs/2026/11/28/{RUN_ID}"
    assert run_base("", RUN_ID) == f"runs/unknown/{RUN_ID}"


def test_the_upload_record_of_a_warc_is_found_in_its_runs_report(
    tmp_path: Path, store: FileStore
) -> None:
    # The run started before midnight; its WARCs are named by the next day's time.
    spool = new_spool(tmp_path / "spool")
    paths = write_warcs(spool, 3, max_size=1_000_000, start=STARTED + timedelta(hours=2))
    report = ship_spool(spool, store)
    (shipped,) = report.shipped
    assert shipped.key.startswith("warcs/news/2026/11/29/")
    found = upload_record(store, shipped.key)
    assert found is not None
    entry, report_key = found
    assert report_key == f"runs/2026/11/28/{RUN_ID}/run-report.json"
    assert entry == {**vars(shipped), "run_id": RUN_ID}
    assert paths[0].name == shipped.filename


def test_no_upload_record_for_other_names_other_runs_or_unreadable_reports(
    tmp_path: Path, store: FileStore, caplog: pytest.LogCaptureFixture
) -> None:
    assert upload_record(store, "warcs/news/2026/11/28/other.warc.gz") is None
    key = store_key(name_for(STARTED), "news")
    assert upload_record(store, key) is None  # no run report at all
    broken = tmp_path / "run-report.json"
    broken.write_text("{not json")
    report_key = f"runs/2026/11/28/{RUN_ID}/run-report.json"
    store.put_file(report_key, broken, file_sha256(broken))
    with caplog.at_level("WARNING", logger="archive.ingest.ship"):
        assert upload_record(store, key) is None
    assert f"cannot read {report_key}" in caplog.text


# --- the capture custody entry ---------------------------------------------------------------


@pytest.fixture
def custody(tmp_path: Path, store: FileStore) -> Iterator[CustodyLog]:
    with IndexDB(str(tmp_path / "index.sqlite")) as db:
        yield CustodyLog(db, store)


def test_each_stored_warc_is_logged_once_with_what_its_upload_established(
    custody: CustodyLog, store: FileStore
) -> None:
    warc = ShippedWarc(
        "a.warc.gz",
        "warcs/news/a.warc.gz",
        store.object_uri("warcs/news/a.warc.gz"),
        "ab" * 32,
        1234,
        7,
        "v-1",
    )
    assert record_capture(custody, warc, RUN_ID, verified=True)
    assert not record_capture(custody, warc, RUN_ID, verified=True)  # a retried step
    assert not record_capture(custody, warc, "another-run", verified=False, recorded_from="x")
    (entry,) = custody.for_object(warc.uri)
    assert entry.action == "capture"
    assert entry.details == {
        "sha256": "ab" * 32,
        "size": 1234,
        "records": 7,
        "run_id": RUN_ID,
        "verified_before_upload": True,
        "version_id": "v-1",
    }


def test_a_warc_found_after_a_dead_try_says_where_its_values_come_from(
    custody: CustodyLog, store: FileStore
) -> None:
    warc = ShippedWarc(
        "b.warc.gz",
        "warcs/news/b.warc.gz",
        store.object_uri("warcs/news/b.warc.gz"),
        "cd" * 32,
        99,
        None,
    )
    assert record_capture(
        custody, warc, RUN_ID, verified=False, recorded_from="runs/2026/11/28/x/run-report.json"
    )
    (entry,) = custody.for_object(warc.uri)
    assert entry.details == {
        "sha256": "cd" * 32,
        "size": 99,
        "records": None,
        "run_id": RUN_ID,
        "verified_before_upload": False,
        "recorded_from": "runs/2026/11/28/x/run-report.json",
    }


# --- recovering dead runs --------------------------------------------------------------------


def test_recover_ships_the_spools_of_dead_runs_and_leaves_live_ones(
    tmp_path: Path, store: FileStore
) -> None:
    root = tmp_path / "spool"
    dead = new_spool(root, "0d0d0d0d-0000-4000-8000-000000000001")
    dead_paths = write_warcs(dead, 2, max_size=1_000_000)
    interrupted = dead.path / (name_for(STARTED, 1, dead.run_id) + ".open")
    shutil.copyfile(GOLDEN / "truncated.warc.gz", interrupted)
    dead.release()  # its process died: the lock is free
    live = new_spool(root, "1e1e1e1e-0000-4000-8000-000000000002")
    live_paths = write_warcs(live, 2, max_size=1_000_000)

    reports = recover(root, store)

    assert [r.run_id for r in reports] == [dead.run_id]
    (report,) = reports
    assert report.complete
    assert len(report.sealed) == 1
    assert sorted(s.filename for s in report.shipped) == sorted(
        [p.name for p in dead_paths] + [interrupted.name.removesuffix(".open")]
    )
    assert not dead.path.exists()
    assert all(p.exists() for p in live_paths), "a live run's spool is not touched"
    live.release()
    # Once the live run has died too, the next recovery ships it.
    (later,) = recover(root, store)
    assert later.run_id == live.run_id
    assert [s.filename for s in later.shipped] == [p.name for p in live_paths]
    assert recover(root, store) == []


def test_the_report_as_stored() -> None:
    report = ShipReport(run_id=RUN_ID)
    assert report.complete
    report.pending.append(("/spool/x.warc.gz", "store down"))
    assert not report.complete
    assert report.as_dict() == {
        "run_id": RUN_ID,
        "shipped": [],
        "pending": [{"file": "/spool/x.warc.gz", "reason": "store down"}],
        "sealed": [],
        "ledger_key": None,
    }
