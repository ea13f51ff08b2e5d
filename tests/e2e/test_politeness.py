"""Politeness as configured per source: requests in flight per host, and the delay between them."""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demoweb.http import FixtureServer, Reply, Request
from demoweb.news import NewsSite

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def slow_site() -> Iterator[FixtureServer]:
    site = NewsSite(articles=30)

    def handler(request: Request) -> Reply:
        reply = site(request)
        reply.delay = 0.15  # long enough for concurrent requests to overlap
        return reply

    server = FixtureServer(handler).start()
    yield server
    server.stop()


def crawl(server: FixtureServer, politeness: str, tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(
        "sources:\n"
        f'  - {{id: polite, kind: news, seeds: ["{server.origin}/"], scope: {{max_depth: 1, max_pages: 25}},\n'
        f"     politeness: {politeness}}}\n"
    )
    env = dict(os.environ, ATTEST_HOME=str(tmp_path / "home"), ATTEST_ALLOW_NETWORKS="127.0.0.0/8")
    env.pop("ATTEST_STORE", None)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "crawl", "--sources", str(registry)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("limit", [1, 3])
def test_requests_in_flight_per_host_never_exceed_the_limit(
    limit: int, slow_site: FixtureServer, tmp_path: Path
) -> None:
    crawl(slow_site, f"{{concurrency_per_host: {limit}}}", tmp_path)
    assert len(slow_site.started) > 20
    assert slow_site.max_in_flight == limit


def test_delay_spaces_out_requests_to_a_host(slow_site: FixtureServer, tmp_path: Path) -> None:
    crawl(slow_site, "{concurrency_per_host: 1, delay: 0.4}", tmp_path)
    starts = sorted(slow_site.started)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) > 10
    # Scrapy randomises the delay between 0.5x and 1.5x (0.2-0.6 s, mean 0.4 s); without it,
    # one request at a time would be spaced by the 0.15 s answer time alone. The gaps are
    # measured where requests arrive, so a busy machine can shave a few tens of milliseconds
    # off one of them (0.153 s was seen at load 8 on 2 cores): the bound allows 50 ms of that.
    assert min(gaps) >= 0.15
    assert statistics.median(gaps) >= 0.3
