"""Starting and stopping the recorder process, and asking it to write records.

The recorder runs as its own process (its CPU is on the other core from Scrapy's reactor, and
a crash of the crawler cannot take a half-written record with it). It inherits the run's spool
lock, so ``attest recover`` never seals files that a still-living recorder is writing.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from archive.errors import DiskFull, RecorderError
from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.protocol import (
    BATCH_CONTENT_TYPE,
    CAPTURE_ID_HEADER,
    PROXY_AUTH_HEADER,
    RECORD_METHOD,
    RECORDER_ERROR_HEADER,
    SOURCE_HEADER,
    proxy_credentials,
)

log = logging.getLogger(__name__)


def _read_event(stream: IO[bytes], timeout: float) -> dict[str, Any]:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise RecorderError(f"recorder did not answer within {timeout:.0f} s")
            chunk = os.read(stream.fileno(), 1)
            if not chunk:
                raise RecorderError("recorder exited before it was ready (see recorder.log)")
            line += chunk
    finally:
        sel.close()
    try:
        event: dict[str, Any] = json.loads(line)
    except ValueError as exc:
        raise RecorderError(f"recorder said something unexpected: {line[:200]!r}") from exc
    return event


class RecorderProcess:
    """One recorder subprocess for one run."""

    def __init__(
        self, config: RecorderConfig, *, lock_fd: int | None = None, python: str | None = None
    ) -> None:
        self.config = config
        self.lock_fd = lock_fd
        self.python = python or sys.executable
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.ca_file: str | None = None
        self.closed_event: dict[str, Any] | None = None

    @property
    def spool(self) -> Path:
        return Path(self.config.spool)

    @property
    def proxy_url(self) -> str:
        if self.port is None:
            raise RecorderError("recorder not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def secret(self) -> str | None:
        """The run's secret: the password of the proxy credentials every client must send."""
        return self.config.secret

    def start(self, timeout: float = 60) -> None:
        config_path = self.spool / "recorder.json"
        self.config.parent_pid = os.getpid()
        self.config.dump(config_path)
        log_file = open(self.spool / "recorder.log", "ab")  # noqa: SIM115 - owned by the child
        env = dict(os.environ)
        # The checkout or the installed package: make sure the child imports the same code.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if sys.version_info < (3, 12):
            # warcprox imports rethinkdb, which imports distutils; setuptools' stand-in for it
            # drags in pkg_resources, half of the recorder's start-up CPU. 3.11 has its own.
            env.setdefault("SETUPTOOLS_USE_DISTUTILS", "stdlib")
        try:
            self.proc = subprocess.Popen(
                [self.python, "-m", "crawlers.recorder", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                pass_fds=(self.lock_fd,) if self.lock_fd is not None else (),
            )
        finally:
            log_file.close()
        assert self.proc.stdout is not None
        event = _read_event(self.proc.stdout, timeout)
        if event.get("event") != "ready":
            raise RecorderError(f"recorder failed to start: {event}")
        self.port = int(event["port"])
        self.ca_file = event.get("ca")

    def stop(self, timeout: float = 120) -> dict[str, Any]:
        """Ask the recorder to finish in-flight exchanges and close its files."""
        proc = self.proc
        if proc is None:
            return {}
        if proc.poll() is None:
            proc.terminate()
        assert proc.stdout is not None
        try:
            event = _read_event(proc.stdout, timeout)
        except RecorderError:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.poll() is not None:
                proc.stdout.close()
        proc.wait(timeout)
        proc.stdout.close()
        self.closed_event = event
        return event

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RecordClient:
    """Asks the recorder to write records over one persistent connection per thread.

    ``secret``: the run's, when its recorder has one (each request then carries the run's
    proxy credentials, naming the source); None names the source by ``Attest-Source``.
    """

    def __init__(self, port: int, timeout: float = 30, *, secret: str | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.secret = secret
        self._local = threading.local()

    def close(self) -> None:
        """Close this thread's connection (the next request opens a new one)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _source_headers(self, source: str) -> dict[str, str]:
        if self.secret is None:
            return {SOURCE_HEADER: source}
        return {PROXY_AUTH_HEADER: proxy_credentials(source, self.secret)}

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def write(
        self,
        source: str,
        target_uri: str,
        data: bytes,
        content_type: str,
        *,
        record_type: str = "metadata",
        concurrent_to: str | None = None,
        refers_to: str | None = None,
    ) -> str:
        """Have the recorder write a ``metadata``/``resource`` record; returns its record id."""
        headers = {
            **self._source_headers(source),
            "WARC-Type": record_type,
            "Content-Type": content_type,
            "Content-Length": str(len(data)),
        }
        if concurrent_to:
            headers["WARC-Concurrent-To"] = concurrent_to
        if refers_to:
            headers["WARC-Refers-To"] = refers_to
        status, _text, resp = self._request(target_uri, data, headers)
        if status == 507 or resp.getheader(RECORDER_ERROR_HEADER) == "disk_full":
            raise DiskFull("recorder spool is full")
        record_id: str | None = resp.getheader(CAPTURE_ID_HEADER)
        if status != 201 or not record_id:
            raise RecorderError(f"recorder refused a record for {target_uri}: HTTP {status}")
        return record_id

    def write_batch(self, items: list[dict[str, Any]]) -> list[str]:
        """Have the recorder write several text records in one request; returns their ids.

        Each item: ``target``, ``content_type``, ``data`` (text), and optionally ``source``,
        ``type``, ``concurrent_to``, ``refers_to``.
        """
        body = json.dumps(items).encode("utf-8")
        headers = {
            **self._source_headers(str(items[0].get("source") or "adhoc") if items else "adhoc"),
            "Content-Type": BATCH_CONTENT_TYPE,
            "Content-Length": str(len(body)),
        }
        status, text, _ = self._request("urn:attest:batch", body, headers)
        if status == 507:
            raise DiskFull("recorder spool is full")
        if status != 201:
            raise RecorderError(f"recorder refused a record batch: HTTP {status}: {text[:200]!r}")
        ids: list[str] = json.loads(text)
        return ids

    def _request(self, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, Any]:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(RECORD_METHOD, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise RecorderError(
                        f"recorder on port {self.port} did not answer: {exc}"
                    ) from exc
        if resp.will_close:
            conn.close()
            self._local.conn = None
        return resp.status, data, resp


def write_record(
    port: int,
    source: str,
    target_uri: str,
    data: bytes,
    content_type: str,
    *,
    secret: str | None = None,
    **kwargs: Any,
) -> str:
    """One record, on a connection of its own (see :class:`RecordClient` for many)."""
    return RecordClient(port, secret=secret).write(source, target_uri, data, content_type, **kwargs)
