"""Recording proxies side by side over the same fixture pages: which one keeps the evidence?

Run from the repository root (under a minute with the defaults on a 2-core machine, about
2.5 minutes with ``--exchanges 3000``; the first run also builds ``bench/.venv-mitm`` from
PyPI, about 10 s)::

    .venv/bin/python bench/recorders/compare.py --exchanges 600

Options: ``--reps 3`` (CPU is the median), ``--concurrency 8``, ``--candidates a,b``,
``--cpu-budget-ms 8`` (the CPU row's pass mark, derived from issue #2's floor; see
``DEFAULT_CPU_BUDGET_MS``), ``--workdir DIR`` to keep the WARCs and proxy logs.

Candidates, each started as its own process and measured with the same client:

- ``attest``: attest's recorder (warcprox subclassed, :mod:`crawlers.recorder`), started with
  :class:`~crawlers.recorder.process.RecorderProcess`.
- ``warcprox``: the stock ``warcprox`` 2.13.1 CLI from the app venv (``-g sha256 -z``, dedup and
  stats off). It refuses peers that are exactly 127.0.0.1, so it is pointed at a second copy of
  the same fixture servers bound to 127.0.0.2 (same handlers, same bytes).
- ``mitmproxy``: ``mitmdump`` 11.0.2 from ``bench/.venv-mitm`` with
  ``bench/recorders/mitm_warc_addon.py`` (warcio writer). mitmproxy cannot share the app venv
  (its Brotli and cryptography pins clash with Scrapy's), so the venv is created on first use.

The fixture web runs in a child process with ``keep_log=True``: every response's wire bytes
(status line + header block, body with chunk framing) are compared with what each candidate
stored. The client fetches the same shuffled URL list through each proxy with 8 threads
(gzip articles, the brotli stylesheet, chunked section pages, HTTPS pages, a 404, a 301).
CPU is the proxy process's (and its children's) user+system time over the fetch phase,
after its start-up has settled and until its writing has settled. Every criterion prints one
PASS/FAIL row per candidate; the table is also written as JSON under ``bench/results/``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib.metadata
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
MITM_VENV = BENCH / ".venv-mitm"
MITM_PINS = ["mitmproxy==11.0.2", "warcio"]
ADDON = Path(__file__).resolve().with_name("mitm_warc_addon.py")
RESULTS = BENCH / "results"
APP_BIN = Path(sys.executable).parent
ACCEPT_ENCODING = "gzip, br"
#: Share of each kind of fetch in the URL list (out of 20).
MIX = {"gzip": 10, "br": 2, "chunked": 4, "https": 2, "404": 1, "redirect": 1}
HTTPS_PATHS = [
    "/",
    "/press/",
    "/press/1.html",
    "/press/2.html",
    "/press/3.html",
    "/fr/communiques/1.html",
    "/files/1.pdf",
    "/assets/ngo.css",
]
#: Issue #2's floor lets recording cost at most 0.5 x plain Scrapy's 33 ms CPU per article
#: page (16.5 ms); a full crawl fetches about two exchanges per article page (the article and
#: its image; shared stylesheet, script and icons amortise away), so about 8 ms per exchange.
DEFAULT_CPU_BUDGET_MS = 8.0
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


# --- the fixture web, in its own process --------------------------------------------------


def _fixture_main(conn: multiprocessing.connection.Connection, articles: int, workdir: str) -> None:
    """Serve news + HTTPS on 127.0.0.1 (FixtureWeb) and the same handlers on 127.0.0.2."""
    from demoweb import FixtureWeb
    from demoweb.http import FixtureServer

    web = FixtureWeb(articles=articles, tls=True, keep_log=True, workdir=Path(workdir)).start()
    assert web.ca is not None
    servers = {
        "news@127.0.0.1": web.servers["news"],
        "secure@127.0.0.1": web.servers["secure"],
        "news@127.0.0.2": FixtureServer(web.news, host="127.0.0.2", keep_log=True).start(),
        "secure@127.0.0.2": FixtureServer(
            web.servers["secure"].handler,
            host="127.0.0.2",
            tls=web.ca.server_context(),
            keep_log=True,
        ).start(),
    }
    conn.send(
        {
            "origins": {name: server.origin for name, server in servers.items()},
            "ca_pem": str(web.ca.ca_pem),
            "server_pem": str(web.ca.cert_pem),
        }
    )
    while True:
        command = conn.recv()
        if command == "reset":
            for server in servers.values():
                server.sent.clear()
                server.requests.clear()
            conn.send(True)
        elif command == "dump":
            conn.send({name: list(server.sent) for name, server in servers.items()})
        else:
            break
    for name, server in servers.items():
        if name.endswith("127.0.0.2"):
            server.stop()
    web.stop()
    conn.send(True)


class Fixture:
    def __init__(self, articles: int, workdir: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_fixture_main, args=(child, articles, str(workdir)), daemon=True
        )
        self._proc.start()
        info = self._conn.recv()
        self.origins: dict[str, str] = info["origins"]
        self.ca_pem = Path(info["ca_pem"])
        self.server_pem = Path(info["server_pem"])

    def origin(self, site: str, ip: str) -> str:
        return self.origins[f"{site}@{ip}"]

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def dump(self) -> dict[str, list[tuple[str, str, bytes, bytes]]]:
        self._conn.send("dump")
        sent: dict[str, list[tuple[str, str, bytes, bytes]]] = self._conn.recv()
        return sent

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._conn.send("stop")
            self._conn.recv()
        self._proc.join(10)


# --- the URL list ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    kind: str  # gzip | br | chunked | https | 404 | redirect
    site: str  # news | secure
    path: str


def plan(exchanges: int, seed: int) -> tuple[list[Fetch], int]:
    """The shuffled fetch list and how many articles the fixture must have."""
    weight = sum(MIX.values())
    counts = {kind: max(1, exchanges * share // weight) for kind, share in MIX.items()}
    counts["gzip"] += exchanges - sum(counts.values())
    articles = max(40, counts["gzip"])
    sections = []
    for index, name in enumerate(("politics", "world", "pacific", "media")):
        count = len([n for n in range(1, articles + 1) if n % 4 == index])
        pages = max(1, (count + 19) // 20)
        sections.append(f"/section/{name}/")
        sections += [f"/section/{name}/?page={p}" for p in range(2, pages + 1)]
    fetches: list[Fetch] = []
    fetches += [Fetch("gzip", "news", f"/article/{n}.html") for n in range(1, counts["gzip"] + 1)]
    fetches += [Fetch("br", "news", "/static/site.css")] * counts["br"]
    fetches += [
        Fetch("chunked", "news", sections[i % len(sections)]) for i in range(counts["chunked"])
    ]
    fetches += [
        Fetch("https", "secure", HTTPS_PATHS[i % len(HTTPS_PATHS)]) for i in range(counts["https"])
    ]
    fetches += [Fetch("404", "news", "/missing.html")] * counts["404"]
    fetches += [Fetch("redirect", "news", "/old/start")] * counts["redirect"]
    random.Random(seed).shuffle(fetches)
    return fetches, articles


# --- the client -----------------------------------------------------------------------


@dataclass
class FetchResult:
    url: str
    status: int | None
    body_bytes: int
    error: str | None


def fetch_all(proxy: str, urls: list[str], concurrency: int) -> list[FetchResult]:
    import requests
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    local = threading.local()

    def session() -> requests.Session:
        s: requests.Session | None = getattr(local, "session", None)
        if s is None:
            s = requests.Session()
            s.trust_env = False
            s.proxies = {"http": proxy, "https": proxy}
            s.verify = False
            s.headers["Accept-Encoding"] = ACCEPT_ENCODING
            local.session = s
        return s

    def one(url: str) -> FetchResult:
        try:
            with session().get(url, allow_redirects=False, stream=True, timeout=60) as r:
                body = r.raw.read(decode_content=False)
                return FetchResult(url, r.status_code, len(body), None)
        except requests.RequestException as exc:
            return FetchResult(url, None, 0, repr(exc)[:300])

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, urls))


# --- CPU of a process tree ------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float]:
    """(ppid, user+system+reaped children) from /proc, in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ppid, ticks / _CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and all its live descendants (and reaped children)."""
    try:
        import psutil  # type: ignore  # optional (dev extra); /proc is read otherwise
    except ImportError:
        psutil = None
    if psutil is not None:
        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                parents[int(entry.name)], cpu[int(entry.name)] = _proc_stat(int(entry.name))
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(cpu.get(p, 0.0) for p in tree)


def settled_cpu(pid: int, step: float = 0.3, quiet: float = 0.015, timeout: float = 60) -> float:
    """CPU seconds once the process tree has stopped working (less than ``quiet`` per step)."""
    deadline = time.monotonic() + timeout
    previous = tree_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(step)
        current = tree_cpu_seconds(pid)
        if current - previous < quiet:
            return current
        previous = current
    return previous


# --- the candidates -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"proxy did not listen on {port} within {timeout:.0f} s")


@dataclass
class Candidate:
    name: str
    #: The fixture address this candidate is pointed at.
    fixture_ip: str
    version: str = ""
    command: str = ""
    pid: int = 0
    proxy_url: str = ""
    _stop: Callable[[], list[Path]] | None = None

    def start(self, workdir: Path, fixture: Fixture) -> None:
        raise NotImplementedError

    def stop(self) -> list[Path]:
        assert self._stop is not None
        return self._stop()


class AttestCandidate(Candidate):
    def start(self, workdir: Path, fixture: Fixture) -> None:
        from archive.ingest.spool import RunSpool
        from crawlers.recorder.config import RecorderConfig
        from crawlers.recorder.process import RecorderProcess

        run_id = str(uuid.uuid4())
        spool = RunSpool.create(workdir / "spool", run_id, {"run_id": run_id, "bench": "recorders"})
        config = RecorderConfig(
            spool=str(spool.path),
            run_id=run_id,
            default_source="bench",
            ca_dir=str(workdir / "ca"),
            allow_networks="127.0.0.0/8",
            ca_bundles=[str(fixture.ca_pem)],
            warcinfo_common=[("run-id", run_id)],
        )
        recorder = RecorderProcess(config, lock_fd=spool.lock_fd)
        recorder.start()
        assert recorder.proc is not None
        self.pid = recorder.proc.pid
        self.proxy_url = recorder.proxy_url
        self.command = f"{sys.executable} -m crawlers.recorder {spool.path}/recorder.json"
        self.version = (
            "attest "
            + importlib.metadata.version("attest")
            + " on warcprox "
            + importlib.metadata.version("warcprox")
        )

        def stop() -> list[Path]:
            event = recorder.stop()
            files = spool.closed_files()
            spool.release()
            if event.get("unfinished") or spool.open_files():
                raise RuntimeError(f"attest recorder left work unfinished: {event}")
            return files

        self._stop = stop


def _stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60
) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class WarcproxCandidate(Candidate):
    def start(self, workdir: Path, fixture: Fixture) -> None:
        port = free_port()
        warcs = workdir / "warcs"
        cmd = [
            str(APP_BIN / "warcprox"),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(warcs),
            "--gzip",
            "--digest-algorithm",
            "sha256",
            "--cacert",
            str(workdir / "warcprox-ca.pem"),
            "--certs-dir",
            str(workdir / "certs"),
            "--dedup-db-file",
            "/dev/null",
            "--stats-db-file",
            "/dev/null",
            "--quiet",
        ]
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / "warcprox.log", "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_listening(port, proc)
        self.pid = proc.pid
        self.proxy_url = f"http://127.0.0.1:{port}"
        self.command = " ".join(cmd)
        self.version = "warcprox " + importlib.metadata.version("warcprox")

        def stop() -> list[Path]:
            _stop_process(proc)
            leftovers = sorted(warcs.glob("*.open"))
            if leftovers:
                raise RuntimeError(f"warcprox left open files: {leftovers}")
            return sorted(warcs.glob("*.warc.gz"))

        self._stop = stop


def ensure_mitm_venv() -> Path:
    """``bench/.venv-mitm`` with mitmproxy 11.0.2 and warcio (created on first use, from PyPI)."""
    mitmdump = MITM_VENV / "bin" / "mitmdump"
    if mitmdump.exists():
        return mitmdump
    python = shutil.which("python3") or sys.executable
    print(f"creating {MITM_VENV} ({' '.join(MITM_PINS)}) ...", flush=True)
    subprocess.run([python, "-m", "venv", str(MITM_VENV)], check=True)
    subprocess.run([str(MITM_VENV / "bin" / "pip"), "install", "-q", *MITM_PINS], check=True)
    return mitmdump


def mitm_versions() -> str:
    out = subprocess.run(
        [
            str(MITM_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(' '.join(p + ' ' + m.version(p) for p in "
            "('mitmproxy', 'warcio', 'Brotli', 'cryptography')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class MitmCandidate(Candidate):
    def start(self, workdir: Path, fixture: Fixture) -> None:
        mitmdump = ensure_mitm_venv()
        port = free_port()
        warcs = workdir / "warcs"
        cmd = [
            str(mitmdump),
            "-q",
            "-s",
            str(ADDON),
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "--set",
            "ssl_insecure=true",
            "--set",
            f"confdir={workdir / 'conf'}",
            "--set",
            f"warc_dir={warcs}",
        ]
        workdir.mkdir(parents=True, exist_ok=True)
        with open(workdir / "mitmdump.log", "wb") as log:
            proc = subprocess.Popen(
                cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        wait_listening(port, proc)
        self.pid = proc.pid
        self.proxy_url = f"http://127.0.0.1:{port}"
        self.command = " ".join(cmd)
        self.version = mitm_versions()

        def stop() -> list[Path]:
            _stop_process(proc)
            leftovers = sorted(warcs.glob("*.open"))
            if leftovers:
                raise RuntimeError(f"mitmdump left open files: {leftovers}")
            return sorted(warcs.glob("*.warc.gz"))

        self._stop = stop


CANDIDATES: dict[str, Callable[[], Candidate]] = {
    "attest": lambda: AttestCandidate("attest", "127.0.0.1"),
    "warcprox": lambda: WarcproxCandidate("warcprox", "127.0.0.2"),
    "mitmproxy": lambda: MitmCandidate("mitmproxy", "127.0.0.1"),
}


# --- reading WARCs back, independently of archive/ and warcio --------------------------


@dataclass
class Record:
    file: str
    version: str
    headers: list[tuple[str, str]]
    block: bytes

    def get(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    @property
    def type(self) -> str:
        return (self.get("WARC-Type") or "").lower()


def _gunzip_all(raw: bytes) -> bytes:
    out = bytearray()
    while raw:
        d = zlib.decompressobj(31)
        out += d.decompress(raw)
        if not d.eof:
            raise ValueError("truncated gzip member")
        raw = d.unused_data
    return bytes(out)


def read_records(path: Path) -> list[Record]:
    raw = path.read_bytes()
    data = _gunzip_all(raw) if raw[:2] == b"\x1f\x8b" else raw
    records: list[Record] = []
    pos = 0
    while pos < len(data):
        end = data.index(b"\r\n\r\n", pos)
        lines = data[pos:end].decode("utf-8").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:])]
        record = Record(path.name, lines[0], headers, b"")
        length = int(record.get("Content-Length") or "-1")
        record.block = data[end + 4 : end + 4 + length]
        if len(record.block) != length or data[end + 4 + length : end + 8 + length] != b"\r\n\r\n":
            raise ValueError(
                f"{path.name}: record at {pos} is truncated or not CRLF CRLF-terminated"
            )
        records.append(record)
        pos = end + 8 + length
    return records


def split_http(block: bytes) -> tuple[bytes, bytes]:
    cut = block.find(b"\r\n\r\n")
    if cut < 0:
        return block, b""
    return block[: cut + 4], block[cut + 4 :]


def http_header(head: bytes, name: str) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = body.index(b"\r\n", pos)
        size = int(body[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return bytes(out)
        out += body[pos : pos + size]
        if body[pos + size : pos + size + 2] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        pos += size + 2


def entity(record: Record) -> bytes:
    """The payload as WARC 1.1 defines it: the HTTP entity, transfer coding removed."""
    if record.type not in ("request", "response") or not (
        (record.get("Content-Type") or "").startswith("application/http")
    ):
        return record.block
    head, body = split_http(record.block)
    if "chunked" in (http_header(head, "Transfer-Encoding") or "").lower():
        try:
            return dechunk(body)
        except ValueError:
            return body
    return body


def leaf_der(server_pem: Path) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = x509.load_pem_x509_certificates(server_pem.read_bytes())
    return certs[0].public_bytes(Encoding.DER), certs[-1].public_bytes(Encoding.DER)


def contains_cert(block: bytes, der: bytes) -> bool:
    flat = block.replace(b"\\n", b"").replace(b"\n", b"").replace(b"\r", b"")
    return der in block or base64.b64encode(der) in flat


#: warcio 1.8.1's br decoder expects brotlipy (``unused_data``); Google's Brotli, which Scrapy
#: needs, lacks it (STACK-NOTES 1b). This shim lets ``warcio check`` read br records.
WARCIO_CHECK = """
import sys, brotli
from warcio.bufferedreaders import BufferedReader
class Br:
    def __init__(self):
        self.d, self.unused_data = brotli.Decompressor(), None
    def decompress(self, data):
        return self.d.process(data)
