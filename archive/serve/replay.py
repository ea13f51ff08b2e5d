"""pywb, run as its own process from its own venv, replaying from our index and store.

pywb cannot share a venv with Scrapy (a brotli module clash; see the stack notes), so the
service runs :mod:`archive.serve.pywb_runner` with the replay venv's Python. Only ``attest
serve`` can reach it: it listens on a Unix socket in a private (0700) temporary folder, opens no
TCP port, and answers only requests carrying a per-process secret, which it is given on stdin
(never written to disk). Its collection ``web`` reads our index and our records through the
service's internal paths (loopback only, with a second per-process secret in the path):
``/_pywb/<secret>/cdx`` and ``/_pywb/<secret>/warc/<key>`` (byte ranges of indexed records,
read as the versions the index recorded and checked, from a file or an S3 store alike; pywb
itself holds no store credentials). The service proxies ``/web/...``,
``/capture/<uuid>/web/...`` and ``/static/...`` to it, after checking the caller's token and
the record's digests.

The folder is removed whenever the service stops (:meth:`PywbProcess.stop`, which ``attest
serve`` calls on every exit, SIGTERM and SIGINT included), and by pywb itself when it is told
to stop or its parent dies (the kernel sends it SIGTERM then: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from archive.errors import ConfigError

log = logging.getLogger(__name__)

COLLECTION = "web"
START_TIMEOUT = 60.0
RUNNER = Path(__file__).with_name("pywb_runner.py")
#: sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH = 107


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the service dies, however it dies (Linux)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def new_secret() -> str:
    return secrets.token_urlsafe(24)


class PywbProcess:
    """``with PywbProcess(venv, cdx_url, records_url) as pywb: pywb.socket_path, pywb.secret``"""

    def __init__(self, venv: Path, cdx_api: str, archive_paths: str) -> None:
        python = venv.resolve() / "bin" / "python"
        if not os.access(python, os.X_OK):
            raise ConfigError(
                f"replay needs pywb: {python} not found (run ./setup.sh, or set "
                "ATTEST_REPLAY_VENV to a venv with pywb 2.10.0; --no-replay serves without it)"
            )
        self.python = python
        self.cdx_api = cdx_api
        self.archive_paths = archive_paths
        self.secret = new_secret()
        self.folder: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        if self.folder is None:
            raise ConfigError("pywb is not running")
        return self.folder / "pywb.sock"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def config_yaml(self) -> str:
        """pywb's settings that are no secret (the collection, with the secret URL, goes on stdin)."""
        return (
            "framed_replay: true\n"
            "enable_memento: false\n"
            "enable_http_proxy: false\n"
            "enable_auto_colls: false\n"
        )

    def start(self) -> None:
        # mkdtemp makes the folder 0700: only this user reaches the socket inside.
        self.folder = Path(tempfile.mkdtemp(prefix="attest-pywb-"))
        try:
            self._launch()
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        folder = self.folder
        assert folder is not None
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"{self.socket_path}: too long for a Unix socket; set TMPDIR to a shorter folder"
            )
        (folder / "config.yaml").write_text(self.config_yaml())
        # pywb reads records through the service: it needs no store credentials.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_", "ATTEST_"))
        }
        settings = {
            "socket": str(self.socket_path),
            "folder": str(folder),
            "secret": self.secret,
            "cdx_api": self.cdx_api,
            "archive_paths": self.archive_paths,
            "collection": COLLECTION,
        }
        log_file = open(folder / "pywb.log", "wb")  # noqa: SIM115 - kept for the process's life
        self._proc = subprocess.Popen(
            [str(self.python), "-I", str(RUNNER)],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl, before exec
        )
        log_file.close()
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(settings).encode("utf-8"))
        self._proc.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigError(f"pywb exited at start: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe,
            ):
                probe.settimeout(0.5)
                probe.connect(str(self.socket_path))
                log.info("pywb replay on %s", self.socket_path)
                return
            time.sleep(0.1)
        raise ConfigError(f"pywb did not start within {START_TIMEOUT:.0f} s: {self.log_tail()}")

    def log_tail(self, size: int = 2000) -> str:
        if self.folder is None:
            return ""
        path = self.folder / "pywb.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")[-size:]
        return ""

    def stop(self) -> None:
        """Stop pywb and remove its folder (socket, log); safe to call more than once."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        self._proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> PywbProcess:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
