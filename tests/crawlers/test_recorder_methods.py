"""Every request is an exchange with the origin: the recorder serves no page or method of its own.

warcprox's handler answers ``GET /status`` with its status page and takes ``PUTMETA`` and
``WARCPROX_WRITE_RECORD`` for its own writer. Through attest's recorder a page at ``/status``
(over HTTPS too, where the request inside the tunnel names only the path) and a request with
one of those methods reach the origin, and the exchange is recorded like any other.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.warcs import read_records

from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.process import RecorderProcess
from demoweb.http import FixtureServer
from demoweb.probes import ProbeSite


@pytest.fixture
def origin() -> Iterator[FixtureServer]:
    server = FixtureServer(ProbeSite(), keep_log=True).start()
    yield server
    server.stop()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[RecorderProcess]:
    spool = tmp_path / "spool"
    spool.mkdir()
    config = RecorderConfig(
        spool=str(spool),
        run_id="00000000-0000-4000-8000-000000000002",
        default_source="adhoc",
        ca_dir=str(tmp_path / "ca"),
        allow_networks="127.0.0.0/8",
        one_cpu=False,
    )
    proc = RecorderProcess(config)
    proc.start()
    yield proc
    if proc.alive():
        proc.stop()


def _through_tunnel(recorder: RecorderProcess, target: str, request: bytes) -> bytes:
    """``request`` sent inside a (plain) CONNECT tunnel to ``target``; the answer's bytes."""
    assert recorder.port is not None
    with socket.create_connection(("127.0.0.1", recorder.port), timeout=30) as sock:
        sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_page_at_status_and_warcprox_methods_reach_the_origin_and_are_recorded(
    recorder: RecorderProcess, origin: FixtureServer
) -> None:
    target = origin.origin.removeprefix("http://")
    answer = _through_tunnel(
        recorder,
        target,
        f"GET /status HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert b"warcprox" not in answer
    assert b"\r\nAttest-Capture-Id: <urn:uuid:" in answer
    assert recorder.port is not None
    for method in ("PUTMETA", "WARCPROX_WRITE_RECORD"):
        conn = http.client.HTTPConnection("127.0.0.1", recorder.port, timeout=30)
        conn.request(method, f"{origin.origin}/allowed-fetch", body=b"{}")
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.getheader("Attest-Capture-Id"), method
    recorder.stop()
    received = [r.split(b"\r\n", 1)[0] for r in origin.received]
    assert received == [
        b"GET /status HTTP/1.1",
        b"PUTMETA /allowed-fetch HTTP/1.1",
        b"WARCPROX_WRITE_RECORD /allowed-fetch HTTP/1.1",
    ]
    records = read_records(sorted(recorder.spool.rglob("*.warc.gz")))
    sent = [r.block for r in records if r.type == "request"]
    assert sent == origin.received
