"""Replaying stored WARCs with pywb, the way a reader of the evidence would see them.

pywb 2.10.0 cannot live in the app venv (its ``brotlipy`` shadows Scrapy's ``brotli``; see
shared/STACK-NOTES.md, section 1b), so it runs from a venv of its own: ``.venv-replay`` at the
checkout's root, made by ``./setup.sh``, or the venv named by ``ATTEST_REPLAY_VENV``. Only its
command-line tools are used, in subprocesses: ``wb-manager`` builds the collection, ``wayback``
serves it on 127.0.0.1.

:class:`PywbReplay` is a context manager::

    with PywbReplay(warcs, workdir) as replay:
        status, headers, body = replay.get("http://127.0.0.1:8000/a.html", "20240513080000")

``get()`` asks for raw (``id_``) replay by default: the archived payload with its original
headers, no rewriting; ``modifier=""`` gives the rewritten (framed) page, ``"mp_"`` the
rewritten page itself.

attest's ``metadata`` records (``application/json; profile=attest-page`` and ``-outcome``) carry
the page's own URL as ``WARC-Target-URI``. pywb's indexer keeps every record type but
``request``, ``warcinfo`` and ``application/warc-fields`` metadata, so it would list those JSON
records as captures of the page, and a timegate or nearby-timestamp request for the page would
be answered with the JSON. They are therefore left out of the index unless
``index_metadata=True``. ``resource`` records (``urn:view:``, ``urn:dom:``, ``urn:text:``) index
and replay fine under their own URNs, and stay in.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlencode

import pytest
from warcio.archiveiterator import ArchiveIterator

#: The replay venv made by ./setup.sh, unless ATTEST_REPLAY_VENV names another.
DEFAULT_VENV = Path(__file__).resolve().parents[2] / ".venv-replay"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
TOOLS = ("wb-manager", "wayback")


class Replayed(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def replay_venv() -> Path:
    """The pywb venv's directory; the test fails (not skips) when it or a tool is missing."""
    venv = Path(os.environ.get("ATTEST_REPLAY_VENV") or DEFAULT_VENV)
    missing = [tool for tool in TOOLS if not os.access(venv / "bin" / tool, os.X_OK)]
    if missing:
        pytest.fail(
            f"the pywb replay venv {venv} lacks {', '.join(missing)}: run ./setup.sh "
            "(it makes .venv-replay with pywb 2.10.0), or set ATTEST_REPLAY_VENV to such a venv",
            pytrace=False,
        )
    return venv


def warc_timestamp(value: str | datetime) -> str:
    """A 14-digit replay timestamp from a ``WARC-Date`` (microseconds dropped) or a datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.strftime("%Y%m%d%H%M%S")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM if pytest dies without tearing down (Linux only)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def metadata_offsets(warcs: Iterable[Path]) -> set[tuple[str, int]]:
    """(file name, offset) of every ``metadata`` record, as pywb's index names them."""
    found: set[tuple[str, int]] = set()
    for path in warcs:
        with open(path, "rb") as fh:
            records = ArchiveIterator(fh, no_record_parse=True)
            for record in records:
                if record.rec_type == "metadata":
                    found.add((path.name, records.get_record_offset()))
    return found


