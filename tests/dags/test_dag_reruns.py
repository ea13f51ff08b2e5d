"""Reruns are safe: a cleared run captures anew, and a retried capture keeps its dead try's work.

- Running a DAG run again (``dag.test()`` again for the same logical date: it deletes the run
  and makes it anew under the same Airflow run id, try numbers from 1 again, the harshest
  rerun) writes new WARCs with new records; the index rows of the first run's records stay as
  they were and none is duplicated; the custody chain holds and logs no WARC twice. ``attest find --run DAG_ID/RUN_ID`` lists what the run produced, and the
  run's report names that command.
- A capture task whose try is killed (SIGKILL, the task's whole process group, at a crash
  point of ``archive.failpoints``) and then retried on the same worker, as Airflow retries it
  (the same job, the next try number and attest run id): every record the dead try had
  finalized (complete in its spool, or already in the store) is stored once and indexed.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.airflow_home import ROOT, airflow_env, migrate, probe, run
from support.warcs import read_records, store_warcs

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.ingest.spool import CLOSED_SUFFIX, OPEN_SUFFIX
from archive.store import FileStore
from archive.warc.read import verify_warc
from crawlers.orchestration.job import CaptureJob, run_in_subprocess
from crawlers.orchestration.plan import Batch
from crawlers.orchestration.steps import earlier_warcs, finalize_run, index_run, verify_run
from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e
REGISTRY = """
sources:
  - id: fixture-pages
    kind: news
    seeds:
      - "${FIXTURE_NEWS}/article/1.html"
      - "${FIXTURE_NEWS}/article/2.html"
      - "${FIXTURE_NEWS}/article/3.html"
    scope: {max_depth: 0}
    politeness: {concurrency_per_host: 2, pool: fixture-news-site}
  - id: fixture-news
    kind: news
    seeds: ["${FIXTURE_NEWS}/"]
    scope: {max_depth: 1, max_pages: 30}
    politeness: {concurrency_per_host: 2, pool: fixture-news-site}
"""
DAG = "source_fixture-pages"
LOGICAL = "2026-11-28T04:15:00+00:00"


def attest_env(work: Path, web: FixtureWeb, **extra: str) -> dict[str, str]:
    registry = work / "sources.yaml"
    registry.write_text(REGISTRY)
    env = airflow_env(
        work / "airflow",
        ATTEST_HOME=str(work / "home"),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_ACTOR="dag-test",
        ATTEST_SOURCES=str(registry),
        ATTEST_BATCH_SEEDS="2",
        FIXTURE_NEWS=web.url("news", ""),
        **extra,
    )
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_FAILPOINT"):
        env.pop(name, None)
    return env


def index_state(home: Path) -> dict[str, Any]:
    with IndexDB(str(home / "index.sqlite")) as db:
        return {
            "warcs": [str(k) for (k,) in db.rows("SELECT warc_key FROM warcs ORDER BY warc_key")],
            "rows": db.rows("SELECT * FROM captures ORDER BY id"),
            "per_record": Counter(
                {
                    str(r): int(n)
                    for r, n in db.rows(
                        "SELECT record_id, count(*) FROM captures GROUP BY record_id"
                    )
                }
            ),
        }


def warcinfo(path: Path) -> dict[str, str]:
    first = read_records([path])[0]
    fields = {}
    for line in first.block.decode().splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields


@pytest.fixture(scope="module")
def cleared_run(
    fixture_web: FixtureWeb, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One run of fixture-pages, then the same run cleared and run again."""
    work = tmp_path_factory.mktemp("dag-rerun")
    env = attest_env(work, fixture_web)
    migrate(env)
    pools = run([sys.executable, "-m", "cli", "airflow-pools"], env)
    assert pools.returncode == 0, pools.stderr[-3000:]
    first = probe(["run", DAG, LOGICAL], env)
    assert first["state"] == "success", first["_output"][-8000:]
    home = work / "home"
    before = index_state(home)
    second = probe(["run", DAG, LOGICAL], env)
    return {"env": env, "home": home, "first": first, "second": second, "before": before,
            "after": index_state(home)}  # fmt: skip


