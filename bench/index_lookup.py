"""Index and lookup: attest vs cdxj-indexer + pywb's CDX server, same WARCs, one run.

    .venv/bin/python bench/index_lookup.py --records 1000000 --repeat 3 --repeat-baseline 1

1. **Data.** Generates synthetic WARC/1.1 files (gzip per record, attest's own writer
   ``archive.warc.write.WarcFileWriter``) holding ``--records`` ``response`` records, ``--per-file``
   records per file, plus one ``warcinfo`` per file (``source-id``, ``attest-run-id``). URLs
   spread over ``--hosts`` hosts; each prefix ``http://host-H.example/section-K/`` holds 100 URLs
   captured 1 to 5 times each (300 captures), at microsecond WARC-Dates hours apart. The mix:
   30% HTML pages (with visible text), 15% CSS, 15% JS, 40% images (stored precompressed); ~2%
   404s and ~1.5% redirects. Generation is not timed; the files are cached under ``--workdir``,
   keyed by the parameters, so reruns start at once.
2. **Indexing** (interleaved repetitions, median): attest's full indexing path
   (``archive.ingest.indexer.index_keys`` with a ``FileStore`` holding the WARCs under
   ``warcs/<source>/2026/11/28/`` and the custody log, as ``attest index`` runs it: a CDXJ
   beside each WARC, rows into a fresh SQLite index, page texts into FTS5), in a child process,
   with ``--workers`` reading processes (default as ``attest index``: the CPUs, at most 8), plus
   ``--breakdown-runs`` runs in one process that time each phase (parse, text extraction, CDXJ,
   database inserts); attest's reader making only the CDXJ files (like for like); and
   ``cdxj-indexer -s`` (sorted output, as pywb needs) on the same files. Records/s is index
   rows (attest) or output lines (cdxj-indexer) over wall time. Checks that cdxj-indexer's
   output is sorted and that attest's per-WARC CDXJ files, merged, equal it byte for byte.
3. **Size on disk**: SQLite file (+ WAL) vs cdxj-indexer's CDXJ vs attest's per-WARC CDXJ files.
4. **Lookups over HTTP**, one client (``http.client``): ``attest serve --no-replay`` (its
   ``/cdx``) and pywb 2.10's ``wayback`` (``/bench/cdx``, the collection's index being the
   cdxj-indexer output), the same ``--exact`` exact-URL and ``--prefix`` prefix queries (~300
   rows each) against both, after a warm-up, ``--lookup-repeat`` passes (median of each
   figure); p50/p99 latency and rows per query, checked against the expected count and
   between the servers.
5. Peak RSS of the indexing processes (``wait4`` rusage, and the sampled sum over worker
   processes) and of each server (``VmHWM``).

Lookups are timed on one keep-alive connection per server, and again with a new connection per
query (``--no-fresh-connections`` skips it): over keep-alive, every pywb answer takes ~44 ms
although pywb's own log shows ~3 ms, the signature of Nagle's algorithm meeting the client's
delayed ACK (pywb writes a chunked answer in several small sends); a new connection per query
(TCP quick-ack mode) shows pywb's own latency. Both servers answer the same queries, taking
turns in blocks of 50, each block after one untimed query.

``--workdir`` keeps the generated WARCs (2.4 GB at 1,000,000 records) and the last run's store
and index (1.6 GB) for inspection; delete it when done. ``--profile`` adds a cProfile of attest
indexing the first ``--profile-files`` WARC(s) in one process.

Results: ``bench/results/index-lookup-<stamp>.json`` and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import http.client
import io
import json
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from array import array
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
#: The attest code a child process indexes with: this checkout, or another (``--compare``).
CODE = Path(os.environ.get("ATTEST_BENCH_CODE") or ROOT)
if str(CODE) not in sys.path:
    sys.path.insert(0, str(CODE))

VENV = ROOT / ".venv" / "bin"
REPLAY_VENV = ROOT / ".venv-replay" / "bin"
#: Bump when the generated data changes, so cached WARCs are not reused.
GEN_VERSION = 1
URLS_PER_SECTION = 100
ROUNDS = 5  # URL u is captured (u % 5) + 1 times: 300 captures per section
SECTION_CAPTURES = sum(u % ROUNDS + 1 for u in range(URLS_PER_SECTION))
T0_MICROS = int(datetime(2026, 11, 28, tzinfo=UTC).timestamp()) * 1_000_000
STEP_MICROS = 37_000  # 1M records span ~10 h, all on 2026-11-28
SOURCES = ("bench-news", "bench-ngo", "bench-gov", "bench-press")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Resource kind by u % 20: 6 html, 3 css, 3 js, 8 images.
KINDS = (
    ["html"] * 6
    + ["css"] * 3
    + ["js"] * 3
    + ["jpg", "jpg", "png", "png", "gif", "webp", "jpg", "png"]
)
CTYPES = {
    "html": "text/html; charset=utf-8",
    "css": "text/css",
    "js": "application/javascript",
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
}
MAGIC = {
    "jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif": b"GIF89a",
    "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
}


# --- the synthetic web ---------------------------------------------------------------------


def captures_of(u: int) -> int:
    return u % ROUNDS + 1


def url_of(section: int, u: int, hosts: int) -> str:
    host, k = section % hosts, section // hosts
    kind = KINDS[u % len(KINDS)]
    base = f"http://host-{host}.example/section-{k}/"
    if kind == "html":
        # Some pages carry a query string (SURT sorts its arguments).
        return base + (f"article-{u}.html?ref=home&id={u}" if u % 7 == 0 else f"article-{u}.html")
    if kind == "css":
        return base + f"assets/style-{u}.css"
    if kind == "js":
        return base + f"assets/app-{u}.js"
    return base + f"img/photo-{u}.{kind}"


def layout(records: int) -> tuple[int, int]:
    """(full sections, records in the last, partial section)."""
    return records // SECTION_CAPTURES, records % SECTION_CAPTURES


def capture_order(records: int, seed: int) -> array:
    """Every capture as ``(section * 100 + u) * 8 + round``, in crawl order: round by round
    (a URL's n-th capture is in round n), shuffled within a round."""
    full, rest = layout(records)
    rng = random.Random(seed)
    per_round: list[list[int]] = [[] for _ in range(ROUNDS)]
    for section in range(full):
        for u in range(URLS_PER_SECTION):
            for j in range(captures_of(u)):
                per_round[j].append((section * URLS_PER_SECTION + u) * 8 + j)
    left = rest
    u = 0
    while left > 0:  # the partial section: its first URLs, as many captures as fit
        for j in range(min(captures_of(u), left)):
            per_round[j].append((full * URLS_PER_SECTION + u) * 8 + j)
            left -= 1
        u += 1
    order = array("I")
    for codes in per_round:
        rng.shuffle(codes)
        order.extend(codes)
    assert len(order) == records
    return order


class Bodies:
    """Pools of synthetic payloads, deterministic per seed."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed * 7919 + 1)
        letters = "abcdefghijklmnopqrstuvwxyz"
        vocab = [
            "".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(3000)
        ]
        self.paragraphs = [
            " ".join(rng.choice(vocab) for _ in range(rng.randint(25, 70))).capitalize() + "."
            for _ in range(400)
        ]
        self.titles = [" ".join(rng.choice(vocab) for _ in range(6)).title() for _ in range(200)]
        self.css = [
            "".join(
                f".c{rng.randint(0, 999)} {{ margin: {rng.randint(0, 20)}px; color: #{rng.randint(0, 0xFFFFFF):06x}; "
                f"font-size: {rng.randint(10, 24)}px; }}\n"
                for _ in range(rng.randint(5, 25))
            ).encode()
            for _ in range(64)
        ]
        self.js = [
            "".join(
                f"function f{rng.randint(0, 9999)}(a, b) {{ return a * {rng.randint(1, 99)} + b.{rng.choice(vocab)}; }}\n"
                for _ in range(rng.randint(5, 30))
            ).encode()
            for _ in range(64)
        ]
        self.images = {
            kind: [magic + rng.randbytes(rng.randint(400, 6000)) for _ in range(48)]
            for kind, magic in MAGIC.items()
        }

    def html(self, n: int, url: str) -> bytes:
        paras = self.paragraphs
        count = 3 + n % 5
        body = "".join(f"<p>{paras[(n * 31 + i * 17) % len(paras)]}</p>\n" for i in range(count))
        title = self.titles[n % len(self.titles)]
        return (
            f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title} {n}</title>'
            f'<link rel="stylesheet" href="assets/style-{n % 100}.css"><script src="assets/app-{n % 100}.js"></script>'
            f'<style>body {{ font-family: serif; }}</style></head>\n<body><header><nav><a href="/">Home</a> '
            f'<a href="/about">About</a></nav></header>\n<main><article><h1>{title}</h1>\n'
            f'<time datetime="2026-11-28">28 November 2026</time>\n{body}'
            f'<a href="{url}">Permalink</a></article></main><footer>Item {n}</footer></body></html>\n'
        ).encode()


def _http_date(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).strftime("%a, %d %b %Y %H:%M:%S GMT")


def write_warc_file(job: dict[str, Any]) -> dict[str, Any]:
    """Write one WARC (worker process): a warcinfo, then one response per capture code."""
    from archive.warc.write import Block, RecordSpec, WarcFileWriter

    bodies = _bodies(job["seed"])
    codes = array("I")
    codes.frombytes(job["codes"])
    final = Path(job["path"])
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".tmp")
    tmp.unlink(missing_ok=True)
    hosts = job["hosts"]
    g0 = job["g0"]
    rng = random.Random(job["seed"] * 1_000_003 + g0)
    writer = WarcFileWriter(tmp, final.name)
    try:
        writer.write_warcinfo(
            [
                ("software", "attest bench/index_lookup.py (synthetic)"),
                ("format", "WARC File Format 1.1"),
                ("source-id", job["source"]),
                ("attest-run-id", job["run_id"]),
            ]
        )
        for i, code in enumerate(codes):
            g = g0 + i
            uid, j = divmod(code, 8)
            section, u = divmod(uid, URLS_PER_SECTION)
            url = url_of(section, u, hosts)
            kind = KINDS[u % len(KINDS)]
            ts = T0_MICROS + g * STEP_MICROS + rng.randrange(STEP_MICROS)
            extra = ""
            if g % 50 == 7:
                status, reason, ctype = 404, "Not Found", CTYPES["html"]
                body = b"<!doctype html><title>Not found</title><p>Not found</p>\n"
            elif kind == "html" and g % 67 == 5:
                status, reason, ctype = 301, "Moved Permanently", CTYPES["html"]
                body = b"<html><body>Moved</body></html>\n"
                extra = f"Location: {url.split('?')[0]}?moved=1\r\n"
            else:
                status, reason, ctype = 200, "OK", CTYPES[kind]
                if kind == "html":
                    body = bodies.html(uid * 8 + j, url)
                elif kind == "css":
                    body = bodies.css[uid % len(bodies.css)]
                elif kind == "js":
                    body = bodies.js[uid % len(bodies.js)]
                else:
                    pool = bodies.images[kind]
                    body = pool[uid % len(pool)]
            head = (
                f"HTTP/1.1 {status} {reason}\r\nDate: {_http_date(ts)}\r\nServer: nginx/1.22.1\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}"
                f"Cache-Control: max-age=300\r\nConnection: keep-alive\r\n\r\n"
            ).encode()
            writer.write(
                RecordSpec(
                    record_type="response",
                    block=Block.http_message(head, body),
                    target_uri=url,
                    content_type="application/http; msgtype=response",
                    headers=[("WARC-IP-Address", f"192.0.2.{section % hosts % 254 + 1}")],
                    date=EPOCH + timedelta(microseconds=ts),
                    precompressed=kind in MAGIC and status == 200,
                )
            )
    finally:
        writer.close()
    os.replace(tmp, final)
    return {"path": str(final), "records": len(codes), "bytes": final.stat().st_size}


_BODIES: dict[int, Bodies] = {}


def _bodies(seed: int) -> Bodies:
    if seed not in _BODIES:
        _BODIES[seed] = Bodies(seed)
    return _BODIES[seed]


def dataset(args: argparse.Namespace) -> dict[str, Any]:
    """The cached WARC set for these parameters (generated on first use)."""
    from archive.ingest.spool import store_key, warc_filename

    params = {
        "version": GEN_VERSION,
        "records": args.records,
        "per_file": args.per_file,
        "hosts": args.hosts,
        "seed": args.seed,
    }
    tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    base = args.workdir / f"data-{args.records}-{tag}"
    manifest_path = base / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if all((base / "store" / k).exists() for k in manifest["keys"]):
            log(f"data: cached {len(manifest['keys'])} WARC(s), {args.records} records in {base}")
            return manifest
    log(f"data: generating {args.records} records into {base} ...")
    started = time.monotonic()
    shutil.rmtree(base, ignore_errors=True)
    (base / "store").mkdir(parents=True)
    order = capture_order(args.records, args.seed)
    rng = random.Random(args.seed + 17)
    jobs = []
    for n, g0 in enumerate(range(0, args.records, args.per_file)):
        source = SOURCES[n % len(SOURCES)]
        run_id = str(__import__("uuid").UUID(int=rng.getrandbits(128), version=4))
        moment = EPOCH + timedelta(microseconds=T0_MICROS + g0 * STEP_MICROS)
        name = warc_filename(f"attest-{source}", moment, n + 1, run_id)
        key = store_key(name, source)
        chunk = order[g0 : g0 + args.per_file]
        jobs.append(
            {
                "path": str(base / "store" / key),
                "key": key,
                "codes": chunk.tobytes(),
                "g0": g0,
                "seed": args.seed,
                "hosts": args.hosts,
                "source": source,
                "run_id": run_id,
            }
        )
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = list(pool.map(write_warc_file, jobs))
    manifest = {
        "params": params,
        "base": str(base),
        "keys": [j["key"] for j in jobs],
        "records": sum(d["records"] for d in done),
        "warc_bytes": sum(d["bytes"] for d in done),
        "generate_s": round(time.monotonic() - started, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    log(
        f"data: {manifest['records']} records, {len(jobs)} WARC(s), "
        f"{manifest['warc_bytes'] / 1e6:.0f} MB in {manifest['generate_s']} s"
    )
    return manifest


def make_queries(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Exact and prefix queries over full sections, with the rows each must return."""
    full, _ = layout(args.records)
    if full == 0:
        raise SystemExit("--records too small: needs at least one full section of 300 captures")
    rng = random.Random(args.seed + 99)

    def exact(n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            section, u = rng.randrange(full), rng.randrange(URLS_PER_SECTION)
            out.append({"url": url_of(section, u, args.hosts), "expect": captures_of(u)})
        return out

    def prefix(n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            section = rng.randrange(full)
            url = f"http://host-{section % args.hosts}.example/section-{section // args.hosts}/"
            out.append({"url": url, "match": "prefix", "expect": SECTION_CAPTURES})
        return out

    return {
        "warmup": exact(args.warmup) + prefix(max(1, args.warmup // 10)),
        "exact": exact(args.exact),
        "prefix": prefix(args.prefix),
    }


# --- indexing --------------------------------------------------------------------------------


def fresh_store(data: dict[str, Any], target: Path) -> Path:
    """A new store root whose WARCs are hard links to the cached ones (no copy, no CDXJ yet)."""
    shutil.rmtree(target, ignore_errors=True)
    src = Path(data["base"]) / "store"
    for key in data["keys"]:
        dest = target / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src / key, dest)
        except OSError:
            os.symlink(src / key, dest)
    return target


def run_child(
    cmd: list[str], *, env: dict[str, str] | None = None
) -> tuple[float, dict[str, Any], str]:
    """Run ``cmd``; (wall s, its resource use, stdout).

    CPU is the child's and its reaped children's (``wait4``); ``peak_rss_mb`` is the largest
    single process (``ru_maxrss``); ``peak_rss_tree_mb`` the peak of the summed RSS of the
    child and its children (worker processes), sampled every 0.2 s.
    """
    import threading

    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    peak_tree = [0]
    done = threading.Event()

    def pump(stream: Any, sink: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.append(chunk)

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.wait(0.2):
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for child in procs:
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            peak_tree[0] = max(peak_tree[0], total)

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out_chunks), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err_chunks), daemon=True),
        threading.Thread(target=sample, daemon=True),
    ]
    for t in threads:
        t.start()
    # Reap with wait4 to get this child's own resource use (Popen.wait would discard it).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    out = b"".join(out_chunks).decode()
    if proc.returncode != 0:
        err = b"".join(err_chunks).decode(errors="replace")
        raise SystemExit(
            f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed ({proc.returncode}):\n{err[-3000:]}"
        )
    rusage = {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "peak_rss_tree_mb": peak_tree[0] / 2**20,
    }
    return wall, rusage, out


def attest_index(
    data: dict[str, Any],
    run_dir: Path,
    *,
    profile: Path | None = None,
    pragmas: list[str] | None = None,
    workers: int = 1,
    capture: str = "verified",
    code: Path | None = None,
) -> dict[str, Any]:
    store = fresh_store(data, run_dir / "store")
    db_path = run_dir / "index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    job = {"store": str(store), "db": str(db_path), "keys": data["keys"], "workers": workers,
           "capture": capture}  # fmt: skip
    if profile is not None:
        job["profile"] = str(profile)
    if pragmas:
        job["pragmas"] = pragmas
    env = None if code is None else dict(os.environ, ATTEST_BENCH_CODE=str(code))
    wall, usage, out = run_child(
        [sys.executable, __file__, "--child-attest-index", json.dumps(job)], env=env
    )
    res = json.loads(out.strip().splitlines()[-1])
    res.update(usage)
    res["process_wall_s"] = wall
    res["db_path"] = str(db_path)
    res["store"] = str(store)
    res["records_per_s"] = res["rows"] / res["wall_s"]
    return res


