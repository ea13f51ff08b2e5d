"""A WebSocket echo for the fixture web: the RFC 6455 server side, small and exact.

:class:`WebSocketEcho` answers a handshake with ``101 Switching Protocols`` (no extension is
accepted, so payloads travel uncompressed) and then echoes each data frame with its own opcode,
FIN bit and payload (unmasked, as a server sends), answers a ping with a pong, and a close
with a close carrying the same code, after which it closes the connection. ``?greet=TEXT`` sends
a text frame right behind the ``101``, in the same write. ``received`` and ``sent`` keep every
byte each connection got and sent after the handshake, for tests to compare with what the
recorder kept.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass, field

from demoweb.http import Reply, Request

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept``: RFC 6455 fixes SHA-1 here (a handshake check, not security)."""
    digest = hashlib.sha1((key + GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, key: bytes | None = None
) -> bytes:
    """One frame as it goes on the wire (masked with ``key`` when a client sends it)."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if key is not None else 0
    n = len(payload)
    if n < 126:
        head.append(mask_bit | n)
    elif n < 1 << 16:
        head.append(mask_bit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += n.to_bytes(8, "big")
    if key is None:
        return bytes(head) + payload
    return bytes(head) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes  # unmasked
    raw: bytes  # as it came off the wire


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    first = await reader.readexactly(2)
    raw = bytearray(first)
    n = first[1] & 0x7F
    if n == 126:
        ext = await reader.readexactly(2)
        raw += ext
        n = int.from_bytes(ext, "big")
    elif n == 127:
        ext = await reader.readexactly(8)
        raw += ext
        n = int.from_bytes(ext, "big")
    key = b""
    if first[1] & 0x80:
        key = await reader.readexactly(4)
        raw += key
    data = await reader.readexactly(n)
    raw += data
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(data)) if key else data
    return Frame(bool(first[0] & 0x80), first[0] & 0x0F, payload, bytes(raw))


@dataclass
class WebSocketEcho:
    """The echo; one instance serves every connection of a site (byte logs per connection)."""

    received: list[bytearray] = field(default_factory=list)
    sent: list[bytearray] = field(default_factory=list)
    frames: list[list[tuple[str, Frame]]] = field(default_factory=list)

    def handshake(self, req: Request) -> Reply:
        key = req.headers.get("sec-websocket-key")
        if (
            req.method != "GET"
            or "websocket" not in req.headers.get("upgrade", "").lower()
            or not key
        ):
            return Reply(400, "Bad Request", [("Content-Type", "text/plain")], b"not a handshake")
        greeting = req.query.get("greet", [""])[0].encode()
        return Reply(
            101,
            "Switching Protocols",
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_key(key)),
            ],
            # Sent with the head, in one write: the client's proxy reads both at once.
            body=encode_frame(TEXT, greeting) if greeting else b"",
            upgrade=self.serve,
        )

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        received, sent = bytearray(), bytearray(first)
        frames: list[tuple[str, Frame]] = []
        self.received.append(received)
        self.sent.append(sent)
        self.frames.append(frames)

        async def send(opcode: int, payload: bytes, fin: bool = True) -> None:
            data = encode_frame(opcode, payload, fin=fin)
            sent.extend(data)
            frames.append(("sent", Frame(fin, opcode, payload, data)))
            writer.write(data)
            await writer.drain()

        try:
            while True:
                frame = await read_frame(reader)
                received.extend(frame.raw)
                frames.append(("received", frame))
                if frame.opcode == PING:
                    await send(PONG, frame.payload)
                elif frame.opcode == CLOSE:
                    await send(CLOSE, frame.payload[:2])
                    return
                elif frame.opcode != PONG:
                    await send(frame.opcode, frame.payload, frame.fin)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
