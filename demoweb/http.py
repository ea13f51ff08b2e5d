"""The fixture web's HTTP/1.1 server: asyncio streams, exact bytes, named misbehaviour.

Each site answers a :class:`Request` with a :class:`Reply`; the server writes the reply's
status line, headers and body exactly (chunked framing included when the reply asks for it),
so tests can compare what the recorder stored with what was sent. ``sent`` keeps the body bytes
of every response when ``keep_log`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    host: str
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def accepts(self, coding: str) -> bool:
        return coding in self.headers.get("accept-encoding", "").lower()


Upgrade = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


@dataclass
class Reply:
    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: Send the body with chunked transfer coding, in chunks of these sizes (the last repeats).
    chunks: list[int] | None = None
    #: Seconds to wait before answering (for timeout tests).
    delay: float = 0.0
    #: Close the connection after sending only this many body bytes (a broken response).
    cut_after: int | None = None
    #: Header lines sent verbatim after the headers (malformed ones, for edge cases).
    raw_lines: list[str] = field(default_factory=list)
    #: After a ``101``: what speaks the new protocol on the connection (given the reader, the
    #: writer and the body bytes sent with the head); the connection ends when it returns.
    upgrade: Upgrade | None = None

    def wire_head(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        names = {k.lower() for k, _ in self.headers}
        lines.extend(f"{k}: {v}" for k, v in self.headers)
        lines.extend(self.raw_lines)
        if self.chunks is not None:
            if "transfer-encoding" not in names:
                lines.append("Transfer-Encoding: chunked")
        elif "content-length" not in names and self.status != 101:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def wire_body(self) -> bytes:
        if self.chunks is None:
            return self.body
        out = bytearray()
        pos = 0
        sizes = self.chunks or [len(self.body) or 1]
        i = 0
        while pos < len(self.body):
            size = sizes[min(i, len(sizes) - 1)]
            piece = self.body[pos : pos + size]
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            pos += size
            i += 1
        out += b"0\r\n\r\n"
        return bytes(out)


Handler = Callable[[Request], Reply]


class FixtureServer:
    """Serves one site on 127.0.0.1 from a background thread (or the caller's loop)."""

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        keep_log: bool = False,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.tls = tls
        self.keep_log = keep_log
        self.sent: list[tuple[str, str, bytes, bytes]] = []  # (method, target, head, body)
        self.requests: list[Request] = []
        #: Each request exactly as it arrived (head and body bytes), when ``keep_log`` is on.
        self.received: list[bytes] = []
        #: Requests being answered right now, the most seen at once, and when each began.
        self.in_flight = 0
        self.max_in_flight = 0
        self.started: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._failed: OSError | None = None

    @property
    def origin(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                try:
                    method, target, version = lines[0].split(" ", 2)
                except ValueError:
                    return
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                if self.keep_log:
                    self.received.append(head + body)
                request = Request(method, target, headers, headers.get("host", ""), body)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                self.started.append(time.monotonic())
                try:
                    reply = self.handler(request)
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                finally:
                    self.in_flight -= 1
                wire_head = reply.wire_head()
                wire_body = b"" if method == "HEAD" else reply.wire_body()
                if self.keep_log:
                    self.requests.append(request)
                    self.sent.append((method, target, wire_head, wire_body))
                if reply.cut_after is not None:
                    writer.write(wire_head + wire_body[: reply.cut_after])
                    await writer.drain()
                    return
                writer.write(wire_head + wire_body)
                await writer.drain()
                if reply.upgrade is not None:
                    await reply.upgrade(reader, writer, wire_body)
                    return
                if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
                    return
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def serve(self) -> None:
        """Run in the current loop until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, ssl=self.tls, limit=1 << 20, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> FixtureServer:
        """Serve from a daemon thread; returns once listening. Raises the :class:`OSError` of a
        port that cannot be listened on (one in use, say)."""

        def run() -> None:
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    asyncio.run(self.serve())
            except OSError as exc:
                if self._ready.is_set():
                    raise
                self._failed = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name=f"fixture-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fixture server did not start")
        if self._failed is not None:
            self._thread.join(5)
            self._thread = None
            raise self._failed
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(5)

    def bodies_for(self, target: str) -> list[bytes]:
        return [body for _m, t, _h, body in self.sent if t == target]
