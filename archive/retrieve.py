"""Getting a capture back: the raw WARC record, or its payload decoded, by index row.

A row names the WARC (store key), the record's offset and its length in the file; one ranged
read gets exactly that gzip member (or plain record), which is checked to be a WARC record with
the expected ``WARC-Record-ID`` and, for the payload, its ``WARC-Payload-Digest`` before any
byte is handed out.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from archive.cdxj import HttpHead, IndexRow, parse_head, parse_http_head
from archive.decode import decode_body
from archive.errors import DigestMismatch, IntegrityError
from archive.store import Store


@dataclass
class Payload:
    row: IndexRow
    warc_headers: dict[str, str]
    http: HttpHead | None
    body: bytes  # as archived (Content-Encoding kept)

    @property
    def content_type(self) -> str:
        if self.http is not None:
            return self.http.headers.get("content-type", "application/octet-stream")
        return self.warc_headers.get("content-type", "application/octet-stream")

    def decoded(self) -> bytes:
        """The document: chunking and Content-Encoding undone (UnsupportedEncoding if not)."""
        if self.http is None:
            return self.body
        chunked = "chunked" in self.http.headers.get("transfer-encoding", "").lower()
        return decode_body(self.body, self.http.headers.get("content-encoding"), chunked=chunked)


def raw_record(store: Store, row: IndexRow) -> bytes:
    """The record's bytes exactly as stored (a gzip member for .warc.gz)."""
    return store.read_range(row.warc_key, row.offset, row.length)


def inflate_record(raw: bytes, where: str) -> bytes:
    if raw[:2] != b"\x1f\x8b":
        return raw
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        data = inflater.decompress(raw) + inflater.flush()
    except zlib.error as exc:
        raise IntegrityError(f"{where}: not a gzip member: {exc}") from exc
    if not inflater.eof:
        raise IntegrityError(f"{where}: gzip member is truncated")
    return data


def load_payload(store: Store, row: IndexRow) -> Payload:
    where = f"{row.warc_key} at offset {row.offset}"
    data = inflate_record(raw_record(store, row), where)
    head = parse_head(data)
    if head is None or not head[0].startswith(b"WARC/"):
        raise IntegrityError(f"{where}: not a WARC record")
    _, headers, head_len = head
    if headers.get("warc-record-id") != row.record_id:
        raise IntegrityError(
            f"{where}: holds record {headers.get('warc-record-id')}, the index says {row.record_id}"
        )
    length = int(headers.get("content-length", "0"))
    block = data[head_len : head_len + length]
    label = headers.get("warc-block-digest", "")
    if label.startswith("sha256:") and hashlib.sha256(block).hexdigest() != label[7:]:
        raise DigestMismatch(f"{where}: block digest does not match {label}")
    http = None
    body = block
    if headers.get("content-type", "").startswith("application/http") and row.record_type in (
        "response",
        "revisit",
        "request",
    ):
        http = parse_http_head(block)
        body = block[http.body_offset :]
    return Payload(row=row, warc_headers=headers, http=http, body=body)