def child_attest_index(job: dict[str, Any]) -> None:
    """In a child process: index every key as ``attest index`` does, timing each phase.

    Phases are timed by wrapping the functions the indexer looks up at call time; a name the
    indexer no longer has is simply not timed. With ``workers`` > 1, WARCs are read in worker
    processes: only the phases of this (loading) process are timed then.
    """
    import inspect
    import resource

    import archive.index.cdxj as cdxj
    import archive.ingest.indexer as indexer
    import archive.warc.text as textextract
    from archive.custody.log import CustodyLog
    from archive.index.db import IndexDB
    from archive.store import FileStore

    phases: dict[str, float] = {}
    calls: dict[str, list[float]] = {}

    def timed(name: str, fn: Any, classify: Any = None) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                label = classify(*a, **kw) if classify else name
                spent = time.perf_counter() - t
                phases[label] = phases.get(label, 0.0) + spent
                if label in ("db_load", "parse_warc", "read_warc_index"):
                    calls.setdefault(label, []).append(round(spent, 3))

        return wrapper

    def wrap(owner: Any, attr: str, label: str, classify: Any = None) -> bool:
        if not hasattr(owner, attr):
            return False
        setattr(owner, attr, timed(label, getattr(owner, attr), classify))
        return True

    wrap(indexer, "parse_warc", "parse_warc")
    wrap(indexer, "read_warc_index", "read_warc_index")
    wrap(cdxj.WarcIndex, "cdxj", "cdxj_lines")
    wrap(indexer, "_store_cdxj", "cdxj_store")
    wrap(
        indexer,
        "file_sha256",
        "sha256",
        lambda path, **_: "sha256_cdxj" if str(path).endswith(".cdxj") else "sha256_warc",
    )
    wrap(textextract, "html_text", "html_text")
    if not wrap(IndexDB, "load_values", "db_load"):
        wrap(IndexDB, "load", "db_load")
    wrap(
        IndexDB,
        "executemany",
        "db_executemany",
        lambda self, sql, rows: "db_insert_texts" if "INTO texts" in sql else "db_insert_captures",
    )
    try:  # where the index database has dialect objects, the captures' insert is theirs
        from archive.index.dialects import PostgresDialect, SqliteDialect
    except ImportError:
        pass
    else:
        wrap(SqliteDialect, "insert_captures", "db_insert_captures")
        wrap(PostgresDialect, "insert_captures", "db_insert_captures")
    store = FileStore(Path(job["store"]))
    db = IndexDB(job["db"])
    for pragma in job.get("pragmas", []):  # experiments only (--sqlite-pragma)
        db.execute(f"PRAGMA {pragma}")
    custody = CustodyLog(db, store)
    if job.get("capture") == "verified":
        # As `attest crawl` (or a DAG) leaves each WARC: a capture entry recording the upload of
        # a file the spool verified record by record (not timed).
        from archive.store import file_sha256

        for key in job["keys"]:
            path = store.root / key
            custody.append("capture", store.object_uri(key), {
                "sha256": file_sha256(path), "size": path.stat().st_size, "records": None,
                "run_id": None, "verified_before_upload": True,
            })  # fmt: skip
    wrap(custody, "append", "custody")
    extra: dict[str, Any] = {}
    if "workers" in inspect.signature(indexer.index_keys).parameters:
        extra["workers"] = job.get("workers", 1)
    elif job.get("workers", 1) != 1:
        raise SystemExit("this attest's index_keys has no workers parameter: use --workers 1")
    keys = job["keys"]
    profiler = cProfile.Profile() if job.get("profile") else None
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    results = indexer.index_keys(db, store, keys, custody=custody, **extra)
    if profiler:
        profiler.disable()
    t1 = time.perf_counter()
    counts = db.counts()
    t2 = time.perf_counter()
    db.close()  # the last connection checkpoints the WAL into the file
    t3 = time.perf_counter()
    cpu1 = time.process_time()
    failed = [r.as_dict() for r in results if r.error]
    if failed:
        raise SystemExit(f"attest indexing failed: {failed[:3]}")
    if profiler:
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
        Path(job["profile"]).write_text(buf.getvalue())
    rows = sum(r.rows for r in results)
    print(
        json.dumps(
            {
                "rows": rows,
                "texts": sum(r.texts for r in results),
                "db_counts": counts,
                "index_s": t1 - t0,
                "close_s": t3 - t2,
                "wall_s": (t1 - t0) + (t3 - t2),
                "cpu_in_process_s": cpu1 - cpu0,
                "phases_s": phases,
                "per_warc_s": calls,
                "pragmas": job.get("pragmas", []),
                "workers": extra.get("workers", 1),
                "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "profiled": bool(profiler),
            }
        )
    )


