"""The recording proxy (crawlers/recorder/proxy.py), started in-process against loopback origins.

``RecordingProxy`` is served from a thread of the test with a ``RecorderState`` built as the
recorder process builds it (rotating spool writers per source, the egress guard, the TLS chain
recorder), so its counters and its disk-full state can be read directly. The origins are the
demo web's sites (``demoweb``) on 127.0.0.1, which keep every request as it arrived and every
response as it was sent; the WARCs are read back with warcio. A spool on a 64 KiB tmpfs is a
disk that fills up.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import warcprox
from support.warcs import Rec, read_records

from archive.errors import RecorderError
from archive.ingest.spool import RotatingWarcWriter
from archive.warc.read import verify_warc
from crawlers.recorder.egress import EgressPolicy, GuardedConnector, system_resolver
from crawlers.recorder.process import RecordClient
from crawlers.recorder.protocol import (
    BLOCK_DIGEST_HEADER,
    CAPTURE_ID_HEADER,
    OUTCOME_HEADER,
    PAYLOAD_DIGEST_HEADER,
    RECORDER_ERROR_HEADER,
    SOURCE_HEADER,
    WARC_DATE_HEADER,
    proxy_credentials,
)
from crawlers.recorder.proxy import RecorderState, RecordingProxy
from crawlers.recorder.tlschain import TlsChainRecorder, load_trust_store
from demoweb.http import FixtureServer
from demoweb.http import Request as SiteRequest
from demoweb.news import NewsSite
from demoweb.ngo import NgoSite
from demoweb.tlsca import make_test_ca

# The trust store reads certifi's bundle, one of whose roots has a serial number cryptography
# deprecates (see the expected failure at the end).
NEGATIVE_SERIAL = (
    "ignore:Parsed a serial number which wasn't positive:"
    "cryptography.utils.CryptographyDeprecationWarning"
)
pytestmark = pytest.mark.filterwarnings(NEGATIVE_SERIAL)

RUN_ID = "00000000-0000-4000-8000-0000000000aa"
SECRET = "recorder-test-secret"


@dataclass
class Recorder:
    proxy: RecordingProxy
    state: RecorderState
    spool: Path
    ca_file: Path
    writers: dict[str, RotatingWarcWriter] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        port: int = self.proxy.server_address[1]
        return port

    def stop(self) -> list[Rec]:
        """Stop serving, close the files, and read back every record written."""
        if self._thread is not None:
            self.proxy.shutdown()
            self.state.close_idle_connections()
            self.proxy.server_close()
            self.state.upstreams.close()  # kept-alive origin connections
            self._thread.join(30)
            self._thread = None
            for writer in self.writers.values():
                writer.close()
        return read_records(sorted(self.spool.glob("*.warc.gz")))


def start_recorder(
    tmp_path: Path,
    *,
    spool: Path | None = None,
    allow: str = "127.0.0.0/8",
    secret: str | None = SECRET,
    require_source: bool = True,
    socket_timeout: float = 30,
    trust: list[Path] | None = None,
) -> Recorder:
    spool = spool or tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    writers: dict[str, RotatingWarcWriter] = {}
    lock = threading.Lock()

    def writer_for(source: str) -> RotatingWarcWriter:
        with lock:
            if source not in writers:
                writers[source] = RotatingWarcWriter(
                    spool, source, RUN_ID, lambda _name: [("source-id", source)]
                )
            return writers[source]

    state = RecorderState(
        writer_for=writer_for,
        connector=GuardedConnector(EgressPolicy.from_setting(allow), system_resolver),
        tls_chains=TlsChainRecorder(load_trust_store(trust or [])),
        default_source="adhoc",
        require_source=require_source,
        secret=secret,
    )
    ca_dir = tmp_path / "recorder-ca"
    ca_dir.mkdir(exist_ok=True)
    options = warcprox.Options(
        address="127.0.0.1",
        port=0,
        max_threads=8,
        socket_timeout=socket_timeout,
        max_resource_size=None,
        tmp_file_max_memory_size=1024 * 1024,
        digest_algorithm="sha256",
        cacert=str(ca_dir / "ca.pem"),
        certs_dir=str(ca_dir / "certs"),
    )
    proxy = RecordingProxy(state, options)
    recorder = Recorder(proxy, state, spool, ca_dir / "ca.pem", writers)
    recorder._thread = threading.Thread(
        target=proxy.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    recorder._thread.start()
    return recorder


@pytest.fixture
def news() -> Iterator[FixtureServer]:
    server = FixtureServer(NewsSite(articles=5, slow=True, slow_delay=5), keep_log=True).start()
    yield server
    server.stop()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    started = start_recorder(tmp_path)
    yield started
    started.stop()


AUTH = {"Proxy-Authorization": proxy_credentials("news", SECRET)}


def get(
    recorder: Recorder,
    url: str,
    headers: dict[str, str] | None = None,
    *,
    method: str = "GET",
    conn: http.client.HTTPConnection | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", recorder.port, timeout=60)
    conn.request(method, url, headers=AUTH if headers is None else headers)
    response = conn.getresponse()
    body = response.read()
    if own:
        conn.close()
    return response, body


def pairs(records: list[Rec]) -> list[tuple[Rec, Rec]]:
    """(request, response) records, in the order written."""
    responses = {r.id: r for r in records if r.type == "response"}
    return [(r, responses[r.headers["WARC-Concurrent-To"]]) for r in records if r.type == "request"]


# --- an exchange, byte for byte ----------------------------------------------------------------


def test_each_exchange_is_recorded_as_sent_and_received_then_relayed_with_its_ids(
    recorder: Recorder, news: FixtureServer
) -> None:
    gzip_page = {**AUTH, "Accept-Encoding": "gzip"}
    conn = http.client.HTTPConnection("127.0.0.1", recorder.port, timeout=60)
    article, article_body = get(recorder, f"{news.origin}/article/2.html", gzip_page, conn=conn)
    section, section_body = get(recorder, f"{news.origin}/section/world/", conn=conn)  # chunked
    conn.close()
    assert (article.status, section.status) == (200, 200)
    records = recorder.stop()

    exchanges = pairs(records)
    assert len(exchanges) == 2
    # What the origin received is the request record; what it sent, the response record.
    assert [request.block for request, _ in exchanges] == news.received
    assert [response.block for _, response in exchanges] == [
        head + body for _, _, head, body in news.sent
    ]
    (_, _, _, wire_article), (_, _, section_head, _) = news.sent
    assert article_body == wire_article  # gzip, as sent
    assert b"Transfer-Encoding: chunked" in section_head
    # The chunks were relayed as they came; the client decoded them to the page.
    assert section_body == news.handler(SiteRequest("GET", "/section/world/", {}, "")).body
    for answer, (request, response) in zip((article, section), exchanges, strict=True):
        assert answer.getheader(CAPTURE_ID_HEADER) == response.id
        assert answer.getheader(WARC_DATE_HEADER) == response.headers["WARC-Date"]
        assert answer.getheader(PAYLOAD_DIGEST_HEADER) == response.headers["WARC-Payload-Digest"]
        assert answer.getheader(BLOCK_DIGEST_HEADER) == response.headers["WARC-Block-Digest"]
        assert response.headers["WARC-IP-Address"] == "127.0.0.1"
        assert request.headers["WARC-Date"] == response.headers["WARC-Date"]
        assert request.target == response.target
    assert [r.target for r, _ in exchanges] == [
        f"{news.origin}/article/2.html",
        f"{news.origin}/section/world/",
    ]
    # The credentials are for the recorder: never forwarded, so never recorded as sent.
    assert all(b"Proxy-Authorization" not in r for r in news.received)
    assert (recorder.state.exchanges, recorder.state.failures) == (2, 0)
    assert set(recorder.writers) == {"news"}
    assert all(verify_warc(path).ok for path in sorted(recorder.spool.glob("*.warc.gz")))


def test_control_headers_never_reach_the_origin(tmp_path: Path, news: FixtureServer) -> None:
    """Without a run secret, Attest-Source names the source; it and Warcprox-Meta are the
    recorder's, removed before the request goes upstream."""
    recorder = start_recorder(tmp_path, secret=None)
    headers = {SOURCE_HEADER: "ngo", "Warcprox-Meta": '{"warc-prefix": "x"}', "X-Kept": "yes"}
    response, _ = get(recorder, f"{news.origin}/", headers)
    assert response.status == 200
    records = recorder.stop()
    (sent,) = news.received
    assert SOURCE_HEADER.encode() not in sent
    assert b"Warcprox-Meta" not in sent
    assert b"X-Kept: yes" in sent
    assert set(recorder.writers) == {"ngo"}
    assert [r.block for r in records if r.type == "request"] == [sent]


