"""Capturing: ``attest demo``, ``crawl``, ``capture`` and ``recover``.

Each capture runs through :func:`crawlers.orchestration.run.run_capture` into the configured
store, with its progress on stderr and its summary on stdout (:mod:`cli.output`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archive.errors import ConfigError, CrawlFailed
from cli.base import CHECKOUT, Subcommands, load_config, run_options
from cli.output import print_summary, progress_display


def _run(sources: list[Any], config: Any, options: Any, *, keep_captures: bool = False) -> Any:
    """One capture run into the configured store, with progress on stderr."""
    from archive.store import open_store
    from crawlers.orchestration.run import run_capture

    store = open_store(config.store_uri)
    json_lines = not sys.stderr.isatty()
    with progress_display(json_lines) as progress:
        return run_capture(sources, options, store, progress=progress, keep_captures=keep_captures)


def _do_capture(sources: list[Any], config: Any, options: Any, *, as_json: bool) -> int:
    summary = _run(sources, config, options)
    print_summary(summary, as_json=as_json)
    return 0 if summary.ok else 1


class Demo:
    """``attest demo``: the demo web served on this machine, captured into the data home."""

    def add_parser(self, sub: Subcommands) -> None:
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
        demo.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from crawlers.registry import load_registry

        config = load_config(args.store)
        with _demo_web(args.articles, random_ports=args.random_ports) as origins:
            env = dict(
                os.environ,
                DEMO_NEWS=origins["news"],
                DEMO_NGO=origins["ngo"],
                DEMO_SOCIAL=origins["social"],
            )
            sources = load_registry([_demo_sources()], env)
            options = _demo_options(config)
            sys.stderr.write(
                f"serving the demo web: {origins['news']} (news), {origins['ngo']} (NGO), "
                f"{origins['social']} (social)\n"
            )
            code = _do_capture(sources, config, options, as_json=args.json)
            print(
                f"data home: {config.home}  (store: {config.store_uri}, index: {config.index_url})"
            )
            print(
                "next: `attest serve` and open http://127.0.0.1:8700/ to search, look up and replay"
            )
            return code


@contextmanager
def _demo_web(articles: int, *, random_ports: bool) -> Iterator[dict[str, str]]:
    """The demo web (``python -m demoweb``) in a process of its own while the block runs: the
    origin of each of its sites (``news``, ``ngo``, ``social``)."""
    from demoweb.case import DEMO_PORTS

    # Fixed ports: cases/new-caledonia.yaml names the demo pages' URLs (127.0.0.1:8781-8783).
    ports = [] if random_ports else [f"--port={s}={p}" for s, p in DEMO_PORTS.items()]
    web = subprocess.Popen(
        [sys.executable, "-m", "demoweb", "--articles", str(articles), "--case", *ports],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert web.stdout is not None
        line = web.stdout.readline()
        try:
            origins: dict[str, str] = json.loads(line)
        except ValueError:
            raise CrawlFailed(f"the demo web did not start (it said {line[:200]!r})") from None
        if "error" in origins:
            raise ConfigError(
                f"the demo web cannot start: {origins['error']}; stop what uses that port, or "
                "run `attest demo --random-ports` (cases/new-caledonia.yaml then matches nothing)"
            )
        yield origins
    finally:
        web.terminate()
        web.wait(10)


def _demo_sources() -> Path:
    for base in (CHECKOUT, Path.cwd()):
        candidate = base / "sources" / "demo.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError("sources/demo.yaml not found next to cli.py or in the current directory")


def _demo_options(config: Any) -> Any:
    """The run options for the demo: the settings', with loopback allowed and the browser busy."""
    options = run_options(config)
    # The demo web is on loopback, which the egress guard refuses unless allowed.
    if "127.0.0.0/8" not in options.allow_networks:
        options.allow_networks = ",".join(x for x in (options.allow_networks, "127.0.0.0/8") if x)
    # The social posts are rendered in the browser, all at once: the demo stays quick.
    if "ATTEST_BROWSER_CONCURRENCY" not in os.environ:
        options.browser_concurrency = max(options.browser_concurrency, 8)
    return options


class Crawl:
    """``attest crawl URL...`` or ``attest crawl --sources FILE [--only ID]...``."""

    def add_parser(self, sub: Subcommands) -> None:
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
        crawl.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from crawlers.registry import adhoc_source, load_registry, select_sources

        config = load_config(args.store)
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
        return _do_capture(sources, config, run_options(config), as_json=args.json)


class Capture:
    """``attest capture URL``: one page, now: a "save this page" for investigators."""

    def add_parser(self, sub: Subcommands) -> None:
        cap = sub.add_parser(
            "capture", help="capture one page now and print its capture id and hashes"
        )
        cap.add_argument("url", metavar="URL")
        cap.add_argument("--browser", action="store_true", help="render it in Chromium first")
        cap.add_argument("--store", help="store URI: file:///abs/path or s3://bucket/prefix")
        cap.add_argument("--json", action="store_true", help="print the summary as JSON")
        cap.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from crawlers.registry import snapshot_source

        config = load_config(args.store)
        source = snapshot_source([args.url], browser=args.browser)
        summary = _run([source], config, run_options(config), keep_captures=True)
        if args.json:
            print_summary(summary, as_json=True)
        else:
            page = next((c for c in summary.captures if c["url"] == args.url), None)
            if page is None and summary.captures:
                page = summary.captures[0]
            if page is not None:
                _print_capture(page)
            print_summary(summary, as_json=False)
        page_ok = any(c["outcome"] == "captured" for c in summary.captures)
        return 0 if summary.ok and page_ok else 1


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


class Recover:
    """``attest recover``: ship what dead runs left in the spool, then log and index each WARC
    as a run would."""

    def add_parser(self, sub: Subcommands) -> None:
        rec = sub.add_parser("recover", help="seal and upload WARCs left by dead runs")
        rec.add_argument("--store", help="store URI")
        rec.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.ingest.ship import recover
        from archive.store import open_store
        from crawlers.orchestration.run import index_runs

        config = load_config(args.store)
        store = open_store(config.store_uri)
        reports = recover(config.spool_root, store)
        indexed, index_pending = index_runs(
            [(w, rep.run_id) for rep in reports for w in rep.shipped],
            config.index_url,
            store,
            attestor=config.custody_attestor(),
        )
        if not reports:
            print("no dead runs in the spool")
        for rep in reports:
            print(
                f"run {rep.run_id}: {len(rep.shipped)} WARC(s) uploaded, {len(rep.pending)} pending"
            )
            for seal in rep.sealed:
                print(
                    f"  sealed {seal.path} ({seal.records} complete records, "
                    f"{seal.cut_bytes} bytes cut)"
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
