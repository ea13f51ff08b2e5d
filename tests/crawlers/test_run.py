"""crawlers.orchestration.run: a capture run, indexing its shipped WARCs, and what it reports.

Indexing, the summary and the settings a run hands to Scrapy are tested in-process against a
file store and SQLite. A whole run (``run_capture``: recover, record, crawl, ship, index) runs
in a process of its own, as the DAGs run it, because Twisted's reactor cannot be restarted
in a process; it crawls the demo web's news site on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from support.indexwarcs import RUN_ID, WarcBuilder

import archive.ingest.ship as ship
from archive.custody.log import CustodyLog
from archive.errors import CustodyError
from archive.index.db import IndexDB
from archive.ingest.ship import ShippedWarc
from archive.store import FileStore, file_sha256
from crawlers.orchestration.run import (
    RunOptions,
    RunSummary,
    _page_entries,
    _scrapy_settings,
    _source_settings,
    index_runs,
    options_from_config,
)
from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.process import RecorderProcess
from crawlers.registry import SourceSpec
from demoweb.http import FixtureServer
from demoweb.news import NewsSite
from settings import load_config

ROOT = Path(__file__).resolve().parents[2]


def shipped_warc(
    store: FileStore, tmp_path: Path, name: str, *, stored: bool = True
) -> ShippedWarc:
    builder = WarcBuilder(tmp_path / name, name)
    builder.exchange(f"https://example.org/{name}.html", b"<html><p>" + name.encode() + b"</p>")
    path = builder.close()
    key = f"warcs/src/2026/11/28/{name}"
    sha256 = file_sha256(path)
    if stored:
        store.put_file(key, path, sha256)
    return ShippedWarc(name, key, store.object_uri(key), sha256, path.stat().st_size, None)


def test_pending_is_exactly_the_warcs_not_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first WARC cannot be indexed (not in the store), the second is, and the custody log
    fails at the third: pending names the first (its own reason) and the third, never the
    second, which is indexed."""
    store = FileStore(tmp_path / "store")
    first = shipped_warc(store, tmp_path, "a.warc.gz", stored=False)
    second = shipped_warc(store, tmp_path, "b.warc.gz")
    third = shipped_warc(store, tmp_path, "c.warc.gz")
    real = ship.record_capture

    def record_capture(custody: Any, warc: ShippedWarc, *args: Any, **kwargs: Any) -> Any:
        if warc.key == third.key:
            raise CustodyError("the custody log is unavailable")
        return real(custody, warc, *args, **kwargs)

    monkeypatch.setattr(ship, "record_capture", record_capture)
    indexed, pending = index_runs(
        [(first, RUN_ID), (second, RUN_ID), (third, RUN_ID)],
        str(tmp_path / "index.sqlite"),
        store,
    )
    assert indexed == 1
    assert [key for key, _ in pending] == [first.key, third.key]
    assert "no such object" in pending[0][1]
    assert "custody log is unavailable" in pending[1][1]


def test_pending_is_empty_when_every_warc_is_indexed_and_each_is_logged_once(
    tmp_path: Path,
) -> None:
    """Both WARCs indexed, each with its capture and index custody entries naming the run
    that wrote it; the same call again (a retried task) indexes nothing twice and logs
    nothing twice, and the log is sealed into the store."""
    store = FileStore(tmp_path / "store")
    first = shipped_warc(store, tmp_path, "a.warc.gz")
    second = shipped_warc(store, tmp_path, "b.warc.gz")
    index = str(tmp_path / "index.sqlite")
    other_run = "99999999-2222-4333-8444-555555555555"
    assert index_runs([(first, RUN_ID), (second, other_run)], index, store) == (2, [])
    assert index_runs([(first, RUN_ID), (second, other_run)], index, store) == (2, [])
    with IndexDB(index) as db:
        entries = list(CustodyLog(db, store).entries())
        assert db.is_indexed(first.key)
        assert db.is_indexed(second.key)
    logged = [(e.action, e.object, e.details.get("run_id")) for e in entries]
    assert logged == [
        ("capture", first.uri, RUN_ID),
        ("index", first.uri, RUN_ID),
        ("capture", second.uri, other_run),
        ("index", second.uri, RUN_ID),  # the run id the WARC's own warcinfo names
    ]
    # Shipped without a record count (found in the store after a dead try): not verified
    # before upload, so every record was checked.
    assert [e.details["verified_before_upload"] for e in entries if e.action == "capture"] == [
        False,
        False,
    ]
    assert [e.details["checked"] for e in entries if e.action == "index"] == [
        "every record's digests"
    ] * 2
    assert list(store.keys("custody/segments/")), "the custody log is sealed into the store"


