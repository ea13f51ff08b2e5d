"""The downloader middlewares (crawlers/middlewares.py), each on a crawler from ``get_crawler``.

Responses are the demo web's own (``demoweb.news``, called in-process) or what the recorder
answers (its outcome and capture headers); robots.txt is the news site's. Stopping a crawl
needs a running engine: that test runs a real crawl (of nothing) on Twisted's asyncio reactor
in a thread of this process (support/reactor.py).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scrapy import signals
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response
from scrapy.robotstxt import ProtegoRobotParser
from scrapy.utils.test import get_crawler
from support.reactor import in_reactor, reactor

from crawlers.middlewares import (
    MAX_RETRY_AFTER,
    RecorderMiddleware,
    RetryAfterMiddleware,
    RobotsOutcomeMiddleware,
    _retry_after,
)
from crawlers.recorder.protocol import (
    CAPTURE_ID_HEADER,
    OUTCOME_HEADER,
    PROXY_AUTH_HEADER,
    RECORDER_ERROR_HEADER,
    SOURCE_HEADER,
    proxy_credentials,
)
from crawlers.registry import SourceSpec
from crawlers.spiders import NewsSpider
from demoweb.http import Request as SiteRequest
from demoweb.news import NewsSite

NEWS = "http://127.0.0.1:8781"
RECORDER = "http://127.0.0.1:8790"
SECRET = "the-runs-secret"
CLOSE_SPIDER_DEPRECATED = r"ignore:ExecutionEngine\.close_spider\(\) is deprecated:scrapy.exceptions.ScrapyDeprecationWarning"


def source(**fields: Any) -> SourceSpec:
    return SourceSpec(**{"id": "news", "kind": "news", "seeds": (f"{NEWS}/",), **fields})


def crawler_with_spider(**settings: Any) -> Any:
    crawler = get_crawler(NewsSpider, settings)
    crawler.spider = NewsSpider.from_crawler(crawler, source=source())
    return crawler


def page_request(url: str = f"{NEWS}/busy.html") -> Request:
    meta = {"attest": {"role": "page", "depth": 1, "via": "link", "referrer": None, "attempts": []}}
    return Request(url, meta=meta, priority=-10)


def site_response(request: Request, site: NewsSite, **recorder: str) -> Response:
    """The news site's answer to ``request`` as the recorder relays it."""
    reply = site(SiteRequest("GET", request.url.removeprefix(NEWS), {}, host="127.0.0.1:8781"))
    headers = dict(reply.headers) | {CAPTURE_ID_HEADER: "<urn:uuid:1>"} | recorder
    return Response(
        request.url, status=reply.status, headers=headers, body=reply.body, request=request
    )


def recorder_answer(request: Request, status: int, outcome: str, **headers: str) -> Response:
    """What the recorder answers when a fetch failed: its outcome and record id."""
    return Response(
        request.url,
        status=status,
        request=request,
        headers={OUTCOME_HEADER: outcome, CAPTURE_ID_HEADER: "<urn:uuid:2>", **headers},
        body=f"{outcome}: it failed\n".encode(),
    )


# --- RecorderMiddleware ----------------------------------------------------------------------


def test_without_a_recorder_the_middleware_is_off() -> None:
    with pytest.raises(NotConfigured, match="no recorder"):
        RecorderMiddleware.from_crawler(get_crawler(NewsSpider))


def test_every_request_goes_through_the_recorder_with_the_runs_credentials() -> None:
    crawler = crawler_with_spider(ATTEST_RECORDER_URL=RECORDER, ATTEST_RECORDER_SECRET=SECRET)
    middleware = RecorderMiddleware.from_crawler(crawler)
    for url in (f"{NEWS}/", "https://127.0.0.1:8443/robots.txt"):
        request = Request(url)
        assert middleware.process_request(request) is None
        assert request.meta["proxy"] == RECORDER
        assert request.headers[PROXY_AUTH_HEADER] == proxy_credentials("news", SECRET).encode()
        assert SOURCE_HEADER not in request.headers


def test_a_recorder_without_a_secret_is_told_the_source_by_header() -> None:
    crawler = crawler_with_spider(ATTEST_RECORDER_URL=RECORDER)
    request = Request(f"{NEWS}/")
    RecorderMiddleware.from_crawler(crawler).process_request(request)
    assert request.headers[SOURCE_HEADER] == b"news"
    assert PROXY_AUTH_HEADER not in request.headers


