"""The recording proxy: warcprox's man-in-the-middle proxy, with attest's recording path.

Scrapy (and, later, the browser) sends every request through this proxy. warcprox supplies
the proxy itself: CONNECT handling with a local CA, upstream connection pooling, and a recorder
that keeps the raw bytes of each response exactly as they came off the socket (status line,
header block, body with its Content-Encoding and chunked framing). What attest replaces:

- **Connecting** goes through the egress guard (:mod:`crawlers.recorder.egress`): resolve once, check
  every address, connect to a checked address; failures become outcomes, never silent drops.
- **Recording** writes WARC/1.1 records with microsecond dates and SHA-256 digests through
  :mod:`archive.ingest.spool`, instead of warcprox's WARC/1.0 writer thread.
- **Write, then acknowledge**: the response is held until its records are in the spool file,
  and only then relayed to the client, tagged with its capture id (``Attest-Capture-Id``).
- The origin's **TLS certificate chain** is kept in a ``metadata`` record per host and run.

Each request is attributed to its source by proxy authentication (``Proxy-Authorization:
Basic``, the source id as user name and the run's secret as password): per CONNECT tunnel for
HTTPS (and WebSockets), per request for plain HTTP. A request without the run's credentials is
answered 407 and goes nowhere, so no other local process can use the recorder as an open proxy,
and the browser's requests need no header of their own (docs/adr/0003-browser-attribution.md).
``Proxy-Authorization`` is hop-by-hop: it is never forwarded, so never recorded as sent. Control
headers (``Attest-Source`` where a recorder runs without a secret, and warcprox's
``Warcprox-Meta``, which attest does not use) are removed before the request goes upstream, so the
recorded request is what the origin received.

A CONNECT tunnel carries TLS (https, wss) or plain HTTP: Chromium tunnels ``ws://`` WebSockets
through CONNECT too. A request that asks to upgrade to a WebSocket is recorded like any exchange
(through the same guard and attribution); after the origin's ``101`` the connection's frames are
relayed both ways and kept in a transcript (:mod:`crawlers.recorder.websocket`,
docs/adr/0004-websocket-transcripts.md). Only such a request takes that path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import http.client
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import urlcanon
import warcprox
import warcprox.mitmproxy
import warcprox.warcproxy

from archive.errors import (
    CaptureError,
    ConnectFailure,
    DiskFull,
    FetchTimeout,
    TlsFailure,
)
from archive.ingest.spool import RotatingWarcWriter, is_source_id
from archive.warc.write import (
    Block,
    RecordSpec,
    is_precompressed,
    new_record_id,
    sha256_label,
    utc_now,
    warc_date,
)
from crawlers.recorder.egress import GuardedConnector
from crawlers.recorder.fastheaders import FastMessage
from crawlers.recorder.protocol import (
    BATCH_CONTENT_TYPE,
    BLOCK_DIGEST_HEADER,
    CAPTURE_ID_HEADER,
    OUTCOME_HEADER,
    PAYLOAD_DIGEST_HEADER,
    PROXY_AUTH_HEADER,
    PROXY_REALM,
    RECORDER_ERROR_HEADER,
    SOURCE_HEADER,
    WARC_DATE_HEADER,
    parse_proxy_credentials,
)
from crawlers.recorder.tlschain import TlsChainRecorder
from crawlers.recorder.upstream import OriginPool, Upstream
from crawlers.recorder.websocket import (
    Transcript,
    WebSocketRelay,
    is_upgrade_to_websocket,
    websocket_url,
)
from crawlers.recorder.wire import EmptyResponse, ResponseError, WireResponse, read_response

log = logging.getLogger(__name__)

_CONTROL_HEADERS = frozenset(h.lower() for h in (SOURCE_HEADER, "Warcprox-Meta"))
_HOP_BY_HOP = (
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "upgrade",
)
#: What warcprox's ``_swallow_hop_by_hop_headers`` removes before a request goes upstream.
_NOT_FORWARDED = frozenset(("warcprox-meta", *_HOP_BY_HOP))
#: A WebSocket handshake keeps ``Connection`` and ``Upgrade``: the origin must see them.
_NOT_FORWARDED_UPGRADE = _NOT_FORWARDED - {"connection", "upgrade"}
#: What the client gets of a ``101`` besides its status line: ``Connection`` and ``Upgrade`` too.
_NOT_RELAYED_UPGRADE = frozenset(_HOP_BY_HOP) - {"connection", "upgrade"}
_FAILURE_STATUS = {
    "dns_error": 502,
    "connection_error": 502,
    "tls_error": 502,
    "timeout": 504,
    "egress_refused": 403,
}


_ABSOLUTE_HTTP = re.compile(r"^http://([^/?#]+)(.*)$", re.DOTALL)


@functools.lru_cache(maxsize=4096)
def _http_origin(netloc: str) -> tuple[str, int]:
    """(normalised host, port) of an ``http://`` netloc; parsed once per origin."""
    parts = urlsplit("http://" + netloc)
    if not parts.hostname:
        raise ValueError(f"no host in {netloc!r}")
    return _normalized_host(parts.hostname), parts.port or 80


