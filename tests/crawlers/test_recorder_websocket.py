"""The recorder relays WebSockets unchanged and keeps each one's handshake and transcript.

A real recorder process and the fixture web's WebSocket echo on 127.0.0.1; the client speaks
to the recorder as Chromium does (``CONNECT``, TLS inside the tunnel for ``wss``, then the
handshake) and sends frames byte by byte as the test writes them: text, binary, ping, a
fragmented message, a frame over 64 KB (a 64-bit length), close; all masked, as a client must.
What each side got must be exactly what the other sent, and the WARC must hold the handshake
as an ordinary request/response pair and a transcript from which both byte streams can be
rebuilt (docs/adr/0004-websocket-transcripts.md).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.warcs import Rec, read_records
from support.wsclient import ProxiedWebSocket, rebuilt_streams, stream_digest, transcript

from archive.index.cdxj import read_warc_index
from archive.warc.read import verify_warc
from archive.warc.write import RecordSpec
from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.process import RecorderProcess
from crawlers.recorder.protocol import proxy_credentials
from crawlers.recorder.websocket import FrameSplitter, Transcript
from demoweb.http import FixtureServer
from demoweb.probes import ProbeSite
from demoweb.tlsca import make_test_ca
from demoweb.websocket import BINARY, CLOSE, PING, PONG, TEXT, encode_frame

SECRET = "run-secret-for-the-websocket-test"
AUTH = proxy_credentials("news", SECRET)
KEY = b"\x37\xfa\x21\x3d"
BIG = os.urandom(70_000)  # over 64 KB: its length takes the 8-byte form


def client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return encode_frame(opcode, payload, fin=fin, key=KEY)


@pytest.fixture
def site() -> ProbeSite:
    return ProbeSite()


@pytest.fixture
def origin(site: ProbeSite) -> Iterator[FixtureServer]:
    server = FixtureServer(site, keep_log=True).start()
    yield server
    server.stop()


StartRecorder = Callable[..., RecorderProcess]


@pytest.fixture
def start_recorder(tmp_path: Path) -> Iterator[StartRecorder]:
    started: list[RecorderProcess] = []

    def start(**overrides: Any) -> RecorderProcess:
        spool = tmp_path / f"spool{len(started)}"
        spool.mkdir()
        settings: dict[str, Any] = {
            "allow_networks": "127.0.0.0/8",
            "require_source": True,
            "secret": SECRET,
            "one_cpu": False,
            "socket_timeout": 20.0,
        }
        settings.update(overrides)
        config = RecorderConfig(
            spool=str(spool),
            run_id="00000000-0000-4000-8000-000000000002",
            default_source="adhoc",
            ca_dir=str(tmp_path / "ca"),
            **settings,
        )
        proc = RecorderProcess(config)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.alive():
            proc.stop()


@pytest.fixture
def recorder(start_recorder: StartRecorder) -> RecorderProcess:
    return start_recorder()


def host_port(server: FixtureServer) -> str:
    return f"{server.host}:{server.port}"


def stopped_records(recorder: RecorderProcess) -> list[Rec]:
    recorder.stop()
    warcs = sorted(recorder.spool.rglob("*.warc.gz"))
    for warc in warcs:
        verdict = verify_warc(warc)
        assert verdict.ok, verdict.problems
    return read_records(warcs)


def handshake(records: list[Rec], url: str) -> tuple[Rec, Rec]:
    request = next(r for r in records if r.type == "request" and r.target == url)
    response = next(r for r in records if r.type == "response" and r.target == url)
    assert request.headers["WARC-Concurrent-To"] == response.id
    return request, response


def frames(lines: list[dict[str, Any]]) -> list[tuple[str, int, bool, bytes]]:
    return [
        (line["from"], line["opcode"], line["fin"], base64.b64decode(line["data"]))
        for line in lines
        if "from" in line
    ]


def test_frames_pass_unchanged_both_ways_and_are_transcribed(
    recorder: RecorderProcess, origin: FixtureServer, site: ProbeSite
) -> None:
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws", AUTH)
    assert ws.status == 101
    sent = [
        (TEXT, True, "hello, ünïcode".encode()),
        (BINARY, True, bytes(range(256))),
        (PING, True, b"are-you-there"),
        (TEXT, False, b"frag"),
        (0x0, True, b"mented"),
        (BINARY, True, BIG),
        (CLOSE, True, (1000).to_bytes(2, "big") + b"bye"),
    ]
    ws.send(b"".join(client_frame(op, data, fin=fin) for op, fin, data in sent))
    got = ws.read_until_closed()
    ws.close()

    # Relayed unchanged: the origin got the client's bytes, the client the origin's.
    assert bytes(site.websocket.received[0]) == bytes(ws.sent)
    assert got == bytes(site.websocket.sent[0])
    echoed = [(f.opcode, f.fin, f.payload) for d, f in site.websocket.frames[0] if d == "sent"]
    assert [(op, payload) for op, _, payload in echoed] == [
        (TEXT, sent[0][2]),
        (BINARY, sent[1][2]),
        (PONG, b"are-you-there"),
        (TEXT, b"frag"),
        (0x0, b"mented"),
        (BINARY, BIG),
        (CLOSE, (1000).to_bytes(2, "big")),
    ]

    records = stopped_records(recorder)
    url = f"ws://{host_port(origin)}/ws"
    request, response = handshake(records, url)
    # The handshake as the origin received it and as it answered, byte for byte.
    upgrade = next(r for r in origin.received if r.startswith(b"GET /ws "))
    assert request.block == upgrade
    assert b"Upgrade: websocket\r\n" in request.block
    assert b"Connection: Upgrade\r\n" in request.block
    assert b"Proxy-Authorization" not in request.block
    assert response.http_status == 101
    assert response.block == next(h for m, t, h, _ in origin.sent if t == "/ws")
    assert response.headers["WARC-IP-Address"] == "127.0.0.1"
    assert ws.head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert f"Attest-Capture-Id: {response.id}".encode() in ws.head

    lines = transcript(records, response.id)
    assert lines[0] == {"websocket": url, "handshake": response.id, "part": 1}
    client = [(op, fin, data) for side, op, fin, data in frames(lines) if side == "client"]
    server = [(op, fin, data) for side, op, fin, data in frames(lines) if side == "server"]
    assert client == sent
    assert server == echoed
    big = next(
        line for line in lines if line.get("length") == len(BIG) and line["from"] == "client"
    )
    assert big["head"] == "82ff" + len(BIG).to_bytes(8, "big").hex() + KEY.hex()
    assert all(line["head"].endswith(KEY.hex()) for line in lines if line.get("from") == "client")
    stamps = [line["ts"] for line in lines[1:]]
    assert stamps == sorted(stamps)
    assert all(len(str(ts)) == 16 for ts in stamps)  # microseconds since the epoch
    # A verifier rebuilds both byte streams from the frames and checks them against the end.
    streams = rebuilt_streams(lines)
    assert streams == {"client": bytes(ws.sent), "server": got}
    end = lines[-1]
    assert end["end"] == "closed by the server"
    for side, data in streams.items():
        assert end[side] == {"bytes": len(data), "sha256": stream_digest(data)}

    # Indexed under its own URIs: neither replays as a page.
    part = next(r for r in records if r.target == "urn:websocket:" + url)
    index = read_warc_index(part.file, part.file.name)
    assert not index.problems
    row = next(r for r in index.rows if r.record_id == part.id)
    assert (row.record_type, row.mime, row.concurrent_to) == (
        "resource",
        "application/jsonl",
        response.id,
    )
    assert row.digest == part.headers["WARC-Block-Digest"]
    assert {r.url for r in index.rows if r.record_type in ("request", "response")} == {url}


def test_the_origins_first_frame_sent_with_its_101_is_relayed_and_transcribed(
    recorder: RecorderProcess, origin: FixtureServer, site: ProbeSite
) -> None:
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws?greet=welcome", AUTH)
    greeting = encode_frame(TEXT, b"welcome")
    assert ws.read_at_least(len(greeting)) == greeting
    ws.send(client_frame(CLOSE, (1000).to_bytes(2, "big")))
    ws.read_until_closed()
    ws.close()
    records = stopped_records(recorder)
    _, response = handshake(records, f"ws://{host_port(origin)}/ws?greet=welcome")
    # The 101's record ends with its head; the frame behind it is the transcript's.
    assert response.block.endswith(b"\r\n\r\n")
    assert b"welcome" not in response.block
    lines = transcript(records, response.id)
    assert frames(lines)[0] == ("server", TEXT, True, b"welcome")
    assert rebuilt_streams(lines)["server"] == bytes(site.websocket.sent[0])


def test_a_client_frame_sent_right_behind_the_handshake_is_relayed(
    recorder: RecorderProcess, origin: FixtureServer, site: ProbeSite
) -> None:
    # Chromium waits for the 101, but the recorder reads the handshake through a buffer: bytes
    # that arrived with it are relayed too, not lost in that buffer.
    assert recorder.port is not None
    early = client_frame(TEXT, b"early")
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws", AUTH, extra_head=early)
    assert ws.read_at_least(len(encode_frame(TEXT, b"early"))) == encode_frame(TEXT, b"early")
    ws.send(client_frame(CLOSE, b""))
    ws.read_until_closed()
    ws.close()
    assert bytes(site.websocket.received[0]) == bytes(ws.sent)
    records = stopped_records(recorder)
    _, response = handshake(records, f"ws://{host_port(origin)}/ws")
    assert frames(transcript(records, response.id))[0] == ("client", TEXT, True, b"early")


def test_wss_inside_a_tls_tunnel(
    start_recorder: StartRecorder, site: ProbeSite, tmp_path: Path
) -> None:
    ca = make_test_ca(tmp_path / "origin-ca", ["127.0.0.1"])
    origin = FixtureServer(site, tls=ca.server_context(), keep_log=True).start()
    try:
        recorder = start_recorder(ca_bundles=[str(ca.ca_pem)])
        assert recorder.port is not None
        assert recorder.ca_file is not None
        ws = ProxiedWebSocket(
            recorder.port, host_port(origin), "/ws", AUTH, tls_ca=recorder.ca_file
        )
        assert ws.status == 101
        ws.send(client_frame(TEXT, b"over tls") + client_frame(CLOSE, (1001).to_bytes(2, "big")))
        got = ws.read_until_closed()
        ws.close()
    finally:
        origin.stop()
    assert got == bytes(site.websocket.sent[0])
    records = stopped_records(recorder)
    url = f"wss://{host_port(origin)}/ws"
    _, response = handshake(records, url)
    lines = transcript(records, response.id)
    assert lines[0]["websocket"] == url
    close = (1001).to_bytes(2, "big")
    for side in ("client", "server"):
        assert [(op, data) for s, op, _, data in frames(lines) if s == side] == [
            (TEXT, b"over tls"),
            (CLOSE, close),
        ]
    assert rebuilt_streams(lines) == {"client": bytes(ws.sent), "server": got}
    # The origin's certificate chain is kept, as for any TLS exchange.
    assert any(
        r.type == "metadata" and "tls" in r.headers.get("Content-Type", "") for r in records
    ), [r.headers.get("Content-Type") for r in records]


def test_a_websocket_to_a_forbidden_address_is_refused_and_recorded(
    start_recorder: StartRecorder, origin: FixtureServer
) -> None:
    recorder = start_recorder(allow_networks="10.0.0.0/8")  # 127.0.0.1 is not allowed
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws", AUTH)
    assert ws.status == 403
    assert b"Attest-Outcome: egress_refused\r\n" in ws.head
    ws.close()
    records = stopped_records(recorder)
    url = f"ws://{host_port(origin)}/ws"
    outcome = next(r for r in records if r.type == "metadata" and r.target == url).json()
    assert outcome["outcome"] == "egress_refused"
    assert not any(r.type in ("request", "response", "resource") for r in records)
    assert origin.received == []


def test_an_upgrade_the_origin_does_not_accept_is_an_ordinary_exchange(
    recorder: RecorderProcess, origin: FixtureServer
) -> None:
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/no-socket-here", AUTH)
    assert ws.status == 404
    assert b"Attest-Capture-Id: " in ws.head
    ws.close()
    records = stopped_records(recorder)
    _, response = handshake(records, f"ws://{host_port(origin)}/no-socket-here")
    assert response.http_status == 404
    assert not any(r.type == "resource" for r in records)


def test_an_idle_websocket_ends_after_the_socket_timeout(
    start_recorder: StartRecorder, origin: FixtureServer
) -> None:
    recorder = start_recorder(socket_timeout=1.0)
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws", AUTH)
    ws.send(client_frame(TEXT, b"then silence"))
    got = ws.read_until_closed()  # returns once the recorder gives up on the idle connection
    ws.close()
    assert got == encode_frame(TEXT, b"then silence")
    records = stopped_records(recorder)
    _, response = handshake(records, f"ws://{host_port(origin)}/ws")
    lines = transcript(records, response.id)
    assert lines[-1]["end"] == "idle for 1 s"
    assert len(frames(lines)) == 2


def test_a_long_transcript_is_written_in_parts(
    start_recorder: StartRecorder, origin: FixtureServer
) -> None:
    recorder = start_recorder(websocket_part_bytes=600)
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws", AUTH)
    messages = [f"message {n:02d} ".encode() * 10 for n in range(12)]
    for message in messages:
        ws.send(client_frame(TEXT, message))
    ws.send(client_frame(CLOSE, b""))
    got = ws.read_until_closed()
    ws.close()
    records = stopped_records(recorder)
    _, response = handshake(records, f"ws://{host_port(origin)}/ws")
    parts = [r for r in records if r.headers.get("WARC-Concurrent-To") == response.id]
    parts = [r for r in parts if r.type == "resource"]
    assert len(parts) >= 3
    # Each part stands alone (its first line names the connection and its number) ...
    numbers = [json.loads(p.block.splitlines()[0])["part"] for p in parts]
    assert sorted(numbers) == list(range(1, len(parts) + 1))
    # ... and together they hold every frame, in order, once.
    lines = transcript(records, response.id)
    client = [data for side, _, _, data in frames(lines) if side == "client"]
    assert client == [*messages, b""]
    assert rebuilt_streams(lines) == {"client": bytes(ws.sent), "server": got}
    assert "end" in lines[-1]
    assert sum("end" in line for line in lines) == 1


def test_stopping_the_recorder_ends_open_websockets_and_writes_their_transcripts(
    recorder: RecorderProcess, origin: FixtureServer
) -> None:
    assert recorder.port is not None
    ws = ProxiedWebSocket(recorder.port, host_port(origin), "/ws", AUTH)
    ws.send(client_frame(TEXT, b"before the stop"))
    ws.read_at_least(len(encode_frame(TEXT, b"before the stop")))
    records = stopped_records(recorder)  # the connection is still open
    assert recorder.closed_event is not None
    assert recorder.closed_event["unfinished"] == 0
    ws.read_until_closed()
    ws.close()
    _, response = handshake(records, f"ws://{host_port(origin)}/ws")
    lines = transcript(records, response.id)
    assert lines[-1]["end"] == "the recorder stopped"
    assert frames(lines) == [
        ("client", TEXT, True, b"before the stop"),
        ("server", TEXT, True, b"before the stop"),
    ]


# --- the frame splitter on its own: however the bytes arrive ---------------------------------


def _transcribe(chunks: list[bytes]) -> bytes:
    out: list[bytes] = []

    def emit(spec: RecordSpec) -> bool:
        out.append(b"".join(spec.block.chunks()))
        return True

    moment = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
    transcript_ = Transcript(
        "ws://example.org/s", "<urn:uuid:x>", emit, clock=lambda: moment,
        part_bytes=1 << 30, part_seconds=3600,
    )  # fmt: skip
    splitter = FrameSplitter("client", transcript_)
    for chunk in chunks:
        splitter.feed(chunk, 1)
    splitter.finish(2)
    transcript_.finish(3, "closed by the client", {})
    return b"".join(out)


def test_frames_split_the_same_however_the_bytes_arrive() -> None:
    stream = (
        client_frame(TEXT, b"a" * 125)  # the largest 7-bit length
        + client_frame(BINARY, b"b" * 126)  # the smallest 16-bit length
        + client_frame(BINARY, BIG)
        + encode_frame(TEXT, b"unmasked")
        + client_frame(PING, b"")
        + client_frame(TEXT, b"cut short")[:9]  # the connection ends inside this frame
    )
    whole = _transcribe([stream])
    assert _transcribe([stream[i : i + 1] for i in range(len(stream))]) == whole
    assert _transcribe([stream[i : i + 7] for i in range(0, len(stream), 7)]) == whole
    lines = [json.loads(line) for line in whole.splitlines()]
    assert rebuilt_streams(lines)["client"] == stream
    assert [line.get("length") for line in lines[1:-1]] == [125, 126, len(BIG), 8, 0, 3]
    cut = lines[-2]
    assert cut["cut"] is True
    assert base64.b64decode(cut["data"]) == b"cut"
