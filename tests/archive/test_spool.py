"""The run spool: its lock between processes, rotating WARC files, sealing after a crash, names."""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.errors import IntegrityError, SpoolLocked
from archive.ingest.spool import (
    CLOSED_SUFFIX,
    OPEN_SUFFIX,
    RotatingWarcWriter,
    RunSpool,
    dead_spools,
    seal_open_file,
    source_of,
    store_key,
    warc_filename,
)
from archive.warc.read import verify_warc
from archive.warc.write import Block, RecordSpec, WarcFileWriter, WrittenRecord

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
START = datetime(2026, 11, 27, 21, 25, 33, 123456, tzinfo=UTC)

# Run in a separate interpreter: takes the lock, says so, and holds it until stdin closes.
HOLD_LOCK = """
import sys
from pathlib import Path
from archive.ingest.spool import RunSpool
RunSpool(Path(sys.argv[1])).acquire()
print("locked", flush=True)
sys.stdin.read()
"""
TRY_LOCK = """
import sys
from pathlib import Path
from archive.errors import SpoolLocked
from archive.ingest.spool import RunSpool
try:
    RunSpool(Path(sys.argv[1])).acquire()
except SpoolLocked:
    print("refused")
else:
    print("acquired")
"""


@contextmanager
def lock_held_by_another_process(spool_dir: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(spool_dir)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()


def acquire_from_another_process(spool_dir: Path) -> str:
    """``acquired`` or ``refused``: what another process gets when it tries the lock."""
    result = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(spool_dir)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


class SteppingClock:
    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        return START + timedelta(milliseconds=self.readings)


def warcinfo_fields(name: str) -> list[tuple[str, str]]:
    return [("software", "attest tests"), ("source-id", "news"), ("file", name)]


def resource(data: bytes, uri: str) -> RecordSpec:
    return RecordSpec(
        record_type="resource",
        block=Block.from_bytes(data),
        target_uri=uri,
        content_type="application/octet-stream",
    )


def rotating_writer(
    spool_dir: Path, max_size: int, on_closed: Callable[[Path], None] | None = None
) -> RotatingWarcWriter:
    return RotatingWarcWriter(
        spool_dir,
        "news",
        RUN_ID,
        warcinfo_fields,
        max_size=max_size,
        clock=SteppingClock(),
        on_closed=on_closed,
    )


# --- the lock -----------------------------------------------------------------------------------


def test_create_makes_the_spool_records_who_made_it_and_holds_its_lock(tmp_path: Path) -> None:
    info = {"run_id": RUN_ID, "sources": ["news", "ngo"]}
    spool = RunSpool.create(tmp_path, RUN_ID, info)
    assert spool.path == tmp_path / RUN_ID
    assert spool.run_id == RUN_ID
    assert json.loads((spool.path / "run.json").read_text()) == info
    assert spool.info() == info
    assert acquire_from_another_process(spool.path) == "refused"
    spool.release()
    assert acquire_from_another_process(spool.path) == "acquired"


def test_create_never_reuses_an_existing_spool(tmp_path: Path) -> None:
    RunSpool.create(tmp_path, RUN_ID, {}).release()
    with pytest.raises(FileExistsError):
        RunSpool.create(tmp_path, RUN_ID, {})


@pytest.mark.parametrize("ending", ["exits", "is killed"])
def test_a_spool_held_by_a_live_process_is_refused_until_that_process_ends(
    tmp_path: Path, ending: str
) -> None:
    spool = RunSpool.create(tmp_path, RUN_ID, {})
    spool.release()
    contender = RunSpool(spool.path)
    with lock_held_by_another_process(spool.path) as holder:
        with pytest.raises(SpoolLocked, match="in use by a live run"):
            contender.acquire()
        if ending == "exits":
            assert holder.stdin is not None
            holder.stdin.close()
        else:
            holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    contender.acquire()
    assert acquire_from_another_process(spool.path) == "refused"
    contender.release()


def test_a_second_handle_in_the_same_process_is_refused_but_reacquiring_is_harmless(
    tmp_path: Path,
) -> None:
    spool = RunSpool.create(tmp_path, RUN_ID, {})
    fd = spool.lock_fd
    spool.acquire()  # already held by this handle: nothing changes
    assert spool.lock_fd == fd
    with pytest.raises(SpoolLocked):
        RunSpool(spool.path).acquire()
    spool.release()
    with pytest.raises(SpoolLocked, match="lock not held"):
        _ = spool.lock_fd


def test_dead_spools_yields_only_spools_whose_lock_is_free_and_locks_them(tmp_path: Path) -> None:
    live = RunSpool.create(tmp_path, "live-run", {})
    live.release()
    RunSpool.create(tmp_path, "finished-run", {}).release()
    crashed = RunSpool.create(tmp_path, "crashed-run", {})
    crashed.release()
    (tmp_path / "not-a-spool.txt").write_text("ignored")
    with (
        lock_held_by_another_process(live.path),
        lock_held_by_another_process(crashed.path) as crashing,
    ):
        crashing.send_signal(signal.SIGKILL)
        crashing.wait(timeout=30)
        found = list(dead_spools(tmp_path))
        assert [spool.run_id for spool in found] == ["crashed-run", "finished-run"]
        for spool in found:
            assert acquire_from_another_process(spool.path) == "refused"
            spool.release()


def test_dead_spools_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert list(dead_spools(tmp_path / "no-such-dir")) == []


# --- rotating writer ----------------------------------------------------------------------------


def test_rotating_writer_rotates_by_size_and_starts_every_file_with_warcinfo(
    tmp_path: Path,
) -> None:
    closed: list[Path] = []
    writer = rotating_writer(tmp_path, max_size=4000, on_closed=closed.append)
    rng = random.Random(1)
    written = [writer.write(resource(rng.randbytes(1500), f"urn:test:{n}")) for n in range(12)]
    writer.close()

    files = sorted(tmp_path.iterdir())
    assert not [p for p in files if p.name.endswith(OPEN_SUFFIX)]
    assert files == closed
    assert len(files) > 2
    ids_in_files: list[str | None] = []
    for path in files:
        verdict = verify_warc(path)
        assert verdict.ok
        warcinfo, *records = verdict.records
        assert warcinfo.record_type == "warcinfo"
        assert warcinfo.header("WARC-Filename") == path.name
        assert all(r.header("WARC-Warcinfo-ID") == warcinfo.record_id for r in records)
        assert records, "a file holds more than its warcinfo"
        # Rotation happens once a file has reached the limit, before the next record.
        assert records[-1].offset < 4000
        if path != files[-1]:
            assert path.stat().st_size >= 4000
        ids_in_files += [r.record_id for r in records]
    assert ids_in_files == [w.record_id for w in written]
    assert list(dict.fromkeys(w.filename for w in written)) == [p.name for p in files]
    assert writer.records_written == len(written) + len(files)
    assert writer.bytes_written == sum(p.stat().st_size for p in files)


def test_the_file_being_written_is_named_open_until_it_is_closed(tmp_path: Path) -> None:
    writer = rotating_writer(tmp_path, max_size=1_000_000)
    written = writer.write(resource(b"first", "urn:test:first"))
    assert written.filename.endswith(CLOSED_SUFFIX)
    assert [p.name for p in tmp_path.iterdir()] == [written.filename + ".open"]
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == [written.filename]
    assert source_of(written.filename) == "news"


def test_write_many_keeps_records_that_belong_together_in_one_file(tmp_path: Path) -> None:
    writer = rotating_writer(tmp_path, max_size=1)  # every call may start a new file
    pair1 = writer.write_many(
        [resource(b"request 1", "urn:test:q1"), resource(b"response 1", "urn:test:r1")]
    )
    pair2 = writer.write_many(
        [
            resource(b"request 2", "urn:test:q2"),
            resource(b"response 2", "urn:test:r2"),
            resource(b"metadata 2", "urn:test:m2"),
        ]
    )
    writer.close()
    assert len({w.filename for w in pair1}) == 1
    assert len({w.filename for w in pair2}) == 1
    assert pair1[0].filename != pair2[0].filename
    for pair in (pair1, pair2):
        records = verify_warc(tmp_path / pair[0].filename).records
        assert [r.record_id for r in records[1:]] == [w.record_id for w in pair]


def test_write_many_writes_all_of_its_records_or_none(tmp_path: Path) -> None:
    writer = rotating_writer(tmp_path, max_size=1_000_000)
    kept = writer.write(resource(b"earlier", "urn:test:earlier"))
    counts = (writer.records_written, writer.bytes_written)
    broken = Block(
        100, stream=io.BytesIO(b"the response stopped"), block_digest="sha256:" + "0" * 64
    )
    with pytest.raises(ValueError, match="80 bytes early"):
        writer.write_many(
            [
                resource(b"request", "urn:test:request"),
                RecordSpec(record_type="response", block=broken, target_uri="urn:test:request"),
            ]
        )
    assert (writer.records_written, writer.bytes_written) == counts
    writer.close()
    records = verify_warc(tmp_path / kept.filename).records
    assert [r.record_type for r in records] == ["warcinfo", "resource"]
    assert records[-1].record_id == kept.record_id


def test_a_file_whose_warcinfo_cannot_be_written_is_not_left_behind(tmp_path: Path) -> None:
    def failing_warcinfo(name: str) -> list[tuple[str, str]]:
        raise RuntimeError("warcinfo unavailable")

    writer = RotatingWarcWriter(tmp_path, "news", RUN_ID, failing_warcinfo)
    with pytest.raises(RuntimeError, match="warcinfo unavailable"):
        writer.write(resource(b"x", "urn:test:x"))
    assert list(tmp_path.iterdir()) == []


# --- sealing after a crash ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def interrupted_source(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[bytes, list[WrittenRecord]]:
    """A small WARC (warcinfo + three records) as the bytes a dead run's .open file began with."""
    path = tmp_path_factory.mktemp("source") / "source.warc.gz.open"
    counter = iter(range(1, 100))
    writer = WarcFileWriter(
        path,
        "source.warc.gz",
        clock=SteppingClock(),
        id_factory=lambda: f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'seal-{next(counter)}')}>",
    )
    written = [writer.write_warcinfo(warcinfo_fields("source.warc.gz"))]
    written += [
        writer.write(resource(f"record {n}: ".encode() + b"evidence " * (10 * n), f"urn:test:{n}"))
        for n in range(1, 4)
    ]
    writer.close()
    return path.read_bytes(), written