def test_a_warc_with_a_bad_record_is_indexed_without_it_and_named_pending(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "store")
    key = "warcs/src/2026/11/28/tampered.warc.gz"
    golden = Path(__file__).resolve().parents[1] / "golden" / "tampered.warc.gz"
    sha256 = file_sha256(golden)
    store.put_file(key, golden, sha256)
    warc = ShippedWarc(
        "tampered.warc.gz", key, store.object_uri(key), sha256, golden.stat().st_size, None
    )
    indexed, pending = index_runs([(warc, RUN_ID)], str(tmp_path / "index.sqlite"), store)
    assert indexed == 1
    ((pending_key, why),) = pending
    assert pending_key == key
    assert why.startswith("indexed without 2 record(s) that failed their checks (first: ")
    assert "block-digest at offset 1673 record <urn:uuid:4b800c08-" in why
    assert why.endswith("`attest index` lists them")


def test_nothing_to_index_or_no_index_database_is_no_work(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    warc = shipped_warc(store, tmp_path, "a.warc.gz")
    assert index_runs([(warc, RUN_ID)], None, store) == (0, [])
    assert index_runs([], str(tmp_path / "index.sqlite"), store) == (0, [])
    assert not (tmp_path / "index.sqlite").exists()


def test_an_index_database_that_cannot_be_reached_leaves_every_warc_pending(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "store")
    first = shipped_warc(store, tmp_path, "a.warc.gz")
    second = shipped_warc(store, tmp_path, "b.warc.gz")
    with socket.socket() as sock:  # a PostgreSQL address nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://attest@127.0.0.1:{port}/attest?connect_timeout=5"
    indexed, pending = index_runs([(first, RUN_ID), (second, RUN_ID)], url, store)
    assert indexed == 0
    assert [key for key, _ in pending] == [first.key, second.key]
    assert all(why and why == pending[0][1] for _, why in pending)


# --- a run's summary and its settings ----------------------------------------------------------


def summary(**fields: Any) -> RunSummary:
    values: dict[str, Any] = {
        "run_id": RUN_ID,
        "started": "2026-11-28T02:45:00+00:00",
        "ended": "2026-11-28T02:46:00+00:00",
        "sources": ["news"],
        "pages": 3,
        "fetches": 5,
        "outcomes": {"captured": 5},
        "records": 12,
        "warc_bytes": 4096,
        "shipped": [],
        "pending": [],
        "recovered": [],
        "stopped": None,
        "spool": "/spool/x",
    }
    values.update(fields)
    return RunSummary(**values)


def test_a_run_is_ok_only_when_everything_was_fetched_and_stored() -> None:
    assert summary().ok
    assert not summary(pending=[("/spool/x/a.warc.gz", "store down")]).ok
    assert not summary(stopped="disk_full").ok
    assert not summary(outcomes={"captured": 4, "invalid_url": 1}).ok
    # Pages the origin answered with an error are captures too.
    assert summary(outcomes={"captured": 4, "http_error": 1}).ok


def test_a_runs_summary_as_reported() -> None:
    warc = ShippedWarc(
        "a.warc.gz", "warcs/news/a.warc.gz", "file:///s/warcs/news/a.warc.gz", "ab" * 32, 10, 3
    )
    data = summary(shipped=[warc], index_pending=[("warcs/news/b.warc.gz", "index down")]).as_dict()
    assert data["warcs"] == [vars(warc)]
    assert data["index_pending"] == [{"warc": "warcs/news/b.warc.gz", "reason": "index down"}]
    assert data["pending"] == []
    assert "captures" not in data  # only when asked for
    page = {"url": "http://127.0.0.1:8781/", "role": "page"}
    assert summary(captures=[page]).as_dict()["captures"] == [page]


def test_run_options_are_the_settings_a_run_needs(tmp_path: Path) -> None:
    env = {
        "ATTEST_HOME": str(tmp_path / "home"),
        "ATTEST_ALLOW_NETWORKS": "127.0.0.0/8",
        "ATTEST_RETRIES": "4",
        "ATTEST_CONCURRENCY": "3",
        "ATTEST_DOWNLOAD_TIMEOUT": "7",
        "ATTEST_USER_AGENT": "attest-test/1",
        "ATTEST_RECORDER_ONE_CPU": "0",
    }
    config = load_config(env)
    options = options_from_config(config, airflow={"dag_id": "source_news", "run_id": "r1"})
    shared = {f.name for f in fields(RunOptions)} & {f.name for f in fields(config)}
    assert {"retries", "concurrency", "download_timeout", "user_agent", "home"} <= shared
    for name in sorted(shared):
        assert getattr(options, name) == getattr(config, name), name
    assert options.spool_root == config.spool_root
    assert options.ca_dir == config.ca_dir
    assert options.settings_hash == config.settings_hash()
    assert options.airflow == {"dag_id": "source_news", "run_id": "r1"}
    assert (options.retries, options.concurrency, options.recorder_one_cpu) == (4, 3, False)


def test_a_sources_politeness_becomes_its_crawlers_settings() -> None:
    polite = SourceSpec(
        id="ngo",
        kind="press",
        seeds=("http://127.0.0.1:8782/",),
        delay=2.0,
        concurrency_per_host=1,
        obey_robots=False,
        autothrottle=True,
    )
    assert _source_settings(polite) == {
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_DELAY": 2.0,
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "AUTOTHROTTLE_ENABLED": True,
    }
    eager = SourceSpec(id="news", kind="news", seeds=("http://127.0.0.1:8781/",))
    assert _source_settings(eager)["DOWNLOAD_DELAY_JITTER"] == 0.0


def test_the_crawler_is_pointed_at_this_runs_recorder_and_ledger(tmp_path: Path) -> None:
    import settings as attest_settings

    spool = tmp_path / "spool"
    spool.mkdir()
    recorder = RecorderProcess(
        RecorderConfig(
            spool=str(spool),
            run_id=RUN_ID,
            default_source="news",
            ca_dir=str(tmp_path / "ca"),
            allow_networks="127.0.0.0/8",
            secret="the-runs-secret",
            one_cpu=False,
        )
    )
    recorder.start()
    try:
        options = RunOptions(
            home=tmp_path,
            spool_root=spool,
            ca_dir=tmp_path / "ca",
            allow_networks="127.0.0.0/8",
            user_agent="attest-test/1",
            settings_hash="h",
            concurrency=5,
            download_timeout=12.0,
            retries=3,
            retry_backoff=0.25,
            scrapy_settings={"CONCURRENT_REQUESTS": 2, "LOG_LEVEL": "INFO"},
        )
        values = _scrapy_settings(options, recorder, spool / "ledger.jsonl", None)
    finally:
        recorder.stop()
    assert values["ATTEST_RECORDER_URL"] == f"http://127.0.0.1:{recorder.port}"
    assert (values["ATTEST_RECORDER_PORT"], values["ATTEST_RECORDER_SECRET"]) == (
        recorder.port,
        "the-runs-secret",
    )
    assert values["ATTEST_LEDGER"] == str(spool / "ledger.jsonl")
    assert (values["ATTEST_RETRIES"], values["ATTEST_RETRY_BACKOFF"]) == (3, 0.25)
    assert values["USER_AGENT"] == "attest-test/1"
    assert values["DOWNLOAD_TIMEOUT"] == 42.0  # the recorder times out first
    # The caller's own Scrapy settings come last and win.
    assert (values["CONCURRENT_REQUESTS"], values["LOG_LEVEL"]) == (2, "INFO")
    # attest's Scrapy settings underneath.
    assert values["ITEM_PIPELINES"] == attest_settings.SCRAPY_SETTINGS["ITEM_PIPELINES"]
    assert values["TWISTED_REACTOR"] == attest_settings.TWISTED_REACTOR


def test_only_pages_and_attachments_are_a_runs_captures(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    lines = [
        {"url": "http://127.0.0.1:8781/", "role": "page"},
        {"url": "http://127.0.0.1:8781/static/site.css", "role": "requisite"},
        {"url": "http://127.0.0.1:8782/files/1.pdf", "role": "attachment"},
        {"url": "http://127.0.0.1:8781/robots.txt", "role": "robots"},
    ]
    ledger.write_text(
        "\n".join(json.dumps(x) for x in lines[:2])
        + "\n{not json\n"
        + "\n".join(json.dumps(x) for x in lines[2:])
        + "\n"
    )
    assert _page_entries(ledger) == [lines[0], lines[2]]
    assert _page_entries(tmp_path / "none.jsonl") == []


# --- a whole run -------------------------------------------------------------------------------

# run_capture in a process of its own: Twisted's reactor cannot be restarted in a process, and
# other tests here run one. Prints the summary as JSON.
RUN = """
import json, sys
from pathlib import Path
from archive.store import FileStore
from crawlers.orchestration.run import RunOptions, run_capture
from crawlers.registry import SourceSpec

home, origin = Path(sys.argv[1]), sys.argv[2]
options = RunOptions(
    home=home, spool_root=home / "spool", ca_dir=home / "ca", allow_networks="127.0.0.0/8",
    user_agent="attest-test/1", settings_hash="test", recorder_one_cpu=False,
    index_url=str(home / "index.sqlite"), download_timeout=10.0,
)
source = SourceSpec(id="news", kind="news", seeds=(origin + "/", origin + "/a b"), max_depth=1,
                    max_pages=8)
summary = run_capture([source], options, FileStore(home / "store"), keep_captures=True)
print(json.dumps(summary.as_dict()))
"""


@pytest.fixture
def news_site() -> Iterator[FixtureServer]:
    server = FixtureServer(NewsSite(articles=3)).start()
    yield server
    server.stop()


def test_a_run_recovers_a_dead_run_then_captures_ships_and_indexes(
    tmp_path: Path, news_site: FixtureServer
) -> None:
    home = tmp_path / "home"
    # A run that died after closing a WARC: its spool waits, unlocked.
    dead_run = "0d0d0d0d-1111-4222-8333-444444444444"
    dead = home / "spool" / dead_run
    dead.mkdir(parents=True)
    (dead / "run.json").write_text(
        json.dumps({"run_id": dead_run, "started": "2026-11-27T10:00:00+00:00"})
    )
    builder = WarcBuilder(
        dead / f"attest-news-20261127100000000000-00000-{dead_run[:8]}.warc.gz",
        f"attest-news-20261127100000000000-00000-{dead_run[:8]}.warc.gz",
        run_id=dead_run,
        source="news",
    )
    builder.exchange("http://127.0.0.1:8781/old.html", b"<p>captured by the dead run</p>")
    builder.close()

    done = subprocess.run(
        [sys.executable, "-c", RUN, str(home), news_site.origin],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])

    # The dead run first, shipped and indexed under its own run id.
    (recovered,) = result["recovered_runs"]
    assert recovered["run_id"] == dead_run
    assert not dead.exists()
    # Then this run: the seed page and its links, one level down, within the page budget;
    # the seed that is no URL is an outcome, so the run is not ok.
    assert result["outcomes"]["invalid_url"] == 1
    assert result["pending"] == []
    assert result["stopped"] is None
    # The budget of eight pages (the seed and seven of its links), and the seed that is no URL.
    assert result["pages"] == 9
    assert result["outcomes"]["captured"] >= 8  # pages and their requisites
    captures = {c["url"]: c for c in result["captures"]}
    assert captures[f"{news_site.origin}/"]["outcome"] == "captured"
    assert captures[f"{news_site.origin}/a b"]["outcome"] == "invalid_url"
    store = FileStore(home / "store")
    for warc in result["warcs"]:
        assert store.stat(warc["key"]).sha256 == warc["sha256"]
    assert result["records"] > 2 * result["outcomes"]["captured"]
    assert (result["indexed"], result["index_pending"]) == (len(result["warcs"]) + 1, [])
    with IndexDB(str(home / "index.sqlite")) as db:
        runs = {
            e.object: e.details["run_id"]
            for e in CustodyLog(db, store).entries()
            if e.action == "capture"
        }
    recovered_uri = recovered["shipped"][0]["uri"]
    assert runs.pop(recovered_uri) == dead_run
    assert set(runs.values()) == {result["run_id"]}
    ledgers = [k for k in store.keys("runs/") if k.endswith("/ledger.jsonl")]
    assert any(k.endswith(f"/{result['run_id']}/ledger.jsonl") for k in ledgers)
    assert not (home / "spool" / result["run_id"]).exists()
