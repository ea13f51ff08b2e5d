"""A DAG run's steps after capture, run again as Airflow reruns them, and the run's lineage.

A retried or cleared ``index`` task logs each WARC once (one custody ``capture`` and one
``index`` entry) and adds no row twice; a retried ``capture`` task finds what its dead tries
shipped; ``attest find --run`` lists what a run produced, by attest run id or by
``DAG_ID/AIRFLOW_RUN_ID``, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from support.cli import run_attest
from support.indexwarcs import WarcBuilder

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB, run_warcs_query
from archive.ingest.indexer import index_warc
from archive.store import FileStore, file_sha256
from crawlers.orchestration.report import source_report
from crawlers.orchestration.steps import earlier_warcs, finalize_run, index_run

ADMIN_DSN = os.environ.get("ATTEST_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
DAG = "source_src"
AIRFLOW_RUN = "scheduled__2026-11-28T04:15:00+00:00"
OTHER_RUN = "manual__2026-11-28T05:00:00+00:00"


def attest_run(map_index: int, try_number: int, run: str = AIRFLOW_RUN) -> str:
    """The attest run id of a capture try, as dags/attest_tasks.py derives it."""
    name = f"airflow:{DAG}/{run}/capture/{map_index}/{try_number}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def capture_warc(
    directory: Path, run_id: str, *, serial: int = 0, run: str = AIRFLOW_RUN, pages: int = 2
) -> tuple[Path, str]:
    """A WARC as a DAG's capture task writes it (Airflow ids in its warcinfo); its store key."""
    name = (
        f"attest-src-20261128044500{serial:06d}-{serial:05d}-{run_id.replace('-', '')[:8]}.warc.gz"
    )
    builder = WarcBuilder(
        directory / name, name, run_id=run_id, source="src",
        info=[("airflow-dag-id", DAG), ("airflow-run-id", run), ("airflow-task-id", "capture")],
    )  # fmt: skip
    for n in range(pages):
        builder.exchange(f"http://example.com/{run_id[:8]}/{serial}/{n}.html", b"<p>page</p>")
    return builder.close(), f"warcs/src/2026/11/28/{name}"


def shipped(store: FileStore, path: Path, key: str, run_id: str) -> dict[str, Any]:
    """What a capture task returns for one WARC it stored (with the run that wrote it)."""
    stored = store.put_file(key, path, file_sha256(path))
    return {"filename": path.name, "key": key, "uri": stored.uri, "sha256": stored.sha256,
            "size": stored.size, "records": 5, "run_id": run_id}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "index.sqlite")
        return
    name = f"attest_test_{uuid.uuid4().hex}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rows_per_record(db: IndexDB) -> dict[str, int]:
    return {str(r): int(n) for r, n in db.rows(
        "SELECT record_id, count(*) FROM captures GROUP BY record_id")}  # fmt: skip


def test_a_retried_index_task_logs_and_indexes_each_warc_once(
    tmp_path: Path, index_url: str
) -> None:
    store = FileStore(tmp_path / "store")
    runs = [attest_run(0, 1), attest_run(1, 1)]
    warcs = [shipped(store, *capture_warc(tmp_path, r, serial=i), r) for i, r in enumerate(runs)]
    first = index_run(warcs, index_url, store)
    assert first["pending"] == []
    with IndexDB(index_url) as db:
        before = db.rows("SELECT * FROM captures ORDER BY id")
    again = index_run(warcs, index_url, store)  # the index task retried, or cleared
    assert again == first
    assert first["records"] == 2 * 5  # as the capture counted them
    with IndexDB(index_url) as db:
        assert db.rows("SELECT * FROM captures ORDER BY id") == before
        assert set(rows_per_record(db).values()) == {1}
        custody = CustodyLog(db, store)
        assert custody.verify() == []
        for warc in warcs:
            assert [e.action for e in custody.for_object(warc["uri"])] == ["capture", "index"]


