"""The tasks of attest's DAGs: Airflow glue around ``crawlers/`` (not a DAG file itself:
``dags/.airflowignore`` keeps the DAG processor from parsing it on its own).

Each task takes ids, URIs and small stats from XCom, reads attest's settings from the worker's
environment (``ATTEST_HOME``, ``ATTEST_STORE``, ``ATTEST_INDEX``, ...; see settings.py), calls
one function of ``crawlers/`` and returns ids, URIs and small stats. Everything heavy is
imported inside the tasks: parsing a DAG file imports ``airflow.sdk``, the registry reader
and the planner, nothing else. A task that fails on bad input (a registry or case file, a
setting) fails at once, without retries, with the message naming what to fix.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, TriggerRule, get_current_context, task

if TYPE_CHECKING:
    from airflow.sdk import Context

    from archive.store import Store
    from settings import AttestConfig

log = logging.getLogger(__name__)

#: The DAGs' start date: fixed, in the past; runs start from the next cron tick (no catch-up).
START = datetime(2026, 1, 1, tzinfo=UTC)


def registry_paths() -> list[Path]:
    """``ATTEST_SOURCES`` (``:``-separated files or directories), else ``sources/``."""
    import settings

    return settings.registry_paths(os.environ)


def case_dirs() -> list[Path]:
    """``ATTEST_CASES`` (``:``-separated directories), else ``cases/``."""
    import settings

    return settings.case_dirs(os.environ)


def dag_id_for(source_id: str) -> str:
    return f"source_{source_id}"


def captures_asset(source_id: str) -> Asset:
    """The Asset a source's index task updates: schedule downstream DAGs on it.

    ``x-`` marks a scheme of our own, as Airflow asks; Airflow then leaves the URI as it is,
    instead of loading every provider's URI handlers (boto3 among them) to normalize it.
    """
    return Asset(name=f"attest-captures-{source_id}", uri=f"x-attest://captures/{source_id}")


# --- context and settings ----------------------------------------------------------------------


def attest_config() -> AttestConfig:
    import settings

    return settings.load_config()


def configured_store(config: AttestConfig) -> Store:
    from archive.store import open_store

    return open_store(config.store_uri)


def airflow_ids(context: Context) -> dict[str, str]:
    """The task's ids for ``warcinfo``, from the task context itself.

    Airflow 3 exports ``AIRFLOW_CTX_*`` variables too, but no map index, and ``dag.test()``
    leaves one task's variables behind for the next.
    """
    from crawlers.orchestration.warcinfo import airflow_context

    ti = context["ti"]
    map_index = ti.map_index if ti.map_index is not None and ti.map_index >= 0 else None
    return airflow_context(
        {
            "AIRFLOW_CTX_DAG_ID": ti.dag_id,
            "AIRFLOW_CTX_DAG_RUN_ID": ti.run_id,
            "AIRFLOW_CTX_TASK_ID": ti.task_id,
            "AIRFLOW_CTX_TRY_NUMBER": str(ti.try_number),
            "AIRFLOW_CTX_MAP_INDEX": "" if map_index is None else str(map_index),
        }
    )


def attest_run_id(context: Context, try_number: int | None = None) -> str:
    """The attest run id of a capture try: derived from the task try, new for each try
    (``try_number``: an earlier try's)."""
    ti = context["ti"]
    number = ti.try_number if try_number is None else try_number
    name = f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}/{number}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


@contextmanager
def fail_fast_on_bad_input() -> Iterator[None]:
    """Bad input (a :class:`ConfigError`) fails the task without retries: nothing will change."""
    from airflow.sdk.exceptions import AirflowFailException

    from archive.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


# --- the tasks ---------------------------------------------------------------------------------


@task
def plan(source_id: str) -> list[dict[str, Any]]:
    """Resolve the source from the registry and cut its seeds into batches (crawlers/orchestration/plan.py)."""
    from crawlers.orchestration.plan import plan_batches
    from crawlers.registry import load_source

    with fail_fast_on_bad_input():
        config = attest_config()
        source = load_source(registry_paths(), source_id)
        batches = plan_batches(source, config.batch_seeds)
    log.info(
        "source %s: %d seed(s) in %d batch(es)%s",
        source_id,
        len(source.seeds),
        len(batches),
        "" if source.independent_seeds else " (one crawl: its seeds share one frontier)",
    )
    return [b.as_dict() for b in batches]


