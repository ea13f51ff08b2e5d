"""attest's settings: Scrapy's (module-level constants) and attest's own (``ATTEST_*``).

Only entry points read this module (``cli``, the DAGs, spiders' ``from_crawler``); library
code takes arguments. :func:`load_config` turns the environment into one typed
:class:`AttestConfig`, once, and fails at start-up with a message naming the setting when a
value is wrong.

attest's environment settings (all optional):

==============================  ===========================================================
``ATTEST_HOME``                 data home (default ``./data``): ``store/``, ``spool/``, CA
``ATTEST_STORE``                store URI, ``file:///abs/path`` or ``s3://bucket/prefix``
``ATTEST_S3_ENDPOINT``          S3 endpoint for non-AWS servers (SeaweedFS, MinIO)
``ATTEST_S3_OBJECT_LOCK_DAYS``  COMPLIANCE retention given to each uploaded WARC
``ATTEST_ALLOW_NETWORKS``       CIDR list the egress guard allows (e.g. ``127.0.0.0/8``)
``ATTEST_HOSTS_FILE``           hosts-format file replacing DNS for the recorder
``ATTEST_CA_BUNDLE``            extra PEM trust anchors for checking origins' TLS chains
``ATTEST_EGRESS_IP``            the crawler's public egress IP, recorded in ``warcinfo``
``ATTEST_EGRESS_ECHO_URL``      else, a URL that answers with the caller's IP (text/plain)
``ATTEST_USER_AGENT``           the User-Agent sent to origins
``ATTEST_WARC_MAX_SIZE``        rotate WARC files at this many bytes (default 1 GB)
``ATTEST_GZIP_LEVEL``           gzip level of WARC records, 1-9 (default 6)
``ATTEST_CONCURRENCY``          concurrent requests per crawl (default 16)
``ATTEST_DOWNLOAD_TIMEOUT``     seconds before a fetch is a ``timeout`` (default 30)
``ATTEST_RETRIES``              retries for 5xx, 429 and transient failures (default 2)
``ATTEST_RECORDER_ONE_CPU``     1 (default): keep the recorder's threads on one CPU; set 0 when
                                several recorders share a machine, so the kernel can spread them
``ATTEST_CHROMIUM``             the Chromium executable (default: Debian's ``/usr/lib/chromium``)
``ATTEST_BROWSER_CONCURRENCY``  browser pages rendered at once (default 2)
``ATTEST_BROWSER_RECYCLE``      pages per browser process before it is restarted (default 200)
``ATTEST_BROWSER_READY_TIMEOUT`` seconds a rendered page gets to become complete (requests
                                settled, DOM stable, content there) before it is tried once
                                more, then recorded ``incomplete`` (default 20)
``ATTEST_INDEX``                index database: a path or ``sqlite:///path`` (default
                                ``<home>/index.sqlite``) or ``postgresql://user@host/db``
``ATTEST_TOKENS``               JSON file of service tokens (``attest serve``): each entry
                                ``{"actor", "role", "sha256"}`` (roles: investigator, legal,
                                admin); with none, the service binds loopback only
``ATTEST_ACTOR``                who this process acts for, in the custody log (default user@host)
``ATTEST_REPLAY_VENV``          the venv holding pywb for replay (default ``.venv-replay``)
``ATTEST_SIGNING_KEY``          ECDSA private key (PEM) that signs evidence bundles and sealed
                                custody segments (default ``<home>/keys/signing.pem`` when it
                                exists; ``attest keygen``)
``ATTEST_SIGNING_CERT``         its certificate chain (PEM), to sign as a domain (optional)
``ATTEST_TSA_URLS``             RFC 3161 timestamp authorities, comma-separated; each export
                                and each sealed custody segment gets a token from every one
``ATTEST_TSA_CHAINS``           PEM chain files of those TSAs, comma-separated, same order
                                (optional: tokens carry the TSA's own certificate)
``ATTEST_TRUST``                trust anchors for ``attest verify`` (PEM files of trusted
                                public keys and root certificates, separated by ``:``)
``ATTEST_SOURCES``              the registry the DAGs are made from: files or directories of
                                ``*.yaml``, separated by ``:`` (default: ``sources/`` beside
                                ``dags/``)
``ATTEST_CASES``                directories of case files for the ``capture_url`` DAG
                                (default: ``cases/`` beside ``dags/``)
``ATTEST_BATCH_SEEDS``          seeds per capture task when a source's seeds are captured in
                                parallel (default 25; see crawlers/orchestration/plan.py)
``ATTEST_ALERT_RATIO``          a DAG run fails when more than this share of a source's pages
                                end as ``login_wall``, ``removed``, ``suspended``,
                                ``rate_limited`` or an error (default 0.5)
==============================  ===========================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archive.errors import ConfigError

BOT_NAME = "attest"

# --- Scrapy settings ------------------------------------------------------------------------
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False
ROBOTSTXT_OBEY = True
COOKIES_ENABLED = False
# Redirects are followed by the spiders, so every hop is captured and counted as an outcome.
REDIRECT_ENABLED = False
METAREFRESH_ENABLED = False
CONCURRENT_REQUESTS = 16
# Scrapy's own, with per-host concurrency enforced (crawlers/downloader.py).
DOWNLOADER = "crawlers.downloader.PoliteDownloader"
# Scrapy starts this many asyncio workers for *every* callback's output; the default (100) cost
# more CPU than the crawl itself (see docs/PERFORMANCE.md). A callback yields a few objects.
CONCURRENT_ITEMS = 4
# Scrapy checks each callback for a generator "return value" by parsing its source (ast), and
# its cache of the result is keyed by the per-request bound method, so it misses on most
# responses: that check alone was a tenth of the crawler's CPU. attest's callbacks return nothing.
WARN_ON_GENERATOR_RETURN_VALUE = False
CONCURRENT_REQUESTS_PER_DOMAIN = 8
DOWNLOAD_DELAY = 0.0
DOWNLOAD_TIMEOUT = 60
DOWNLOAD_MAXSIZE = 0
DOWNLOAD_WARNSIZE = 0
# warcio has no zstd decoder (see STACK notes); archive encodings everyone can read back.
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en,fr;q=0.8",
    "Accept-Encoding": "gzip, deflate, br",
}
LOG_LEVEL = "WARNING"
SCHEDULER_PRIORITY_QUEUE = "scrapy.pqueues.ScrapyPriorityQueue"
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawlers.middlewares.RobotsOutcomeMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawlers.middlewares.RetryAfterMiddleware": 550,
    "crawlers.middlewares.RecorderMiddleware": 740,
}
SPIDER_MIDDLEWARES = {
    # attest's spiders track depth and scope themselves.
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
}
# One pool of kept-alive connections as big as the requests in flight (see the class).
DOWNLOAD_HANDLERS = {
    "http": "crawlers.browser.handler.BrowserDownloadHandler",
    "https": "crawlers.browser.handler.BrowserDownloadHandler",
}
ITEM_PIPELINES = {"crawlers.pipelines.CaptureLedgerPipeline": 100}
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "crawlers.extensions.CrawlProgress": 500,
}
STATS_DUMP = False

SCRAPY_SETTINGS = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and name != "SCRAPY_SETTINGS"
}

# --- attest's own settings ------------------------------------------------------------------
DEFAULT_USER_AGENT = "attest/0.1 (web evidence archiver; +https://example.org/attest)"


@dataclass(frozen=True)
class AttestConfig:
    home: Path
    store_uri: str
    allow_networks: str = ""
    hosts_file: Path | None = None
    ca_bundles: tuple[Path, ...] = ()
    egress_ip: str | None = None
    egress_echo_url: str | None = None
    user_agent: str = DEFAULT_USER_AGENT
    warc_max_size: int = 1_000_000_000
    gzip_level: int = 6
    concurrency: int = 16
    download_timeout: float = 30.0
    retries: int = 2
    recorder_one_cpu: bool = True
    chromium: str | None = None
    browser_concurrency: int = 2
    browser_recycle: int = 200
    browser_ready_timeout: float = 20.0
    s3_endpoint: str | None = None
    s3_object_lock_days: int | None = None
    index_url: str = ""
    tokens_file: Path | None = None
    replay_venv: Path | None = None
    signing_key: Path | None = None
    signing_cert: Path | None = None
    tsa_urls: tuple[str, ...] = ()
    tsa_chains: tuple[str, ...] = ()
    trust: tuple[Path, ...] = ()
    batch_seeds: int = 25
    alert_ratio: float = 0.5
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def spool_root(self) -> Path:
        return self.home / "spool"

    @property
    def ca_dir(self) -> Path:
        return self.home / "recorder-ca"

    @property
    def signing_key_path(self) -> Path:
        """The organisation key: ``ATTEST_SIGNING_KEY``, else the data home's (may not exist)."""
        return self.signing_key or self.home / "keys" / "signing.pem"

    def custody_attestor(self) -> Any:
        """What signs and timestamps sealed custody segments: the organisation key (when it
        exists) and the TSAs; an inactive attestor when neither is configured."""
        from archive.custody.seal import SegmentAttestor

        # Signing and timestamping code (cryptography, ~15 MB in a process) is loaded only
        # when there is a key or a TSA to use: a long-running service without either stays small.
        signer = None
        if self.signing_key_path.is_file():
            from archive.trust.signing import load_signer

            signer = load_signer(self.signing_key_path, self.signing_cert)
        tsas = []
        if self.tsa_urls or any(self.tsa_chains):
            from archive.trust.timestamps import authorities

            # By position, as ATTEST_TSA_CHAINS follows ATTEST_TSA_URLS (empty: no chain).
            tsas = authorities(list(self.tsa_urls), list(self.tsa_chains))
        return SegmentAttestor(signer, tsas)

    def settings_hash(self) -> str:
        """SHA-256 over the effective settings, recorded in every ``warcinfo``."""
        data = {k: str(v) for k, v in asdict(self).items()}
        data["scrapy"] = json.dumps(SCRAPY_SETTINGS, sort_keys=True, default=str)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _int(env: dict[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
    return value


def _float(env: dict[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
    return value


def default_store_uri(home: Path) -> str:
    return (home / "store").resolve().as_uri()


def load_config(env: dict[str, str] | None = None, *, store: str | None = None) -> AttestConfig:
    """The one place the environment is read. ``store`` (from ``--store``) wins over the env."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("ATTEST_HOME") or "data").expanduser().resolve()
    store_uri = store or env.get("ATTEST_STORE") or default_store_uri(home)
    if store_uri.startswith("/"):
        store_uri = Path(store_uri).as_uri()
    if not (store_uri.startswith("file://") or store_uri.startswith("s3://")):
        raise ConfigError(f"store {store_uri!r}: use file:///abs/path or s3://bucket/prefix")
    hosts_file = env.get("ATTEST_HOSTS_FILE")
    if hosts_file and not Path(hosts_file).is_file():
        raise ConfigError(f"ATTEST_HOSTS_FILE={hosts_file!r}: no such file")
    bundles = tuple(Path(p) for p in (env.get("ATTEST_CA_BUNDLE") or "").split(os.pathsep) if p)
    for bundle in bundles:
        if not bundle.is_file():
            raise ConfigError(f"ATTEST_CA_BUNDLE: {str(bundle)!r} is not a file")
    lock_days = env.get("ATTEST_S3_OBJECT_LOCK_DAYS")
    # Validated for its message here; archive.store.s3 reads the same variable.
    lock = _int(env, "ATTEST_S3_OBJECT_LOCK_DAYS", 0, low=1, high=36500) if lock_days else None
    from crawlers.recorder.egress import parse_networks

    allow = env.get("ATTEST_ALLOW_NETWORKS", "")
    parse_networks(allow)  # fail early, naming the setting
    return AttestConfig(
        home=home,
        store_uri=store_uri,
        allow_networks=allow,
        hosts_file=Path(hosts_file) if hosts_file else None,
        ca_bundles=bundles,
        egress_ip=env.get("ATTEST_EGRESS_IP") or None,
        egress_echo_url=env.get("ATTEST_EGRESS_ECHO_URL") or None,
        user_agent=env.get("ATTEST_USER_AGENT") or DEFAULT_USER_AGENT,
        warc_max_size=_int(
            env, "ATTEST_WARC_MAX_SIZE", 1_000_000_000, low=1_000_000, high=5 * 1024**3
        ),
        gzip_level=_int(env, "ATTEST_GZIP_LEVEL", 6, low=1, high=9),
        concurrency=_int(env, "ATTEST_CONCURRENCY", 16, low=1, high=256),
        download_timeout=_float(env, "ATTEST_DOWNLOAD_TIMEOUT", 30.0, low=1, high=3600),
        retries=_int(env, "ATTEST_RETRIES", 2, low=0, high=10),
        recorder_one_cpu=bool(_int(env, "ATTEST_RECORDER_ONE_CPU", 1, low=0, high=1)),
        chromium=env.get("ATTEST_CHROMIUM") or None,
        browser_concurrency=_int(env, "ATTEST_BROWSER_CONCURRENCY", 2, low=1, high=32),
        browser_recycle=_int(env, "ATTEST_BROWSER_RECYCLE", 200, low=1, high=100_000),
        browser_ready_timeout=_float(env, "ATTEST_BROWSER_READY_TIMEOUT", 20.0, low=1, high=600),
        s3_endpoint=env.get("ATTEST_S3_ENDPOINT") or None,
        s3_object_lock_days=lock,
        index_url=_index_url(env.get("ATTEST_INDEX"), home),
        tokens_file=_existing(env, "ATTEST_TOKENS"),
        replay_venv=Path(env["ATTEST_REPLAY_VENV"]) if env.get("ATTEST_REPLAY_VENV") else None,
        signing_key=_existing(env, "ATTEST_SIGNING_KEY"),
        signing_cert=_existing(env, "ATTEST_SIGNING_CERT"),
        tsa_urls=_list(env, "ATTEST_TSA_URLS"),
        tsa_chains=tuple(c.strip() for c in (env.get("ATTEST_TSA_CHAINS") or "").split(",")),
        trust=tuple(Path(p) for p in _split_paths(env, "ATTEST_TRUST")),
        batch_seeds=_int(env, "ATTEST_BATCH_SEEDS", 25, low=1, high=100_000),
        alert_ratio=_float(env, "ATTEST_ALERT_RATIO", 0.5, low=0, high=1),
    )


def path_list(env: Mapping[str, str], name: str, default: Path) -> list[Path]:
    """Paths from a ``:``-separated setting (``ATTEST_SOURCES``, ``ATTEST_CASES``), else the default.

    Reads nothing from disk: DAG files call it at parse time.
    """
    value = env.get(name) or ""
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p] or [default]


_REPO = Path(__file__).resolve().parent


def registry_paths(env: Mapping[str, str]) -> list[Path]:
    """The source registry: ``ATTEST_SOURCES``, else ``sources/`` of this checkout."""
    return path_list(env, "ATTEST_SOURCES", _REPO / "sources")


def case_dirs(env: Mapping[str, str]) -> list[Path]:
    """The case files' directories: ``ATTEST_CASES``, else ``cases/`` of this checkout."""
    return path_list(env, "ATTEST_CASES", _REPO / "cases")


def _list(env: dict[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in (env.get(name) or "").split(",") if item.strip())


def _split_paths(env: dict[str, str], name: str) -> list[str]:
    paths = [p for p in (env.get(name) or "").split(os.pathsep) if p]
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"{name}: {path!r} is not a file")
    return paths


def _index_url(value: str | None, home: Path) -> str:
    if not value:
        return str(home / "index.sqlite")
    if value.startswith(("postgresql://", "postgres://", "sqlite:///")) or "://" not in value:
        return value
    raise ConfigError(
        f"ATTEST_INDEX={value!r}: use a file path, sqlite:///path or postgresql://user@host/db"
    )


def _existing(env: dict[str, str], name: str) -> Path | None:
    value = env.get(name)
    if not value:
        return None
    if not Path(value).is_file():
        raise ConfigError(f"{name}={value!r}: no such file")
    return Path(value)