def test_an_index_try_that_died_after_loading_rows_is_logged_by_the_retry(
    tmp_path: Path, index_url: str
) -> None:
    store = FileStore(tmp_path / "store")
    run = attest_run(0, 1)
    warc = shipped(store, *capture_warc(tmp_path, run), run)
    with IndexDB(index_url) as db:
        index_warc(db, store, warc["key"])  # rows loaded; the try died before logging them
    index_run([warc], index_url, store)
    with IndexDB(index_url) as db:
        entries = CustodyLog(db, store).for_object(warc["uri"])
        assert [e.action for e in entries] == ["capture", "index"]
        assert entries[1].details["rows"] == 4  # the index rows: request and response, twice
        assert entries[1].details["run_id"] == run


def test_a_retried_capture_finds_what_its_dead_tries_shipped(
    tmp_path: Path, index_url: str
) -> None:
    store = FileStore(tmp_path / "store")
    dead, retry = attest_run(0, 1), attest_run(0, 2)
    kept = [shipped(store, *capture_warc(tmp_path, dead, serial=n), dead) for n in (0, 1)]
    shipped(store, *capture_warc(tmp_path, attest_run(1, 1), serial=2), attest_run(1, 1))
    own = shipped(store, *capture_warc(tmp_path, retry, serial=3), retry)
    found = earlier_warcs(
        store, "src", [dead], date(2026, 11, 27), known={own["key"]}, today=date(2026, 11, 29)
    )
    assert [(f["run_id"], f["earlier_try"]) for f in found] == [(dead, True)]
    assert sorted(w["key"] for w in found[0]["warcs"]) == sorted(w["key"] for w in kept)
    assert {w["sha256"] for w in found[0]["warcs"]} == {w["sha256"] for w in kept}
    # The retry also re-shipped one of them from the dead try's spool: gathered once.
    recovered = {"run_id": dead, "warcs": [kept[0]], "pending": []}
    result = {"run_id": retry, "batch": 0, "warcs": [own], "recovered": [recovered, *found]}
    final = finalize_run([result], store)
    assert final["missing"] == []
    assert sorted(w["key"] for w in final["warcs"]) == sorted(
        [own["key"], *(w["key"] for w in kept)]
    )
    # Found in the store, not returned by a try: the custody capture entry says its records
    # were not counted (None, not 0); the index entry counts its rows.
    indexed = index_run(final["warcs"], index_url, store)
    assert indexed["pending"] == []
    with IndexDB(index_url) as db:
        custody = CustodyLog(db, store)
        (uncounted,) = [w for w in found[0]["warcs"] if w["key"] == kept[1]["key"]]
        capture, index = custody.for_object(uncounted["uri"])
        assert capture.details["records"] is None
        assert index.details["rows"] == 4
        assert custody.for_object(own["uri"])[0].details["records"] == own["records"]


