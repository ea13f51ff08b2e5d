"""attest's archive: everything that keeps evidence once it has been fetched.

Folders by role, each importing only those below it (checked by the import-linter contracts in
pyproject.toml; docs/adr/0006-archive-layout.md says why this cut):

- :mod:`archive.serve`: the retrieval service (search, CDX, Memento, replay, actions)
- :mod:`archive.evidence`: cases, claims, holds, bundles, their verification and report
- :mod:`archive.ingest`: the spool, shipping WARCs into the store, indexing them
- :mod:`archive.custody`: the custody log, its sealed segments, the audit
- :mod:`archive.index`: CDXJ, the index database, queries, checked retrieval
- :mod:`archive.store`, :mod:`archive.trust`, :mod:`archive.warc`: object stores; signatures and
  timestamps; WARC bytes

The modules at this level (errors, dates, outcomes, logs, failpoints, schemaerrors, chromium) are
the vocabulary every folder shares. Nothing in ``archive`` imports Scrapy, Playwright, Twisted,
Airflow, warcprox, ``settings`` or ``crawlers``: it takes what it needs as arguments.
"""
