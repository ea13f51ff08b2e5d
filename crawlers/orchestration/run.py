"""One capture run: recover dead runs, record, crawl, close, verify, upload, index.

The same function serves ``attest crawl``, ``attest demo`` and the DAGs' capture tasks, which
run it in a process of their own (:mod:`crawlers.orchestration.job`) because Twisted's reactor cannot be
restarted in one process. A DAG indexes in a task of its own: its capture runs with no index
(``RunOptions.index_url`` None) and its index task calls :func:`index_runs`.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import ConfigError, CrawlFailed
from archive.ingest.ship import ShippedWarc, ShipReport, recover, ship_spool
from archive.ingest.spool import RunSpool
from archive.outcomes import Outcome
from archive.store import Store
from crawlers.extensions import ProgressSnapshot
from crawlers.orchestration.warcinfo import common_fields, egress_ip, source_fields
from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.egress import load_hosts_table
from crawlers.recorder.process import RecorderProcess
from crawlers.registry import SourceSpec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from settings import AttestConfig

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Everything a run needs, resolved by the entry point from settings and arguments."""

    home: Path
    spool_root: Path
    ca_dir: Path
    allow_networks: str
    user_agent: str
    settings_hash: str
    hosts_file: Path | None = None
    ca_bundles: tuple[Path, ...] = ()
    egress_ip: str | None = None
    egress_echo_url: str | None = None
    warc_max_size: int = 1_000_000_000
    gzip_level: int = 6
    concurrency: int = 16
    download_timeout: float = 30.0
    retries: int = 2
    retry_backoff: float = 1.0
    recorder_one_cpu: bool = True
    chromium: str | None = None
    browser_concurrency: int = 2
    browser_recycle: int = 200
    browser_ready_timeout: float = 20.0
    #: The index database (path or URL); None: WARCs are stored but not indexed.
    index_url: str | None = None
    #: Signs and timestamps the custody segments the run seals (archive.custody.seal).
    custody_attestor: Any = None
    airflow: dict[str, str] = field(default_factory=dict)
    scrapy_settings: dict[str, Any] = field(default_factory=dict)


def options_from_config(config: AttestConfig, *, airflow: Mapping[str, str]) -> RunOptions:
    """The run options of attest's settings; ``airflow``: the task's ids for ``warcinfo``."""
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
        browser_ready_timeout=config.browser_ready_timeout,
        index_url=config.index_url,
        custody_attestor=config.custody_attestor(),
        airflow=dict(airflow),
    )


