"""The recorder takes requests only with the run's proxy credentials, and never passes them on.

A real recorder process and a fixture origin on 127.0.0.1: a request without credentials, or
with a wrong secret, is answered 407 and reaches nothing; one with the run's credentials is
relayed, and what the origin received (and the WARC says was sent) has no trace of them.
"""

from __future__ import annotations

import base64
import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.warcs import read_records

from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.process import RecordClient, RecorderProcess
from crawlers.recorder.protocol import proxy_credentials
from demoweb.http import FixtureServer
from demoweb.probes import ProbeSite

SECRET = "run-secret-for-the-test"


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
        run_id="00000000-0000-4000-8000-000000000001",
        default_source="adhoc",
        ca_dir=str(tmp_path / "ca"),
        allow_networks="127.0.0.0/8",
        require_source=True,
        secret=SECRET,
        one_cpu=False,
    )
    proc = RecorderProcess(config)
    proc.start()
    yield proc
    if proc.alive():
        proc.stop()


def _get(recorder: RecorderProcess, url: str, auth: str | None) -> http.client.HTTPResponse:
    assert recorder.port is not None
    conn = http.client.HTTPConnection("127.0.0.1", recorder.port, timeout=30)
    headers = {"Proxy-Authorization": auth} if auth else {}
    conn.request("GET", url, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _connect(recorder: RecorderProcess, target: str, auth: str | None) -> bytes:
    assert recorder.port is not None
    with socket.create_connection(("127.0.0.1", recorder.port), timeout=30) as sock:
        head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if auth:
            head += f"Proxy-Authorization: {auth}\r\n"
        sock.sendall((head + "\r\n").encode())
        return sock.recv(4096)


def test_requests_without_the_runs_credentials_get_407_and_reach_nothing(
    recorder: RecorderProcess, origin: FixtureServer
) -> None:
    url = f"{origin.origin}/allowed-fetch"
    wrong = "Basic " + base64.b64encode(b"news:not-the-secret").decode()
    for auth in (None, wrong, "Bearer " + SECRET, proxy_credentials("../etc", SECRET)):
        response = _get(recorder, url, auth)
        assert response.status == 407, auth
        assert response.getheader("Proxy-Authenticate") == 'Basic realm="attest recorder"'
        head = _connect(recorder, origin.origin.removeprefix("http://"), auth)
        assert head.startswith(b"HTTP/1.1 407 "), head
    # Records cannot be written without them either.
    with pytest.raises(Exception, match="HTTP 407"):
        RecordClient(recorder.port or 0).write("news", "urn:x", b"{}", "application/json")
    assert origin.received == []
    closed = recorder.stop()
    assert closed["exchanges"] == 0
    assert closed["writers"] == []


def test_the_runs_credentials_name_the_source_and_are_never_forwarded(
    recorder: RecorderProcess, origin: FixtureServer
) -> None:
    url = f"{origin.origin}/allowed-fetch"
    response = _get(recorder, url, proxy_credentials("news", SECRET))
    assert response.status == 200
    assert response.getheader("Attest-Capture-Id")
    client = RecordClient(recorder.port or 0, secret=SECRET)
    record_id = client.write("news", "urn:attest:test", b"{}", "application/json")
    client.close()
    recorder.stop()
    warcs = sorted(recorder.spool.rglob("*.warc.gz"))
    assert warcs
    assert all("news" in w.name for w in warcs), warcs
    records = read_records(warcs)
    sent = [r.block for r in records if r.type == "request"]
    assert sent == origin.received
    assert b"Proxy-Authorization" not in origin.received[0]
    assert any(r.id == record_id for r in records)
