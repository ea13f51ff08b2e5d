"""The DAG files: they import cleanly, make one DAG per source plus ``capture_url``, with the
structure the operators' guide describes, and parsing them reads the registry and nothing else."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from support.airflow_home import DAGS, airflow_env, probe

from crawlers.orchestration.plan import pool_name, task_slots
from crawlers.registry import outline_registry

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OUTLINES = outline_registry([ROOT / "sources"])
#: Modules no DAG file may import at parse time (the tasks import them when they run).
HEAVY = (
    "scrapy", "twisted", "playwright", "boto3", "botocore", "warcio", "psycopg", "lxml",
    "crawlers.orchestration.run", "crawlers.orchestration.job", "crawlers.orchestration.steps", "crawlers.orchestration.report",
    "crawlers.recorder", "crawlers.spiders", "archive.index.db", "archive.store", "archive.custody.audit",
)  # fmt: skip


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = airflow_env(tmp_path_factory.mktemp("airflow-parse"))
    env.pop("ATTEST_SOURCES", None)  # the checkout's sources/: demo and the case template
    return probe(["parse"], env)


def test_the_dag_files_import_without_errors(parsed: dict[str, Any]) -> None:
    assert parsed["import_errors"] == {}
    # The helper modules are not DAG files (.airflowignore).
    assert parsed["files"] == ["attest_sources.py", "capture_url.py"]


def test_one_dag_per_registry_source_and_capture_url(parsed: dict[str, Any]) -> None:
    # The case template's ${VAR} URLs are unset: its sources get DAGs all the same.
    assert {o.id for o in OUTLINES} >= {"demo-news", "demo-social", "nc-news-national"}
    assert set(parsed["dags"]) == {f"source_{o.id}" for o in OUTLINES} | {"capture_url"}
    assert all(Path(d["fileloc"]).parent == DAGS for d in parsed["dags"].values())


@pytest.mark.parametrize("outline", OUTLINES, ids=lambda o: o.id)
def test_a_source_dag_plans_captures_in_its_pool_then_indexes_verifies_reports(
    parsed: dict[str, Any], outline: Any
) -> None:
    dag = parsed["dags"][f"source_{outline.id}"]
    assert dag["schedule"] == (outline.schedule or "None")
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    tasks = dag["tasks"]
    assert set(tasks) == {"plan", "capture", "finalize", "index", "verify", "report"}
    assert tasks["plan"]["upstream"] == []
    capture = tasks["capture"]
    assert capture["upstream"] == ["plan"]
    assert capture["mapped"] is True
    assert capture["pool"] == pool_name(outline)
    assert capture["pool"] == (
        f"attest-host-{outline.pool}" if outline.pool else f"attest-source-{outline.id}"
    )
    assert capture["pool_slots"] == task_slots(outline)
    assert tasks["finalize"]["upstream"] == ["capture"]
    assert tasks["finalize"]["trigger_rule"] == "all_done_min_one_success"
    assert tasks["index"]["upstream"] == ["finalize"]
    assert tasks["index"]["outlets"] == [f"x-attest://captures/{outline.id}"]
    assert tasks["verify"]["upstream"] == ["index"]
    assert tasks["report"]["upstream"] == ["capture", "finalize", "index", "plan", "verify"]
    assert tasks["report"]["trigger_rule"] == "all_done"
    assert all(not t["mapped"] for name, t in tasks.items() if name != "capture")


def test_profiles_fan_out_one_slot_per_task_crawls_keep_their_per_host_concurrency() -> None:
    by_id = {o.id: o for o in OUTLINES}
    assert by_id["demo-social"].independent_seeds
    assert task_slots(by_id["demo-social"]) == 1
    assert not by_id["demo-news"].independent_seeds
    assert task_slots(by_id["demo-news"]) == by_id["demo-news"].concurrency_per_host == 8


def test_capture_url_checks_captures_indexes_verifies_then_links(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["capture_url"]
    assert dag["schedule"] == "None"
    assert dag["params"] == ["browser", "case", "claim", "note", "urls"]
    tasks = dag["tasks"]
    chain = ["check_request", "capture_now", "finalize", "index", "verify"]
    for before, after in itertools.pairwise(chain):
        assert tasks[after]["upstream"] == [before]
    assert tasks["link"]["upstream"] == ["capture_now", "check_request", "verify"]
    assert tasks["index"]["outlets"] == []


def test_parsing_reads_only_the_registry_and_imports_nothing_heavy(parsed: dict[str, Any]) -> None:
    opened = {
        Path(path).resolve()
        for event, path in parsed["events"]
        if event == "open" and not path.endswith((".py", ".pyc", ".so"))
    }
    registry = {p.resolve() for p in (ROOT / "sources").glob("*.yaml")}
    schema = (ROOT / "crawlers" / "registry_schema.yaml").resolve()
    assert registry <= opened
    assert opened <= registry | {schema}
    assert [e for e in parsed["events"] if e[0] != "open"] == []  # no network, no process
    heavy = [m for m in parsed["modules"] if m in HEAVY or m.split(".")[0] in HEAVY or any(
        m.startswith(h + ".") for h in HEAVY)]  # fmt: skip
    assert heavy == []
    # Not a benchmark (that is issue 6's bench/), a guard against parse-time work.
    assert parsed["parse_s"] < 10