def test_a_request_that_names_no_source_goes_nowhere(tmp_path: Path, news: FixtureServer) -> None:
    recorder = start_recorder(tmp_path, secret=None, require_source=True)
    response, _ = get(recorder, f"{news.origin}/", {})
    assert response.status == 407
    assert response.getheader(RECORDER_ERROR_HEADER) == "no_source"
    assert recorder.stop() == []
    assert news.received == []
    assert recorder.state.exchanges == 0


def test_malformed_header_lines_are_kept_in_the_record_not_relayed(
    recorder: Recorder, news: FixtureServer
) -> None:
    response, _ = get(recorder, f"{news.origin}/legacy/bad-header.html")
    assert response.status == 200
    relayed = "\n".join(f"{k}: {v}" for k, v in response.getheaders())
    assert "PHP/4.4.9" not in relayed
    assert "Server Name" not in relayed
    ((_, record),) = pairs(recorder.stop())
    assert b"\r\nX-Powered-By PHP/4.4.9\r\n" in record.http_head
    assert b"\r\nServer Name: legacy\r\n" in record.http_head


def test_a_head_request_is_relayed_without_a_body_and_recorded(
    recorder: Recorder, news: FixtureServer
) -> None:
    response, body = get(recorder, f"{news.origin}/article/1.html", method="HEAD")
    assert (response.status, body) == (200, b"")
    ((request, record),) = pairs(recorder.stop())
    assert request.block.startswith(b"HEAD /article/1.html HTTP/1.1\r\n")
    assert record.http_body == b""
    assert response.getheader(CAPTURE_ID_HEADER) == record.id