def test_a_recorded_response_passes_and_one_that_bypassed_the_recorder_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crawler = crawler_with_spider(ATTEST_RECORDER_URL=RECORDER, ATTEST_RECORDER_SECRET=SECRET)
    middleware = RecorderMiddleware.from_crawler(crawler)
    request = page_request(f"{NEWS}/")
    recorded = site_response(request, NewsSite())
    with caplog.at_level(logging.ERROR, logger="crawlers.middlewares"):
        assert middleware.process_response(request, recorded) is recorded
        assert caplog.records == []
        bare = Response(request.url, status=200, body=b"<p>direct</p>", request=request)
        assert middleware.process_response(request, bare) is bare
    assert f"response for {NEWS}/ did not come through the recorder" in caplog.text


@pytest.mark.filterwarnings(CLOSE_SPIDER_DEPRECATED)
def test_a_full_recorder_spool_stops_the_crawl() -> None:
    """A real crawl (of no page) on the reactor; when it opens, the recorder answers 507
    disk_full: the response is dropped and the crawl ends with that reason."""
    outcome = full_spool_crawl()
    assert outcome["ignored"] == ["recorder spool is full"]
    assert outcome["stats"]["attest/stopped"] == "disk_full"
    assert outcome["stats"]["finish_reason"] == "disk_full"


def test_stopping_the_crawl_uses_no_deprecated_scrapy_api() -> None:
    outcome = full_spool_crawl()
    assert outcome["stats"].get("finish_reason") == "disk_full"


def full_spool_crawl() -> dict[str, Any]:
    reactor()  # first, so that the crawler is made for the reactor it runs on
    crawler = get_crawler(
        NewsSpider, {"ATTEST_RECORDER_URL": RECORDER, "ATTEST_RECORDER_SECRET": SECRET}
    )
    ignored: list[str] = []

    def opened(spider: NewsSpider) -> None:
        middleware = RecorderMiddleware.from_crawler(crawler)
        request = page_request(f"{NEWS}/")
        full = Response(
            request.url,
            status=507,
            request=request,
            headers={RECORDER_ERROR_HEADER: "disk_full"},
            body=b"recorder spool is full; not recorded\n",
        )
        try:
            middleware.process_response(request, full)
        except IgnoreRequest as exc:
            ignored.append(str(exc))
        except Exception as exc:
            ignored.append(f"raised {exc!r}")

    crawler.signals.connect(opened, signal=signals.spider_opened)
    in_reactor(lambda: crawler.crawl_async(source=source(seeds=())))
    return {"ignored": ignored, "stats": dict(crawler.stats.get_stats())}


# --- RetryAfterMiddleware --------------------------------------------------------------------


def retry_middleware(retries: int = 2, backoff: float = 1.0) -> RetryAfterMiddleware:
    crawler = get_crawler(NewsSpider, {"ATTEST_RETRIES": retries, "ATTEST_RETRY_BACKOFF": backoff})
    return RetryAfterMiddleware.from_crawler(crawler)


def test_retries_and_backoff_come_from_the_settings() -> None:
    middleware = retry_middleware(retries=5, backoff=0.25)
    assert (middleware.max_retries, middleware.backoff) == (5, 0.25)
    default = RetryAfterMiddleware.from_crawler(get_crawler(NewsSpider))
    assert (default.max_retries, default.backoff) == (2, 1.0)


def test_a_busy_page_is_retried_after_the_time_it_asks_for_and_the_attempt_is_kept() -> None:
    middleware = retry_middleware()
    site = NewsSite()
    request = page_request()
    first = site_response(request, site)
    assert first.status == 503
    retry = middleware.process_response(request, first)
    assert isinstance(retry, Request)
    assert (retry.url, retry.dont_filter, retry.priority) == (request.url, True, -9)
    assert retry.meta["attest_retry_delay"] == 1.0  # the site's Retry-After
    assert retry.meta["attest"]["attempts"] == [
        {"status": 503, "outcome": "http_error", "capture_id": "<urn:uuid:1>", "retry_after": 1.0}
    ]
    assert request.meta["attest"]["attempts"] == retry.meta["attest"]["attempts"]
    # The second try gets the page: it is the response.
    second = site_response(retry, site)
    assert second.status == 200
    assert middleware.process_response(retry, second) is second


