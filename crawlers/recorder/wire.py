"""Reading one HTTP/1.x response off a socket, keeping every byte as it arrived.

This is the recorder's hot path (docs/PERFORMANCE.md): instead of ``http.client`` reading
through a recording file wrapper, the response is read straight from the socket into a buffer
that *is* the record block. While reading, the block's SHA-256 and the payload's SHA-256 (the
entity: after the header block, chunk framing removed, as WARC 1.1 defines it) are computed,
and the framing is followed exactly, so a kept-alive connection is left at the start of the next
response. Interim (1xx) responses stay in the block, as received; the final response's head is
what the client gets.
"""

from __future__ import annotations

import hashlib
import socket
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

RECV_SIZE = 256 * 1024
MAX_HEAD = 1024 * 1024
SPOOL_THRESHOLD = 1024 * 1024


class ResponseError(Exception):
    """The bytes are not an HTTP response, or the connection ended before the head did."""


class EmptyResponse(ResponseError):
    """The connection closed before the first byte (a kept-alive connection the origin dropped)."""


def _spooled() -> IO[bytes]:
    # Closed by WireResponse.close(); in memory up to SPOOL_THRESHOLD, then on disk.
    return tempfile.SpooledTemporaryFile(SPOOL_THRESHOLD)


@dataclass
class WireResponse:
    status: int = 0
    reason: str = ""
    version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The record block so far: every byte read, interim responses and framing included.
    block: IO[bytes] = field(default_factory=lambda: _spooled())
    length: int = 0
    #: Offset of the final response's body in the block.
    body_offset: int = 0
    block_digest: Any = field(default_factory=hashlib.sha256)
    payload_digest: Any = field(default_factory=hashlib.sha256)
    truncated: str | None = None
    will_close: bool = False
    #: How the body was delimited: "length", "chunked", "none" (no body) or "close".
    framing: str = "none"
    #: Bytes read past the end of the response (not in the block). After a ``101 Switching
    #: Protocols`` they are the new protocol's first bytes (a WebSocket server's first frames).
    unread: bytes = b""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def keep(self, data: bytes | memoryview) -> None:
        self.block.write(data)
        self.block_digest.update(data)
        self.length += len(data)

    def close(self) -> None:
        self.block.close()


class _Reader:
    """Buffered reads from a socket; everything taken is kept in the response's block."""

    def __init__(self, sock: socket.socket, response: WireResponse) -> None:
        self.sock = sock
        self.response = response
        self.buf = bytearray()

    def fill(self) -> bool:
        data = self.sock.recv(RECV_SIZE)
        if not data:
            return False
        self.buf += data
        return True

    def take(self, n: int) -> bytes:
        """Consume ``n`` buffered bytes into the block."""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        self.response.keep(data)
        return data


def _parse_head(head: bytes) -> tuple[str, int, str, list[tuple[str, str]]]:
    text = head.decode("iso-8859-1")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit() or len(code) != 3:
        raise ResponseError(f"not an HTTP status line: {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if headers:  # obsolete line folding: unfold into the previous value
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon:  # a line without a colon is kept in the block, skipped here
            headers.append((name.strip(), value.strip()))
    return version, int(code), reason, headers


def _read_head(reader: _Reader) -> int:
    """Read up to the end of a header block; returns its length (not yet consumed)."""
    start = 0
    while True:
        end = reader.buf.find(b"\r\n\r\n", start)
        if end >= 0:
            return end + 4
        start = max(0, len(reader.buf) - 3)
        if len(reader.buf) > MAX_HEAD:
            raise ResponseError("response header block over 1 MiB")
        if not reader.fill():
            if not reader.buf and not reader.response.length:
                raise EmptyResponse("connection closed before any response")
            raise ResponseError("connection closed inside the response header block")


def read_response(sock: socket.socket, method: str, *, max_size: int | None = None) -> WireResponse:
    """Read one response, exactly to its end; the block holds the bytes as received."""
    response = WireResponse()
    reader = _Reader(sock, response)
    try:
        while True:
            head_len = _read_head(reader)
            head = reader.take(head_len)
            version, status, reason, headers = _parse_head(head[:-4])
            if 100 <= status < 200 and status != 101:
                continue  # interim response: kept in the block, the final one follows
            break
        response.version, response.status, response.reason, response.headers = (
            version,
            status,
            reason,
            headers,
        )
        response.body_offset = response.length
        lower = {k.lower(): v for k, v in headers}
        connection = lower.get("connection", "").lower()
        response.will_close = "close" in connection or (
            version == "HTTP/1.0" and "keep-alive" not in connection
        )
        if method == "HEAD" or status in (204, 304) or status == 101:
            response.framing = "none"
        elif "chunked" in lower.get("transfer-encoding", "").lower():
            response.framing = "chunked"
            _read_chunked(reader, max_size)
        elif lower.get("content-length", "").strip().isdigit():
            response.framing = "length"
            _read_length(reader, int(lower["content-length"].strip()), max_size)
        else:
            response.framing = "close"
            response.will_close = True
            _read_to_close(reader, max_size)
        if reader.buf:
            # Bytes past the end of this response: the connection is not reusable.
            response.will_close = True
            response.unread = bytes(reader.buf)
    except BaseException:
        response.close()
        raise
    return response


def _body_bytes(reader: _Reader, n: int) -> None:
    data = reader.take(n)
    reader.response.payload_digest.update(data)


def _over(reader: _Reader, max_size: int | None) -> bool:
    if max_size is not None and reader.response.length - reader.response.body_offset > max_size:
        reader.response.truncated = "length"
        reader.response.will_close = True
        return True
    return False


def _read_length(reader: _Reader, remaining: int, max_size: int | None) -> None:
    while remaining > 0:
        if not reader.buf and not reader.fill():
            reader.response.truncated = "disconnect"
            reader.response.will_close = True
            return
        n = min(remaining, len(reader.buf))
        _body_bytes(reader, n)
        remaining -= n
        if _over(reader, max_size):
            return


def _read_to_close(reader: _Reader, max_size: int | None) -> None:
    while True:
        if reader.buf:
            _body_bytes(reader, len(reader.buf))
            if _over(reader, max_size):
                return
        if not reader.fill():
            return


def _line(reader: _Reader) -> bytes | None:
    """The next CRLF-terminated line, consumed into the block; None at end of stream."""
    while True:
        idx = reader.buf.find(b"\n")
        if idx >= 0:
            return reader.take(idx + 1)
        if len(reader.buf) > MAX_HEAD:
            raise ResponseError("chunk size line too long")
        if not reader.fill():
            return None


def _read_chunked(reader: _Reader, max_size: int | None) -> None:
    response = reader.response
    while True:
        line = _line(reader)
        if line is None:
            response.truncated, response.will_close = "disconnect", True
            return
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ResponseError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            # Trailer fields, then the empty line that ends the message.
            while True:
                trailer = _line(reader)
                if trailer is None:
                    response.truncated, response.will_close = "disconnect", True
                    return
                if trailer in (b"\r\n", b"\n"):
                    return
        remaining = size
        while remaining > 0:
            if not reader.buf and not reader.fill():
                response.truncated, response.will_close = "disconnect", True
                return
            n = min(remaining, len(reader.buf))
            _body_bytes(reader, n)
            remaining -= n
            if _over(reader, max_size):
                return
        end = _line(reader)  # the CRLF after the chunk data
        if end is None:
            response.truncated, response.will_close = "disconnect", True
            return
