"""The tasks of the ``capture_url`` DAG that the source DAGs do not have (not a DAG file itself:
``dags/.airflowignore`` keeps the DAG processor from parsing it on its own).

``check_request`` validates the run's parameters before anything is fetched; ``capture_now``
captures the URLs as ``attest capture`` does; ``link`` links each captured page to the claim
as ``attest claim link`` does, with a custody ``link`` entry.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from airflow.sdk import get_current_context, task
from attest_tasks import (
    airflow_ids,
    attest_config,
    attest_run_id,
    case_dirs,
    configured_store,
    fail_fast_on_bad_input,
)

log = logging.getLogger(__name__)


@task
def check_request() -> dict[str, Any]:
    """The run's parameters, checked: URLs to capture, and the case and claim if given."""
    from archive.errors import ConfigError
    from archive.evidence.cases import find_case
    from crawlers.registry import snapshot_source

    params = get_current_context()["params"]
    urls = [str(u).strip() for u in params.get("urls") or [] if str(u).strip()]
    case_name, claim_id = params.get("case") or None, params.get("claim") or None
    with fail_fast_on_bad_input():
        if not urls:
            raise ConfigError("params.urls: give at least one URL to capture")
        snapshot_source(urls)  # refuses what is not an http(s) URL, naming it
        if (case_name is None) != (claim_id is None):
            raise ConfigError("params: give both a case and a claim to link to, or neither")
        case_id = None
        if case_name is not None and claim_id is not None:
            case = find_case(case_name, case_dirs())
            case.claim(claim_id)
            case_id = case.id
    return {
        "urls": urls,
        "browser": bool(params.get("browser")),
        "case": case_id,
        "claim": claim_id,
        "note": params.get("note") or None,
    }


@task(retries=1)
def capture_now(request: dict[str, Any]) -> dict[str, Any]:
    """Capture the URLs now, each page by itself, and ship the WARC to the store."""
    from crawlers.orchestration.job import CaptureJob, run_in_subprocess

    context = get_current_context()
    job = CaptureJob(
        urls=tuple(request["urls"]),
        browser=request["browser"],
        run_id=attest_run_id(context),
        airflow=airflow_ids(context),
    )
    with fail_fast_on_bad_input():
        result = run_in_subprocess(job, logger=log)
    return {**result, "batch": 0, "label": f"{len(request['urls'])} URL(s)"}


@task
def link(
    request: dict[str, Any], captured: dict[str, Any], verified: dict[str, Any]
) -> dict[str, Any]:
    """Link each captured page to the claim; fails naming the URLs that were not captured."""
    from airflow.sdk.exceptions import AirflowFailException

    from crawlers.orchestration.steps import link_run

    if verified["failed"]:
        raise AirflowFailException(
            "not linking: the run's WARCs failed verification: "
            + "; ".join(f"{f['uri']}: {f['problems'][0]}" for f in verified["failed"])
        )
    missing = {u: e for u, e in captured["seeds"].items() if e.get("outcome") != "captured"}
    result: dict[str, Any] = {"linked": [], "not_linked": []}
    if request["case"] is not None:
        dag_id = get_current_context()["ti"].dag_id
        config = attest_config()
        with fail_fast_on_bad_input():
            result = link_run(
                captured["seeds"],
                case_name=request["case"],
                claim_id=request["claim"],
                case_dirs=case_dirs(),
                index_url=config.index_url,
                store=configured_store(config),
                annotator=os.environ.get("ATTEST_ACTOR") or f"airflow:{dag_id}",
                note=request["note"],
                attestor=config.custody_attestor(),
            )
        for item in result["linked"]:
            state = "linked" if item["new"] else "already linked"
            log.info(
                "%s: %s (%s) -> %s claim %s",
                state,
                item["capture"],
                item["url"],
                result["case"],
                result["claim"],
            )
    if missing:
        raise AirflowFailException(
            "not captured, so not linked: "
            + "; ".join(f"{u} ({e.get('outcome')})" for u, e in missing.items())
        )
    return result
