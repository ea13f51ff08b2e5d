"""What the DAG tests ask of Airflow, run in a process of its own (tests/support/airflow_home.py).

    python airflow_probe.py parse         import the DAG files under an audit hook, then DagBag
    python airflow_probe.py run DAG_ID    dag.test() one run (conf as JSON on stdin)
    python airflow_probe.py run DAG_ID LOGICAL_DATE
                                          ... of that logical date; run again, dag.test()
                                          deletes the run and makes it anew under the same
                                          run id (try numbers from 1 again)

Airflow configures itself from the environment (AIRFLOW_HOME, ...) when first imported, so it
never runs in pytest's own process. The answer is the last line, ``RESULT <json>``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

DAGS = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
WATCHED = ("socket.connect", "socket.getaddrinfo", "subprocess.Popen", "os.system", "os.exec")


def value(enum: Any) -> str:
    return str(getattr(enum, "value", enum))


def answer(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result, default=str), flush=True)


def dag_bag() -> Any:
    """The DAG folder parsed as the DAG processor and the workers parse it (a bundle)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=DAGS, bundle_path=DAGS, bundle_name="dags-folder")


def warm_up() -> None:
    """Load what Airflow loads for any DAG (croniter, params, mapping): not the DAG files' cost."""
    from datetime import UTC, datetime

    from airflow.sdk import DAG, Param, TriggerRule, task

    start = datetime(2026, 1, 1, tzinfo=UTC)
    with DAG("warm_up", schedule="0 0 * * *", start_date=start, params={"p": Param(None)}):

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def step(x: int) -> int:
            return x

        step.expand(x=[1])


def parse() -> dict[str, Any]:
    warm_up()

    events: list[tuple[str, str]] = []
    watching = False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not watching:
            return
        if event == "open":
            events.append((event, str(args[0])))
        elif event.startswith(WATCHED):
            events.append((event, repr(args)[:300]))

    sys.addaudithook(hook)
    sys.path.insert(0, str(DAGS))
    before = set(sys.modules)
    started = time.perf_counter()
    watching = True
    try:
        for name in ("attest_sources", "capture_url"):
            importlib.import_module(name)
    finally:
        watching = False
    parse_s = time.perf_counter() - started
    modules = sorted(set(sys.modules) - before)

    from airflow.serialization.serialized_objects import DagSerialization

    bag = dag_bag()
    dags: dict[str, Any] = {}
    for dag_id, dag in bag.dags.items():
        DagSerialization.to_dict(dag)  # what the DAG processor stores must serialize
        dags[dag_id] = {
            "schedule": str(dag.schedule),
            "timetable": type(dag.timetable).__name__,
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "params": sorted(dag.params.keys()),
            "fileloc": dag.fileloc,
            "tasks": {
                t.task_id: {
                    "upstream": sorted(t.upstream_task_ids),
                    "mapped": bool(getattr(t, "is_mapped", False)),
                    "pool": t.pool,
                    "pool_slots": t.pool_slots,
                    "trigger_rule": value(t.trigger_rule),
                    "outlets": [getattr(a, "uri", str(a)) for a in t.outlets],
                }
                for t in dag.tasks
            },
        }
    return {
        "import_errors": bag.import_errors,
        "files": sorted(Path(s.file).name for s in bag.dagbag_stats),
        "dags": dags,
        "modules": modules,
        "events": events,
        "parse_s": parse_s,
    }


def run(dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> dict[str, Any]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.pool import Pool
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    bag = dag_bag()
    assert not bag.import_errors, bag.import_errors
    if logical_date is None:
        dr = bag.get_dag(dag_id).test(run_conf=conf or None)
    else:
        from datetime import datetime

        when = datetime.fromisoformat(logical_date)
        dr = bag.get_dag(dag_id).test(run_conf=conf or None, logical_date=when, run_after=when)
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == dr.run_id
            )
        ).all()
        events = session.execute(
            select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_dag_id,
                   AssetEvent.source_run_id, AssetEvent.source_task_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == dr.run_id)
        ).all()  # fmt: skip
        pools = {p.pool: p.slots for p in session.scalars(select(Pool)).all()}
        return {
            "state": value(dr.state),
            "run_id": dr.run_id,
            "tasks": [
                {"task_id": ti.task_id, "map_index": ti.map_index, "state": value(ti.state),
                 "try_number": ti.try_number, "label": ti.rendered_map_index,
                 "pool": ti.pool, "pool_slots": ti.pool_slots}
                for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index))
            ],
            "asset_events": [
                {"uri": u, "extra": e, "dag_id": d, "run_id": r, "task_id": t}
                for u, e, d, r, t in events
            ],
            "pools": pools,
        }  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "parse":
        answer(parse())
    else:
        logical = sys.argv[3] if len(sys.argv) > 3 else None
        answer(run(sys.argv[2], json.loads(sys.stdin.read() or "{}"), logical))
