"""Evidence bundles: export and verify >= 1 GB of WARC data, against ``sha256sum`` (issue 5).

    .venv/bin/python bench/bundle_export_verify.py --gb 1.0 --repeat 3

1. **Data** (generated once, cached under ``--workdir`` by its parameters): synthetic WARC/1.1
   files written with attest's own writer (``archive.warc.write.WarcFileWriter``, gzip per record),
   using ``bench/index_lookup.py``'s text pools, in a ``FileStore`` under
   ``warcs/<source>/<yyyy>/<mm>/<dd>/``. Each file is one crawl run of one of four sources on
   one day; each page is captured as a crawler would: request + response for the HTML (60-110
   KB of markup), a ``metadata`` record (``profile=attest-page``, linked by
   ``WARC-Concurrent-To``) listing its requisites, then request + response for each requisite:
   5 photos (JPEG, 60-400 KB each, stored without deflating again as attest does) unique to
   the page (~1.2 MB a page in all, about a median web page's weight), and a stylesheet and a
   script shared by the run; one TLS-chain ``metadata``
   record per run. The number of pages is chosen so that the bundle's WARC holds at least
   ``--gb`` GB (10^9 bytes); one extra day of pages lies outside every claim (a bundle is a
   part of the archive). The WARCs are indexed once with attest's own indexing
   (``archive.ingest.indexer.index_keys`` into SQLite, CDXJ beside each WARC, custody log), as
   ``attest index`` does.
2. **Cases**: ``full``: one claim per source, ``query: {source, from, to}`` over every day but
   the extra one (>= ``--gb`` GB of bundle WARC); ``half``: the same over the first half of the
   days (~half the size), to show that peak memory does not grow with the bundle.
3. **Signing as in production**: a throwaway PKI (``tests/support/pki.py``), an organisation
   key (``load_signer``), and a local RFC 3161 TSA (``tests/support/tsa.py``: ``openssl ts
   -reply`` behind HTTP, served from this process, so its CPU is not counted); ``verify_bundle``
   is given the organisation's public key and the PKI root as trust anchors.
4. **Timed**, interleaved repetition by repetition (``--repeat``, median of each figure), each
   in its own child process, page cache warm for all (every input read once before; ``sync``
   before each timed step so no writeback of an earlier step overlaps it):
   - ``export``: ``export_bundle`` + ``CustodyLog.seal`` (what ``attest export`` does) of the
     ``full`` case; MB/s = bytes of the bundle's ``archive/data.warc.gz`` / wall s;
   - ``verify``: ``verify_bundle`` of that bundle with the trust anchors (what ``attest verify
     B.wacz`` does); MB/s = the same WARC bytes / wall s;
   - ``sha256sum`` (GNU coreutils) over the bundle's WARC bytes: ``archive/data.warc.gz``
     extracted once from the first bundle (its digest is checked equal to the one
     ``datapackage.json`` states); and, for reference, Python's ``hashlib.sha256`` (OpenSSL)
     over the same file;
   - ``export``/``verify`` of the ``half`` case (for peak RSS at two sizes).
   Wall s of export and verify is the call itself (in the child, after imports); the child
   process's wall (interpreter start-up and imports included) is recorded too. CPU s comes
   from ``wait4`` (the child and the processes it reaped: Chromium's share only in part);
   CPU utilisation = CPU s / process wall s (2.0 = both cores busy the whole time). Peak RSS
   is the child's ``VmHWM`` (its Python process; not Chromium's: ``ru_maxrss`` of a forked
   process counts its parent's pages). ``wchar`` is the bytes the child passed to ``write()``
   during the call (``/proc/self/io``): a verifier should write nothing.
   A diagnostic export with the report PDF stubbed out (``--no-diagnostic`` skips it) shows
   the export's own data path; the report PDF is printed by Chromium in a thread beside it.
5. **Checks** (untimed): every verify verdict is ``ok``; the bundle's ``indexes/index.cdxj``
   equals ``read_warc_index(data.warc.gz, texts=False).cdxj()`` byte for byte.
6. ``--profile``: export and verify once more each under cProfile (top functions written to
   ``--workdir``; verify's other threads are not profiled).

Ratios: export MB/s / sha256sum MB/s (target >= 0.70); verify s / sha256sum s (target <= 3.5).
Results: ``bench/results/bundle-export-verify-<stamp>.json`` and a markdown table on stdout.
The load average is recorded at the start and end: rerun if the machine was busy.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import math
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "bench", ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
#: A child's attest code: another checkout's (``--compare``), before this one's on the path.
if os.environ.get("ATTEST_BENCH_CODE"):
    sys.path.insert(0, os.environ["ATTEST_BENCH_CODE"])

from index_lookup import (  # noqa: E402 - bench/ on the path first
    MAGIC,
    SOURCES,
    Bodies,
    _http_date,
    git_head,
    log,
    run_child,
)

#: Bump when the generated data changes, so cached data are not reused.
GEN_VERSION = 2
DAY0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PHOTOS = 5
PHOTO_BYTES = (60_000, 400_000)
HTML_PARAGRAPHS = (150, 280)
PAGE_STEP = timedelta(seconds=17)


# --- data --------------------------------------------------------------------------------------


def host_of(source: str) -> str:
    return f"www.{source}.example"


def page_html(bodies: Bodies, rng: random.Random, n: int, url: str, photos: list[str]) -> bytes:
    """A news page of 60-110 KB: navigation, many paragraphs, inline data, figures, footer."""
    paras = bodies.paragraphs
    count = rng.randint(*HTML_PARAGRAPHS)
    body = "".join(
        f'<p class="p{i % 7}">{paras[(n * 31 + i * 17) % len(paras)]}</p>\n' for i in range(count)
    )
    nav = "".join(f'<li><a href="/section-{i}/">{bodies.titles[i]}</a></li>' for i in range(40))
    figures = "".join(
        f'<figure><img src="{p}" width="1200" height="800" loading="lazy">'
        f"<figcaption>{bodies.titles[(n + i) % len(bodies.titles)]}</figcaption></figure>\n"
        for i, p in enumerate(photos)
    )
    state = json.dumps(
        {"article": n, "tags": [bodies.titles[(n * 7 + i) % 200] for i in range(30)]}
    )
    title = bodies.titles[n % len(bodies.titles)]
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title} {n}</title>'
        f'<link rel="stylesheet" href="/assets/site.css"><script src="/assets/app.js"></script>'
        f"</head>\n<body><header><nav><ul>{nav}</ul></nav></header>\n<main><article><h1>{title}</h1>"
        f'\n<time datetime="2026-11-20">20 November 2026</time>\n{figures}{body}'
        f'<a href="{url}">Permalink</a></article></main><script>window.__STATE__ = {state};</script>'
        f"<footer>{nav}</footer></body></html>\n"
    ).encode()


def write_run_file(job: dict[str, Any]) -> dict[str, Any]:
    """One WARC (worker process): one source's crawl run on one day, page by page."""
    from archive.warc.write import Block, RecordSpec, WarcFileWriter, new_record_id, sha256_label

    bodies = Bodies(job["seed"])
    rng = random.Random(job["seed"] * 1_000_003 + job["file"])
    final = Path(job["path"])
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + ".tmp")
    tmp.unlink(missing_ok=True)
    host = host_of(job["source"])
    ip = f"192.0.2.{job['file'] % 250 + 1}"
    day = datetime.fromisoformat(job["day"])
    writer = WarcFileWriter(tmp, final.name)

    def exchange(url: str, ctype: str, body: bytes, when: datetime, precompressed: bool) -> str:
        """Request + response records, as the recorder writes them; returns the response id."""
        response_id, request_id = new_record_id(), new_record_id()
        path = url.split(host, 1)[1]
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: attest-bench/1.0\r\n"
            "Accept: */*\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n"
        ).encode()
        head = (
            f"HTTP/1.1 200 OK\r\nDate: {_http_date(int((when - EPOCH).total_seconds() * 1e6))}\r\n"
            f"Server: nginx/1.22.1\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: max-age=300\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        empty = sha256_label(hashlib.sha256(b""))
        writer.write_group(
            [
                RecordSpec(
                    record_type="request",
                    block=Block(len(request), data=request, payload_digest=empty),
                    target_uri=url,
                    content_type="application/http; msgtype=request",
                    headers=[("WARC-Concurrent-To", response_id)],
                    record_id=request_id,
                    date=when,
                ),
                RecordSpec(
                    record_type="response",
                    block=Block.http_message(head, body),
                    target_uri=url,
                    content_type="application/http; msgtype=response",
                    headers=[("WARC-IP-Address", ip)],
                    record_id=response_id,
                    date=when,
                    precompressed=precompressed,
                ),
            ]
        )
        return response_id

    pages = 0
    try:
        writer.write_warcinfo(
            [
                ("software", "attest bench/bundle_export_verify.py (synthetic)"),
                ("format", "WARC File Format 1.1"),
                ("http-header-user-agent", "attest-bench/1.0"),
                ("source-id", job["source"]),
                ("attest-run-id", job["run_id"]),
            ]
        )
        css = b"".join(bodies.css[:8])
        js = b"".join(bodies.js[:8])
        for i in range(job["pages"]):
            n = job["first_page"] + i
            when = day + i * PAGE_STEP
            url = f"https://{host}/news/{day:%Y/%m/%d}/story-{n}.html"
            photos = [f"https://{host}/media/{n}-{k}.jpg" for k in range(PHOTOS)]
            html = page_html(bodies, rng, n, url, photos)
            page_id = exchange(url, "text/html; charset=utf-8", html, when, False)
            if i == 0:
                chain = {"host": host, "port": 443, "chain": [{"sha256": f"{n:064x}",
                         "pem": "-----BEGIN CERTIFICATE-----\n" + "A" * 1800 + "\n-----END CERTIFICATE-----\n"}]}  # fmt: skip
                writer.write(
                    RecordSpec(
                        record_type="metadata",
                        block=Block.from_bytes(json.dumps(chain, indent=1).encode()),
                        target_uri=url,
                        content_type="application/json; profile=attest-tls-chain",
                        headers=[("WARC-Concurrent-To", page_id)],
                        date=when,
                    )
                )
            requisites = [
                f"https://{host}/assets/site.css",
                f"https://{host}/assets/app.js",
                *photos,
            ]
            meta = {"url": url, "source": job["source"], "outcome": "captured", "status": 200,
                    "via": "seed", "depth": 0, "referrer": None, "redirect_to": None, "attempts": 1,
                    "outlinks": [f"https://{host}/news/story-{n + k}.html" for k in range(1, 30)],
                    "requisites": requisites}  # fmt: skip
            writer.write(
                RecordSpec(
                    record_type="metadata",
                    block=Block.from_bytes(json.dumps(meta, sort_keys=True).encode()),
                    target_uri=url,
                    content_type="application/json; profile=attest-page",
                    headers=[("WARC-Concurrent-To", page_id)],
                    date=when,
                )
            )
            later = when + timedelta(milliseconds=300)
            if i == 0:  # shared by every page of the run: captured once
                exchange(requisites[0], "text/css", css, later, False)
                exchange(requisites[1], "application/javascript", js, later, False)
            for k, photo in enumerate(photos):
                body = MAGIC["jpg"] + rng.randbytes(rng.randint(*PHOTO_BYTES))
                exchange(photo, "image/jpeg", body, later + timedelta(milliseconds=10 * k), True)
            pages += 1
    finally:
        writer.close()
    os.replace(tmp, final)
    return {"path": str(final), "pages": pages, "bytes": final.stat().st_size}


def estimate_page_bytes(seed: int) -> float:
    """Stored bytes per page (all its records), from a small sample written the same way."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        job = {"path": f"{tmp}/sample.warc.gz", "seed": seed + 999, "file": 0, "pages": 20,
               "first_page": 0, "source": SOURCES[0], "run_id": "sample",
               "day": DAY0.isoformat()}  # fmt: skip
        res = write_run_file(job)
    return float(res["bytes"]) / res["pages"]


def dataset(args: argparse.Namespace) -> dict[str, Any]:
    """The cached store, index and case files for these parameters (built on first use)."""
    import uuid

    from archive.ingest.spool import store_key, warc_filename

    params = {"version": GEN_VERSION, "gb": args.gb, "days": args.days, "seed": args.seed}
    tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    base = args.workdir / f"data-{args.gb:g}gb-{tag}"
    manifest_path = base / "manifest.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if all((base / "store" / k).exists() for k in manifest["keys"]):
            log(
                f"data: cached, {len(manifest['keys'])} WARCs, {manifest['warc_bytes'] / 1e9:.2f} GB in {base}"
            )
            return manifest
    log(f"data: generating into {base} ...")
    started = time.monotonic()
    shutil.rmtree(base, ignore_errors=True)
    (base / "store").mkdir(parents=True)
    per_page = estimate_page_bytes(args.seed)
    files_in_case = len(SOURCES) * args.days
    # 5% over the target: page sizes are random.
    per_file = math.ceil(args.gb * 1e9 * 1.05 / per_page / files_in_case)
    rng = random.Random(args.seed + 17)
    jobs = []
    first_page = 0
    for day in range(args.days + 1):  # the last day: outside every claim
        for s, source in enumerate(SOURCES):
            n = len(jobs)
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            moment = DAY0 + timedelta(days=day, minutes=s)
            name = warc_filename(f"attest-{source}", moment, n + 1, run_id)
            key = store_key(name, source)
            pages = per_file if day < args.days else max(1, per_file // 5)
            jobs.append({"path": str(base / "store" / key), "key": key, "seed": args.seed,
                         "file": n, "pages": pages, "first_page": first_page, "source": source,
                         "run_id": run_id, "day": moment.isoformat()})  # fmt: skip
            first_page += pages
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        done = list(pool.map(write_run_file, jobs))
    log(f"data: {sum(d['bytes'] for d in done) / 1e9:.2f} GB written; indexing (attest index) ...")
    index_info = index_store(base, [j["key"] for j in jobs])
    end = DAY0 + timedelta(days=args.days) - timedelta(seconds=1)
    half = DAY0 + timedelta(days=max(1, args.days // 2)) - timedelta(seconds=1)
    cases = {
        "full": write_case(base / "cases" / "full.yaml", "bench-full", DAY0, end),
        "half": write_case(base / "cases" / "half.yaml", "bench-half", DAY0, half),
    }
    manifest = {
        "params": params,
        "base": str(base),
        "keys": [j["key"] for j in jobs],
        "pages": sum(d["pages"] for d in done),
        "warc_bytes": sum(d["bytes"] for d in done),
        "pages_per_file": per_file,
        "estimated_page_bytes": round(per_page),
        "store": str(base / "store"),
        "db": str(base / "index.sqlite"),
        "cases": cases,
        "index": index_info,
        "generate_s": round(time.monotonic() - started, 1),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    log(f"data: {manifest['pages']} pages, {len(jobs)} WARCs, {manifest['warc_bytes'] / 1e9:.2f} GB "
        f"in {manifest['generate_s']} s")  # fmt: skip
    return manifest


def index_store(base: Path, keys: list[str]) -> dict[str, Any]:
    """``attest index`` of every WARC: CDXJ beside each, rows and texts in SQLite, custody."""
    from archive.custody.log import CustodyLog
    from archive.index.db import IndexDB
    from archive.ingest.indexer import index_keys
    from archive.store import FileStore

    store = FileStore((base / "store").resolve())
    db = IndexDB(str(base / "index.sqlite"))
    custody = CustodyLog(db, store)
    t0 = time.monotonic()
    results = index_keys(db, store, keys, custody=custody, workers=os.cpu_count() or 1)
    custody.seal()
    failed = [r.as_dict() for r in results if r.error]
    if failed:
        raise SystemExit(f"indexing failed: {failed[:3]}")
    counts = db.counts()
    db.close()
    return {
        "rows": sum(r.rows for r in results),
        "counts": counts,
        "s": round(time.monotonic() - t0, 1),
    }


def write_case(path: Path, case_id: str, start: datetime, end: datetime) -> str:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    claims = [
        {
            "id": f"C{n + 1}",
            "text": f"What {source} published between {start:%d} and {end:%d %B %Y}.",
            "source": f"the {source} site",
            "evidence": [
                {
                    "query": {
                        "source": source,
                        "from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "to": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                }
            ],
        }
        for n, source in enumerate(SOURCES)
    ]
    doc = {"id": case_id, "title": f"Benchmark case {case_id}", "claims": claims}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


# --- children ----------------------------------------------------------------------------------


def _io_counters() -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/io").read_text().splitlines():
            name, _, value = line.partition(":")
            out[name.strip()] = int(value)
    return out


def _vm_hwm_mb() -> tuple[float, float]:
    """(This process's peak RSS since it was exec'd (``VmHWM``), the largest peak RSS of the
    processes it ran (Chromium printing the report)). ``wait4``'s ``ru_maxrss`` of a child
    counts the pages it shared with the parent before ``exec``, so it is at least the parent's
    RSS; ``VmHWM`` is not."""
    import resource

    own = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _cpu_now() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _profiled(job: dict[str, Any], fn: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``fn()``, timed (and profiled if asked); (its result, figures)."""
    profiler = cProfile.Profile() if job.get("profile") else None
    io0, cpu0, t0 = _io_counters(), _cpu_now(), time.perf_counter()
    if profiler:
        profiler.enable()
    result = fn()
    if profiler:
        profiler.disable()
    wall, cpu, io1 = time.perf_counter() - t0, _cpu_now() - cpu0, _io_counters()
    if profiler:
        buf = io.StringIO()
        stats = pstats.Stats(profiler, stream=buf)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(30)
        Path(job["profile"]).write_text(buf.getvalue())
    return result, {
        "wall_s": wall,
        "cpu_in_call_s": cpu,
        "wchar_bytes": io1.get("wchar", 0) - io0.get("wchar", 0),
        "write_bytes": io1.get("write_bytes", 0) - io0.get("write_bytes", 0),
        "read_bytes": io1.get("read_bytes", 0) - io0.get("read_bytes", 0),
        "vm_hwm_mb": _vm_hwm_mb()[0],
        "children_peak_rss_mb": _vm_hwm_mb()[1],
    }


#: Parts of an export timed on their own (wall s, summed over calls; the report PDF is printed
#: in a thread beside the WARC copy, so the parts overlap).
EXPORT_PHASES = (
    ("resolve", "claims resolved to captures"),
    ("_dependencies", "records each capture needs"),
    ("_manifest", "manifest"),
    ("render_report", "report HTML"),
    ("print_pdf", "report PDF (Chromium, in a thread)"),
    ("_PartialBundle.add_warc", "WARC copied into the ZIP (+ SHA-256)"),
    ("_custody_excerpt", "custody excerpt"),
    ("_digest_doc", "signature + RFC 3161 timestamp"),
    ("_write_wacz", "rest of the ZIP + bundle SHA-256"),
)


def _time_phases(module: Any) -> dict[str, float]:
    """Wrap the functions in EXPORT_PHASES (those the module has) to sum their wall time."""
    phases: dict[str, float] = {}
    depth: dict[str, int] = {}

    def wrap(owner: Any, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a: Any, **kw: Any) -> Any:
            depth[label] = depth.get(label, 0) + 1
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                depth[label] -= 1
                if depth[label] == 0:  # recursive calls are counted once
                    phases[label] = phases.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, attr, timed)

    for name, _ in EXPORT_PHASES:
        owner, _, attr = name.rpartition(".")
        target = getattr(module, owner, None) if owner else module
        if target is not None and hasattr(target, attr):
            wrap(target, attr, name)
    return phases


