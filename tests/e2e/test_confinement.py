"""Every byte the browser sends goes through the recorder; nothing reaches a forbidden address.

A page on an allowed origin (127.0.0.1) opens an ``RTCPeerConnection`` with a STUN/TURN server,
WebSockets, ``fetch`` and ``sendBeacon`` calls, to a forbidden loopback address (127.0.0.2, not
in ``ATTEST_ALLOW_NETWORKS``) and to its own origin. The capture runs in a network namespace of
its own (``unshare -n``, :mod:`confinement_probe`), where listeners on the forbidden address
count datagrams and connections and a raw socket counts every packet sent to it: all must stay
at zero, while the allowed calls are in the WARC. The allowed WebSocket works for the page (its
messages come back from the echo) and is recorded: its handshake as a request/response pair
and a transcript holding every frame each side sent, exactly.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.warcs import read_records, store_warcs
from support.wsclient import rebuilt_streams, stream_digest, transcript

from archive.index.cdxj import read_warc_index
from archive.warc.read import verify_warc

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).with_name("confinement_probe.py")


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    return (
        subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0
    )


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not _namespaces_work():
        pytest.skip("needs `unshare -n` (root or user namespaces) to confine the browser")
    home = tmp_path_factory.mktemp("confined-home")
    result = home / "result.json"
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, str(PROBE), str(home), str(result)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen: dict[str, Any] = json.loads(result.read_text())
    assert seen["returncode"] == 0, seen["stdout"] + seen["stderr"]
    seen["warcs"] = store_warcs(home / "store")
    seen["records"] = read_records(seen["warcs"])
    return seen


def test_nothing_reaches_a_forbidden_address(probe: dict[str, Any]) -> None:
    # The counter was listening: it saw the capture's own traffic on lo.
    assert probe["packets_seen"] > 0
    assert probe["leaks"] == [], "packets to forbidden addresses"
    assert probe["udp_datagrams"] == 0, "STUN/TURN went around the recorder"
    assert probe["tcp_connections"] == 0


def test_the_page_made_every_call(probe: dict[str, Any]) -> None:
    url = probe["url"]
    text = next(r for r in probe["records"] if r.target == f"urn:text:{url}").block.decode()
    for attempt in ("webrtc ", "ws://" + probe["forbidden"], "fetch ", "beacon allowed true"):
        assert attempt in text, text
    allowed_ws = "ws://" + probe["origin"].removeprefix("http://") + "/ws"
    assert f"ws open {allowed_ws}" in text, text
    assert "ws echo text probe-ws-text | binary 1,2,3,250" in text, text
    assert "ws closed 1000 clean true" in text, text
    assert "candidate" not in text or "typ srflx" not in text


def test_the_allowed_calls_are_recorded(probe: dict[str, Any]) -> None:
    origin = probe["origin"]
    records = probe["records"]
    for path in ("/allowed-fetch", "/allowed-beacon"):
        assert path in probe["page_requests"]
        kinds = {r.type for r in records if r.target == origin + path}
        assert {"request", "response"} <= kinds, path
    beacon = next(
        r for r in records if r.type == "request" and r.target == origin + "/allowed-beacon"
    )
    assert beacon.block.startswith(b"POST /allowed-beacon ")
    assert beacon.block.endswith(b"probe-beacon-payload")


def test_the_allowed_websocket_works_and_is_recorded(probe: dict[str, Any]) -> None:
    url = "ws://" + probe["origin"].removeprefix("http://") + "/ws"
    assert "/ws" in probe["page_requests"]
    records = probe["records"]
    request = next(r for r in records if r.type == "request" and r.target == url)
    response = next(r for r in records if r.type == "response" and r.target == url)
    assert request.headers["WARC-Concurrent-To"] == response.id
    assert request.block.startswith(b"GET /ws HTTP/1.1\r\n")
    assert b"\r\nUpgrade: websocket\r\n" in request.block
    assert response.http_status == 101
    assert response.headers["WARC-IP-Address"] == "127.0.0.1"

    lines = transcript(records, response.id)
    assert lines[0] == {"websocket": url, "handshake": response.id, "part": 1}
    messages = {
        side: [
            (line["opcode"], base64.b64decode(line["data"]))
            for line in lines
            if line.get("from") == side
        ]
        for side in ("client", "server")
    }
    close = (1000).to_bytes(2, "big")
    assert messages["client"] == [
        (1, b"probe-ws-text"),
        (2, bytes([1, 2, 3, 250])),
        (8, close + b"probe done"),
    ]
    assert messages["server"] == [(1, b"probe-ws-text"), (2, bytes([1, 2, 3, 250])), (8, close)]
    # Exactly what the echo received and sent, as the frames rebuild it and the end digests say.
    [echo] = probe["websockets"]
    streams = rebuilt_streams(lines)
    assert streams == {
        "client": base64.b64decode(echo["received"]),
        "server": base64.b64decode(echo["sent"]),
    }
    for side, data in streams.items():
        assert lines[-1][side] == {"bytes": len(data), "sha256": stream_digest(data)}


def test_the_warcs_verify_and_index_the_websocket_apart_from_pages(probe: dict[str, Any]) -> None:
    url = "ws://" + probe["origin"].removeprefix("http://") + "/ws"
    rows = []
    for warc in probe["warcs"]:
        verdict = verify_warc(warc)
        assert verdict.ok, verdict.problems
        index = read_warc_index(warc, warc.name)
        assert not index.problems
        rows += index.rows
    transcript_row = next(r for r in rows if r.url == "urn:websocket:" + url)
    assert (transcript_row.record_type, transcript_row.mime) == ("resource", "application/jsonl")
    handshake_row = next(r for r in rows if r.url == url and r.record_type == "response")
    assert handshake_row.status == 101
    assert transcript_row.concurrent_to == handshake_row.record_id


def test_the_forbidden_calls_are_refused_and_recorded_as_such(probe: dict[str, Any]) -> None:
    forbidden = ("http://" + probe["forbidden"], "ws://" + probe["forbidden"])
    refused = [
        r.json()
        for r in probe["records"]
        if r.type == "metadata"
        and "attest-outcome" in r.headers.get("Content-Type", "")
        and (r.target or "").startswith(forbidden)
    ]
    assert {o["url"] for o in refused} >= {
        forbidden[0] + "/forbidden-fetch",
        forbidden[0] + "/forbidden-beacon",
        forbidden[1] + "/ws",
    }
    assert {o["outcome"] for o in refused} == {"egress_refused"}
    assert not any(
        r.type in ("request", "response", "resource")
        and (r.target or "").removeprefix("urn:websocket:").startswith(forbidden)
        for r in probe["records"]
    )
