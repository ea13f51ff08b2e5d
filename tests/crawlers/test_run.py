"""crawlers.orchestration.run: indexing a run's shipped WARCs, and what it reports as pending."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.indexwarcs import RUN_ID, WarcBuilder

import archive.ingest.ship as ship
from archive.errors import CustodyError
from archive.ingest.ship import ShippedWarc
from archive.store import FileStore, file_sha256
from crawlers.orchestration.run import index_runs


def shipped_warc(
    store: FileStore, tmp_path: Path, name: str, *, stored: bool = True
) -> ShippedWarc:
    builder = WarcBuilder(tmp_path / name, name)
    builder.exchange(f"https://example.org/{name}.html", b"<html><p>" + name.encode() + b"</p>")
    path = builder.close()
    key = f"warcs/src/2026/11/28/{name}"
    sha256 = file_sha256(path)
    if stored:
        store.put_file(key, path, sha256)
    return ShippedWarc(name, key, store.object_uri(key), sha256, path.stat().st_size, None)


def test_pending_is_exactly_the_warcs_not_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first WARC cannot be indexed (not in the store), the second is, and the custody log
    fails at the third: pending names the first (its own reason) and the third, never the
    second, which is indexed."""
    store = FileStore(tmp_path / "store")
    first = shipped_warc(store, tmp_path, "a.warc.gz", stored=False)
    second = shipped_warc(store, tmp_path, "b.warc.gz")
    third = shipped_warc(store, tmp_path, "c.warc.gz")
    real = ship.record_capture

    def record_capture(custody: Any, warc: ShippedWarc, *args: Any, **kwargs: Any) -> Any:
        if warc.key == third.key:
            raise CustodyError("the custody log is unavailable")
        return real(custody, warc, *args, **kwargs)

    monkeypatch.setattr(ship, "record_capture", record_capture)
    indexed, pending = index_runs(
        [(first, RUN_ID), (second, RUN_ID), (third, RUN_ID)],
        str(tmp_path / "index.sqlite"),
        store,
    )
    assert indexed == 1
    assert [key for key, _ in pending] == [first.key, third.key]
    assert "no such object" in pending[0][1]
    assert "custody log is unavailable" in pending[1][1]