class PywbReplay:
    """A pywb collection of the given WARCs, served by ``wayback`` on 127.0.0.1."""

    def __init__(
        self,
        warcs: Iterable[Path],
        workdir: Path,
        *,
        collection: str = "attest",
        index_metadata: bool = False,
        venv: Path | None = None,
    ) -> None:
        self.warcs = [Path(p) for p in warcs]
        if not self.warcs:
            raise ValueError("no WARC to replay")
        names = [p.name for p in self.warcs]
        if len(set(names)) != len(names):
            raise ValueError(f"WARC file names must be unique in a collection: {names}")
        self.workdir = workdir
        self.collection = collection
        self.index_metadata = index_metadata
        self.venv = venv or replay_venv()
        self.root = workdir / "pywb"
        self.log_path = workdir / "wayback.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # --- the collection ---------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.root / "collections" / self.collection / "indexes" / "index.cdxj"

    def _tool(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def _run(self, *args: str) -> None:
        proc = subprocess.run(
            [self._tool("wb-manager"), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"wb-manager {' '.join(args[:2])} failed (rc={proc.returncode}):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
            )

    def build(self) -> None:
        """``wb-manager init`` + ``wb-manager add``: pywb copies the WARCs and indexes them."""
        self.root.mkdir(parents=True, exist_ok=True)
        # An explicit (default) config, so wayback does not look for one in the cwd and warn.
        (self.root / "config.yaml").write_text("collections_root: collections\n")
        self._run("init", self.collection)
        self._run("add", self.collection, *map(str, self.warcs))
        if not self.index_metadata:
            self._drop_metadata()

    def _drop_metadata(self) -> None:
        drop = metadata_offsets(self.warcs)
        kept = []
        for line in self.index_path.read_text(encoding="utf-8").splitlines(keepends=True):
            fields = json.loads(line.split(" ", 2)[2])
            if (fields["filename"], int(fields["offset"])) not in drop:
                kept.append(line)
        self.index_path.write_text("".join(kept), encoding="utf-8")

    def index(self) -> list[dict[str, Any]]:
        """The collection's CDXJ lines as dicts (``urlkey`` and ``timestamp`` added)."""
        entries = []
        for line in self.index_path.read_text(encoding="utf-8").splitlines():
            urlkey, timestamp, rest = line.split(" ", 2)
            entries.append({"urlkey": urlkey, "timestamp": timestamp, **json.loads(rest)})
        return entries

    # --- the server ---------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PywbReplay:
        self.build()
        self.port = _free_port()
        command = [self._tool("wayback"), "-b", "127.0.0.1", "-p", str(self.port)]
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"wayback exited at start-up:\n{self.log_tail()}")
            try:
                if self._request(f"/{self.collection}/", timeout=2).status == 200:
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        raise RuntimeError(
            f"wayback on {self.origin} not ready after {START_TIMEOUT:.0f} s "
            f"(last error: {last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> PywbReplay:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- asking it ----------------------------------------------------------------------
    def url_for(
        self, url: str, timestamp: str | datetime | None = None, modifier: str = "id_"
    ) -> str:
        """``<origin>/<coll>/<ts><modifier>/<url>``; no timestamp means the latest capture."""
        if isinstance(timestamp, datetime):
            timestamp = warc_timestamp(timestamp)
        ts = timestamp or ""
        prefix = f"{ts}{modifier}/" if ts or modifier else ""
        return f"{self.origin}/{self.collection}/{prefix}{url}"

    def get(
        self,
        url: str,
        timestamp: str | datetime | None = None,
        modifier: str = "id_",
        headers: dict[str, str] | None = None,
    ) -> Replayed:
        """One replay request; redirects are returned, not followed.

        Without an ``Accept-Encoding`` header pywb decodes a gzip/br payload for the client
        (the stored encoding moves to ``X-Archive-Orig-Content-Encoding``); with one that
        accepts it, ``id_`` returns the stored payload bytes and ``Content-Encoding``.
        """
        return self._request(self.url_for(url, timestamp, modifier)[len(self.origin) :], headers)

    def cdx(self, url: str, **params: str) -> list[dict[str, Any]]:
        """pywb's CDX server API for one URL (``output=json``), e.g. ``matchType="prefix"``."""
        query = urlencode({"url": url, "output": "json", **params})
        reply = self._request(f"/{self.collection}/cdx?{query}")
        if reply.status != 200:
            raise RuntimeError(f"CDX query for {url} answered {reply.status}: {reply.body[:500]!r}")
        return [json.loads(line) for line in reply.body.decode().splitlines() if line.strip()]

    def _request(
        self,
        target: str,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Replayed:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            # The original URL sits in the path as archived (already percent-encoded).
            conn.request("GET", target, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return Replayed(response.status, response.headers, body)
        finally:
            conn.close()
