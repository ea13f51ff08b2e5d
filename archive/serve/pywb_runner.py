"""pywb for ``attest serve``: a program run by the replay venv's Python, never imported by attest.

pywb 2.10 cannot share attest's venv (see :mod:`archive.serve.replay`), so ``attest serve``
starts ``<replay venv>/bin/python -I pywb_runner.py`` with its settings as one JSON object on
stdin (nothing secret is written to disk) and talks to it over a Unix socket in a private (0700)
folder that only attest serve knows:

- pywb has **no TCP port**. ``wayback`` would listen on one, and pywb's ``FrontEndApp`` starts
  its own index-and-record server (WarcServer) on a second, localhost, port that anyone on the
  machine could ask for records; here the front end calls the WarcServer in-process instead.
- Every request must carry the per-process secret (``X-Attest-Secret``), or gets 403.
- ``X-Attest-Prefix: /capture/<uuid>`` becomes the WSGI ``SCRIPT_NAME``, so the links pywb
  writes into an exact capture's replay (its frame, the page's subresources) keep that prefix
  and come back through attest's exact-capture route.
- ``X-Attest-Pin: <record id>`` goes into pywb's index query as ``pin``: attest's index answers
  a replay lookup with that one record, the one attest chose and verified, so pywb replays
  exactly it (and never falls back to another capture of the URL).
- On SIGTERM or SIGINT (the kernel sends SIGTERM when attest serve dies: PR_SET_PDEATHSIG) it
  stops serving, removes its folder (socket included) and exits.

Settings (stdin): ``socket``, ``folder``, ``secret``, ``cdx_api`` (attest's internal CDX URL),
``archive_paths`` (the store root), ``collection``.

It is type-checked in the app venv, which has no pywb: the replay venv's modules are imported
by name (typed ``Any``); tests/e2e/test_serve.py runs it for real.
"""

from __future__ import annotations

import hmac
import importlib
import io
import json
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib.metadata import version
from typing import Any
from urllib.parse import unquote, urlsplit

#: Where pywb's front end sends its WarcServer requests (``http://localhost:<port>/...`` in
#: pywb); they are answered in-process (a reserved name: it never resolves).
IN_PROCESS = "http://warcserver.invalid/"
#: The pywb release whose front end this program extends (its WarcServer paths, GeventServer,
#: RewriterApp.render_content and get_upstream_url); another one is refused at start.
PYWB_RELEASE = "2.10."
_PREFIX = re.compile(r"/capture/[0-9a-f-]{36}")
_PIN = re.compile(r"<urn:uuid:[0-9a-f-]{36}>")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class _BodyReader(io.RawIOBase):
    """A WSGI answer's body iterator as the file-like ``raw`` of a ``requests`` response."""

    def __init__(self, first: bytes, rest: Iterator[bytes], closer: Any) -> None:
        self._buffer = first
        self._rest = rest
        self._closer = closer

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None else size
        while want < 0 or len(self._buffer) < want:
            chunk = next(self._rest, None)
            if chunk is None:
                break
            self._buffer += chunk
        if want < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:want], self._buffer[want:]
        return data

    def readinto(self, target: Any) -> int:
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and hasattr(self._closer, "close"):
            self._closer.close()
        super().close()


