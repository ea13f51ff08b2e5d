"""pywb, run as its own process from its own venv, replaying from our index and store.

pywb cannot share a venv with Scrapy (a brotli module clash; see the stack notes), so the
service starts ``wayback`` from the replay venv, bound to 127.0.0.1 on a free port, with a
collection ``web`` whose index is our CDX API (an internal, loopback-only path that carries a
per-process secret) and whose ``archive_paths`` is the store root: ``file://`` or ``s3://``
(pywb's S3 loader uses boto3 in its venv; the endpoint goes in ``AWS_ENDPOINT_URL_S3``).
The service proxies ``/web/...`` and ``/static/...`` to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
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


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the service dies, however it dies (Linux)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def archive_root(store_uri: str) -> str:
    """pywb's ``archive_paths`` for a store: the URI with a trailing slash."""
    return store_uri.rstrip("/") + "/"


class PywbProcess:
    """``with PywbProcess(venv, cdx_url, store_uri) as pywb: pywb.base_url``"""

    def __init__(
        self,
        venv: Path,
        cdx_api: str,
        store_uri: str,
        *,
        s3_endpoint: str | None = None,
        port: int | None = None,
    ) -> None:
        wayback = venv / "bin" / "wayback"
        if not os.access(wayback, os.X_OK):
            raise ConfigError(
                f"replay needs pywb: {wayback} not found (run ./setup.sh, or set "
                "ATTEST_REPLAY_VENV to a venv with pywb 2.10.0; --no-replay serves without it)"
            )
        self.wayback = wayback
        self.cdx_api = cdx_api
        self.store_uri = store_uri
        self.s3_endpoint = s3_endpoint
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def config_yaml(self) -> str:
        return (
            "collections:\n"
            f"  {COLLECTION}:\n"
            f"    index: cdxj+{self.cdx_api}\n"
            f"    archive_paths: {archive_root(self.store_uri)}\n"
            "framed_replay: true\n"
            "enable_memento: false\n"
            "enable_http_proxy: false\n"
        )

    def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="attest-pywb-")
        root = Path(self._dir.name)
        (root / "config.yaml").write_text(self.config_yaml())
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        if self.store_uri.startswith("s3://"):
            aws_config = root / "aws-config"
            aws_config.write_text("[default]\ns3 =\n    addressing_style = path\n")
            env["AWS_CONFIG_FILE"] = str(aws_config)
            env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            if self.s3_endpoint:
                env["AWS_ENDPOINT_URL_S3"] = self.s3_endpoint
        log_file = open(root / "pywb.log", "wb")  # noqa: SIM115 - kept for the process's life
        self._proc = subprocess.Popen(
            [str(self.wayback), "-b", "127.0.0.1", "-p", str(self.port), "-d", str(root)],
            cwd=root,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl, before exec
        )
        log_file.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigError(f"pywb exited at start: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                log.info("pywb replay on %s", self.base_url)
                return
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"pywb did not start within {START_TIMEOUT:.0f} s: {self.log_tail()}")

    def log_tail(self, size: int = 2000) -> str:
        if self._dir is None:
            return ""
        path = Path(self._dir.name) / "pywb.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    def stop(self) -> None:
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
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> PywbProcess:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def new_secret() -> str:
    return secrets.token_urlsafe(24)
