"""Getting a capture back: the raw WARC record, or its payload decoded, by index row.

A row names the WARC (store key), the record's offset and its length in the file; one ranged
read gets exactly that gzip member (or plain record). Before any byte of it is handed out it is
checked (:func:`check_record`): it is one whole WARC record, the one the row names (its
``WARC-Record-ID``), with the digests the index recorded when it read the WARC, and those
digests hold for its bytes (the block's, and the HTTP payload's, recomputed). A record that
fails is refused with :class:`~archive.errors.DigestMismatch` or
:class:`~archive.errors.IntegrityError` naming it: ``attest get``, replay, the capture pages
and the bundle export all read through here.

Reads are of the object version the index recorded for the WARC (:func:`pinned_store`), not of
whatever was put under its key since.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from archive.dates import iso, warc_date_micros
from archive.errors import DigestMismatch, IntegrityError
from archive.index.cdxj import HttpHead, IndexRow, parse_head, parse_http_head
from archive.index.db import IndexDB
from archive.store import PinnedStore, Store
from archive.warc.decode import decode_body
from archive.warc.read import Problem, RecordInfo, iter_records, stored_member


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


def pinned_store(store: Store, db: IndexDB) -> PinnedStore:
    """``store``, reading each indexed WARC as the object version the index recorded."""
    known: dict[str, str | None] = {}

    def version_of(key: str) -> str | None:
        if key not in known:
            found = db.warc(key)
            if found is None:
                return None  # not indexed (yet): the current version; asked again next time
            known[key] = found.get("version_id") or None
        return known[key]

    return PinnedStore(store, version_of)


def _unlike_row(fields: dict[str, str], row: IndexRow) -> str | None:
    """What in a record's WARC headers (by lowercased name) is not what the index read there:
    its type, target and date are in no digest, so they are compared with the row."""
    if fields.get("warc-type", "").lower() != row.record_type:
        return f"its WARC-Type is {fields.get('warc-type')!r}, the index says {row.record_type!r}"
    target = fields.get("warc-target-uri", "")
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    if target != row.url:
        return f"its WARC-Target-URI is {target!r}, the index says {row.url!r}"
    try:
        when = warc_date_micros(fields.get("warc-date", ""))
    except ValueError:
        when = None
    if when != row.ts:
        return f"its WARC-Date is {fields.get('warc-date')!r}, the index says {iso(row.ts)}"
    return None


def _where(row: IndexRow) -> str:
    return f"{row.warc_key} at offset {row.offset} (record {row.record_id})"


def check_record(row: IndexRow, handle: BinaryIO) -> RecordInfo:
    """Read one record from ``handle`` (the row's bytes, as stored) and check it against the
    row and its own digests; its info, or DigestMismatch / IntegrityError saying what failed."""
    where = _where(row)
    found: list[RecordInfo] = []
    problems: list[Problem] = []
    # The index recorded the block digest of a record whose digests all held: bytes that
    # hash to it are that record, payload included, so the payload is not hashed again.
    for item in iter_records(
        Path(row.warc_key), handle=handle, payload_digests=not row.block_digest
    ):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            found.append(item)
    for problem in problems:
        if problem.check in ("block-digest", "payload-digest"):
            raise DigestMismatch(
                f"{where}: {problem.check.replace('-', ' ')} does not hold: {problem.detail}"
            )
    if problems:
        raise IntegrityError(f"{where}: not a whole WARC record: {problems[0].detail}")
    if len(found) != 1:
        raise IntegrityError(f"{where}: the range holds {len(found)} records, not one")
    info = found[0]
    if info.record_id != row.record_id:
        raise IntegrityError(
            f"{where}: holds record {info.record_id}, the index says {row.record_id}"
        )
    if info.length != row.length:
        raise IntegrityError(
            f"{where}: the record is {info.length} bytes, the index says {row.length}"
        )
    unlike = _unlike_row(info.fields, row)
    if unlike is not None:
        raise IntegrityError(f"{where}: {unlike}")
    if row.block_digest and info.block_digest != row.block_digest:
        raise DigestMismatch(
            f"{where}: its WARC-Block-Digest is {info.block_digest}, the index recorded "
            f"{row.block_digest}"
        )
    recorded = info.payload_digest or (info.block_digest if row.record_type == "resource" else None)
    if row.digest and recorded != row.digest:
        raise DigestMismatch(
            f"{where}: its payload digest is {recorded}, the index recorded {row.digest}"
        )
    return info


#: A record's stored bytes inflated in memory to be checked, at most (larger: as a stream).
MAX_INFLATED_CHECK = 64 * 1024 * 1024

Buffer = bytes | memoryview


def _inflated(data: Buffer) -> list[Buffer] | None:
    """A gzip member's inflated bytes, in pieces: views into ``data`` when its blocks are
    stored (:func:`~archive.warc.read.stored_member`: no inflation, no copy), else one piece
    from zlib; None when that is not one whole member within the size checked in memory."""
    stored = stored_member(data)
    if stored is not None:
        return list(stored)
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        plain = inflater.decompress(data, MAX_INFLATED_CHECK)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        return None
    return [plain]


def _tail(pieces: list[Buffer], n: int) -> bytes:
    """The last ``n`` bytes of the pieces put together."""
    out = b""
    for piece in reversed(pieces):
        out = bytes(piece[-(n - len(out)) :]) + out
        if len(out) == n:
            break
    return out


def _hash_range(pieces: list[Buffer], start: int, end: int) -> str:
    """SHA-256 (hex) of bytes ``start:end`` of the pieces put together, without joining them."""
    digest = hashlib.sha256()
    at = 0
    for piece in pieces:
        lo, hi = max(start - at, 0), min(end - at, len(piece))
        if lo < hi:
            digest.update(piece[lo:hi])
        at += len(piece)
    return digest.hexdigest()


def _quick_check(row: IndexRow, data: Buffer) -> list[Buffer] | None:
    """The record inflated (in pieces), when its stored bytes in memory pass the check in one
    go: one gzip member holding exactly one WARC record, the one the row names, whose block
    hashes to the block digest the index recorded (its payload is inside its block). None when
    that cannot be said quickly, or the check fails: :func:`check_record` then reads it fully
    and names what is wrong."""
    label = row.block_digest
    if not label or not label.startswith("sha256:") or data[:2] != b"\x1f\x8b":
        return None
    pieces = _inflated(data)
    if not pieces:
        return None
    # The WARC head is in the first piece (attest writes it as a block of its own).
    first = pieces[0]
    head = parse_head(first if isinstance(first, bytes) else bytes(first))
    if head is None or not head[0].startswith(b"WARC/"):
        return None
    _, fields, start = head
    try:
        length = int(fields.get("content-length", ""))
    except ValueError:
        return None
    if start + length + 4 != sum(map(len, pieces)) or _tail(pieces, 4) != b"\r\n\r\n":
        return None
    if fields.get("warc-record-id") != row.record_id or fields.get("warc-block-digest") != label:
        return None
    if _unlike_row(fields, row) is not None:
        return None
    if row.digest and (fields.get("warc-payload-digest") or label) != row.digest:
        return None
    if _hash_range(pieces, start, start + length) != label[7:].lower():
        return None
    return pieces


def check_stored(row: IndexRow, data: Buffer) -> None:
    """Check a record's stored bytes held in memory (see :func:`check_record`)."""
    if _quick_check(row, data) is None:
        check_record(row, io.BytesIO(data))


def _checked_plain(row: IndexRow, data: bytes) -> bytes:
    """A record's stored bytes held in memory, checked, inflated."""
    pieces = _quick_check(row, data)
    if pieces is None:
        check_record(row, io.BytesIO(data))
        return inflate_record(data, _where(row))
    return pieces[0] if len(pieces) == 1 and isinstance(pieces[0], bytes) else b"".join(pieces)


def verify_record(store: Store, row: IndexRow) -> RecordInfo:
    """Check the row's record in the store without holding it in memory (see check_record)."""
    with store.open_range(row.warc_key, row.offset, row.length) as stream:
        return check_record(row, stream)


def raw_record(store: Store, row: IndexRow) -> bytes:
    """The record's bytes exactly as stored (a gzip member for .warc.gz), once checked."""
    data = store.read_range(row.warc_key, row.offset, row.length)
    check_stored(row, data)
    return data


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
    """The row's record, checked, split into its WARC headers, HTTP head and body."""
    where = _where(row)
    data = _checked_plain(row, store.read_range(row.warc_key, row.offset, row.length))
    head = parse_head(data)
    if head is None or not head[0].startswith(b"WARC/"):
        raise IntegrityError(f"{where}: not a WARC record")
    _, headers, head_len = head
    length = int(headers.get("content-length", "0"))
    block = data[head_len : head_len + length]
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
