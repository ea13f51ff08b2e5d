"""What archive.warc.write writes and archive.warc.read concludes, stated as checks anyone can redo.

The records are read back here with zlib and byte splitting alone, with warcio, and with
``sha256sum``, so the promises hold for other tools and not just for our own reader.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import random
import re
import shutil
import subprocess
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from golden import make_golden
from warcio.archiveiterator import ArchiveIterator

from archive.errors import DiskFull
from archive.warc.read import verify_warc
from archive.warc.write import (
    COPY_CHUNK,
    Block,
    RecordSpec,
    WarcFileWriter,
    WrittenRecord,
    sha256_label,
)

GOLDEN_DIR = Path(make_golden.__file__).resolve().parent
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
RECORD_ID_RE = re.compile(r"^<urn:uuid:([0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})>$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class RawRecord:
    """A record as split out of the file with zlib and ``bytes.partition`` only."""

    offset: int
    length: int
    first_line: bytes
    headers: dict[str, str]
    block: bytes

    def http_split(self) -> tuple[bytes, bytes]:
        head, sep, body = self.block.partition(b"\r\n\r\n")
        assert sep, "HTTP block without an end of headers"
        return head, body


def member_spans(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each gzip member, found by zlib stopping at each member's end."""
    spans = []
    offset = 0
    while offset < len(data):
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[offset:])
        assert inflater.eof, f"gzip member at {offset} does not end"
        length = len(data) - offset - len(inflater.unused_data)
        spans.append((offset, length))
        offset += length
    return spans


def read_member(data: bytes, offset: int, length: int) -> RawRecord:
    """Decompress ``data[offset:offset+length]`` on its own and split the record in it."""
    inflater = zlib.decompressobj(31)
    plain = inflater.decompress(data[offset : offset + length])
    assert inflater.eof, f"member at {offset} ends after {length} bytes"
    assert not inflater.unused_data, f"{offset}+{length} holds more than one member"
    head, _, rest = plain.partition(b"\r\n\r\n")
    first_line, *lines = head.split(b"\r\n")
    headers = dict(line.decode("utf-8").split(": ", 1) for line in lines)
    content_length = int(headers["Content-Length"])
    assert rest[content_length:] == b"\r\n\r\n", "record does not end with CRLF CRLF"
    return RawRecord(offset, length, first_line, headers, rest[:content_length])


def raw_records(path: Path) -> list[RawRecord]:
    data = path.read_bytes()
    return [read_member(data, offset, length) for offset, length in member_spans(data)]


def dechunk(body: bytes) -> bytes:
    """The entity of a chunked body (RFC 9112 section 7.1), written out plainly."""
    entity = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return entity
        entity += body[:size]
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FixedIds:
    def __init__(self, prefix: str = "test") -> None:
        self._prefix = prefix
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self._prefix}-{self._count}')}>"


def fixed_clock() -> datetime:
    return datetime(2026, 11, 27, 21, 25, 33, 5, tzinfo=UTC)


def new_writer(path: Path) -> WarcFileWriter:
    return WarcFileWriter(
        path, path.name.removesuffix(".open"), clock=fixed_clock, id_factory=FixedIds(path.name)
    )


def resource(data: bytes, uri: str = "urn:test:resource") -> RecordSpec:
    return RecordSpec(
        record_type="resource",
        block=Block.from_bytes(data),
        target_uri=uri,
        content_type="application/octet-stream",
    )