@dataclass
class RunSummary:
    run_id: str
    started: str
    ended: str
    sources: list[str]
    pages: int
    fetches: int
    outcomes: dict[str, int]
    records: int
    warc_bytes: int
    shipped: list[ShippedWarc]
    pending: list[tuple[str, str]]
    recovered: list[ShipReport]
    stopped: str | None
    spool: str
    #: CPU seconds: the crawler process while crawling, the recorder process, shipping.
    cpu_s: dict[str, float] = field(default_factory=dict)
    #: The ledger entries of pages and attachments (when the caller asked for them).
    captures: list[dict[str, Any]] = field(default_factory=list)
    #: WARCs indexed after upload, and those whose indexing failed (key, why).
    indexed: int = 0
    index_pending: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything asked for was fetched and stored (a seed that is not a URL fails it)."""
        return (
            not self.pending
            and self.stopped is None
            and not self.outcomes.get(Outcome.INVALID_URL.value)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started": self.started,
            "ended": self.ended,
            "sources": self.sources,
            "pages": self.pages,
            "fetches": self.fetches,
            "outcomes": self.outcomes,
            "records": self.records,
            "warc_bytes": self.warc_bytes,
            "warcs": [vars(s) for s in self.shipped],
            "pending": [{"file": f, "reason": r} for f, r in self.pending],
            "recovered_runs": [r.as_dict() for r in self.recovered],
            "stopped": self.stopped,
            "cpu_s": self.cpu_s,
            "indexed": self.indexed,
            "index_pending": [{"warc": k, "reason": r} for k, r in self.index_pending],
            **({"captures": self.captures} if self.captures else {}),
        }


def _scrapy_settings(
    options: RunOptions,
    recorder: RecorderProcess,
    ledger: Path,
    progress: Callable[[ProgressSnapshot], None] | None,
) -> dict[str, Any]:
    import settings as attest_settings

    values = dict(attest_settings.SCRAPY_SETTINGS)
    values.update(
        {
            "ATTEST_RECORDER_URL": recorder.proxy_url,
            "ATTEST_RECORDER_PORT": recorder.port,
            "ATTEST_RECORDER_SECRET": recorder.secret,
            "ATTEST_LEDGER": str(ledger),
            "ATTEST_RETRIES": options.retries,
            "ATTEST_RETRY_BACKOFF": options.retry_backoff,
            "ATTEST_PROGRESS": progress,
            "USER_AGENT": options.user_agent,
            "CONCURRENT_REQUESTS": options.concurrency,
            # The recorder times out first, so a slow origin is recorded as a timeout outcome.
            "DOWNLOAD_TIMEOUT": options.download_timeout + 30,
            "ATTEST_CHROMIUM": options.chromium,
            "ATTEST_BROWSER_CONCURRENCY": options.browser_concurrency,
            "ATTEST_BROWSER_RECYCLE": options.browser_recycle,
            "ATTEST_BROWSER_READY_TIMEOUT": options.browser_ready_timeout,
        }
    )
    values.update(options.scrapy_settings)
    return values


def _source_settings(source: SourceSpec) -> dict[str, Any]:
    return {
        "ROBOTSTXT_OBEY": source.obey_robots,
        "DOWNLOAD_DELAY": source.delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if source.delay > 0 else 0.0,
        "CONCURRENT_REQUESTS_PER_DOMAIN": source.concurrency_per_host,
        "AUTOTHROTTLE_ENABLED": source.autothrottle,
    }


def run_scrapy(sources: list[SourceSpec], base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Crawl the sources concurrently in one reactor; returns each source's Scrapy stats."""
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings

    from crawlers.spiders import SPIDERS

    process = CrawlerProcess(Settings(base), install_root_handler=False)
    # Scrapy's own chatter stays out of attest's logs unless it is a warning.
    for name in ("scrapy", "twisted", "py.warnings"):
        logging.getLogger(name).setLevel(logging.WARNING)
    crawlers: dict[str, Crawler] = {}
    for i, source in enumerate(sources):
        spider_cls = SPIDERS.get(source.kind)
        if spider_cls is None:
            raise ConfigError(
                f"{source.path}: source {source.id!r}: kind {source.kind!r} has no spider yet"
            )
        settings = Settings(base)
        # "spider" priority: CrawlerProcess.crawl() copies the process's settings (``base``, at
        # "project" priority) into each crawler, which would silently undo a source's politeness
        # (delay, per-host concurrency, robots override) were it set at the same priority.
        settings.update(_source_settings(source), priority="spider")
        # The first crawler installs the (asyncio) reactor, as CrawlerProcess would.
        crawler = Crawler(spider_cls, settings, init_reactor=i == 0)
        crawlers[source.id] = crawler
        process.crawl(crawler, source=source)
    process.start(stop_after_crawl=True)
    results: dict[str, dict[str, Any]] = {}
    for sid, crawler in crawlers.items():
        stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
        if "finish_reason" not in stats:
            raise CrawlFailed(
                f"the crawl of source {sid!r} did not run to its end (see the log above)"
            )
        results[sid] = stats
    return results


