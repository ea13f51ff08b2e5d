"""``attest serve``: the retrieval service for investigators.

Routes (all read-only; every one needs the ``investigator`` role when tokens are configured):

===============================  =================================================================
``/cdx``                         CDX server API (pywb's parameters and outputs, OutbackCDX collapse)
``/web/timemap/link/<url>``      Memento TimeMap (application/link-format)
``/web/<url>``                   Memento TimeGate (302 to the memento closest to Accept-Datetime)
``/web/<14 digits>[mod_]/<url>`` a memento: replayed by pywb, with Memento-Datetime and Link
``/search?q=``                   full-text search (JSON; the web page at ``/ui/search``)
``/api/capture/<uuid>``          one capture's metadata (JSON): hashes, IP, TLS chain, derivatives
``/``, ``/ui/...``               the web page: search, URL lookup with a timeline, capture pages
``/login``, ``/logout``          session cookie from a token, for the web page
===============================  =================================================================

Every read of a capture (replay, metadata page, screenshot) is logged in the custody log with
the caller's actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
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

from archive.cdxj import REPLAYABLE, IndexRow, surt_key
from archive.cdxquery import (
    MAX_LIMIT,
    QueryError,
    field_values,
    formatter,
    parse_query,
    run_query,
)
from archive.custody import CustodyLog
from archive.dates import http_date, iso, parse_http_date, parse_when, timestamp14
from archive.errors import AccessDenied, AttestError, ConfigError, NotFound
from archive.indexdb import IndexDB
from archive.retrieve import load_payload
from archive.serve import memento
from archive.serve.auth import SESSION_COOKIE, Gate, Principal, is_loopback, load_tokens
from archive.store import Store, open_store

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
_MEMENTO_PATH = re.compile(r"(\d{1,14})([a-z]{2}_)?/(.+)", re.S)
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade", "content-length"}  # fmt: skip
_UUID = re.compile(r"[0-9a-fA-F-]{36}")
SEAL_INTERVAL = 600.0


@dataclass
class ServeOptions:
    host: str
    port: int
    index_url: str
    store_uri: str
    tokens_file: Path | None = None
    replay: bool = True
    replay_venv: Path | None = None
    s3_endpoint: str | None = None
    home: Path | None = None


class Service:
    """What the routes share: the index, the store, the custody log, the gate, pywb's URL."""

    def __init__(self, db: IndexDB, store: Store, gate: Gate, *, pywb_url: str | None,
                 internal_secret: str) -> None:  # fmt: skip
        self.db = db
        self.store = store
        self.gate = gate
        self.custody = CustodyLog(db, store)
        self.pywb_url = pywb_url
        self.internal_secret = internal_secret
        self._client: Any = None
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        self.jinja = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )
        self.jinja.filters["iso"] = iso
        self.jinja.filters["ts14"] = timestamp14
        self.jinja.filters["urlq"] = lambda v: quote(str(v), safe="")

    async def client(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=60.0, follow_redirects=False)
        return self._client

    def read_event(self, principal: Principal, row: IndexRow, via: str) -> None:
        self.custody.append(
            "read",
            row.record_id,
            {"url": row.url, "warc": self.store.object_uri(row.warc_key), "offset": row.offset,
             "via": via},
            actor=principal.actor,
        )  # fmt: skip

    def render(
        self, name: str, request: Request, status: int = 200, **context: Any
    ) -> HTMLResponse:
        principal = request.scope.get("attest.principal")
        page = self.jinja.get_template(name).render(
            request=request, principal=principal, open=self.gate.open, **context
        )
        return HTMLResponse(page, status_code=status)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _principal(request: Request) -> Principal:
    principal: Principal = request.scope["attest.principal"]
    return principal


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_html(request):
        return _service(request).render(
            "error.html", request, status, status_code=status, message=message
        )
    return PlainTextResponse(message + "\n", status_code=status)


def _wants_html(request: Request) -> bool:
    return request.url.path == "/" or request.url.path.startswith("/ui/")


