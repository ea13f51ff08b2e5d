"""Relaying a WebSocket connection after its handshake, and keeping its transcript.

The handshake (the client's ``GET`` with ``Upgrade: websocket`` and the origin's ``101
Switching Protocols``) is recorded by :mod:`crawlers.recorder.proxy` like any exchange. From
then on :class:`WebSocketRelay` passes bytes both ways exactly as they arrive, until either side
closes, nothing moves for the socket timeout, or the recorder stops. Each byte relayed is also
split into RFC 6455 frames (:class:`FrameSplitter`) for the transcript (:class:`Transcript`):
``resource`` records with target ``urn:websocket:<ws url>`` and content type
``application/jsonl; profile=attest-websocket``, linked to the handshake's response record by
``WARC-Concurrent-To``. The format, and what a crash can lose, are in
docs/adr/0004-websocket-transcripts.md.

One JSON object per line:

- the first line of each record: ``{"websocket": URL, "handshake": RECORD-ID, "part": N}``;
- one line per frame, in the order frames were completed: ``ts`` (microseconds since the
  epoch, UTC, when its last byte arrived), ``from`` (``client`` or ``server``), ``fin``,
  ``rsv``, ``opcode``, ``length`` (payload bytes), ``head`` (the frame header as sent, hex:
  first two bytes, extended length, masking key) and ``data`` (the payload, unmasked, base64).
  A frame the connection ended inside has ``"cut": true`` and what arrived of it;
- the last line of the last record: ``ts``, ``end`` (why the connection ended) and, per
  direction, the ``bytes`` relayed and their ``sha256``. The bytes of one direction are the
  ``head`` of each of its frames followed by its ``data`` masked again with the key in the
  head, in order, across all parts: a verifier rebuilds them and compares.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import select
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, BinaryIO, cast

from archive.warc.write import Block, RecordSpec, new_record_id, sha256_label

TRANSCRIPT_CONTENT_TYPE = "application/jsonl; profile=attest-websocket"
TARGET_PREFIX = "urn:websocket:"
RECV_SIZE = 256 * 1024
#: A frame's payload is kept in memory up to this size, then in a temporary file.
SPILL_SIZE = 1024 * 1024
#: After one side closed, how long the other may still finish (its close frame, say).
CLOSE_GRACE = 2.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a float timestamp can be off by one)."""
    return (moment - _EPOCH) // _MICROSECOND


