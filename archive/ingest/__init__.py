"""A WARC's way in: the recorder's local spool, where WARCs are written and verified record by
record (:mod:`.spool`), shipping a verified WARC into the store with its custody entry
(:mod:`.ship`), and indexing stored WARCs (:mod:`.indexer`).

The crawlers (the recorder) and the ``index`` step call this. It may import custody, index,
store, warc and the shared vocabulary; never evidence or serve.
"""
