"""A small archive in a data home, stored and logged as ``attest crawl`` leaves it.

Two WARCs written with attest's own writer go into a file store under ``<home>/store``; each
gets a custody ``capture`` entry (its SHA-256, size and records, as the crawl's shipping step
writes it) and is indexed into ``<home>/index.sqlite`` (which logs ``index``). The second WARC,
a day later, holds a ``revisit`` of the first's post page, so a capture there depends on a
record of the other WARC, and a fresh page.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.ingest.indexer import index_warc
from archive.store import FileStore, file_sha256
from archive.warc.write import Block, RecordSpec
from support.indexwarcs import (
    GZIP_HTML,
    GZIP_URL,
    POST_URL,
    RUN_ID,
    START,
    Sample,
    WarcBuilder,
    sample_warc,
)

SAMPLE_KEY = "warcs/src/2026/11/28/sample-00000.warc.gz"
LATER_KEY = "warcs/src/2026/11/29/later-00000.warc.gz"
LATER_RUN_ID = "22222222-2222-4333-8444-555555555555"


@dataclass
class StoredArchive:
    home: Path
    store: FileStore
    db: IndexDB
    custody: CustodyLog
    sample: Sample
    revisit_id: str  # in LATER_KEY, its original in SAMPLE_KEY
    fresh_id: str  # a response in LATER_KEY that needs nothing else

    @property
    def keys(self) -> list[str]:
        return [SAMPLE_KEY, LATER_KEY]

    def path(self, key: str) -> Path:
        return self.store.root / key


def _later_warc(directory: Path, sample: Sample) -> tuple[Path, str, str]:
    builder = WarcBuilder(
        directory / "later-00000.warc.gz",
        "later-00000.warc.gz",
        run_id=LATER_RUN_ID,
        start=START + timedelta(days=1),
    )
    original = sample.post.response
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    revisit = builder.writer.write(
        RecordSpec(
            record_type="revisit",
            block=Block.from_bytes(head, payload_is_block=False),
            target_uri=POST_URL,
            content_type="application/http; msgtype=response",
            headers=[
                (
                    "WARC-Profile",
                    "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest",
                ),
                ("WARC-Refers-To", original.record_id),
                ("WARC-Refers-To-Target-URI", POST_URL),
                ("WARC-Payload-Digest", original.payload_digest or ""),
            ],
        )
    )
    fresh = builder.exchange(GZIP_URL, GZIP_HTML.replace(b"diesel", b"kerosene"), encoding="gzip")
    return builder.close(), revisit.record_id, fresh.response.record_id


def store_and_index(
    store: FileStore, db: IndexDB, custody: CustodyLog, key: str, path: Path
) -> None:
    """What the crawl does with a finished WARC: store it, log ``capture``, index it."""
    sha256 = file_sha256(path)
    stored = store.put_file(key, path, sha256)
    custody.append(
        "capture",
        stored.uri,
        {"sha256": sha256, "size": stored.size, "records": None, "run_id": RUN_ID},
        actor="test-crawler",
    )
    index_warc(db, store, key, custody=custody, sha256=sha256)


def stored_archive(tmp_path: Path) -> StoredArchive:
    home = tmp_path / "home"
    spool = tmp_path / "spool"
    spool.mkdir(parents=True)
    store = FileStore(home / "store")
    db = IndexDB(str(home / "index.sqlite"))
    custody = CustodyLog(db, store)
    sample = sample_warc(spool)
    later, revisit_id, fresh_id = _later_warc(spool, sample)
    store_and_index(store, db, custody, SAMPLE_KEY, sample.path)
    store_and_index(store, db, custody, LATER_KEY, later)
    custody.seal()
    return StoredArchive(home, store, db, custody, sample, revisit_id, fresh_id)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
