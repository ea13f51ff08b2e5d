"""Chain of custody: the append-only, hash-chained log of what was done to the evidence
(:mod:`.log`), its segments sealed into the store, signed and timestamped (:mod:`.seal`), and
the audit of the store against the index and the log (:mod:`.audit`).

May import :mod:`archive.index` (the log is kept in the index database), :mod:`archive.store`,
:mod:`archive.trust`, :mod:`archive.warc` and the shared vocabulary; never ingest, evidence or
serve.
"""
