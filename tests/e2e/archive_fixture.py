"""One captured archive shared by the retrieval tests (CLI, service, web page).

Four real runs into one data home: the news site twice (so URLs have two captures a few
seconds apart), an HTTPS origin (TLS chain recorded), and the browser over ``@alice`` and her
post pages (screenshots, rendered text, platform ids). Each run indexes its WARCs as it
uploads them, the way ``attest crawl`` always does.

``case_file`` is a case over that archive for the bundle tests: claim C1 cites a news article by
URL and day (two captures), C2 a browser-captured post by capture id, C3 a counter-statement that
was never captured (a gap).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import run_attest
from support.warcs import Rec, read_records, store_warcs

from demoweb import FixtureWeb

NEWS_ARTICLES = (3, 7)


@dataclass
class Archive:
    web: FixtureWeb
    home: Path
    env: dict[str, str]
    warcs: list[Path]
    records: list[Rec]

    @property
    def index(self) -> Path:
        return self.home / "index.sqlite"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.index) as conn:
            return list(conn.execute(sql, params).fetchall())

    def responses(self, url: str) -> list[Rec]:
        found = [r for r in self.records if r.type == "response" and r.target == url]
        assert found, f"no response record for {url}"
        return sorted(found, key=lambda r: r.headers["WARC-Date"])


@pytest.fixture(scope="session")
def retrieval(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    workdir = tmp_path_factory.mktemp("retrieval-web")
    with FixtureWeb(articles=12, releases=3, tls=True, workdir=workdir) as web:
        home = tmp_path_factory.mktemp("retrieval-home")
        assert web.ca is not None
        env = dict(
            os.environ,
            ATTEST_HOME=str(home),
            ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
            ATTEST_CA_BUNDLE=str(web.ca.ca_pem),
            ATTEST_ACTOR="test-runner",
        )
        for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_TOKENS"):
            env.pop(name, None)
        news = web.url("news", "")
        articles = [f"{news}/article/{n}.html" for n in NEWS_ARTICLES]
        runs = [
            ["crawl", f"{news}/", *articles, "--max-pages", "6", "--json"],
            ["crawl", f"{news}/", *articles, "--max-pages", "6", "--json"],
            ["crawl", web.url("secure", "/press/"), "--max-pages", "3", "--json"],
            ["crawl", "--browser", web.url("social", "/@alice"), "--max-pages", "12", "--json"],
        ]
        for i, args in enumerate(runs):
            if i == 1:
                time.sleep(1.1)  # a later second: a distinct memento of each URL
            proc = run_attest(args, env)
            assert proc.returncode == 0, f"attest {' '.join(args)}:\n{proc.stderr[-4000:]}"
        warcs = store_warcs(home / "store")
        yield Archive(web, home, env, warcs, read_records(warcs))


@pytest.fixture(scope="session")
def case_file(retrieval: Archive, tmp_path_factory: pytest.TempPathFactory) -> Path:
    post = retrieval.web.social.posts("alice")[0]
    post_rec = retrieval.responses(retrieval.web.url("social", post.permalink_path))[0]
    article = retrieval.web.url("news", f"/article/{NEWS_ARTICLES[0]}.html")
    day = retrieval.responses(article)[0].headers["WARC-Date"][:10]
    path = tmp_path_factory.mktemp("cases") / "test-case.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "id": "test-case",
                "title": "A test case",
                "claims": [
                    {"id": "C1", "text": "The article reports it.", "source": "news",
                     "evidence": [{"url": article, "from": day, "to": day,
                                   "selector": {"quote": retrieval.web.news.article_token(NEWS_ARTICLES[0])}}]},
                    {"id": "C2", "text": "Alice posted it.", "source": "social",
                     "evidence": [{"capture": post_rec.id}]},
                    {"id": "C3", "text": "It was denied.", "source": "a statement",
                     "kind": "counter-statement",
                     "evidence": [{"url": retrieval.web.url("news", "/never.html")}]},
                ],
            }
        )
    )  # fmt: skip
    return path