def test_the_run_made_again_succeeds_under_the_same_ids(cleared_run: dict[str, Any]) -> None:
    first, second = cleared_run["first"], cleared_run["second"]
    assert second["state"] == "success", second["_output"][-8000:]
    assert second["run_id"] == first["run_id"]  # the same Airflow run id, made again
    # dag.test() deletes the run and makes it anew: the tasks' try numbers start again at 1,
    # the harshest rerun (a cleared task's next try has a new try number, hence new ids).
    tries = {(t["task_id"], t["map_index"]): t["try_number"] for t in second["tasks"]}
    assert tries[("capture", 0)] == tries[("capture", 1)] == 1


def test_the_rerun_writes_new_warcs_and_records_and_leaves_the_old_rows_alone(
    cleared_run: dict[str, Any],
) -> None:
    before, after = cleared_run["before"], cleared_run["after"]
    assert len(before["warcs"]) == 2
    new = [k for k in after["warcs"] if k not in before["warcs"]]
    assert len(new) == 2
    assert set(before["warcs"]) < set(after["warcs"])
    home = cleared_run["home"]
    infos = {p.name: warcinfo(p) for p in store_warcs(home / "store" / "warcs")}
    assert len(infos) == 4
    assert len({i["attest-run-id"] for i in infos.values()}) == 4  # never an id reused
    assert {i["airflow-run-id"] for i in infos.values()} == {cleared_run["first"]["run_id"]}
    # The old rows are untouched (same ids, same values), the new records are new rows.
    assert after["rows"][: len(before["rows"])] == before["rows"]
    assert len(after["rows"]) > len(before["rows"])
    assert set(after["per_record"].values()) == {1}, "a record is indexed twice"
    assert not set(before["per_record"]) & (set(after["per_record"]) - set(before["per_record"]))
    new_ids = set(after["per_record"]) - set(before["per_record"])
    assert len(new_ids) == len(after["rows"]) - len(before["rows"])


def test_the_custody_log_holds_and_logs_each_warc_once(cleared_run: dict[str, Any]) -> None:
    home = cleared_run["home"]
    store = FileStore(home / "store")
    with IndexDB(str(home / "index.sqlite")) as db:
        custody = CustodyLog(db, store)
        assert custody.verify() == []
        for key in cleared_run["after"]["warcs"]:
            actions = [e.action for e in custody.for_object(store.object_uri(key))]
            assert actions[:3] == ["capture", "index", "verify"], (key, actions)
            assert set(actions[3:]) <= {"verify"}, (key, actions)  # re-verified, never re-logged