def query_plan(index_url: str, run: str) -> str:
    """How the database answers IndexDB.run_warcs(run) (sequential scans off in PostgreSQL,
    whose planner scans a table this small anyway)."""
    if index_url.startswith("postgresql://"):
        sql, params = run_warcs_query("postgresql", run)
        with psycopg.connect(index_url) as conn:
            conn.execute("SET enable_seqscan = off")
            return "\n".join(
                str(r[0]) for r in conn.execute("EXPLAIN " + sql.replace("?", "%s"), params)
            )
    sql, params = run_warcs_query("sqlite", run)
    with contextlib.closing(sqlite3.connect(index_url)) as conn:
        return "\n".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_find_run_lists_what_a_run_produced_by_either_id(tmp_path: Path, index_url: str) -> None:
    store = FileStore(tmp_path / "store")
    batch0, batch1, other = attest_run(0, 1), attest_run(1, 1), attest_run(0, 1, OTHER_RUN)
    warcs = [
        shipped(store, *capture_warc(tmp_path, batch0, serial=0), batch0),
        shipped(store, *capture_warc(tmp_path, batch1, serial=1), batch1),
        shipped(store, *capture_warc(tmp_path, other, serial=2, run=OTHER_RUN), other),
    ]
    assert index_run(warcs, index_url, store)["pending"] == []
    with IndexDB(index_url) as db:
        by_dag_run = db.run_warcs(f"{DAG}/{AIRFLOW_RUN}")
        assert [w["warc_key"] for w in by_dag_run] == [warcs[0]["key"], warcs[1]["key"]]
        assert [w["warc_key"] for w in db.run_warcs(batch1)] == [warcs[1]["key"]]
        assert db.run_warcs(f"{DAG}/nothing") == []
    assert "warcs_airflow_run" in query_plan(index_url, f"{DAG}/{AIRFLOW_RUN}")  # no scan
    assert "warcs_run" in query_plan(index_url, batch1)
    env = dict(os.environ, ATTEST_HOME=str(tmp_path / "home"), ATTEST_INDEX=index_url,
               ATTEST_STORE=store.root.as_uri())  # fmt: skip

    def find(*args: str) -> list[dict[str, Any]]:
        proc = run_attest(["find", *args, "--json"], env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [json.loads(line) for line in proc.stdout.splitlines()]

    lines = find("--run", f"{DAG}/{AIRFLOW_RUN}")
    listed = [x["warc"] for x in lines if "warc" in x and "warcinfo" in x]
    assert listed == [warcs[0]["key"], warcs[1]["key"]]
    assert lines[0]["warcinfo"]["airflow-run-id"] == AIRFLOW_RUN
    records = [x for x in lines if "warcinfo" not in x]
    assert len(records) == 4  # a response per page, two pages per WARC
    assert {x["filename"] for x in records} == {warcs[0]["key"], warcs[1]["key"]}
    one = find("--run", batch0)
    assert [x["warc"] for x in one if "warcinfo" in x] == [warcs[0]["key"]]
    assert len([x for x in one if "warcinfo" not in x]) == 2
    # With a URL, --run narrows the URL's captures, by either id.
    url = f"http://example.com/{batch1[:8]}/1/0.html"
    assert [x["url"] for x in find(url, "--run", f"{DAG}/{AIRFLOW_RUN}")] == [url]
    assert [x["url"] for x in find(url, "--run", batch1)] == [url]
    missing = run_attest(["find", url, "--run", f"{DAG}/{OTHER_RUN}"], env)
    assert missing.returncode == 1
    text = run_attest(["find", "--run", f"{DAG}/{AIRFLOW_RUN}"], env)
    assert text.returncode == 0, text.stderr
    assert f"run {DAG}/{AIRFLOW_RUN}: 2 WARC(s), 8 record(s)" in text.stdout
    none = run_attest(["find", "--run", f"{DAG}/nothing"], env)
    assert none.returncode == 1
    assert f"no indexed WARC of run {DAG}/nothing" in none.stderr


def test_the_reports_lineage_gives_the_find_commands() -> None:
    captures = [{"run_id": attest_run(0, 1), "batch": 0, "label": "1/1 x"}]
    report = source_report(
        "src", planned=[{"index": 0, "label": "1/1 x", "seeds": ["x"]}], captures=captures,
        finalized=None, indexed=None, verified=None, alert_ratio=0.5, dag_id=DAG,
        airflow_run_id=AIRFLOW_RUN,
    )  # fmt: skip
    assert report["lineage"] == {
        "dag_id": DAG, "airflow_run_id": AIRFLOW_RUN, "run": f"{DAG}/{AIRFLOW_RUN}",
        "attest_runs": [attest_run(0, 1)],
        "find": f"attest find --run {DAG}/{AIRFLOW_RUN}",
        "find_attest_runs": [f"attest find --run {attest_run(0, 1)}"],
    }  # fmt: skip
