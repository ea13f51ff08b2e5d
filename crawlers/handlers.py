"""The download handler: Scrapy's HTTP/1.1 handler, lighter on connections to the recorder.

:class:`KeepAliveDownloadHandler` keeps a connection pool big enough for every request in
flight and reuses one proxy agent per proxy; the browser's handler
(:class:`crawlers.browser.handler.BrowserDownloadHandler`) builds on it. It subclasses Scrapy's
private agents (``_ScrapyAgent``, ``_ScrapyProxyAgent``): docs/adr/0005-third-party-internals.md
lists them, and tests/test_third_party_canaries.py checks they are still there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _ScrapyAgent,
    _ScrapyProxyAgent,
)
from scrapy.exceptions import ResponseDataLossError
from scrapy.http import Request, Response
from scrapy.utils._download_handlers import get_dataloss_msg, wrap_twisted_exceptions
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.url import add_http_if_no_scheme

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)


class _RecorderProxyAgent(_ScrapyProxyAgent):
    """Scrapy's agent for plain-HTTP requests through a proxy, with the proxy's endpoint made
    once: it is the same for every request."""

    _endpoint: Any = None

    def _getEndpoint(self, uri: Any) -> Any:
        if self._endpoint is None:
            self._endpoint = super()._getEndpoint(uri)  # type: ignore[no-untyped-call]
        return self._endpoint


class _ReusingAgent(_ScrapyAgent):
    """Scrapy's per-download agent, taking the proxy agent for the recorder from a cache
    instead of building one (URI parsing, endpoint, IDNA) for every request."""

    def __init__(self, *, proxy_agents: dict[tuple[str, float], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._proxy_agents = proxy_agents

    def _get_agent(self, request: Request, timeout: float) -> Any:
        proxy = request.meta.get("proxy")
        if (
            not proxy
            or request.meta.get("bindaddress")
            or self._bindAddress
            or urlparse_cached(request).scheme != "http"
        ):
            return super()._get_agent(request, timeout)
        agent = self._proxy_agents.get((proxy, timeout))
        if agent is None:
            from twisted.internet import reactor

            agent = self._proxy_agents[proxy, timeout] = _RecorderProxyAgent(
                reactor=reactor,
                proxyURI=add_http_if_no_scheme(proxy).encode("ascii"),
                contextFactory=self._contextFactory,
                connectTimeout=timeout,
                pool=self._pool,
            )
        return agent


class KeepAliveDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 download handler, lighter on connections to the recorder.

    - It keeps up to ``CONCURRENT_REQUESTS`` idle connections per host, not only
      ``CONCURRENT_REQUESTS_PER_DOMAIN``. Every request goes to one host, the recorder, and
      Scrapy 2.19 puts up to ``CONCURRENT_REQUESTS`` of them in flight (its per-domain limit
      is counted when a download starts, after the queue has been emptied). With the smaller
      pool, each connection returned beyond it was closed and a new one opened for the next
      request: for half of all requests at a per-host concurrency of 4, a TCP connection and
      a recorder handler thread each.
    - It reuses one proxy agent per proxy (see :class:`_ReusingAgent`): 3% of the crawler's
      CPU went into building one per request.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._pool.maxPersistentPerHost = max(
            self._pool.maxPersistentPerHost, crawler.settings.getint("CONCURRENT_REQUESTS")
        )
        self._proxy_agents: dict[tuple[str, float], Any] = {}

    async def download_request(self, request: Request) -> Response:
        # Scrapy's own, with _ReusingAgent (and without the deprecated spider attributes
        # download_maxsize/download_warnsize, which attest's spiders do not set).
        agent = _ReusingAgent(
            proxy_agents=self._proxy_agents,
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=self._default_maxsize,
            warnsize=self._default_warnsize,
            fail_on_dataloss=self._fail_on_dataloss,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        try:
            with wrap_twisted_exceptions():
                response: Response = await maybe_deferred_to_future(agent.download_request(request))
                return response
        except ResponseDataLossError:
            if not self._fail_on_dataloss_warned:
                log.warning(get_dataloss_msg(request.url))
                self._fail_on_dataloss_warned = True
            raise
