"""Verification reads the HTTP inside records the way the recorder wrote it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from archive.warc.read import verify_warc
from archive.warc.write import Block, RecordSpec, WarcFileWriter, sha256_label


def write_response(path: Path, block: bytes, entity: bytes) -> None:
    writer = WarcFileWriter(path, path.name)
    writer.write(
        RecordSpec(
            record_type="response",
            block=Block(
                len(block), data=block, payload_digest=sha256_label(hashlib.sha256(entity))
            ),
            target_uri="http://example.org/",
            content_type="application/http; msgtype=response",
        )
    )
    writer.close()


def test_interim_responses_are_not_part_of_the_payload(tmp_path: Path) -> None:
    block = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    write_response(tmp_path / "a.warc.gz", block, b"ok")
    verdict = verify_warc(tmp_path / "a.warc.gz")
    assert verdict.ok, verdict.problems
    assert verdict.records[0].http_status == 200


def test_malformed_origin_headers_do_not_fail_verification(tmp_path: Path) -> None:
    block = b"HTTP/1.1 200 OK\r\nX-Powered-By PHP/4\r\nContent-Length: 2\r\n\r\nok"
    write_response(tmp_path / "b.warc.gz", block, b"ok")
    verdict = verify_warc(tmp_path / "b.warc.gz")
    assert verdict.ok, verdict.problems