def seal_cut(spool_dir: Path, data: bytes, cut: int) -> tuple[Path | None, int, int]:
    """Seal ``data[:cut]`` as an .open file; return (path, records, cut_bytes) of the result."""
    path = spool_dir / f"attest-news-{cut:06d}.warc.gz.open"
    path.write_bytes(data[:cut])
    result = seal_open_file(path)
    assert not path.exists()
    return result.path, result.records, result.cut_bytes


def assert_sealed_keeps_complete_records(
    spool_dir: Path, data: bytes, written: list[WrittenRecord], cuts: range
) -> None:
    for cut in cuts:
        complete = [w for w in written if w.offset + w.length <= cut]
        boundary = complete[-1].offset + complete[-1].length if complete else 0
        sealed, records, cut_bytes = seal_cut(spool_dir, data, cut)
        assert cut_bytes == cut - boundary, cut
        assert records == len(complete), cut
        if not complete:
            assert sealed is None, cut
            assert list(spool_dir.iterdir()) == [], cut
            continue
        assert sealed is not None
        assert sealed.name == f"attest-news-{cut:06d}.warc.gz"
        assert sealed.read_bytes() == data[:boundary], cut
        verdict = verify_warc(sealed)
        assert verdict.ok, cut
        assert [r.record_id for r in verdict.records] == [w.record_id for w in complete], cut
        sealed.unlink()


