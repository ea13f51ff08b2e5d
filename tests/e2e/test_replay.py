"""Captures replayed with pywb: what attest stores is what a reader of the evidence sees.

Two real runs into one store: Scrapy over a few news pages (with two articles as seeds) and
the browser over the social profile ``@alice`` and its post pages, whose text only exists after
the page's script fetched ``/api/post/<id>``. Their WARCs go into a pywb collection served by
``wayback`` from the replay venv (tests/support/replay.py), and are read back through it: raw
(``id_``) replay against the stored records, and a real rendering of the rewritten replay in
Chromium, where pywb's client-side rewriting has to send the page's ``fetch()`` to the archive.

Then through ``attest serve``, over a small data home written with attest's own WARC writer:
two captures of one URL within one second, which the per-second Memento URI-M cannot tell
apart but each capture's own links (``/capture/<uuid>/replay``, ``/raw``) must; and a WARC whose
record bytes were changed in the store after indexing, which replay and raw must refuse.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import brotli
import pytest
from playwright.sync_api import Browser, expect
from support.browser import chromium, guarded_page
from support.cli import run_attest
from support.indexwarcs import POST_HTML, POST_URL, Exchange, WarcBuilder
from support.replay import PywbReplay, replay_venv, warc_timestamp
from support.seaweed import SeaweedServer
from support.serve import AttestServer
from support.storedarchive import SAMPLE_KEY, store_and_index, stored_archive
from support.warcs import Rec, read_records, store_warcs

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.index.links import capture_links
from archive.store import FileStore
from demoweb import FixtureWeb
from demoweb.social import SocialPost

pytestmark = pytest.mark.e2e

NEWS_ARTICLES = (3, 7)
RENDER_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def pywb_venv() -> Path:
    """Checked first, so a missing replay venv fails before any crawl is spent."""
    return replay_venv()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureWeb]:
    with FixtureWeb(articles=12, releases=3, workdir=tmp_path_factory.mktemp("replay-web")) as w:
        yield w


@pytest.fixture(scope="module")
def captured(
    pywb_venv: Path, web: FixtureWeb, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("replay-home")
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8")
    env.pop("ATTEST_STORE", None)
    news = web.url("news", "")
    articles = [f"{news}/article/{n}.html" for n in NEWS_ARTICLES]
    runs = [
        ["crawl", f"{news}/", *articles, "--max-pages", "5", "--json"],
        ["crawl", "--browser", web.url("social", "/@alice"), "--max-pages", "30", "--json"],
    ]
    for args in runs:
        proc = run_attest(args, env)
        assert proc.returncode == 0, f"attest {' '.join(args)}:\n{proc.stderr[-4000:]}"
    warcs = store_warcs(home / "store")
    assert warcs, "the runs stored no WARC"
    return {"home": home, "warcs": warcs, "records": read_records(warcs)}


@pytest.fixture(scope="module")
def replay(
    pywb_venv: Path, captured: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PywbReplay]:
    with PywbReplay(
        captured["warcs"], tmp_path_factory.mktemp("replay-pywb"), venv=pywb_venv
    ) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def response_for(records: list[Rec], url: str) -> Rec:
    found = [r for r in records if r.type == "response" and r.target == url]
    assert found, f"no response record for {url}"
    return found[0]


def decoded(body: bytes, content_encoding: str | None) -> bytes:
    if content_encoding == "gzip":
        return gzip.decompress(body)
    if content_encoding == "br":
        return bytes(brotli.decompress(body))
    assert content_encoding in (None, "identity"), content_encoding
    return body


def stored_header(rec: Rec, name: str) -> str | None:
    for line in rec.http_head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def captured_posts(web: FixtureWeb, records: list[Rec]) -> list[SocialPost]:
    targets = {r.target for r in records if r.type == "response"}
    posts = [p for p in web.social.posts("alice") if web.url("social", p.permalink_path) in targets]
    assert len(posts) >= 3, f"only {len(posts)} of @alice's post pages were captured"
    return posts


# --- the collection -----------------------------------------------------------------------
def test_pywb_indexes_every_response_and_resource_record(
    replay: PywbReplay, captured: dict[str, Any]
) -> None:
    """WARC/1.1, microsecond WARC-Dates, sha256 digests and urn: resources all index."""
    index = {(e["filename"], int(e["offset"])): e for e in replay.index()}
    wanted = [r for r in captured["records"] if r.type in ("response", "resource")]
    assert any(r.target and r.target.startswith("urn:view:") for r in wanted)
    for rec in wanted:
        entry = index.pop((rec.file.name, rec.offset), None)
        assert entry is not None, f"pywb did not index the {rec.type} record of {rec.target}"
        assert entry["url"] == rec.target
        assert entry["timestamp"] == warc_timestamp(rec.headers["WARC-Date"])
        assert entry["digest"] == rec.headers["WARC-Payload-Digest"]
        if rec.type == "response":
            assert entry["status"] == str(rec.http_status)
    assert not index, f"index entries that are no response or resource: {list(index.values())}"


# --- raw replay ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", NEWS_ARTICLES)
def test_news_article_replays_raw_with_its_captured_payload(
    replay: PywbReplay, captured: dict[str, Any], web: FixtureWeb, n: int
) -> None:
    url = web.url("news", f"/article/{n}.html")
    rec = response_for(captured["records"], url)
    encoding = stored_header(rec, "Content-Encoding")
    ts = warc_timestamp(rec.headers["WARC-Date"])

    status, headers, body = replay.get(url, ts)
    assert status == 200, replay.log_tail()
    assert body == decoded(rec.http_body, encoding)
    assert web.news.article_token(n) in body.decode("utf-8")
    assert headers["Memento-Datetime"]
    assert headers.get("X-Archive-Orig-Content-Encoding") == encoding

    # A client that accepts the stored encoding gets the stored bytes themselves.
    status, headers, body = replay.get(url, ts, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200
    assert headers.get("Content-Encoding") == encoding
    assert body == rec.http_body

    # No timestamp: the latest capture, which is this one (no attest metadata in between).
    status, _headers, body = replay.get(url)
    assert status == 200
    assert web.news.article_token(n) in body.decode("utf-8")


def test_news_article_replays_rewritten(
    replay: PywbReplay, captured: dict[str, Any], web: FixtureWeb
) -> None:
    n = NEWS_ARTICLES[0]
    url = web.url("news", f"/article/{n}.html")
    ts = warc_timestamp(response_for(captured["records"], url).headers["WARC-Date"])
    status, headers, body = replay.get(url, ts, modifier="mp_")
    assert status == 200
    assert headers.get_content_type() == "text/html"
    html = body.decode("utf-8")
    assert web.news.article_token(n) in html
    # Links now point into the archive, not at the origin.
    assert f"/{replay.collection}/{ts}mp_/{web.url('news', '/section/')}" in html


def test_social_post_page_and_its_xhr_replay_with_the_post_text(
    replay: PywbReplay, captured: dict[str, Any], web: FixtureWeb
) -> None:
    records = captured["records"]
    for post in captured_posts(web, records):
        page_url = web.url("social", post.permalink_path)
        page = response_for(records, page_url)
        ts = warc_timestamp(page.headers["WARC-Date"])

        status, headers, shell = replay.get(page_url, ts)
        assert status == 200, page_url
        assert headers.get_content_type() == "text/html"
        # The shell names the post; its text only arrives through the script's XHR.
        assert f'data-post="{post.post_id}"'.encode() in shell
        assert post.token.encode() not in shell

        # What the replayed page's fetch('/api/post/<id>') gets: the closest capture.
        api_url = web.url("social", f"/api/post/{post.post_id}")
        status, headers, body = replay.get(api_url, ts)
        assert status == 200, api_url
        assert headers.get_content_type() == "application/json"
        data = json.loads(body)
        assert data == web.social.post_json(post)
        assert post.token in data["text"]
        assert body == decoded(
            response_for(records, api_url).http_body,
            stored_header(response_for(records, api_url), "Content-Encoding"),
        )

        # The browser's own derivatives replay too, under their urn: URIs.
        status, _headers, dom = replay.get(f"urn:dom:{page_url}")
        assert status == 200
        assert post.token in dom.decode("utf-8")
        status, headers, _png = replay.get(f"urn:view:{page_url}")
        assert status == 200
        assert headers.get_content_type() == "image/png"

        # The latest capture of the page URL is the page, not attest's page metadata.
        status, headers, _ = replay.get(page_url)
        assert status == 200
        assert headers.get_content_type() == "text/html"


# --- rendered replay ----------------------------------------------------------------------
def render(browser: Browser, replay: PywbReplay, url: str, ts: str, selector: str) -> str:
    """Open the framed replay of ``url`` and return the archived page's text once ``selector``
    is in it. Every request that is not for the replay server is refused and counted: the live
    fixture web is still up, and the page must not reach it."""
    with guarded_page(browser, replay.origin) as (page, leaked):
        page.goto(replay.url_for(url, ts, modifier=""))
        # pywb's frame page loads the rewritten page (mp_) into #replay_iframe.
        archived = page.frame_locator("#replay_iframe")
        archived.locator(selector).first.wait_for(timeout=RENDER_TIMEOUT_MS)
        text = archived.locator("body").inner_text()
        inner = f"/{replay.collection}/{ts}mp_/{url}"
        assert any(f.url.endswith(inner) for f in page.frames), [f.url for f in page.frames]
    assert not leaked, f"replay reached outside the archive: {leaked}"
    return text


def test_rendered_replay_of_a_post_shows_its_text(
    replay: PywbReplay, captured: dict[str, Any], web: FixtureWeb, browser: Browser
) -> None:
    posts = captured_posts(web, captured["records"])
    # A long post: its permalink shows the full text, both tokens.
    post = next((p for p in posts if p.long_token), posts[0])
    url = web.url("social", post.permalink_path)
    ts = warc_timestamp(response_for(captured["records"], url).headers["WARC-Date"])
    text = render(browser, replay, url, ts, "article.post p.post-text")
    assert post.token in text
    if post.long_token:
        assert post.long_token in text


def test_rendered_replay_of_the_profile_shows_the_first_posts(
    replay: PywbReplay, captured: dict[str, Any], web: FixtureWeb, browser: Browser
) -> None:
    url = web.url("social", "/@alice")
    ts = warc_timestamp(response_for(captured["records"], url).headers["WARC-Date"])
    text = render(browser, replay, url, ts, "section.feed article.post")
    first = web.social.posts("alice")[0]
    assert first.token in text


# --- through attest serve: each capture's own links, and tampered records ---------------------

SAME_URL = "http://example.com/news/harbour.html"
SAME_KEY = "warcs/src/2026/11/28/same-00000.warc.gz"
GOLDEN = Path(__file__).resolve().parents[1] / "golden"
TAMPERED_KEY = "warcs/golden/2026/11/27/golden-00000.warc.gz"
#: In good.warc.gz and tampered.warc.gz alike (same offsets and lengths): the article, intact
#: in both, and the feed, one payload byte of which differs in tampered.warc.gz.
GOLDEN_ARTICLE = "http://news.example/2026/11/27/harbour-oil-spill.html"
GOLDEN_FEED = "http://news.example/live/harbour-feed.txt"


@dataclass
class ExactArchive:
    home: Path
    env: dict[str, str]
    captures: list[Exchange]  # SAME_URL, in one second, bodies differ
    feed: Rec  # as indexed; its bytes in the store now fail their digests
    tampered_feed: Rec  # as the store holds it
    article: Rec  # the same WARC's other record, intact


def version_text(n: int) -> str:
    return f"Version {n} of the harbour story"


@pytest.fixture(scope="module")
def exact_archive(pywb_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> ExactArchive:
    root = tmp_path_factory.mktemp("exact")
    home = root / "home"
    store = FileStore(home / "store")
    db = IndexDB(str(home / "index.sqlite"))
    custody = CustodyLog(db, store)
    builder = WarcBuilder(root / "same-00000.warc.gz", "same-00000.warc.gz")
    second = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
    captures = [
        builder.exchange(
            SAME_URL,
            f"<html><body><h1>{version_text(n)}</h1></body></html>".encode(),
            at=second.replace(microsecond=micros),
        )
        for n, micros in ((1, 250_000), (2, 750_000))
    ]
    store_and_index(store, db, custody, SAME_KEY, builder.close())
    # Indexed as it was written, then changed in the store: what a tampered bucket holds.
    copy = root / "golden-00000.warc.gz"  # the store may hard-link what it is given
    copy.write_bytes((GOLDEN / "good.warc.gz").read_bytes())
    store_and_index(store, db, custody, TAMPERED_KEY, copy)
    db.close()
    stored = store.root / TAMPERED_KEY
    stored.unlink()
    stored.write_bytes((GOLDEN / "tampered.warc.gz").read_bytes())
    good = {r.target: r for r in read_records([GOLDEN / "good.warc.gz"]) if r.type == "response"}
    bad = {r.target: r for r in read_records([stored]) if r.type == "response"}
    assert bad[GOLDEN_FEED].http_body != good[GOLDEN_FEED].http_body
    env = dict(os.environ, ATTEST_HOME=str(home))
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_TOKENS"):
        env.pop(name, None)
    return ExactArchive(
        home, env, captures, good[GOLDEN_FEED], bad[GOLDEN_FEED], good[GOLDEN_ARTICLE]
    )


@pytest.fixture(scope="module")
def exact_server(
    exact_archive: ExactArchive, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AttestServer]:
    with AttestServer(exact_archive.env, workdir=tmp_path_factory.mktemp("exact-serve")) as srv:
        yield srv


def uuid_of(record_id: str) -> str:
    return record_id.removeprefix("<urn:uuid:").removesuffix(">")


def test_captures_in_one_second_each_have_their_own_links(
    exact_server: AttestServer, exact_archive: ExactArchive
) -> None:
    first, second = exact_archive.captures
    assert warc_timestamp(first.response.date) == warc_timestamp(second.response.date)
    # The per-second URI-M is one link for both: it gives the first of the second.
    ts = warc_timestamp(first.response.date)
    shared = exact_server.get(f"/web/{ts}id_/{SAME_URL}")
    assert shared.status == 200
    assert version_text(1).encode() in shared.body
    for n, capture in enumerate(exact_archive.captures, start=1):
        record_id = capture.response.record_id
        uuid = uuid_of(record_id)
        links = capture_links(record_id)
        assert links["replay"] == f"/capture/{uuid}/replay"
        assert links["raw"] == f"/capture/{uuid}/raw"
        meta = exact_server.get(f"/api/capture/{uuid}")
        assert meta.status == 200, meta.text
        details = json.loads(meta.text)
        assert (details["replay"], details["raw"], details["page"]) == (
            links["replay"], links["raw"], links["page"]
        )
        # raw: exactly this record's payload, as archived.
        raw = exact_server.get(links["raw"])
        assert raw.status == 200, raw.text
        assert raw.body == capture.body
        assert raw.headers["Attest-Record-Id"] == record_id
        # replay: pywb's frame under the capture's own prefix, then exactly this record.
        replay = exact_server.get(links["replay"])
        assert replay.status == 302
        frame = replay.headers["Location"]
        assert frame == f"/capture/{uuid}/web/{ts}/{SAME_URL}"
        page = exact_server.get(frame.replace(f"/{ts}/", f"/{ts}mp_/"))
        assert page.status == 200, page.text
        text = page.body.decode("utf-8", "replace")
        assert version_text(n) in text
        assert version_text(3 - n) not in text
    # The TimeMap lists both, each with a URI-M of its own that gives exactly it.
    timemap = exact_server.get(f"/web/timemap/link/{SAME_URL}").text
    uris = re.findall(r'<([^>]+)>; rel="[^"]*memento"; datetime', timemap)
    assert uris == [
        f"{exact_server.base}/web/{ts}/{SAME_URL}",
        f"{exact_server.base}/capture/{uuid_of(second.response.record_id)}/web/{ts}/{SAME_URL}",
    ], timemap
    for n, uri in enumerate(uris, start=1):
        got = exact_server.get(uri.removeprefix(exact_server.base).replace(f"/{ts}/", f"/{ts}id_/"))
        assert got.status == 200
        assert version_text(n).encode() in got.body
        assert f"<{uri}>" in got.headers["Link"]
    # The lookup page's timeline links each capture, not its second.
    lookup = exact_server.get(f"/ui/lookup?url={SAME_URL}")
    hrefs = re.findall(r'class="replay" href="([^"]+)"', lookup.text)
    assert hrefs == [capture_links(c.response.record_id)["replay"] for c in exact_archive.captures]


def test_rendered_exact_replay_shows_that_capture(
    exact_server: AttestServer, exact_archive: ExactArchive, browser: Browser
) -> None:
    for n, capture in enumerate(exact_archive.captures, start=1):
        link = capture_links(capture.response.record_id, exact_server.base)["replay"]
        with guarded_page(browser, exact_server.base) as (page, leaked):
            page.goto(link)
            archived = page.frame_locator("#replay_iframe")
            expect(archived.locator("h1")).to_have_text(version_text(n), timeout=20_000)
            expect(page.locator("#second-navbar")).to_contain_text(
                "11/28/2026, 10:00:00", timeout=20_000
            )
        assert not leaked, f"replay reached outside the service: {leaked}"


def test_a_record_that_fails_its_digests_is_refused_by_replay_and_raw(
    exact_server: AttestServer, exact_archive: ExactArchive
) -> None:
    feed, article = exact_archive.feed, exact_archive.article
    uuid = uuid_of(feed.id)
    ts = warc_timestamp(feed.headers["WARC-Date"])
    for path in (
        f"/capture/{uuid}/raw",
        f"/web/{ts}id_/{GOLDEN_FEED}",
        f"/web/{ts}mp_/{GOLDEN_FEED}",
        f"/web/{ts}/{GOLDEN_FEED}",
        f"/capture/{uuid}/web/{ts}mp_/{GOLDEN_FEED}",
        f"/api/capture/{uuid}",
    ):
        answer = exact_server.get(path)
        assert answer.status == 500, (path, answer.status, answer.text[:300])
        assert "integrity check failed" in answer.text, path
        assert feed.id in answer.text, path
        assert exact_archive.tampered_feed.http_body not in answer.body
    # The replay link leads to the frame, which is refused as well; a browser gets a page.
    frame = exact_server.get(f"/capture/{uuid}/replay").headers["Location"]
    page = exact_server.get(frame, {"Accept": "text/html"})
    assert page.status == 500
    assert page.headers["Content-Type"].startswith("text/html")
    assert "integrity check failed" in page.text
    # Each refusal is logged at ERROR, naming the record.
    assert re.search(r'"level": "error".*integrity check failed.*' + re.escape(feed.id),
                     exact_server.log_tail(20_000)), exact_server.log_tail()  # fmt: skip
    # The WARC's other record is intact and still served.
    good = exact_server.get(f"/capture/{uuid_of(article.id)}/raw")
    assert good.status == 200
    assert good.body == article.http_body


def test_replay_from_s3_reads_the_indexed_version_not_a_later_one(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, pywb_venv: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """pywb reads records through the service, as the object versions the index recorded: a
    later version put under the same key (one byte changed) changes nothing a reader sees."""
    home = tmp_path / "home"
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
               ATTEST_STORE=f"s3://{s3_bucket}/evidence", **seaweedfs.env())  # fmt: skip
    for name in ("ATTEST_INDEX", "ATTEST_TOKENS", "ATTEST_S3_OBJECT_LOCK_DAYS"):
        env.pop(name, None)
    press = fixture_web.url("ngo", "/press/")
    crawl = run_attest(["crawl", press, "--max-pages", "1", "--depth", "0", "--json"], env)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    (key,) = [w["key"] for w in json.loads(crawl.stdout)["warcs"]]
    client = seaweedfs.client()
    obj = f"evidence/{key}"
    original = client.get_object(Bucket=s3_bucket, Key=obj)["Body"].read()
    copy = tmp_path / "original.warc.gz"
    copy.write_bytes(original)
    (rec,) = [r for r in read_records([copy]) if r.type == "response" and r.target == press]
    ts = warc_timestamp(rec.headers["WARC-Date"])
    uuid = uuid_of(rec.id)
    # A later version under the same key: one byte of the page's record changed.
    changed = bytearray(original)
    changed[rec.offset + 200] ^= 0x01
    client.put_object(Bucket=s3_bucket, Key=obj, Body=bytes(changed))
    with AttestServer(env, workdir=tmp_path) as srv:
        for path in (f"/capture/{uuid}/raw", f"/web/{ts}id_/{press}"):
            got = srv.get(path, {"Accept-Encoding": stored_header(rec, "Content-Encoding") or "identity"})
            assert got.status == 200, (path, got.status, got.text[:500], srv.log_tail())
            assert got.body == rec.http_body, path
        page = srv.get(f"/capture/{uuid}/web/{ts}mp_/{press}")
        assert page.status == 200, page.text[:500]
        assert srv.pywb().environ().keys().isdisjoint(
            {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        ), "pywb holds the store's credentials"


def test_a_revisit_replays_its_original_and_is_refused_when_the_original_fails(
    pywb_venv: Path, tmp_path: Path
) -> None:
    """A revisit's payload is its original's: both records are checked before it is served."""
    archive = stored_archive(tmp_path)
    archive.db.close()
    env = dict(os.environ, ATTEST_HOME=str(archive.home))
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_TOKENS"):
        env.pop(name, None)
    revisit = uuid_of(archive.revisit_id)
    original = archive.sample.post.response
    with AttestServer(env, workdir=tmp_path) as srv:
        frame = srv.get(f"/capture/{revisit}/replay").headers["Location"]
        assert frame.endswith(f"/{POST_URL}")
        # pywb's raw (id_) replay of the revisit: the original's payload, as archived.
        page_path = re.sub(r"/web/(\d{14})/", r"/web/\1id_/", frame)
        page = srv.get(page_path, {"Accept-Encoding": "identity"})
        assert page.status == 200, page.text[:500]
        assert page.body == POST_HTML
        # The original's record changed in the store: the revisit is refused too.
        stored = archive.path(SAMPLE_KEY)
        data = bytearray(stored.read_bytes())
        data[original.offset + original.length // 2] ^= 0x01
        stored.unlink()
        stored.write_bytes(bytes(data))
        refused = srv.get(page_path)
        assert refused.status == 500, refused.text[:500]
        assert "integrity check failed" in refused.text
        assert original.record_id in refused.text
