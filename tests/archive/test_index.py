"""Indexing real WARCs: rows, page texts and CDXJ from one pass, then the database and the store.

The WARCs are written with attest's own writer (tests/support/indexwarcs.py); offsets are
checked against gzip member boundaries found by zlib alone, and the CDXJ against
``cdxj-indexer`` (the IIPC's indexer, used by pywb) run on the same file.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.indexwarcs import (
    BR_HTML,
    BR_URL,
    GZIP_HTML,
    GZIP_URL,
    IMAGE_URL,
    PNG,
    POST_TEXT,
    POST_URL,
    RUN_ID,
    SOURCE_ID,
    START,
    Sample,
    WarcBuilder,
    sample_warc,
)

from archive.custody.log import CustodyLog
from archive.dates import timestamp14, warc_date_micros
from archive.errors import ConfigError, DigestMismatch, IntegrityError
from archive.index.cdxj import REPLAYABLE, IndexRow, WarcIndex, index_bytes, read_warc_index
from archive.index.db import COLUMNS, IndexDB
from archive.index.retrieve import load_payload, raw_record
from archive.ingest.indexer import index_keys, index_warc, rebuild, resolve_warc_key, warc_keys
from archive.store import FileStore, file_sha256
from archive.warc.write import Block, RecordSpec, WrittenRecord

KEY = "warcs/src/2026/11/28/sample-00000.warc.gz"
CDXJ_INDEXER = str(Path(sys.executable).with_name("cdxj-indexer"))


def member_spans(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each gzip member, as zlib finds their ends."""
    spans = []
    offset = 0
    while offset < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[offset:])
        assert inflater.eof
        length = len(data) - offset - len(inflater.unused_data)
        spans.append((offset, length))
        offset += length
    return spans


