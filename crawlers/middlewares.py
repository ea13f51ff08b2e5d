"""Downloader middlewares: route through the recorder, retry politely, report robots refusals.

- :class:`RecorderMiddleware` sends every request (robots.txt included) through the recording
  proxy with the source's id, and stops the crawl cleanly when the recorder's disk is full.
- :class:`RetryAfterMiddleware` retries 5xx, 408, 429 and transient failures (timeouts,
  connection errors) with exponential backoff, honouring ``Retry-After``. Every attempt is a
  capture of its own; the attempts are listed with the final outcome.
- :class:`RobotsOutcomeMiddleware` is Scrapy's robots.txt middleware that also marks refused
  requests, so they are reported as ``robots_disallowed`` instead of vanishing.

The download handler they feed is in :mod:`crawlers.handlers`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response

from archive.outcomes import TRANSIENT_OUTCOMES, Outcome
from crawlers.extensions import stop_crawl
from crawlers.recorder.protocol import (
    CAPTURE_ID_HEADER,
    OUTCOME_HEADER,
    PROXY_AUTH_HEADER,
    RECORDER_ERROR_HEADER,
    SOURCE_HEADER,
    proxy_credentials,
)

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.robotstxt import RobotParser

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 522, 524})
MAX_RETRY_AFTER = 60.0


class RecorderMiddleware:
    """Every request through the recorder, attributed to the spider's source by the run's
    proxy credentials (never forwarded upstream: ``Proxy-Authorization`` is hop-by-hop; for
    HTTPS Scrapy sends it on the CONNECT only)."""

    def __init__(self, crawler: Crawler, proxy_url: str, secret: str | None = None) -> None:
        self.crawler = crawler
        self.proxy_url = proxy_url
        self.secret = secret
        self._credentials: bytes | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RecorderMiddleware:
        proxy = crawler.settings.get("ATTEST_RECORDER_URL")
        if not proxy:
            raise NotConfigured("no recorder")
        return cls(crawler, proxy, crawler.settings.get("ATTEST_RECORDER_SECRET"))

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        request.meta["proxy"] = self.proxy_url
        assert self.crawler.spider is not None
        if self.secret is None:
            request.headers[SOURCE_HEADER] = self.crawler.spider.name
            return
        if self._credentials is None:
            value = proxy_credentials(self.crawler.spider.name, self.secret)
            self._credentials = value.encode("ascii")
        request.headers[PROXY_AUTH_HEADER] = self._credentials

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if response.headers.get(RECORDER_ERROR_HEADER) == b"disk_full":
            stop_crawl(self.crawler, "disk_full")
            raise IgnoreRequest("recorder spool is full")
        if not response.headers.get(CAPTURE_ID_HEADER):
            log.error("response for %s did not come through the recorder", request.url)
        return response


def _retry_after(value: bytes | None) -> float | None:
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RetryAfterMiddleware:
    def __init__(self, max_retries: int, backoff: float) -> None:
        self.max_retries = max_retries
        self.backoff = backoff

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(
            crawler.settings.getint("ATTEST_RETRIES", 2),
            crawler.settings.getfloat("ATTEST_RETRY_BACKOFF", 1.0),
        )

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        delay = request.meta.pop("attest_retry_delay", 0)
        if delay:
            await asyncio.sleep(delay)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        info: dict[str, Any] | None = request.meta.get("attest")
        if info is None:
            return response
        reported = response.headers.get(OUTCOME_HEADER)
        if reported is not None:
            retryable = reported.decode() in {o.value for o in TRANSIENT_OUTCOMES}
        else:
            retryable = response.status in RETRY_STATUSES
        attempts: list[dict[str, Any]] = info.setdefault("attempts", [])
        if not retryable or len(attempts) >= self.max_retries:
            return response
        delay = _retry_after(response.headers.get("Retry-After"))
        if delay is None:
            delay = self.backoff * (2 ** len(attempts))
        elif delay > MAX_RETRY_AFTER:
            log.info(
                "not retrying %s: Retry-After %.0f s is over %.0f s",
                request.url,
                delay,
                MAX_RETRY_AFTER,
            )
            return response
        capture = response.headers.get(CAPTURE_ID_HEADER)
        attempts.append(
            {
                "status": response.status,
                "outcome": reported.decode() if reported else Outcome.HTTP_ERROR.value,
                "capture_id": capture.decode() if capture else None,
                "retry_after": delay,
            }
        )
        retry = request.replace(dont_filter=True)
        retry.meta["attest"] = dict(info, attempts=list(attempts))
        retry.meta["attest_retry_delay"] = delay
        retry.priority = request.priority + 1
        return retry


class RobotsOutcomeMiddleware(RobotsTxtMiddleware):
    def process_request_2(self, rp: RobotParser | None, request: Request) -> None:
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest:
            info = request.meta.get("attest")
            if info is not None:
                info["outcome"] = Outcome.ROBOTS_DISALLOWED.value
            raise
