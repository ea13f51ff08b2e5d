"""``attest serve``: the retrieval service for investigators (docs/INVESTIGATORS.md).

Routes (reading needs the ``investigator`` role when tokens are configured; the changes in
:mod:`archive.serve.actions` need ``legal`` or ``admin``):

==================================  ===============================================================
``/cdx``                            CDX server API (pywb's parameters and outputs, OutbackCDX collapse)
``/web/timemap/link/<url>``         Memento TimeMap (application/link-format)
``/web/<url>``                      Memento TimeGate (302 to the memento closest to Accept-Datetime)
``/web/<14 digits>[mod_]/<url>``    a memento: the first capture of that second, replayed by pywb,
                                    with Memento-Datetime and Link
``/web/cdx?url=&output=json``       the captures of a URL for pywb's replay banner (JSON lines)
``/capture/<uuid>/replay``          one capture replayed, exactly that record (:mod:`archive.index.links`)
``/capture/<uuid>/raw``             one capture's payload exactly as archived
``/capture/<uuid>/web/...``         an exact replay's frame and page, as pywb links them
``/search?q=``                      full-text search (JSON; the web page at ``/ui/search``)
``/api/capture/<uuid>``             one capture's metadata (JSON): hashes, IP, TLS chain, links
``/``, ``/ui/...``                  the web page: search, URL lookup with a timeline, capture pages
``/login``, ``/logout``             session cookie from a token, for the web page
==================================  ===============================================================

Every record handed out (replayed, raw, a screenshot, a page's metadata) is first checked against
its digests and the index (:func:`archive.index.retrieve.verify_record`); one that fails is refused
with HTTP 500 and an "integrity check failed" page naming it, and logged at ERROR. pywb replays
only records the service chose and checked: each replay request tells it which record (a pin),
and the service's index answers pywb's lookup with that record alone.

Every read of a capture (replay, raw, metadata page, screenshot) is logged in the custody log with
the caller's actor. Database and store calls run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from archive.custody.log import CustodyLog
from archive.custody.seal import SegmentAttestor
from archive.dates import http_date, iso, parse_http_date, parse_when, timestamp14
from archive.errors import (
    AccessDenied,
    AttestError,
    ConfigError,
    HoldUnsupported,
    IntegrityError,
    LoginThrottled,
    NotFound,
    RoleRequired,
)
from archive.index.cdxj import REPLAYABLE, IndexRow, surt_key
from archive.index.db import IndexDB
from archive.index.links import CAPTURE_PREFIX, capture_links, capture_uuid
from archive.index.query import (
    MAX_LIMIT,
    QueryError,
    field_values,
    formatter,
    parse_query,
    run_query,
)
from archive.index.retrieve import Payload, load_payload, pinned_store, raw_record, verify_record
from archive.serve import memento
from archive.serve.actions import ACTION_ROUTES, ActionSettings
from archive.serve.auth import SESSION_COOKIE, Gate, Principal, is_loopback, load_tokens
from archive.store import PinnedStore, Store, open_store

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
_MEMENTO_PATH = re.compile(r"(\d{1,14})([a-z]{2}_)?/(.+)", re.S)
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
_UUID = re.compile(r"[0-9a-fA-F-]{36}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CAPTURE_PATH = re.compile(r"^/capture/[0-9a-fA-F-]{36}(?=/)")
SEAL_INTERVAL = 600.0
T = TypeVar("T")


@dataclass
class ServeOptions:
    host: str
    port: int
    index_url: str
    store_uri: str
    tokens_file: Path | None = None
    replay: bool = True
    replay_venv: Path | None = None
    home: Path | None = None
    actions: ActionSettings = field(default_factory=ActionSettings)
    #: signs and timestamps the custody segments the service seals (settings.custody_attestor)
    custody_attestor: SegmentAttestor | None = None


@dataclass
class Pywb:
    """How the service reaches its pywb: a Unix socket, and the secret pywb asks for."""

    socket_path: Path
    secret: str


class Service:
    """What the routes share: the index, the store, the custody log, the gate, pywb."""

    def __init__(
        self,
        db: IndexDB,
        store: Store,
        gate: Gate,
        *,
        pywb: Pywb | None,
        internal_secret: str,
        actions: ActionSettings | None = None,
        custody_attestor: SegmentAttestor | None = None,
    ) -> None:
        self.db = db
        #: Evidence is read as the object versions the index recorded, never a later one.
        self.store = pinned_store(store, db)
        self.gate = gate
        self.custody = CustodyLog(db, store, attestor=custody_attestor)
        self.pywb = pywb
        self.internal_secret = internal_secret
        self.actions = actions or ActionSettings()
        self._client: Any = None
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        self.jinja = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )
        self.jinja.filters["iso"] = iso
        self.jinja.filters["ts14"] = timestamp14
        self.jinja.filters["urlq"] = lambda v: quote(str(v), safe="")
        self.jinja.filters["links"] = capture_links

    async def client(self) -> Any:
        if self._client is None:
            import httpx

            assert self.pywb is not None
            self._client = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(self.pywb.socket_path)),
                timeout=60.0,
                follow_redirects=False,
            )
        return self._client

    def read_event(self, principal: Principal, row: IndexRow, via: str) -> None:
        self.custody.append(
            "read",
            row.record_id,
            {
                "url": row.url,
                "warc": self.store.object_uri(row.warc_key),
                "offset": row.offset,
                "via": via,
            },
            actor=principal.actor,
        )

    def verified(self, row: IndexRow) -> None:
        """IntegrityError unless the row's record (and a revisit's original) holds in the store."""
        with _naming(row):
            check_record(self.store, row)
        if row.record_type == "revisit" and row.concurrent_to:
            original = self.db.by_record_id(row.concurrent_to)
            if original is not None:
                with _naming(original):
                    check_record(self.store, original)

    def payload(self, row: IndexRow) -> Payload:
        """The row's record from the store, checked (IntegrityError naming it)."""
        with _naming(row):
            return load_payload(self.store, row)

    def render(
        self, name: str, request: Request, status: int = 200, **context: Any
    ) -> HTMLResponse:
        principal = request.scope.get("attest.principal")
        page = self.jinja.get_template(name).render(
            request=request,
            principal=principal,
            open=self.gate.open,
            csrf=request.scope.get("attest.csrf"),
            **context,
        )
        return HTMLResponse(page, status_code=status)