def test_backoff_doubles_and_the_last_attempt_is_the_response() -> None:
    middleware = retry_middleware(retries=3, backoff=0.5)
    request = page_request(f"{NEWS}/broken.html")
    delays = []
    for _ in range(3):
        answer = site_response(request, NewsSite())
        assert answer.status == 500
        retry = middleware.process_response(request, answer)
        assert isinstance(retry, Request)
        delays.append(retry.meta["attest_retry_delay"])
        request = retry
    assert delays == [0.5, 1.0, 2.0]
    final = site_response(request, NewsSite())
    assert middleware.process_response(request, final) is final
    assert len(request.meta["attest"]["attempts"]) == 3


def test_transient_failures_the_recorder_reports_are_retried_others_are_not() -> None:
    middleware = retry_middleware()
    for outcome, status in (("timeout", 504), ("connection_error", 502)):
        request = page_request()
        retry = middleware.process_response(request, recorder_answer(request, status, outcome))
        assert isinstance(retry, Request), outcome
        (attempt,) = retry.meta["attest"]["attempts"]
        assert (attempt["outcome"], attempt["capture_id"]) == (outcome, "<urn:uuid:2>")
    for outcome, status in (("egress_refused", 403), ("dns_error", 502), ("tls_error", 502)):
        request = page_request()
        answer = recorder_answer(request, status, outcome)
        assert middleware.process_response(request, answer) is answer, outcome
    # An origin's 404 is an answer, not a failure.
    request = page_request(f"{NEWS}/missing.html")
    missing = site_response(request, NewsSite())
    assert middleware.process_response(request, missing) is missing


def test_a_retry_after_beyond_the_limit_or_a_request_that_is_not_a_capture_is_not_retried() -> None:
    middleware = retry_middleware()
    request = page_request()
    too_long = recorder_answer(
        request, 504, "timeout", **{"Retry-After": str(int(MAX_RETRY_AFTER) + 1)}
    )
    assert middleware.process_response(request, too_long) is too_long
    plain = Request(f"{NEWS}/busy.html")  # no attest meta: robots.txt asked by Scrapy, say
    busy = site_response(plain, NewsSite())
    assert middleware.process_response(plain, busy) is busy


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert _retry_after(b"7") == 7.0
    assert _retry_after(None) is None
    assert _retry_after(b"soon") is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = _retry_after(email.utils.format_datetime(later, usegmt=True).encode())
    assert seconds is not None
    assert 25 <= seconds <= 30
    past = datetime.now(UTC) - timedelta(days=1)
    assert _retry_after(email.utils.format_datetime(past, usegmt=True).encode()) == 0.0


def test_a_retry_waits_its_delay_before_it_is_sent_once() -> None:
    middleware = retry_middleware()
    request = page_request()
    request.meta["attest_retry_delay"] = 0.3
    began = time.monotonic()
    asyncio.run(middleware.process_request(request))
    assert time.monotonic() - began >= 0.3
    assert "attest_retry_delay" not in request.meta
    began = time.monotonic()
    asyncio.run(middleware.process_request(request))  # the delay was for one try only
    assert time.monotonic() - began < 0.3


# --- RobotsOutcomeMiddleware -----------------------------------------------------------------


def news_robots(crawler: Any) -> ProtegoRobotParser:
    body = NewsSite()(SiteRequest("GET", "/robots.txt", {}, host="127.0.0.1:8781")).body
    return ProtegoRobotParser.from_crawler(crawler, body)


def test_a_request_robots_txt_forbids_is_refused_and_marked_robots_disallowed() -> None:
    crawler = get_crawler(NewsSpider, {"ROBOTSTXT_OBEY": True})
    middleware = RobotsOutcomeMiddleware.from_crawler(crawler)
    parser = news_robots(crawler)
    refused = page_request(f"{NEWS}/private/secret.html")
    with pytest.raises(IgnoreRequest):
        middleware.process_request_2(parser, refused)
    assert refused.meta["attest"]["outcome"] == "robots_disallowed"
    allowed = page_request(f"{NEWS}/article/1.html")
    assert middleware.process_request_2(parser, allowed) is None
    assert "outcome" not in allowed.meta["attest"]
    # A request that is no capture of the spider's is refused all the same, unmarked.
    other = Request(f"{NEWS}/private/other.html")
    with pytest.raises(IgnoreRequest):
        middleware.process_request_2(parser, other)
    assert "attest" not in other.meta


def test_robots_txt_not_obeyed_switches_the_middleware_off() -> None:
    with pytest.raises(NotConfigured):
        RobotsOutcomeMiddleware.from_crawler(get_crawler(NewsSpider, {"ROBOTSTXT_OBEY": False}))
