"""The evidence commands on a small indexed archive built here: ``attest get`` says when the
capture it wrote was made (ISO 8601 UTC) and warns when that is far from the time asked."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.indexwarcs import WarcBuilder

from archive.indexdb import IndexDB
from archive.indexer import index_keys
from archive.store import FileStore, file_sha256

ROOT = Path(__file__).resolve().parents[1]
PAGE = "http://news.example/2024/05/flags.html"
OLD = datetime(2021, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)
NEW = datetime(2024, 5, 13, 10, 0, 0, 500000, tzinfo=UTC)


@dataclass
class Home:
    path: Path
    env: dict[str, str]

    def attest(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def indexed_home(tmp_path: Path, builder: WarcBuilder, key: str) -> Home:
    """A data home whose file store holds the builder's WARC under ``key``, indexed."""
    home = tmp_path / "home"
    store = FileStore(home / "store")
    path = builder.close()
    store.put_file(key, path, file_sha256(path))
    with IndexDB(str(home / "index.sqlite")) as db:
        results = index_keys(db, store, [key])
    assert not [r.error for r in results if r.error]
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ACTOR="tester")
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_TSA_URLS", "ATTEST_TRUST"):
        env.pop(name, None)
    return Home(home, env)


@pytest.fixture
def two_captures(tmp_path: Path) -> Home:
    """One page captured in March 2021 and in May 2024."""
    builder = WarcBuilder(tmp_path / "get.warc.gz", "get.warc.gz", start=OLD)
    builder.exchange(PAGE, b"<html><body>March 2021</body></html>", at=OLD)
    builder.exchange(PAGE, b"<html><body>May 2024</body></html>", at=NEW)
    return indexed_home(tmp_path, builder, "warcs/src/2024/05/13/get.warc.gz")


def test_get_prints_the_capture_time_as_iso_8601_utc(two_captures: Home, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    proc = two_captures.attest("get", PAGE, "--at", "2024-05-13T10:00:00Z", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == b"<html><body>May 2024</body></html>"
    assert "captured 2024-05-13T10:00:00.500000Z" in proc.stderr
    assert "warning" not in proc.stderr


def test_get_warns_when_the_closest_capture_is_far_from_the_time_asked(
    two_captures: Home, tmp_path: Path
) -> None:
    proc = two_captures.attest("get", PAGE, "--at", "2019-01-01", "-o", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p").read_bytes() == b"<html><body>March 2021</body></html>"
    assert "captured 2021-03-01T08:00:00.250000Z" in proc.stderr
    assert "warning: the closest capture was made 790 days 8 hours after the time asked " \
        "(2019-01-01T00:00:00.000000Z)" in proc.stderr
    # Written to stdout, the payload alone goes there; the warning still goes to stderr.
    proc = two_captures.attest("get", PAGE, "--at", "2025-06-01T10:00:00Z")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "<html><body>May 2024</body></html>"
    assert "383 days 23 hours before the time asked" in proc.stderr