@contextlib.contextmanager
def _naming(row: IndexRow) -> Iterator[None]:
    """An integrity failure's message names the capture: its record id and URL."""
    try:
        yield
    except IntegrityError as exc:
        named = str(exc) if row.record_id in str(exc) else f"record {row.record_id}: {exc}"
        raise type(exc)(f"capture of {row.url}, {named}") from exc


def check_record(store: Store | PinnedStore, row: IndexRow) -> None:
    """The record's digests and identity, checked in the store (IntegrityError names it)."""
    verify_record(store, row)


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread: database and store calls never block the event loop."""
    return await asyncio.to_thread(fn, *args)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _principal(request: Request) -> Principal:
    principal: Principal = request.scope["attest.principal"]
    return principal


def _error(request: Request, status: int, message: str, title: str | None = None) -> Response:
    if _wants_html(request):
        return _service(request).render(
            "error.html", request, status, status_code=status, message=message, title=title
        )
    return PlainTextResponse((f"{title}: " if title else "") + message + "\n", status_code=status)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return (
        path == "/" or path.startswith("/ui/") or "text/html" in request.headers.get("accept", "")
    )


class RefuseControlCharacters:
    """400 for a path that decodes to a control character (``%00``, ``%01``, ...): no route
    takes one, and passing it on (to the index, to pywb) ended in errors. (A query string keeps
    its percent-escapes: an archived URL's own query is passed on as it is written.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = _CONTROL.search(scope.get("path", ""))
            if found:
                response = PlainTextResponse(
                    f"bad request: the path holds a control character "
                    f"(U+{ord(found.group(0)):04X}) at position {found.start()}\n",
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class GateMiddleware:
    """Authenticates every request but the login page and pywb's internal paths (a plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task and a stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, request: Request) -> Response | None:
        """The answer for a request that may not go on; None (and the caller in its scope)
        when it may."""
        path = request.url.path
        service = _service(request)
        if path in ("/login", "/healthz") or path.startswith("/_pywb/"):
            return None
        client = request.client.host if request.client else "unknown"
        if service.gate.open and not is_loopback(_host_name(request.headers.get("host", ""))):
            # Open (no tokens) means "this machine only": a page elsewhere that got its name to
            # resolve to 127.0.0.1 (DNS rebinding) must not read or change the archive.
            return PlainTextResponse(
                "this service has no tokens and answers loopback names only "
                "(127.0.0.1, localhost, [::1]); set ATTEST_TOKENS to serve others\n",
                status_code=421,
            )
        authorization = request.headers.get("authorization")
        cookie = request.cookies.get(SESSION_COOKIE)
        try:
            request.scope["attest.principal"] = service.gate.principal(
                authorization, cookie, client
            )
        except LoginThrottled as exc:
            return PlainTextResponse(
                f"{exc}\n", status_code=429, headers={"Retry-After": str(exc.retry_after)}
            )
        except AccessDenied as exc:
            if _wants_html(request) and not authorization and request.method in ("GET", "HEAD"):
                # Back to the page asked for, query included (a lookup's URL, a search's words).
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='/')}", 303)
            # 403 only for a known caller whose role falls short; no or a bad credential is 401.
            return PlainTextResponse(
                f"{exc}\n",
                status_code=403 if isinstance(exc, RoleRequired) else 401,
                headers={"WWW-Authenticate": 'Bearer realm="attest"'},
            )
        if not authorization and not service.gate.open:
            # Authenticated by the session cookie: changes must echo its CSRF token.
            held = service.gate.session(cookie)
            request.scope["attest.csrf"] = held.csrf if held is not None else None
        return None


def _host_name(host: str) -> str:
    """The name in a Host header, without its port ('[::1]:8700' -> '::1')."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# --- CDX API --------------------------------------------------------------------------------


def _params(request: Request) -> dict[str, list[str]]:
    try:
        return parse_qs(request.url.query, keep_blank_values=True, max_num_fields=64)
    except ValueError as exc:  # too many fields
        raise QueryError(f"bad query string: {exc}") from None


def _cdx_response(
    db: IndexDB,
    params: dict[str, list[str]],
    *,
    allow_extra: bool = False,
    empty_ok: bool = False,
) -> Response:
    query = parse_query(params, allow_extra=allow_extra)
    if query.show_num_pages:
        size = query.page_size or MAX_LIMIT
        total = sum(
            1 for _ in run_query(db, replace(query, limit=MAX_LIMIT, page=0, page_size=None))
        )
        pages = max(1, -(-total // size))
        return JSONResponse({"pages": pages, "pageSize": size, "blocks": pages})
    content_type, line = formatter(query)
    body = "".join(line(row) for row in run_query(db, query))
    if not body and not empty_ok:
        if query.page:
            # pywb's answer past the last page; paging clients stop on it.
            return PlainTextResponse(f"page {query.page} is past the last page\n", status_code=400)
        # pywb's "no captures" answer, which CDX clients (cdx_toolkit) read as an empty result.
        return JSONResponse({"message": f"No Captures found for: {query.url}"}, status_code=404)
    return Response(body, media_type=content_type)


async def cdx(request: Request) -> Response:
    return await blocking(_cdx_response, _service(request).db, _params(request))


async def banner_cdx(request: Request) -> Response:
    """``/web/cdx?url=...&output=json``: what pywb's replay banner asks for (JSON lines, one per
    capture, as pywb's own ``/<coll>/cdx`` gives them), to show the capture's time and the list
    of captures; no capture is an empty list."""
    params = _params(request)
    return await blocking(lambda: _cdx_response(_service(request).db, params, empty_ok=True))


def _pinned_answer(db: IndexDB, params: dict[str, list[str]], pin: str) -> Response:
    row = db.by_record_id(pin)
    url = (params.get("url") or [""])[0]
    if row is None or row.surt != surt_key(url):
        log.warning("replay lookup for %s does not name the pinned record %s", url, pin)
        return PlainTextResponse("no such capture\n", status_code=404)
    return Response(row.cdxj_line() + "\n", media_type="text/x-cdxj")


async def pywb_cdx(request: Request) -> Response:
    """The index as pywb asks for it: loopback only, with the per-process secret in the path.

    A replay lookup carrying ``pin`` (the record the service chose and checked for this request)
    is answered with that record alone, so pywb replays it or nothing."""
    service = _service(request)
    client = request.client.host if request.client else ""
    if request.path_params["secret"] != service.internal_secret or not is_loopback(client):
        return PlainTextResponse("not found\n", status_code=404)
    params = {k: v for k, v in _params(request).items() if v and v[0] != ""}
    pin = params.pop("pin", [""])[0]
    if pin:
        return await blocking(_pinned_answer, service.db, params, pin)
    if params.get("matchType") == ["exact"] and "closest" in params:
        params.setdefault("sort", ["closest"])
    return await blocking(lambda: _cdx_response(service.db, params, allow_extra=True))


_RANGE = re.compile(r"bytes=(\d{1,18})-(\d{1,18})")


def _record_bytes(service: Service, key: str, offset: int, length: int) -> bytes:
    row = service.db.at(key, offset)
    if row is None or row.length != length:
        raise NotFound(f"no indexed record at {key} offset {offset} (+{length} bytes)")
    with _naming(row):
        return raw_record(service.store, row)


async def pywb_warc(request: Request) -> Response:
    """A record's bytes as pywb reads them (its ``archive_paths`` point here): loopback only,
    the per-process secret in the path, one indexed record per range. They come from the object
    version the index recorded, checked against their digests, so pywb replays exactly what the
    service verified, from a file or an S3 store alike."""
    service = _service(request)
    client = request.client.host if request.client else ""
    if request.path_params["secret"] != service.internal_secret or not is_loopback(client):
        return PlainTextResponse("not found\n", status_code=404)
    wanted = _RANGE.fullmatch(request.headers.get("range", ""))
    if wanted is None:
        return PlainTextResponse("one record's byte range, please\n", status_code=416)
    first, last = int(wanted.group(1)), int(wanted.group(2))
    key = request.path_params["key"]
    try:
        data = await blocking(_record_bytes, service, key, first, last - first + 1)
    except IntegrityError as exc:
        log.error("integrity check failed, record refused to pywb: %s", exc)
        return PlainTextResponse(f"integrity check failed: {exc}\n", status_code=502)
    return Response(
        data,
        status_code=206,
        media_type="application/octet-stream",
        headers={"Content-Range": f"bytes {first}-{last}/*"},
    )


# --- Memento and replay ----------------------------------------------------------------------


def _target(request: Request, rest: str) -> str:
    """The original URL from a /web/... path (with its query string, which routing drops)."""
    url = rest
    if request.url.query:
        url += "?" + request.url.query
    # Browsers and proxies fold "http://" to "http:/" in paths.
    url = re.sub(r"^(https?):/(?!/)", r"\1://", url)
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        url = "http://" + url
    return url


def _rows_for(db: IndexDB, url: str) -> list[IndexRow]:
    return db.select(low=surt_key(url), high=None, exact=True, record_types=REPLAYABLE)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def timemap(request: Request) -> Response:
    service = _service(request)
    url = _target(request, request.path_params["url"])
    rows = await blocking(_rows_for, service.db, url)
    if not rows:
        return PlainTextResponse(f"no capture of {url}\n", status_code=404)
    return Response(
        memento.timemap(_base(request), url, rows), media_type="application/link-format"
    )


async def web(request: Request) -> Response:
    rest = request.path_params["rest"]
    if rest == "cdx":
        return await banner_cdx(request)
    match = _MEMENTO_PATH.fullmatch(rest)
    if match:
        return await _memento(request, match.group(1), match.group(2) or "", match.group(3))
    if rest.startswith("*/"):
        return RedirectResponse(f"/ui/lookup?url={quote(_target(request, rest[2:]), safe='')}", 302)
    return await _timegate(request, _target(request, rest))


async def _timegate(request: Request, url: str) -> Response:
    service = _service(request)
    rows = await blocking(_rows_for, service.db, url)
    if not rows:
        return PlainTextResponse(f"no capture of {url}\n", status_code=404)
    wanted = request.headers.get("accept-datetime")
    if wanted:
        best = memento.closest(rows, parse_http_date(wanted))
    else:
        best = max(rows, key=lambda r: r.ts)
    base = _base(request)
    mementos = memento.distinct_mementos(rows)
    return Response(
        status_code=302,
        headers={
            "Location": memento.memento_uri(base, best),
            "Vary": "accept-datetime",
            "Link": memento.link_header(
                base, url, memento=best, first=mementos[0], last=mementos[-1]
            ),
        },
    )


async def _memento(
    request: Request, stamp: str, modifier: str, rest: str, pinned: IndexRow | None = None
) -> Response:
    """One memento: the capture of ``url`` at ``stamp`` (``pinned`` when it is that URL's and
    second's exact capture), checked, then replayed by pywb (or served as archived)."""
    service = _service(request)
    url = _target(request, rest)
    try:
        target = parse_when(stamp, bound="low", what="timestamp")
    except ConfigError as exc:
        return PlainTextResponse(f"{exc}\n", status_code=400)
    rows = await blocking(_rows_for, service.db, url)
    if not rows:
        return PlainTextResponse(f"no capture of {url}\n", status_code=404)
    base = _base(request)
    prefix = f"{CAPTURE_PREFIX}{capture_uuid(pinned.record_id)}" if pinned is not None else ""
    if (
        pinned is not None
        and timestamp14(pinned.ts) == stamp
        and any(r.record_id == pinned.record_id for r in rows)
    ):
        best = pinned
    else:
        best = memento.closest(rows, target)
        exact = timestamp14(best.ts)
        if exact != stamp:
            # A URI-M names one memento: send the client to the exact one.
            location = f"{base}{prefix}{memento.PREFIX}/{exact}{modifier}/{url}"
            return Response(
                status_code=302, headers={"Location": location, "Vary": "accept-datetime"}
            )
    await blocking(service.verified, best)
    mementos = memento.distinct_mementos(rows)
    uri = dict((r.record_id, u) for r, u in memento.memento_uris(base, rows))[best.record_id]
    link = memento.link_header(
        base, url, memento=best, first=mementos[0], last=mementos[-1], uri=uri
    )
    headers = {"Memento-Datetime": http_date(best.ts), "Link": link}
    if service.pywb is None:
        return await _archived(request, best, headers, "replay id_ (no pywb)")
    response = await _proxy(request, headers, pin=best, prefix=prefix)
    if response.status_code == 200:
        await blocking(
            service.read_event, _principal(request), best, f"replay {modifier or 'frame'}"
        )
    return response


def _as_archived(payload: Payload, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    out = dict(headers)
    status = 200
    if payload.http is not None:
        status = payload.http.status or 200
        for name in ("content-type", "content-encoding", "location"):
            if name in payload.http.headers:
                out[name] = payload.http.headers[name]
    else:
        out["content-type"] = payload.content_type
    return status, out


async def _archived(request: Request, row: IndexRow, headers: dict[str, str], via: str) -> Response:
    """The archived payload as it was sent (``id_`` replay): status, type and encoding as
    archived, no rewriting; the record is checked before any byte goes out."""
    service = _service(request)
    payload = await blocking(service.payload, row)
    status, out = _as_archived(payload, headers)
    out["Attest-Record-Id"] = row.record_id
    await blocking(service.read_event, _principal(request), row, via)
    return Response(payload.body, status_code=status, headers=out)


async def _proxy(
    request: Request,
    extra: dict[str, str] | None = None,
    *,
    pin: IndexRow | None = None,
    prefix: str = "",
) -> Response:
    """The request passed to pywb over its socket, with the secret, the pinned record and an
    exact capture's prefix; pywb's answer streamed back."""
    service = _service(request)
    assert service.pywb is not None
    client = await service.client()
    # The path as sent (escapes kept), less an exact capture's prefix, which pywb gets apart.
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode("utf-8")
    path = raw_path.decode("latin-1")
    if prefix:
        path = _CAPTURE_PATH.sub("", path, count=1)
    url = "http://pywb" + path + (f"?{request.url.query}" if request.url.query else "")
    headers = [
        (k, v)
        for k, v in request.headers.items()
        if k.lower() not in _HOP | {"authorization", "cookie"}
        and not k.lower().startswith("x-attest-")
    ]
    headers.append(("X-Attest-Secret", service.pywb.secret))
    if prefix:
        headers.append(("X-Attest-Prefix", prefix))
    if pin is not None:
        headers.append(("X-Attest-Pin", pin.record_id))
    import httpx

    upstream = client.build_request(request.method, url, headers=headers)
    try:
        resp = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:  # pywb is down
        log.error("replay backend unreachable: %s", exc)
        return PlainTextResponse("replay backend unavailable\n", status_code=502)
    out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
    if extra and resp.status_code < 300:
        out_headers.update(extra)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in resp.aiter_raw():
            yield chunk

    return StreamingResponse(
        body(),
        status_code=resp.status_code,
        headers=out_headers,
        background=BackgroundTask(resp.aclose),
    )


async def static(request: Request) -> Response:
    if _service(request).pywb is None:
        return PlainTextResponse("replay is not running\n", status_code=404)
    uuid = request.path_params.get("uuid")
    if uuid and not _UUID.fullmatch(uuid):
        raise NotFound(f"{request.url.path}: no such file")
    return await _proxy(request, prefix=f"{CAPTURE_PREFIX}{uuid.lower()}" if uuid else "")


# --- one capture, exactly --------------------------------------------------------------------


async def _capture_row(request: Request) -> IndexRow:
    return await blocking(_row_by_uuid, _service(request).db, request.path_params["uuid"])


async def capture_replay(request: Request) -> Response:
    """``/capture/<uuid>/replay``: pywb's frame around exactly this record."""
    service = _service(request)
    row = await _capture_row(request)
    if row.record_type not in REPLAYABLE:
        raise NotFound(
            f"capture {capture_uuid(row.record_id)} is a {row.record_type} record, which does "
            f"not replay; its bytes are at {capture_links(row.record_id)['raw']}"
        )
    if service.pywb is None:
        return RedirectResponse(capture_links(row.record_id)["raw"], 302)
    uuid = capture_uuid(row.record_id)
    return RedirectResponse(
        f"{CAPTURE_PREFIX}{uuid}{memento.PREFIX}/{timestamp14(row.ts)}/{row.url}", 302
    )


async def capture_raw(request: Request) -> Response:
    """``/capture/<uuid>/raw``: exactly this record's payload, as archived."""
    row = await _capture_row(request)
    return await _archived(request, row, {"Memento-Datetime": http_date(row.ts)}, "raw")


async def capture_web(request: Request) -> Response:
    """pywb's paths under one capture's prefix: the frame, the page, its subresources, the
    banner's capture list. The capture's own URL and second get exactly that record; other
    URLs (the page's images, scripts, links) their closest captures, as under ``/web/``."""
    rest = request.path_params["rest"]
    if rest == "cdx":
        return await banner_cdx(request)
    pinned = await _capture_row(request)
    match = _MEMENTO_PATH.fullmatch(rest)
    if not match:
        raise NotFound(f"{request.url.path}: not a replay path")
    return await _memento(
        request, match.group(1), match.group(2) or "", match.group(3), pinned=pinned
    )


# --- search and metadata ---------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= high:
        raise QueryError(f"{name}: {raw[:20]!r} must be a whole number from 0 to {high}")
    return int(raw)


async def _search(request: Request) -> tuple[str, list[dict[str, Any]], int, int]:
    unknown = set(request.query_params) - {"q", "limit", "offset"}
    if unknown:
        raise QueryError(f"unknown parameter {sorted(unknown)[0]!r} (known: q, limit, offset)")
    q = request.query_params.get("q", "").strip()
    if not q:
        raise QueryError("q: required (words to search for)")
    if len(q) > 500:
        raise QueryError("q: longer than 500 characters")
    limit = _int_param(request, "limit", 20, 200) or 20
    offset = _int_param(request, "offset", 0, 10_000)
    hits = await blocking(lambda: _service(request).db.search(q, limit=limit, offset=offset))
    return (
        q,
        [
            {
                "url": h.url,
                "datetime": iso(h.ts),
                "timestamp": timestamp14(h.ts),
                "snippet": h.snippet,
                "record_id": h.record_id,
                "capture": _uuid(h.record_id),
                **_links(h.record_id),
            }
            for h in hits
        ],
        limit,
        offset,
    )


def _links(record_id: str) -> dict[str, str]:
    try:
        return capture_links(record_id)
    except ConfigError:  # not a UUID record id (an imported archive's): no exact links
        return {}


async def search(request: Request) -> Response:
    q, hits, limit, offset = await _search(request)
    return JSONResponse({"q": q, "limit": limit, "offset": offset, "hits": hits})


def _uuid(record_id: str) -> str:
    match = _UUID.search(record_id)
    return match.group(0) if match else record_id


def _row_by_uuid(db: IndexDB, uuid: str) -> IndexRow:
    if not _UUID.fullmatch(uuid):
        raise QueryError(f"{uuid[:60]!r} is not a capture id (a UUID)")
    row = db.by_record_id(f"<urn:uuid:{uuid.lower()}>")
    if row is None:
        raise NotFound(f"no capture {uuid}")
    return row


@contextlib.contextmanager
def _problem(problems: list[str]) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        log.error("integrity check failed, record refused: %s", exc)
        problems.append(f"integrity check failed: {exc}")
    except (AttestError, ValueError) as exc:
        problems.append(str(exc))


def capture_details(service: Service, row: IndexRow) -> dict[str, Any]:
    """Everything known about one capture: index fields, WARC, TLS chain, linked records, links.

    The capture's own record is checked first (IntegrityError when it fails)."""
    service.verified(row)
    values = field_values(row)
    values["datetime"] = iso(row.ts)
    details: dict[str, Any] = {
        "capture": _uuid(row.record_id),
        **values,
        "payload_sha256": row.digest,
        "block_sha256": row.block_digest,
        "warc": service.store.object_uri(row.warc_key),
        **_links(row.record_id),
        # The Memento URI-M of its second (the first capture of that second).
        "memento": f"{memento.PREFIX}/{timestamp14(row.ts)}/{row.url}",
    }
    linked = service.db.concurrent_with(row.record_id)
    details["linked"] = [
        {
            "record_type": r.record_type,
            "url": r.url,
            "mime": r.mime,
            "record_id": r.record_id,
            "capture": _uuid(r.record_id),
            "sha256": r.block_digest,
        }
        for r in linked
    ]
    # A linked record that fails its check is named on the page, never shown.
    problems: list[str] = []
    for r in linked:
        if r.record_type == "metadata" and "attest-page" in r.mime:
            with _problem(problems):
                details["page"] = json.loads(service.payload(r).body)
        if r.url.startswith("urn:view:"):
            details["screenshot"] = _uuid(r.record_id)
    host = row.surt.split(")/")[0] + ")/"
    chain = service.db.tls_chain_for(row.run_id, host) if row.url.startswith("https:") else None
    if chain is not None:
        with _problem(problems):
            details["tls"] = json.loads(service.payload(chain).body)
    details["problems"] = problems
    warc = service.db.warc(row.warc_key)
    if warc is not None:
        details["warc_sha256"] = warc["sha256"]
        info = json.loads(warc["warcinfo"] or "{}")
        details["warcinfo"] = info
    return details


async def api_capture(request: Request) -> Response:
    service = _service(request)
    row = await _capture_row(request)
    details = await blocking(capture_details, service, row)
    await blocking(service.read_event, _principal(request), row, "capture metadata")
    return JSONResponse(details)


async def ui_capture(request: Request) -> Response:
    service = _service(request)
    row = await _capture_row(request)
    details = await blocking(capture_details, service, row)
    custody = await blocking(service.custody.for_object, row.record_id)
    await blocking(service.read_event, _principal(request), row, "capture page")
    return service.render("capture.html", request, row=row, d=details, custody=custody)


async def ui_screenshot(request: Request) -> Response:
    service = _service(request)
    row = await _capture_row(request)
    if not row.url.startswith("urn:view:"):
        raise NotFound(f"capture {request.path_params['uuid']} is not a screenshot")
    payload = await blocking(service.payload, row)
    await blocking(service.read_event, _principal(request), row, "screenshot")
    return Response(payload.body, media_type=payload.content_type)


# --- the web page ----------------------------------------------------------------------------


async def home(request: Request) -> Response:
    service = _service(request)
    counts = await blocking(service.db.summary)
    return service.render("home.html", request, counts=counts)


def timeline(rows: list[IndexRow]) -> list[dict[str, Any]]:
    """Captures grouped by year, month and day, for the lookup page's calendar."""
    years: dict[str, dict[str, dict[str, list[IndexRow]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for row in sorted(rows, key=lambda r: r.ts):
        stamp = timestamp14(row.ts)
        years[stamp[:4]][stamp[4:6]][stamp[6:8]].append(row)
    return [
        {
            "year": y,
            "count": sum(len(d) for m in months.values() for d in m.values()),
            "months": [
                {"month": m, "days": [{"day": d, "rows": rows_} for d, rows_ in days.items()]}
                for m, days in months.items()
            ],
        }
        for y, months in years.items()
    ]


async def ui_lookup(request: Request) -> Response:
    service = _service(request)
    url = request.query_params.get("url", "").strip()
    match_type = request.query_params.get("match", "exact")
    if not url:
        return service.render("lookup.html", request, url="", match=match_type, years=[], rows=[])
    params = {"url": [url], "matchType": [match_type], "limit": ["5000"]}
    query = parse_query(params)
    rows = await blocking(lambda: list(run_query(service.db, query)))
    return service.render(
        "lookup.html",
        request,
        url=url,
        match=match_type,
        years=timeline(rows),
        rows=rows,
        timemap=memento.timemap_uri("", query.url),
    )


async def ui_search(request: Request) -> Response:
    service = _service(request)
    if not request.query_params.get("q", "").strip():
        return service.render("search.html", request, q="", hits=[], limit=20, offset=0)
    q, hits, limit, offset = await _search(request)
    return service.render("search.html", request, q=q, hits=hits, limit=limit, offset=offset)


async def login(request: Request) -> Response:
    service = _service(request)
    nxt = request.query_params.get("next", "/")
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/"
    if request.method == "GET":
        return service.render("login.html", request, next=nxt, failed=False)
    form = await request.form()
    token = str(form.get("token", ""))
    client = request.client.host if request.client else "unknown"
    try:
        session = service.gate.login(token, client)
    except LoginThrottled as exc:
        response = service.render(
            "login.html", request, status=429, next=nxt, failed=False, throttled=str(exc)
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AccessDenied:
        return service.render("login.html", request, status=401, next=nxt, failed=True)
    redirect = RedirectResponse(nxt, 303)
    redirect.set_cookie(
        SESSION_COOKIE, session, httponly=True, samesite="strict", max_age=12 * 3600
    )
    return redirect


async def logout(request: Request) -> Response:
    _service(request).gate.logout(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def _errors() -> dict[Any, Callable[..., Awaitable[Response]]]:
    async def bad(request: Request, exc: Exception) -> Response:
        return _error(request, 400, str(exc))

    async def conflict(request: Request, exc: Exception) -> Response:
        return _error(request, 409, str(exc))

    async def missing(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    async def denied(request: Request, exc: Exception) -> Response:
        return _error(request, 403, str(exc))

    async def tampered(request: Request, exc: Exception) -> Response:
        # Evidence that fails its own digests is never handed out; this is the service's
        # fault to report, not the caller's.
        log.error("integrity check failed, record refused: %s", exc)
        return _error(
            request, 500, f"{exc}. The record was not served.", title="integrity check failed"
        )

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("request failed: %s", exc)
        return _error(request, 500, f"failed: {exc}")

    return {
        HoldUnsupported: conflict,
        ConfigError: bad,
        NotFound: missing,
        AccessDenied: denied,
        IntegrityError: tampered,
        AttestError: failed,
    }


def build_app(service: Service) -> Starlette:
    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/cdx", cdx),
        Route("/_pywb/{secret}/cdx", pywb_cdx),
        Route("/_pywb/{secret}/warc/{key:path}", pywb_warc),
        Route("/search", search),
        Route("/api/capture/{uuid}", api_capture),
        Route(CAPTURE_PREFIX + "{uuid}/replay", capture_replay, methods=["GET", "HEAD"]),
        Route(CAPTURE_PREFIX + "{uuid}/raw", capture_raw, methods=["GET", "HEAD"]),
        Route(CAPTURE_PREFIX + "{uuid}/web/{rest:path}", capture_web, methods=["GET", "HEAD"]),
        Route(CAPTURE_PREFIX + "{uuid}/static/{path:path}", static),
        Route("/ui/lookup", ui_lookup),
        Route("/ui/search", ui_search),
        Route("/ui/capture/{uuid}", ui_capture),
        Route("/ui/capture/{uuid}/screenshot", ui_screenshot),
        Route("/web/timemap/link/{url:path}", timemap),
        Route("/web/{rest:path}", web, methods=["GET", "HEAD"]),
        Route("/static/{path:path}", static),
        *ACTION_ROUTES,
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RefuseControlCharacters), Middleware(GateMiddleware)],
        exception_handlers=_errors(),
    )
    app.state.service = service
    return app


@contextlib.contextmanager
def running_service(options: ServeOptions, port: int) -> Iterator[Service]:
    """Index, store, gate and (unless disabled) pywb, for the lifetime of the server; pywb and
    its folder are gone when this returns, however it returns."""
    from archive.serve.replay import PywbProcess, new_secret

    tokens = load_tokens(options.tokens_file)
    if not tokens and not is_loopback(options.host):
        raise ConfigError(
            f"--host {options.host}: serving beyond this machine needs tokens (set ATTEST_TOKENS "
            "to a tokens file); without tokens the service binds loopback only"
        )
    store = open_store(options.store_uri)
    db = IndexDB(options.index_url)
    secret = new_secret()
    pywb: PywbProcess | None = None
    try:
        if options.replay:
            venv = options.replay_venv or Path(__file__).resolve().parents[2] / ".venv-replay"
            internal = f"http://127.0.0.1:{port}/_pywb/{secret}"
            pywb = PywbProcess(venv, f"{internal}/cdx", f"{internal}/warc/")
            pywb.start()
        reach = Pywb(pywb.socket_path, pywb.secret) if pywb is not None else None
        yield Service(
            db,
            store,
            Gate(tokens),
            pywb=reach,
            internal_secret=secret,
            actions=options.actions,
            custody_attestor=options.custody_attestor,
        )
    finally:
        if pywb is not None:
            pywb.stop()
        db.close()


class Stopped(Exception):
    """SIGTERM or SIGINT once uvicorn has shut down (or before it started)."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def serve(options: ServeOptions) -> int:
    import uvicorn

    # One line per request to pywb is noise; failures are logged by the service itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn catches SIGTERM and SIGINT, shuts down, then raises the signal again with the
    # handler that was there before it: this one, so that the service's cleanup (pywb, its
    # folder) runs instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        with running_service(options, options.port) as service:
            _run(options, service, uvicorn)
    except Stopped as why:
        log.info("attest serve stopped (%s)", why)
    return 0


def _run(options: ServeOptions, service: Service, uvicorn: Any) -> None:
    app = build_app(service)

    async def seal_periodically() -> None:
        while True:
            await asyncio.sleep(SEAL_INTERVAL)
            with contextlib.suppress(AttestError):
                await asyncio.to_thread(service.custody.seal)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(seal_periodically())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(AttestError):
                await asyncio.to_thread(service.custody.seal)

    app.router.lifespan_context = lifespan
    print(
        f"attest serve: http://{options.host}:{options.port}/  "
        f"(CDX API /cdx, Memento /web/, {'replay by pywb' if service.pywb else 'no pywb'}, "
        f"{'open: loopback only' if service.gate.open else 'tokens required'})",
        flush=True,
    )
    uvicorn.run(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
