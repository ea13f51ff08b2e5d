"""``capture_url``: capture URLs now and link the captures to a claim, from the Airflow UI.

Trigger it with parameters: ``urls`` (a list), ``browser`` (render in Chromium first),
``case`` and ``claim`` (optional: the claim the captures are evidence of) and a ``note``. It
runs what ``attest capture`` and ``attest claim link`` do:

    check_request -> capture_now -> finalize -> index -> verify -> link

A URL whose page was not captured (an error, a login wall, ...) fails the run, naming it; the
pages that were captured are linked all the same.
"""

from __future__ import annotations

from airflow.sdk import Param, dag
from attest_tasks import START, finalize, index, verify
from capture_url_tasks import capture_now, check_request, link


@dag(
    dag_id="capture_url",
    description="Capture URLs now; link the captures to a case's claim",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["attest", "on-demand"],
    params={
        "urls": Param(
            [],
            type="array",
            items={"type": "string"},
            title="URLs",
            description="The pages to capture, each by itself (http or https).",
        ),
        "browser": Param(
            False,
            type="boolean",
            title="Render in the browser",
            description="Render each page in Chromium first (posts, JavaScript pages).",
        ),
        "case": Param(
            None,
            type=["null", "string"],
            title="Case",
            description="Case id or file (cases/*.yaml) the captures are evidence for.",
        ),
        "claim": Param(None, type=["null", "string"], title="Claim", description="Claim id."),
        "note": Param(
            None,
            type=["null", "string"],
            title="Note",
            description="Why these captures evidence the claim (kept with the link).",
        ),
    },
    doc_md=__doc__,
)
def capture_url() -> None:
    request = check_request()
    captured = capture_now(request)
    finalized = finalize([captured])
    indexed = index(finalized)
    verified = verify(indexed)
    link(request, captured, verified)


capture_url()
