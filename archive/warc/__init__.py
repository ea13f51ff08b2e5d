"""WARC bytes: writing records (:mod:`.write`), reading and verifying them as a stream
(:mod:`.read`), undoing the HTTP codings of an archived body (:mod:`.decode`) and extracting a
page's visible text (:mod:`.text`).

The bottom of the archive: it imports only the shared vocabulary at ``archive/``'s root
(errors, failpoints). Everything that reads or writes a WARC goes through here.
"""
