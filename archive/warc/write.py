"""Writing WARC/1.1 records, one gzip member each, with SHA-256 digests.

The recorder hands us blocks exactly as they crossed the wire; this module never changes a
byte of them. It adds the WARC header (WARC/1.1, ``WARC-Date`` with microseconds,
``sha256:<hex>`` block and payload digests) and appends the record to an open file as its own
gzip member, so any record can be read from its offset (as warcio and pywb expect).

A record is either fully written or not at all: on any write error the file is truncated back
to where the record started, so a full disk never leaves half a record behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from archive import failpoints
from archive.errors import DiskFull

WARC_VERSION = "WARC/1.1"
COPY_CHUNK = 256 * 1024
#: gzip level for records: 6 is zlib's default; level 1 costs a third of the CPU for
#: about 10% more bytes (see docs/PERFORMANCE.md).
DEFAULT_GZIP_LEVEL = 6

Clock = Callable[[], datetime]
IdFactory = Callable[[], str]


#: errnos that mean "no room left": a full filesystem or an exhausted quota.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def utc_now() -> datetime:
    return datetime.now(UTC)


class _RecordIds:
    """Random (version 4) UUIDs for record ids, from a pool of ``os.urandom`` bytes.

    Same randomness as :func:`uuid.uuid4`, without a system call and a ``UUID`` object per id:
    the recorder makes two or three ids per exchange.
    """

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0
        self._lock = threading.Lock()
        # A forked child (Airflow's LocalExecutor forks) must never reuse the parent's bytes.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._pos = b"", 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._pos + 16 > len(self._pool):
                self._pool, self._pos = os.urandom(4096), 0
            raw = bytearray(self._pool[self._pos : self._pos + 16])
            self._pos += 16
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"<urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}>"


new_record_id = _RecordIds()


def warc_date(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds, as WARC/1.1 allows (``2026-11-27T21:25:33.123456Z``)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # f-string fields, not strftime: this runs for every record.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def sha256_label(digest: hashlib._Hash | str) -> str:
    """``sha256:<lowercase hex>``: the form ``sha256sum`` prints, so anyone can compare."""
    hexdigest = digest if isinstance(digest, str) else digest.hexdigest()
    return f"sha256:{hexdigest}"


_COMPRESSED_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heic",
    "video/",
    "audio/",
    "font/woff",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/x-rar-compressed",
)


def is_precompressed(content_type: str | None, content_encoding: str | None) -> bool:
    """Whether an HTTP body is already compressed, so deflating it again would be wasted CPU."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        return True
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    return ctype.startswith(_COMPRESSED_TYPES)


@dataclass
class Block:
    """A record block: bytes in memory or a readable file of known length.

    ``block_digest`` and ``payload_digest`` are ``sha256:<hex>`` labels. When the block digest is
    not given it is computed while writing; the payload digest is only given by the caller,
    since only the caller knows where the payload starts and how it is transfer-encoded.
    """

    length: int
    data: bytes | None = None
    stream: BinaryIO | None = None
    block_digest: str | None = None
    payload_digest: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes, *, payload_is_block: bool = True) -> Block:
        digest = sha256_label(hashlib.sha256(data))
        return cls(
            length=len(data),
            data=data,
            block_digest=digest,
            payload_digest=digest if payload_is_block else None,
        )

    @classmethod
    def http_message(cls, head: bytes, entity: bytes) -> Block:
        """An HTTP message's block: ``head + entity``, with the entity (as sent) the payload."""
        data = head + entity
        return cls(
            length=len(data),
            data=data,
            block_digest=sha256_label(hashlib.sha256(data)),
            payload_digest=sha256_label(hashlib.sha256(entity)),
        )

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.stream is not None
        remaining = self.length
        while remaining > 0:
            chunk = self.stream.read(min(COPY_CHUNK, remaining))
            if not chunk:
                raise ValueError(f"block stream ended {remaining} bytes early")
            remaining -= len(chunk)
            yield chunk


@dataclass
class RecordSpec:
    """What to write: the record type, target and extra WARC headers, and the block."""

    record_type: str
    block: Block
    target_uri: str | None = None
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    record_id: str | None = None
    #: The block is already compressed (JPEG, video, gzip/br bodies): store it in the gzip
    #: member without deflating again, which costs CPU and saves nothing.
    precompressed: bool = False
    date: datetime | None = None


