"""A static file server on 127.0.0.1 that answers HTTP Range requests.

Python's ``http.server`` ignores ``Range``; web-archive clients in the browser (ReplayWeb.page)
read a WACZ piece by piece with Range requests. This serves a directory with Starlette's
``StaticFiles`` (single and multiple byte ranges, ``If-Range``, 416 for a range past the end)
under uvicorn, in a thread of the test process, and keeps a log of what was asked::

    with StaticServer(site) as server:
        server.base                      # http://127.0.0.1:PORT
        server.requests                  # [Served(method, path, range, status), ...]
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class Served(NamedTuple):
    method: str
    path: str
    range: str | None
    status: int


class _Log:
    """ASGI middleware: appends one :class:`Served` per HTTP request to ``log``."""

    def __init__(self, app: ASGIApp, log: list[Served]) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        asked = headers.get(b"range")

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.log.append(
                    Served(
                        scope["method"],
                        scope["path"],
                        asked.decode("latin-1") if asked else None,
                        message["status"],
                    )
                )
            await send(message)

        await self.app(scope, receive, logged)


class StaticServer:
    """Serves ``root`` (``index.html`` for a directory) on a free port of 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[Served] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        # Mounted in an app, so that a missing file is a 404 (StaticFiles alone raises, and
        # uvicorn answers 500).
        files = Starlette(routes=[Mount("/", app=StaticFiles(directory=root, html=True))])
        app = _Log(files, self.requests)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True,
            name=f"static-{self.port}",
        )  # fmt: skip

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._sock.close()
                raise RuntimeError(f"the static server for {self.root} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        self._sock.close()

    def __enter__(self) -> StaticServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
