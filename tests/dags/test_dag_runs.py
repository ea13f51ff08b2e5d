"""DAG runs end to end (``dag.test()``) over the fixture web, into a local store and index, and
into SeaweedFS.

A source whose three seeds are a list of pages runs as two mapped capture batches; every WARC
it stores carries the Airflow ids in its ``warcinfo``, is indexed, verified from the store
(custody ``verify`` entries) and announced as an Asset event; the run's report is kept beside
the WARCs. ``capture_url`` captures a page now and links it to a claim of a case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.airflow_home import airflow_env, migrate, probe, run
from support.seaweed import SeaweedServer, s3_records
from support.warcs import read_records, store_warcs

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.store import FileStore, open_store
from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e
SOURCE = "fixture-pages"
REGISTRY = """
sources:
  - id: fixture-pages
    kind: news
    title: Three articles, captured as a list of pages
    seeds:
      - "${FIXTURE_NEWS}/article/1.html"
      - "${FIXTURE_NEWS}/article/2.html"
      - "${FIXTURE_NEWS}/article/3.html"
    scope: {max_depth: 0}
    politeness: {concurrency_per_host: 2, pool: fixture-news-site}
    schedule: "15 4 * * *"
  - id: fixture-news
    kind: news
    seeds: ["${FIXTURE_NEWS}/"]
    scope: {max_depth: 1, max_pages: 20}
    politeness: {concurrency_per_host: 2, pool: fixture-news-site}
  - id: fixture-broken
    kind: news
    seeds:
      - "${FIXTURE_NEWS}/missing.html"
      - "${FIXTURE_NEWS}/gone.html"
      - "${FIXTURE_NEWS}/article/5.html"
    scope: {max_depth: 0}
    politeness: {concurrency_per_host: 2, pool: fixture-news-site}
  - id: fixture-unset
    kind: news
    seeds: ["${FIXTURE_UNSET}/"]
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    migrate(airflow_env(home))
    return home