def attest_cdxj_only(data: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Like for like with cdxj-indexer: attest's WARC reader making only the CDXJ files."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    src = Path(data["base"]) / "store"
    job = {"store": str(src), "out": str(run_dir), "keys": data["keys"]}
    wall, usage, out = run_child([sys.executable, __file__, "--child-attest-cdxj", json.dumps(job)])
    res = json.loads(out.strip().splitlines()[-1])
    res.update(usage)
    res["process_wall_s"] = wall
    res["records_per_s"] = res["rows"] / res["wall_s"]
    shutil.rmtree(run_dir, ignore_errors=True)
    return res


def child_attest_cdxj(job: dict[str, Any]) -> None:
    """In a child process: ``read_warc_index(texts=False)`` and ``WarcIndex.cdxj()`` per WARC,
    written to a local file: no store, no database, no page texts."""
    import resource

    from archive.index.cdxj import read_warc_index

    out = Path(job["out"])
    rows = 0
    t0 = time.perf_counter()
    for n, key in enumerate(job["keys"]):
        index = read_warc_index(Path(job["store"]) / key, key, texts=False)
        data = index.cdxj()
        rows += data.count(b"\n")
        (out / f"{n}.cdxj").write_bytes(data)
    wall = time.perf_counter() - t0
    print(json.dumps({"rows": rows, "wall_s": wall,
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))  # fmt: skip


def cdxj_checks(store: Path, keys: list[str], baseline: Path) -> dict[str, Any]:
    """Is cdxj-indexer's file sorted (pywb's binary search needs it), and do attest's CDXJ files
    (each sorted), merged, hold exactly its lines?"""
    env = dict(os.environ, LC_ALL="C")
    is_sorted = (
        subprocess.run(["sort", "-c", str(baseline)], env=env, capture_output=True).returncode == 0
    )
    merged = subprocess.Popen(
        ["sort", "-m", *[str(store / (k + ".cdxj")) for k in keys]], env=env, stdout=subprocess.PIPE
    )
    same = subprocess.run(["cmp", "-s", "-", str(baseline)], stdin=merged.stdout).returncode == 0
    assert merged.stdout is not None
    merged.stdout.close()
    merged.wait()
    return {"cdxj_indexer_sorted": is_sorted, "attest_cdxj_equals_cdxj_indexer": same}


def baseline_files(data: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], int]:
    """The WARC keys cdxj-indexer is timed on: all, or the first ones covering --baseline-records."""
    if not args.baseline_records or args.baseline_records >= data["records"]:
        return list(data["keys"]), data["records"]
    files = max(1, -(-args.baseline_records // args.per_file))
    keys = data["keys"][:files]
    return keys, min(data["records"], files * args.per_file)


def cdxj_indexer(store: Path, keys: list[str], out: Path) -> dict[str, Any]:
    exe = VENV / "cdxj-indexer"
    if not exe.exists():
        raise SystemExit(f"{exe} is missing (pip install cdxj-indexer==1.5.0 into .venv)")
    out.unlink(missing_ok=True)
    cmd = [
        str(exe),
        "-s",
        "--dir-root",
        str(store),
        "-o",
        str(out),
        *[str(store / k) for k in keys],
    ]
    wall, usage, _ = run_child(cmd)
    with open(out, "rb") as fh:
        lines = sum(1 for _ in fh)
    return {
        "rows": lines,
        "wall_s": wall,
        "records_per_s": lines / wall,
        "bytes": out.stat().st_size,
        **usage,
    }


# --- lookups ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float | None:
    """Peak RSS (VmHWM) of a process and its children, summed."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Server:
    """A server subprocess in its own process group, stopped on exit."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, port: int, probe: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", probe)
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def cdx_path(prefix: str, q: dict[str, Any]) -> str:
    params = {"url": q["url"]}
    if q.get("match"):
        params["matchType"] = q["match"]
    return f"{prefix}?{urllib.parse.urlencode(params)}"


class Client:
    """One HTTP client per server: a keep-alive connection, or a new one per query."""

    def __init__(self, port: int, prefix: str) -> None:
        self.port = port
        self.prefix = prefix
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.server_closed = 0
        self.idle_closed = 0

    def query(self, q: dict[str, Any], *, fresh: bool = False) -> tuple[float, list[str]]:
        """Latency (ms; with ``fresh`` the connect is timed too) and the ``urlkey timestamp``
        of each row returned."""
        path = cdx_path(self.prefix, q)
        t = time.perf_counter()
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # The server dropped an idle keep-alive connection (as any client, e.g. urllib3,
            # would): reconnect and send again, timed from the reconnect.
            self.idle_closed += 1
            self.conn.close()
            t = time.perf_counter()
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
        body = resp.read()
        ms = (time.perf_counter() - t) * 1000
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}: {body[:300]!r}")
        if fresh or resp.will_close:
            self.conn.close()  # http.client connects again on the next request
            self.server_closed += not fresh
        rows = [
            " ".join(line.split(" ", 2)[:2]) for line in body.decode().splitlines() if line.strip()
        ]
        return ms, rows

    def close(self) -> None:
        self.conn.close()


def run_interleaved(
    clients: dict[str, Client],
    queries: list[dict[str, Any]],
    *,
    fresh: bool = False,
    block: int = 50,
) -> dict[str, tuple[list[float], list[list[str]]]]:
    """Each server answers the same queries in blocks of ``block``, servers taking turns (and
    turns about who goes first), so drift on a busy machine hits both alike. Each block starts
    with one untimed query (the one before the block): the first answer after the other
    server's turn (seconds idle) is slower, an artefact of taking turns, not of the server."""
    out: dict[str, tuple[list[float], list[list[str]]]] = {n: ([], []) for n in clients}
    names = list(clients)
    for n, start in enumerate(range(0, len(queries), block)):
        chunk = queries[start : start + block]
        for name in names[n % len(names) :] + names[: n % len(names)]:
            lat, rows = out[name]
            clients[name].query(queries[start - 1] if start else queries[-1], fresh=fresh)
            for q in chunk:
                ms, r = clients[name].query(q, fresh=fresh)
                lat.append(ms)
                rows.append(r)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def lookup_stats(lat: list[float], rows: list[list[str]]) -> dict[str, Any]:
    counts = [len(r) for r in rows]
    return {
        "latencies_ms": [round(x, 3) for x in lat],
        "n": len(lat),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "mean_ms": statistics.fmean(lat) if lat else float("nan"),
        "max_ms": max(lat) if lat else float("nan"),
        "rows_mean": statistics.fmean(counts) if counts else 0,
        "rows_total": sum(counts),
    }


def attest_server(
    args: argparse.Namespace, attest_run: dict[str, Any], logs: Path, code: Path | None = None
) -> tuple[Server, int]:
    """``attest serve --no-replay`` over the run's index: this checkout's, or ``code``'s (its
    ``.venv/bin/attest``), as the same user would start it."""
    checkout = code if code is not None else ROOT
    exe = checkout / ".venv" / "bin" / "attest"
    help_text = subprocess.run([str(exe), "serve", "--help"], capture_output=True, text=True)
    if help_text.returncode != 0 or "--no-replay" not in help_text.stdout:
        raise RuntimeError("`attest serve --no-replay` is not available yet")
    port = free_port()
    home = args.workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_INDEX=attest_run["db_path"],
        ATTEST_STORE=Path(attest_run["store"]).as_uri(),
    )
    env.pop("ATTEST_TOKENS", None)
    server = Server(
        "attest serve",
        [str(exe), "serve", "--no-replay", "--host", "127.0.0.1", "--port", str(port)],
        env,
        logs / f"attest-serve{'-compare' if code is not None else ''}.log",
        checkout,
    )
    return server, port