def child_export(job: dict[str, Any]) -> None:
    import archive.evidence.bundle as bundle_module
    from archive.custody.log import CustodyLog
    from archive.evidence.bundle import export_bundle
    from archive.evidence.cases import load_case
    from archive.index.db import IndexDB
    from archive.store import FileStore
    from archive.trust.signing import load_signer
    from archive.trust.timestamps import Authority

    store = FileStore(Path(job["store"]))
    db = IndexDB(job["db"])
    custody = CustodyLog(db, store)
    case = load_case(Path(job["case"]))
    signer = load_signer(Path(job["key"]))
    tsas = [Authority(job["tsa"])]
    if job.get("stub_pdf"):  # diagnostic only: the export without Chromium printing the report

        def no_pdf(html: str, output: Path, **_: Any) -> None:
            output.write_bytes(b"%PDF-1.4\n% not printed: bench diagnostic\n")

        bundle_module.print_pdf = no_pdf  # type: ignore[assignment]
    phases = _time_phases(bundle_module)

    def run() -> Any:
        report = export_bundle(db, store, case, Path(job["out"]), custody=custody,
                               actor="bench", signer=signer, tsas=tsas)  # fmt: skip
        custody.seal()
        return report

    report, figures = _profiled(job, run)
    db.close()
    figures["phases_s"] = phases
    print(json.dumps(figures | {"records": report.records, "warc_bytes": report.warc_bytes,
                                "sha256": report.sha256, "bundle_bytes": Path(job["out"]).stat().st_size,
                                "gaps": report.gaps}))  # fmt: skip


