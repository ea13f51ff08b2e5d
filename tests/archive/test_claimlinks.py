"""Claim links made at run time: each new link, and each withdrawal, has one custody entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.indexwarcs import GZIP_URL, IMAGE_URL, sample_warc

from archive.custody.log import CustodyLog
from archive.errors import ConfigError
from archive.evidence.cases import Case, load_case, run_time_links
from archive.evidence.claimlinks import record_link, withdraw_link
from archive.index.cdxj import IndexRow
from archive.index.db import IndexDB
from archive.ingest.indexer import index_keys
from archive.store import FileStore, file_sha256

KEY = "warcs/src/2026/11/28/sample-00000.warc.gz"


@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[tuple[IndexDB, CustodyLog, Case]]:
    sample = sample_warc(tmp_path)
    store = FileStore(tmp_path / "store")
    store.put_file(KEY, sample.path, file_sha256(sample.path))
    path = tmp_path / "case.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "id": "demo-case",
                "title": "Demo",
                "claims": [{"id": "C1", "text": "t", "source": "s"}],
            }
        )
    )
    with IndexDB(str(tmp_path / "index.sqlite")) as db:
        index_keys(db, store, [KEY])
        yield db, CustodyLog(db, store), load_case(path)


def row_of(db: IndexDB, record_type: str, url: str) -> IndexRow:
    everything = db.select(low="", high="\U0010ffff", exact=False)
    return next(r for r in everything if (r.record_type, r.url) == (record_type, url))


def test_a_new_link_is_logged_once(indexed: tuple[IndexDB, CustodyLog, Case]) -> None:
    db, custody, case = indexed
    page = row_of(db, "response", GZIP_URL)
    row, new = record_link(db, custody, case, "C1", page.record_id, annotator="ana", note="n")
    assert (row.record_id, new) == (page.record_id, True)
    again = record_link(db, custody, case, "C1", page.record_id, annotator="bo")
    assert again[1] is False
    [entry] = custody.for_object(page.record_id)
    assert (entry.action, entry.actor) == ("link", "ana")
    assert entry.details == {
        "case": "demo-case",
        "claim": "C1",
        "url": GZIP_URL,
        "note": "n",
        "record_type": "response",
    }


def test_the_entry_says_how_and_why_when_told(indexed: tuple[IndexDB, CustodyLog, Case]) -> None:
    db, custody, case = indexed
    image = row_of(db, "response", IMAGE_URL)
    record_link(
        db, custody, case, "C1", image.record_id, annotator="ana", any_record_reason="the logo",
        via="attest serve",
    )  # fmt: skip
    [entry] = custody.for_object(image.record_id)
    assert entry.details["via"] == "attest serve"
    assert entry.details["any_record_reason"] == "the logo"
    page = row_of(db, "response", GZIP_URL)
    record_link(db, custody, case, "C1", page.record_id, annotator="dag", name_record_type=False)
    [entry] = custody.for_object(page.record_id)
    assert entry.details == {"case": "demo-case", "claim": "C1", "url": GZIP_URL, "note": None}


def test_a_refused_link_logs_nothing(indexed: tuple[IndexDB, CustodyLog, Case]) -> None:
    db, custody, case = indexed
    image = row_of(db, "response", IMAGE_URL)
    with pytest.raises(ConfigError, match="--any-record --reason"):
        record_link(db, custody, case, "C1", image.record_id, annotator="ana")
    assert custody.for_object(image.record_id) == []


def test_a_withdrawal_is_logged_with_who_made_the_link(
    indexed: tuple[IndexDB, CustodyLog, Case],
) -> None:
    db, custody, case = indexed
    page = row_of(db, "response", GZIP_URL)
    record_link(db, custody, case, "C1", page.record_id, annotator="ana")
    record_id, was = withdraw_link(
        db, custody, case, "C1", page.record_id[10:-1], actor="bo", reason="wrong page"
    )
    assert (record_id, was.annotator) == (page.record_id, "ana")
    assert [link.active for link in run_time_links(db, case, "C1")] == [False]
    linked, unlink = custody.for_object(page.record_id)
    assert linked.action == "link"
    assert (unlink.action, unlink.actor) == ("unlink", "bo")
    assert unlink.details == {
        "case": "demo-case",
        "claim": "C1",
        "url": GZIP_URL,
        "reason": "wrong page",
        "linked_by": "ana",
        "linked_at": was.linked_at,
    }
    with pytest.raises(ConfigError, match="no active link"):
        withdraw_link(db, custody, case, "C1", page.record_id, actor="bo", reason="again")
    assert len(custody.for_object(page.record_id)) == 2