def websocket_url(url: str) -> str:
    """The ``ws://``/``wss://`` URL of a handshake sent to ``http://``/``https://`` ``url``."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


def is_upgrade_to_websocket(method: str, upgrade: str | None) -> bool:
    return upgrade is not None and method == "GET" and "websocket" in upgrade.lower()


def mask(data: bytes | memoryview, key: bytes, offset: int = 0) -> bytes:
    """RFC 6455 masking (its own inverse) of ``data``, which starts ``offset`` bytes into the
    payload. One big-integer XOR: fast for large payloads too."""
    n = len(data)
    if not n:
        return b""
    shift = offset % 4
    turned = key[shift:] + key[:shift]
    pad = (turned * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


class _Payload:
    """A frame's unmasked payload: in memory, then in a temporary file past SPILL_SIZE."""

    def __init__(self) -> None:
        self.memory = bytearray()
        self.file: IO[bytes] | None = None
        self.size = 0

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if self.file is None:
            self.memory += data
            if len(self.memory) > SPILL_SIZE:
                self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
                self.file.write(self.memory)
                self.memory = bytearray()
        else:
            self.file.write(data)

    def chunks(self, size: int) -> Iterator[bytes]:
        if self.file is None:
            for start in range(0, len(self.memory), size):
                yield bytes(self.memory[start : start + size])
            return
        self.file.seek(0)
        while chunk := self.file.read(size):
            yield chunk

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class Transcript:
    """The transcript of one WebSocket connection, written as one or more records.

    Lines go to a temporary file (in memory up to 1 MiB); a part is handed to ``emit`` as a
    record once it holds ``part_bytes`` or is ``part_seconds`` old, and at the end, so memory
    stays bounded and a crash loses at most the part being written.
    """

    def __init__(
        self,
        url: str,
        handshake_id: str,
        emit: Callable[[RecordSpec], bool],
        *,
        clock: Callable[[], datetime],
        part_bytes: int,
        part_seconds: float,
    ) -> None:
        self.url = url
        self.handshake_id = handshake_id
        self._emit = emit
        self._clock = clock
        self.part_bytes = part_bytes
        self.part_seconds = part_seconds
        self.parts = 0
        self.failed = False
        self._file: IO[bytes] | None = None
        self._digest = hashlib.sha256()
        self._size = 0
        self._frames = 0
        self._started: datetime | None = None
        self._opened_at = 0.0
        # The first part is dated when the connection opened; later ones when they began.
        self._open()

    # --- lines -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(data)
        self._digest.update(data)
        self._size += len(data)

    def _open(self) -> None:
        self.parts += 1
        self._file = tempfile.SpooledTemporaryFile(SPILL_SIZE)  # noqa: SIM115 - closed in _seal()
        self._digest = hashlib.sha256()
        self._size = 0
        self._frames = 0
        self._started = self._clock()
        self._opened_at = time.monotonic()
        first = {"websocket": self.url, "handshake": self.handshake_id, "part": self.parts}
        self._write(_DUMPS(first).encode("ascii") + b"\n")

    def frame(
        self, side: str, ts: int, head: bytes, payload: _Payload | None, *, cut: bool = False
    ) -> None:
        fields: dict[str, object] = {"ts": ts, "from": side}
        if head:
            fields["fin"] = bool(head[0] & 0x80)
            fields["rsv"] = (head[0] >> 4) & 0x07
            fields["opcode"] = head[0] & 0x0F
        fields["length"] = payload.size if payload is not None else 0
        fields["head"] = head.hex()
        if cut:
            fields["cut"] = True
        prefix = _DUMPS(fields).encode("ascii")
        self._write(prefix[:-1] + b',"data":"')
        if payload is not None:
            # 3 * 2**16 bytes per piece: base64 of whole 3-byte groups needs no padding inside.
            for chunk in payload.chunks(3 * 65536):
                self._write(base64.b64encode(chunk))
        self._write(b'"}\n')
        self._frames += 1

    # --- parts -------------------------------------------------------------------------
    def due_in(self) -> float | None:
        """Seconds until the current part is due by age (None: no frame waiting)."""
        if self._file is None or not self._frames:
            return None
        return max(0.0, self._opened_at + self.part_seconds - time.monotonic())

    def rotate_if_due(self) -> None:
        if self._file is None or not self._frames:
            return
        if self._size >= self.part_bytes or time.monotonic() - self._opened_at >= self.part_seconds:
            self._seal()

    def _seal(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.seek(0)
            label = sha256_label(self._digest)
            spec = RecordSpec(
                record_type="resource",
                block=Block(
                    length=self._size,
                    stream=cast(BinaryIO, file),
                    block_digest=label,
                    payload_digest=label,
                ),
                target_uri=TARGET_PREFIX + self.url,
                content_type=TRANSCRIPT_CONTENT_TYPE,
                headers=[("WARC-Concurrent-To", self.handshake_id)],
                record_id=new_record_id(),
                date=self._started,
            )
            if not self._emit(spec):
                self.failed = True
        finally:
            file.close()

    def finish(self, ts: int, reason: str, streams: dict[str, tuple[int, str]]) -> None:
        """The last line (why it ended, each direction's byte count and digest), then the last
        part is written."""
        end: dict[str, object] = {"ts": ts, "end": reason}
        for side, (count, digest) in streams.items():
            end[side] = {"bytes": count, "sha256": digest}
        self._write(_DUMPS(end).encode("ascii") + b"\n")
        self._seal()

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class FrameSplitter:
    """One direction's byte stream, cut into frames as it arrives, each handed to the transcript
    when its last byte is in. It never changes what is relayed: it reads a copy."""

    def __init__(self, side: str, transcript: Transcript) -> None:
        self.side = side
        self.transcript = transcript
        self._reset()

    def _reset(self) -> None:
        self.head = bytearray()
        self.head_size = 2
        self.sized = False  # head_size is final once the second byte is in
        self.length = -1  # payload length, once the head is complete
        self.got = 0
        self.key: bytes | None = None
        self.payload: _Payload | None = None

    def feed(self, data: bytes, ts: int) -> None:
        view = memoryview(data)
        while view:
            if self.length < 0:
                take = self.head_size - len(self.head)
                self.head += view[:take]
                view = view[take:]
                if len(self.head) < self.head_size:
                    continue
                if not self.sized:
                    self.sized = True
                    second = self.head[1]
                    code = second & 0x7F
                    extended = 2 if code == 126 else 8 if code == 127 else 0
                    self.head_size = 2 + extended + (4 if second & 0x80 else 0)
                    if len(self.head) < self.head_size:
                        continue
                self._start_payload()
                if self.length == 0:
                    self._complete(ts)
                continue
            take = min(self.length - self.got, len(view))
            piece = view[:take]
            view = view[take:]
            assert self.payload is not None
            self.payload.add(mask(piece, self.key, self.got) if self.key else bytes(piece))
            self.got += take
            if self.got == self.length:
                self._complete(ts)

    def _start_payload(self) -> None:
        head = bytes(self.head)
        code = head[1] & 0x7F
        if code == 126:
            self.length, rest = int.from_bytes(head[2:4], "big"), head[4:]
        elif code == 127:
            self.length, rest = int.from_bytes(head[2:10], "big"), head[10:]
        else:
            self.length, rest = code, head[2:]
        self.key = rest if head[1] & 0x80 else None
        self.payload = _Payload()

    def _complete(self, ts: int, *, cut: bool = False) -> None:
        try:
            self.transcript.frame(self.side, ts, bytes(self.head), self.payload, cut=cut)
        finally:
            if self.payload is not None:
                self.payload.close()
            self._reset()

    def finish(self, ts: int) -> None:
        """The stream ended: a frame begun and not completed goes in as cut."""
        if self.head:
            self._complete(ts, cut=True)

    def discard(self) -> None:
        if self.payload is not None:
            self.payload.close()


def _pending(sock: socket.socket) -> bool:
    """Whether a TLS socket holds decrypted bytes that ``select`` cannot see."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


class WebSocketRelay:
    """Passes one connection's bytes both ways until it ends, splitting them for the transcript.

    Runs in the client connection's handler thread; :meth:`stop` (any thread) ends it.
    """

    def __init__(
        self,
        client: socket.socket,
        origin: socket.socket,
        transcript: Transcript,
        *,
        timeout: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.sockets = {"client": client, "server": origin}
        self.peer = {"client": origin, "server": client}
        self.transcript = transcript
        self.timeout = timeout
        self.clock = clock
        self.splitters = {side: FrameSplitter(side, transcript) for side in self.sockets}
        self.digests = {side: hashlib.sha256() for side in self.sockets}
        self.counts = dict.fromkeys(self.sockets, 0)
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _pass(self, side: str, data: bytes) -> None:
        """Relay first (unchanged), then keep a copy for the transcript: what a side sent is
        in it even when the other side was gone and could not take it."""
        try:
            self.peer[side].sendall(data)
        finally:
            self.digests[side].update(data)
            self.counts[side] += len(data)
            self.splitters[side].feed(data, micros(self.clock()))

    def run(self, client_first: bytes = b"", server_first: bytes = b"") -> str:
        """Relay until the connection ends; write the transcript; return why it ended."""
        try:
            reason = self._relay(client_first, server_first)
        except OSError as exc:
            reason = f"connection error: {exc}"
        finally:
            self._wake_r.close()
            self._wake_w.close()
        ts = micros(self.clock())
        try:
            for splitter in self.splitters.values():
                splitter.finish(ts)
            streams = {
                side: (self.counts[side], sha256_label(self.digests[side])) for side in self.sockets
            }
            self.transcript.finish(ts, reason, streams)
        except BaseException:
            for splitter in self.splitters.values():
                splitter.discard()
            self.transcript.discard()
            raise
        return reason

    def _relay(self, client_first: bytes, server_first: bytes) -> str:
        for sock in self.sockets.values():
            sock.settimeout(self.timeout)
        # Bytes that arrived with the handshake: the origin's first frames, sent with its 101.
        if server_first:
            self._pass("server", server_first)
        if client_first:
            self._pass("client", client_first)
        reading = {"client", "server"}
        closed: list[str] = []
        last = time.monotonic()
        grace_until: float | None = None
        while reading:
            ready = [side for side in reading if _pending(self.sockets[side])]
            if not ready:
                now = time.monotonic()
                deadline = last + self.timeout
                if grace_until is not None:
                    deadline = min(deadline, grace_until)
                wait = deadline - now
                if wait <= 0:
                    break
                due = self.transcript.due_in()
                if due is not None:
                    wait = min(wait, due)
                watched = [self.sockets[side] for side in reading]
                readable, _, _ = select.select([*watched, self._wake_r], [], [], wait)
                if self._stopping:
                    return "the recorder stopped"
                self.transcript.rotate_if_due()
                if self.transcript.failed:
                    return "the transcript could not be written (spool full)"
                ready = [side for side in reading if self.sockets[side] in readable]
            for side in ready:
                data = self.sockets[side].recv(RECV_SIZE)
                if data:
                    self._pass(side, data)
                    last = time.monotonic()
                    continue
                reading.discard(side)
                closed.append(side)
                peer = self.peer[side]
                if isinstance(peer, ssl.SSLSocket):
                    # No half-close through TLS: the other side is done as well.
                    reading.clear()
                    break
                with contextlib.suppress(OSError):
                    peer.shutdown(socket.SHUT_WR)
                grace_until = time.monotonic() + min(CLOSE_GRACE, self.timeout)
            self.transcript.rotate_if_due()
            if self.transcript.failed:
                return "the transcript could not be written (spool full)"
        if closed:
            return f"closed by the {closed[0]}"
        return f"idle for {self.timeout:g} s"