@functools.lru_cache(maxsize=4096)
def _normalized_host(host: str) -> str:
    """urlcanon's host normalisation (percent-decoding, dotted IPs, IDNA), as warcprox does it.

    A pure function of the host, and a crawl asks for few hosts many times: computed per
    request it was about a tenth of the recorder's CPU.
    """
    return urlcanon.normalize_host(host).decode("ascii")  # type: ignore[no-any-return]


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _drop_headers(message: http.client.HTTPMessage, lowered_names: frozenset[str]) -> None:
    """``del message[name]`` for each name, in one pass (each ``del`` scans every header)."""
    headers = message._headers  # type: ignore[attr-defined]
    if any(name.lower() in lowered_names for name, _ in headers):
        message._headers = [  # type: ignore[attr-defined]
            (name, value) for name, value in headers if name.lower() not in lowered_names
        ]


@dataclass
class RecorderState:
    """What the proxy's handlers share: writers per source, the guard, counters."""

    writer_for: Callable[[str], RotatingWarcWriter]
    connector: GuardedConnector
    tls_chains: TlsChainRecorder
    default_source: str
    upstreams: OriginPool = field(default_factory=OriginPool)
    #: Source ids already checked (``is_source_id``): a crawl sends a few, many times.
    source_ids: set[str] = field(default_factory=set)
    clock: Callable[[], datetime] = utc_now
    require_source: bool = False
    #: The run's secret: with one, every request must carry the run's proxy credentials.
    secret: str | None = None
    #: ``Proxy-Authorization`` values already checked, and the source each names.
    credentials: dict[str, str] = field(default_factory=dict)
    disk_full: bool = False
    exchanges: int = 0
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Client connections waiting for their next request (none is mid-exchange).
    idle_connections: set[socket.socket] = field(default_factory=set)
    #: WebSocket connections being relayed, and when their transcripts are cut into parts.
    websockets: set[WebSocketRelay] = field(default_factory=set)
    websocket_part_bytes: int = 16 * 1024 * 1024
    websocket_part_seconds: float = 60.0

    def close_idle_connections(self) -> None:
        for conn in list(self.idle_connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def stop_websockets(self) -> None:
        """End every relayed WebSocket; each writes its transcript as it ends."""
        with self.lock:
            relays = list(self.websockets)
        for relay in relays:
            relay.stop()

    def count(self, failed: bool) -> None:
        with self.lock:
            self.exchanges += 1
            if failed:
                self.failures += 1


class RecordingHandler(warcprox.warcproxy.WarcProxyHandler):  # type: ignore[misc]
    """One client connection: CONNECT/TLS from warcprox, everything after it attest's.

    Unlike warcprox, client connections are persistent (HTTP/1.1 keep-alive), inside CONNECT
    tunnels too: a new connection per request cost the crawler more CPU than recording.
    """

    state: RecorderState  # set on the class by RecordingProxy
    path: str
    port: int | str
    protocol_version = "HTTP/1.1"
    MessageClass = FastMessage
    disable_nagle_algorithm = True  # socketserver sets TCP_NODELAY on client connections
    #: Whether the CONNECT tunnel this handler serves carries TLS (set per tunnel).
    _tls_tunnel = True

    # --- idle keep-alive connections --------------------------------------------------
    def handle_one_request(self) -> None:
        # Between requests, a kept-alive client connection waits here for the next request
        # line; at shutdown such connections are closed at once instead of timing out.
        idle = self.state.idle_connections
        idle.add(self.connection)
        try:
            super().handle_one_request()
        finally:
            idle.discard(self.connection)

    def parse_request(self) -> bool:
        self.state.idle_connections.discard(self.connection)
        return bool(super().parse_request())

    # --- tunnels ----------------------------------------------------------------------
    def _transition_to_ssl(self) -> None:
        # A tunnel carries TLS (https, wss) or plain HTTP (Chromium tunnels ws:// too): the
        # client's first byte tells, a TLS handshake record starts with 0x16.
        first = self.connection.recv(1, socket.MSG_PEEK)
        self._tls_tunnel = first == b"\x16"
        if self._tls_tunnel:
            super()._transition_to_ssl()

    def _construct_tunneled_url(self) -> str:
        scheme, default_port = ("https", 443) if self._tls_tunnel else ("http", 80)
        port = int(self.port)
        netloc = self.hostname if port == default_port else f"{self.hostname}:{port}"
        return f"{scheme}://{netloc}{self.path}"

    # --- connecting -------------------------------------------------------------------
    def _determine_host_port(self) -> None:
        """warcprox's own, with each origin parsed and its host normalised once."""
        target = self.path
        if self.is_connect:
            host, self.port = target.split(":")
            self.hostname = _normalized_host(host)
            return
        match = _ABSOLUTE_HTTP.match(target)
        if match is None:
            raise ValueError(f"unable to parse request {self.requestline!r} as a proxy request")
        self.url = target
        self.hostname, self.port = _http_origin(match[1])
        # The origin-form request target: what follows scheme://netloc, as the client sent it
        # (no fragment ever goes on the wire).
        rest = match[2].split("#", 1)[0]
        self.path = rest if rest.startswith("/") else "/" + rest

    def _connect_to_remote_server(self, *, fresh: bool = False) -> socket.socket:
        """An idle connection to the origin from the pool, or a new one through the guard
        (always a new one when ``fresh``: a WebSocket keeps its connection)."""
        key = (self.hostname, int(self.port), bool(self.is_connect and self._tls_tunnel))
        self._origin_key = key
        upstream = None if fresh else self.state.upstreams.take(key)
        self._reused_connection = upstream is not None
        if upstream is None:
            upstream = self._open_upstream()
        self._upstream: Upstream | None = upstream
        self._tls_info: dict[str, Any] | None = upstream.tls_info
        return upstream.sock

    def _open_upstream(self) -> Upstream:
        sock = self.state.connector.open(self.hostname, int(self.port), self._socket_timeout)
        sock.settimeout(self._socket_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        remote_ip = sock.getpeername()[0]
        tls_info = None
        if self.is_connect and self._tls_tunnel:
            context = self.server.remote_connection_pool.connection_pool_kw["ssl_context"]
            try:
                sock = context.wrap_socket(sock, server_hostname=self.hostname)
            except TimeoutError as exc:
                sock.close()
                raise FetchTimeout(f"TLS handshake with {self.hostname} timed out") from exc
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise TlsFailure(f"TLS handshake with {self.hostname} failed: {exc}") from exc
            tls_info = self.state.tls_chains.describe(sock, self.hostname, int(self.port))
        return Upstream(sock, remote_ip, tls_info)

    # --- the request ------------------------------------------------------------------
    def _authenticated_source(self) -> str | None:
        """The source named by this request's proxy credentials, if they are the run's."""
        state = self.state
        value = self.headers.get(PROXY_AUTH_HEADER)
        if value is None or state.secret is None:
            return None
        source = state.credentials.get(value)
        if source is None:
            parsed = parse_proxy_credentials(value)
            if (
                parsed is None
                or not is_source_id(parsed[0])
                or not hmac.compare_digest(parsed[1].encode(), state.secret.encode())
            ):
                return None
            source = state.credentials[value] = parsed[0]
        return source

    def _source(self) -> str | None:
        """Whose request this is: the tunnel's or the request's credentials; without a run
        secret, the ``Attest-Source`` header (or the default source unless one is required).
        None: the request names no source it may use."""
        tunnel: str | None = getattr(self, "_tunnel_source", None)
        if tunnel is not None and self.is_connect:
            return tunnel
        if self.state.secret is not None:
            return self._authenticated_source()
        source: str | None = self.headers.get(SOURCE_HEADER)
        if not source:
            return None if self.state.require_source else self.state.default_source
        if source not in self.state.source_ids:
            if not is_source_id(source):
                return self.state.default_source
            self.state.source_ids.add(source)
        return source

    def _refuse_unattributed(self) -> None:
        # Not a capture's request (e.g. the browser's own background services, or another
        # local process): it goes nowhere and leaves nothing in the evidence.
        log.info("refused a request that names no source of the run: %s", self.requestline)
        self._send_plain(
            407,
            "Proxy Authentication Required",
            "attest recorder: requests must carry the run's proxy credentials",
            [
                ("Proxy-Authenticate", f'Basic realm="{PROXY_REALM}"'),
                (RECORDER_ERROR_HEADER, "no_source"),
            ],
        )

    def do_CONNECT(self) -> None:
        source = self._source()
        if source is None:
            self._refuse_unattributed()
            return
        # Requests inside the tunnel carry no credentials of their own: they are the tunnel's.
        self._tunnel_source = source if self.state.secret is not None else None
        super().do_CONNECT()

    def _drop_control_headers(self) -> None:
        """Headers meant for the recorder, never for the origin (nor the record)."""
        _drop_headers(self.headers, _CONTROL_HEADERS)

    def do_COMMAND(self) -> None:
        try:
            if self.is_connect:
                self.url = self._construct_tunneled_url()
            else:
                self._determine_host_port()
        except Exception as exc:  # noqa: BLE001 - any unparsable request is the client's error
            self._send_plain(400, "Bad Request", f"not a proxy request: {exc}", [])
            return
        source = self._source()
        if source is None:
            self._refuse_unattributed()
            return
        self._drop_control_headers()
        if self.state.disk_full:
            self._refuse_disk_full()
            return
        websocket = is_upgrade_to_websocket(self.command, self.headers.get("Upgrade"))
        if websocket:
            self.url = websocket_url(self.url)
        started = self.state.clock()
        try:
            self._connect_to_remote_server(fresh=websocket)
        except CaptureError as exc:
            self._record_failure(source, started, exc)
            return
        except OSError as exc:
            self._record_failure(source, started, ConnectFailure(str(exc)))
            return
        try:
            if websocket:
                self._exchange_websocket(source, started)
            else:
                self._exchange(source, started)
        except CaptureError as exc:
            self._drop_remote()
            self._record_failure(source, started, exc)
        except TimeoutError as exc:
            self._drop_remote()
            self._record_failure(
                source, started, FetchTimeout(f"reading from {self.hostname} timed out: {exc}")
            )
        except (http.client.HTTPException, OSError) as exc:
            self._drop_remote()
            self._record_failure(
                source, started, ConnectFailure(f"{self.hostname} broke the exchange: {exc!r}")
            )

    # warcprox sends every other method to do_COMMAND (MitmProxyHandler.__getattr__) but
    # answers these itself: GET /status with its own status page (inside a tunnel, that is
    # https://<any host>/status), PUTMETA and WARCPROX_WRITE_RECORD by queueing records for a
    # writer attest does not run. Here they are requests like any other, relayed and recorded.
    def do_GET(self) -> None:
        self.do_COMMAND()

    def do_PUTMETA(self) -> None:
        self.do_COMMAND()

    def do_WARCPROX_WRITE_RECORD(self) -> None:
        self.do_COMMAND()

    def _drop_remote(self) -> None:
        upstream = getattr(self, "_upstream", None)
        if upstream is not None:
            upstream.close()
            self._upstream = None

    def _swallow_hop_by_hop_headers(self) -> None:
        _drop_headers(self.headers, _NOT_FORWARDED)

    def _build_request(self) -> bytes:
        """warcprox's, from the parsed pairs (as above, ``items()`` would change nothing)."""
        pairs: list[tuple[str, str]] = self.headers._headers
        head = f"{self.command} {self.path} {self.request_version}\r\n"
        head += "\r\n".join(f"{k}: {v}" for k, v in pairs)
        return head.encode("latin1") + b"\r\n\r\n"

    def _exchange(self, source: str, started: datetime) -> None:
        self._swallow_hop_by_hop_headers()
        request_bytes = self._build_request()
        if "Content-Length" in self.headers:
            request_bytes += self.rfile.read(int(self.headers["Content-Length"]))
        while True:
            upstream = self._upstream
            assert upstream is not None
            try:
                upstream.sock.sendall(request_bytes)
                response = read_response(
                    upstream.sock, self.command, max_size=self._max_resource_size
                )
            except (EmptyResponse, ConnectionError) as exc:
                self._drop_remote()
                if not self._reused_connection:
                    if isinstance(exc, EmptyResponse):
                        raise ConnectFailure(
                            f"{self.hostname} closed the connection without answering"
                        ) from exc
                    raise
                # A kept-alive connection the origin had closed meanwhile: once more, on a new one.
                self._connect_to_remote_server()
                self._reused_connection = False
                continue
            except ResponseError as exc:
                raise ConnectFailure(
                    f"{self.hostname} sent something that is not HTTP: {exc}"
                ) from exc
            break
        try:
            if response.truncated is None and not response.will_close:
                self.state.upstreams.give(self._origin_key, upstream)
                self._upstream = None
            else:
                self._drop_remote()
            self._write_and_relay(source, started, request_bytes, response, upstream.remote_ip)
        finally:
            response.close()

    # --- WebSockets -------------------------------------------------------------------
    def _exchange_websocket(self, source: str, started: datetime) -> None:
        """The handshake, recorded like any exchange; after a ``101``, the relay.

        A WebSocket to a forbidden address never gets here: the guard refused the connection.
        """
        _drop_headers(self.headers, _NOT_FORWARDED_UPGRADE)
        request_bytes = self._build_request()
        if "Content-Length" in self.headers:
            request_bytes += self.rfile.read(int(self.headers["Content-Length"]))
        upstream = self._upstream
        assert upstream is not None
        upstream.sock.sendall(request_bytes)
        try:
            response = read_response(upstream.sock, "GET", max_size=self._max_resource_size)
        except EmptyResponse as exc:
            raise ConnectFailure(
                f"{self.hostname} closed the connection without answering"
            ) from exc
        except ResponseError as exc:
            raise ConnectFailure(f"{self.hostname} sent something that is not HTTP: {exc}") from exc
        try:
            if response.status != 101:
                # Refused or answered otherwise: an ordinary response, on a connection that
                # is not reused (it was asked to change protocols).
                self._drop_remote()
                self._write_and_relay(source, started, request_bytes, response, upstream.remote_ip)
                return
            specs = self._write_exchange(
                source, started, request_bytes, response, upstream.remote_ip
            )
            if specs is None:
                self._drop_remote()
                return
            self._upstream = None  # the connection is the WebSocket's now
            self._relay_websocket(source, specs[1], response, upstream)
        finally:
            response.close()

    def _relay_websocket(
        self, source: str, response_spec: RecordSpec, response: WireResponse, upstream: Upstream
    ) -> None:
        """Acknowledge the ``101`` (its records are written), then relay the connection until
        it ends and write its transcript. The client connection ends with it."""
        self.close_connection = True
        state = self.state
        head = _relayed_head(response, _NOT_RELAYED_UPGRADE)
        head.extend(self._capture_headers(response_spec))
        transcript = Transcript(
            self.url,
            response_spec.record_id or "",
            lambda spec: self._write([(source, [spec])], answer=False),
            clock=state.clock,
            part_bytes=state.websocket_part_bytes,
            part_seconds=state.websocket_part_seconds,
        )
        relay = WebSocketRelay(
            self.connection,
            upstream.sock,
            transcript,
            timeout=self._socket_timeout,
            clock=state.clock,
        )
        with state.lock:
            state.websockets.add(relay)
        try:
            try:
                self.connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                client_first = self._buffered_client_bytes()
            except OSError as exc:
                log.info("client went away before the 101 of %s was relayed: %s", self.url, exc)
                client_first = b""
                relay.stop()
            reason = relay.run(client_first, response.unread)
            log.info("websocket %s ended: %s", self.url, reason)
        finally:
            with state.lock:
                state.websockets.discard(relay)
            upstream.close()

    def _buffered_client_bytes(self) -> bytes:
        """What the client sent after its handshake that the request reader already took in
        (``select`` cannot see a reader's buffer): read without waiting for more."""
        sock = self.connection
        timeout = sock.gettimeout()
        sock.setblocking(False)
        try:
            return self.rfile.read1(256 * 1024) or b""
        except (BlockingIOError, ssl.SSLWantReadError):
            return b""
        finally:
            sock.settimeout(timeout)

    # --- recording --------------------------------------------------------------------
    def _write_and_relay(
        self,
        source: str,
        started: datetime,
        request_bytes: bytes,
        response: WireResponse,
        remote_ip: str,
    ) -> None:
        specs = self._write_exchange(source, started, request_bytes, response, remote_ip)
        if specs is None:
            return
        truncated = response.truncated
        # Acknowledge only now: the records are in the spool file.
        head = _relayed_head(response, _HOP_BY_HOP)
        head.extend(self._capture_headers(specs[1]))
        # The client connection stays open when the body is delimited (the origin's own
        # Content-Length or chunked framing is relayed unchanged); otherwise it ends the body.
        if not self._delimited(response, truncated):
            head.append("Connection: close")
            self.close_connection = True
        try:
            # Head and first body chunk in one write: on a kept-alive connection two small
            # writes would wait on the client's delayed ACK.
            out = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            if self.command != "HEAD":
                stream = response.block
                stream.seek(response.body_offset)
                while chunk := stream.read(256 * 1024):
                    self.connection.sendall(out + chunk if out else chunk)
                    out = b""
            if out:
                self.connection.sendall(out)
        except OSError as exc:
            log.info("client went away before %s was relayed: %s", self.url, exc)
            self.close_connection = True

    @staticmethod
    def _capture_headers(response_spec: RecordSpec) -> list[str]:
        """What the client learns of the response record written for it."""
        assert response_spec.date is not None
        return [
            f"{CAPTURE_ID_HEADER}: {response_spec.record_id}",
            f"{WARC_DATE_HEADER}: {warc_date(response_spec.date)}",
            f"{PAYLOAD_DIGEST_HEADER}: {response_spec.block.payload_digest}",
            f"{BLOCK_DIGEST_HEADER}: {response_spec.block.block_digest}",
        ]

    def _write_exchange(
        self,
        source: str,
        started: datetime,
        request_bytes: bytes,
        response: WireResponse,
        remote_ip: str,
    ) -> list[RecordSpec] | None:
        """Write the request and response records (and the origin's TLS chain, the first time);
        the records, or None when the spool refused them (and the client was answered)."""
        truncated = response.truncated
        response_id = new_record_id()
        request_id = new_record_id()
        request_headers_end = request_bytes.find(b"\r\n\r\n") + 4
        request_block = Block.from_bytes(request_bytes, payload_is_block=False)
        request_block.payload_digest = sha256_label(
            hashlib.sha256(request_bytes[request_headers_end:])
        )
        response_headers = [("WARC-IP-Address", remote_ip)]
        if truncated:
            response_headers.append(("WARC-Truncated", truncated))
        specs = [
            RecordSpec(
                record_type="request",
                block=request_block,
                target_uri=self.url,
                content_type="application/http; msgtype=request",
                headers=[("WARC-Concurrent-To", response_id)],
                record_id=request_id,
                date=started,
            ),
            RecordSpec(
                record_type="response",
                block=Block(
                    length=response.length,
                    stream=_rewound(response.block),
                    block_digest=sha256_label(response.block_digest),
                    payload_digest=sha256_label(response.payload_digest),
                ),
                target_uri=self.url,
                content_type="application/http; msgtype=response",
                headers=response_headers,
                record_id=response_id,
                date=started,
                precompressed=is_precompressed(
                    response.header("Content-Type"), response.header("Content-Encoding")
                ),
            ),
        ]
        if self._tls_info is not None:
            chain_spec = self.state.tls_chains.record_once(
                source, self._tls_info, self.url, response_id, started
            )
            if chain_spec is not None:
                specs.append(chain_spec)
        if not self._write([(source, specs)]):
            return None
        self.state.count(failed=False)
        return specs

    def _delimited(self, response: WireResponse, truncated: str | None) -> bool:
        if truncated or self.close_connection:
            return False
        # The origin's own framing (length, chunks, or none at all) is relayed unchanged.
        return response.framing != "close"

    def _record_failure(self, source: str, started: datetime, exc: CaptureError) -> None:
        outcome = exc.outcome
        body = {
            "outcome": outcome,
            "url": self.url,
            "method": self.command,
            "host": getattr(self, "hostname", None),
            "port": int(self.port) if getattr(self, "port", None) else None,
            "started": warc_date(started),
            "ended": warc_date(self.state.clock()),
            "error": str(exc),
        }
        data = json.dumps(body, sort_keys=True).encode("utf-8")
        record_id = new_record_id()
        spec = RecordSpec(
            record_type="metadata",
            block=Block.from_bytes(data),
            target_uri=self.url,
            content_type="application/json; profile=attest-outcome",
            record_id=record_id,
            date=started,
        )
        if not self._write([(source, [spec])]):
            return
        self.state.count(failed=True)
        status = _FAILURE_STATUS.get(outcome, 502)
        self._send_plain(
            status,
            http.client.responses.get(status, "Error"),
            f"{outcome}: {exc}",
            [(OUTCOME_HEADER, outcome), (CAPTURE_ID_HEADER, record_id)],
        )

    # --- records sent by the crawler (page metadata, outcomes) ------------------------
    def do_ATTEST_RECORD(self) -> None:
        source = self._source()
        if source is None:
            self._refuse_unattributed()
            return
        self._drop_control_headers()
        if self.headers.get("Content-Type") == BATCH_CONTENT_TYPE:
            self._record_batch(source)
            return
        try:
            length = int(self.headers["Content-Length"])
            record_type = self.headers.get("WARC-Type", "metadata")
            if record_type not in ("metadata", "resource"):
                raise ValueError(f"WARC-Type {record_type!r} not allowed")
            data = self.rfile.read(length)
        except (KeyError, ValueError) as exc:
            self._send_plain(400, "Bad Request", str(exc), [])
            return
        extra = [
            (name, self.headers[name])
            for name in ("WARC-Concurrent-To", "WARC-Refers-To")
            if self.headers.get(name)
        ]
        record_id = new_record_id()
        spec = RecordSpec(
            record_type=record_type,
            block=Block.from_bytes(data),
            target_uri=self.path,
            content_type=self.headers.get("Content-Type", "application/octet-stream"),
            headers=extra,
            record_id=record_id,
        )
        if not self._write([(source, [spec])]):
            return
        self._send_plain(201, "Created", record_id, [(CAPTURE_ID_HEADER, record_id)], close=False)

    def _record_batch(self, default_source: str) -> None:
        """Several crawler records in one request: a JSON list of objects with ``target``,
        ``content_type`` and ``data`` (text), and optional ``source``, ``type``,
        ``concurrent_to``, ``refers_to``. Answers with the record ids, in order."""
        try:
            items = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not isinstance(items, list):
                raise ValueError("a batch is a JSON list")
            specs: list[tuple[str, RecordSpec]] = []
            for item in items:
                record_type = item.get("type", "metadata")
                if record_type not in ("metadata", "resource"):
                    raise ValueError(f"WARC-Type {record_type!r} not allowed")
                source = item.get("source") or default_source
                if not is_source_id(source):
                    raise ValueError(f"bad source id {source!r}")
                extra = [
                    (name, str(item[key]))
                    for key, name in (
                        ("concurrent_to", "WARC-Concurrent-To"),
                        ("refers_to", "WARC-Refers-To"),
                    )
                    if item.get(key)
                ]
                specs.append(
                    (
                        source,
                        RecordSpec(
                            record_type=record_type,
                            block=Block.from_bytes(str(item["data"]).encode("utf-8")),
                            target_uri=str(item["target"]),
                            content_type=str(item["content_type"]),
                            headers=extra,
                            record_id=new_record_id(),
                        ),
                    )
                )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            self._send_plain(400, "Bad Request", f"bad record batch: {exc}", [])
            return
        if not self._write([(source, [spec]) for source, spec in specs]):
            return
        ids = [spec.record_id for _, spec in specs]
        self._send_plain(201, "Created", json.dumps(ids), [], close=False)

    # --- plumbing ---------------------------------------------------------------------
    def _write(self, groups: list[tuple[str, list[RecordSpec]]], *, answer: bool = True) -> bool:
        """Write each source's records (a group together, or not at all).

        On a full spool, answers 507 (the crawler then stops; not inside a WebSocket, where
        ``answer`` is False) and refuses every later fetch.
        """
        try:
            for source, specs in groups:
                self.state.writer_for(source).write_many(specs)
        except DiskFull:
            self.state.disk_full = True
            log.error("spool disk full; refusing further fetches")
            if answer:
                self._refuse_disk_full()
            return False
        return True

    def _refuse_disk_full(self) -> None:
        self._send_plain(
            507,
            "Insufficient Storage",
            "recorder spool is full; not recorded",
            [(RECORDER_ERROR_HEADER, "disk_full")],
        )

    def _send_plain(
        self,
        status: int,
        reason: str,
        text: str,
        headers: list[tuple[str, str]],
        *,
        close: bool = True,
    ) -> None:
        body = (text + "\n").encode("utf-8")
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: text/plain; charset=utf-8",
            f"Content-Length: {len(body)}",
        ]
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        lines.extend(f"{k}: {v}" for k, v in headers)
        try:
            self.connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            self.close_connection = True

    def send_error(
        self,
        code: int,
        message: str | None = None,
        explain: str | None = None,
        exception: Exception | None = None,
    ) -> None:
        # warcprox queues a FailedUrl for its own writer here; attest records failures itself.
        warcprox.mitmproxy.MitmProxyHandler.send_error(self, code, message, explain)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _relayed_head(response: WireResponse, not_relayed: Collection[str]) -> list[str]:
    """The status line and headers the client gets. They must be valid HTTP even when the
    origin's are not (the WARC keeps the origin's bytes): names that are not tokens are
    dropped, and those in ``not_relayed`` (lowercase)."""
    head = [f"HTTP/1.1 {response.status} {response.reason}"]
    head.extend(
        f"{k}: {v}" for k, v in response.headers if k.lower() not in not_relayed and _TOKEN.match(k)
    )
    return head


def _rewound(stream: Any) -> Any:
    stream.seek(0)
    return stream


class RecordingProxy(warcprox.warcproxy.WarcProxy):  # type: ignore[misc]
    """warcprox's pooled proxy server, serving :class:`RecordingHandler`."""

    def __init__(self, state: RecorderState, options: warcprox.Options) -> None:
        super().__init__(options=options)
        handler: Any = type("BoundRecordingHandler", (RecordingHandler,), {"state": state})
        handler._socket_timeout = options.socket_timeout or 30
        handler._max_resource_size = options.max_resource_size
        handler._tmp_file_max_memory_size = options.tmp_file_max_memory_size or 512 * 1024
        self.RequestHandlerClass = handler
        self.state = state
