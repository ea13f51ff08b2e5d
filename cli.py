"""The ``attest`` command: thin wiring over ``crawlers/`` and ``archive/``.

    attest demo                                   capture the bundled demo web into ./data
    attest crawl URL... [--max-pages N] [--depth N] [--store URI]
    attest crawl --sources FILE [--only ID]...    capture sources from the registry
    attest recover [--store URI]                  seal and upload what dead runs left in the spool
    attest verify FILE.warc.gz...                 check every record's digests, offline

Exit status: 0 when everything worked, 1 when a capture or check failed (the summary says
what), 2 for bad input (nothing was changed).
"""

from __future__ import annotations

import argparse
import dataclasses
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


def _config(store: str | None = None, env: dict[str, str] | None = None) -> Any:
    import settings

    return settings.load_config(env, store=store)


def _run_options(config: Any, *, env: dict[str, str] | None = None) -> Any:
    from crawlers.run import RunOptions
    from crawlers.warcinfo import airflow_context

    environ = dict(os.environ) if env is None else env
    return RunOptions(
        home=config.home,
        spool_root=config.spool_root,
        ca_dir=config.ca_dir,
        allow_networks=config.allow_networks,
        user_agent=config.user_agent,
        settings_hash=config.settings_hash(),
        hosts_file=config.hosts_file,
        ca_bundles=config.ca_bundles,
        egress_ip=config.egress_ip,
        egress_echo_url=config.egress_echo_url,
        warc_max_size=config.warc_max_size,
        gzip_level=config.gzip_level,
        concurrency=config.concurrency,
        download_timeout=config.download_timeout,
        retries=config.retries,
        recorder_one_cpu=config.recorder_one_cpu,
        chromium=config.chromium,
        browser_concurrency=config.browser_concurrency,
        browser_recycle=config.browser_recycle,
        airflow=airflow_context(environ),
    )


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


def _run(sources: list[Any], config: Any, options: Any, *, keep_captures: bool = False) -> Any:
    """One capture run into the configured store, with progress on stderr."""
    from archive.store import open_store
    from crawlers.run import run_capture

    store = open_store(config.store_uri)
    json_lines = not sys.stderr.isatty()
    with _progress_display(json_lines) as progress:
        return run_capture(sources, options, store, progress=progress, keep_captures=keep_captures)


def _do_capture(sources: list[Any], config: Any, options: Any, *, as_json: bool) -> int:
    summary = _run(sources, config, options)
    _print_summary(summary, as_json=as_json)
    return 0 if summary.ok else 1


def cmd_crawl(args: argparse.Namespace) -> int:
    from crawlers.registry import adhoc_source, load_registry

    config = _config(args.store)
    if args.sources:
        if args.urls:
            raise ConfigError("give either URLs or --sources, not both")
        sources = load_registry([Path(p) for p in args.sources])
        if args.only:
            known = {s.id for s in sources}
            unknown = [o for o in args.only if o not in known]
            if unknown:
                raise ConfigError(f"--only: no source {unknown[0]!r} in {', '.join(args.sources)}")
            sources = [s for s in sources if s.id in args.only]
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
    from crawlers.registry import adhoc_source

    config = _config(args.store)
    source = adhoc_source([args.url], max_pages=1, max_depth=0, browser=args.browser)
    # One page: the browser renders it as a single post, without following anything.
    source = dataclasses.replace(source, permalink_pattern=".*", max_posts=1)
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
    for base in (Path(__file__).resolve().parent, Path.cwd()):
        candidate = base / "sources" / "demo.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError("sources/demo.yaml not found next to cli.py or in the current directory")


def cmd_demo(args: argparse.Namespace) -> int:
    from crawlers.registry import load_registry

    config = _config(args.store)
    web = subprocess.Popen(
        [sys.executable, "-m", "fixtureweb", "--articles", str(args.articles)],
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
        env = dict(os.environ, DEMO_NEWS=origins["news"], DEMO_NGO=origins["ngo"])
        sources = load_registry([_demo_sources()], env)
        options = _run_options(config)
        # The demo web is on loopback, which the egress guard refuses unless allowed.
        if "127.0.0.0/8" not in options.allow_networks:
            options.allow_networks = ",".join(
                x for x in (options.allow_networks, "127.0.0.0/8") if x
            )
        sys.stderr.write(
            f"serving the demo web: {origins['news']} (news), {origins['ngo']} (NGO)\n"
        )
        code = _do_capture(sources, config, options, as_json=args.json)
        print(f"data home: {config.home}  (store: {config.store_uri})")
        return code
    finally:
        web.terminate()
        web.wait(10)


def cmd_recover(args: argparse.Namespace) -> int:
    from archive.ship import recover
    from archive.store import open_store

    config = _config(args.store)
    reports = recover(config.spool_root, open_store(config.store_uri))
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
    return 0 if all(r.complete for r in reports) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    from archive.warcread import verify_warc

    failed = 0
    results = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"{name}: no such file")
        verdict = verify_warc(path, keep_records=False)
        results.append(verdict)
        if not verdict.ok:
            failed += 1
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "file": v.file,
                        "ok": v.ok,
                        "records": v.record_count,
                        "problems": [vars(p) for p in v.problems],
                    }
                    for v in results
                ],
                indent=1,
            )
        )
    else:
        for v in results:
            status = "OK" if v.ok else "FAILED"
            print(f"{status} {v.file}: {v.record_count} records")
            for problem in v.problems:
                print(f"  {problem}")
    return 1 if failed else 0


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

    ver = sub.add_parser("verify", help="verify WARC files offline")
    ver.add_argument("files", nargs="+", metavar="FILE")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_verify)
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
    return code


if __name__ == "__main__":
    sys.exit(main())