@pytest.fixture(scope="module")
def fresh_golden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The golden files as the current code writes them."""
    return make_golden.generate(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def good(fresh_golden: dict[str, Path]) -> Path:
    return fresh_golden[make_golden.GOOD]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN_DIR / make_golden.VERDICTS).read_text())
    return data


# --- golden files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", make_golden.FILES)
def test_golden_generator_reproduces_the_committed_files_byte_for_byte(
    fresh_golden: dict[str, Path], name: str
) -> None:
    committed = (GOLDEN_DIR / name).read_bytes()
    assert fresh_golden[name].read_bytes() == committed, (
        f"tests/golden/{name} is out of date (zlib {zlib.ZLIB_RUNTIME_VERSION}); "
        "rerun .venv/bin/python tests/golden/make_golden.py and review the diff"
    )


@pytest.mark.parametrize("name", [make_golden.GOOD, make_golden.TRUNCATED, make_golden.TAMPERED])
def test_verify_warc_reaches_the_verdict_recorded_for_each_golden_file(
    verdicts: dict[str, Any], name: str
) -> None:
    expected = verdicts[name]
    verdict = verify_warc(GOLDEN_DIR / name)
    assert verdict.ok is expected["ok"]
    assert [
        {"check": p.check, "record_id": p.record_id, "offset": p.offset} for p in verdict.problems
    ] == expected["problems"]
    assert len(verdict.records) == expected["records"]


def test_the_truncated_golden_file_is_reported_as_cut_after_its_last_whole_record() -> None:
    verdict = verify_warc(GOLDEN_DIR / make_golden.TRUNCATED)
    assert verdict.truncated
    assert verdict.good_until == verdict.problems[0].offset
    last = verdict.records[-1]
    assert verdict.good_until == last.offset + last.length


def test_the_tampered_golden_file_is_intact_only_up_to_the_changed_record() -> None:
    verdict = verify_warc(GOLDEN_DIR / make_golden.TAMPERED)
    assert not verdict.truncated
    assert verdict.good_until == verdict.problems[0].offset
    # The gzip is valid: every record, including the ones after the damage, is still read.
    assert [r.record_id for r in verdict.records] == [
        r.record_id for r in verify_warc(GOLDEN_DIR / make_golden.GOOD).records
    ]


# --- record headers -----------------------------------------------------------------------------


def test_every_record_is_warc_1_1_with_date_id_length_and_sha256_block_digest(good: Path) -> None:
    records = raw_records(good)
    assert [r.headers["WARC-Type"] for r in records] == [
        "warcinfo",
        "request",
        "response",
        "response",
        "metadata",
    ]
    ids = set()
    for record in records:
        assert record.first_line == b"WARC/1.1"
        assert DATE_RE.match(record.headers["WARC-Date"])
        match = RECORD_ID_RE.match(record.headers["WARC-Record-ID"])
        assert match
        assert str(uuid.UUID(match[1])) == match[1]
        ids.add(record.headers["WARC-Record-ID"])
        assert int(record.headers["Content-Length"]) == len(record.block)
        assert DIGEST_RE.match(record.headers["WARC-Block-Digest"])
        assert record.headers["WARC-Block-Digest"] == "sha256:" + sha256_hex(record.block)
    assert len(ids) == len(records)


def test_warc_date_is_the_injected_clock_in_utc_with_six_digit_microseconds(good: Path) -> None:
    dates = [r.headers["WARC-Date"] for r in raw_records(good)]
    assert dates[0] == "2026-11-27T21:25:33.123456Z"
    assert dates[1] == "2026-11-27T21:25:33.124956Z"


def test_warc_date_converts_other_time_zones_to_utc_and_keeps_zero_microseconds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tz.warc.gz.open"
    plus_two = timezone(timedelta(hours=2))
    writer = WarcFileWriter(
        path, "tz.warc.gz", clock=lambda: datetime(2026, 11, 27, 23, 25, 33, 7, tzinfo=plus_two)
    )
    written = writer.write(resource(b"x"))
    writer.close()
    assert written.date == "2026-11-27T21:25:33.000007Z"
    assert raw_records(path)[0].headers["WARC-Date"] == "2026-11-27T21:25:33.000007Z"


def test_block_digests_are_what_sha256sum_prints_for_the_block(good: Path, tmp_path: Path) -> None:
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    for n, record in enumerate(raw_records(good)):
        block_file = tmp_path / f"block-{n}"
        block_file.write_bytes(record.block)
        printed = subprocess.run(
            [sha256sum, str(block_file)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
        assert record.headers["WARC-Block-Digest"] == f"sha256:{printed}"


def test_payload_digest_is_sha256_of_the_http_entity_with_content_encoding_kept(
    good: Path,
) -> None:
    request, response = [
        r
        for r in raw_records(good)
        if r.headers.get("WARC-Target-URI") == make_golden.ARTICLE_URL
        and r.headers["WARC-Type"] in ("request", "response")
    ]
    assert request.headers["WARC-Type"] == "request"
    assert request.headers["WARC-Payload-Digest"] == "sha256:" + sha256_hex(b"")
    assert request.headers["WARC-Concurrent-To"] == response.headers["WARC-Record-ID"]
    head, entity = response.http_split()
    assert b"\r\nContent-Encoding: gzip" in head
    assert response.block == make_golden.ARTICLE_RESPONSE  # the bytes as they came in
    assert DIGEST_RE.match(response.headers["WARC-Payload-Digest"])
    assert response.headers["WARC-Payload-Digest"] == "sha256:" + sha256_hex(entity)
    assert gzip.decompress(entity) == make_golden.ARTICLE_HTML


def test_chunked_response_keeps_chunk_framing_and_digests_the_dechunked_entity(good: Path) -> None:
    (feed,) = [
        r for r in raw_records(good) if r.headers.get("WARC-Target-URI") == make_golden.FEED_URL
    ]
    assert feed.block == make_golden.FEED_RESPONSE  # chunk sizes and CRLFs byte for byte
    head, body = feed.http_split()
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\n\r\n")
    entity = dechunk(body)
    assert entity == make_golden.FEED_ENTITY
    assert feed.headers["WARC-Payload-Digest"] == "sha256:" + sha256_hex(entity)
    assert feed.headers["WARC-Payload-Digest"] != "sha256:" + sha256_hex(body)
    assert feed.headers["WARC-Block-Digest"] == "sha256:" + sha256_hex(feed.block)


def test_a_payload_digest_taken_over_the_chunk_framing_is_reported(tmp_path: Path) -> None:
    # What warcio 1.8 and others wrote before WARC 1.1 said otherwise (warcio issue #74).
    path = tmp_path / "framed.warc.gz"
    writer = new_writer(path)
    written = writer.write(
        RecordSpec(
            record_type="response",
            block=make_golden.http_block(make_golden.FEED_RESPONSE, make_golden.FEED_CHUNKED_BODY),
            target_uri=make_golden.FEED_URL,
            content_type="application/http; msgtype=response",
        )
    )
    writer.close()
    verdict = verify_warc(path)
    assert [(p.check, p.record_id, p.offset) for p in verdict.problems] == [
        ("payload-digest", written.record_id, 0)
    ]


def test_non_http_records_digest_their_whole_block_as_payload_or_carry_none(good: Path) -> None:
    warcinfo, *_, metadata = raw_records(good)
    assert warcinfo.headers["WARC-Payload-Digest"] == warcinfo.headers["WARC-Block-Digest"]
    assert warcinfo.headers["WARC-Filename"] == make_golden.GOOD
    assert "WARC-Payload-Digest" not in metadata.headers
    assert metadata.headers["WARC-Warcinfo-ID"] == warcinfo.headers["WARC-Record-ID"]


def test_a_revisit_is_verified_by_its_block_only(tmp_path: Path) -> None:
    path = tmp_path / "revisit.warc.gz"
    writer = new_writer(path)
    head = make_golden.ARTICLE_RESPONSE.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    profile = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
    original_payload = sha256_label(hashlib.sha256(make_golden.ARTICLE_GZIP))

    def revisit(block_digest: str | None) -> RecordSpec:
        block = Block(
            len(head), data=head, block_digest=block_digest, payload_digest=original_payload
        )
        return RecordSpec(
            record_type="revisit",
            block=block,
            target_uri=make_golden.ARTICLE_URL,
            content_type="application/http; msgtype=response",
            headers=[("WARC-Profile", profile)],
        )

    writer.write(revisit(None))
    damaged = writer.write(revisit("sha256:" + "0" * 64))
    writer.close()
    verdict = verify_warc(path)
    # The payload digest names the original's payload, which a revisit does not hold.
    assert [(p.check, p.record_id) for p in verdict.problems] == [
        ("block-digest", damaged.record_id)
    ]


# --- gzip members and other readers -------------------------------------------------------------


def test_each_record_is_one_gzip_member_readable_from_its_offset_alone(good: Path) -> None:
    data = good.read_bytes()
    verdict = verify_warc(good)
    spans = [(r.offset, r.length) for r in verdict.records]
    assert spans == member_spans(data)
    assert spans[0][0] == 0
    for (offset, length), (next_offset, _) in itertools.pairwise(spans):
        assert offset + length == next_offset
    assert spans[-1][0] + spans[-1][1] == len(data)
    for offset, length in spans:
        record = read_member(data, offset, length)  # nothing before or after is needed
        assert record.first_line == b"WARC/1.1"


def test_written_record_positions_are_where_the_records_are(tmp_path: Path) -> None:
    records = make_golden.write_good(tmp_path / "good.warc.gz")
    data = (tmp_path / "good.warc.gz").read_bytes()
    for written in records:
        raw = read_member(data, written.offset, written.length)
        assert raw.headers["WARC-Record-ID"] == written.record_id
        assert raw.headers["WARC-Block-Digest"] == written.block_digest
        assert raw.headers.get("WARC-Payload-Digest") == written.payload_digest
        assert raw.headers["WARC-Date"] == written.date


def test_warcio_reads_every_record_and_agrees_on_types_targets_and_offsets(good: Path) -> None:
    ours = [
        (r.record_type, r.header("WARC-Target-URI"), r.record_id, r.offset, r.length)
        for r in verify_warc(good).records
    ]
    theirs = []
    bodies: dict[str | None, bytes] = {}
    with open(good, "rb") as handle:
        iterator = ArchiveIterator(handle)
        for record in iterator:
            target = record.rec_headers.get_header("WARC-Target-URI")
            if record.rec_type == "response":
                bodies[target] = record.content_stream().read()
            theirs.append(
                (
                    record.rec_type,
                    target,
                    record.rec_headers.get_header("WARC-Record-ID"),
                    iterator.get_record_offset(),
                    iterator.get_record_length(),
                )
            )
    assert theirs == ours
    # warcio undoes Content-Encoding and chunking to reach the same content we wrote.
    assert bodies[make_golden.ARTICLE_URL] == make_golden.ARTICLE_HTML
    assert bodies[make_golden.FEED_URL] == make_golden.FEED_ENTITY


def test_warcio_digest_checker_accepts_every_block_digest(good: Path) -> None:
    outcome: dict[str, tuple[bool | None, list[str]]] = {}
    with open(good, "rb") as handle:
        for record in ArchiveIterator(handle, check_digests=True):
            record.content_stream().read()
            target = record.rec_headers.get_header("WARC-Target-URI") or record.rec_type
            outcome[target] = (record.digest_checker.passed, list(record.digest_checker.problems))
    for target, (passed, problems) in outcome.items():
        assert not [p for p in problems if p.startswith("block digest")], target
        if target != make_golden.FEED_URL:
            assert passed is True, (target, problems)
    # warcio 1.8 hashes a chunked payload with its framing (warcio issue #74); WARC 1.1 and
    # verify_warc take the de-chunked entity, so only there may warcio disagree.


def test_a_plain_uncompressed_warc_is_read_and_verified_too(
    fresh_golden: dict[str, Path], tmp_path: Path
) -> None:
    plain = gzip.decompress(fresh_golden[make_golden.GOOD].read_bytes())
    path = tmp_path / "good.warc"
    path.write_bytes(plain)
    verdict = verify_warc(path)
    assert verdict.ok
    assert [r.record_id for r in verdict.records] == [
        r.record_id for r in verify_warc(fresh_golden[make_golden.GOOD]).records
    ]
    for record in verdict.records:
        assert plain[record.offset :].startswith(b"WARC/1.1\r\n")
        assert plain[record.offset + record.length - 4 : record.offset + record.length] == (
            b"\r\n\r\n"
        )
    assert verdict.good_until == len(plain)
    with open(path, "rb") as handle:
        iterator = ArchiveIterator(handle)
        warcio_offsets = [iterator.get_record_offset() for _ in iterator]
    assert warcio_offsets == [r.offset for r in verdict.records]


def test_a_plain_uncompressed_tampered_warc_gets_the_same_problems(
    fresh_golden: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "tampered.warc"
    path.write_bytes(gzip.decompress(fresh_golden[make_golden.TAMPERED].read_bytes()))
    gz_problems = verify_warc(fresh_golden[make_golden.TAMPERED]).problems
    assert [(p.check, p.record_id) for p in verify_warc(path).problems] == [
        (p.check, p.record_id) for p in gz_problems
    ]


# --- all or nothing -----------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for this test alone, to run out of space on for real."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("mount/umount are not installed, so no small filesystem can be filled")
    result = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(
            "mounting a 64 KiB tmpfs is not permitted here (needs root or CAP_SYS_ADMIN): "
            + (result.stderr.strip() or f"mount exited {result.returncode}")
        )
    try:
        yield mount_point
    finally:
        if subprocess.run([umount, str(mount_point)], check=False).returncode != 0:
            subprocess.run([umount, "-l", str(mount_point)], check=True)


def fill_until_disk_full(writer: WarcFileWriter, rng: random.Random) -> list[WrittenRecord]:
    """Write 8 KiB incompressible records until the disk is full; return those that fit."""
    written: list[WrittenRecord] = []
    for n in range(64):
        try:
            written.append(writer.write(resource(rng.randbytes(8192), f"urn:test:filler:{n}")))
        except DiskFull:
            return written
    pytest.fail("64 records of 8 KiB each fitted on a 64 KiB disk")


def test_disk_full_raises_disk_full_and_leaves_the_file_on_a_record_boundary(
    tiny_disk: Path,
) -> None:
    path = tiny_disk / "full.warc.gz.open"
    writer = new_writer(path)
    try:
        written = [writer.write_warcinfo([("software", "attest tests")])]
        written += fill_until_disk_full(writer, random.Random(20261127))
        assert len(written) > 2  # some records did fit before the disk ran out
        boundary = written[-1].offset + written[-1].length
        assert path.stat().st_size == boundary
        assert (writer.size, writer.records) == (boundary, len(written))
    finally:
        writer.close()
    verdict = verify_warc(path)
    assert verdict.ok
    assert [r.record_id for r in verdict.records] == [w.record_id for w in written]


def test_a_block_stream_that_ends_early_leaves_no_partial_record(tmp_path: Path) -> None:
    path = tmp_path / "short.warc.gz.open"
    writer = new_writer(path)
    first = writer.write_warcinfo([("software", "attest tests")])
    # Incompressible and longer than one copy chunk, so part of the record reaches the disk
    # before the stream runs dry.
    data = random.Random(7).randbytes(2 * COPY_CHUNK)
    short = Block(
        len(data) + 1000,
        stream=io.BytesIO(data),
        block_digest="sha256:" + sha256_hex(data + b"\0" * 1000),
    )
    with pytest.raises(ValueError, match="1000 bytes early"):
        writer.write(RecordSpec(record_type="resource", block=short, target_uri="urn:test:short"))
    assert path.stat().st_size == writer.size == first.length
    after = writer.write(resource(b"next"))
    writer.close()
    assert after.offset == first.length
    verdict = verify_warc(path)
    assert verdict.ok
    assert [r.record_id for r in verdict.records] == [first.record_id, after.record_id]


def test_write_group_writes_all_of_its_records_or_none(tmp_path: Path) -> None:
    path = tmp_path / "group.warc.gz.open"
    writer = new_writer(path)
    first = writer.write_warcinfo([("software", "attest tests")])
    broken = Block(10, stream=io.BytesIO(b"short"), block_digest="sha256:" + "0" * 64)
    with pytest.raises(ValueError, match="ended 5 bytes early"):
        writer.write_group(
            [
                resource(b"request bytes", "urn:test:request"),
                RecordSpec(record_type="resource", block=broken, target_uri="urn:test:response"),
            ]
        )
    assert (path.stat().st_size, writer.size, writer.records) == (first.length, first.length, 1)
    pair = writer.write_group([resource(b"a", "urn:test:a"), resource(b"b", "urn:test:b")])
    writer.close()
    assert [w.offset for w in pair] == [first.length, first.length + pair[0].length]
    assert [r.header("WARC-Target-URI") for r in verify_warc(path).records] == [
        None,
        "urn:test:a",
        "urn:test:b",
    ]


def test_a_block_whose_bytes_disagree_with_its_length_is_refused_before_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "length.warc.gz.open"
    writer = new_writer(path)
    with pytest.raises(ValueError, match="block length 10 but 3 bytes"):
        writer.write(RecordSpec(record_type="resource", block=Block(10, data=b"abc")))
    writer.close()
    assert path.stat().st_size == 0


def test_a_writer_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "taken.warc.gz.open"
    path.write_bytes(b"earlier bytes")
    with pytest.raises(FileExistsError):
        new_writer(path)
    assert path.read_bytes() == b"earlier bytes"


def test_an_http_message_block_digests_the_whole_block_and_the_entity() -> None:
    head, entity = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"hello"
    block = Block.http_message(head, entity)
    assert block.data == head + entity
    assert block.length == len(head) + len(entity)
    assert block.block_digest == sha256_label(hashlib.sha256(head + entity))
    assert block.payload_digest == sha256_label(hashlib.sha256(entity))