BufferedReader.DECOMPRESSORS["br"] = Br
from warcio.cli import main
sys.exit(main(["check", "-v", *sys.argv[1:]]))
"""


def warcio_check(files: list[Path]) -> tuple[int, int]:
    """(files ``warcio check`` passes, digests it reports as failed): for information only."""
    passed = failed = 0
    for path in files:
        out = subprocess.run(
            [sys.executable, "-c", WARCIO_CHECK, str(path)], capture_output=True, text=True
        )
        passed += out.returncode == 0
        failed += out.stdout.count("digest failed")
    return passed, failed


# --- the checks -----------------------------------------------------------------------


@dataclass
class Check:
    good: int = 0
    total: int = 0
    example: str = ""

    def add(self, ok: bool, example: str = "") -> None:
        self.total += 1
        if ok:
            self.good += 1
        elif not self.example:
            self.example = example

    def merge(self, other: Check) -> None:
        self.good += other.good
        self.total += other.total
        self.example = self.example or other.example

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.good == self.total


CRITERIA: list[tuple[str, str]] = [
    ("warc_1_1", "WARC/1.1 records"),
    ("date_micros", "WARC-Date with microseconds"),
    ("sha256", "SHA-256 digests, sha256:<hex>"),
    ("block_digest", "block digests correct (recomputed)"),
    ("payload_digest", "payload digests correct (de-chunked entity)"),
    ("verify_warc", "archive.warc.read.verify_warc clean (per file)"),
    ("ip", "WARC-IP-Address = fixture IP"),
    ("concurrent", "request <-> response WARC-Concurrent-To"),
    ("tls_chain", "TLS chain kept (server leaf cert in a record)"),
    ("complete", "response records per URL = fetches per URL"),
    ("body_gzip", "body == wire bytes: gzip"),
    ("body_br", "body == wire bytes: br"),
    ("body_chunked", "body == wire bytes: chunked (framing incl.)"),
    ("head_exact", "status line + header block == wire"),
]


def evaluate(
    files: list[Path],
    fetches: list[Fetch],
    urls: list[str],
    results: list[FetchResult],
    sent: dict[str, list[tuple[str, str, bytes, bytes]]],
    fixture: Fixture,
    fixture_ip: str,
) -> dict[str, Check]:
    from archive.warc.read import verify_warc

    checks = {key: Check() for key, _ in CRITERIA}
    records: list[Record] = []
    for path in files:
        verdict = verify_warc(path)
        checks["verify_warc"].add(verdict.ok, f"{path.name}: {verdict.problems[:1]}")
        records += read_records(path)

    kind_of = dict(zip(urls, (f.kind for f in fetches), strict=True))
    wire: dict[str, set[tuple[bytes, bytes]]] = {}
    for server, log in sent.items():
        site, ip = server.split("@")
        if ip != fixture_ip:
            continue
        origin = fixture.origin(site, ip)
        for _method, target, head, body in log:
            wire.setdefault(origin + target, set()).add((head, body))

    ids = {r.get("WARC-Record-ID") for r in records}
    leaf, ca = leaf_der(fixture.server_pem)
    chain_found, ca_found = False, False
    responses: Counter[str] = Counter()
    for r in records:
        rid = r.get("WARC-Record-ID") or "?"
        where = f"{r.file} {r.type} {r.get('WARC-Target-URI') or rid}"
        checks["warc_1_1"].add(r.version == "WARC/1.1", f"{where}: {r.version}")
        date = r.get("WARC-Date") or ""
        checks["date_micros"].add(bool(DATE_RE.match(date)), f"{where}: WARC-Date {date}")
        block_label = r.get("WARC-Block-Digest") or ""
        payload_label = r.get("WARC-Payload-Digest")
        labels_ok = bool(SHA256_RE.match(block_label))
        if payload_label is not None:
            labels_ok = labels_ok and bool(SHA256_RE.match(payload_label))
        if r.type == "response":
            labels_ok = labels_ok and payload_label is not None
        checks["sha256"].add(labels_ok, f"{where}: block {block_label!r} payload {payload_label!r}")
        if block_label.startswith("sha256:"):
            computed = "sha256:" + hashlib.sha256(r.block).hexdigest()
            checks["block_digest"].add(
                computed == block_label.lower(),
                f"{where}: recorded {block_label}, computed {computed}",
            )
        if payload_label and payload_label.startswith("sha256:") and r.type != "revisit":
            computed = "sha256:" + hashlib.sha256(entity(r)).hexdigest()
            checks["payload_digest"].add(
                computed == payload_label.lower(),
                f"{where}: recorded {payload_label}, computed {computed}",
            )
        if r.type == "request":
            to = r.get("WARC-Concurrent-To")
            checks["concurrent"].add(to in ids, f"{where}: WARC-Concurrent-To {to}")
        if r.type not in ("request", "response") and contains_cert(r.block, leaf):
            chain_found = True
            ca_found = ca_found or contains_cert(r.block, ca)
        if r.type != "response":
            continue
        url = r.get("WARC-Target-URI") or ""
        responses[url] += 1
        peer = r.get("WARC-IP-Address")
        checks["ip"].add(peer == fixture_ip, f"{where}: WARC-IP-Address {peer}")
        expected = wire.get(url)
        if not expected:
            continue
        head, body = split_http(r.block)
        kind = kind_of.get(url, "")
        if kind in ("gzip", "br", "chunked"):
            checks[f"body_{kind}"].add(
                any(body == b for _h, b in expected),
                f"{url}: stored {len(body)} body bytes, server wrote "
                f"{sorted(len(b) for _h, b in expected)}",
            )
        got = head.decode("latin-1").replace("\r\n", "|")
        want = sorted(h.decode("latin-1").replace("\r\n", "|") for h, _b in expected)
        checks["head_exact"].add(
            any(head == h for h, _b in expected), f"{url}: stored {got!r}, server wrote {want[0]!r}"
        )
    checks["tls_chain"].add(chain_found, "no record carries the HTTPS server's leaf certificate")
    if chain_found:
        checks["tls_chain"].example = "leaf + CA" if ca_found else "leaf only"
    fetched = Counter(res.url for res in results if res.status is not None)
    for url, count in fetched.items():
        checks["complete"].add(
            responses[url] == count, f"{url}: {count} fetches, {responses[url]} response records"
        )
    return checks


# --- one run of one candidate ---------------------------------------------------------


@dataclass
class RepResult:
    wall_s: float
    cpu_s: float
    cpu_ms_per_exchange: float
    client_cpu_ms_per_exchange: float
    exchanges: int
    client_errors: int
    statuses: dict[str, int]
    warc_files: int
    warc_bytes: int
    records: int
    warcio_check_files_ok: int
    warcio_check_digest_failures: int
    first_error: str | None = None


@dataclass
class CandidateResult:
    name: str
    version: str = ""
    command: str = ""
    fixture_ip: str = ""
    reps: list[RepResult] = field(default_factory=list)
    checks: dict[str, Check] = field(default_factory=dict)


def run_once(
    candidate: Candidate, fixture: Fixture, fetches: list[Fetch], workdir: Path, concurrency: int
) -> tuple[RepResult, dict[str, Check]]:
    fixture.reset()
    urls = [fixture.origin(f.site, candidate.fixture_ip) + f.path for f in fetches]
    candidate.start(workdir, fixture)
    try:
        cpu_before = settled_cpu(candidate.pid)
        started = time.perf_counter()
        client_started = time.process_time()
        results = fetch_all(candidate.proxy_url, urls, concurrency)
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - client_started
        cpu_after = settled_cpu(candidate.pid)
    finally:
        files = candidate.stop()
    sent = fixture.dump()
    checks = evaluate(files, fetches, urls, results, sent, fixture, candidate.fixture_ip)
    errors = [r for r in results if r.status is None]
    statuses = Counter(str(r.status) for r in results)
    warcio_ok, warcio_failed = warcio_check(files)
    cpu = cpu_after - cpu_before
    rep = RepResult(
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        cpu_ms_per_exchange=round(cpu * 1000 / len(fetches), 3),
        client_cpu_ms_per_exchange=round(client_cpu * 1000 / len(fetches), 3),
        exchanges=len(fetches),
        client_errors=len(errors),
        statuses=dict(sorted(statuses.items())),
        warc_files=len(files),
        warc_bytes=sum(p.stat().st_size for p in files),
        records=sum(len(read_records(p)) for p in files),
        warcio_check_files_ok=warcio_ok,
        warcio_check_digest_failures=warcio_failed,
        first_error=errors[0].error if errors else None,
    )
    return rep, checks


# --- report ---------------------------------------------------------------------------


def table(results: list[CandidateResult], budget_ms: float) -> tuple[list[list[str]], list[str]]:
    header = ["criterion", *[r.name for r in results]]
    rows = [header]
    notes: list[str] = []
    for key, label in CRITERIA:
        row = [label]
        for r in results:
            c = r.checks[key]
            if c.total == 0:
                row.append("n/a")
                continue
            verdict = "PASS" if c.ok else "FAIL"
            row.append(f"{verdict} {c.good}/{c.total}")
            if not c.ok:
                notes.append(f"{r.name} / {label}: e.g. {c.example}")
            elif key == "tls_chain":
                row[-1] += f" ({c.example})"
        rows.append(row)
    cpu_row = [f"CPU ms/exchange, median (<= {budget_ms:g})"]
    wall_row = ["wall s for the fetch phase, median"]
    rate_row = ["exchanges/s, median"]
    err_row = ["client errors (all reps)"]
    client_row = ["info: client CPU ms/exchange, median"]
    size_row = ["WARC bytes per exchange, median"]
    warcio_row = ["info: warcio check, files ok / digest failures"]
    for r in results:
        cpu = statistics.median(x.cpu_ms_per_exchange for x in r.reps)
        each = ", ".join(f"{x.cpu_ms_per_exchange:.2f}" for x in r.reps)
        cpu_row.append(f"{'PASS' if cpu <= budget_ms else 'FAIL'} {cpu:.2f} ({each})")
        wall = statistics.median(x.wall_s for x in r.reps)
        wall_row.append(f"{wall:.2f}")
        rate_row.append(f"{statistics.median(x.exchanges / x.wall_s for x in r.reps):.0f}")
        err_row.append(str(sum(x.client_errors for x in r.reps)))
        client_row.append(f"{statistics.median(x.client_cpu_ms_per_exchange for x in r.reps):.2f}")
        size_row.append(f"{statistics.median(x.warc_bytes / x.exchanges for x in r.reps):.0f}")
        warcio_row.append(
            f"{sum(x.warcio_check_files_ok for x in r.reps)}/"
            f"{sum(x.warc_files for x in r.reps)} / "
            f"{sum(x.warcio_check_digest_failures for x in r.reps)}"
        )
    rows += [cpu_row, wall_row, rate_row, err_row, size_row, client_row, warcio_row]
    return rows, notes


def render(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--exchanges", type=int, default=600, help="fetches per candidate and rep")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (CPU is their median)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--candidates", default="attest,warcprox,mitmproxy")
    parser.add_argument(
        "--cpu-budget-ms",
        type=float,
        default=DEFAULT_CPU_BUDGET_MS,
        help="CPU ms per exchange that passes (default: issue #2's floor, see source)",
    )
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, help="keep WARCs and logs here (default: a temp dir, removed)"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON result path (default: bench/results/recorders-<time>.json)"
    )
    args = parser.parse_args(argv)

    bench_started = time.perf_counter()
    names = [n.strip() for n in args.candidates.split(",") if n.strip()]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {list(CANDIDATES)}")
    if "mitmproxy" in names:
        ensure_mitm_venv()
    fetches, articles = plan(args.exchanges, args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="attest-bench-recorders-"))
    workdir.mkdir(parents=True, exist_ok=True)
    fixture = Fixture(articles, workdir / "fixture-ca")
    results = {n: CandidateResult(n) for n in names}
    try:
        for rep in range(args.reps):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                candidate = CANDIDATES[name]()
                rep_result, checks = run_once(
                    candidate, fixture, fetches, workdir / f"{name}-rep{rep + 1}", args.concurrency
                )
                result = results[name]
                result.version, result.command = candidate.version, candidate.command
                result.fixture_ip = candidate.fixture_ip
                result.reps.append(rep_result)
                for key, check in checks.items():
                    result.checks.setdefault(key, Check()).merge(check)
                print(
                    f"rep {rep + 1} {name}: {rep_result.exchanges} exchanges in "
                    f"{rep_result.wall_s:.2f} s, {rep_result.cpu_ms_per_exchange:.2f} ms CPU each, "
                    f"{rep_result.client_errors} client errors",
                    flush=True,
                )
    finally:
        fixture.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    ordered = [results[n] for n in names]
    rows, notes = table(ordered, args.cpu_budget_ms)
    kinds = Counter(f.kind for f in fetches)
    print()
    print(
        f"{args.exchanges} exchanges x {args.reps} reps per candidate, concurrency "
        f"{args.concurrency}; mix {dict(kinds)}"
    )
    for r in ordered:
        print(f"  {r.name}: {r.version}; fixture at {r.fixture_ip}")
    print(render(rows))
    for note in notes:
        print("  - " + note)
    total = time.perf_counter() - bench_started
    print(f"bench wall time {total:.1f} s")

    out = args.out or RESULTS / f"recorders-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "command": " ".join(
            [
                Path(sys.executable).relative_to(ROOT).as_posix()
                if Path(sys.executable).is_relative_to(ROOT)
                else sys.executable,
                *sys.argv,
            ]
        ),
        "finished": datetime.now(UTC).isoformat(),
        "bench_wall_s": round(total, 1),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "mix": dict(kinds),
        "table": rows,
        "notes": notes,
        "candidates": {
            r.name: {
                "version": r.version,
                "command": r.command,
                "fixture_ip": r.fixture_ip,
                "reps": [asdict(x) for x in r.reps],
                "checks": {
                    k: {"ok": c.ok, "good": c.good, "total": c.total, "example": c.example}
                    for k, c in r.checks.items()
                },
            }
            for r in ordered
        },
    }
    out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