@dataclass(frozen=True)
class WrittenRecord:
    """Where a record landed: enough to index it and to read it back from its offset."""

    record_id: str
    record_type: str
    target_uri: str | None
    date: str
    filename: str
    offset: int
    length: int
    block_digest: str
    payload_digest: str | None


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _StoredGzip:
    """A gzip member whose deflate blocks are *stored* (not compressed), for blocks that are
    compressed already (JPEG, gzip or br bodies).

    The bytes are the same kind zlib writes at level 0, but zlib runs level 0 through its
    deflate machinery (and allocates a full compressor per record): a CRC-32 and a copy here
    cost a fraction of that, and most WARC bytes of a crawl are such blocks.
    """

    # magic, deflate, no flags, no mtime, XFL 4 (fastest, as zlib marks level 0), OS Unix.
    HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03"
    MAX_BLOCK = 0xFFFF  # a stored block holds at most 65535 bytes

    def __init__(self) -> None:
        self._crc = 0
        self._size = 0
        self._started = False

    def _head(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.HEADER

    def compress(self, data: bytes, /) -> bytes:
        if not data:
            return b""
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        out: list[bytes | memoryview] = [self._head()]
        view = memoryview(data)
        for start in range(0, len(data), self.MAX_BLOCK):
            piece = view[start : start + self.MAX_BLOCK]
            # BFINAL=0, BTYPE=00 (stored), padded to the byte; then LEN and its complement.
            out.append(struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF))
            out.append(piece)
        return b"".join(out)

    def flush(self) -> bytes:
        # An empty final block (BFINAL=1), then the gzip trailer: CRC-32 and size mod 2**32.
        return (
            self._head()
            + b"\x01\x00\x00\xff\xff"
            + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF)
        )


#: Blocks below this size are deflated with a smaller zlib state (memLevel 4, not 8).
SMALL_BLOCK = 16 * 1024


def _mem_level(length: int) -> int:
    """zlib's memLevel for a block: its default (8) sets up ~256 KiB of state per record, which
    cost more than deflating the many small records (requests, metadata) themselves; below
    16 KiB, memLevel 4 gives the same compressed size (+0.0005% over a whole crawl)."""
    return 4 if length < SMALL_BLOCK else 8


