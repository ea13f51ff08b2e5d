"""A WebSocket client that goes through the recorder, byte by byte, and a transcript reader.

:class:`ProxiedWebSocket` does what Chromium does: ``CONNECT`` to the origin with the run's proxy
credentials, TLS inside the tunnel for ``wss``, then the handshake; it sends frames exactly as
given (so a test controls masking, fragmentation and lengths) and keeps every byte it got.
:func:`transcript` reads the recorder's transcript records back; :func:`rebuilt_streams` puts
each direction's bytes together again from the frames, as a verifier would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
from typing import Any

from support.warcs import Rec


class ProxiedWebSocket:
    def __init__(
        self,
        proxy_port: int,
        host_port: str,
        path: str,
        auth: str,
        *,
        tls_ca: str | None = None,
        extra_head: bytes = b"",
        timeout: float = 20,
    ) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", proxy_port), timeout)
        self.sock.sendall(
            f"CONNECT {host_port} HTTP/1.1\r\nHost: {host_port}\r\n"
            f"Proxy-Authorization: {auth}\r\n\r\n".encode()
        )
        self.buf = b""
        connect_head = self._head()
        if not connect_head.startswith(b"HTTP/1.1 200"):
            raise AssertionError(f"CONNECT refused: {connect_head!r}")
        if tls_ca is not None:
            context = ssl.create_default_context(cafile=tls_ca)
            context.check_hostname = False  # the recorder's certificate names the host, not IPs
            self.sock = context.wrap_socket(self.sock, server_hostname=host_port.split(":")[0])
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://{host_port}\r\n\r\n"
        ).encode()
        self.sock.sendall(self.request + extra_head)
        self.sent = bytearray(extra_head)
        self.head = self._head()
        self.received = bytearray(self.buf)

    def _head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection ended in a head: {self.buf!r}")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    @property
    def status(self) -> int:
        return int(self.head.split(b" ", 2)[1])

    def send(self, data: bytes) -> None:
        self.sent += data
        self.sock.sendall(data)

    def read_until_closed(self) -> bytes:
        """Everything the recorder relays until it closes the connection."""
        while data := self.sock.recv(65536):
            self.received += data
        return bytes(self.received)

    def read_at_least(self, n: int) -> bytes:
        while len(self.received) < n:
            data = self.sock.recv(65536)
            if not data:
                break
            self.received += data
        return bytes(self.received)

    def close(self) -> None:
        self.sock.close()


def transcript(records: list[Rec], response_id: str) -> list[dict[str, Any]]:
    """The lines of the transcript of the handshake whose 101 is ``response_id``, parts in
    order (each part's first line kept)."""
    parts = [
        r
        for r in records
        if r.type == "resource"
        and r.headers.get("WARC-Concurrent-To") == response_id
        and r.headers.get("Content-Type") == "application/jsonl; profile=attest-websocket"
    ]
    lines = [[json.loads(line) for line in r.block.splitlines()] for r in parts]
    lines.sort(key=lambda part: part[0]["part"])
    return [line for part in lines for line in part]


def frame_bytes(line: dict[str, Any]) -> bytes:
    """A frame's bytes as sent: its head, then its payload masked again with the head's key."""
    head = bytes.fromhex(line["head"])
    data = base64.b64decode(line["data"])
    if len(head) >= 2 and head[1] & 0x80 and len(head) >= 6:
        key = head[-4:]
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return head + data


def rebuilt_streams(lines: list[dict[str, Any]]) -> dict[str, bytes]:
    out = {"client": bytearray(), "server": bytearray()}
    for line in lines:
        if "from" in line:
            out[line["from"]] += frame_bytes(line)
    return {side: bytes(data) for side, data in out.items()}


def stream_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
