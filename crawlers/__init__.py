"""attest's crawlers: everything that fetches, on Scrapy's side of the pipeline.

By Scrapy role: :mod:`crawlers.spiders` (what to fetch), :mod:`crawlers.platforms` (adapters
for social platforms), :mod:`crawlers.browser` (capture in Chromium), :mod:`crawlers.middlewares`
(route through the recorder, retry, robots outcomes), :mod:`crawlers.handlers` (the download
handler), :mod:`crawlers.downloader`, :mod:`crawlers.pipelines` (the run's ledger),
:mod:`crawlers.extensions` (progress); with :mod:`crawlers.recorder` (the recording proxy and
the egress guard it connects through) and the shared pieces (items, links, scope, urls, the
source registry). :mod:`crawlers.orchestration` runs all of it for the command line and the
DAGs; nothing else here imports it.

May import :mod:`archive` and :mod:`settings`; never ``dags``, ``demoweb``, ``tests`` or ``cli``.
"""
