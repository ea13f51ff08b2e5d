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
import contextlib
import functools
import hashlib
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

READ_CHUNK = 256 * 1024  # decompressed bytes per step: bounds the memory a record takes
FEED_CHUNK = 64 * 1024  # compressed bytes given to zlib per step
FIRST_FEED = 4096  # ... for a member's first step
RAW_CHUNK = 1024 * 1024  # bytes per read from the file
MAX_HEADER_BYTES = 1024 * 1024
_HEAD_PROBE = 8192  # bytes of a block searched first for the end of its HTTP header block


class Keep:
    """Which bytes of each record a reader wants kept while it is read (none by default).

    :meth:`block` is asked with the record's WARC headers (names lowercased) before its block
    is read; :meth:`payload`, for HTTP records, with the HTTP status and headers (names
    lowercased, first of each) once the HTTP header block is read. Each answers how many bytes
    to keep (0: none); more than a record has keeps it whole. Memory stays bounded by these
    answers however large a record is.
    """

    def block(self, headers: dict[str, str]) -> int:
        return 0

    def payload(self, headers: dict[str, str], status: int | None, http: dict[str, str]) -> int:
        return 0


class _Kept:
    """The first ``limit`` bytes fed to it."""

    __slots__ = ("cut", "data", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.cut = False

    def add(self, chunk: bytes | bytearray | memoryview) -> None:
        room = self.limit - len(self.data)
        if room <= 0:
            self.cut = self.cut or len(chunk) > 0
            return
        if len(chunk) > room:
            self.cut = True
            self.data += chunk[:room]
        else:
            self.data += chunk


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
    record_type: str | None = None
    target_uri: str | None = None

    def __str__(self) -> str:
        rid = f" record {self.record_id}" if self.record_id else ""
        return f"{self.check}: {self.file} at offset {self.offset}{rid}: {self.detail}"


@dataclass(slots=True)
class RecordInfo:
    """A record's WARC headers and position, as read back from a file."""

    offset: int
    length: int
    #: The WARC header block as read (the version line to the last header line).
    head: str
    content_length: int
    block_digest: str
    payload_digest: str | None
    http_status: int | None = None
    #: The WARC headers by lowercased name (the first of each name).
    fields: dict[str, str] = field(default_factory=dict)
    #: The HTTP headers of an ``application/http`` record's final response, by lowercased name
    #: (the first of each); None when the block has no HTTP header block.
    http_fields: dict[str, str] | None = None
    #: Bytes a :class:`Keep` asked for: the first bytes of the block, or of the HTTP payload
    #: (as on the wire: chunked and encoded as it was sent).
    kept: bytes = b""
    #: True when ``kept`` is shorter than what it was cut from.
    kept_cut: bool = False

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The WARC headers in order, continuation lines unfolded."""
        return _header_list(self.head)

    def header(self, name: str) -> str | None:
        return self.fields.get(name.lower())

    @property
    def record_id(self) -> str | None:
        return self.fields.get("warc-record-id")

    @property
    def record_type(self) -> str | None:
        return self.fields.get("warc-type")


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
    #: Records read (also counted when they are not kept).
    record_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class _Digester:
    """Recomputes a digest in the algorithm and encoding a recorded label uses."""

    __slots__ = ("algo", "hash", "label", "update")

    def __init__(self, label: str | None) -> None:
        self.label = label
        if label is not None and label.startswith("sha256:"):  # attest's own: the common case
            self.algo = "sha256"
            self.hash = hashlib.sha256()
        else:
            algo = "sha256"
            if label and ":" in label:
                algo = label.split(":", 1)[0].lower().replace("-", "")
            if algo not in ("sha256", "sha1", "sha512", "md5"):
                algo = "sha256"
            self.algo = algo
            self.hash = hashlib.new(algo)
        self.update = self.hash.update

    def matches(self) -> bool:
        label = self.label
        if label is not None and len(label) == 71 and label.startswith("sha256:"):
            return label[7:].lower() == self.hash.hexdigest()
        if not label or ":" not in label:
            return False
        value = label.split(":", 1)[1].strip()
        raw = self.hash.digest()
        if len(value) == 2 * len(raw):  # hex, attest's own form
            return value.lower() == raw.hex()
        return value in (
            base64.b32encode(raw).decode("ascii"),
            base64.b64encode(raw).decode("ascii"),
        )

    def computed(self) -> str:
        return f"{self.algo}:{self.hash.hexdigest()}"


class _Unchecked:
    """Takes a record's bytes and computes nothing (``iter_records(verify=False)``)."""

    __slots__ = ()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        return None


_UNCHECKED: Any = _Unchecked()


class _Source:
    """Decompressed bytes of one record: a gzip member, or a slice of a plain file.

    (Slots: its attributes are read for every record, many times.)

    Bytes are kept as an immutable buffer with a read position and handed out as memoryview
    slices, and the file is fed to zlib in bounded pieces tracked by position: copying buffers
    around (and zlib's copy of all unread input at each member's end) cost more than inflating.
    """

    __slots__ = (
        "_consumed",
        "_decomp",
        "_feed",
        "_in",
        "_in_pos",
        "buf",
        "gzipped",
        "leftover",
        "member_done",
        "pos",
        "raw",
        "start",
    )

    def __init__(
        self, raw: BinaryIO, gzipped: bool, start: int, pushback: bytes | memoryview
    ) -> None:
        self.raw = raw
        self.gzipped = gzipped
        self.start = start
        self.buf = b""  # bytes of the record read but not yet consumed start at ``pos``
        self.pos = 0
        self._decomp = zlib.decompressobj(31) if gzipped else None
        self._in = memoryview(pushback)  # raw bytes read but not yet fed start at ``_in_pos``
        self._in_pos = 0
        self._consumed = 0  # raw bytes taken for this member (gzip) or read (plain)
        self.leftover: bytes | memoryview = b""  # raw bytes after the member's end
        self.member_done = False
        # Compressed bytes fed at once: small first, growing with the member. At a member's
        # end zlib copies all input it was given past that end (unused_data): a small first
        # piece keeps that copy small for the many small records.
        self._feed = FIRST_FEED

    def _append(self, data: bytes) -> None:
        if self.pos >= len(self.buf):
            self.buf = data
        else:
            self.buf = self.buf[self.pos :] + data
        self.pos = 0

    def _raw_input(self) -> bool:
        """Make sure some raw bytes wait to be fed; False at the end of the file."""
        if self._in_pos < len(self._in):
            return True
        # A plain file is read again from each record's end (seek), so it reads less at once.
        self._in = memoryview(self.raw.read(RAW_CHUNK if self.gzipped else READ_CHUNK))
        self._in_pos = 0
        return len(self._in) > 0

    def _fill(self) -> bool:
        if self._decomp is None:
            if not self._raw_input():
                return False
            data = bytes(self._in[self._in_pos :])
            self._in_pos = len(self._in)
            self._consumed += len(data)
            self._append(data)
            return True
        if self.member_done:
            return False
        while True:
            if not self._raw_input():
                return False
            piece = self._in[self._in_pos : self._in_pos + self._feed]
            if self._feed < FEED_CHUNK:
                self._feed = min(self._feed * 4, FEED_CHUNK)
            try:
                out = self._decomp.decompress(piece, READ_CHUNK)
            except zlib.error as exc:
                raise _Malformed(f"gzip data is corrupt: {exc}") from exc
            if self._decomp.eof:
                used = len(piece) - len(self._decomp.unused_data)
            else:
                # Input zlib did not get to (output was full) is fed again from the position.
                used = len(piece) - len(self._decomp.unconsumed_tail)
            self._in_pos += used
            self._consumed += used
            if self._decomp.eof:
                self.member_done = True
                self.leftover = self._in[self._in_pos :]
                self._append(out)
                return True
            if out:
                self._append(out)
                return True

    def skip_blank_lines(self) -> int | None:
        """Skip CR/LF between plain records; returns how many, None at the end of the file."""
        skipped = 0
        while True:
            if self.pos >= len(self.buf) and not self._fill():
                return None
            before = self.pos
            while self.pos < len(self.buf) and self.buf[self.pos] in b"\r\n":
                self.pos += 1
            skipped += self.pos - before
            if self.pos < len(self.buf):
                return skipped

    def read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            idx = self.buf.find(marker, self.pos)
            if idx >= 0:
                end = idx + len(marker)
                data = self.buf[self.pos : end]
                self.pos = end
                return data
            if len(self.buf) - self.pos > limit:
                raise _Malformed("header block too long")
            if not self._fill():
                raise _Truncated("ended inside a header block", self.buf[self.pos :])

    def read_exact(self, n: int) -> Iterator[memoryview]:
        remaining = n
        while remaining > 0:
            if self.pos >= len(self.buf) and not self._fill():
                raise _Truncated(f"ended {remaining} bytes before the end of the block")
            take = min(remaining, len(self.buf) - self.pos)
            view = memoryview(self.buf)[self.pos : self.pos + take]
            self.pos += take
            remaining -= take
            yield view

    def at_eof(self) -> bool:
        """True when no decompressed bytes remain in this member (or the plain file)."""
        while self.pos >= len(self.buf):
            if not self._fill():
                return True
        return False

    def drain(self, limit: int) -> str:
        """Inflate and drop the rest of this gzip member: "done" when its end was reached,
        "eof" when the file ends first, "too large" past ``limit`` inflated bytes (a bomb)."""
        if self._decomp is None:
            return "eof"
        dropped = 0
        while not self.member_done:
            dropped += len(self.buf) - self.pos
            self.pos = len(self.buf)
            if dropped > limit:
                return "too large"
            try:
                if not self._fill():
                    return "eof"
            except _Malformed:
                return "eof"
        self.pos = len(self.buf)
        return "done"

    def raw_consumed(self) -> int:
        """Compressed bytes that belong to this member (gzip) or were read (plain)."""
        if self._decomp is None:
            return self._consumed - (len(self.buf) - self.pos)
        return self._consumed


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


def _header_list(text: str) -> list[tuple[str, str]]:
    """The header lines after the first, in order; folded lines joined to the one before."""
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n")[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _Malformed(f"header line without a colon: {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def _parse_headers(block: bytes) -> tuple[str, str, dict[str, str]]:
    """The header block as text, its first line, and its headers by lowercased name (the
    first of each). :class:`_Malformed` when a line is not a header."""
    text = block.decode("utf-8", errors="replace")
    lines = text.split("\r\n")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # folded lines: rare; joined to the line before
            fields = {}
            for name, value in _header_list(text):
                fields.setdefault(name.lower(), value)
            break
        name, sep, value = line.partition(":")
        if not sep:
            raise _Malformed(f"header line without a colon: {line[:80]!r}")
        lname = name.strip().lower()
        if lname not in fields:
            fields[lname] = value.strip()
    return text, lines[0], fields


class _Dechunker:
    """Streams the entity out of a chunked body, tolerant of a truncated tail."""

    def __init__(self, sink: _Digester) -> None:
        self.sink = sink
        self.buf = bytearray()
        self.remaining = 0  # bytes left in the current chunk's data
        self.state = "size"
        self.done = False

    def feed(self, data: bytes | memoryview) -> None:
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


def _http_status_and_chunking(head: bytes) -> tuple[int | None, bool, dict[str, str]]:
    """The status code of an HTTP header block, whether its body is chunked, and its headers
    by lowercased name (the first of each), in one pass.

    Lines without a colon are skipped: a malformed header from the origin is part of the
    evidence, not damage to the record. A folded continuation of Transfer-Encoding counts for
    chunking (the payload digest depends on it).
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = None
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        status = int(parts[1])
    chunked = False
    fields: dict[str, str] = {}
    in_transfer_encoding = False  # the header being read (or continued) is Transfer-Encoding
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":  # a folded continuation of the previous value
            if in_transfer_encoding and "chunked" in line.lower():
                chunked = True
            continue
        name, sep, value = line.partition(":")
        if not sep:
            in_transfer_encoding = False
            continue
        lname = name.strip().lower()
        if lname == "transfer-encoding":
            in_transfer_encoding = True
            if "chunked" in value.lower():
                chunked = True
        else:
            in_transfer_encoding = False
        if lname not in fields:
            fields[lname] = value.strip()
    return status, chunked, fields


def _http_head_and_payload(
    chunks: Iterator[memoryview],
    block: _Digester,
    payload: _Digester | None,
    keep: Any = None,
) -> tuple[int | None, dict[str, str] | None, _Kept | None]:
    """Feed a record block to the digesters, splitting off the HTTP header block.

    Interim (1xx) responses before the final one are part of the block, not of the payload.
    Returns the HTTP status code (if the block starts with a status line), the final
    response's headers (None without a header block), and the payload bytes
    ``keep(status, headers)`` asked for.
    """
    head = bytearray()
    status: int | None = None
    final: dict[str, str] | None = None
    kept: _Kept | None = None
    sink: Any = None  # the payload's digester, its dechunker, or _UNCHECKED
    for chunk in chunks:
        block.update(chunk)
        if sink is None and not head:
            # The usual case: the whole header block is in the first few KB of the first
            # chunk. Found there, the body is never copied.
            probe = bytes(chunk[:_HEAD_PROBE])
            start = 0
            idx = probe.find(b"\r\n\r\n")
            while idx >= 0:
                status, chunked, fields = _http_status_and_chunking(probe[start:idx])
                if status is None or not 100 <= status < 200 or status == 101:
                    break
                start = idx + 4  # an interim response: the final one follows
                idx = probe.find(b"\r\n\r\n", start)
            if idx >= 0:
                final = fields
                sink, kept = _begin_payload(
                    chunk[idx + 4 :], status, chunked, fields, payload, keep
                )
                continue
        if sink is None:
            head += chunk
            idx = head.find(b"\r\n\r\n")
            while idx >= 0:
                status, chunked, fields = _http_status_and_chunking(bytes(head[:idx]))
                if status is None or not 100 <= status < 200 or status == 101:
                    break
                del head[: idx + 4]  # an interim response: the final one follows
                idx = head.find(b"\r\n\r\n")
            if idx < 0:
                if len(head) > MAX_HEADER_BYTES:
                    # No header block: all of it is payload (and memory stays bounded).
                    status = None
                    sink = payload if payload is not None else _UNCHECKED
                    sink.update(head)
                    head = bytearray()
                continue
            final = fields
            with memoryview(head) as view:
                sink, kept = _begin_payload(view[idx + 4 :], status, chunked, fields, payload, keep)
            continue
        if isinstance(sink, _Dechunker):
            sink.feed(chunk)
        else:
            sink.update(chunk)
        if kept is not None:
            kept.add(chunk)
    return status, final, kept


def _begin_payload(
    rest: memoryview,
    status: int | None,
    chunked: bool,
    fields: dict[str, str],
    payload: _Digester | None,
    keep: Any,
) -> tuple[Any, _Kept | None]:
    """Once the final HTTP header block is found: the payload's sink (its digester, through a
    dechunker if the body is chunked; or nothing), what ``keep`` wants of it, and the first of
    its bytes (``rest``, after the header block) fed to both."""
    kept = None
    if keep is not None:
        wanted = keep(status, fields)
        kept = _Kept(wanted) if wanted > 0 else None
    sink: Any = _UNCHECKED
    if payload is not None:
        sink = _Dechunker(payload) if chunked else payload
    if rest:
        sink.feed(rest) if isinstance(sink, _Dechunker) else sink.update(rest)
        if kept is not None:
            kept.add(rest)
    return sink, kept


#: A gzip member's fixed header: magic, deflate, no flags (no extra field, name or comment).
_GZIP_PLAIN_HEAD = b"\x1f\x8b\x08\x00"


def stored_member(member: bytes | memoryview) -> list[memoryview] | None:
    """The inflated bytes of a gzip member whose deflate stream is only *stored* blocks (as
    attest writes precompressed blocks, and zlib at level 0), as views into ``member`` (no
    inflation, no copy); None for anything else, which zlib must inflate.

    Exactly one member, its CRC-32 and size checked as gzip does: the bytes are those zlib
    would give. Stricter than zlib, never looser: a block header with stray padding bits, a
    member with optional fields or followed by more bytes, a compressed block: None.
    """
    view = memoryview(member)
    if len(view) < 23 or view[:4] != _GZIP_PLAIN_HEAD:
        return None
    end = len(view) - 8  # the trailer: CRC-32 and size
    pos, pieces = 10, []
    while True:
        if pos + 5 > end:
            return None
        final = view[pos]
        if final > 1:  # BTYPE is not 00 (stored), or padding bits are set
            return None
        size, check = struct.unpack_from("<HH", view, pos + 1)
        if size ^ check != 0xFFFF or pos + 5 + size > end:
            return None
        pieces.append(view[pos + 5 : pos + 5 + size])
        pos += 5 + size
        if final:
            break
    if pos != end:
        return None
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    recorded_crc, recorded_size = struct.unpack_from("<II", view, end)
    if crc != recorded_crc or sum(map(len, pieces)) & 0xFFFFFFFF != recorded_size:
        return None
    return pieces


class _HashingReader:
    """A file read front to back, hashed on the way (the whole-file SHA-256, for free), unless
    nobody asked for that hash."""

    def __init__(self, raw: BinaryIO, *, hashing: bool = True) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.hashing = hashing
        self.sequential = True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.hashing:
            self.hash.update(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != self.raw.tell() or whence != 0:
            self.sequential = False
        return self.raw.seek(offset, whence)


#: Inflated bytes a resync may drop to find the end of a damaged gzip member: past this, the
#: member is taken for a decompression bomb and the walk stops.
MAX_DRAIN = 64 * 1024 * 1024


def iter_records(
    path: Path,
    *,
    verify: bool = True,
    file_hash: list[str] | None = None,
    handle: BinaryIO | None = None,
    keep: Keep | None = None,
    resync: bool = False,
    payload_digests: bool = True,
) -> Iterator[RecordInfo | Problem]:
    """Yield each record's info, or a :class:`Problem` where reading or a digest check failed.

    A record whose digest fails is yielded after its problems (same offset): a reader that
    must not trust it skips it. Digest mismatches do not stop the walk. A structural problem
    (corrupt gzip, a truncated record, a bad Content-Length) stops it, since nothing after it
    can be located reliably, unless ``resync``: then, in a gzip WARC whose damaged member still
    ends as a gzip member should (one record per member), the walk goes on at the next member.
    When ``file_hash`` is given and the whole file was read in order (a gzip WARC), the file's
    SHA-256 (hex) is appended to it, also when the walk stopped early. With ``handle`` (readable and seekable, at offset 0 the file's start),
    the WARC is read from it, not opened; ``path`` only names it in problems. ``keep`` says
    which bytes of each record to keep in its :attr:`RecordInfo.kept`.
    """
    name = str(path)
    with open(path, "rb") if handle is None else contextlib.nullcontext(handle) as plain:
        magic = plain.read(2)
        plain.seek(0)
        raw: Any = _HashingReader(plain, hashing=file_hash is not None)
        gzipped = magic == b"\x1f\x8b"
        offset = 0
        pushback: bytes | memoryview = b""
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
            rtype: str | None = None
            target: str | None = None
            skipped = 0
            try:
                if not gzipped:
                    # Skip blank lines between plain records.
                    blank = src.skip_blank_lines()
                    if blank is None:
                        return
                    skipped = blank
                head = src.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
                head_text, first, info_headers = _parse_headers(head[:-4])
                if not first.startswith("WARC/"):
                    raise _Malformed(f"not a WARC record (starts with {first[:20]!r})")
                record_id = info_headers.get("warc-record-id")
                rtype = info_headers.get("warc-type", "").lower()
                target = info_headers.get("warc-target-uri")
                try:
                    length = int(info_headers["content-length"])
                except (KeyError, ValueError) as exc:
                    raise _Malformed("missing or invalid Content-Length") from exc
                if length < 0:
                    raise _Malformed(f"negative Content-Length {length}")
                block_label = info_headers.get("warc-block-digest")
                payload_label = info_headers.get("warc-payload-digest")
                ctype = info_headers.get("content-type", "").lower()
                block = _Digester(block_label) if verify else _UNCHECKED
                # A revisit's payload digest names the payload of the record it revisits, which
                # this record does not hold, so it cannot be recomputed here.
                check_payload = verify and payload_digests and payload_label and rtype != "revisit"
                payload = _Digester(payload_label) if check_payload else None
                status = None
                http_fields: dict[str, str] | None = None
                kept: _Kept | None = None
                # Most records are already whole in the buffer: read them in one piece.
                whole = src.pos + length + 4 <= len(src.buf)
                chunks: Iterable[memoryview] = (
                    (memoryview(src.buf)[src.pos : src.pos + length],)
                    if whole
                    else src.read_exact(length)
                )
                if ctype.startswith("application/http") and rtype in (
                    "response",
                    "request",
                    "revisit",
                ):
                    wants = None
                    if keep is not None:
                        wants = functools.partial(keep.payload, info_headers)
                    # A revisit's block is the HTTP head only (or head and a truncated body):
                    # the block digest covers it; there is no payload to check.
                    status, http_fields, kept = _http_head_and_payload(
                        iter(chunks), block, None if rtype == "revisit" else payload, wants
                    )
                else:
                    wanted = keep.block(info_headers) if keep is not None else 0
                    kept = _Kept(wanted) if wanted > 0 else None
                    for chunk in chunks:
                        block.update(chunk)
                        if payload is not None:
                            payload.update(chunk)
                        if kept is not None:
                            kept.add(chunk)
                if whole:
                    end = src.pos + length
                    trailer = src.buf[end : end + 4]
                    src.pos = end + 4
                else:
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
            except (_Truncated, _Malformed) as exc:
                check = "truncated" if isinstance(exc, _Truncated) else "format"
                if record_id is None and isinstance(exc, _Truncated) and exc.partial_head:
                    record_id = _record_id_from_partial_head(exc.partial_head)
                detail = str(exc)
                drained = src.drain(MAX_DRAIN) if resync and gzipped else None
                if drained == "done":
                    # The member itself is whole: only this record is lost.
                    yield Problem(
                        check,
                        name,
                        offset,
                        record_id,
                        detail + "; skipped to the next record",
                        rtype,
                        target,
                    )
                    pushback = src.leftover
                    offset += src.raw_consumed()
                    continue
                if drained == "too large":
                    detail += (
                        f"; its gzip member inflates past {MAX_DRAIN} more bytes (a decompression "
                        "bomb?): the rest of the file is not read"
                    )
                yield Problem(check, name, offset + skipped, record_id, detail, rtype, target)
                if file_hash is not None and raw.sequential:
                    # Nothing more is read as records, but the file's hash covers all of it.
                    while raw.read(RAW_CHUNK):
                        pass
                    file_hash.append(raw.hash.hexdigest())
                return
            record_offset = offset + skipped
            info = RecordInfo(
                offset=record_offset,
                length=member_len - skipped,
                head=head_text,
                content_length=length,
                block_digest=block_label or "",
                payload_digest=payload_label,
                http_status=status,
                fields=info_headers,
                http_fields=http_fields,
                kept=bytes(kept.data) if kept is not None else b"",
                kept_cut=kept.cut if kept is not None else False,
            )
            if verify:
                if not block_label:
                    yield Problem(
                        "block-digest",
                        name,
                        record_offset,
                        record_id,
                        "no WARC-Block-Digest",
                        rtype,
                        target,
                    )
                elif not block.matches():
                    yield Problem(
                        "block-digest",
                        name,
                        record_offset,
                        record_id,
                        f"recorded {block_label}, computed {block.computed()}",
                        rtype,
                        target,
                    )
                if payload is not None and not payload.matches():
                    yield Problem(
                        "payload-digest",
                        name,
                        record_offset,
                        record_id,
                        f"recorded {payload_label}, computed {payload.computed()}",
                        rtype,
                        target,
                    )
            yield info
            offset += member_len


def verify_warc(
    path: Path, *, keep_records: bool = True, handle: BinaryIO | None = None
) -> WarcVerdict:
    """Read the whole file and check every record; see :class:`WarcVerdict`.

    With ``keep_records=False`` only the count is kept (``record_count``), so memory stays
    flat however big the file: the spool's checks before sealing and uploading use that.
    ``handle``: read the WARC from it, as :func:`iter_records` does.
    """
    verdict = WarcVerdict(file=str(path))
    damaged = False
    file_hash: list[str] = []
    for item in iter_records(path, file_hash=file_hash, handle=handle):
        if isinstance(item, Problem):
            verdict.problems.append(item)
            if item.check == "truncated":
                verdict.truncated = True
            if item.check in ("block-digest", "payload-digest"):
                damaged = True
            continue
        verdict.record_count += 1
        if keep_records:
            verdict.records.append(item)
        if not damaged:
            verdict.good_until = item.offset + item.length
    if not verdict.record_count and not verdict.problems:
        verdict.problems.append(Problem("format", str(path), 0, None, "file holds no WARC record"))
    verdict.sha256 = file_hash[0] if file_hash else None
    return verdict