def test_seal_cut_at_every_byte_inside_the_last_record_keeps_the_records_before_it(
    tmp_path: Path, interrupted_source: tuple[bytes, list[WrittenRecord]]
) -> None:
    data, written = interrupted_source
    last = written[-1]
    assert_sealed_keeps_complete_records(
        tmp_path, data, written, range(last.offset, last.offset + last.length)
    )


def test_seal_cut_at_any_byte_of_the_file_keeps_exactly_the_complete_records(
    tmp_path: Path, interrupted_source: tuple[bytes, list[WrittenRecord]]
) -> None:
    data, written = interrupted_source
    assert_sealed_keeps_complete_records(tmp_path, data, written, range(0, len(data) + 1))


def test_seal_cut_inside_the_first_record_leaves_no_file(
    tmp_path: Path, interrupted_source: tuple[bytes, list[WrittenRecord]]
) -> None:
    data, written = interrupted_source
    for cut in (0, 1, 2, 10, written[0].length // 2, written[0].length - 1):
        assert seal_cut(tmp_path, data, cut) == (None, 0, cut)
        assert list(tmp_path.iterdir()) == []


def test_seal_of_a_whole_file_only_closes_it(
    tmp_path: Path, interrupted_source: tuple[bytes, list[WrittenRecord]]
) -> None:
    data, written = interrupted_source
    sealed, records, cut_bytes = seal_cut(tmp_path, data, len(data))
    assert (records, cut_bytes) == (len(written), 0)
    assert sealed is not None
    assert sealed.read_bytes() == data


def test_seal_refuses_a_file_with_a_digest_mismatch_and_leaves_it_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "attest-news-damaged.warc.gz.open"
    writer = WarcFileWriter(path, "attest-news-damaged.warc.gz", clock=SteppingClock())
    writer.write_warcinfo(warcinfo_fields(path.name))
    writer.write(resource(b"before", "urn:test:before"))
    damaged = writer.write(
        RecordSpec(
            record_type="resource",
            target_uri="urn:test:damaged",
            block=Block(6, data=b"middle", block_digest="sha256:" + "0" * 64),
        )
    )
    last = writer.write(resource(b"after the damage " * 20, "urn:test:after"))
    writer.close()
    # Also interrupted: the file ends inside its last record.
    with open(path, "r+b") as handle:
        handle.truncate(last.offset + last.length // 2)
    before = path.read_bytes()
    refusal = f"refusing to seal a damaged file.*{damaged.record_id}"
    with pytest.raises(IntegrityError, match=refusal):
        seal_open_file(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# --- names and keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("source_id", ["news", "ngo-releases", "gov.press_office", "x1"])
def test_file_names_round_trip_through_store_key_and_source_of(source_id: str) -> None:
    name = warc_filename(f"attest-{source_id}", START, 7, RUN_ID)
    assert name == f"attest-{source_id}-20261127212533123456-00007-0f1e2d3c.warc.gz"
    assert source_of(name) == source_id
    assert store_key(name, source_of(name)) == f"warcs/{source_id}/2026/11/27/{name}"


@pytest.mark.parametrize(
    "name",
    [
        "example.warc.gz",
        "attest-news.warc.gz",
        "attest-news-20261127212533123456-00007-0f1e2d3c.warc.gz.open",
        "attest-news-20261127212533123456-00007-0f1e2d3c.warc",
        "attest-news-2026112721253312345-00007-0f1e2d3c.warc.gz",
        "attest-news-20261127212533123456-7-0f1e2d3c.warc.gz",
        "attest-news-20261127212533123456-00007-0F1E2D3C.warc.gz",
        "attest-news-20261127212533123456-00007-0f1e2d3.warc.gz",
        "attest-a/../../b-20261127212533123456-00007-0f1e2d3c.warc.gz",
        "warcs/attest-news-20261127212533123456-00007-0f1e2d3c.warc.gz",
        ".attest-news-20261127212533123456-00007-0f1e2d3c.warc.gz",
    ],
)
def test_foreign_file_names_are_rejected(name: str) -> None:
    with pytest.raises(IntegrityError, match="not an attest WARC file name"):
        store_key(name, "news")
    with pytest.raises(IntegrityError, match="not an attest WARC file name"):
        source_of(name)


def test_a_well_formed_name_without_the_attest_prefix_names_no_source() -> None:
    name = "crawler-news-20261127212533123456-00007-0f1e2d3c.warc.gz"
    assert store_key(name, "news") == f"warcs/news/2026/11/27/{name}"
    with pytest.raises(IntegrityError, match="not an attest WARC file name"):
        source_of(name)


@pytest.mark.parametrize("source_id", ["", "../etc", "a/b", ".hidden"])
def test_store_key_rejects_source_ids_that_are_not_one_key_segment(source_id: str) -> None:
    name = warc_filename("attest-news", START, 0, RUN_ID)
    with pytest.raises(IntegrityError, match="not a source id"):
        store_key(name, source_id)
