"""One DAG per source of the registry: ``source_<id>``, on the source's cron.

The registry is ``sources/*.yaml`` beside ``dags/``, or what ``ATTEST_SOURCES`` names (files or
directories, ``:``-separated). Parsing this file reads those YAML files and nothing else: no
crawl variable (``${VAR}`` URLs are resolved by the run's plan task), no network, no database,
no heavy import (crawlers.registry.outline_registry). An invalid registry file is an import
error naming the file, the source and the field. Each DAG runs

    plan -> capture (one task per batch, in the pool attest-source-<id>, or attest-host-<pool>
         for sources sharing a host) -> finalize -> index -> verify -> report

A source without a schedule runs when triggered. Runs of one source never overlap; the pools
come from ``attest airflow-pools`` (docs/OPERATORS.md).
"""

from __future__ import annotations

from airflow.sdk import DAG, dag, get_parsing_context
from attest_tasks import (
    START,
    capture,
    captures_asset,
    dag_id_for,
    finalize,
    index,
    plan,
    registry_paths,
    report,
    verify,
)

from crawlers.orchestration.plan import pool_name, task_slots
from crawlers.registry import SourceOutline, outline_registry


def source_dag(source: SourceOutline) -> DAG:
    """The DAG of one source; its tasks get only the source's id and each other's results."""

    @dag(
        dag_id=dag_id_for(source.id),
        description=source.title or f"capture source {source.id}",
        schedule=source.schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["attest", "source", source.kind],
        doc_md=f"Capture source `{source.id}` ({source.kind}, {source.seed_count} seed(s)) "
        f"from `{source.path}`. See docs/OPERATORS.md.",
    )
    def pipeline() -> None:
        planned = plan(source.id)
        captured = capture.override(pool=pool_name(source), pool_slots=task_slots(source)).expand(
            batch=planned
        )
        finalized = finalize(captured)
        indexed = index.override(outlets=[captures_asset(source.id)])(finalized)
        verified = verify(indexed)
        report(source.id, planned, captured, finalized, indexed, verified)

    return pipeline()


# A worker running one task parses the file for its DAG only.
_wanted = get_parsing_context().dag_id
for _source in outline_registry(registry_paths()):
    if _wanted is None or _wanted == dag_id_for(_source.id):
        source_dag(_source)
