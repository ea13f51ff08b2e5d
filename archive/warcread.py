"""Reading WARC files record by record and checking every digest, streaming.

:func:`verify_warc` is what ``attest verify FILE.warc.gz``, the spool's pre-upload check and
``attest recover`` all use. It walks a file one gzip member at a time (a plain, uncompressed
WARC works too), never holding a whole record in memory, and reports each problem with the
check that failed, the record id and the byte offset, so a verdict can be acted on.

Digests are recomputed from the bytes: the block digest over the record block as stored, the
payload digest over the HTTP entity (after the HTTP header block, with chunked transfer coding
removed, as WARC 1.1 defines the payload). ``sha256``/``sha1`` in hex or base32 are accepted.
A ``revisit`` record's payload digest is that of the original payload, which the revisit does
not hold, so only its block digest is checked.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

READ_CHUNK = 256 * 1024
MAX_HEADER_BYTES = 1024 * 1024


class _Truncated(Exception):
    """The data ended inside a record; ``partial_head`` holds a header block cut short."""

    def __init__(self, message: str, partial_head: bytes = b"") -> None:
        super().__init__(message)
        self.partial_head = partial_head


class _Malformed(Exception):
    """The bytes are not a WARC record."""


@dataclass
class Problem:
    """One failed check: what failed, where, and what was found."""

    check: str
    file: str
    offset: int
    record_id: str | None
    detail: str

    def __str__(self) -> str:
        rid = f" record {self.record_id}" if self.record_id else ""
        return f"{self.check}: {self.file} at offset {self.offset}{rid}: {self.detail}"


@dataclass
class RecordInfo:
    """A record's WARC headers and position, as read back from a file."""

    offset: int
    length: int
    headers: list[tuple[str, str]]
    content_length: int
    block_digest: str
    payload_digest: str | None
    http_status: int | None = None
    http_headers: list[tuple[str, str]] | None = None

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def record_id(self) -> str | None:
        return self.header("WARC-Record-ID")

    @property
    def record_type(self) -> str | None:
        return self.header("WARC-Type")


@dataclass
class WarcVerdict:
    """The outcome of reading a whole file: its records and every problem found."""

    file: str
    records: list[RecordInfo] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Byte offset just past the last record that was complete and intact.
    good_until: int = 0
    #: True when the file ends inside a record (a crash or an interrupted copy).
    truncated: bool = False
    #: SHA-256 (hex) of the whole file, when it was read front to back (gzip files).
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Digester:
    """Recomputes a digest in the algorithm and encoding a recorded label uses."""

    def __init__(self, label: str | None) -> None:
        algo = "sha256"
        if label and ":" in label:
            algo = label.split(":", 1)[0].lower().replace("-", "")
        if algo not in ("sha256", "sha1", "sha512", "md5"):
            algo = "sha256"
        self.algo = algo
        self.label = label
        self.hash = hashlib.new(algo)

    def update(self, data: bytes | memoryview) -> None:
        self.hash.update(data)

    def matches(self) -> bool:
        if not self.label or ":" not in self.label:
            return False
        value = self.label.split(":", 1)[1].strip()
        raw = self.hash.digest()
        if len(value) == 2 * len(raw):  # hex, attest's own form
            return value.lower() == raw.hex()
        return value in (
            base64.b32encode(raw).decode("ascii"),
            base64.b64encode(raw).decode("ascii"),
        )

    def computed(self) -> str:
        return f"{self.algo}:{self.hash.hexdigest()}"


class _Source:
    """Decompressed bytes of one record: a gzip member, or a slice of a plain file."""

    def __init__(self, raw: BinaryIO, gzipped: bool, start: int, pushback: bytes) -> None:
        self.raw = raw
        self.gzipped = gzipped
        self.start = start
        self.buf = bytearray()
        self._decomp = zlib.decompressobj(31) if gzipped else None
        self._pending = pushback  # compressed bytes not yet fed
        self._consumed = 0  # raw bytes taken from file/pushback for this member
        self.leftover = b""  # raw bytes after the member's end (the next member's start)
        self.member_done = False

    def _fill(self) -> bool:
        if self._decomp is None:
            data = self._pending or self.raw.read(READ_CHUNK)
            self._pending = b""
            if not data:
                return False
            self._consumed += len(data)
            self.buf += data
            return True
        if self.member_done:
            return False
        while True:
            data = self._decomp.unconsumed_tail
            if not data:
                data = self._pending or self.raw.read(READ_CHUNK)
                self._pending = b""
                if not data:
                    return False
                self._consumed += len(data)
            try:
                out = self._decomp.decompress(data, READ_CHUNK)
            except zlib.error as exc:
                raise _Malformed(f"gzip data is corrupt: {exc}") from exc
            if self._decomp.eof:
                self.member_done = True
                self.leftover = self._decomp.unused_data
                self.buf += out
                return True
            if out:
                self.buf += out
                return True

    def read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            idx = self.buf.find(marker)
            if idx >= 0:
                end = idx + len(marker)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            if len(self.buf) > limit:
                raise _Malformed("header block too long")
            if not self._fill():
                raise _Truncated("ended inside a header block", bytes(self.buf))

    def read_exact(self, n: int) -> Iterator[bytes]:
        remaining = n
        while remaining > 0:
            if not self.buf and not self._fill():
                raise _Truncated(f"ended {remaining} bytes before the end of the block")
            take = min(remaining, len(self.buf))
            data = bytes(self.buf[:take])
            del self.buf[:take]
            remaining -= take
            yield data

    def at_eof(self) -> bool:
        """True when no decompressed bytes remain in this member (or the plain file)."""
        while not self.buf:
            if not self._fill():
                return True
        return False

    def raw_consumed(self) -> int:
        """Compressed bytes that belong to this member (gzip) or were read (plain)."""
        if self._decomp is None:
            return self._consumed - len(self.buf)
        if self.member_done:
            # After the end of the member zlib may leave the same bytes in both unconsumed_tail
            # and unused_data; only unused_data (kept as leftover) belongs to the next member.
            return self._consumed - len(self._pending) - len(self.leftover)
        pending = len(self._pending) + len(self._decomp.unconsumed_tail)
        return self._consumed - pending


