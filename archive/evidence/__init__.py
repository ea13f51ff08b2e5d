"""Evidence for a case: cases, claims and their schema (:mod:`.cases`), links made at run time
with their custody entries (:mod:`.claimlinks`), the captures a claim's links select
(:mod:`.select`), legal holds on them (:mod:`.holds`), the signed, timestamped
bundle (:mod:`.bundle`), its offline verification (:mod:`.verify`) and its report
(:mod:`.report`, with the HTML template in ``templates/``).

May import everything below it in ``archive/`` (custody, index, store, trust, warc, the shared
vocabulary); never ingest or serve.
"""