def test_find_run_lists_the_runs_warcs_and_the_report_links_to_it(
    cleared_run: dict[str, Any],
) -> None:
    run_id = cleared_run["first"]["run_id"]
    reports = cleared_run["home"] / "store" / "runs" / "airflow" / DAG / run_id
    (again,) = [p for p in reports.glob("report-1-*.json")]  # report-1.json is the first's
    report = json.loads(again.read_text())
    assert report["ok"] is True, report["problems"]
    lineage = report["lineage"]
    assert lineage["run"] == f"{DAG}/{run_id}"
    assert lineage["find"] == f"attest find --run {DAG}/{run_id}"
    assert len(lineage["attest_runs"]) == 2
    proc = run([sys.executable, "-m", "cli", "find", "--run", f"{DAG}/{run_id}", "--json"],
               cleared_run["env"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    listed = sorted(x["warc"] for x in lines if "warcinfo" in x)
    assert listed == cleared_run["after"]["warcs"]
    pages = {x["url"] for x in lines if "warcinfo" not in x and x["recordtype"] == "response"}
    assert {u.rsplit("/", 1)[1] for u in pages} >= {"1.html", "2.html", "3.html"}
    one = lineage["attest_runs"][0]
    proc = run([sys.executable, "-m", "cli", "find", "--run", one, "--json"], cleared_run["env"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {json.loads(x)["run_id"] for x in proc.stdout.splitlines() if "warcinfo" in x} == {one}


# --- a capture retried after its try was killed -------------------------------------------------


def attest_run(try_number: int) -> str:
    """As dags/attest_tasks.py derives a capture try's attest run id."""
    name = f"airflow:source_fixture-news/manual__{LOGICAL}/capture/0/{try_number}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def capture_job(env: dict[str, str], try_number: int) -> CaptureJob:
    batch = Batch(source="fixture-news", index=0, count=1, seeds=(env["FIXTURE_NEWS"] + "/",))
    return CaptureJob(
        registry=(env["ATTEST_SOURCES"],),
        batch=batch,
        run_id=attest_run(try_number),
        airflow={"airflow-dag-id": "source_fixture-news", "airflow-try-number": str(try_number)},
    )


def killed_try(job: CaptureJob, env: dict[str, str], failpoint: str, work: Path) -> None:
    """The first try: the task's process group (job, recorder) dies at ``failpoint``."""
    proc = subprocess.run(
        [sys.executable, "-m", "crawlers.orchestration.job", "--result", str(work / "result-1.json")],
        input=json.dumps(job.as_dict()), env=dict(env, ATTEST_FAILPOINT=failpoint), cwd=ROOT,
        capture_output=True, text=True, timeout=300, start_new_session=True, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, f"{failpoint} not reached: {proc.stderr[-3000:]}"


def finalized_ids(home: Path) -> tuple[set[str], set[str]]:
    """Record ids the dead try finalized: complete in its spool, and already in the store."""
    spool: set[str] = set()
    for path in [*(home / "spool").rglob("*" + OPEN_SUFFIX),
                 *(home / "spool").rglob("*" + CLOSED_SUFFIX)]:  # fmt: skip
        spool.update(r.record_id or "" for r in verify_warc(path).records)
    stored: set[str] = set()
    for path in store_warcs(home / "store"):
        stored.update(r.record_id or "" for r in verify_warc(path).records)
    return spool, stored


@pytest.mark.parametrize("failpoint", ["warc.after-record@25", "ship.after-put@1"])
def test_a_retried_capture_keeps_what_its_killed_try_finalized(
    failpoint: str, fixture_web: FixtureWeb, tmp_path: Path
) -> None:
    env = attest_env(tmp_path, fixture_web)
    home = tmp_path / "home"
    killed_try(capture_job(env, 1), env, failpoint, tmp_path)
    in_spool, in_store = finalized_ids(home)
    dead = in_spool | in_store
    assert dead, "the killed try finalized nothing"
    if failpoint.startswith("ship."):
        assert in_store, "the killed try had shipped a WARC"

    # The retry, as the capture task runs it: the job, then what earlier tries stored.
    result = run_in_subprocess(capture_job(env, 2), logger=logging.getLogger(__name__), env=env)
    store = FileStore(home / "store")
    known = {w["key"] for w in result["warcs"]} | {
        w["key"] for rec in result["recovered"] for w in rec["warcs"]
    }
    earlier = earlier_warcs(
        store, "fixture-news", [attest_run(1)], (datetime.now(UTC) - timedelta(days=1)).date(),
        known=known,
    )  # fmt: skip
    result = {**result, "batch": 0, "label": "1/1",
              "recovered": [*result["recovered"], *earlier]}  # fmt: skip
    assert {r["run_id"] for r in result["recovered"]} == {attest_run(1)}
    finalized = finalize_run([result], store)
    assert finalized["missing"] == []
    index_url = str(home / "index.sqlite")
    indexed = index_run(finalized["warcs"], index_url, store)
    assert indexed["pending"] == []
    index_run(finalized["warcs"], index_url, store)  # the index task retried: nothing twice
    verified = verify_run(indexed["keys"], index_url, store, actor="dag-test", context={})
    assert verified["failed"] == []

    stored: Counter[str] = Counter()
    for path in store_warcs(home / "store"):
        verdict = verify_warc(path)
        assert verdict.ok, verdict.problems
        stored.update(r.record_id or "" for r in verdict.records)
    assert not [r for r, n in stored.items() if n > 1], "a record is stored twice"
    assert dead <= set(stored), "records the killed try finalized were lost"
    assert not list((home / "spool").rglob("*.warc.gz*")), "the spool still holds WARCs"
    with IndexDB(index_url) as db:
        per_record = dict(db.rows("SELECT record_id, count(*) FROM captures GROUP BY record_id"))
        assert set(per_record.values()) == {1}
        indexed_ids = set(per_record)
        runs = {str(r) for (r,) in db.rows("SELECT DISTINCT run_id FROM warcs")}
        custody = CustodyLog(db, store)
        assert custody.verify() == []
        for key in indexed["keys"]:
            actions = [e.action for e in custody.for_object(store.object_uri(key))]
            assert actions == ["capture", "index", "verify"], (key, actions)
    # Every record of the killed try but its warcinfo (not an index row) is indexed.
    warcinfos = {r.record_id for p in store_warcs(home / "store")
                 for r in verify_warc(p).records if r.record_type == "warcinfo"}  # fmt: skip
    assert dead - warcinfos <= indexed_ids
    assert runs == {attest_run(1), attest_run(2)}
