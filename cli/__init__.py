"""The ``attest`` command: thin wiring over ``crawlers/`` and ``archive/``.

    attest demo                                   capture the bundled demo web into ./data
    attest crawl URL... [--max-pages N] [--depth N] [--store URI]
    attest crawl --sources FILE [--only ID]...    capture sources from the registry
    attest recover [--store URI]                  seal and upload what dead runs left in the spool
    attest verify FILE.warc.gz...                 check every record's digests, offline
    attest index [WARC_URI...] [--rebuild]        index stored WARCs (all not yet indexed)
    attest find URL [--at DATE | --from D --to D] list captures of a URL
    attest find --run RUN_ID                      what a run produced (DAG_ID/AIRFLOW_RUN_ID too)
    attest get URL --at DATE [-o FILE] [--record] write an archived payload or its record
    attest search WORDS...                        full-text search over captured pages
    attest serve [--host H] [--port N]            CDX API, Memento, replay, search, web page
    attest custody verify|seal                    check or seal the custody log
    attest claims CASE                            a case's claims, their captures and gaps
    attest claim link CASE CLAIM CAPTURE_ID       link a page's capture to a claim
    attest claim unlink CASE CLAIM CAPTURE_ID --reason TEXT   withdraw such a link (logged)
    attest export CASE [--claim ID]... -o B.wacz  a case's evidence as a signed WACZ bundle
    attest verify B.wacz [--trust FILE]...        check a bundle offline: files, records,
                                                  signature, timestamps, custody, claims
    attest keygen [-o KEY.pem]                    make an organisation signing key
    attest hold CAPTURE_ID... [--release]         S3 legal hold on the WARCs behind captures
    attest hold --case CASE [CLAIM_ID]...         ... behind a case's claims (all if none named)
    attest audit [WARC_URI...]                    re-verify stored WARCs (all indexed ones), logged
    attest airflow-pools [--sources PATH]...      create the registry's Airflow pools (politeness)

Exit status: 0 when everything worked, 1 when a capture or check failed (the summary says
what), 2 for bad input (nothing was changed); `attest verify` exits with 3 for a bundle that is
intact and signed but carries no timestamp ("signed, not timestamped").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archive.errors import AttestError, ConfigError, CrawlFailed
from archive.logs import configure_logging

log = logging.getLogger("attest")

#: The folder that holds this package (the checkout, when it runs from one): its ``sources/``
#: and ``cases/`` are found from any working directory.
CHECKOUT = Path(__file__).resolve().parents[1]


def _config(store: str | None = None, env: dict[str, str] | None = None) -> Any:
    import settings

    return settings.load_config(env, store=store)


def _run_options(config: Any, *, env: dict[str, str] | None = None) -> Any:
    from crawlers.orchestration.run import options_from_config
    from crawlers.orchestration.warcinfo import airflow_context

    environ = dict(os.environ) if env is None else env
    return options_from_config(config, airflow=airflow_context(environ))


@contextmanager
def _progress_display(json_lines: bool) -> Iterator[Callable[[Any], None]]:
    """A live progress bar on a terminal; otherwise a JSON log line every few seconds."""
    if not json_lines:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        rows: dict[str, Any] = {}

        def render() -> Table:
            table = Table(box=None, pad_edge=False)
            for col in ("source", "pages", "fetches", "errors", "pages/s", ""):
                table.add_column(col, justify="right" if col not in ("source", "") else "left")
            for snap in rows.values():
                table.add_row(
                    snap.source,
                    str(snap.pages),
                    str(snap.fetches),
                    str(snap.errors),
                    f"{snap.pages_per_second:.1f}",
                    "done" if snap.finished else "…",
                )
            return table

        with Live(
            render(), console=Console(stderr=True), refresh_per_second=4, transient=False
        ) as live:

            def update(snap: Any) -> None:
                rows[snap.source] = snap
                live.update(render())

            yield update
        return

    last: dict[str, float] = {}

    def report(snap: Any) -> None:
        now = time.monotonic()
        if snap.finished or now - last.get(snap.source, 0) >= 5:
            last[snap.source] = now
            log.info(
                "progress",
                extra={
                    "source": snap.source,
                    "pages": snap.pages,
                    "fetches": snap.fetches,
                    "errors": snap.errors,
                    "pages_per_s": round(snap.pages_per_second, 2),
                    "finished": snap.finished,
                },
            )

    yield report


def _print_summary(summary: Any, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary.as_dict(), indent=1, sort_keys=True))
        return
    out = sys.stdout
    out.write(f"run {summary.run_id}  sources: {', '.join(summary.sources)}\n")
    out.write(
        f"  pages {summary.pages}, fetches {summary.fetches}, records {summary.records}, "
        f"WARC bytes {summary.warc_bytes:,}\n"
    )
    out.write("  outcomes: " + ", ".join(f"{k} {v}" for k, v in summary.outcomes.items()) + "\n")
    for warc in summary.shipped:
        out.write(
            f"  stored {warc.uri}  ({warc.records} records, {warc.size:,} bytes, sha256 {warc.sha256})\n"
        )
    for file, why in summary.pending:
        out.write(f"  PENDING {file}: {why}\n")
    for rec in summary.recovered:
        out.write(
            f"  recovered run {rec.run_id}: {len(rec.shipped)} WARC(s) uploaded, {len(rec.pending)} pending\n"
        )
    if summary.stopped:
        out.write(f"  STOPPED: {summary.stopped}\n")
    if summary.indexed:
        out.write(f"  indexed {summary.indexed} WARC(s)\n")
    for key, why in summary.index_pending:
        out.write(f"  INDEX PENDING {key}: {why} (the WARC is stored; run `attest index`)\n")


def _run(sources: list[Any], config: Any, options: Any, *, keep_captures: bool = False) -> Any:
    """One capture run into the configured store, with progress on stderr."""
    from archive.store import open_store
    from crawlers.orchestration.run import run_capture

    store = open_store(config.store_uri)
    json_lines = not sys.stderr.isatty()
    with _progress_display(json_lines) as progress:
        return run_capture(sources, options, store, progress=progress, keep_captures=keep_captures)


def _do_capture(sources: list[Any], config: Any, options: Any, *, as_json: bool) -> int:
    summary = _run(sources, config, options)
    _print_summary(summary, as_json=as_json)
    return 0 if summary.ok else 1


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawlers.registry import adhoc_source, load_registry, select_sources

    config = _config(args.store)
    if args.sources:
        if args.urls:
            raise ConfigError("give either URLs or --sources, not both")
        sources = load_registry([Path(p) for p in args.sources])
        if args.only:
            where = ", ".join(args.sources)
            sources = select_sources(sources, args.only, what="--only", where=where)
    else:
        if not args.urls:
            raise ConfigError("give at least one URL, or --sources FILE")
        sources = [
            adhoc_source(
                args.urls, max_pages=args.max_pages, max_depth=args.depth, browser=args.browser
            )
        ]
    return _do_capture(sources, config, _run_options(config), as_json=args.json)


def _print_capture(entry: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"capture {entry.get('capture_id') or '-'}  {entry['outcome']}")
    out.write(f"  HTTP {entry['status']}\n" if entry.get("status") else "\n")
    out.write(f"  url             {entry['url']}\n")
    out.write(f"  time            {entry.get('warc_date') or '-'}\n")
    if entry.get("payload_digest"):
        out.write(f"  payload sha256  {entry['payload_digest'].removeprefix('sha256:')}\n")
        out.write(f"  record sha256   {entry['block_digest'].removeprefix('sha256:')}\n")
    for kind, derived in sorted(entry.get("derivatives", {}).items()):
        out.write(f"  {kind + ' sha256':<15} {derived['sha256']}  ({derived['record_id']})\n")


def cmd_capture(args: argparse.Namespace) -> int:
    """One page, now: a "save this page" for investigators."""
    from crawlers.registry import snapshot_source

    config = _config(args.store)
    source = snapshot_source([args.url], browser=args.browser)
    summary = _run([source], config, _run_options(config), keep_captures=True)
    if args.json:
        _print_summary(summary, as_json=True)
    else:
        page = next((c for c in summary.captures if c["url"] == args.url), None)
        if page is None and summary.captures:
            page = summary.captures[0]
        if page is not None:
            _print_capture(page)
        _print_summary(summary, as_json=False)
    page_ok = any(c["outcome"] == "captured" for c in summary.captures)
    return 0 if summary.ok and page_ok else 1


def _demo_sources() -> Path:
    for base in (CHECKOUT, Path.cwd()):
        candidate = base / "sources" / "demo.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError("sources/demo.yaml not found next to cli.py or in the current directory")


def cmd_demo(args: argparse.Namespace) -> int:
    from crawlers.registry import load_registry
    from demoweb.case import DEMO_PORTS

    config = _config(args.store)
    # Fixed ports: cases/new-caledonia.yaml names the demo pages' URLs (127.0.0.1:8781-8783).
    ports = [] if args.random_ports else [f"--port={s}={p}" for s, p in DEMO_PORTS.items()]
    web = subprocess.Popen(
        [sys.executable, "-m", "demoweb", "--articles", str(args.articles), "--case", *ports],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert web.stdout is not None
        line = web.stdout.readline()
        try:
            origins = json.loads(line)
        except ValueError:
            raise CrawlFailed(f"the demo web did not start (it said {line[:200]!r})") from None
        if "error" in origins:
            raise ConfigError(
                f"the demo web cannot start: {origins['error']}; stop what uses that port, or "
                "run `attest demo --random-ports` (cases/new-caledonia.yaml then matches nothing)"
            )
        env = dict(
            os.environ,
            DEMO_NEWS=origins["news"],
            DEMO_NGO=origins["ngo"],
            DEMO_SOCIAL=origins["social"],
        )
        sources = load_registry([_demo_sources()], env)
        options = _run_options(config)
        # The demo web is on loopback, which the egress guard refuses unless allowed.
        if "127.0.0.0/8" not in options.allow_networks:
            options.allow_networks = ",".join(
                x for x in (options.allow_networks, "127.0.0.0/8") if x
            )
        # The social posts are rendered in the browser, all at once: the demo stays quick.
        if "ATTEST_BROWSER_CONCURRENCY" not in os.environ:
            options.browser_concurrency = max(options.browser_concurrency, 8)
        sys.stderr.write(
            f"serving the demo web: {origins['news']} (news), {origins['ngo']} (NGO), "
            f"{origins['social']} (social)\n"
        )
        code = _do_capture(sources, config, options, as_json=args.json)
        print(f"data home: {config.home}  (store: {config.store_uri}, index: {config.index_url})")
        print("next: `attest serve` and open http://127.0.0.1:8700/ to search, look up and replay")
        return code
    finally:
        web.terminate()
        web.wait(10)


def cmd_recover(args: argparse.Namespace) -> int:
    """Ship what dead runs left in the spool, then log and index each WARC as a run would."""
    from archive.ingest.ship import recover
    from archive.store import open_store
    from crawlers.orchestration.run import index_runs

    config = _config(args.store)
    store = open_store(config.store_uri)
    reports = recover(config.spool_root, store)
    indexed, index_pending = index_runs(
        [(w, rep.run_id) for rep in reports for w in rep.shipped], config.index_url, store,
        attestor=config.custody_attestor(),
    )  # fmt: skip
    if not reports:
        print("no dead runs in the spool")
    for rep in reports:
        print(f"run {rep.run_id}: {len(rep.shipped)} WARC(s) uploaded, {len(rep.pending)} pending")
        for seal in rep.sealed:
            print(
                f"  sealed {seal.path} ({seal.records} complete records, {seal.cut_bytes} bytes cut)"
            )
        for warc in rep.shipped:
            print(f"  stored {warc.uri} sha256 {warc.sha256}")
        for file, why in rep.pending:
            print(f"  PENDING {file}: {why}")
    if indexed:
        print(f"logged (capture) and indexed {indexed} WARC(s)")
    for key, why in index_pending:
        print(f"  INDEX PENDING {key}: {why} (the WARC is stored; run `attest index`)")
    return 0 if all(r.complete for r in reports) and not index_pending else 1


def cmd_verify(args: argparse.Namespace) -> int:
    """WARC files and WACZ bundles, offline; a bundle is checked whole (see archive/bundleverify)."""
    from archive.evidence.verify import NOT_TIMESTAMPED, verify_bundle
    from archive.trust.signing import load_trust
    from archive.warc.read import verify_warc

    trust_files = [Path(t) for t in args.trust] if args.trust else list(_config().trust)
    trust = load_trust(trust_files)
    failed = unstamped = 0
    out: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"{name}: no such file")
        if path.suffix == ".wacz":
            bundle = verify_bundle(path, trust)
            failed += not bundle.ok
            unstamped += bundle.status == NOT_TIMESTAMPED
            out.append({"file": str(path), "ok": bundle.ok, "verdict": bundle.status,
                        "checked": bundle.checked, "notes": bundle.notes,
                        "problems": [vars(f) for f in bundle.failures]})  # fmt: skip
            continue
        verdict = verify_warc(path, keep_records=False)
        failed += not verdict.ok
        out.append({"file": verdict.file, "ok": verdict.ok, "records": verdict.record_count,
                    "problems": [vars(p) for p in verdict.problems],
                    "_text": [str(p) for p in verdict.problems]})  # fmt: skip
    if args.json:
        print(
            json.dumps(
                [{k: v for k, v in o.items() if not k.startswith("_")} for o in out], indent=1
            )
        )
    else:
        for o in out:
            status = "OK" if o["ok"] else "FAILED"
            if "checked" in o:
                if o["verdict"] == NOT_TIMESTAMPED:
                    status = "SIGNED, NOT TIMESTAMPED"
                summary = ", ".join(f"{k} {v}" for k, v in o["checked"].items())
                print(f"{status} {o['file']}: {summary}")
                for note in o["notes"]:
                    print(f"  {note}")
                for f in o["problems"]:
                    rid = f" record {f['record_id']}" if f["record_id"] else ""
                    print(f"  {f['check']}: {f['file']}{rid}: {f['detail']}")
                if o["verdict"] == NOT_TIMESTAMPED:
                    print(NOT_TIMESTAMPED_MEANS)
            else:
                print(f"{status} {o['file']}: {o['records']} records")
                for line in o["_text"]:
                    print(f"  {line}")
    if failed:
        return 1
    return EXIT_NOT_TIMESTAMPED if unstamped else 0


#: ``attest verify``'s exit status for a bundle that is intact and signed, with no timestamp.
EXIT_NOT_TIMESTAMPED = 3
NOT_TIMESTAMPED_MEANS = """\
  The files, the WARC records and the signature hold: the bundle is exactly what its signer
  signed. But no timestamp authority dated it, so nothing independent of the signer shows when
  it existed (the signer's own clock is in it, not proven). Export again with timestamp
  authorities configured (ATTEST_TSA_URLS; see docs/LEGAL.md) for a bundle that proves both.
  Exit status 3: signed, not timestamped (0: verified; 1: a check failed)."""


def _index(config: Any) -> Any:
    from archive.index.db import IndexDB

    return IndexDB(config.index_url)


def _custody(db: Any, store: Any, config: Any = None) -> Any:
    """The custody log, signing and timestamping the segments it seals as configured."""
    from archive.custody.log import CustodyLog

    return CustodyLog(db, store, attestor=(config or _config()).custody_attestor())


@contextmanager
def _index_progress(total: int) -> Iterator[Callable[[Any], None]]:
    """A progress bar over the WARCs on a terminal; elsewhere each WARC is logged as it is done."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda result: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("indexing WARCs", total=total)
        yield lambda result: bar.advance(task)


def cmd_index(args: argparse.Namespace) -> int:
    from archive.ingest.indexer import index_keys, rebuild, resolve_warc_key, warc_keys
    from archive.store import open_store

    config = _config(args.store)
    store = open_store(config.store_uri)
    if args.rebuild and args.warcs:
        raise ConfigError("--rebuild indexes the whole store: give no WARC with it")
    keys = [resolve_warc_key(store, w) for w in args.warcs]
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise ConfigError(f"--workers {args.workers}: use 1 to 64")
    workers = args.workers or min(os.cpu_count() or 1, 8)
    with _index(config) as db:
        custody = _custody(db, store)
        todo = list(warc_keys(store)) if args.rebuild or not keys else keys
        with _index_progress(len(todo)) as progress:
            if args.rebuild:
                results = rebuild(db, store, custody=custody, progress=progress, workers=workers)
            else:
                results = index_keys(
                    db, store, todo, custody=custody, progress=progress, workers=workers
                )
        counts = db.counts()
    failed = [r for r in results if r.error]
    flawed = [r for r in results if r.problems]
    if args.json:
        print(json.dumps({"results": [r.as_dict() for r in results], "index": counts}, indent=1))
    else:
        done = [r for r in results if not r.error and not r.skipped]
        skipped = [r for r in results if r.skipped]
        # A record can fail several checks: count records (offsets), list every check.
        left_out = sum(len({p["offset"] for p in r.problems}) for r in flawed)
        print(
            f"indexed {len(done)} WARC(s) ({sum(r.added for r in done)} rows added), "
            f"{len(skipped)} already indexed, {len(failed)} failed"
            + (f", {left_out} record(s) left out of {len(flawed)} WARC(s)" if flawed else "")
        )
        for r in failed:
            print(f"  FAILED {r.key}: {r.error}")
        for r in flawed:
            bad = len({p["offset"] for p in r.problems})
            print(f"  PROBLEMS {r.key}: {bad} record(s) failed their checks, not indexed")
            for p in r.problems[:10]:
                rid = f" record {p['record_id']}" if p.get("record_id") else ""
                print(f"    {p['check']} at offset {p['offset']}{rid}: {p['detail']}")
            if len(r.problems) > 10:
                print(
                    f"    ... and {len(r.problems) - 10} more (attest index --json lists them all)"
                )
        print(
            f"index: {counts['warcs']} WARCs, {counts['records']} records, {counts['texts']} page texts"
        )
    return 1 if failed or flawed else 0


def _when(value: str | None, what: str, bound: Any = "exact") -> int | None:
    from archive.dates import parse_when

    return None if value is None else parse_when(value, bound=bound, what=what)


def _find_rows(db: Any, args: argparse.Namespace) -> list[Any]:
    from archive.index.query import find_captures

    if args.at and (args.date_from or args.date_to):
        raise ConfigError("give either --at or --from/--to, not both")
    ts_from = _when(args.date_from, "--from", "low")
    ts_to = _when(args.date_to, "--to", "high")
    closest = _when(args.at, "--at", "exact")
    if ts_from is not None and ts_to is not None and ts_from > ts_to:
        raise ConfigError("--from is after --to")
    return find_captures(
        db, args.url, args.match, ts_from=ts_from, ts_to=ts_to, closest=closest,
        limit=args.limit, all_records=getattr(args, "all_records", False),
        run=getattr(args, "run", None),
    )  # fmt: skip


def _find_run(args: argparse.Namespace) -> int:
    """``attest find --run RUN`` with no URL: the WARCs and records a run produced."""
    from archive.dates import iso
    from archive.index.query import ALL_RECORD_TYPES, field_values

    config = _config(args.store)
    with _index(config) as db:
        warcs = db.run_warcs(args.run)
        rows = db.run_records(
            [str(w["warc_key"]) for w in warcs],
            limit=args.limit,
            **({"record_types": ALL_RECORD_TYPES} if args.all_records else {}),
        )
    if not warcs:
        sys.stderr.write(f"attest: no indexed WARC of run {args.run}\n")
        return 1
    if args.json:
        for w in warcs:
            info = w["warcinfo"]
            print(json.dumps({
                "warc": w["warc_key"], "sha256": w["sha256"], "size": w["size"],
                "records": w["records"], "run_id": w["run_id"], "source": w["source"],
                "warcinfo": json.loads(info) if isinstance(info, str) else info,
            }, ensure_ascii=False))  # fmt: skip
        for row in rows:
            values = field_values(row)
            values["datetime"] = iso(row.ts)
            print(json.dumps(values, ensure_ascii=False))
        return 0
    runs = sorted({str(w["run_id"]) for w in warcs})
    print(f"run {args.run}: {len(warcs)} WARC(s), {sum(int(w['records']) for w in warcs)} "
          f"record(s), attest run(s) {', '.join(runs)}")  # fmt: skip
    for w in warcs:
        print(f"  WARC {w['warc_key']}  {w['records']} records  sha256 {w['sha256']}")
    for row in rows:
        status = row.status if row.status is not None else "-"
        print(f"{iso(row.ts)}  {status!s:>3}  {row.record_type:<8} {row.mime:<24} {row.url}")
        print(f"    {row.record_id}  {row.digest or '-'}  {row.warc_key}@{row.offset}")
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    from archive.dates import iso
    from archive.index.query import field_values

    if args.url is None:
        if not args.run:
            raise ConfigError("find: give a URL, or --run RUN_ID for what a run produced")
        if args.at or args.date_from or args.date_to or args.match != "exact":
            raise ConfigError("find --run without a URL takes no --at, --from, --to or --match")
        return _find_run(args)
    config = _config(args.store)
    with _index(config) as db:
        rows = _find_rows(db, args)
    if args.json:
        for row in rows:
            values = field_values(row)
            values["datetime"] = iso(row.ts)
            print(json.dumps(values, ensure_ascii=False))
    else:
        for row in rows:
            status = row.status if row.status is not None else "-"
            print(f"{iso(row.ts)}  {status!s:>3}  {row.record_type:<8} {row.mime:<24} {row.url}")
            print(f"    {row.record_id}  {row.digest or '-'}  {row.warc_key}@{row.offset}")
    if not rows:
        sys.stderr.write(f"attest: no capture of {args.url} matches\n")
        return 1
    return 0


#: How far (microseconds) the capture ``attest get`` writes may be from ``--at`` before it warns.
FAR_FROM_ASKED = 86_400 * 1_000_000


def _distance(micros: int) -> str:
    """``790 days 8 hours after``: a time difference in words, for people."""
    minutes = abs(micros) // 60_000_000
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour")] if days else [(hours, "hour"), (minutes, "minute")]
    text = " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n) or "0 minutes"
    return f"{text} {'after' if micros > 0 else 'before'}"


def cmd_get(args: argparse.Namespace) -> int:
    from archive.dates import iso
    from archive.index.retrieve import load_payload, pinned_store, raw_record
    from archive.store import open_store

    config = _config(args.store)
    if not args.at:
        raise ConfigError(
            "get: --at DATE is required (ISO 8601 or 14 digits; the closest capture is written)"
        )
    store = open_store(config.store_uri)
    args.date_from = args.date_to = None
    args.limit = 1
    with _index(config) as db:
        store = pinned_store(store, db)
        rows = _find_rows(db, args)
        if not rows:
            sys.stderr.write(f"attest: no capture of {args.url} (match {args.match})\n")
            return 1
        row = rows[0]
        if args.record:
            data = raw_record(store, row)
            if data[:2] == b"\x1f\x8b":
                import gzip

                data = gzip.decompress(data)
        else:
            data = load_payload(store, row).decoded()
        _custody(db, store).append(
            "read",
            row.record_id,
            {"url": row.url, "warc": store.object_uri(row.warc_key), "offset": row.offset,
             "via": "attest get", "as": "record" if args.record else "payload"},
        )  # fmt: skip
    asked = _when(args.at, "--at", "exact")
    assert asked is not None
    if abs(row.ts - asked) > FAR_FROM_ASKED:
        sys.stderr.write(
            f"warning: the closest capture was made {_distance(row.ts - asked)} the time asked "
            f"({iso(asked)}): it shows the page as it was then, not at --at\n"
        )
    if args.output:
        out = Path(args.output)
        if out.exists() and not args.force:
            raise ConfigError(f"{out}: exists (use --force to replace it)")
        out.write_bytes(data)
        sys.stderr.write(
            f"wrote {len(data)} bytes of {row.url} captured {iso(row.ts)} "
            f"(capture {row.record_id})\n"
        )
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from archive.dates import iso

    config = _config()
    query = " ".join(args.words)
    if not query.strip():
        raise ConfigError("search: give at least one word")
    with _index(config) as db:
        hits = db.search(query, limit=args.limit)
    if args.json:
        for hit in hits:
            print(json.dumps({"url": hit.url, "datetime": iso(hit.ts), "snippet": hit.snippet,
                              "record_id": hit.record_id}, ensure_ascii=False))  # fmt: skip
    else:
        for hit in hits:
            print(f"{iso(hit.ts)}  {hit.url}\n    {hit.snippet}")
    if not hits:
        sys.stderr.write(f"attest: no captured page matches {query!r}\n")
        return 1
    return 0


def cmd_custody(args: argparse.Namespace) -> int:
    """``verify``: the log against the segments sealed in the store; ``seal``: seal what is not
    sealed yet (and sign and timestamp segments sealed without the organisation key)."""
    from archive.store import open_store
    from archive.trust.signing import Trust, fingerprint, load_trust

    config = _config(args.store)
    with _index(config) as db:
        custody = _custody(db, open_store(config.store_uri), config)
        attestor = custody.attestor
        if args.action == "seal":
            key = custody.seal()
            print(f"sealed {key}" if key else "nothing to seal")
            for late in custody.attest_sealed():
                print(f"signed and timestamped {late} (sealed earlier without them)")
            return 0
        trust_files = [Path(t) for t in args.trust] if args.trust else list(config.trust)
        trust = load_trust(trust_files) if trust_files else Trust()
        if trust.empty and attestor.signer is not None:
            # No anchors given: the organisation's own key, which detects an outsider's rewrite.
            trust.public_keys[fingerprint(attestor.signer.public_der())] = "the signing key"
        verdict = custody.check(trust, require_seals=attestor.signer is not None)
    if args.json:
        print(json.dumps({
            "ok": verdict.ok, "entries": verdict.entries, "sealed_through": verdict.sealed_through,
            "unsealed": list(verdict.unsealed) if verdict.unsealed else None,
            "segments": [vars(s) for s in verdict.segments], "problems": verdict.problems,
            "notes": verdict.notes,
        }, indent=1))  # fmt: skip
        return 0 if verdict.ok else 1
    for segment in verdict.segments:
        signed = f"signed by {segment.signer}" if segment.signer else "not signed"
        if segment.signer and not segment.trusted:
            signed += " (not a trusted key)"
        stamps = (
            f"timestamped by {', '.join(segment.timestamps)}"
            if segment.timestamps
            else ("not timestamped")
        )
        print(f"  {segment.key}: entries {segment.first}-{segment.last}, {signed}, {stamps}")
    for note in verdict.notes:
        print(f"  NOTE {note}")
    for problem in verdict.problems:
        print(f"BROKEN {problem}")
    sealed = f"sealed in the store through entry {verdict.sealed_through}"
    status = "matches the sealed segments" if verdict.ok else "DOES NOT VERIFY"
    print(f"custody log: {verdict.entries} entries, {sealed}; the database {status}")
    return 0 if verdict.ok else 1


def _case(name: str) -> Any:
    """A case by its file's path, or by its id in ``cases/`` here or beside the package."""
    from archive.evidence.cases import case_folders, find_case

    return find_case(name, case_folders([Path.cwd(), CHECKOUT]))


def _claims_summary(results: list[Any]) -> dict[str, int]:
    """Claims fully covered (every link found), claims with gaps, and gap links."""
    covered = sum(1 for r in results if r.covered)
    return {"claims": len(results), "covered": covered, "with_gaps": len(results) - covered,
            "gap_links": sum(len(r.gap_links) for r in results)}  # fmt: skip


def _quote_words(check: Any) -> str:
    """Where a quote was found, for a terminal: ``quote shown (rendered text): "..."``."""
    if not check.found:
        where = f" ({check.text} text)" if check.text else " (no text indexed for it)"
        return f"QUOTE NOT SHOWN{where}: {check.quote!r}"
    return (f"quote shown ({check.text} text {check.text_record}): "
            f"…{check.before} [{check.shown}] {check.after}…")  # fmt: skip


def cmd_claims(args: argparse.Namespace) -> int:
    from archive.dates import iso
    from archive.evidence.cases import resolve
    from archive.index.pagemeta import PageMetadata
    from archive.index.retrieve import pinned_store
    from archive.store import open_store

    case = _case(args.case)
    config = _config()
    with _index(config) as db:
        pages = PageMetadata(db, pinned_store(open_store(config.store_uri), db))
        results = [resolve(db, case, claim, pages) for claim in case.claims]
    summary = _claims_summary(results)
    if args.json:
        print(json.dumps({
            "case": case.id, "title": case.title, "summary": summary,
            "claims": [{
                "id": r.claim.id, "kind": r.claim.kind, "text": r.claim.text,
                "source": r.claim.source, "covered": r.covered, "gap": not r.covered,
                "gaps": r.gaps, "links": [link.as_dict() for link in r.links],
                "withdrawn": [vars(w) for w in r.withdrawn],
                "captures": [{"capture": f.row.record_id, "url": f.row.url,
                              "datetime": iso(f.row.ts), "status": f.row.status,
                              "record_type": f.row.record_type, "via": f.via,
                              "quote_found": f.quote_found,
                              "quotes": [q.as_dict() for q in f.quotes]} for f in r.found],
            } for r in results],
        }, indent=1, ensure_ascii=False))  # fmt: skip
        return 0
    print(f"case {case.id}: {case.title}")
    for r in results:
        if r.covered:
            label = f"{len(r.found)} capture(s), every link found"
        elif not r.found:
            label = "GAP: no capture"
        else:
            label = f"{len(r.found)} capture(s); GAP: {len(r.gap_links)} link(s) not found"
        kind = " (counter-statement)" if r.claim.kind == "counter-statement" else ""
        print(f"\n{r.claim.id}{kind}  {label}\n  {r.claim.text}")
        for link in r.links:
            if link.gap:
                print(f"  GAP    {link.describe}: {link.gap}")
            else:
                extra = f"; {len(link.incomplete)} incomplete not counted" if link.incomplete else ""
                print(f"  found  {link.describe} ({len(link.captures)} capture(s){extra})")
        if not r.links:
            print("  GAP    no evidence is linked to this claim")
        for f in r.found:
            print(f"    {iso(f.row.ts)}  {f.row.status or '-'}  {f.row.url}")
            print(f"      {f.row.record_id}  via {f.via}")
            for check in f.quotes:
                print(f"      {_quote_words(check)}")
        for w in r.withdrawn:
            print(f"  withdrawn: capture {w.record_id}, linked by {w.annotator} at {w.linked_at}, "
                  f"withdrawn by {w.withdrawn_by} at {w.withdrawn_at}: {w.withdrawn_reason}")  # fmt: skip
    print(f"\n{summary['covered']} of {summary['claims']} claims fully covered; "
          f"{summary['with_gaps']} with gaps; {summary['gap_links']} gap link(s)")  # fmt: skip
    return 0


def cmd_claim_link(args: argparse.Namespace) -> int:
    from archive.custody.log import default_actor
    from archive.evidence.claimlinks import record_link
    from archive.store import open_store

    if args.reason is not None and not args.any_record:
        raise ConfigError("--reason goes with --any-record (why a record that is not a page)")
    if args.any_record and args.reason is None:
        raise ConfigError("--any-record needs --reason: say why this record is evidence")
    case = _case(args.case)
    config = _config()
    annotator = args.annotator or default_actor()
    with _index(config) as db:
        row, new = record_link(
            db, _custody(db, open_store(config.store_uri), config), case, args.claim,
            args.capture, annotator=annotator, note=args.note, any_record_reason=args.reason,
        )  # fmt: skip
    state = "linked" if new else "already linked"
    print(f"{state}: {row.record_id} ({row.url}) -> {case.id} claim {args.claim}")
    return 0


def cmd_claim_unlink(args: argparse.Namespace) -> int:
    """Withdraw a run-time link: kept in the index database and the custody log as withdrawn."""
    from archive.custody.log import default_actor
    from archive.evidence.cases import capture_record_id
    from archive.evidence.claimlinks import withdraw_link
    from archive.store import open_store

    case = _case(args.case)
    config = _config()
    actor = args.actor or default_actor()
    record_id = capture_record_id(args.capture)
    with _index(config) as db:
        _, was = withdraw_link(
            db, _custody(db, open_store(config.store_uri), config), case, args.claim, record_id,
            actor=actor, reason=args.reason,
        )  # fmt: skip
    print(f"withdrawn: {record_id} -> {case.id} claim {args.claim} (linked by {was.annotator} "
          f"at {was.linked_at}); later exports list it as withdrawn")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from archive.custody.log import default_actor
    from archive.evidence.bundle import export_bundle
    from archive.index.retrieve import pinned_store
    from archive.store import open_store

    case = _case(args.case)
    config = _config(args.store)
    store = open_store(config.store_uri)
    output = Path(args.output)
    if output.suffix != ".wacz":
        raise ConfigError(f"-o {output}: a bundle's name ends in .wacz")
    signer, tsas = _signing(config, unsigned=args.unsigned)
    with _index(config) as db:
        custody = _custody(db, store)
        store = pinned_store(store, db)
        report = export_bundle(
            db, store, case, output, claim_ids=args.claim or (), custody=custody,
            actor=default_actor(), signer=signer, tsas=tsas, chromium=config.chromium,
        )  # fmt: skip
        custody.seal()
    print(f"wrote {report.path} ({report.records} records, WARC {report.warc_bytes:,} bytes)")
    print(f"  sha256 {report.sha256}")
    print(f"  claims: {', '.join(report.claims)}")
    for gap in report.gaps:
        print(f"  GAP: claim {gap} (listed in the manifest's gaps)")
    return 0


def _signing(config: Any, *, unsigned: bool) -> tuple[Any, list[Any]]:
    """The bundle signer and the timestamp authorities, from settings."""
    from archive.trust.signing import load_signer
    from archive.trust.timestamps import authorities

    # ATTEST_TSA_CHAINS follows ATTEST_TSA_URLS by position: an empty entry is an authority
    # with no chain file, so entries are kept in place (only trailing empty ones dropped).
    chains = list(config.tsa_chains)
    while chains and not chains[-1]:
        chains.pop()
    tsas = authorities(list(config.tsa_urls), chains)
    if not tsas:
        sys.stderr.write(
            "warning: no timestamp authority configured (ATTEST_TSA_URLS): the bundle carries "
            "no independent time, and `attest verify` will report it\n"
        )
    if unsigned:
        sys.stderr.write("warning: --unsigned: `attest verify` will report the bundle unsigned\n")
        return None, tsas
    key = config.signing_key or config.home / "keys" / "signing.pem"
    if not key.is_file():
        raise ConfigError(
            f"no signing key ({key} does not exist): set ATTEST_SIGNING_KEY, or run "
            "`attest keygen` to make an organisation key, or pass --unsigned"
        )
    return load_signer(key, config.signing_cert), tsas


def cmd_keygen(args: argparse.Namespace) -> int:
    """A new organisation signing key; its public key is what verifiers are given."""
    from cryptography.hazmat.primitives import serialization

    from archive.trust.signing import fingerprint, generate_key

    config = _config()
    path = Path(args.output) if args.output else config.home / "keys" / "signing.pem"
    public = generate_key(path)
    der = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    print(f"private key: {path} (keep it secret; never share it)")
    print(
        f"public key:  {public} (give it to whoever verifies your bundles: attest verify --trust)"
    )
    print(f"fingerprint: SHA-256 {fingerprint(der)}")
    return 0


def cmd_hold(args: argparse.Namespace) -> int:
    """Legal holds on the WARCs behind captures, or behind a case's claims; each one logged."""
    from archive.custody.log import default_actor
    from archive.evidence.holds import apply_holds, plan_for_captures, plan_for_claims
    from archive.index.retrieve import pinned_store
    from archive.store import open_store

    if not args.ids and not args.case:
        raise ConfigError("hold: give capture ids, or --case CASE [CLAIM_ID]...")
    config = _config(args.store)
    store = open_store(config.store_uri)
    store.require_legal_holds()  # before anything else: a store without holds changes nothing
    case = _case(args.case) if args.case else None
    with _index(config) as db:
        store = pinned_store(store, db)
        if case is not None:
            plan = plan_for_claims(db, store, case, args.ids)
        else:
            plan = plan_for_captures(db, store, args.ids)
        holds = apply_holds(
            store, _custody(db, store), plan, on=not args.release,
            actor=args.actor or default_actor(), note=args.note,
        )  # fmt: skip
    if args.json:
        print(json.dumps({"holds": [{**vars(h), **plan.details(h.key),
                                     **({"kept_for": plan.kept[h.key]} if h.key in plan.kept else {})}
                                    for h in holds],
                          "gaps": plan.gaps}, indent=1))  # fmt: skip
        return 0
    for hold in holds:
        asked = plan.details(hold.key)
        named = asked["claims"] if case is not None else asked["captures"]
        kind = "claim" if case is not None else "capture"
        why = f"{kind}{'s' if len(named) > 1 else ''} {', '.join(named)}"
        verb = "held" if not args.release else "kept" if hold.key in plan.kept else "released"
        print(f"{verb} {hold.uri}  version {hold.version_id or '-'} (was {hold.previous})  {why}")
        if hold.key in plan.kept:
            print(f"  still held for {'; '.join(plan.kept[hold.key])}: legal hold stays ON")
    for gap in plan.gaps:
        print(f"  GAP: claim {gap} has no capture; nothing held for it")
    action = "release" if args.release else "hold"
    if args.release:
        lifted = len(holds) - len(plan.kept)
        print(f"legal hold OFF on {lifted} WARC(s), kept ON on {len(plan.kept)} held for "
              f"something else; custody log: one '{action}' entry each")  # fmt: skip
    else:
        print(f"legal hold ON on {len(holds)} WARC(s); custody log: one '{action}' entry each")
    return 0


def _audit_progress(result: Any) -> None:
    status = "OK" if result.ok else "FAILED"
    print(f"{status} {result.uri}: {result.records} records, sha256 {result.sha256 or '-'}"
          + (f" (as recorded at {result.expected_from})" if result.ok else ""))  # fmt: skip
    for problem in result.problems:
        print(f"  {problem}")


def cmd_audit(args: argparse.Namespace) -> int:
    """The pipeline's own check of stored WARCs (the DAG's verify task), logged per WARC."""
    from archive.custody.audit import audit_warcs
    from archive.custody.log import default_actor
    from archive.ingest.indexer import resolve_warc_key
    from archive.store import open_store

    config = _config(args.store)
    store = open_store(config.store_uri)
    keys = [resolve_warc_key(store, w) for w in args.warcs] or None
    with _index(config) as db:
        results = audit_warcs(
            store, db, _custody(db, store), keys, actor=args.actor or default_actor(),
            context={"via": "attest audit"}, progress=None if args.json else _audit_progress,
        )  # fmt: skip
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        print(f"verified {len(results)} WARC(s): {len(results) - len(failed)} ok, "
              f"{len(failed)} FAILED; custody log: one 'verify' entry each")  # fmt: skip
    return 1 if failed else 0


def cmd_airflow_pools(args: argparse.Namespace) -> int:
    """The registry's Airflow pools (one per source, or one per host pool that sources share;
    slots: the per-host concurrency), created or updated in Airflow's metadata database
    (``AIRFLOW_HOME``), or written as JSON. Refused, changing nothing, when two pools would
    crawl one host (the sources' URLs are resolved from the environment for this check)."""
    import settings
    from crawlers.orchestration.plan import plan_pools

    paths = [Path(p) for p in args.sources] if args.sources else settings.registry_paths(os.environ)
    plan = plan_pools(paths, os.environ)
    pools = plan.pools
    for note in plan.unchecked:
        print(f"  not checked for shared hosts: {note}", file=sys.stderr)
    if args.write:
        Path(args.write).write_text(json.dumps(pools, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(pools)} pool(s) to {args.write} (load them: airflow pools import FILE)")
        return 0
    try:
        from airflow.models.pool import Pool
    except ImportError:
        raise ConfigError(
            "Airflow is not installed here: install attest[airflow], or use --write FILE"
        ) from None
    for name, spec in sorted(pools.items()):
        Pool.create_or_update_pool(
            name, spec["slots"], spec["description"], spec["include_deferred"]
        )
        print(f"pool {name}: {spec['slots']} slot(s)")
    for name in plan.stale(pool.pool for pool in Pool.get_pools()):
        print(f"  pool {name} has no source any more (airflow pools delete {name})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import settings
    from archive.serve.actions import ActionSettings
    from archive.serve.app import ServeOptions, serve

    config = _config(args.store)
    key = config.signing_key_path
    return serve(
        ServeOptions(
            host=args.host,
            port=args.port,
            index_url=config.index_url,
            store_uri=config.store_uri,
            tokens_file=config.tokens_file,
            replay=not args.no_replay,
            replay_venv=config.replay_venv,
            home=config.home,
            actions=ActionSettings(
                case_dirs=tuple(settings.case_dirs(os.environ)),
                exports=config.home / "exports",
                signing_key=key if key.is_file() else None,
                signing_cert=config.signing_cert,
                tsa_urls=tuple(config.tsa_urls),
                tsa_chains=tuple(config.tsa_chains),
                chromium=config.chromium,
            ),
            custody_attestor=config.custody_attestor(),
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attest", description="Capture web evidence as verifiable WARCs."
    )
    parser.add_argument("--log-json", action="store_true", help="JSON log lines even on a terminal")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="capture the bundled demo web into the data home")
    demo.add_argument("--articles", type=int, default=60, help="size of the demo news site")
    demo.add_argument("--store", help="store URI (default: the data home's store/)")
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "--random-ports",
        action="store_true",
        help="serve the demo web on free ports, not 127.0.0.1:8781-8783 (the demo case's "
        "URLs then match nothing)",
    )
    demo.set_defaults(func=cmd_demo)

    crawl = sub.add_parser("crawl", help="capture URLs or registry sources")
    crawl.add_argument("urls", nargs="*", metavar="URL")
    crawl.add_argument(
        "--sources", action="append", metavar="FILE", help="registry file or directory"
    )
    crawl.add_argument(
        "--only", action="append", metavar="ID", help="only this source id (repeatable)"
    )
    crawl.add_argument("--max-pages", type=int, default=100)
    crawl.add_argument("--depth", type=int, default=2)
    crawl.add_argument("--store", help="store URI: file:///abs/path or s3://bucket/prefix")
    crawl.add_argument(
        "--browser",
        action="store_true",
        help="render the seeds in Chromium as profiles/posts (one capture per post)",
    )
    crawl.add_argument("--json", action="store_true", help="print the summary as JSON")
    crawl.set_defaults(func=cmd_crawl)

    cap = sub.add_parser("capture", help="capture one page now and print its capture id and hashes")
    cap.add_argument("url", metavar="URL")
    cap.add_argument("--browser", action="store_true", help="render it in Chromium first")
    cap.add_argument("--store", help="store URI: file:///abs/path or s3://bucket/prefix")
    cap.add_argument("--json", action="store_true", help="print the summary as JSON")
    cap.set_defaults(func=cmd_capture)

    rec = sub.add_parser("recover", help="seal and upload WARCs left by dead runs")
    rec.add_argument("--store", help="store URI")
    rec.set_defaults(func=cmd_recover)

    ver = sub.add_parser("verify", help="verify WARC files and WACZ bundles offline")
    ver.add_argument("files", nargs="+", metavar="FILE")
    ver.add_argument("--trust", action="append", metavar="FILE",
                     help="PEM trust anchors: trusted public keys and root certificates "
                          "(repeatable; default ATTEST_TRUST)")  # fmt: skip
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_verify)

    idx = sub.add_parser(
        "index", help="index stored WARCs (CDXJ beside each, rows in the index DB)"
    )
    idx.add_argument(
        "warcs",
        nargs="*",
        metavar="WARC_URI",
        help="WARC URIs or keys (default: all not yet indexed)",
    )
    idx.add_argument(
        "--rebuild", action="store_true", help="empty the index and rebuild it from the store"
    )
    idx.add_argument("--store", help="store URI")
    idx.add_argument(
        "--workers", type=int, help="processes reading WARCs (default: the CPUs, at most 8)"
    )
    idx.add_argument("--json", action="store_true")
    idx.set_defaults(func=cmd_index)

    def lookup(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
        if optional:
            p.add_argument("url", metavar="URL", nargs="?", help="default: all of --run")
        else:
            p.add_argument("url", metavar="URL")
        p.add_argument("--match", choices=("exact", "prefix", "host", "domain"), default="exact")
        p.add_argument("--at", metavar="DATE", help="ISO 8601 or 14 digits: closest first")
        p.add_argument("--store", help="store URI")

    find = sub.add_parser("find", help="list captures of a URL, or what a run produced")
    lookup(find, optional=True)
    find.add_argument("--from", dest="date_from", metavar="DATE")
    find.add_argument("--to", dest="date_to", metavar="DATE")
    find.add_argument("--limit", type=int, default=1000)
    find.add_argument(
        "--run",
        metavar="RUN_ID",
        help="only what this run captured: an attest run id, or DAG_ID/AIRFLOW_RUN_ID",
    )
    find.add_argument(
        "--all-records", action="store_true", help="also metadata and request records"
    )
    find.add_argument("--json", action="store_true", help="one JSON object per line")
    find.set_defaults(func=cmd_find)

    get = sub.add_parser("get", help="write the archived payload (decoded) or the raw record")
    lookup(get)
    get.add_argument("-o", "--output", metavar="FILE")
    get.add_argument("--force", action="store_true", help="replace FILE if it exists")
    get.add_argument("--record", action="store_true", help="the whole WARC record, as stored")
    get.set_defaults(func=cmd_get)

    search = sub.add_parser("search", help="full-text search over the text of captured pages")
    search.add_argument("words", nargs="+", metavar="WORD")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    srv = sub.add_parser("serve", help="CDX API, Memento, replay (pywb), search and a web page")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8700)
    srv.add_argument("--no-replay", action="store_true", help="do not start pywb")
    srv.add_argument("--store", help="store URI")
    srv.set_defaults(func=cmd_serve)

    claims = sub.add_parser("claims", help="a case's claims with their captures, and the gaps")
    claims.add_argument("case", metavar="CASE", help="case file path or case id")
    claims.add_argument("--json", action="store_true")
    claims.set_defaults(func=cmd_claims)

    claim = sub.add_parser("claim", help="link a capture to a claim, or withdraw a link")
    claim_sub = claim.add_subparsers(dest="claim_command", required=True)
    link = claim_sub.add_parser("link", help="record that a capture is evidence of a claim")
    link.add_argument("case", metavar="CASE", help="case file path or case id")
    link.add_argument("claim", metavar="CLAIM", help="claim id")
    link.add_argument("capture", metavar="CAPTURE_ID", help="capture id (UUID or record id)")
    link.add_argument("--annotator", help="who links it (default: ATTEST_ACTOR or user@host)")
    link.add_argument("--note")
    link.add_argument("--any-record", action="store_true",
                      help="link a record that is not a page (a request, a stylesheet, an image"
                           "...); needs --reason, which is kept with the link")  # fmt: skip
    link.add_argument("--reason", help="why, with --any-record")
    link.set_defaults(func=cmd_claim_link)
    unlink = claim_sub.add_parser(
        "unlink", help="withdraw a link made with `claim link` (kept, and logged, as withdrawn)"
    )
    unlink.add_argument("case", metavar="CASE", help="case file path or case id")
    unlink.add_argument("claim", metavar="CLAIM", help="claim id")
    unlink.add_argument("capture", metavar="CAPTURE_ID", help="capture id (UUID or record id)")
    unlink.add_argument("--reason", required=True, help="why it is no longer evidence (logged)")
    unlink.add_argument("--actor", help="who withdraws it (default: ATTEST_ACTOR or user@host)")
    unlink.set_defaults(func=cmd_claim_unlink)

    exp = sub.add_parser("export", help="write a case's evidence as a WACZ bundle")
    exp.add_argument("case", metavar="CASE", help="case file path or case id")
    exp.add_argument("--claim", action="append", metavar="ID", help="only this claim (repeatable)")
    exp.add_argument("-o", "--output", required=True, metavar="BUNDLE.wacz")
    exp.add_argument("--unsigned", action="store_true",
                     help="write the bundle without a signature (verify will fail it)")  # fmt: skip
    exp.add_argument("--store", help="store URI")
    exp.set_defaults(func=cmd_export)
    key = sub.add_parser("keygen", help="make an organisation key that signs bundles")
    key.add_argument("-o", "--output", metavar="KEY.pem",
                     help="where to write the private key (default <home>/keys/signing.pem)")  # fmt: skip
    key.set_defaults(func=cmd_keygen)

    hold = sub.add_parser(
        "hold", help="place (or --release) an S3 legal hold on the WARCs behind captures or claims"
    )
    hold.add_argument(
        "ids", nargs="*", metavar="ID",
        help="capture ids (UUID or record id); with --case, claim ids (default: all its claims)",
    )  # fmt: skip
    hold.add_argument("--case", metavar="CASE", help="case file path or case id: IDs are claims")
    hold.add_argument(
        "--release", action="store_true",
        help="lift what these captures or claims asked for; a WARC also held for something "
             "else keeps its hold (recorded too)",
    )  # fmt: skip
    hold.add_argument("--note", help="why (a court order, a matter number), kept in the log")
    hold.add_argument("--actor", help="who asks (default: ATTEST_ACTOR or user@host)")
    hold.add_argument("--store", help="store URI (s3://bucket/prefix with Object Lock)")
    hold.add_argument("--json", action="store_true")
    hold.set_defaults(func=cmd_hold)

    aud = sub.add_parser(
        "audit", help="re-read stored WARCs, check them, record the result in the custody log"
    )
    aud.add_argument(
        "warcs", nargs="*", metavar="WARC_URI", help="WARC URIs or keys (default: all indexed)"
    )
    aud.add_argument("--actor", help="who checks (default: ATTEST_ACTOR or user@host)")
    aud.add_argument("--store", help="store URI")
    aud.add_argument("--json", action="store_true")
    aud.set_defaults(func=cmd_audit)

    pools = sub.add_parser(
        "airflow-pools",
        help="create or update the Airflow pools that keep each source polite across workers",
    )
    pools.add_argument("--sources", action="append", metavar="PATH",
                       help="registry file or directory (repeatable; default ATTEST_SOURCES, "
                            "else sources/)")  # fmt: skip
    pools.add_argument("--write", metavar="FILE",
                       help="write the pools as JSON for `airflow pools import` instead")  # fmt: skip
    pools.set_defaults(func=cmd_airflow_pools)

    cus = sub.add_parser("custody", help="verify or seal the custody log")
    cus.add_argument("action", choices=("verify", "seal"))
    cus.add_argument("--store", help="store URI")
    cus.add_argument("--trust", action="append", metavar="FILE",
                     help="PEM trust anchors for the segments' signatures and timestamps "
                          "(default ATTEST_TRUST, else the configured signing key)")  # fmt: skip
    cus.add_argument("--json", action="store_true")
    cus.set_defaults(func=cmd_custody)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json_lines=True if args.log_json else None)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"attest: error: {exc}\n")
        return 2
    except AttestError as exc:
        sys.stderr.write(f"attest: failed: {exc}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (`attest claims X | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code