def in_process_session(app: WsgiApp) -> Any:
    """A ``requests`` session that answers ``IN_PROCESS`` URLs by calling ``app`` and refuses
    every other URL (pywb never fetches from the live web here)."""
    requests: Any = importlib.import_module("requests")
    base_adapter: Any = importlib.import_module("requests.adapters").BaseAdapter
    case_insensitive: Any = importlib.import_module("requests.structures").CaseInsensitiveDict

    class WsgiAdapter(base_adapter):  # type: ignore[misc]
        def send(self, request: Any, stream: bool = False, **_: Any) -> Any:
            url = urlsplit(request.url)
            body = request.body
            if body is None:
                data = b""
            elif hasattr(body, "read"):
                data = body.read()
            else:
                data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
            environ: Environ = {
                "REQUEST_METHOD": request.method,
                "SCRIPT_NAME": "",
                "PATH_INFO": unquote(url.path, encoding="latin-1"),
                "QUERY_STRING": url.query,
                "REQUEST_URI": url.path + (f"?{url.query}" if url.query else ""),
                "SERVER_NAME": "localhost",
                "SERVER_PORT": "0",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "CONTENT_LENGTH": str(len(data)),
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(data),
                "wsgi.errors": sys.stderr,
                "wsgi.multithread": False,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
            for name, value in request.headers.items():
                key = name.upper().replace("-", "_")
                if key == "CONTENT_TYPE":
                    environ["CONTENT_TYPE"] = value
                elif key != "CONTENT_LENGTH":
                    environ[f"HTTP_{key}"] = value
            started: dict[str, Any] = {}

            def start_response(
                status: str, headers: list[tuple[str, str]], _exc: Any = None
            ) -> Any:
                started["status"], started["headers"] = status, headers
                return lambda _data: None

            result = app(environ, start_response)
            chunks = iter(result)
            first = b"" if started else next(chunks, b"")  # start_response may come lazily
            response = requests.Response()
            code, _, reason = started["status"].partition(" ")
            response.status_code = int(code)
            response.reason = reason
            response.headers = case_insensitive(started["headers"])
            response.raw = _BodyReader(first, chunks, result)
            response.url = request.url
            response.request = request
            response.connection = self
            if not stream:
                _ = response.content
            return response

        def close(self) -> None:
            pass

    class Refuse(base_adapter):  # type: ignore[misc]
        def send(self, request: Any, **_: Any) -> Any:
            raise requests.ConnectionError(f"replay may not fetch {request.url}")

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount("http://", Refuse())
    session.mount("https://", Refuse())
    session.mount(IN_PROCESS, WsgiAdapter())
    return session


def build_app(settings: dict[str, Any]) -> WsgiApp:
    """pywb's front end over attest's index and store, its WarcServer called in-process."""
    frontend: Any = importlib.import_module("pywb.apps.frontendapp")
    rewriter: Any = importlib.import_module("pywb.apps.rewriterapp")

    class NoListener:
        """Stands in for the GeventServer FrontEndApp would start for its WarcServer."""

        def __init__(self, app: WsgiApp, port: int = 0, **_: Any) -> None:
            self.app = app
            self.port = 0

    class PinningRewriter(rewriter.RewriterApp):  # type: ignore[misc]
        """Passes the record attest pinned (X-Attest-Pin) to the replay's index lookup."""

        def render_content(self, wb_url: Any, kwargs: dict[str, Any], environ: Environ) -> Any:
            pin = environ.get("attest.pin", "")
            return super().render_content(wb_url, dict(kwargs, attest_pin=pin), environ)

        def get_upstream_url(
            self, wb_url: Any, kwargs: dict[str, Any], params: dict[str, Any]
        ) -> Any:
            pin = kwargs.get("attest_pin")
            if pin and "closest" in params:  # the lookup of the record to replay
                params = dict(params, pin=pin)
            return super().get_upstream_url(wb_url, kwargs, params)

    class AttestFrontEnd(frontend.FrontEndApp):  # type: ignore[misc]
        REWRITER_APP_CLS = PinningRewriter
        # pywb fills in its WarcServer's port with ``%``; "%.0s" takes it and writes nothing.
        REPLAY_API = IN_PROCESS + "{coll}/resource/postreq%.0s"
        CDX_API = IN_PROCESS + "{coll}/index%.0s"

    frontend.GeventServer = NoListener
    collection = settings["collection"]
    app = AttestFrontEnd(
        config_file=os.path.join(settings["folder"], "config.yaml"),
        custom_config={
            "collections": {
                collection: {
                    "index": {
                        "type": "cdx",
                        "api_url": settings["cdx_api"]
                        + "?url={url}&closest={closest}&sort=closest&pin={pin}",
                        "replay_url": "",
                    },
                    "archive_paths": settings["archive_paths"],
                }
            },
        },
    )
    session = in_process_session(app.warcserver)
    rewriter.requests = session
    frontend.requests = session
    return guarded(app, settings["secret"])


def guarded(app: WsgiApp, secret: str) -> WsgiApp:
    """Only requests carrying the secret; attest's prefix and pin headers applied."""

    def serve(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        given = environ.pop("HTTP_X_ATTEST_SECRET", "")
        if not hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8")):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"pywb answers attest serve only\n"]
        prefix = environ.pop("HTTP_X_ATTEST_PREFIX", "")
        if prefix and _PREFIX.fullmatch(prefix):
            environ["SCRIPT_NAME"] = prefix
        pin = environ.pop("HTTP_X_ATTEST_PIN", "")
        if pin and _PIN.fullmatch(pin):
            environ["attest.pin"] = pin
        return app(environ, start_response)

    return serve


def main() -> int:
    found = version("pywb")
    if not found.startswith(PYWB_RELEASE):
        print(
            f"attest's replay needs pywb {PYWB_RELEASE}x (the replay venv has {found}): "
            "run ./setup.sh",
            flush=True,
        )
        return 2
    gevent: Any = importlib.import_module("gevent")
    importlib.import_module("gevent.monkey").patch_all()
    wsgi_server = importlib.import_module("gevent.pywsgi").WSGIServer
    handler = importlib.import_module("pywb.utils.geventserver").RequestURIWSGIHandler

    settings = json.loads(sys.stdin.read())
    folder = settings["folder"]

    def leave() -> None:
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(0)

    # gevent's handlers run even while the hub waits for connections.
    gevent.signal_handler(signal.SIGTERM, leave)
    gevent.signal_handler(signal.SIGINT, leave)
    os.chdir(folder)
    os.umask(0o077)
    app = build_app(settings)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(settings["socket"])
    listener.listen(128)
    server = wsgi_server(listener, app, handler_class=handler, log=None)
    print("pywb ready", flush=True)
    try:
        server.serve_forever()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