class GateMiddleware(BaseHTTPMiddleware):
    """Authenticates every request but the login page and pywb's internal index path."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        service = _service(request)
        if path in ("/login", "/healthz") or path.startswith("/_pywb/"):
            return await call_next(request)
        client = request.client.host if request.client else "unknown"
        try:
            request.scope["attest.principal"] = service.gate.principal(
                request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE), client
            )
        except AccessDenied as exc:
            if _wants_html(request) and not request.headers.get("authorization"):
                # Back to the page asked for, query included (a lookup's URL, a search's words).
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='/')}", 303)
            # 403 only for a known caller whose role falls short; no or a bad credential is 401.
            return PlainTextResponse(
                f"{exc}\n",
                status_code=403 if "may not" in str(exc) else 401,
                headers={"WWW-Authenticate": 'Bearer realm="attest"'},
            )
        return await call_next(request)


# --- CDX API --------------------------------------------------------------------------------


def _params(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query, keep_blank_values=True, max_num_fields=64)


def _cdx_response(
    db: IndexDB, params: dict[str, list[str]], *, allow_extra: bool = False
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
    if not body:
        if query.page:
            # pywb's answer past the last page; paging clients stop on it.
            return PlainTextResponse(f"page {query.page} is past the last page\n", status_code=400)
        # pywb's "no captures" answer, which CDX clients (cdx_toolkit) read as an empty result.
        return JSONResponse({"message": f"No Captures found for: {query.url}"}, status_code=404)
    return Response(body, media_type=content_type)


async def cdx(request: Request) -> Response:
    try:
        return _cdx_response(_service(request).db, _params(request))
    except ValueError as exc:  # parse_qs: too many fields
        return PlainTextResponse(f"bad query string: {exc}\n", status_code=400)


async def pywb_cdx(request: Request) -> Response:
    """The index as pywb asks for it: loopback only, with the per-process secret in the path."""
    service = _service(request)
    client = request.client.host if request.client else ""
    if request.path_params["secret"] != service.internal_secret or not is_loopback(client):
        return PlainTextResponse("not found\n", status_code=404)
    params = {k: v for k, v in _params(request).items() if v and v[0] != ""}
    if params.get("matchType") == ["exact"] and "closest" in params:
        params.setdefault("sort", ["closest"])
    return _cdx_response(service.db, params, allow_extra=True)


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
    rows = _rows_for(service.db, url)
    if not rows:
        return PlainTextResponse(f"no capture of {url}\n", status_code=404)
    return Response(
        memento.timemap(_base(request), url, rows), media_type="application/link-format"
    )


async def web(request: Request) -> Response:
    rest = request.path_params["rest"]
    match = _MEMENTO_PATH.fullmatch(rest)
    if match:
        return await _memento(request, match.group(1), match.group(2) or "", match.group(3))
    if rest.startswith("*/"):
        return RedirectResponse(f"/ui/lookup?url={quote(_target(request, rest[2:]), safe='')}", 302)
    return await _timegate(request, _target(request, rest))


async def _timegate(request: Request, url: str) -> Response:
    service = _service(request)
    rows = _rows_for(service.db, url)
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


async def _memento(request: Request, stamp: str, modifier: str, rest: str) -> Response:
    service = _service(request)
    url = _target(request, rest)
    try:
        target = parse_when(stamp, bound="low", what="timestamp")
    except ConfigError as exc:
        return PlainTextResponse(f"{exc}\n", status_code=400)
    rows = _rows_for(service.db, url)
    if not rows:
        return PlainTextResponse(f"no capture of {url}\n", status_code=404)
    best = memento.closest(rows, target)
    base = _base(request)
    exact = timestamp14(best.ts)
    if exact != stamp:
        # A URI-M names one memento: send the client to the exact one.
        location = f"{base}{memento.PREFIX}/{exact}{modifier}/{url}"
        return Response(status_code=302, headers={"Location": location, "Vary": "accept-datetime"})
    mementos = memento.distinct_mementos(rows)
    headers = {
        "Memento-Datetime": http_date(best.ts),
        "Link": memento.link_header(base, url, memento=best, first=mementos[0], last=mementos[-1]),
    }
    if service.pywb_url is None:
        return await _plain_memento(request, best, headers)
    response = await _proxy(request, headers)
    if response.status_code == 200:
        await asyncio.to_thread(
            service.read_event, _principal(request), best, f"replay {modifier or 'frame'}"
        )
    return response


async def _plain_memento(request: Request, row: IndexRow, headers: dict[str, str]) -> Response:
    """Without pywb: the archived payload as it was sent (``id_`` replay), no rewriting."""
    service = _service(request)
    payload = await asyncio.to_thread(load_payload, service.store, row)
    out = dict(headers)
    status = 200
    if payload.http is not None:
        status = payload.http.status or 200
        for name in ("content-type", "content-encoding", "location"):
            if name in payload.http.headers:
                out[name] = payload.http.headers[name]
    else:
        out["content-type"] = payload.content_type
    await asyncio.to_thread(service.read_event, _principal(request), row, "replay id_ (no pywb)")
    return Response(payload.body, status_code=status, headers=out)


async def _proxy(request: Request, extra: dict[str, str] | None = None) -> Response:
    service = _service(request)
    assert service.pywb_url is not None
    client = await service.client()
    url = (
        service.pywb_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    )
    headers = [
        (k, v)
        for k, v in request.headers.items()
        if k.lower() not in _HOP | {"authorization", "cookie"}
    ]
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
    if _service(request).pywb_url is None:
        return PlainTextResponse("replay is not running\n", status_code=404)
    return await _proxy(request)


# --- search and metadata ---------------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= high:
        raise QueryError(f"{name}: {raw[:20]!r} must be a whole number from 0 to {high}")
    return int(raw)


def _search(request: Request) -> tuple[str, list[dict[str, Any]], int, int]:
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
    hits = _service(request).db.search(q, limit=limit, offset=offset)
    return q, [
        {"url": h.url, "datetime": iso(h.ts), "timestamp": timestamp14(h.ts), "snippet": h.snippet,
         "record_id": h.record_id, "capture": _uuid(h.record_id)}
        for h in hits
    ], limit, offset  # fmt: skip


async def search(request: Request) -> Response:
    q, hits, limit, offset = _search(request)
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


def capture_details(service: Service, row: IndexRow) -> dict[str, Any]:
    """Everything known about one capture: index fields, WARC, TLS chain, linked records."""
    values = field_values(row)
    values["datetime"] = iso(row.ts)
    details: dict[str, Any] = {
        "capture": _uuid(row.record_id),
        **values,
        "payload_sha256": row.digest,
        "block_sha256": row.block_digest,
        "warc": service.store.object_uri(row.warc_key),
        "replay": f"{memento.PREFIX}/{timestamp14(row.ts)}/{row.url}",
        "raw": f"{memento.PREFIX}/{timestamp14(row.ts)}id_/{row.url}",
    }
    linked = service.db.concurrent_with(row.record_id)
    details["linked"] = [
        {"record_type": r.record_type, "url": r.url, "mime": r.mime, "record_id": r.record_id,
         "capture": _uuid(r.record_id), "sha256": r.block_digest}
        for r in linked
    ]  # fmt: skip
    for r in linked:
        if r.record_type == "metadata" and "attest-page" in r.mime:
            with contextlib.suppress(AttestError, ValueError):
                details["page"] = json.loads(load_payload(service.store, r).body)
        if r.url.startswith("urn:view:"):
            details["screenshot"] = _uuid(r.record_id)
    host = row.surt.split(")/")[0] + ")/"
    chain = service.db.tls_chain_for(row.run_id, host) if row.url.startswith("https:") else None
    if chain is not None:
        with contextlib.suppress(AttestError, ValueError):
            details["tls"] = json.loads(load_payload(service.store, chain).body)
    warc = service.db.warc(row.warc_key)
    if warc is not None:
        details["warc_sha256"] = warc["sha256"]
        info = json.loads(warc["warcinfo"] or "{}")
        details["warcinfo"] = info
    return details


async def api_capture(request: Request) -> Response:
    service = _service(request)
    row = _row_by_uuid(service.db, request.path_params["uuid"])
    details = await asyncio.to_thread(capture_details, service, row)
    await asyncio.to_thread(service.read_event, _principal(request), row, "capture metadata")
    return JSONResponse(details)


async def ui_capture(request: Request) -> Response:
    service = _service(request)
    row = _row_by_uuid(service.db, request.path_params["uuid"])
    details = await asyncio.to_thread(capture_details, service, row)
    custody = service.custody.for_object(row.record_id)
    await asyncio.to_thread(service.read_event, _principal(request), row, "capture page")
    return service.render("capture.html", request, row=row, d=details, custody=custody)


async def ui_screenshot(request: Request) -> Response:
    service = _service(request)
    row = _row_by_uuid(service.db, request.path_params["uuid"])
    if not row.url.startswith("urn:view:"):
        raise NotFound(f"capture {request.path_params['uuid']} is not a screenshot")
    payload = await asyncio.to_thread(load_payload, service.store, row)
    await asyncio.to_thread(service.read_event, _principal(request), row, "screenshot")
    return Response(payload.body, media_type=payload.content_type)


# --- the web page ----------------------------------------------------------------------------


async def home(request: Request) -> Response:
    service = _service(request)
    return service.render("home.html", request, counts=service.db.summary())


def timeline(rows: list[IndexRow]) -> list[dict[str, Any]]:
    """Captures grouped by year, month and day, for the lookup page's calendar."""
    years: dict[str, dict[str, dict[str, list[IndexRow]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for row in sorted(rows, key=lambda r: r.ts):
        stamp = timestamp14(row.ts)
        years[stamp[:4]][stamp[4:6]][stamp[6:8]].append(row)
    return [
        {"year": y, "count": sum(len(d) for m in months.values() for d in m.values()),
         "months": [{"month": m, "days": [{"day": d, "rows": rows_} for d, rows_ in days.items()]}
                    for m, days in months.items()]}
        for y, months in years.items()
    ]  # fmt: skip


async def ui_lookup(request: Request) -> Response:
    service = _service(request)
    url = request.query_params.get("url", "").strip()
    match_type = request.query_params.get("match", "exact")
    if not url:
        return service.render("lookup.html", request, url="", match=match_type, years=[], rows=[])
    params = {"url": [url], "matchType": [match_type], "limit": ["5000"]}
    query = parse_query(params)
    rows = list(run_query(service.db, query))
    return service.render(
        "lookup.html", request, url=url, match=match_type, years=timeline(rows), rows=rows,
        timemap=memento.timemap_uri("", query.url),
    )  # fmt: skip


async def ui_search(request: Request) -> Response:
    service = _service(request)
    if not request.query_params.get("q", "").strip():
        return service.render("search.html", request, q="", hits=[], limit=20, offset=0)
    q, hits, limit, offset = _search(request)
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
    try:
        session = service.gate.login(token)
    except AccessDenied:
        return service.render("login.html", request, status=401, next=nxt, failed=True)
    response = RedirectResponse(nxt, 303)
    response.set_cookie(
        SESSION_COOKIE, session, httponly=True, samesite="strict", max_age=12 * 3600
    )
    return response


async def logout(request: Request) -> Response:
    _service(request).gate.logout(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def _errors() -> dict[Any, Callable[..., Any]]:
    async def bad(request: Request, exc: Exception) -> Response:
        return _error(request, 400, str(exc))

    async def missing(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    async def denied(request: Request, exc: Exception) -> Response:
        return _error(request, 403, str(exc))

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("request failed: %s", exc)
        return _error(request, 500, f"failed: {exc}")

    return {ConfigError: bad, NotFound: missing, AccessDenied: denied, AttestError: failed}


def build_app(service: Service) -> Starlette:
    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/cdx", cdx),
        Route("/_pywb/{secret}/cdx", pywb_cdx),
        Route("/search", search),
        Route("/api/capture/{uuid}", api_capture),
        Route("/ui/lookup", ui_lookup),
        Route("/ui/search", ui_search),
        Route("/ui/capture/{uuid}", ui_capture),
        Route("/ui/capture/{uuid}/screenshot", ui_screenshot),
        Route("/web/timemap/link/{url:path}", timemap),
        Route("/web/{rest:path}", web, methods=["GET", "HEAD"]),
        Route("/static/{path:path}", static),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(GateMiddleware)], exception_handlers=_errors()
    )
    app.state.service = service
    return app


@contextlib.contextmanager
def running_service(options: ServeOptions, port: int) -> Iterator[Service]:
    """Index, store, gate and (unless disabled) pywb, for the lifetime of the server."""
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
            pywb = PywbProcess(
                venv, f"http://127.0.0.1:{port}/_pywb/{secret}/cdx", options.store_uri,
                s3_endpoint=options.s3_endpoint,
            )  # fmt: skip
            pywb.start()
        yield Service(db, store, Gate(tokens), pywb_url=pywb.base_url if pywb else None,
                      internal_secret=secret)  # fmt: skip
    finally:
        if pywb is not None:
            pywb.stop()
        db.close()


def serve(options: ServeOptions) -> int:
    import uvicorn

    with running_service(options, options.port) as service:
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
                    service.custody.seal()

        app.router.lifespan_context = lifespan
        print(f"attest serve: http://{options.host}:{options.port}/  "
              f"(CDX API /cdx, Memento /web/, {'replay by pywb' if service.pywb_url else 'no pywb'}, "
              f"{'open: loopback only' if service.gate.open else 'tokens required'})", flush=True)  # fmt: skip
        uvicorn.run(app, host=options.host, port=options.port, log_level="warning",
                    access_log=False, lifespan="on")  # fmt: skip
    return 0