def child_verify(job: dict[str, Any]) -> None:
    from archive.evidence.verify import verify_bundle
    from archive.trust.signing import load_trust

    trust = load_trust([Path(job["trust"])])
    verdict, figures = _profiled(job, lambda: verify_bundle(Path(job["bundle"]), trust))
    print(json.dumps(figures | {"ok": verdict.ok, "checked": verdict.checked, "notes": verdict.notes,
                                "failures": [str(f) for f in verdict.failures[:10]]}))  # fmt: skip


def child_hashlib(job: dict[str, Any]) -> None:
    def run() -> str:
        digest = hashlib.sha256()
        with open(job["file"], "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    digest, figures = _profiled(job, run)
    print(json.dumps(figures | {"sha256": digest}))


def timed_child(mode: str, job: dict[str, Any], code: Path | None = None) -> dict[str, Any]:
    os.sync()  # no writeback of an earlier step during this one
    env = None if code is None else dict(os.environ, ATTEST_BENCH_CODE=str(code))
    wall, usage, out = run_child(
        [sys.executable, __file__, f"--child-{mode}", json.dumps(job)], env=env
    )
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    res.update(usage)
    res["ru_maxrss_mb"] = res["peak_rss_mb"]  # inflated by the parent's pages (see _vm_hwm_mb)
    res["peak_rss_mb"] = res["vm_hwm_mb"]
    res["process_wall_s"] = wall
    res["cpu_utilisation"] = usage["cpu_s"] / wall
    res["loadavg_1m_after"] = os.getloadavg()[0]
    return res


def sha256sum(path: Path) -> dict[str, Any]:
    os.sync()
    wall, usage, out = run_child(["sha256sum", str(path)])
    usage["ru_maxrss_mb"] = usage["peak_rss_mb"]  # the parent's pages before exec: see _vm_hwm_mb
    usage["peak_rss_mb"] = usage["peak_rss_tree_mb"]  # sampled every 0.2 s
    return {"wall_s": wall, "process_wall_s": wall, "cpu_utilisation": usage["cpu_s"] / wall,
            "sha256": out.split()[0], "loadavg_1m_after": os.getloadavg()[0], **usage}  # fmt: skip


def warm(paths: list[Path]) -> None:
    """Read each file once, so every contender starts with the page cache warm."""
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(8 * 1024 * 1024):
                pass


# --- the run -----------------------------------------------------------------------------------


def bundle_checks(bundle: Path, extracted: Path) -> dict[str, Any]:
    """Untimed: the WARC's stated hash, and the bundle's CDXJ against a re-read of the WARC."""
    from archive.index.cdxj import read_warc_index

    with zipfile.ZipFile(bundle) as archive:
        package = json.loads(archive.read("datapackage.json"))
        cdxj = archive.read("indexes/index.cdxj")
        info = archive.getinfo("archive/data.warc.gz")
        if not extracted.exists() or extracted.stat().st_size != info.file_size:
            with archive.open(info) as src, open(extracted, "wb") as dst:
                shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
    stated = {r["path"]: r["hash"] for r in package["resources"]}["archive/data.warc.gz"]
    reread = read_warc_index(extracted, "data.warc.gz", texts=False).cdxj()
    return {
        "warc_stated_sha256": stated,
        "cdxj_lines": cdxj.count(b"\n"),
        "cdxj_equals_reread": cdxj == reread,
        "compress_type_stored": info.compress_type == zipfile.ZIP_STORED,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("wall_s", "process_wall_s", "cpu_s", "cpu_utilisation", "peak_rss_mb",
            "children_peak_rss_mb", "wchar_bytes")  # fmt: skip
    out: dict[str, Any] = {"runs": len(runs)}
    for key in keys:
        values = [float(r[key]) for r in runs if key in r]
        if values:
            out[key] = statistics.median(values)
            out[f"{key}_all"] = [round(v, 3) for v in values]
    phases = {k for r in runs for k in r.get("phases_s", {})}
    if phases:
        out["phases_s"] = {
            k: statistics.median(r.get("phases_s", {}).get(k, 0.0) for r in runs)
            for k, _ in EXPORT_PHASES
            if k in phases
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    mb = result["bundle"]["warc_bytes"] / 1e6
    lines = [
        f"Bundle: {result['bundle']['records']:,} records, WARC {mb:,.0f} MB "
        f"(bundle file {result['bundle']['bundle_bytes'] / 1e6:,.0f} MB); median of {s['export']['runs']}; "
        f"load average {result['machine']['loadavg_start'][0]:.2f} at start, {result['machine']['loadavg_end'][0]:.2f} at end",
        "",
        "| step | MB/s | wall s | process wall s | CPU s | CPU util. | peak RSS MB | written MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("export", "attest export (`export_bundle`)"),
                        ("export_no_pdf", "export, report PDF not printed (diagnostic)"),
                        ("verify", "attest verify (`verify_bundle`)"),
                        ("sha256sum", "`sha256sum` (coreutils)"),
                        ("hashlib", "Python `hashlib.sha256`")):  # fmt: skip
        r = s.get(name)
        if not r:
            continue
        written = r.get("wchar_bytes")
        lines.append(
            f"| {label} | {mb / r['wall_s']:,.0f} | {r['wall_s']:.2f} | {r['process_wall_s']:.2f} | "
            f"{r['cpu_s']:.2f} | {r['cpu_utilisation']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{'-' if written is None else f'{written / 1e6:,.1f}'} |"
        )
    ratios = result["ratios"]
    lines += [
        "",
        f"- export MB/s / sha256sum MB/s: **{ratios['export_rate_vs_sha256sum']:.2f}** (target >= 0.70)",
        f"- verify s / sha256sum s: **{ratios['verify_time_vs_sha256sum']:.2f}** (target <= 3.5)",
        f"- verify CPU utilisation: **{s['verify']['cpu_utilisation']:.2f}** (2.0 = both cores)",
    ]
    if "export_no_pdf_rate_vs_sha256sum" in ratios:
        lines.append(
            f"- diagnostic: export without printing the report PDF / sha256sum MB/s: "
            f"**{ratios['export_no_pdf_rate_vs_sha256sum']:.2f}**"
        )
    phases = s["export"].get("phases_s")
    if phases:
        labels = dict(EXPORT_PHASES)
        lines += ["", "| export phase (wall s, median) | s |", "|---|---:|"]
        lines += [f"| {labels[k]} | {v:.2f} |" for k, v in phases.items()]
    if "half" in result:
        h = result["half"]
        lines += [
            "",
            "| bundle WARC MB | records | export peak RSS MB | verify peak RSS MB | export s | verify s |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {h['warc_bytes'] / 1e6:,.0f} | {h['records']:,} | {h['export']['peak_rss_mb']:.0f} | "
            f"{h['verify']['peak_rss_mb']:.0f} | {h['export']['wall_s']:.2f} | {h['verify']['wall_s']:.2f} |",
            f"| {mb:,.0f} | {result['bundle']['records']:,} | {s['export']['peak_rss_mb']:.0f} | "
            f"{s['verify']['peak_rss_mb']:.0f} | {s['export']['wall_s']:.2f} | {s['verify']['wall_s']:.2f} |",
        ]
    c = result["checks"]
    lines.append(
        f"\nchecks: every verdict ok: {c['all_verdicts_ok']}; sha256sum = datapackage hash: "
        f"{c['sha256sum_equals_stated']}; CDXJ = re-read of the WARC: {c['cdxj_equals_reread']}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gb", type=float, default=1.0, help="bundle WARC size, 10^9 bytes")
    parser.add_argument("--days", type=int, default=4, help="days in the case (4 runs a day)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/attest-bench-bundle"))
    parser.add_argument("--no-half", action="store_true", help="skip the half-size case")
    parser.add_argument(
        "--no-diagnostic",
        action="store_true",
        help="skip the diagnostic export that does not print the report PDF",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also export and verify once under cProfile"
    )
    parser.add_argument("--only-profile", action="store_true", help="only the cProfile runs")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="also export and verify with another checkout's code, interleaved (an A/B)",
    )
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)

    from support.pki import make_pki
    from support.tsa import local_tsa

    load_start = os.getloadavg()
    uptime_start = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    log(f"uptime: {uptime_start}")
    data = dataset(args)
    run_dir = args.workdir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    pki = make_pki(run_dir / "pki")
    trust = run_dir / "trust.pem"
    trust.write_bytes(pki.org_public.read_bytes() + pki.root.read_bytes())
    extracted = args.workdir / "bundle-data.warc.gz"
    result: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "loadavg_start": load_start,
            "uptime_start": uptime_start,
            "attest_commit": git_head(),
        },
        "data": {k: v for k, v in data.items() if k != "keys"} | {"warcs": len(data["keys"])},
    }
    with local_tsa(pki, run_dir / "tsa") as tsa:
        base_job = {
            "store": data["store"],
            "db": data["db"],
            "key": str(pki.org_key),
            "tsa": tsa.url,
        }
        store_files = [Path(data["store"]) / k for k in data["keys"]]
        warm([*store_files, Path(data["db"])])

        def export(
            case: str, out: Path, profile: Path | None = None, stub_pdf: bool = False,
            code: Path | None = None,
        ) -> dict[str, Any]:  # fmt: skip
            out.unlink(missing_ok=True)
            job = base_job | {"case": data["cases"][case], "out": str(out), "stub_pdf": stub_pdf}
            if profile:
                job["profile"] = str(profile)
            return timed_child("export", job, code)

        def verify(
            bundle: Path, profile: Path | None = None, code: Path | None = None
        ) -> dict[str, Any]:
            job = {"bundle": str(bundle), "trust": str(trust)}
            if profile:
                job["profile"] = str(profile)
            res = timed_child("verify", job, code)
            if not res["ok"]:
                log(f"verify FAILED: {res['failures']}")
            return res

        if args.profile or args.only_profile:
            bundle = run_dir / "profile.wacz"
            res = export("full", bundle, args.workdir / "export.prof.txt")
            log(
                f"profile: export {res['wall_s']:.2f} s under cProfile -> {args.workdir / 'export.prof.txt'}"
            )
            res = verify(bundle, args.workdir / "verify.prof.txt")
            log(
                f"profile: verify {res['wall_s']:.2f} s under cProfile -> {args.workdir / 'verify.prof.txt'}"
            )
            bundle.unlink(missing_ok=True)
            if args.only_profile:
                return 0

        runs: dict[str, list[dict[str, Any]]] = {"export": [], "verify": [], "sha256sum": [],
                                                 "hashlib": [], "export_no_pdf": [],
                                                 "half_export": [], "half_verify": [],
                                                 "export_compare": [], "verify_compare": []}  # fmt: skip
        checks: dict[str, Any] = {}
        for rep in range(args.repeat):
            if args.compare is not None:
                bundle = run_dir / "compare.wacz"
                res = export("full", bundle, code=args.compare.resolve())
                runs["export_compare"].append(res)
                mb = res["warc_bytes"] / 1e6
                log(f"rep {rep + 1} export at {args.compare}: {mb:,.0f} MB WARC in "
                    f"{res['wall_s']:.2f} s = {mb / res['wall_s']:,.0f} MB/s")  # fmt: skip
                res = verify(bundle, code=args.compare.resolve())
                runs["verify_compare"].append(res)
                log(
                    f"rep {rep + 1} verify at {args.compare}: {res['wall_s']:.2f} s, ok {res['ok']}"
                )
                bundle.unlink()
            bundle = run_dir / "full.wacz"
            res = export("full", bundle)
            runs["export"].append(res)
            mb = res["warc_bytes"] / 1e6
            log(f"rep {rep + 1} export: {mb:,.0f} MB WARC in {res['wall_s']:.2f} s = {mb / res['wall_s']:,.0f} MB/s, "
                f"cpu util {res['cpu_utilisation']:.2f}, peak RSS {res['peak_rss_mb']:.0f} MB")  # fmt: skip
            if rep == 0:
                checks = bundle_checks(bundle, extracted)
                result["bundle"] = {"records": res["records"], "warc_bytes": res["warc_bytes"],
                                    "bundle_bytes": res["bundle_bytes"]}  # fmt: skip
                if res["warc_bytes"] < args.gb * 1e9:
                    log(f"WARNING: the bundle's WARC holds {res['warc_bytes']:,} bytes, under --gb")
                warm([extracted])
            res = verify(bundle)
            runs["verify"].append(res)
            log(f"rep {rep + 1} verify: {res['wall_s']:.2f} s = {mb / res['wall_s']:,.0f} MB/s, ok {res['ok']}, "
                f"cpu util {res['cpu_utilisation']:.2f}, peak RSS {res['peak_rss_mb']:.0f} MB, "
                f"wrote {res['wchar_bytes'] / 1e6:.1f} MB")  # fmt: skip
            bundle.unlink()
            res = sha256sum(extracted)
            runs["sha256sum"].append(res)
            log(f"rep {rep + 1} sha256sum: {res['wall_s']:.2f} s = {mb / res['wall_s']:,.0f} MB/s")
            res = timed_child("hashlib", {"file": str(extracted)})
            runs["hashlib"].append(res)
            log(f"rep {rep + 1} hashlib: {res['wall_s']:.2f} s = {mb / res['wall_s']:,.0f} MB/s")
            if not args.no_diagnostic:
                res = export("full", bundle, stub_pdf=True)
                runs["export_no_pdf"].append(res)
                bundle.unlink()
                log(f"rep {rep + 1} export, report PDF not printed (diagnostic): {res['wall_s']:.2f} s "
                    f"= {mb / res['wall_s']:,.0f} MB/s, cpu util {res['cpu_utilisation']:.2f}")  # fmt: skip
            if not args.no_half:
                half = run_dir / "half.wacz"
                res = export("half", half)
                runs["half_export"].append(res)
                res = verify(half)
                runs["half_verify"].append(res)
                half.unlink()
                log(f"rep {rep + 1} half: {runs['half_export'][-1]['warc_bytes'] / 1e6:,.0f} MB WARC, export "
                    f"{runs['half_export'][-1]['wall_s']:.2f} s (RSS {runs['half_export'][-1]['peak_rss_mb']:.0f} MB), "
                    f"verify {res['wall_s']:.2f} s (RSS {res['peak_rss_mb']:.0f} MB)")  # fmt: skip
    summary = {name: summarize(r) for name, r in runs.items() if r and not name.startswith("half")}
    if runs["export_compare"]:
        sha_wall = summarize(runs["sha256sum"])["wall_s"]
        result["compare"] = {
            "code": str(args.compare),
            "export_rate_vs_sha256sum": sha_wall / summary["export_compare"]["wall_s"],
            "verify_time_vs_sha256sum": summary["verify_compare"]["wall_s"] / sha_wall,
        }
    result["summary"] = summary
    if runs["half_export"]:
        result["half"] = {"warc_bytes": runs["half_export"][-1]["warc_bytes"],
                          "records": runs["half_export"][-1]["records"],
                          "export": summarize(runs["half_export"]),
                          "verify": summarize(runs["half_verify"])}  # fmt: skip
    sums = {r["sha256"] for r in runs["sha256sum"]} | {r["sha256"] for r in runs["hashlib"]}
    checks["sha256sum_equals_stated"] = sums == {
        checks["warc_stated_sha256"].removeprefix("sha256:")
    }
    checks["all_verdicts_ok"] = all(r["ok"] for r in runs["verify"] + runs["half_verify"])
    checks["distinct_bundle_sha256"] = len({r["sha256"] for r in runs["export"]})
    result["checks"] = checks
    sha = summary["sha256sum"]["wall_s"]
    result["ratios"] = {
        "export_rate_vs_sha256sum": sha / summary["export"]["wall_s"],
        "verify_time_vs_sha256sum": summary["verify"]["wall_s"] / sha,
        "export_rate_vs_hashlib": summary["hashlib"]["wall_s"] / summary["export"]["wall_s"],
        "verify_time_vs_hashlib": summary["verify"]["wall_s"] / summary["hashlib"]["wall_s"],
        "export_process_rate_vs_sha256sum": sha / summary["export"]["process_wall_s"],
        "verify_process_time_vs_sha256sum": summary["verify"]["process_wall_s"] / sha,
    }
    if "export_no_pdf" in summary:
        result["ratios"]["export_no_pdf_rate_vs_sha256sum"] = (
            sha / summary["export_no_pdf"]["wall_s"]
        )
    result["runs"] = runs
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["machine"]["uptime_end"] = subprocess.run(
        ["uptime"], capture_output=True, text=True
    ).stdout.strip()
    log(f"uptime: {result['machine']['uptime_end']}")
    end_commit = git_head()
    if end_commit != result["machine"]["attest_commit"]:
        result["machine"]["warning"] = (
            f"attest's code changed during the run ({result['machine']['attest_commit']} -> {end_commit})"
        )
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bundle-export-verify-{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(markdown(result))
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1].startswith("--child-"):
        {"--child-export": child_export, "--child-verify": child_verify,
         "--child-hashlib": child_hashlib}[sys.argv[1]](json.loads(sys.argv[2]))  # fmt: skip
        sys.exit(0)
    sys.exit(main())