def _record_id_from_partial_head(head: bytes) -> str | None:
    """The WARC-Record-ID of a header block cut short, if its line arrived whole."""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"WARC/"):
        return None
    for line in lines[1:-1]:  # the last piece may be a line cut in the middle
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"warc-record-id":
            return value.strip().decode("utf-8", errors="replace")
    return None


def _parse_headers(block: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = block.decode("utf-8", errors="replace")
    lines = text.split("\r\n")
    first = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        if ":" not in line:
            raise _Malformed(f"header line without a colon: {line[:80]!r}")
        name, value = line.split(":", 1)
        headers.append((name.strip(), value.strip()))
    return first, headers


class _Dechunker:
    """Streams the entity out of a chunked body, tolerant of a truncated tail."""

    def __init__(self, sink: _Digester) -> None:
        self.sink = sink
        self.buf = bytearray()
        self.remaining = 0  # bytes left in the current chunk's data
        self.state = "size"
        self.done = False

    def feed(self, data: bytes) -> None:
        self.buf += data
        while not self.done:
            if self.state == "size":
                idx = self.buf.find(b"\r\n")
                if idx < 0:
                    return
                line = bytes(self.buf[:idx]).split(b";", 1)[0].strip()
                del self.buf[: idx + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    self.done = True  # not valid chunking: entity ends here
                    return
                if size == 0:
                    self.done = True
                    return
                self.remaining = size
                self.state = "data"
            elif self.state == "data":
                if not self.buf:
                    return
                take = min(self.remaining, len(self.buf))
                self.sink.update(memoryview(self.buf)[:take])
                del self.buf[:take]
                self.remaining -= take
                if self.remaining == 0:
                    self.state = "crlf"
            elif self.state == "crlf":
                if len(self.buf) < 2:
                    return
                del self.buf[:2]
                self.state = "size"


def _http_head_and_payload(
    chunks: Iterator[bytes], block: _Digester, payload: _Digester | None
) -> tuple[int | None, list[tuple[str, str]] | None]:
    """Feed a record block to the digesters, splitting off the HTTP header block."""
    head = bytearray()
    status: int | None = None
    http_headers: list[tuple[str, str]] | None = None
    sink: _Digester | _Dechunker | None = None
    for chunk in chunks:
        block.update(chunk)
        if sink is None:
            head += chunk
            idx = head.find(b"\r\n\r\n")
            if idx < 0:
                if len(head) > MAX_HEADER_BYTES:
                    sink = payload  # no header block: treat all as payload
                    if sink is not None:
                        sink.update(bytes(head))
                continue
            first, http_headers = _parse_headers(bytes(head[:idx]))
            parts = first.split(" ", 2)
            if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
                status = int(parts[1])
            chunked = any(
                k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in http_headers
            )
            if payload is not None:
                sink = _Dechunker(payload) if chunked else payload
            else:
                sink = _Digester(None)
            rest = bytes(head[idx + 4 :])
            head.clear()
            if rest:
                sink.update(rest) if isinstance(sink, _Digester) else sink.feed(rest)
            continue
        if isinstance(sink, _Dechunker):
            sink.feed(chunk)
        else:
            sink.update(chunk)
    return status, http_headers


class _HashingReader:
    """A file read front to back, hashed on the way (the whole-file SHA-256, for free)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.sequential = True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != self.raw.tell() or whence != 0:
            self.sequential = False
        return self.raw.seek(offset, whence)


def iter_records(
    path: Path, *, verify: bool = True, file_hash: list[str] | None = None
) -> Iterator[RecordInfo | Problem]:
    """Yield each record's info, or a :class:`Problem` where reading or a digest check failed.

    Stops at the first structural problem (corrupt gzip, truncated record), since nothing after
    it can be located reliably; digest mismatches do not stop the walk. When ``file_hash`` is
    given and the whole file was read in order, the file's SHA-256 (hex) is appended to it.
    """
    name = str(path)
    with open(path, "rb") as plain:
        magic = plain.read(2)
        plain.seek(0)
        raw: Any = _HashingReader(plain)
        gzipped = magic == b"\x1f\x8b"
        offset = 0
        pushback = b""
        while True:
            if not pushback:
                peek = raw.read(1)
                if not peek:
                    if file_hash is not None and raw.sequential:
                        file_hash.append(raw.hash.hexdigest())
                    return
                pushback = peek
            src = _Source(raw, gzipped, offset, pushback)
            pushback = b""
            record_id: str | None = None
            skipped = 0
            try:
                if not gzipped:
                    # Skip blank lines between plain records.
                    while True:
                        if not src.buf and not src._fill():
                            return
                        stripped = src.buf.lstrip(b"\r\n")
                        skipped += len(src.buf) - len(stripped)
                        src.buf = bytearray(stripped)
                        if src.buf:
                            break
                head = src.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
                first, headers = _parse_headers(head[:-4])
                if not first.startswith("WARC/"):
                    raise _Malformed(f"not a WARC record (starts with {first[:20]!r})")
                info_headers = dict((k.lower(), v) for k, v in headers)
                record_id = info_headers.get("warc-record-id")
                try:
                    length = int(info_headers["content-length"])
                except (KeyError, ValueError) as exc:
                    raise _Malformed("missing or invalid Content-Length") from exc
                block_label = info_headers.get("warc-block-digest")
                payload_label = info_headers.get("warc-payload-digest")
                ctype = info_headers.get("content-type", "").lower()
                rtype = info_headers.get("warc-type", "").lower()
                block = _Digester(block_label)
                # A revisit's payload digest names the payload of the record it revisits, which
                # this record does not hold, so it cannot be recomputed here.
                check_payload = payload_label and rtype != "revisit"
                payload = _Digester(payload_label) if check_payload else None
                status = None
                http_headers = None
                if ctype.startswith("application/http") and rtype in ("response", "request"):
                    status, http_headers = _http_head_and_payload(
                        src.read_exact(length), block, payload
                    )
                else:
                    for chunk in src.read_exact(length):
                        block.update(chunk)
                        if payload is not None:
                            payload.update(chunk)
                trailer = b"".join(src.read_exact(4))
                if trailer != b"\r\n\r\n":
                    raise _Malformed("record does not end with CRLF CRLF")
                if gzipped:
                    if not src.at_eof():
                        raise _Malformed("extra bytes after the record inside its gzip member")
                    if not src.member_done:
                        raise _Truncated("gzip member ends before its trailer")
                    pushback = src.leftover
                    member_len = src.raw_consumed()
                else:
                    member_len = src.raw_consumed()
                    raw.seek(offset + member_len)
            except _Truncated as exc:
                if record_id is None and exc.partial_head:
                    record_id = _record_id_from_partial_head(exc.partial_head)
                yield Problem("truncated", name, offset + skipped, record_id, str(exc))
                return
            except _Malformed as exc:
                yield Problem("format", name, offset + skipped, record_id, str(exc))
                return
            record_offset = offset + skipped
            info = RecordInfo(
                offset=record_offset,
                length=member_len - skipped,
                headers=headers,
                content_length=length,
                block_digest=block_label or "",
                payload_digest=payload_label,
                http_status=status,
                http_headers=http_headers,
            )
            if verify:
                if not block_label:
                    yield Problem(
                        "block-digest", name, record_offset, record_id, "no WARC-Block-Digest"
                    )
                elif not block.matches():
                    yield Problem(
                        "block-digest",
                        name,
                        record_offset,
                        record_id,
                        f"recorded {block_label}, computed {block.computed()}",
                    )
                if payload is not None and not payload.matches():
                    yield Problem(
                        "payload-digest",
                        name,
                        record_offset,
                        record_id,
                        f"recorded {payload_label}, computed {payload.computed()}",
                    )
            yield info
            offset += member_len


def verify_warc(path: Path) -> WarcVerdict:
    """Read the whole file and check every record; see :class:`WarcVerdict`."""
    verdict = WarcVerdict(file=str(path))
    damaged = False
    file_hash: list[str] = []
    for item in iter_records(path, file_hash=file_hash):
        if isinstance(item, Problem):
            verdict.problems.append(item)
            if item.check == "truncated":
                verdict.truncated = True
            if item.check in ("block-digest", "payload-digest"):
                damaged = True
            continue
        verdict.records.append(item)
        if not damaged:
            verdict.good_until = item.offset + item.length
    if not verdict.records and not verdict.problems:
        verdict.problems.append(Problem("format", str(path), 0, None, "file holds no WARC record"))
    verdict.sha256 = file_hash[0] if file_hash else None
    return verdict