def pywb_server(
    args: argparse.Namespace, index: Path, store: Path, logs: Path
) -> tuple[Server, int]:
    wayback = REPLAY_VENV / "wayback"
    if not wayback.exists():
        raise RuntimeError(f"{wayback} is missing (pywb 2.10 in .venv-replay)")
    root = args.workdir / "pywb"
    coll = root / "collections" / "bench"
    if not coll.exists():
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(REPLAY_VENV / "wb-manager"), "init", "bench"], cwd=root, check=True,
                       capture_output=True)  # fmt: skip
    for sub in ("indexes", "archive"):
        shutil.rmtree(coll / sub, ignore_errors=True)
        (coll / sub).mkdir(parents=True)
    try:
        os.link(index, coll / "indexes" / "index.cdxj")
    except OSError:
        shutil.copyfile(index, coll / "indexes" / "index.cdxj")
    # The CDXJ names each WARC by its store key (warcs/<source>/...): same layout under archive/.
    os.symlink(store / "warcs", coll / "archive" / "warcs")
    port = free_port()
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    server = Server(
        "pywb wayback",
        [str(wayback), "-b", "127.0.0.1", "-p", str(port), "-d", str(root)],
        env,
        logs / "pywb.log",
        root,
    )
    return server, port


def lookups(
    args: argparse.Namespace,
    attest_run: dict[str, Any],
    pywb_index: Path | None,
    queries: dict[str, Any],
) -> dict[str, Any]:
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    servers: dict[str, tuple[Server, int, str]] = {}
    skipped: dict[str, str] = {}
    out: dict[str, Any] = {"servers": {}, "skipped": skipped}
    try:
        probe_q = queries["exact"][0]
        if "attest" in args.lookup_tools:
            try:
                server, port = attest_server(args, attest_run, logs)
                server.wait_ready(port, cdx_path("/cdx", probe_q), 120)
                servers["attest"] = (server, port, "/cdx")
            except RuntimeError as exc:
                skipped["attest"] = str(exc)
                log(f"lookups: attest skipped: {exc}")
        if "attest" in args.lookup_tools and args.compare is not None:
            # The same index served by the other checkout's code, taking turns with this one.
            server, port = attest_server(args, attest_run, logs, code=args.compare)
            server.wait_ready(port, cdx_path("/cdx", probe_q), 120)
            servers["attest-compare"] = (server, port, "/cdx")
        if "pywb" in args.lookup_tools:
            if pywb_index is None:
                skipped["pywb"] = "no cdxj-indexer index of the whole data set"
            else:
                try:
                    server, port = pywb_server(args, pywb_index, Path(attest_run["store"]), logs)
                    server.wait_ready(port, cdx_path("/bench/cdx", probe_q), 120)
                    servers["pywb"] = (server, port, "/bench/cdx")
                except RuntimeError as exc:
                    skipped["pywb"] = str(exc)
                    log(f"lookups: pywb skipped: {exc}")
        rows_by: dict[str, dict[str, list[list[str]]]] = {n: {} for n in servers}
        clients = {name: Client(port, prefix) for name, (_, port, prefix) in servers.items()}
        results: dict[str, dict[str, Any]] = {n: {} for n in servers}
        try:
            log(f"lookups: warm-up ({len(queries['warmup'])} queries per server)")
            run_interleaved(clients, queries["warmup"])
            modes = [("", False), ("_fresh", True)] if args.fresh_connections else [("", False)]
            passes: dict[str, dict[str, list[dict[str, Any]]]] = {n: {} for n in servers}
            for rep in range(args.lookup_repeat):
                for kind in ("exact", "prefix"):
                    for suffix, fresh in modes:
                        log(
                            f"lookups: pass {rep + 1}/{args.lookup_repeat}: {len(queries[kind])} {kind} "
                            f"queries per server, {'new connection each' if fresh else 'keep-alive'}, "
                            f"load {os.getloadavg()[0]:.2f}"
                        )
                        for name, (lat, rows) in run_interleaved(
                            clients, queries[kind], fresh=fresh
                        ).items():
                            passes[name].setdefault(kind + suffix, []).append(
                                lookup_stats(lat, rows)
                            )
                            if not fresh and rep == 0:
                                rows_by[name][kind] = rows
            for name, by_kind in passes.items():
                for key, stats in by_kind.items():
                    # Median over passes of each figure: one burst of load from elsewhere on
                    # the machine moves one pass, not the result.
                    merged = {
                        k: statistics.median(s[k] for s in stats)
                        for k in stats[0]
                        if k != "latencies_ms"
                    }
                    merged["passes"] = stats
                    results[name][key] = merged
        except (RuntimeError, OSError, http.client.HTTPException) as exc:
            out["error"] = f"lookups stopped: {exc!r}"
            log(out["error"])
            for name, (server, _, _) in servers.items():
                log(f"{name} log tail:\n{server.tail()}")
            return out
        finally:
            for c in clients.values():
                c.close()
        for name, (server, _, _) in servers.items():
            result = results[name]
            for kind in ("exact", "prefix"):
                wrong = [
                    (q["url"], q["expect"], len(r))
                    for q, r in zip(queries[kind], rows_by[name][kind], strict=True)
                    if len(r) != q["expect"]
                ]
                result[kind]["unexpected_counts"] = len(wrong)
                result[kind]["unexpected_examples"] = wrong[:5]
            result["peak_rss_mb"] = peak_rss_mb(server.proc.pid)
            result["server_closed_connections"] = clients[name].server_closed
            result["idle_connections_dropped_by_server"] = clients[name].idle_closed
            if clients[name].idle_closed:
                log(
                    f"lookups: {name} dropped an idle keep-alive connection {clients[name].idle_closed} times"
                )
            out["servers"][name] = result
        if "attest" in rows_by and "pywb" in rows_by:
            mismatch = {}
            for kind in ("exact", "prefix"):
                a, b = rows_by["attest"][kind], rows_by["pywb"][kind]
                count_diff = [
                    (q["url"], len(x), len(y))
                    for q, x, y in zip(queries[kind], a, b, strict=True)
                    if len(x) != len(y)
                ]
                content_diff = [
                    q["url"]
                    for q, x, y in zip(queries[kind], a, b, strict=True)
                    if sorted(x) != sorted(y)
                ]
                mismatch[kind] = {
                    "row_count_mismatches": len(count_diff),
                    "row_count_examples": count_diff[:5],
                    "content_mismatches": len(content_diff),
                    "content_examples": content_diff[:5],
                }
            out["attest_vs_pywb"] = mismatch
    finally:
        for server, _, _ in servers.values():
            server.stop()
    return out