def record_id_of(member: bytes) -> str:
    plain = gzip.decompress(member)
    assert plain.startswith(b"WARC/1.1\r\n")
    head = plain.split(b"\r\n\r\n", 1)[0].decode()
    return next(
        line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith("WARC-Record-ID:")
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return sample_warc(tmp_path_factory.mktemp("warc"))


@pytest.fixture(scope="module")
def index(sample: Sample) -> WarcIndex:
    return read_warc_index(sample.path, KEY)


def row_for(index: WarcIndex, record: WrittenRecord) -> IndexRow:
    found = [r for r in index.rows if r.record_id == record.record_id]
    assert len(found) == 1
    return found[0]


# --- rows ------------------------------------------------------------------------------------


def test_every_record_but_warcinfo_becomes_a_row_at_its_gzip_member(
    sample: Sample, index: WarcIndex
) -> None:
    spans = member_spans(sample.path.read_bytes())
    written = sample.records
    assert len(spans) == len(written)
    assert [(w.offset, w.length) for w in written] == spans
    assert written[0].record_type == "warcinfo"
    assert [(r.offset, r.length) for r in index.rows] == spans[1:]
    assert [r.record_id for r in index.rows] == [w.record_id for w in written[1:]]
    assert [r.record_type for r in index.rows] == [w.record_type for w in written[1:]]
    assert [r.record_type for r in index.rows].count("request") == 5
    assert {r.warc_key for r in index.rows} == {KEY}


def test_rows_carry_the_warcinfo_run_and_source(index: WarcIndex) -> None:
    assert index.run_id == RUN_ID
    assert index.source == SOURCE_ID
    assert index.warcinfo["attest-run-id"] == RUN_ID
    assert index.warcinfo["source-id"] == SOURCE_ID
    assert {(r.run_id, r.source) for r in index.rows} == {(RUN_ID, SOURCE_ID)}


def test_response_rows(sample: Sample, index: WarcIndex) -> None:
    expected = [
        (sample.html_gzip, ("com,example)/news/harbour.html", 200, "text/html")),
        # www. is dropped from the key as pywb does; the query string stays.
        (sample.html_br, ("com,example)/news/tanker.html?lang=en", 200, "text/html")),
        (sample.image, ("com,example)/static/logo.png", 200, "image/png")),
        (sample.post, ("example,social)/@alice/42", 200, "text/html")),
        (sample.missing, ("com,example)/gone.html", 404, "text/html")),
    ]
    for exchange, (surt, status, mime) in expected:
        row = row_for(index, exchange.response)
        assert row.record_type == "response"
        assert row.url == exchange.url
        assert row.surt == surt
        assert row.status == status
        assert row.mime == mime
        assert row.ts == warc_date_micros(exchange.response.date)
        assert row.ts % 1_000 == START.microsecond % 1_000  # microseconds kept
        assert row.digest == exchange.response.payload_digest
        assert row.block_digest == exchange.response.block_digest
        assert row.ip == "203.0.113.7"
        assert (row.offset, row.length) == (exchange.response.offset, exchange.response.length)
        request = row_for(index, exchange.request)
        assert request.record_type == "request"
        assert request.concurrent_to == row.record_id
        assert request.status is None
        assert request.surt == surt
        assert request.ts < row.ts


def test_offsets_and_lengths_read_back_from_the_store_as_the_named_record(
    sample: Sample, index: WarcIndex, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "store")
    store.put_file(KEY, sample.path, file_sha256(sample.path))
    for row in index.rows:
        member = store.read_range(KEY, row.offset, row.length)
        assert member[:2] == b"\x1f\x8b"
        inflater = zlib.decompressobj(31)
        inflater.decompress(member)
        assert inflater.eof, "a whole gzip member"
        assert not inflater.unused_data, "exactly one gzip member"
        assert record_id_of(member) == row.record_id
        assert raw_record(store, row) == member


def test_platform_ids_go_to_the_response_the_metadata_names(
    sample: Sample, index: WarcIndex
) -> None:
    post = row_for(index, sample.post.response)
    assert (post.platform, post.account, post.post_id) == ("mastodon", "alice", "42")
    metadata = row_for(index, sample.metadata)
    assert metadata.record_type == "metadata"
    assert metadata.mime == "application/json; profile=attest-page"
    assert metadata.concurrent_to == sample.post.response.record_id
    assert metadata.url == POST_URL
    others = [r for r in index.rows if r.record_id != post.record_id]
    assert all(r.platform is r.account is r.post_id is None for r in others)


def test_rendered_text_resource_row(sample: Sample, index: WarcIndex) -> None:
    text = row_for(index, sample.text)
    assert text.record_type == "resource"
    assert text.url == f"urn:text:{POST_URL}"
    assert text.surt == f"urn:text:{POST_URL}"
    assert text.mime == "text/plain"
    assert text.status is None
    assert text.digest == sample.text.block_digest  # a resource's digest is its block's
    assert text.concurrent_to == sample.post.response.record_id


# --- page texts ------------------------------------------------------------------------------


def test_page_texts_are_decoded_and_visible_only(sample: Sample, index: WarcIndex) -> None:
    harbour = index.texts[sample.html_gzip.response.record_id]
    assert harbour == "Oil spill reaches the harbour Residents smelled diesel on Thursday."
    assert "scriptword" not in harbour
    assert "color" not in harbour
    tanker = index.texts[sample.html_br.response.record_id]  # br, chunked
    assert "The tanker Ōtaki ran aground near the reef" in tanker
    assert tanker.startswith("Tanker aground")


def test_the_rendered_text_is_preferred_to_the_html(sample: Sample, index: WarcIndex) -> None:
    text = index.texts[sample.post.response.record_id]
    assert text == " ".join(POST_TEXT.split())
    assert "Loading" not in text


def test_only_successful_pages_get_text(sample: Sample, index: WarcIndex) -> None:
    assert set(index.texts) == {
        sample.html_gzip.response.record_id,
        sample.html_br.response.record_id,
        sample.post.response.record_id,
    }


def test_texts_can_be_skipped(sample: Sample, index: WarcIndex) -> None:
    bare = read_warc_index(sample.path, KEY, texts=False)
    assert bare.texts == {}
    # The rows are the same, platform ids included: only the texts are left out.
    assert bare.rows == index.rows
    assert any(r.platform == "mastodon" for r in bare.rows)


def test_index_bytes_equals_read_warc_index(sample: Sample, index: WarcIndex) -> None:
    again = index_bytes(sample.path.read_bytes(), KEY)
    assert again.rows == index.rows
    assert again.texts == index.texts
    assert again.cdxj() == index.cdxj()


# --- CDXJ ------------------------------------------------------------------------------------


def parse_cdxj(data: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    lines = []
    for line in data.decode("utf-8").splitlines():
        urlkey, timestamp, body = line.split(" ", 2)
        assert len(timestamp) == 14
        assert timestamp.isdigit()
        fields = json.loads(body)
        assert isinstance(fields, dict)
        lines.append((urlkey, timestamp, fields))
    return lines


def test_cdxj_lists_what_replays_sorted_by_key_and_time(index: WarcIndex) -> None:
    data = index.cdxj()
    assert data.endswith(b"\n")
    lines = parse_cdxj(data)
    assert [(k, t) for k, t, _ in lines] == sorted((k, t) for k, t, _ in lines)
    replayable = [r for r in index.rows if r.record_type in REPLAYABLE]
    assert len(lines) == len(replayable) == 6
    assert {int(f["offset"]) for *_, f in lines} == {r.offset for r in replayable}
    by_offset = {r.offset: r for r in index.rows}
    for urlkey, timestamp, fields in lines:
        row = by_offset[int(fields["offset"])]
        assert row.record_type in ("response", "resource")
        assert urlkey == row.surt
        assert fields["url"] == row.url
        assert fields["mime"] == row.mime
        assert fields["length"] == str(row.length)
        assert fields["filename"] == KEY
        assert fields["digest"] == row.digest
        assert fields.get("status") == (None if row.status is None else str(row.status))
        assert timestamp == timestamp14(row.ts)
        assert timestamp.startswith("20261128024")
    assert b"attest-page" not in data  # metadata records never replay as the page


def run_cdxj_indexer(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    done = subprocess.run(
        [CDXJ_INDEXER, "--records", "response,revisit,resource", str(path)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return parse_cdxj(done.stdout)


def comparable(lines: list[tuple[str, str, dict[str, Any]]]) -> set[tuple[Any, ...]]:
    return {
        (k, t, f["offset"], f["length"], f["url"], f["mime"], f.get("status"), f.get("digest"))
        for k, t, f in lines
    }


def test_cdxj_agrees_with_cdxj_indexer(sample: Sample, index: WarcIndex) -> None:
    theirs = run_cdxj_indexer(sample.path)
    ours = parse_cdxj(index.cdxj())
    assert len(theirs) == len(ours)
    assert {(k, t, f["offset"], f["length"]) for k, t, f in ours} == {
        (k, t, f["offset"], f["length"]) for k, t, f in theirs
    }
    assert comparable(ours) == comparable(theirs)


def test_revisits_are_indexed_and_agree_with_cdxj_indexer(tmp_path: Path) -> None:
    builder = WarcBuilder(tmp_path / "revisit.warc.gz", "revisit.warc.gz")
    first = builder.exchange(GZIP_URL, GZIP_HTML, encoding="gzip")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n"
    revisit = builder.writer.write(
        RecordSpec(
            record_type="revisit",
            block=Block.from_bytes(head, payload_is_block=False),
            target_uri=GZIP_URL,
            content_type="application/http; msgtype=response",
            headers=[
                (
                    "WARC-Profile",
                    "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest",
                ),
                ("WARC-Refers-To", first.response.record_id),
                ("WARC-Refers-To-Target-URI", GZIP_URL),
                ("WARC-Payload-Digest", first.response.payload_digest or ""),
            ],
        )
    )
    path = builder.close()
    warc_index = read_warc_index(path, "warcs/r.warc.gz")
    row = row_for(warc_index, revisit)
    assert row.record_type == "revisit"
    assert row.mime == "warc/revisit"
    assert row.status == 200
    assert row.digest == first.response.payload_digest
    assert row.concurrent_to == first.response.record_id
    ours = parse_cdxj(warc_index.cdxj())
    assert [f["mime"] for *_, f in ours] == ["text/html", "warc/revisit"]
    assert {(k, t, f["offset"], f["length"]) for k, t, f in ours} == {
        (k, t, f["offset"], f["length"]) for k, t, f in run_cdxj_indexer(path)
    }


def test_an_uncompressed_warc_is_indexed_at_its_record_offsets(
    sample: Sample, index: WarcIndex, tmp_path: Path
) -> None:
    plain = tmp_path / "sample.warc"
    plain.write_bytes(gzip.decompress(sample.path.read_bytes()))
    plain_index = read_warc_index(plain, "warcs/sample.warc")
    assert [r.record_id for r in plain_index.rows] == [r.record_id for r in index.rows]
    assert plain_index.texts == index.texts
    data = plain.read_bytes()
    for row in plain_index.rows:
        record = data[row.offset : row.offset + row.length]
        assert record.startswith(b"WARC/1.1\r\n")
        assert record.endswith(b"\r\n\r\n")
        assert f"WARC-Record-ID: {row.record_id}\r\n".encode() in record
    # warcio (so cdxj-indexer) counts a plain record without its closing CRLF CRLF; attest
    # counts the whole record. Both read the same record from the same offset.
    theirs = run_cdxj_indexer(plain)
    assert {
        (k, t, f["offset"], int(f["length"])) for k, t, f in parse_cdxj(plain_index.cdxj())
    } == {(k, t, f["offset"], int(f["length"]) + 4) for k, t, f in theirs}


def members_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[o : o + n] for o, n in member_spans(data)]


def rewrite_member(member: bytes, change: Any) -> bytes:
    """The record of a gzip member changed by ``change(plain bytes)``, gzipped again."""
    return gzip.compress(change(gzip.decompress(member)))


@pytest.mark.parametrize(
    ("damage", "check", "message", "rows_kept"),
    [
        (lambda data: b"", "format", "holds no WARC record", 0),
        # the last record cut short: every record before it is indexed
        (lambda data: data[: len(data) - 20], "truncated", "", -1),
        (lambda data: data + b"garbage after the last record", "format", "gzip", "all"),
        # the first record's gzip member destroyed: nothing after it can be located
        (lambda data: data[:40] + b"\x00" * 50 + data[90:], "format", "gzip", 0),
        (lambda data: gzip.compress(b"not a warc record\r\n\r\n"), "format", "not a WARC", 0),
    ],
)
def test_a_damaged_warc_is_indexed_up_to_its_damage_which_is_a_problem_with_its_offset(
    sample: Sample, index: WarcIndex, tmp_path: Path, damage: Any, check: str, message: str,
    rows_kept: Any,
) -> None:  # fmt: skip
    path = tmp_path / "damaged.warc.gz"
    path.write_bytes(damage(sample.path.read_bytes()))
    damaged = read_warc_index(path, "warcs/damaged.warc.gz")
    assert len(damaged.problems) == 1, damaged.problems
    problem = damaged.problems[0]
    assert problem.check == check
    assert message in problem.detail
    expected = {"all": len(index.rows), -1: len(index.rows) - 1}.get(rows_kept, rows_kept)
    assert len(damaged.rows) == expected
    assert [r.record_id for r in damaged.rows] == [r.record_id for r in index.rows][:expected]
    if expected:
        assert problem.offset >= damaged.rows[-1].offset + damaged.rows[-1].length


def tampered_warc(sample: Sample, tmp_path: Path, changes: dict[int, Any]) -> Path:
    """The sample WARC with the records at these member positions rewritten."""
    members = members_of(sample.path)
    for position, change in changes.items():
        members[position] = change(members[position])
    path = tmp_path / "tampered.warc.gz"
    path.write_bytes(b"".join(members))
    return path


def member_position(sample: Sample, index: WarcIndex, record_id: str) -> int:
    offsets = [o for o, _ in member_spans(sample.path.read_bytes())]
    return offsets.index(next(r.offset for r in index.rows if r.record_id == record_id))


def test_a_record_whose_digests_fail_is_a_problem_and_its_neighbours_are_indexed(
    sample: Sample, index: WarcIndex, tmp_path: Path
) -> None:
    image = sample.image.response.record_id
    page = sample.html_gzip.response.record_id
    changes = {
        # the body changed, the recorded digests kept: both digests fail
        member_position(sample, index, image): lambda m: rewrite_member(
            m, lambda plain: plain.replace(b"IHDR", b"IHDS")
        ),
        # the block digest changed to match a changed body: the payload digest still fails
        member_position(sample, index, page): lambda m: rewrite_member(m, _reseal_body),
    }
    tampered = read_warc_index(tampered_warc(sample, tmp_path, changes), "warcs/t.warc.gz")
    bad = {p.record_id: p for p in tampered.problems}
    assert set(bad) == {image, page}
    assert {p.check for p in tampered.problems if p.record_id == image} >= {"block-digest"}
    assert [p.check for p in tampered.problems if p.record_id == page] == ["payload-digest"]
    assert bad[image].record_type == "response"
    assert bad[image].target_uri == IMAGE_URL
    rows = [r.record_id for r in tampered.rows]
    assert image not in rows
    assert page not in rows
    assert rows == [r.record_id for r in index.rows if r.record_id not in (image, page)]
    assert page not in tampered.texts
    cdxj = tampered.cdxj().decode()
    assert IMAGE_URL not in cdxj


def _reseal_body(plain: bytes) -> bytes:
    """Change a record's HTTP body and give it the block digest of its new block."""
    import hashlib

    head, _, rest = plain.partition(b"\r\n\r\n")
    block = rest[:-4]
    http_head, _, body = block.partition(b"\r\n\r\n")
    changed = http_head + b"\r\n\r\n" + body[:-1] + bytes([body[-1] ^ 1])
    digest = "sha256:" + hashlib.sha256(changed).hexdigest()
    lines = [
        f"WARC-Block-Digest: {digest}".encode() if line.startswith(b"WARC-Block-Digest:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + changed + b"\r\n\r\n"


@pytest.mark.parametrize("length", [b"9999999999999999999", b"-5"])
def test_a_record_with_an_impossible_content_length_is_skipped_to_the_next_member(
    sample: Sample, index: WarcIndex, tmp_path: Path, length: bytes
) -> None:
    image = sample.image.response.record_id

    def lie(plain: bytes) -> bytes:
        head, sep, rest = plain.partition(b"\r\n\r\n")
        lines = [
            b"Content-Length: " + length if line.startswith(b"Content-Length:") else line
            for line in head.split(b"\r\n")
        ]
        return b"\r\n".join(lines) + sep + rest

    changes = {member_position(sample, index, image): lambda m: rewrite_member(m, lie)}
    tampered = read_warc_index(tampered_warc(sample, tmp_path, changes), "warcs/t.warc.gz")
    assert [p.record_id for p in tampered.problems] == [image]
    assert "skipped to the next record" in tampered.problems[0].detail
    assert [r.record_id for r in tampered.rows] == [
        r.record_id for r in index.rows if r.record_id != image
    ]


def test_a_gzip_bomb_member_stops_the_walk_without_inflating_it_whole(
    sample: Sample, index: WarcIndex, tmp_path: Path
) -> None:
    from archive.warc.read import MAX_DRAIN

    image = sample.image.response.record_id
    position = member_position(sample, index, image)

    def bomb(member: bytes) -> bytes:
        # the record as written, followed inside its gzip member by far more zeros than a
        # resync may inflate: a member that does not end where its record does
        plain = gzip.decompress(member)
        inflater = zlib.compressobj(9, zlib.DEFLATED, 31)
        out = inflater.compress(plain)
        zeros = b"\x00" * (1024 * 1024)
        for _ in range(MAX_DRAIN // len(zeros) + 8):
            out += inflater.compress(zeros)
        return out + inflater.flush()

    tampered = read_warc_index(tampered_warc(sample, tmp_path, {position: bomb}), "warcs/t.warc.gz")
    assert len(tampered.problems) == 1
    assert "decompression bomb" in tampered.problems[0].detail
    # everything before the bomb is indexed; its own record is not (its member is not whole)
    assert [r.record_id for r in tampered.rows] == [
        r.record_id for r in index.rows[: [r.record_id for r in index.rows].index(image)]
    ]


# --- retrieval by row ------------------------------------------------------------------------


@pytest.fixture
def stored(sample: Sample, tmp_path: Path) -> FileStore:
    store = FileStore(tmp_path / "store")
    store.put_file(KEY, sample.path, file_sha256(sample.path))
    return store


def test_load_payload_decodes_what_the_row_names(
    sample: Sample, index: WarcIndex, stored: FileStore
) -> None:
    cases = [
        (sample.html_gzip, GZIP_HTML, "text/html; charset=utf-8"),
        (sample.html_br, BR_HTML, "text/html; charset=utf-8"),
        (sample.image, PNG, "image/png"),
    ]
    for exchange, document, content_type in cases:
        payload = load_payload(stored, row_for(index, exchange.response))
        assert payload.body == exchange.body  # as archived: encoded (and chunked)
        assert payload.decoded() == document
        assert payload.content_type == content_type
        assert payload.http is not None
        assert payload.http.status == 200
    text = load_payload(stored, row_for(index, sample.text))
    assert text.http is None
    assert text.decoded() == POST_TEXT.encode()
    assert text.content_type == "text/plain; charset=utf-8"


def test_load_payload_refuses_a_row_that_names_another_record(
    sample: Sample, index: WarcIndex, stored: FileStore
) -> None:
    row = row_for(index, sample.html_gzip.response)
    wrong = dataclasses.replace(row, record_id="<urn:uuid:00000000-0000-4000-8000-000000000000>")
    with pytest.raises(IntegrityError, match="the index says"):
        load_payload(stored, wrong)
    request = row_for(index, sample.html_gzip.request)
    shifted = dataclasses.replace(row, offset=request.offset, length=request.length)
    with pytest.raises(IntegrityError, match=request.record_id):
        load_payload(stored, shifted)
    off_boundary = dataclasses.replace(row, offset=row.offset + 1)
    with pytest.raises(IntegrityError):
        load_payload(stored, off_boundary)


@pytest.mark.parametrize("level", [9, 0])
def test_load_payload_detects_a_changed_block(
    sample: Sample, index: WarcIndex, stored: FileStore, level: int
) -> None:
    """Also in a member of stored blocks (level 0), which reads check without zlib."""
    row = row_for(index, sample.image.response)
    data = sample.path.read_bytes()
    plain = gzip.decompress(data[row.offset : row.offset + row.length])
    tampered = plain.replace(b"IHDR", b"IHDS")
    assert tampered != plain
    member = zlib.compress(tampered, level, wbits=31)
    tampered_file = stored.root.parent / "tampered.warc.gz"
    tampered_file.write_bytes(data[: row.offset] + member + data[row.offset + row.length :])
    key = "warcs/src/tampered.warc.gz"
    stored.put_file(key, tampered_file, file_sha256(tampered_file))
    with pytest.raises(DigestMismatch, match="block digest"):
        load_payload(stored, dataclasses.replace(row, warc_key=key, length=len(member)))


# --- the database and the store --------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[IndexDB]:
    database = IndexDB(str(tmp_path / "index.sqlite"))
    yield database
    database.close()


def later_warc(directory: Path) -> Path:
    """A second WARC: the harbour page again, changed, a day later."""
    builder = WarcBuilder(
        directory / "later-00001.warc.gz",
        "later-00001.warc.gz",
        run_id="22222222-2222-4333-8444-555555555555",
        start=START + timedelta(days=1),
    )
    builder.exchange(
        GZIP_URL, GZIP_HTML.replace(b"diesel", b"kerosene"), encoding="gzip", chunked=True
    )
    builder.exchange(IMAGE_URL, PNG, content_type="image/png")
    return builder.close()


def all_rows(db: IndexDB) -> list[tuple[Any, ...]]:
    return db.rows(f"SELECT {', '.join(COLUMNS)} FROM captures ORDER BY warc_key, warc_offset")


def all_texts(db: IndexDB) -> list[tuple[Any, ...]]:
    return db.rows(
        "SELECT c.warc_key, c.warc_offset, t.body FROM texts t "
        "JOIN captures c ON c.id = t.capture_id ORDER BY 1, 2"
    )


@pytest.fixture
def loaded(sample: Sample, tmp_path: Path) -> tuple[FileStore, list[str]]:
    store = FileStore(tmp_path / "store")
    store.put_file(KEY, sample.path, file_sha256(sample.path))
    later = later_warc(tmp_path)
    later_key = "warcs/src/2026/11/29/later-00001.warc.gz"
    store.put_file(later_key, later, file_sha256(later))
    return store, [KEY, later_key]


def test_index_warc_stores_the_cdxj_beside_the_warc_and_loads_the_rows(
    sample: Sample, index: WarcIndex, db: IndexDB, loaded: tuple[FileStore, list[str]]
) -> None:
    store, _ = loaded
    custody = CustodyLog(db, store)
    result = index_warc(db, store, KEY, custody=custody)
    assert not result.skipped
    assert result.error is None
    assert (result.rows, result.added, result.texts) == (12, 12, 3)
    assert result.cdxj_key == KEY + ".cdxj"
    with store.open(result.cdxj_key) as handle:
        assert handle.read() == index.cdxj()
    assert list(warc_keys(store)) == sorted(loaded[1])  # the CDXJ is not taken for a WARC
    warc = db.warc(KEY)
    assert warc is not None
    assert warc["sha256"] == file_sha256(sample.path)
    assert warc["size"] == sample.path.stat().st_size
    assert (warc["records"], warc["run_id"], warc["source"]) == (12, RUN_ID, SOURCE_ID)
    assert json.loads(warc["warcinfo"])["attest-run-id"] == RUN_ID
    assert warc["cdxj_key"] == KEY + ".cdxj"
    assert db.counts() == {"warcs": 1, "records": 12, "texts": 3}
    selected = db.select(low="com,example)/news/harbour.html", high=None, exact=True)
    assert [r.record_type for r in selected] == ["request", "response"]
    assert selected[1] == row_for(index, sample.html_gzip.response)
    post = db.by_record_id(sample.post.response.record_id)
    assert post is not None
    assert (post.platform, post.account, post.post_id) == (
        "mastodon",
        "alice",
        "42",
    )
    assert {r.record_id for r in db.concurrent_with(post.record_id)} == {
        sample.post.request.record_id,
        sample.metadata.record_id,
        sample.text.record_id,
    }
    capture, event = custody.for_object(store.object_uri(KEY))
    assert capture.action == "capture"
    assert event.action == "index"
    assert event.details["sha256"] == capture.details["sha256"] == file_sha256(sample.path)
    assert event.details["rows"] == 12


def test_indexing_again_changes_nothing(db: IndexDB, loaded: tuple[FileStore, list[str]]) -> None:
    store, _ = loaded
    first = index_warc(db, store, KEY)
    before = (all_rows(db), all_texts(db), db.counts())
    second = index_warc(db, store, KEY)
    assert second.skipped
    assert second.added == 0
    forced = index_warc(db, store, KEY, force=True)
    assert not forced.skipped
    assert (forced.rows, forced.added) == (first.rows, 0)
    assert forced.cdxj_key == first.cdxj_key  # the same object, not a second one
    assert (all_rows(db), all_texts(db), db.counts()) == before
    assert db.counts()["texts"] == 3


def test_search_finds_page_text_with_a_snippet(
    sample: Sample, db: IndexDB, loaded: tuple[FileStore, list[str]]
) -> None:
    store, keys = loaded
    index_keys(db, store, keys)
    (hit,) = db.search("referendum")
    assert hit.url == POST_URL
    assert hit.record_id == sample.post.response.record_id
    assert "[[referendum]]" in hit.snippet
    harbour = db.search("harbour oil")
    assert [h.url for h in harbour] == [GZIP_URL, GZIP_URL]
    assert harbour[0].ts > harbour[1].ts  # equal rank: newest first
    assert [h.url for h in db.search("kerosene")] == [GZIP_URL]
    assert [h.url for h in db.search('"reaches the harbour"')] == [GZIP_URL, GZIP_URL]
    assert [h.url for h in db.search("otaki")] == [BR_URL]  # diacritics folded
    assert db.search("scriptword") == []  # script content is not text
    assert db.search("Loading") == []  # the rendered text replaced the HTML's
    assert db.search("Not here") == []  # a 404 page is not searchable
    assert db.search('" OR 1=1 --') == []
    assert db.search("") == []


def test_rebuild_reproduces_the_incremental_index_and_keeps_the_custody_log(
    db: IndexDB, loaded: tuple[FileStore, list[str]]
) -> None:
    store, keys = loaded
    custody = CustodyLog(db, store)
    custody.append("capture", store.object_uri(keys[0]), {"note": "before indexing"})
    results = index_keys(db, store, keys, custody=custody)
    assert [r.error for r in results] == [None, None]
    rows, texts = all_rows(db), all_texts(db)
    assert len(rows) == 12 + 4
    assert len(texts) == 4
    log_before = list(custody.entries())
    # the second WARC had no capture entry: it got one, as first indexed
    assert [e.action for e in log_before] == ["capture", "index", "capture", "index"]
    assert log_before[2].object == store.object_uri(keys[1])
    assert custody.last_sealed() == 4  # index_keys seals at the end

    rebuilt = rebuild(db, store, custody=custody)

    assert [r.key for r in rebuilt] == sorted(keys)
    assert all(r.added == r.rows and not r.skipped for r in rebuilt)
    assert all_rows(db) == rows
    assert all_texts(db) == texts
    assert db.counts() == {"warcs": 2, "records": 16, "texts": 4}
    log_after = list(custody.entries())
    assert log_after[: len(log_before)] == log_before
    assert [e.action for e in log_after[len(log_before) :]] == ["index", "index"]
    assert custody.verify() == []
    assert custody.last_sealed() == len(log_after)


def test_one_bad_warc_does_not_stop_the_others(
    sample: Sample, db: IndexDB, loaded: tuple[FileStore, list[str]], tmp_path: Path
) -> None:
    store, keys = loaded
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(sample.path.read_bytes()[:-30])
    bad_key = "warcs/src/2026/11/28/broken.warc.gz"
    store.put_file(bad_key, broken, file_sha256(broken))
    results = index_keys(db, store, [bad_key, *keys])
    assert results[0].error is None
    assert not results[0].ok
    assert [p["check"] for p in results[0].problems] == ["truncated"]
    # its complete records are indexed; the cut one is an index problem with its offset
    assert results[0].added == 11
    assert [r.added for r in results[1:]] == [12, 4]
    assert all(r.ok for r in results[1:])
    assert db.is_indexed(bad_key)
    assert db.counts()["warcs"] == 3
    problems = db.problems(bad_key)
    assert [(p["check"], p["offset"]) for p in problems] == [
        ("truncated", results[0].problems[0]["offset"])
    ]
    assert db.warc(bad_key)["problems"] == 1
    assert db.problems() == problems


def test_worker_processes_index_exactly_as_one_process(
    sample: Sample, db: IndexDB, loaded: tuple[FileStore, list[str]], tmp_path: Path
) -> None:
    store, keys = loaded
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(sample.path.read_bytes()[:-30])
    bad_key = "warcs/src/2026/11/28/broken.warc.gz"
    store.put_file(bad_key, broken, file_sha256(broken))
    single = index_keys(db, store, [bad_key, *keys])
    rows, texts = all_rows(db), all_texts(db)
    other = IndexDB(str(tmp_path / "parallel.sqlite"))
    try:
        parallel = index_keys(other, store, [bad_key, *keys], workers=2)
        assert (all_rows(other), all_texts(other)) == (rows, texts)
        by_key = {r.key: r for r in parallel}
        assert [p["check"] for p in by_key[bad_key].problems] == ["truncated"]
        assert sorted((r.key, r.rows, r.added, len(r.problems)) for r in parallel) == sorted(
            (r.key, r.rows, r.added, len(r.problems)) for r in single
        )
    finally:
        other.close()


# --- attest index ----------------------------------------------------------------------------


def index_env(home: Path) -> dict[str, str]:
    import os

    env = dict(os.environ, ATTEST_HOME=str(home))
    for name in ("ATTEST_STORE", "ATTEST_INDEX"):
        env.pop(name, None)
    return env


def test_attest_index_leaves_out_a_bad_record_names_it_and_exits_1(
    sample: Sample, index: WarcIndex, tmp_path: Path
) -> None:
    from support.cli import run_attest

    image = sample.image.response.record_id
    changes = {
        member_position(sample, index, image): lambda m: rewrite_member(
            m, lambda plain: plain.replace(b"IHDR", b"IHDS")
        )
    }
    warc = tampered_warc(sample, tmp_path, changes)
    home = tmp_path / "home"
    FileStore(home / "store").put_file(KEY, warc, file_sha256(warc))
    env = index_env(home)

    first = run_attest(["index"], env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "1 record(s) left out of 1 WARC(s)" in first.stdout
    assert f"PROBLEMS {KEY}: 1 record(s) failed their checks, not indexed" in first.stdout
    offset = next(r.offset for r in index.rows if r.record_id == image)
    assert f"block-digest at offset {offset} record {image}: recorded sha256:" in first.stdout
    assert "Traceback" not in first.stderr
    # The other records are there; the bad one is not (nothing can be read or replayed from it).
    assert run_attest(["find", GZIP_URL], env).returncode == 0
    missing = run_attest(["find", IMAGE_URL], env)
    assert missing.returncode == 1
    with IndexDB(str(home / "index.sqlite")) as db:
        assert next((p["offset"], p["record_id"], p["check"]) for p in db.problems()) == (
            offset, image, "block-digest",
        )  # fmt: skip
        (capture,) = [
            e for e in CustodyLog(db).entries() if e.action == "capture"
        ]  # no upload record: its capture entry says so
        assert "first indexed" in capture.details["recorded_from"]
        (logged,) = [e for e in CustodyLog(db).entries() if e.action == "index"]
        assert logged.details["records_left_out"] == 1
        assert logged.details["problem_count"] == 2  # its block and its payload digest


def test_attest_index_refuses_a_warc_whose_bytes_are_not_those_uploaded(tmp_path: Path) -> None:
    from support.cli import run_attest
    from support.storedarchive import SAMPLE_KEY, stored_archive

    archive = stored_archive(tmp_path)
    archive.db.close()
    path = archive.path(SAMPLE_KEY)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))

    rebuilt = run_attest(["index", "--rebuild"], index_env(archive.home))
    assert rebuilt.returncode == 1, rebuilt.stdout + rebuilt.stderr
    assert (
        f"FAILED {SAMPLE_KEY}: {archive.store.object_uri(SAMPLE_KEY)}: the stored object's "
        "sha256 is" in rebuilt.stdout
    )
    assert "was uploaded: not indexed" in rebuilt.stdout
    with IndexDB(str(archive.home / "index.sqlite")) as db:
        assert not db.is_indexed(SAMPLE_KEY)


def test_a_verified_upload_is_indexed_by_its_whole_file_hash_and_refused_if_it_changed(
    sample: Sample, index: WarcIndex, tmp_path: Path
) -> None:
    from archive.ingest.ship import ShippedWarc, record_capture

    store = FileStore(tmp_path / "store")
    sha = file_sha256(sample.path)
    stored = store.put_file(KEY, sample.path, sha)
    with IndexDB(str(tmp_path / "index.sqlite")) as db:
        custody = CustodyLog(db, store)
        shipped = ShippedWarc(sample.name, KEY, stored.uri, sha, stored.size, 13)
        record_capture(custody, shipped, RUN_ID, verified=True)
        result = index_warc(db, store, KEY, custody=custody)
        assert result.ok
        assert result.rows == len(index.rows)
        logged = [e for e in custody.for_object(stored.uri) if e.action == "index"]
        assert logged[0].details["checked"] == "the whole file's SHA-256, as verified and uploaded"

        # The same bytes, one changed where no record digest is read without verification:
        # the whole file's hash no longer matches the upload's, so nothing is indexed.
        path = store.root / KEY
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.unlink()  # a new file: the store's is a hard link to the shared sample WARC
        path.write_bytes(bytes(data))
        with pytest.raises(DigestMismatch, match="was uploaded: not indexed"):
            index_warc(db, store, KEY, custody=custody, force=True)


def test_a_record_whose_warc_date_was_changed_in_place_is_refused(
    sample: Sample, tmp_path: Path
) -> None:
    """WARC headers are in no digest: a record's date rewritten in place (a stored gzip member
    of the same length, its CRC recomputed) keeps its block and its digests. Reads compare the
    headers the index read with the record's, and refuse it."""
    members = members_of(sample.path)
    plain = [gzip.decompress(m) for m in members]
    image = next(i for i, p in enumerate(plain) if b"WARC-Type: response" in p and b"IHDR" in p)
    stored = [zlib.compress(p, 0, wbits=31) if i == image else m for i, (m, p) in
              enumerate(zip(members, plain, strict=True))]  # fmt: skip
    original = tmp_path / "original.warc.gz"
    original.write_bytes(b"".join(stored))
    store = FileStore(tmp_path / "store")
    store.put_file(KEY, original, file_sha256(original))
    rows = read_warc_index(original, KEY).rows
    row = next(r for r in rows if r.offset == sum(len(m) for m in stored[:image]))
    assert load_payload(store, row).body  # as stored: it reads

    date = re.search(rb"WARC-Date: (\S+)", plain[image])
    assert date is not None
    later = date.group(1).replace(b"2026", b"2027")
    tampered = zlib.compress(plain[image].replace(date.group(1), later), 0, wbits=31)
    assert len(tampered) == len(stored[image])
    path = store.root / KEY
    data = path.read_bytes()
    path.unlink()  # a new file: the store's is a hard link to the one it was put from
    path.write_bytes(data[: row.offset] + tampered + data[row.offset + row.length :])
    with pytest.raises(IntegrityError, match="its WARC-Date is '2027"):
        load_payload(store, row)
    with pytest.raises(IntegrityError, match="WARC-Date"):
        raw_record(store, row)


def test_a_warc_is_named_by_its_uri_in_the_store_or_by_its_key(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    key = "warcs/src/2026/11/28/a-00000.warc.gz"
    (tmp_path / "a.warc.gz").write_bytes(b"not read here")
    store.put_file(key, tmp_path / "a.warc.gz", file_sha256(tmp_path / "a.warc.gz"))
    assert resolve_warc_key(store, key) == key
    assert resolve_warc_key(store, f"{store.uri}/{key}") == key
    refused = {
        "s3://bucket/" + key: "not in the store",
        "warcs/../etc/passwd.warc.gz": "not a valid WARC key",
        "runs/x.json": "not a WARC in the store",
        "warcs/src/2026/11/28/b-00000.warc.gz": "no such object",
    }
    for given, why in refused.items():
        with pytest.raises(ConfigError, match=why) as caught:
            resolve_warc_key(store, given)
        assert str(caught.value).startswith(given)