# --- failures are outcomes -------------------------------------------------------------------


def outcome_record(records: list[Rec], capture_id: str) -> dict[str, object]:
    (record,) = [r for r in records if r.id == capture_id]
    assert record.type == "metadata"
    assert record.headers["Content-Type"] == "application/json; profile=attest-outcome"
    data: dict[str, object] = record.json()
    return data


def test_an_address_the_guard_refuses_is_an_egress_refused_outcome(
    tmp_path: Path, news: FixtureServer
) -> None:
    recorder = start_recorder(tmp_path, allow="")  # loopback not allowed
    response, body = get(recorder, f"{news.origin}/")
    assert response.status == 403
    assert response.getheader(OUTCOME_HEADER) == "egress_refused"
    records = recorder.stop()
    outcome = outcome_record(records, response.getheader(CAPTURE_ID_HEADER) or "")
    assert (outcome["outcome"], outcome["url"], outcome["method"]) == (
        "egress_refused",
        f"{news.origin}/",
        "GET",
    )
    assert (outcome["host"], outcome["port"]) == ("127.0.0.1", news.port)
    assert body.decode().startswith("egress_refused: ")
    assert news.received == [], "nothing was sent"
    assert (recorder.state.exchanges, recorder.state.failures) == (1, 1)


def test_a_closed_port_is_a_connection_error_outcome(recorder: Recorder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    response, _ = get(recorder, f"http://127.0.0.1:{port}/x")
    assert (response.status, response.getheader(OUTCOME_HEADER)) == (502, "connection_error")
    outcome = outcome_record(recorder.stop(), response.getheader(CAPTURE_ID_HEADER) or "")
    assert outcome["url"] == f"http://127.0.0.1:{port}/x"


def test_an_origin_slower_than_the_socket_timeout_is_a_timeout_outcome(
    tmp_path: Path, news: FixtureServer
) -> None:
    recorder = start_recorder(tmp_path, socket_timeout=1)
    response, _ = get(recorder, f"{news.origin}/slow.html")
    assert (response.status, response.getheader(OUTCOME_HEADER)) == (504, "timeout")
    outcome = outcome_record(recorder.stop(), response.getheader(CAPTURE_ID_HEADER) or "")
    assert outcome["outcome"] == "timeout"
    assert "timed out" in str(outcome["error"])


# --- records the crawler sends ---------------------------------------------------------------


def test_the_crawlers_records_are_written_for_their_source_and_bad_ones_refused(
    recorder: Recorder,
) -> None:
    client = RecordClient(recorder.port, secret=SECRET)
    page = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
    one = client.write(
        "news",
        "http://127.0.0.1:8781/",
        b'{"outcome": "captured"}',
        "application/json; profile=attest-page",
        concurrent_to=page,
    )
    shot = client.write(
        "ngo", "urn:view:http://127.0.0.1:8782/", b"\x89PNG", "image/png", record_type="resource"
    )
    batch = client.write_batch(
        [
            {
                "source": "news",
                "target": "http://127.0.0.1:8781/a",
                "content_type": "text/plain",
                "data": "first",
            },
            {
                "source": "news",
                "target": "http://127.0.0.1:8781/b",
                "content_type": "text/plain",
                "data": "second",
                "type": "resource",
                "refers_to": one,
            },
        ]
    )
    with pytest.raises(RecorderError, match="HTTP 400"):
        client.write("news", "http://x/", b"{}", "application/json", record_type="response")
    with pytest.raises(RecorderError, match="bad record batch"):
        client.write_batch(
            [
                {"source": "news", "target": "x", "content_type": "t", "data": ""},
                {"source": "../etc", "target": "x", "content_type": "t", "data": ""},
            ]
        )
    with pytest.raises(RecorderError, match="bad record batch"):
        client.write_batch([{"source": "news", "target": "x", "data": ""}])
    client.close()
    records = {r.id: r for r in recorder.stop()}
    assert records[one].headers["WARC-Concurrent-To"] == page
    assert records[one].type == "metadata"
    assert (records[shot].type, records[shot].block) == ("resource", b"\x89PNG")
    assert "attest-ngo-" in records[shot].file.name
    first, second = (records[rid] for rid in batch)
    assert (first.target, first.block, first.type) == (
        "http://127.0.0.1:8781/a",
        b"first",
        "metadata",
    )
    assert (second.type, second.headers["WARC-Refers-To"]) == ("resource", one)
    assert set(recorder.writers) == {"news", "ngo"}


# --- a full spool ----------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs mounted for this test alone, to run out of space on for real."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("mount/umount are not installed, so no small filesystem can be filled")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a 64 KiB tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run([umount, str(mount_point)], check=False).returncode != 0:
            subprocess.run([umount, "-l", str(mount_point)], check=True)


def test_a_full_spool_refuses_every_later_fetch_and_keeps_whole_records(
    tmp_path: Path, news: FixtureServer, tiny_disk: Path
) -> None:
    recorder = start_recorder(tmp_path, spool=tiny_disk)
    statuses = []
    for n in range(200):
        response, _ = get(recorder, f"{news.origin}/article/{n % 5 + 1}.html")
        statuses.append(response.status)
        if response.status == 507:
            assert response.getheader(RECORDER_ERROR_HEADER) == "disk_full"
            break
    assert statuses[-1] == 507, "the 64 KiB disk never filled"
    assert set(statuses[:-1]) == {200}
    assert recorder.state.disk_full
    reached = len(news.received)
    response, _ = get(recorder, f"{news.origin}/")
    assert (response.status, response.getheader(RECORDER_ERROR_HEADER)) == (507, "disk_full")
    assert len(news.received) == reached, "a later fetch is refused before it goes anywhere"
    recorder.stop()
    (warc,) = sorted(tiny_disk.glob("*.warc.gz*"))
    verdict = verify_warc(warc)
    assert verdict.ok, verdict.problems  # only whole records: the refused one left nothing
    requests = [r for r in verdict.records if r.record_type == "request"]
    responses = [r for r in verdict.records if r.record_type == "response"]
    assert len(requests) == len(responses) == len(statuses) - 1


# --- HTTPS: the tunnel, and the origin's certificate chain -----------------------------------


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[tuple[FixtureServer, Path]]:
    ca = make_test_ca(tmp_path / "origin-ca", ["127.0.0.1"])
    server = FixtureServer(NgoSite(releases=3), tls=ca.server_context(), keep_log=True).start()
    yield server, ca.ca_pem
    server.stop()


def through_tunnel(recorder: Recorder, port: int, paths: list[str]) -> list[bytes]:
    """GETs inside one CONNECT tunnel (TLS, trusting the recorder's CA); the bodies."""
    context = ssl.create_default_context(cafile=str(recorder.ca_file))
    context.check_hostname = False  # the recorder's certificates name hosts, not IP addresses
    conn = http.client.HTTPSConnection("127.0.0.1", recorder.port, timeout=60, context=context)
    conn.set_tunnel(f"127.0.0.1:{port}", headers=AUTH)
    bodies = []
    for path in paths:
        conn.request("GET", path)
        bodies.append(conn.getresponse().read())
    conn.close()
    return bodies


def test_an_https_origins_chain_is_recorded_once_per_host_and_run(
    tmp_path: Path, secure: tuple[FixtureServer, Path]
) -> None:
    server, origin_ca = secure
    recorder = start_recorder(tmp_path, trust=[origin_ca])
    bodies = through_tunnel(recorder, server.port, ["/press/", "/press/1.html"])
    assert [b for b in bodies if b]
    records = recorder.stop()
    exchanges = pairs(records)
    assert [req.target for req, _ in exchanges] == [
        f"https://127.0.0.1:{server.port}/press/",
        f"https://127.0.0.1:{server.port}/press/1.html",
    ]
    assert [req.block for req, _ in exchanges] == server.received
    chains = [
        r
        for r in records
        if r.type == "metadata" and r.id not in {resp.id for _, resp in exchanges}
    ]
    (chain,) = chains
    assert chain.headers["WARC-Concurrent-To"] == exchanges[0][1].id  # with the first exchange
    info = chain.json()
    assert info["verified"] is True
    assert len(info["chain"]) >= 1


@pytest.mark.xfail(
    strict=True,
    reason="bug: load_trust_store reads certifi's bundle in one call, and a root in it has a "
    "serial number cryptography deprecates (a warning today, an exception in a future "
    "release); the except clause would then silently drop every certifi root, so no public "
    "origin's chain would verify",
)
def test_the_trust_store_reads_certifi_without_a_deprecated_certificate() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = load_trust_store([])
    assert store is not None