def run_capture(
    sources: list[SourceSpec],
    options: RunOptions,
    store: Store,
    *,
    progress: Callable[[ProgressSnapshot], None] | None = None,
    run_id: str | None = None,
    keep_captures: bool = False,
) -> RunSummary:
    run_id = str(uuid.UUID(run_id)) if run_id else str(uuid.uuid4())
    started = datetime.now(UTC)
    options.spool_root.mkdir(parents=True, exist_ok=True)
    # Runs that died earlier ship first, so nothing waits for a human.
    recovered = recover(options.spool_root, store)
    spool = RunSpool.create(
        options.spool_root,
        run_id,
        {
            "run_id": run_id,
            "started": started.isoformat(),
            "sources": [s.id for s in sources],
            "store": store.uri,
            "airflow": options.airflow,
        },
    )
    hosts = None
    if options.hosts_file is not None:
        hosts = load_hosts_table(options.hosts_file.read_text().splitlines())
    common = common_fields(
        run_id=run_id,
        settings_hash=options.settings_hash,
        user_agent=options.user_agent,
        egress=egress_ip(options.egress_ip, options.egress_echo_url),
        airflow=options.airflow,
    )
    if any(s.browser for s in sources):
        common.extend(_browser_context(options).items())
    config = RecorderConfig(
        spool=str(spool.path),
        run_id=run_id,
        default_source=sources[0].id if sources else "adhoc",
        ca_dir=str(options.ca_dir),
        warcinfo_common=common,
        warcinfo_sources={s.id: source_fields(s) for s in sources},
        max_warc_size=options.warc_max_size,
        gzip_level=options.gzip_level,
        allow_networks=options.allow_networks,
        hosts=hosts,
        ca_bundles=[str(p) for p in options.ca_bundles],
        socket_timeout=options.download_timeout,
        one_cpu=options.recorder_one_cpu,
        require_source=True,
        # Per run: only this run's crawler and browser may use its recorder.
        secret=secrets.token_urlsafe(24),
    )
    recorder = RecorderProcess(config, lock_fd=spool.lock_fd)
    cpu_start = time.process_time()
    recorder.start()
    stats: dict[str, dict[str, Any]] = {}
    try:
        stats = run_scrapy(
            sources, _scrapy_settings(options, recorder, spool.path / "ledger.jsonl", progress)
        )
    finally:
        closed = recorder.stop()
    cpu_crawled = time.process_time()
    captures = _page_entries(spool.path / "ledger.jsonl") if keep_captures else []
    report = ship_spool(spool, store, seal_open=True)
    spool.release()
    # Recovered WARCs are logged with the run that wrote them, not this one.
    indexed, index_pending = index_runs(
        [(w, run_id) for w in report.shipped]
        + [(w, rec.run_id) for rec in recovered for w in rec.shipped],
        options.index_url,
        store,
        attestor=options.custody_attestor,
    )
    cpu_s = {
        "crawler": round(cpu_crawled - cpu_start, 3),
        "recorder": float(closed.get("cpu_s", 0.0)),
        "ship": round(time.process_time() - cpu_crawled, 3),
    }
    outcomes: Counter[str] = Counter()
    pages = 0
    stopped = None
    for source_stats in stats.values():
        pages += int(source_stats.get("attest/pages", 0))
        for key, value in source_stats.items():
            if key.startswith("attest/outcome/"):
                outcomes[key.split("/", 2)[2]] += int(value)
        if source_stats.get("attest/stopped"):
            stopped = str(source_stats["attest/stopped"])
        if source_stats.get("attest/recorder_unreachable"):
            stopped = stopped or "recorder_unreachable"
    if closed.get("disk_full"):
        stopped = "disk_full"
    writers = closed.get("writers", [])
    return RunSummary(
        run_id=run_id,
        started=started.isoformat(),
        ended=datetime.now(UTC).isoformat(),
        sources=[s.id for s in sources],
        pages=pages,
        fetches=sum(v for k, v in outcomes.items() if k != "out_of_scope"),
        outcomes=dict(sorted(outcomes.items())),
        records=sum(int(w.get("records", 0)) for w in writers),
        warc_bytes=sum(int(w.get("bytes", 0)) for w in writers),
        shipped=report.shipped,
        pending=report.pending,
        recovered=recovered,
        stopped=stopped,
        spool=str(spool.path),
        cpu_s=cpu_s,
        captures=captures,
        indexed=indexed,
        index_pending=index_pending,
    )