def attest_env(airflow_home: Path, work: Path, web: FixtureWeb, **extra: str) -> dict[str, str]:
    """A run's environment: the default file store and SQLite index in ``work``, or ``extra``'s."""
    env = airflow_env(
        airflow_home,
        ATTEST_HOME=str(work / "home"),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_ACTOR="dag-test",
        FIXTURE_NEWS=web.url("news", ""),
    )
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_S3_OBJECT_LOCK_DAYS"):
        env.pop(name, None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def source_run(
    fixture_web: FixtureWeb, airflow_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("dag-source")
    registry = work / "sources.yaml"
    registry.write_text(REGISTRY)
    env = attest_env(
        airflow_home, work, fixture_web, ATTEST_SOURCES=str(registry), ATTEST_BATCH_SEEDS="2"
    )
    pools = run([sys.executable, "-m", "cli", "airflow-pools"], env)
    assert pools.returncode == 0, pools.stderr[-3000:]
    answer = probe(["run", f"source_{SOURCE}"], env)
    return {"answer": answer, "home": work / "home", "pools": pools.stdout, "web": fixture_web}


def warcinfo(path: Path) -> dict[str, str]:
    first = read_records([path])[0]
    assert first.type == "warcinfo"
    fields = {}
    for line in first.block.decode().splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


def test_the_run_succeeds_with_one_capture_task_per_batch(source_run: dict[str, Any]) -> None:
    answer = source_run["answer"]
    assert answer["state"] == "success", answer["_output"][-8000:]
    states = {(t["task_id"], t["map_index"]): t["state"] for t in answer["tasks"]}
    assert states == {
        ("plan", -1): "success", ("capture", 0): "success", ("capture", 1): "success",
        ("finalize", -1): "success", ("index", -1): "success", ("verify", -1): "success",
        ("report", -1): "success",
    }  # fmt: skip
    news = source_run["web"].url("news", "")
    labels = sorted(t["label"] for t in answer["tasks"] if t["task_id"] == "capture")
    assert labels == [f"1/2 {news}/article/1.html (+1)", f"2/2 {news}/article/3.html"]


def test_sources_on_one_host_share_its_pool(source_run: dict[str, Any]) -> None:
    pools = source_run["answer"]["pools"]
    assert pools["attest-host-fixture-news-site"] == 2  # fixture-pages, -news and -broken
    assert pools["attest-source-fixture-unset"] == 4  # its own pool
    assert not any(name.startswith("attest-source-fixture-pages") for name in pools)
    assert "pool attest-host-fixture-news-site: 2 slot(s)" in source_run["pools"]
    captures = [t for t in source_run["answer"]["tasks"] if t["task_id"] == "capture"]
    assert {(t["pool"], t["pool_slots"]) for t in captures} == {
        ("attest-host-fixture-news-site", 1)
    }


def test_each_batch_stored_a_warc_whose_warcinfo_names_the_airflow_task(
    source_run: dict[str, Any],
) -> None:
    warcs = store_warcs(source_run["home"] / "store" / "warcs" / SOURCE)
    assert len(warcs) == 2
    infos = [warcinfo(w) for w in warcs]
    assert {i["airflow-dag-id"] for i in infos} == {f"source_{SOURCE}"}
    assert {i["airflow-run-id"] for i in infos} == {source_run["answer"]["run_id"]}
    assert {i["airflow-task-id"] for i in infos} == {"capture"}
    assert {i["airflow-try-number"] for i in infos} == {"1"}
    assert sorted(i["airflow-map-index"] for i in infos) == ["0", "1"]
    assert len({i["attest-run-id"] for i in infos}) == 2  # one attest run per batch
    assert {i["source-id"] for i in infos} == {SOURCE}


def test_the_warcs_are_indexed_and_verified_from_the_store(source_run: dict[str, Any]) -> None:
    home = source_run["home"]
    news = source_run["web"].url("news", "")
    store = FileStore(home / "store")
    with IndexDB(str(home / "index.sqlite")) as db:
        urls = {str(u) for (u,) in db.rows(
            "SELECT url FROM captures WHERE record_type = 'response' AND status = 200")}  # fmt: skip
        assert {f"{news}/article/{n}.html" for n in (1, 2, 3)} <= urls
        keys = [str(k) for (k,) in db.rows("SELECT warc_key FROM warcs ORDER BY warc_key")]
        assert len(keys) == 2
        for key in keys:  # the index keeps each WARC's warcinfo, Airflow ids included
            stored = (db.warc(key) or {})["warcinfo"]
            fields = json.loads(stored) if isinstance(stored, str) else stored
            assert fields["airflow-run-id"] == source_run["answer"]["run_id"]
        custody = CustodyLog(db, store)
        assert custody.verify() == []
        for key in keys:
            entries = custody.for_object(store.object_uri(key))
            actions = [e.action for e in entries]
            assert actions == ["capture", "index", "verify"]
            check = entries[2]
            assert check.actor == "dag-test"
            assert check.details["ok"] is True
            assert check.details["via"] == "airflow"
            assert check.details["dag_id"] == f"source_{SOURCE}"
            assert check.details["run_id"] == source_run["answer"]["run_id"]
            assert check.details["expected_from"] == "capture"


def test_the_index_task_announces_the_sources_captures(source_run: dict[str, Any]) -> None:
    events = source_run["answer"]["asset_events"]
    assert len(events) == 1
    event = events[0]
    assert event["uri"] == f"x-attest://captures/{SOURCE}"
    assert event["task_id"] == "index"
    assert event["extra"]["warcs"] == 2
    assert event["extra"]["records"] > 0


def test_the_runs_report_is_kept_beside_the_warcs(source_run: dict[str, Any]) -> None:
    run_id = source_run["answer"]["run_id"]
    path = (source_run["home"] / "store" / "runs" / "airflow" / f"source_{SOURCE}" / run_id
            / "report-1.json")  # fmt: skip
    report = json.loads(path.read_text())
    assert report["ok"] is True, report["problems"]
    assert report["batches"] == {"planned": 2, "captured": 2, "failed": 0}
    assert report["page_outcomes"] == {"captured": 3}
    assert report["gaps"] == []
    assert report["indexed"] == 2
    assert report["verified"] == {"verified": 2, "ok": 2}
    assert len(report["warcs"]) == 2


def test_a_source_run_stores_into_seaweedfs_with_retention(
    fixture_web: FixtureWeb,
    airflow_home: Path,
    seaweedfs: SeaweedServer,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(REGISTRY)
    store_uri = f"s3://{s3_bucket}/evidence"
    env = attest_env(
        airflow_home, tmp_path, fixture_web, ATTEST_SOURCES=str(registry), ATTEST_BATCH_SEEDS="2",
        ATTEST_STORE=store_uri, ATTEST_S3_OBJECT_LOCK_DAYS="1", **seaweedfs.env(),
    )  # fmt: skip
    answer = probe(["run", f"source_{SOURCE}"], env)
    assert answer["state"] == "success", answer["_output"][-8000:]
    run_id = answer["run_id"]

    # Nothing went to the local disk but the spool, and the spool is empty again.
    home = tmp_path / "home"
    assert not (home / "store").exists()
    assert [p for p in (home / "spool").rglob("*") if p.is_file()] == []

    # Two WARCs in the bucket, one per batch, each under COMPLIANCE retention.
    warcs = s3_records(seaweedfs, s3_bucket, "evidence/")
    assert len(warcs) == 2, sorted(warcs)
    client = seaweedfs.client()
    try:
        for key in warcs:
            head = client.head_object(Bucket=s3_bucket, Key="evidence/" + key)
            assert head["ObjectLockMode"] == "COMPLIANCE"
        report_key = f"evidence/runs/airflow/source_{SOURCE}/{run_id}/report-1.json"
        report = json.loads(client.get_object(Bucket=s3_bucket, Key=report_key)["Body"].read())
    finally:
        client.close()
    assert report["ok"] is True, report["problems"]
    assert report["batches"] == {"planned": 2, "captured": 2, "failed": 0}
    assert report["indexed"] == 2
    assert report["verified"] == {"verified": 2, "ok": 2}

    # The index holds exactly the records in the bucket, and custody shows each WARC's
    # capture, index and verification from the store.
    store = open_store(store_uri)
    with IndexDB(str(home / "index.sqlite")) as db:
        indexed = db.rows("SELECT warc_key, record_id, warc_offset FROM captures")
        assert sorted((str(k), str(r), int(o)) for k, r, o in indexed) == sorted(
            (key, rid, offset)
            for key, records in warcs.items()
            for rtype, rid, offset in records
            if rtype != "warcinfo"
        )
        custody = CustodyLog(db, store)
        assert custody.verify() == []
        for key in warcs:
            entries = custody.for_object(store.object_uri(key))
            assert [e.action for e in entries] == ["capture", "index", "verify"]
            assert entries[2].details["ok"] is True
            assert entries[2].details["run_id"] == run_id


def test_capture_url_captures_now_and_links_to_the_claim(
    fixture_web: FixtureWeb, airflow_home: Path, tmp_path: Path
) -> None:
    url = fixture_web.url("news", "/article/4.html")
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "dag-case.yaml").write_text(yaml.safe_dump({
        "id": "dag-case", "title": "A case for the DAG test",
        "claims": [{"id": "C1", "text": "Article 4 said so", "source": "a news article",
                    "evidence": [{"url": "http://example.com/elsewhere.html"}]}],
    }))  # fmt: skip
    env = attest_env(airflow_home, tmp_path, fixture_web, ATTEST_CASES=str(cases))
    conf = {"urls": [url], "case": "dag-case", "claim": "C1", "note": "seen during the test"}
    answer = probe(["run", "capture_url"], env, stdin=json.dumps(conf))
    assert answer["state"] == "success", answer["_output"][-8000:]
    home = tmp_path / "home"
    store = FileStore(home / "store")
    with IndexDB(str(home / "index.sqlite")) as db:
        links = db.rows("SELECT case_id, claim_id, record_id, annotator, note FROM claim_links")
        assert len(links) == 1
        case_id, claim_id, record_id, annotator, note = links[0]
        assert (case_id, claim_id, annotator, note) == (
            "dag-case",
            "C1",
            "dag-test",
            "seen during the test",
        )
        row = db.by_record_id(str(record_id))
        assert row is not None
        assert (row.url, row.status) == (url, 200)
        linked = CustodyLog(db, store).for_object(str(record_id))
        assert [e.action for e in linked] == ["link"]
        assert linked[0].details == {
            "case": "dag-case",
            "claim": "C1",
            "url": url,
            "note": "seen during the test",
        }
    (warc,) = store_warcs(home / "store" / "warcs")
    info = warcinfo(warc)
    assert info["airflow-dag-id"] == "capture_url"
    assert info["airflow-task-id"] == "capture_now"
    assert "airflow-map-index" not in info


def failed_run(
    dag_id: str, web: FixtureWeb, airflow_home: Path, work: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run of one of REGISTRY's failing sources: the probe's answer and the stored report."""
    registry = work / "sources.yaml"
    registry.write_text(REGISTRY)
    answer = probe(
        ["run", dag_id], attest_env(airflow_home, work, web, ATTEST_SOURCES=str(registry))
    )
    assert answer["state"] == "failed", answer["_output"][-8000:]
    (path,) = (work / "home" / "store" / "runs" / "airflow" / dag_id).rglob("report-1.json")
    return answer, json.loads(path.read_text())


def test_a_source_with_too_many_errors_fails_its_run_naming_them(
    fixture_web: FixtureWeb, airflow_home: Path, tmp_path: Path
) -> None:
    answer, report = failed_run("source_fixture-broken", fixture_web, airflow_home, tmp_path)
    states = {t["task_id"]: t["state"] for t in answer["tasks"]}
    assert states == {"plan": "success", "capture": "success", "finalize": "success",
                      "index": "success", "verify": "success", "report": "failed"}  # fmt: skip
    news = fixture_web.url("news", "")
    assert report["page_outcomes"] == {"captured": 1, "http_error": 2}
    assert report["problems"] == [
        "2 of 3 pages (67%) ended as http_error 2: more than the alert threshold of 50% "
        "(ATTEST_ALERT_RATIO)"
    ]
    assert {g["seed"]: g["outcome"] for g in report["gaps"]} == {
        f"{news}/missing.html": "http_error", f"{news}/gone.html": "http_error"
    }  # fmt: skip
    assert "source fixture-broken: 2 of 3 pages (67%) ended as http_error 2" in answer["_output"]
    # The failures are evidence too: stored, indexed and verified like the rest.
    assert report["indexed"] == 1
    assert report["verified"] == {"verified": 1, "ok": 1}


def test_a_source_whose_urls_are_unset_fails_at_plan_and_the_report_says_so(
    fixture_web: FixtureWeb, airflow_home: Path, tmp_path: Path
) -> None:
    answer, report = failed_run("source_fixture-unset", fixture_web, airflow_home, tmp_path)
    tries = {t["task_id"]: (t["state"], t["try_number"]) for t in answer["tasks"]}
    assert tries["plan"] == ("failed", 1)  # bad input: no retries
    assert tries["capture"][0] == "upstream_failed"
    assert tries["report"] == ("failed", 1)
    assert "field 'seeds[0]': environment variable FIXTURE_UNSET is not set" in answer["_output"]
    assert report["problems"] == ["the plan task failed, so nothing was captured (see its log)"]
    assert report["warcs"] == []