def _header_bytes(headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [WARC_VERSION]
    for name, value in headers:
        if "\r" in value or "\n" in value:
            raise ValueError(f"WARC header {name} contains a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class WarcFileWriter:
    """Appends records to one open WARC file (``*.warc.gz.open`` in a spool).

    Not thread-safe; the recorder serialises writers with a lock.
    """

    def __init__(
        self,
        path: Path,
        filename: str,
        *,
        clock: Clock = utc_now,
        id_factory: IdFactory = new_record_id,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
    ) -> None:
        self.path = path
        self.filename = filename
        self._clock = clock
        self._id_factory = id_factory
        self._gzip_level = gzip_level
        # "x": never reuse or overwrite an existing spool file. Unbuffered, so a failed write
        # leaves nothing pending that a later flush could append after a rollback.
        try:
            self._file = open(path, "xb", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise DiskFull(f"{path}: no space left to create a WARC file") from exc
            raise
        self.size = 0
        self.records = 0
        self.warcinfo_id: str | None = None

    def write_warcinfo(self, fields: list[tuple[str, str]]) -> WrittenRecord:
        body = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("utf-8")
        written = self.write(
            RecordSpec(
                record_type="warcinfo",
                block=Block.from_bytes(body),
                content_type="application/warc-fields",
                headers=[("WARC-Filename", self.filename)],
            )
        )
        self.warcinfo_id = written.record_id
        return written

    def write(self, spec: RecordSpec) -> WrittenRecord:
        record_id = spec.record_id or self._id_factory()
        date = warc_date(spec.date or self._clock())
        block = spec.block
        if block.data is not None and len(block.data) != block.length:
            # Content-Length is taken from ``length``: a mismatch would write a corrupt record.
            raise ValueError(f"block length {block.length} but {len(block.data)} bytes given")
        block_digest = block.block_digest
        if block_digest is None:
            # Needs two passes over a stream; only small, in-memory blocks come without one.
            data = block.data if block.data is not None else b"".join(block.chunks())
            block = Block(len(data), data=data, payload_digest=block.payload_digest)
            block_digest = sha256_label(hashlib.sha256(data))

        headers: list[tuple[str, str]] = [
            ("WARC-Type", spec.record_type),
            ("WARC-Record-ID", record_id),
            ("WARC-Date", date),
        ]
        if spec.target_uri is not None:
            headers.append(("WARC-Target-URI", spec.target_uri))
        headers.extend(spec.headers)
        if self.warcinfo_id is not None and spec.record_type != "warcinfo":
            headers.append(("WARC-Warcinfo-ID", self.warcinfo_id))
        if spec.content_type is not None:
            headers.append(("Content-Type", spec.content_type))
        if block.payload_digest is not None:
            headers.append(("WARC-Payload-Digest", block.payload_digest))
        headers.append(("WARC-Block-Digest", block_digest))
        headers.append(("Content-Length", str(block.length)))

        offset = self.size
        try:
            compressor: _Compressor = (
                _StoredGzip()
                if spec.precompressed
                else zlib.compressobj(self._gzip_level, zlib.DEFLATED, 31, _mem_level(block.length))
            )
            pending = [compressor.compress(_header_bytes(headers))]
            pending_size = 0
            written = 0
            for chunk in block.chunks():
                piece = compressor.compress(chunk)
                pending.append(piece)
                pending_size += len(piece)
                if pending_size >= COPY_CHUNK:
                    written += self._write_all(b"".join(pending))
                    pending, pending_size = [], 0
            pending.append(compressor.compress(b"\r\n\r\n"))
            pending.append(compressor.flush())
            data = b"".join(pending)
            if failpoints.ACTIVE:
                written += self._write_all(data[: len(data) // 2])
                failpoints.failpoint("warc.mid-record")
                data = data[len(data) // 2 :]
            written += self._write_all(data)
            end = offset + written
        except BaseException as exc:
            # Whatever stopped us (a full disk, a block stream that ended early, an interrupt),
            # the half-written record must go, or the next record would land after garbage.
            self._rollback(offset)
            if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
                raise DiskFull(f"{self.path}: no space left while writing a record") from exc
            raise
        self.size = end
        self.records += 1
        failpoints.failpoint("warc.after-record")
        return WrittenRecord(
            record_id=record_id,
            record_type=spec.record_type,
            target_uri=spec.target_uri,
            date=date,
            filename=self.filename,
            offset=offset,
            length=end - offset,
            block_digest=block_digest,
            payload_digest=block.payload_digest,
        )

    def write_group(self, specs: Iterable[RecordSpec]) -> list[WrittenRecord]:
        """Write records that belong together (request + response): all of them, or none.

        If any record fails, the ones already written in this call are cut off again, so the
        file never holds a request whose response is missing.
        """
        start, records = self.size, self.records
        written: list[WrittenRecord] = []
        try:
            for spec in specs:
                written.append(self.write(spec))
        except BaseException:
            self._rollback(start)
            self.size, self.records = start, records
            raise
        return written

    def _write_all(self, data: bytes) -> int:
        """Write all of ``data``; returns its length (the file is ours alone, so the record's
        end is counted rather than asked of the file with a syscall)."""
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if written is None:  # pragma: no cover - only for non-blocking files
                continue
            view = view[written:]
        return len(data)

    def _rollback(self, offset: int) -> None:
        """Cut a half-written record off so the file ends on a record boundary."""
        os.ftruncate(self._file.fileno(), offset)
        self._file.seek(offset)

    def close(self) -> None:
        """Flush and fsync, so a closed file survives a crash of the whole machine."""
        if self._file.closed:
            return
        os.fsync(self._file.fileno())
        self._file.close()


def block_from_file(stream: BinaryIO, length: int, block_digest: str, payload_digest: str) -> Block:
    """A block whose bytes sit in a (temporary) file, digests computed while it was received."""
    stream.seek(0)
    return Block(
        length=length, stream=stream, block_digest=block_digest, payload_digest=payload_digest
    )