def index_runs(
    shipped: Sequence[tuple[ShippedWarc, str]],
    index_url: str | None,
    store: Store,
    *,
    attestor: Any = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Log each stored WARC (with the attest run that wrote it) in the custody log and index
    it; a failure leaves it for later. Returns how many were indexed and (key, why) for the rest.

    The WARCs are already safe in the store: an index that cannot be reached only delays
    retrieval (``attest index`` catches up), so it is reported, not raised.
    """
    if not index_url or not shipped:
        return 0, []
    from archive.custody.log import CustodyLog
    from archive.errors import AttestError
    from archive.index.db import IndexDB
    from archive.ingest.indexer import index_warc
    from archive.ingest.ship import record_capture

    pending: list[tuple[str, str]] = []
    indexed = 0
    tried: set[str] = set()  # indexed, or pending with its own reason
    try:
        db = IndexDB(index_url)
    except AttestError as exc:
        return 0, [(w.key, str(exc)) for w, _ in shipped]
    with db:
        try:
            custody = CustodyLog(db, store, attestor=attestor)
            for warc, run_id in shipped:
                # Once per WARC: a retried index task (or a cleared one) logs nothing twice.
                logged = {e.action for e in custody.for_object(warc.uri)}
                # Shipped now, the spool verified each record before uploading it; a WARC found
                # in the store after a dead try (records None) was not seen whole here.
                record_capture(custody, warc, run_id, verified=warc.records is not None)
                try:
                    # A verified upload: the index checks the stored file's SHA-256 against
                    # it; otherwise every record is checked again.
                    result = index_warc(
                        db,
                        store,
                        warc.key,
                        custody=custody,
                        sha256=warc.sha256,
                        version=warc.version_id,
                        verified=warc.records is not None,
                    )
                    if result.skipped and "index" not in logged:
                        # Loaded by a try that died before it could log it.
                        info = db.warc(warc.key) or {}
                        custody.append(
                            "index",
                            warc.uri,
                            {
                                "sha256": info.get("sha256"),
                                "rows": info.get("records"),
                                "added": None,
                                "cdxj": info.get("cdxj_key"),
                                "run_id": info.get("run_id"),
                                "source": info.get("source"),
                            },
                        )
                    indexed += 1
                    if result.problems:
                        pending.append((warc.key, _problems_text(result.problems)))
                except AttestError as exc:
                    log.error("cannot index %s: %s", warc.key, exc)
                    pending.append((warc.key, str(exc)))
                tried.add(warc.key)
            custody.seal()
        except AttestError as exc:
            log.error("custody log or index unavailable: %s", exc)
            # Exactly the WARCs not tried yet (an earlier failure is already pending, with
            # its own reason; an indexed one is not pending).
            pending.extend((w.key, str(exc)) for w, _ in shipped if w.key not in tried)
    return indexed, pending


def _problems_text(problems: Sequence[Mapping[str, Any]]) -> str:
    first = problems[0]
    rid = f" record {first['record_id']}" if first.get("record_id") else ""
    return (
        f"indexed without {len(problems)} record(s) that failed their checks (first: "
        f"{first['check']} at offset {first['offset']}{rid}: {first['detail']}); "
        "`attest index` lists them"
    )


def _browser_context(options: RunOptions) -> dict[str, str]:
    """How the run's browser renders pages, for its ``warcinfo`` records."""
    from crawlers.browser.launch import BrowserSettings, find_chromium

    settings = BrowserSettings(
        executable=find_chromium(options.chromium),
        proxy_url="",
        user_agent=options.user_agent,
        concurrency=options.browser_concurrency,
    )
    return settings.capture_context()


def _page_entries(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    entries = []
    with ledger.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("role") in ("page", "attachment"):
                entries.append(entry)
    return entries
