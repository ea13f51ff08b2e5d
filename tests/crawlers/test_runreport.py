"""A source's DAG run judged from what its tasks returned; where seeds ended."""

from __future__ import annotations

from typing import Any

from crawlers.orchestration.job import seed_results
from crawlers.orchestration.report import render, source_report

BATCHES = [
    {"source": "s", "index": 0, "count": 2, "seeds": ["http://a/1"], "label": "1/2 http://a/1"},
    {"source": "s", "index": 1, "count": 2, "seeds": ["http://a/2"], "label": "2/2 http://a/2"},
]
WARC = {"key": "warcs/s/w.warc.gz", "uri": "file:///store/warcs/s/w.warc.gz"}


def capture(index: int, **overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "batch": index, "label": BATCHES[index]["label"], "run_id": f"run-{index}",
        "pages": 2, "fetches": 4, "records": 9, "warc_bytes": 100,
        "outcomes": {"captured": 4}, "page_outcomes": {"captured": 2},
        "seeds": {f"http://a/{index + 1}": {"outcome": "captured", "url": f"http://a/{index + 1}",
                                             "capture_id": "x"}},
        "warcs": [WARC], "pending": [], "recovered": [], "stopped": None,
    }  # fmt: skip
    result.update(overrides)
    return result


def report(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "planned": BATCHES, "captures": [capture(0), capture(1)],
        "finalized": {"warcs": [WARC, WARC], "missing": []},
        "indexed": {"indexed": 2, "keys": [WARC["key"]] * 2, "records": 18, "pending": []},
        "verified": {"verified": 2, "ok": 2, "failed": []}, "alert_ratio": 0.5,
    }  # fmt: skip
    args.update(kw)
    return source_report("s", **args)


def test_a_clean_run_has_no_problems() -> None:
    result = report()
    assert result["ok"] is True
    assert result["problems"] == []
    assert result["batches"] == {"planned": 2, "captured": 2, "failed": 0}
    assert result["page_outcomes"] == {"captured": 4}
    assert result["gaps"] == []
    assert "source s: OK" in render(result)


def test_a_failed_batch_fails_the_run_and_its_seeds_are_gaps() -> None:
    result = report(captures=[capture(0)])
    assert not result["ok"]
    assert result["problems"] == ["1 of 2 capture batch(es) failed: 2/2 http://a/2"]
    assert result["gaps"] == [
        {"seed": "http://a/2", "outcome": "batch_failed", "url": "http://a/2"}
    ]


def test_too_many_login_walls_or_errors_fail_the_run() -> None:
    walled = capture(1, page_outcomes={"login_wall": 2, "captured": 1, "http_error": 1},
                     seeds={"http://a/2": {"outcome": "login_wall", "url": "http://a/2"}})  # fmt: skip
    result = report(captures=[capture(0), walled])
    assert result["alert"] == {"ratio": 0.5, "threshold": 0.5,
                               "outcomes": {"http_error": 1, "login_wall": 2}}  # fmt: skip
    assert result["ok"]  # 3 of 6 pages: at the threshold, not over it
    assert result["gaps"] == [{"seed": "http://a/2", "outcome": "login_wall", "url": "http://a/2"}]
    result = report(captures=[capture(0), walled], alert_ratio=0.4)
    assert result["problems"] == [
        "3 of 6 pages (50%) ended as http_error 1, login_wall 2: more than the alert threshold "
        "of 40% (ATTEST_ALERT_RATIO)"
    ]


def test_storage_index_and_verify_failures_are_named() -> None:
    assert report(planned=None, captures=[])["problems"] == [
        "the plan task failed, so nothing was captured (see its log)"
    ]
    stopped = capture(0, stopped="disk_full",
                      pending=[{"file": "/spool/x.warc.gz", "reason": "store down"}])  # fmt: skip
    problems = report(captures=[stopped, capture(1)], indexed=None)["problems"]
    assert problems[0] == "batch 1/2 http://a/1 stopped early: disk_full"
    assert problems[1].startswith("batch 1/2 http://a/1 left /spool/x.warc.gz in its worker's")
    assert problems[2].startswith("the index task failed: 2 stored WARC(s) are not indexed")
    failed = {"verified": 2, "ok": 1, "failed": [
        {"key": WARC["key"], "uri": WARC["uri"], "problems": ["sha256: differs"], "problem_count": 3}
    ]}  # fmt: skip
    assert report(verified=failed)["problems"] == [
        f"WARC {WARC['uri']} failed verification: sha256: differs (and 2 more)"
    ]


def test_a_seed_ends_where_its_redirects_end() -> None:
    pages = [
        {"url": "http://a/old", "outcome": "redirect", "redirect_to": "http://a/mid"},
        {"url": "http://a/mid", "outcome": "redirect", "redirect_to": "http://a/new"},
        {"url": "http://a/new", "outcome": "captured", "capture_id": "<urn:uuid:1>"},
        {"url": "http://a/wall", "outcome": "login_wall", "capture_id": "<urn:uuid:2>"},
    ]
    ends = seed_results(pages, ("http://a/old", "http://a/wall", "http://a/never"))
    assert ends == {
        "http://a/old": {"outcome": "captured", "url": "http://a/new", "capture_id": "<urn:uuid:1>"},
        "http://a/wall": {"outcome": "login_wall", "url": "http://a/wall",
                          "capture_id": "<urn:uuid:2>"},
        "http://a/never": {"outcome": "not_fetched", "url": "http://a/never", "capture_id": None},
    }  # fmt: skip


def test_incomplete_pages_are_alerts_shown_and_never_captured() -> None:
    partial = capture(1, page_outcomes={"incomplete": 2, "captured": 1},
                      seeds={"http://a/2": {"outcome": "incomplete", "url": "http://a/2"}})  # fmt: skip
    result = report(captures=[capture(0), partial], alert_ratio=0.3)
    assert result["page_outcomes"] == {"captured": 3, "incomplete": 2}
    assert result["alert"]["outcomes"] == {"incomplete": 2}
    assert result["problems"] == [
        "2 of 5 pages (40%) ended as incomplete 2: more than the alert threshold of 30% "
        "(ATTEST_ALERT_RATIO)"
    ]
    assert result["gaps"] == [{"seed": "http://a/2", "outcome": "incomplete", "url": "http://a/2"}]
    shown = render(result)
    assert "INCOMPLETE 2 page(s)" in shown
    assert "GAP http://a/2: incomplete" in shown


def test_an_invalid_seed_is_a_gap_and_an_alert() -> None:
    bad = capture(1, page_outcomes={"invalid_url": 1},
                  seeds={"http://a/2": {"outcome": "invalid_url", "url": "http://a/2"}})  # fmt: skip
    result = report(captures=[capture(0), bad], alert_ratio=0.9)
    assert result["alert"]["outcomes"] == {"invalid_url": 1}
    assert result["gaps"] == [{"seed": "http://a/2", "outcome": "invalid_url", "url": "http://a/2"}]