@task(
    map_index_template="{{ task.op_kwargs['batch']['label'] }}",
    retries=2,
    retry_delay=timedelta(minutes=5),
)
def capture(batch: dict[str, Any]) -> dict[str, Any]:
    """Capture one batch, as ``attest crawl`` would, and ship its WARCs to the store.

    The capture runs in a process of its own (crawlers/orchestration/job.py); its WARCs are sealed, verified
    and uploaded before this task ends, since the spool is this worker's disk. A retry (or a
    cleared task) keeps what its earlier tries finalized: the job first ships the spools of
    dead tries on this worker, and the WARCs earlier tries shipped are found in the store.
    """
    from crawlers.orchestration.job import CaptureJob, run_in_subprocess
    from crawlers.orchestration.plan import Batch
    from crawlers.orchestration.steps import earlier_warcs

    context = get_current_context()
    ti = context["ti"]
    dag_run = context["dag_run"]
    since = (dag_run.start_date or dag_run.run_after or datetime.now(UTC)).date()
    since -= timedelta(days=1)
    with fail_fast_on_bad_input():
        config = attest_config()
        store = configured_store(config)
    run_id = attest_run_id(context)
    if (config.spool_root / run_id).exists() or earlier_warcs(
        store, batch["source"], [run_id], since
    ):
        # This try number was used before: the run was deleted and made again with the same
        # ids (as dag.test() does). A new attest run id keeps its WARCs and ledger apart.
        run_id = str(uuid.uuid5(uuid.UUID(run_id), str(ti.id)))
    job = CaptureJob(
        registry=tuple(str(p) for p in registry_paths()),
        batch=Batch.from_dict(batch),
        run_id=run_id,
        airflow=airflow_ids(context),
    )
    with fail_fast_on_bad_input():
        result = run_in_subprocess(job, logger=log)
    if ti.try_number > 1:
        known = {w["key"] for w in result["warcs"]} | {
            w["key"] for rec in result.get("recovered", ()) for w in rec["warcs"]
        }
        earlier = earlier_warcs(
            store,
            batch["source"],
            [attest_run_id(context, n) for n in range(1, ti.try_number)],
            since,
            known=known,
        )
        for rec in earlier:
            log.info("keeping %d WARC(s) of the earlier try %s", len(rec["warcs"]), rec["run_id"])
        result["recovered"] = [*result.get("recovered", ()), *earlier]
    return {**result, "batch": batch["index"], "label": batch["label"]}


@task(trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS)
def finalize(captures: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Gather the WARCs the batches stored, each confirmed in the store (the failed batches
    left nothing here; the report names them)."""
    from crawlers.orchestration.steps import finalize_run

    config = attest_config()
    # A slice fetches a mapped task's results in one request.
    return finalize_run(list(captures[:]), configured_store(config))


@task(retries=2, retry_delay=timedelta(minutes=1))
def index(finalized: dict[str, Any]) -> dict[str, Any]:
    """Custody ``capture`` entries and index rows for the run's WARCs; updates the task's
    Assets (the source's captures) when every WARC is indexed, and fails otherwise."""
    from archive.errors import IndexDatabaseError
    from crawlers.orchestration.steps import index_run

    config = attest_config()
    result = index_run(
        finalized["warcs"],
        config.index_url,
        configured_store(config),
        attestor=config.custody_attestor(),
    )
    if result["pending"]:
        raise IndexDatabaseError(
            f"{len(result['pending'])} WARC(s) not indexed: "
            + "; ".join(f"{p['key']}: {p['reason']}" for p in result["pending"])
        )
    context = get_current_context()
    for asset in context["outlets"]:
        context["outlet_events"][asset].extra = {
            "warcs": len(result["keys"]),
            "records": result["records"],
            "dag_run": context["run_id"],
        }
    return result


@task
def verify(indexed: dict[str, Any]) -> dict[str, Any]:
    """Re-read each WARC of the run from the store and check it (``attest audit``), one custody
    ``verify`` entry each; damage is a result for the report, not an error."""
    from crawlers.orchestration.steps import verify_run

    context = get_current_context()
    ti = context["ti"]
    config = attest_config()
    return verify_run(
        indexed["keys"],
        config.index_url,
        configured_store(config),
        actor=os.environ.get("ATTEST_ACTOR") or f"airflow:{ti.dag_id}",
        context={
            "via": "airflow",
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "try_number": ti.try_number,
        },
        attestor=config.custody_attestor(),
    )


@task(trigger_rule=TriggerRule.ALL_DONE)
def report(
    source_id: str,
    planned: list[dict[str, Any]] | None,
    captures: Sequence[dict[str, Any]],
    finalized: dict[str, Any] | None,
    indexed: dict[str, Any] | None,
    verified: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run's report, logged and kept in the store; fails the run if it has problems."""
    from airflow.sdk.exceptions import AirflowFailException

    from archive.errors import StorageError
    from crawlers.orchestration.report import render, source_report
    from crawlers.orchestration.steps import report_key, store_report

    config = attest_config()
    ti = get_current_context()["ti"]
    result = source_report(
        source_id,
        planned=planned,
        captures=list(captures[:]) if captures else [],
        finalized=finalized,
        indexed=indexed,
        verified=verified,
        alert_ratio=config.alert_ratio,
        dag_id=ti.dag_id,
        airflow_run_id=ti.run_id,
    )
    try:
        store = configured_store(config)
        key = report_key(ti.dag_id, ti.run_id, ti.try_number)
        if store.stat(key) is not None:  # a run deleted and made again with the same ids
            key = key.removesuffix(".json") + f"-{ti.id}.json"
        result["report"] = store_report(store, key, result)
    except StorageError as exc:
        result["problems"].append(f"the report could not be stored: {exc}")
        result["ok"] = False
    log.info("%s", render(result))
    if not result["ok"]:
        raise AirflowFailException(f"source {source_id}: " + "; ".join(result["problems"]))
    return {k: v for k, v in result.items() if k not in ("gaps", "warcs")} | {
        "gaps": len(result["gaps"]),
        "warcs": len(result["warcs"]),
    }
