"""Finding captures: CDXJ lines and index rows (:mod:`.cdxj`), the index database (:mod:`.db`,
with what differs between SQLite and PostgreSQL in :mod:`.dialects`), queries over it
(:mod:`.query`), getting a capture back from the store, checked (:mod:`.retrieve`), the facts a
page's metadata records hold (:mod:`.pagemeta`) and each capture's exact links (:mod:`.links`).

May import :mod:`archive.warc`, :mod:`archive.store` and the shared vocabulary; never custody,
ingest, evidence or serve (the custody log lives in this database, so custody sits above it).
"""