# --- reporting -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def sizes(attest_run: dict[str, Any], baseline_index: Path | None) -> dict[str, Any]:
    db = Path(attest_run["db_path"])

    def size(p: Path) -> int:
        return p.stat().st_size if p.exists() else 0

    ours_cdxj = sum(p.stat().st_size for p in Path(attest_run["store"]).rglob("*.cdxj"))
    return {
        "sqlite_bytes": size(db),
        "sqlite_wal_bytes": size(Path(str(db) + "-wal")),
        "attest_cdxj_bytes": ours_cdxj,
        "cdxj_indexer_bytes": size(baseline_index) if baseline_index else None,
    }


def _phase_table(a: dict[str, Any], *, workers: int) -> list[str]:
    ph = a["phases_s"]
    wall = a["wall_s"]
    if workers == 1:
        title = "Where attest's indexing time goes, one process (median over runs, seconds):"
        tree = [
            ("parse_warc: everything before the database", "parse_warc", 0),
            ("read_warc_index (inflate, parse headers, SURT, rows)", "read_warc_index", 1),
            ("of which html_text (lxml page text)", "html_text", 2),
            ("WarcIndex.cdxj (CDXJ lines, sorted)", "cdxj_lines", 1),
            ("SHA-256 of the WARC", "sha256_warc", 1),
            ("CDXJ written and put beside the WARC", "cdxj_store", 0),
            ("IndexDB.load_values (one transaction per WARC)", "db_load", 0),
            ("of which executemany captures", "db_insert_captures", 1),
            ("of which executemany FTS5 texts", "db_insert_texts", 1),
            ("custody log appends", "custody", 0),
        ]
    else:
        title = (
            f"The loading process with {workers} reading workers (median over runs, seconds); "
            "the rest of the wall time it waits for the workers:"
        )
        tree = [
            ("CDXJ written and put beside the WARC", "cdxj_store", 0),
            ("IndexDB.load_values (one transaction per WARC)", "db_load", 0),
            ("of which executemany captures", "db_insert_captures", 1),
            ("of which executemany FTS5 texts", "db_insert_texts", 1),
            ("custody log appends", "custody", 0),
        ]
    lines = [title, "", "| phase | s | share of wall |", "|---|---:|---:|"]
    top = 0.0
    for label, key, depth in tree:
        if key not in ph:
            continue
        secs = ph[key]
        top += secs if depth == 0 else 0.0
        pad = "&nbsp;&nbsp;" * depth * 2
        lines.append(f"| {pad}{label} | {secs:.2f} | {100 * secs / wall:.0f}% |")
    rest = wall - top
    other = (
        "other (WAL checkpoint, loop)" if workers == 1 else "waiting for the reading workers, other"
    )
    lines.append(f"| {other} | {rest:.2f} | {100 * rest / wall:.0f}% |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    lines = []
    idx = result["indexing"]
    a, b = idx["attest"], idx.get("cdxj_indexer")
    single = idx.get("attest_single")
    lines.append(
        f"### Indexing: {result['data']['records']:,} records in {len(result['data']['keys'])} WARC(s) "
        f"({result['data']['warc_bytes'] / 1e6:,.0f} MB), attest at {result['machine'].get('attest_commit')}\n"
    )
    if result["args"].get("sqlite_pragma"):
        lines.append(
            f"(experiment: PRAGMA {', '.join(result['args']['sqlite_pragma'])} on attest's index)\n"
        )
    lines.append(
        "| tool | records | runs | wall s (median) | records/s | CPU s | peak RSS MB (largest process) "
        "| peak RSS MB (all processes) |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")

    def row(name: str, r: dict[str, Any]) -> str:
        tree = r.get("peak_rss_tree_mb")
        return (
            f"| {name} | {r['rows']:,} | {r['runs']} | {r['wall_s']:.2f} | {r['records_per_s']:,.0f} | "
            f"{r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {'-' if tree is None else f'{tree:.0f}'} |"
        )

    full = "CDXJ + SQLite + FTS5 texts + custody"
    mode = result["args"].get("capture_entries", "verified")
    how = (
        "every record's digests recomputed"
        if mode == "none"
        else "WARCs with capture entries as a crawl leaves them: whole-file SHA-256 checked"
    )
    lines.append(row(f"attest, {a['workers']} reading worker(s) ({full}; {how})", a))
    if idx.get("attest_unverified"):
        lines.append(row(
            f"attest, {a['workers']} reading worker(s), no capture entries (every record's "
            "digests recomputed)", idx["attest_unverified"],
        ))  # fmt: skip
    if idx.get("attest_compare"):
        lines.append(row(
            f"attest at {idx['attest_compare']['code']} (same data, same options)",
            idx["attest_compare"],
        ))  # fmt: skip
    if single and a["workers"] != 1:
        lines.append(row(f"attest, one process ({full})", single))
    lite = idx.get("attest_cdxj_only")
    if lite:
        lines.append(row("attest's reader, CDXJ files only (one process, no DB, no texts)", lite))
    if b:
        subset = "" if b["subset_records"] == result["data"]["records"] else " (subset)"
        lines.append(row(f"cdxj-indexer 1.5.0 -s{subset} (one process)", b))
        lines.append(
            f"\n**attest / cdxj-indexer records/s: {idx['ratio']:.2f}x** (target >= 10x; "
            f"{a['workers']} worker(s) on {result['machine']['cpus']} CPUs)"
        )
        if single and a["workers"] != 1:
            lines.append(f"\nOne process each: {single['records_per_s'] / b['records_per_s']:.2f}x")
        if lite:
            lines.append(
                f"\nLike for like (CDXJ only, one process each): {idx['ratio_cdxj_only']:.2f}x"
            )
        lines.append("")
    if single:
        lines.extend(_phase_table(single, workers=1))
        lines.append("")
    if a["workers"] != 1:
        lines.extend(_phase_table(a, workers=a["workers"]))
    s = result["sizes"]
    lines.append("\n### Index size on disk\n")
    lines.append("| index | MB | bytes/record |")
    lines.append("|---|---:|---:|")
    n = a["rows"]
    sq = s["sqlite_bytes"] + s["sqlite_wal_bytes"]
    lines.append(
        f"| attest SQLite (+WAL {s['sqlite_wal_bytes'] / 1e6:.1f} MB) | {sq / 1e6:.1f} | {sq / n:.0f} |"
    )
    lines.append(
        f"| attest CDXJ beside the WARCs | {s['attest_cdxj_bytes'] / 1e6:.1f} | {s['attest_cdxj_bytes'] / n:.0f} |"
    )
    if s.get("cdxj_indexer_bytes"):
        rows = s.get("cdxj_indexer_rows") or n
        lines.append(
            f"| cdxj-indexer CDXJ ({rows:,} rows) | {s['cdxj_indexer_bytes'] / 1e6:.1f} | "
            f"{s['cdxj_indexer_bytes'] / rows:.0f} |"
        )
    if result["machine"].get("warning"):
        lines.append(f"\n**WARNING: {result['machine']['warning']}**")
    checks = result.get("checks")
    if checks:
        lines.append(
            f"\ncdxj-indexer output sorted (pywb needs it): {checks['cdxj_indexer_sorted']}; attest's "
            f"per-WARC CDXJ files merged == cdxj-indexer's lines: {checks['attest_cdxj_equals_cdxj_indexer']}"
        )
    look = result.get("lookups")
    if look:
        lines.append("\n### Lookups over HTTP (same client, same queries)\n")
        lines.append(
            "| server | connection | exact p50 ms | exact p99 ms | prefix p50 ms | prefix p99 ms "
            "| rows/exact | rows/prefix | peak RSS MB |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, r in look["servers"].items():
            rss = r.get("peak_rss_mb")
            for suffix, conn in (("", "keep-alive"), ("_fresh", "new per query")):
                if f"exact{suffix}" not in r:
                    continue
                e, p = r[f"exact{suffix}"], r[f"prefix{suffix}"]
                lines.append(
                    f"| {name} | {conn} | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {p['p50_ms']:.2f} | "
                    f"{p['p99_ms']:.2f} | {e['rows_mean']:.2f} | {p['rows_mean']:.1f} | "
                    f"{'-' if rss is None else f'{rss:.0f}'} |"
                )
        for name, why in look["skipped"].items():
            lines.append(f"\n{name}: SKIPPED: {why.splitlines()[0]}")
        if "attest" in look["servers"]:
            r = look["servers"]["attest"]
            lines.append(
                f"\nattest exact p99 {r['exact']['p99_ms']:.2f} ms (target < 2 ms); "
                f"prefix p50 {r['prefix']['p50_ms']:.2f} ms (target < 20 ms)"
            )
        for name, r in look["servers"].items():
            for kind in ("exact", "prefix"):
                if r[kind]["unexpected_counts"]:
                    lines.append(
                        f"\n{name} {kind}: {r[kind]['unexpected_counts']} queries returned other than the "
                        f"expected rows, e.g. {r[kind]['unexpected_examples'][:2]}"
                    )
        if "attest_vs_pywb" in look:
            for kind, m in look["attest_vs_pywb"].items():
                lines.append(
                    f"\n{kind}: attest vs pywb: {m['row_count_mismatches']} row-count mismatches, "
                    f"{m['content_mismatches']} (urlkey, timestamp) mismatches"
                )
    return "\n".join(lines)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs; phases (seconds) in descending order."""
    last = runs[-1]
    phases = {
        k: statistics.median(r["phases_s"].get(k, 0.0) for r in runs) for k in last["phases_s"]
    }
    return {
        "runs": len(runs),
        "rows": last["rows"],
        "texts": last["texts"],
        "wall_s": median_of(runs, "wall_s"),
        "records_per_s": median_of(runs, "records_per_s"),
        "cpu_s": median_of(runs, "cpu_s"),
        "peak_rss_mb": median_of(runs, "peak_rss_mb"),
        "peak_rss_tree_mb": median_of(runs, "peak_rss_tree_mb"),
        "phases_s": dict(sorted(phases.items(), key=lambda kv: -kv[1])),
    }


def git_head() -> str | None:
    """The commit of the code measured, with ``+dirty`` when the working tree differs."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    if head.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "archive", "cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def run_profile(args: argparse.Namespace, data: dict[str, Any], runs_dir: Path) -> dict[str, Any]:
    """attest indexing of the first ``--profile-files`` WARCs under cProfile (a fresh index)."""
    prof = args.workdir / "attest-index.prof.txt"
    subset = dict(data, keys=data["keys"][: args.profile_files])
    log(f"profile: attest indexing of {len(subset['keys'])} WARC(s) under cProfile")
    res = attest_index(
        subset, runs_dir / "attest-profile", profile=prof, pragmas=args.sqlite_pragma
    )
    shutil.rmtree(runs_dir / "attest-profile", ignore_errors=True)
    log(
        f"profile: {res['rows']} rows in {res['wall_s']:.1f} s under cProfile; top functions in {prof}"
    )
    return {
        "path": str(prof),
        "warcs": len(subset["keys"]),
        "rows": res["rows"],
        "wall_s_under_profiler": res["wall_s"],
        "phases_s": res["phases_s"],
    }


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=100_000, help="records per WARC file")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/attest-bench-index"))
    parser.add_argument("--repeat", type=int, default=3, help="attest indexing runs (median)")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 8),
        help="attest's reading processes (default as `attest index`: the CPUs, at most 8)",
    )
    parser.add_argument(
        "--breakdown-runs",
        type=int,
        default=1,
        help="extra attest runs in one process (--workers 1), for the per-phase breakdown",
    )
    parser.add_argument("--repeat-baseline", type=int, default=1, help="cdxj-indexer runs (median)")
    parser.add_argument(
        "--baseline-records",
        type=int,
        default=0,
        help="time cdxj-indexer on the first WARCs holding this many records (0: all)",
    )
    parser.add_argument("--exact", type=int, default=2000, help="exact-URL lookups")
    parser.add_argument("--prefix", type=int, default=200, help="prefix lookups (~300 rows each)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up lookups per server")
    parser.add_argument("--lookup-tools", default="attest,pywb")
    parser.add_argument(
        "--lookup-repeat",
        type=int,
        default=3,
        help="passes over the queries (median of each figure)",
    )
    parser.add_argument(
        "--no-fresh-connections",
        dest="fresh_connections",
        action="store_false",
        help="skip the second lookup pass that opens a new connection per query",
    )
    parser.add_argument("--no-lookups", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="skip cdxj-indexer (and pywb)")
    parser.add_argument(
        "--profile", action="store_true", help="also run attest indexing once under cProfile"
    )
    parser.add_argument("--profile-files", type=int, default=1, help="WARCs indexed under cProfile")
    parser.add_argument(
        "--sqlite-pragma",
        action="append",
        default=[],
        metavar="PRAGMA",
        help="experiment: run 'PRAGMA <this>' on attest's index connection before indexing "
        "(e.g. cache_size=-262144); repeatable; recorded in the results",
    )
    parser.add_argument(
        "--only-profile", action="store_true", help="only the cProfile run (no timing, no lookups)"
    )
    parser.add_argument(
        "--capture-entries",
        choices=("verified", "none", "both"),
        default="verified",
        help="before indexing, a custody 'capture' entry per WARC as `attest crawl` leaves it (the "
        "upload of a file verified record by record: the index checks the whole file's SHA-256); "
        "'none': no entry, every record's digests recomputed; 'both': time both (interleaved)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="also index with the attest code in CHECKOUT (e.g. a git worktree of an older "
        "commit), interleaved, and serve the lookups with it too (its .venv/bin/attest, taking "
        "turns with this checkout's server): same data and options, an A/B in one run",
    )
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.lookup_tools = [t for t in args.lookup_tools.split(",") if t]

    load_start = os.getloadavg()
    data = dataset(args)
    if args.only_profile:
        info = run_profile(args, data, args.workdir / "runs")
        print(Path(info["path"]).read_text())
        return 0
    queries = make_queries(args)
    runs_dir = args.workdir / "runs"
    attest_runs: list[dict[str, Any]] = []
    compare_runs: list[dict[str, Any]] = []  # --compare: another checkout's code
    unverified_runs: list[dict[str, Any]] = []  # --capture-entries both: no capture entries
    single_runs: list[dict[str, Any]] = []  # workers=1: the per-phase breakdown
    base_runs: list[dict[str, Any]] = []
    cdxj_only_runs: list[dict[str, Any]] = []
    base_keys, base_records = baseline_files(data, args)
    base_out = args.workdir / "cdxj-indexer.cdxj"
    single_extra = 0 if args.workers == 1 else args.breakdown_runs
    baseline_reps = 0 if args.no_baseline else args.repeat_baseline
    os.sync()  # no writeback of freshly generated WARCs during the timed runs
    kept: Path | None = None
    for rep in range(max(args.repeat, baseline_reps, single_extra)):
        # Interleaved: drift on a busy machine hits every contender alike.
        if rep < args.repeat and args.compare is not None:
            run = attest_index(
                data, runs_dir / "attest-compare", pragmas=args.sqlite_pragma,
                workers=args.workers, code=args.compare,
                capture="none" if args.capture_entries == "none" else "verified",
            )  # fmt: skip
            compare_runs.append(run)
            shutil.rmtree(runs_dir / "attest-compare", ignore_errors=True)
            log(f"rep {rep + 1} attest at {args.compare} ({args.workers} worker(s)) "
                f"{run['rows']} rows in {run['wall_s']:.2f} s = {run['records_per_s']:,.0f} "
                f"records/s, cpu {run['cpu_s']:.2f} s")  # fmt: skip
        if rep < args.repeat and args.capture_entries == "both":
            run = attest_index(
                data, runs_dir / "attest-unverified", pragmas=args.sqlite_pragma,
                workers=args.workers, capture="none",
            )  # fmt: skip
            unverified_runs.append(run)
            shutil.rmtree(runs_dir / "attest-unverified", ignore_errors=True)
            log(f"rep {rep + 1} attest, no capture entries (every record checked) "
                f"{run['rows']} rows in {run['wall_s']:.2f} s = {run['records_per_s']:,.0f} "
                f"records/s, cpu {run['cpu_s']:.2f} s")  # fmt: skip
        if rep < args.repeat:
            run_dir = runs_dir / f"attest-{rep}"
            run = attest_index(
                data, run_dir, pragmas=args.sqlite_pragma, workers=args.workers,
                capture="none" if args.capture_entries == "none" else "verified",
            )  # fmt: skip
            attest_runs.append(run)
            if args.workers == 1:
                single_runs.append(run)
            log(
                f"rep {rep + 1} attest ({args.workers} worker(s)) {run['rows']} rows in "
                f"{run['wall_s']:.2f} s = {run['records_per_s']:,.0f} records/s, cpu {run['cpu_s']:.2f} s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB (tree {run['peak_rss_tree_mb']:.0f} MB)"
            )
            if kept is not None:  # keep only the last run's store and index (for the lookups)
                shutil.rmtree(kept, ignore_errors=True)
            kept = run_dir
        if rep < single_extra:
            run_dir = runs_dir / "attest-single"
            run = attest_index(data, run_dir, pragmas=args.sqlite_pragma, workers=1)
            single_runs.append(run)
            shutil.rmtree(run_dir, ignore_errors=True)
            log(
                f"rep {rep + 1} attest (1 process) {run['rows']} rows in {run['wall_s']:.2f} s = "
                f"{run['records_per_s']:,.0f} records/s, peak RSS {run['peak_rss_mb']:.0f} MB"
            )
        if rep < baseline_reps:
            lite = attest_cdxj_only(data, runs_dir / "attest-cdxj-only")
            cdxj_only_runs.append(lite)
            log(
                f"rep {rep + 1} attest CDXJ only {lite['rows']} lines in {lite['wall_s']:.2f} s = "
                f"{lite['records_per_s']:,.0f} records/s, peak RSS {lite['peak_rss_mb']:.0f} MB"
            )
            res = cdxj_indexer(Path(data["base"]) / "store", base_keys, base_out)
            base_runs.append(res)
            log(
                f"rep {rep + 1} cdxj-indexer {res['rows']} lines in {res['wall_s']:.2f} s = "
                f"{res['records_per_s']:,.0f} records/s, peak RSS {res['peak_rss_mb']:.0f} MB"
                + (
                    ""
                    if base_records == data["records"]
                    else f" (subset: {len(base_keys)} WARC(s))"
                )
            )
    last = attest_runs[-1]
    attest_summary = summarize(attest_runs)
    attest_summary["workers"] = args.workers
    result: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "loadavg_start": load_start,
            "attest_commit": git_head(),
        },
        "data": data,
        "indexing": {"attest": attest_summary, "attest_runs": attest_runs},
    }
    if compare_runs:
        result["indexing"]["attest_compare"] = summarize(compare_runs)
        result["indexing"]["attest_compare"]["code"] = str(args.compare)
        result["indexing"]["attest_compare_runs"] = compare_runs
    if unverified_runs:
        result["indexing"]["attest_unverified"] = summarize(unverified_runs)
        result["indexing"]["attest_unverified_runs"] = unverified_runs
    if single_runs:
        result["indexing"]["attest_single"] = summarize(single_runs)
        if args.workers != 1:
            result["indexing"]["attest_single_runs"] = single_runs
    pywb_index: Path | None = None
    if base_runs:
        summary = {
            "runs": len(base_runs),
            "rows": base_runs[-1]["rows"],
            "subset_records": base_records,
            "subset_files": len(base_keys),
            "wall_s": median_of(base_runs, "wall_s"),
            "records_per_s": median_of(base_runs, "records_per_s"),
            "cpu_s": median_of(base_runs, "cpu_s"),
            "peak_rss_mb": median_of(base_runs, "peak_rss_mb"),
            "command": "cdxj-indexer -s --dir-root STORE -o OUT WARC...",
        }
        result["indexing"]["cdxj_indexer"] = summary
        result["indexing"]["cdxj_indexer_runs"] = base_runs
        result["indexing"]["ratio"] = attest_summary["records_per_s"] / summary["records_per_s"]
        lite = {
            "runs": len(cdxj_only_runs),
            "rows": cdxj_only_runs[-1]["rows"],
            "wall_s": median_of(cdxj_only_runs, "wall_s"),
            "records_per_s": median_of(cdxj_only_runs, "records_per_s"),
            "cpu_s": median_of(cdxj_only_runs, "cpu_s"),
            "peak_rss_mb": median_of(cdxj_only_runs, "peak_rss_mb"),
        }
        result["indexing"]["attest_cdxj_only"] = lite
        result["indexing"]["attest_cdxj_only_runs"] = cdxj_only_runs
        result["indexing"]["ratio_cdxj_only"] = lite["records_per_s"] / summary["records_per_s"]
        if base_records == data["records"]:
            pywb_index = base_out
        else:  # pywb must see the whole data set: index the rest once, untimed
            full = args.workdir / "cdxj-indexer-full.cdxj"
            log("cdxj-indexer: indexing the whole data set for pywb (untimed)")
            cdxj_indexer(Path(last["store"]), data["keys"], full)
            pywb_index = full
    if pywb_index is not None:
        result["checks"] = cdxj_checks(Path(last["store"]), data["keys"], pywb_index)
        log(f"checks: {result['checks']}")
    result["sizes"] = sizes(last, pywb_index)
    if pywb_index is not None:
        with open(pywb_index, "rb") as fh:
            result["sizes"]["cdxj_indexer_rows"] = sum(1 for _ in fh)
    if args.profile:
        result["profile"] = run_profile(args, data, runs_dir)
    if not args.no_lookups:
        result["lookups"] = lookups(args, last, pywb_index, queries)
    result["machine"]["loadavg_end"] = os.getloadavg()
    end_commit = git_head()
    if end_commit != result["machine"]["attest_commit"]:
        result["machine"]["warning"] = (
            f"attest's code changed during the run ({result['machine']['attest_commit']} -> "
            f"{end_commit}): the runs may have measured different code; run again"
        )
        log(result["machine"]["warning"])
    table = markdown(result)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"index-lookup-{args.records}-{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(
        {k: result[k] for k in ("args", "sizes") if k in result}
        | {"indexing": {k: v for k, v in result["indexing"].items() if not k.endswith("_runs")}}
        | ({"lookups": result["lookups"]} if "lookups" in result else {}),
        indent=1, default=str,
    ))  # fmt: skip
    print()
    print(table)
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child-attest-index":
        child_attest_index(json.loads(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "--child-attest-cdxj":
        child_attest_cdxj(json.loads(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
