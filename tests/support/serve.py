"""``attest serve`` started for real, in a subprocess, as an investigator would start it."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import psutil

from support.cli import ROOT

START_TIMEOUT = 90.0


class Answer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AttestServer:
    """``with AttestServer(env) as server: server.get("/cdx?url=...")``"""

    def __init__(self, env: dict[str, str], *, replay: bool = True, workdir: Path) -> None:
        self.env = env
        self.replay = replay
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "cli", "serve", "--port", str(self.port)]
        if not self.replay:
            args.append("--no-replay")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"attest serve exited: {self.log_tail()}")
            with contextlib.suppress(OSError):
                if self.get("/healthz").status == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"attest serve did not start: {self.log_tail()}")

    def log_tail(self, size: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def get(
        self, path: str, headers: dict[str, str] | None = None, *, method: str = "GET",
        body: bytes | None = None,
    ) -> Answer:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def post(self, path: str, data: object, headers: dict[str, str] | None = None) -> Answer:
        """A JSON POST (``Content-Type: application/json``)."""
        import json

        return self.get(
            path, {"Content-Type": "application/json", **(headers or {})}, method="POST",
            body=json.dumps(data).encode("utf-8"),
        )  # fmt: skip

    def pywb(self) -> psutil.Process:
        """The pywb process ``attest serve`` started (its only child running pywb)."""
        assert self.proc is not None
        found = [
            p for p in psutil.Process(self.proc.pid).children(recursive=True)
            if any(name in part for part in p.cmdline() for name in ("pywb_runner", "wayback"))
        ]  # fmt: skip
        assert len(found) == 1, f"expected one pywb process, found {found}"
        return found[0]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def __enter__(self) -> AttestServer:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
