"""Browser capture of the fixture social site, read back record by record.

One real run (``attest crawl --sources``: recorder, Scrapy, Chromium through the recorder, file
store) over every fixture profile; then the posts, their metadata, the tokens that only exist
after JavaScript, scrolling or a click, the screenshots, the outcomes of unavailable pages, and
the records of the browser's own traffic are checked against the WARCs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_attest
from support.warcs import Rec, read_records, store_warcs

from archive.warc.read import verify_warc
from crawlers.recorder.tlschain import CHAIN_CONTENT_TYPE as CHAIN
from demoweb import FixtureWeb
from demoweb.http import FixtureServer
from demoweb.probes import ITEM_TOKENS, SIMPLE_TOKEN, TICKER_TOKEN, CorsApi, ProbeSite
from demoweb.social import Profile, SocialSite

pytestmark = pytest.mark.e2e

PROFILES = ("alice", "bob", "carol", "dave", "erin")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureWeb]:
    fixture = FixtureWeb(
        articles=5, releases=3, tls=True, keep_log=True, workdir=tmp_path_factory.mktemp("ca")
    )
    fixture.start()
    yield fixture
    fixture.stop()


def _env(home: Path, web: FixtureWeb) -> dict[str, str]:
    hosts = home / "hosts"
    hosts.write_text("127.0.0.1 secure.fixture.test\n")
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_HOSTS_FILE=str(hosts),
        ATTEST_CA_BUNDLE=str(web.ca.ca_pem) if web.ca else "",
    )
    env.pop("ATTEST_STORE", None)
    return env


@pytest.fixture(scope="module")
def crawl(web: FixtureWeb, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("browser-home")
    social = web.url("social", "")
    registry = home / "sources.yaml"
    seeds = "\n".join(f'      - "{social}/@{h}"' for h in PROFILES)
    registry.write_text(
        f"""
sources:
  - id: social
    kind: profile
    seeds:
{seeds}
    profile: {{platform: generic, max_posts: 100}}
    politeness: {{concurrency_per_host: 2}}
"""
    )
    proc = run_attest(["crawl", "--sources", str(registry), "--json"], _env(home, web))
    assert proc.returncode == 0, proc.stderr[-4000:]
    warcs = store_warcs(home / "store")
    records = read_records(warcs)
    pages = {}
    for rec in records:
        if rec.type == "metadata" and "attest-page" in rec.headers.get("Content-Type", ""):
            pages[rec.json()["url"]] = (rec, rec.json())
    return {
        "home": home,
        "summary": json.loads(proc.stdout),
        "warcs": warcs,
        "records": records,
        "by_id": {r.id: r for r in records},
        "pages": pages,
    }


def derivative(crawl: dict[str, Any], page: dict[str, Any], kind: str) -> Rec:
    record_id = page["capture"]["derivatives"][kind]["record_id"]
    rec: Rec = crawl["by_id"][record_id]
    return rec


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_every_post_is_its_own_capture_with_its_platform_metadata(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    social = web.url("social", "")
    for handle in ("alice", "bob"):
        for post in web.social.posts(handle):
            url = social + post.permalink_path
            assert url in crawl["pages"], f"{url} was not captured as a page"
            rec, page = crawl["pages"][url]
            meta = page["post"]
            assert meta["platform"] == "generic"
            assert meta["account"] == handle
            assert meta["post_id"] == post.post_id
            assert meta["found_on"] == f"{social}/@{handle}"
            if post.removed:
                assert page["outcome"] == "removed"
                continue
            assert page["outcome"] == "captured"
            # The platform's own timestamp, as the post page shows it.
            assert meta["platform_time"] == post.created_at
            assert meta["platform_time_shown"] == post.shown_time
            response = crawl["by_id"][rec.headers["WARC-Concurrent-To"]]
            assert response.type == "response"
            assert response.target == url
            assert response.headers["WARC-Date"]
            # The hashes in the metadata are those of the records they name.
            for kind in ("view", "dom", "text"):
                derived = derivative(crawl, page, kind)
                assert (
                    hashlib.sha256(derived.block).hexdigest()
                    == (page["capture"]["derivatives"][kind]["sha256"])
                )


def test_tokens_that_need_javascript_scrolling_or_clicks_are_captured(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    social = web.url("social", "")
    for handle in ("alice", "bob"):
        _rec, feed = crawl["pages"][f"{social}/@{handle}"]
        dom = derivative(crawl, feed, "dom").block.decode()
        text = derivative(crawl, feed, "text").block.decode()
        posts = web.social.posts(handle)
        # Beyond the first page: only after scrolling (alice) or "Show more" (bob).
        assert len(posts) > 6
        for post in posts:
            assert post.token in dom, f"{post.token} not in the feed's DOM"
            assert post.token in text, f"{post.token} not in the feed's visible text"
            if post.long_token:
                # Only after the post's "more" control was clicked.
                assert post.long_token in dom, f"{post.long_token} (expanded text) missing"
        # The shell never holds post text: the tokens came with the API responses.
        shell = crawl["by_id"][_rec.headers["WARC-Concurrent-To"]]
        assert posts[0].token.encode() not in shell.block
        api = b"".join(
            r.http_body
            for r in crawl["records"]
            if r.type == "response" and f"/api/profile/{handle}/posts" in (r.target or "")
        )
        for post in posts:
            assert post.token.encode() in api
    behaviors = {
        b["behavior"]: b for b in crawl["pages"][f"{social}/@bob"][1]["capture"]["behaviors"]
    }
    assert behaviors["load_more"]["clicks"] >= 2
    assert behaviors["expand_truncated"]["clicks"] >= 1


def test_post_pages_hold_their_full_text(crawl: dict[str, Any], web: FixtureWeb) -> None:
    social = web.url("social", "")
    for post in web.social.posts("alice"):
        _rec, page = crawl["pages"][social + post.permalink_path]
        dom = derivative(crawl, page, "dom").block.decode()
        assert post.token in dom
        if post.long_token:
            assert post.long_token in dom


def test_lazy_images_were_fetched_and_recorded(crawl: dict[str, Any], web: FixtureWeb) -> None:
    social = web.url("social", "")
    fetched = {r.target for r in crawl["records"] if r.type == "response"}
    images = [p.image for p in web.social.posts("alice") if p.image]
    kinds = {p.lazy_kind for p in web.social.posts("alice") if p.image}
    assert kinds == {"data-src", "loading"}
    for image in images:
        assert f"{social}{image}" in fetched, f"lazy image {image} not captured"


def test_screenshots_are_full_page_pngs(crawl: dict[str, Any], web: FixtureWeb) -> None:
    social = web.url("social", "")
    _rec, feed = crawl["pages"][f"{social}/@alice"]
    shot = derivative(crawl, feed, "view")
    width, height = png_size(shot.block)
    assert width == 1280
    assert height == feed["capture"]["page_height"]
    assert height > 900 * 3, "the whole scrolled feed, not the viewport"
    assert shot.headers["Content-Type"] == "image/png"


def test_derivatives_are_labelled_and_linked_to_the_page_response(
    crawl: dict[str, Any],
) -> None:
    for url, (rec, page) in crawl["pages"].items():
        if page["outcome"] in ("captured", "removed", "suspended", "login_wall", "rate_limited"):
            response_id = rec.headers["WARC-Concurrent-To"]
            for kind, ctype in (
                ("view", "image/png"),
                ("dom", "text/html"),
                ("text", "text/plain"),
            ):
                derived = derivative(crawl, page, kind)
                assert derived.type == "resource"
                assert derived.target == f"urn:{kind}:{url}"
                assert derived.headers["Content-Type"].startswith(ctype)
                assert derived.headers["WARC-Concurrent-To"] == response_id


def test_unavailable_pages_are_classified_not_counted_as_content(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    social = web.url("social", "")
    expected = {"carol": "suspended", "dave": "rate_limited", "erin": "login_wall"}
    for handle, outcome in expected.items():
        assert crawl["pages"][f"{social}/@{handle}"][1]["outcome"] == outcome
    removed = [p for p in web.social.posts("bob") if p.removed]
    assert removed
    for post in removed:
        assert crawl["pages"][social + post.permalink_path][1]["outcome"] == "removed"
    outcomes = crawl["summary"]["outcomes"]
    assert outcomes["suspended"] == 1
    assert outcomes["rate_limited"] == 1
    assert outcomes["login_wall"] == 1
    assert outcomes["removed"] == len(removed)
    posts = sum(len(web.social.posts(h)) for h in ("alice", "bob")) - len(removed)
    # the feeds of alice and bob, and each of their available posts
    assert outcomes["captured"] == posts + 2
    # The rate-limited feed's 429 (with its Retry-After) is in the WARC as sent.
    limited = [
        r
        for r in crawl["records"]
        if r.type == "response" and (r.target or "").endswith("/api/profile/dave/posts?cursor=0")
    ]
    assert limited
    assert limited[0].http_status == 429
    assert b"Retry-After: 3600" in limited[0].http_head


def test_browser_traffic_records_pass_the_same_checks(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    for path in crawl["warcs"]:
        verdict = verify_warc(path)
        assert verdict.ok, verdict
    server = web.servers["social"]
    sent: dict[str, set[tuple[bytes, bytes]]] = {}
    for _method, target, head, body in server.sent:
        sent.setdefault(target, set()).add((head, body))
    origin = server.origin
    checked = 0
    for rec in crawl["records"]:
        if rec.type != "response" or not (rec.target or "").startswith(origin):
            continue
        path = rec.target[len(origin) :] if rec.target else ""
        assert (rec.http_head, rec.http_body) in sent[path], f"{path} differs from the wire"
        assert rec.headers["WARC-IP-Address"] == "127.0.0.1"
        checked += 1
    assert checked > 50
    # Only the pages' own traffic is evidence: the browser's background services (clock sync,
    # updates) are refused by the recorder and leave no record.
    foreign = {
        r.target
        for r in crawl["records"]
        if r.target and r.target.startswith("http") and not r.target.startswith(origin)
    }
    assert foreign == set()


def test_warcinfo_says_how_pages_were_rendered(crawl: dict[str, Any]) -> None:
    infos = [r for r in crawl["records"] if r.type == "warcinfo"]
    assert infos
    text = infos[0].block.decode()
    for field in (
        "browser: Chromium",
        "browser-automation: playwright 1.",
        "browser-viewport: 1280x900",
        "browser-user-agent:",
        "browser-profile: fresh context per page",
        "browser-timezone: UTC",
        "browser-locale: en-US",
    ):
        assert field in text, field


def test_capture_one_page_prints_its_id_time_and_hashes(web: FixtureWeb, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    post = web.social.posts("alice")[0]
    url = web.url("social", post.permalink_path)
    proc = run_attest(["capture", "--browser", url], _env(home, web))
    assert proc.returncode == 0, proc.stderr[-3000:]
    # "  <label>  <value>": labels and values are separated by two spaces or more.
    lines = dict(
        re.split(r"\s{2,}", line.strip(), maxsplit=1)
        for line in proc.stdout.splitlines()
        if line.startswith("  ") and re.search(r"\S\s{2,}\S", line.strip())
    )
    first = proc.stdout.splitlines()[0].split()
    assert first[0] == "capture"
    assert first[2] == "captured"
    records = read_records(store_warcs(home / "store"))
    response = next(r for r in records if r.id == first[1])
    assert response.type == "response"
    assert response.target == url
    assert lines["time"] == response.headers["WARC-Date"]
    payload = lines["payload sha256"]
    assert response.headers["WARC-Payload-Digest"] == f"sha256:{payload}"
    assert hashlib.sha256(response.http_body).hexdigest() == payload
    assert response.headers["WARC-Block-Digest"] == f"sha256:{lines['record sha256']}"
    shot_hash = lines["view sha256"].split()[0]
    shot = next(r for r in records if r.target == f"urn:view:{url}")
    assert hashlib.sha256(shot.block).hexdigest() == shot_hash
    assert post.token.encode() in next(r for r in records if r.target == f"urn:dom:{url}").block


def test_capture_over_https_goes_through_the_recorder(web: FixtureWeb, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    port = web.servers["secure"].port
    url = f"https://secure.fixture.test:{port}/press/"
    proc = run_attest(["capture", "--browser", url], _env(home, web))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(store_warcs(home / "store"))
    response = next(r for r in records if r.type == "response" and r.target == url)
    assert response.http_status == 200
    assert b"<h1>Press releases</h1>" in response.http_body
    chain = [r for r in records if r.type == "metadata" and r.headers.get("Content-Type") == CHAIN]
    assert chain, "the origin's certificate chain is recorded"
    assert any(r.target == f"urn:view:{url}" for r in records)


def test_a_news_source_marked_browser_is_rendered_and_followed(
    web: FixtureWeb, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    news = web.url("news", "")
    registry = home / "sources.yaml"
    registry.write_text(
        f"""
sources:
  - id: js-news
    kind: news
    browser: true
    seeds: ["{news}/"]
    scope: {{max_depth: 1, max_pages: 4}}
"""
    )
    proc = run_attest(["crawl", "--sources", str(registry), "--json"], _env(home, web))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(store_warcs(home / "store"))
    pages = [
        r.json()
        for r in records
        if r.type == "metadata" and "attest-page" in r.headers.get("Content-Type", "")
    ]
    assert len(pages) == 4, "the seed and the links it led to, up to max_pages"
    for page in pages:
        assert page["capture"]["method"] == "browser"
        assert any(r.target == f"urn:view:{page['url']}" for r in records)
        # Requisites came with the browser, each recorded once per page load.
        for url in page["requisites"]:
            assert any(r.type == "response" and r.target == url for r in records), url


def test_the_browser_is_restarted_and_retired_ones_closed(web: FixtureWeb, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = dict(_env(home, web), ATTEST_BROWSER_RECYCLE="4", ATTEST_BROWSER_CONCURRENCY="2")
    proc = run_attest(["crawl", "--browser", web.url("social", "/@alice"), "--json"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    pages = len(web.social.posts("alice")) + 1
    assert summary["outcomes"] == {"captured": pages}
    logs = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    started = [e for e in logs if e["message"] == "browser started"]
    closed = [e for e in logs if e["message"] == "retired browser closed"]
    # A new browser every 4 pages; each one retired is closed once its last page is done,
    # while the crawl goes on (memory stays flat), not only at the end.
    assert len(started) == -(-pages // 4)
    assert len(closed) == len(started) - 1
    assert all(e["pages_so_far"] < pages for e in closed)


def test_a_seed_marked_browser_and_a_pdf_print(web: FixtureWeb, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    news = web.url("news", "")
    post = web.social.posts("alice")[0]
    post_url = web.url("social", post.permalink_path)
    registry = home / "sources.yaml"
    registry.write_text(
        f"""
sources:
  - id: mixed-news
    kind: news
    seeds:
      - {{url: "{news}/article/1.html", browser: true}}
      - "{news}/article/2.html"
    scope: {{max_depth: 0}}
  - id: printed
    kind: profile
    seeds: ["{post_url}"]
    profile: {{pdf: true}}
"""
    )
    proc = run_attest(["crawl", "--sources", str(registry), "--json"], _env(home, web))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_records(store_warcs(home / "store"))
    pages = {
        r.json()["url"]: r.json()
        for r in records
        if r.type == "metadata" and "attest-page" in r.headers.get("Content-Type", "")
    }
    # How each page was captured is its own, not the run's: one run, two methods.
    rendered = pages[f"{news}/article/1.html"]["capture"]
    fetched = pages[f"{news}/article/2.html"]["capture"]
    assert fetched["method"] == "crawler"
    assert fetched["software"].startswith("Scrapy 2.")
    assert " via attest recorder " in fetched["software"]
    assert not {"browser", "viewport", "behaviors"} & set(fetched)
    assert rendered["method"] == "browser"
    assert rendered["browser"].startswith("Chromium ")
    assert rendered["software"].startswith(rendered["browser"] + " via attest recorder ")
    assert rendered["automation"].startswith("playwright 1.")
    assert rendered["viewport"] == "1280x900"
    assert rendered["user_agent"]
    assert "lazy_images" in {b["behavior"] for b in rendered["behaviors"]}
    assert rendered["complete"] is True
    assert rendered["wait"]["network_settled"] is True
    assert any(r.target == f"urn:view:{news}/article/1.html" for r in records)
    assert not any(r.target == f"urn:view:{news}/article/2.html" for r in records)
    printed = next(r for r in records if r.target == f"urn:pdf:{post_url}")
    assert printed.type == "resource"
    assert printed.headers["Content-Type"] == "application/pdf"
    assert printed.block.startswith(b"%PDF-")
    assert printed.id == pages[post_url]["capture"]["derivatives"]["pdf"]["record_id"]


@pytest.fixture
def probe_servers() -> Iterator[tuple[FixtureServer, FixtureServer]]:
    page, api = FixtureServer(ProbeSite(), keep_log=True), FixtureServer(CorsApi(), keep_log=True)
    page.start()
    api.start()
    yield page, api
    page.stop()
    api.stop()


def test_a_cross_origin_api_with_a_preflight_is_fetched_and_recorded(
    web: FixtureWeb, tmp_path: Path, probe_servers: tuple[FixtureServer, FixtureServer]
) -> None:
    page, api = probe_servers
    home = tmp_path / "home"
    home.mkdir()
    url = f"{page.origin}/cors.html?api={api.origin}"
    proc = run_attest(["capture", "--browser", url], _env(home, web))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    records = read_records(store_warcs(home / "store"))
    # The page shows the API's data: both requests were made and answered.
    text = next(r for r in records if r.target == f"urn:text:{url}").block.decode()
    assert SIMPLE_TOKEN in text, text
    for item in ITEM_TOKENS:
        assert item in text
    exchanges = {
        (r.type, r.block.split(b" ", 1)[0] if r.type == "request" else b"", r.target)
        for r in records
        if r.type in ("request", "response")
    }
    items = f"{api.origin}/api/items"
    # The preflight, the POST and the simple GET, each with its request and response.
    assert ("request", b"OPTIONS", items) in exchanges
    assert ("request", b"POST", items) in exchanges
    assert ("request", b"GET", f"{api.origin}/api/simple") in exchanges
    preflight = next(
        r for r in records if r.type == "response" and r.target == items and r.http_status == 204
    )
    assert b"Access-Control-Allow-Headers: content-type, x-probe" in preflight.http_head
    # What was recorded as sent is byte for byte what each origin received: no header of
    # attest's, no proxy credentials.
    for server in (page, api):
        sent = [
            r.block for r in records if r.type == "request" and r.target.startswith(server.origin)
        ]
        assert sent
        for block in sent:
            assert block in server.received, block[:300]
            assert b"Attest-" not in block
            assert b"Proxy-Authorization" not in block
    # The simple GET went without a preflight (the API refuses preflights for it).
    assert not any(
        r.type == "request" and r.block.startswith(b"OPTIONS /api/simple") for r in records
    )


@pytest.fixture
def slow_social() -> Iterator[tuple[FixtureServer, SocialSite]]:
    """Two one-post profiles: one whose post API answers after 2 s, one whose never does."""
    site = SocialSite(
        (
            Profile("slowpoke", "Slow Example", posts=1, api_delay=2.0),
            Profile("stuck", "Stuck Example", posts=1, api_delay=3600.0),
        )
    )
    server = FixtureServer(site, keep_log=True).start()
    yield server, site
    server.stop()


def test_a_post_is_snapshotted_only_once_its_content_is_there(
    web: FixtureWeb, tmp_path: Path, slow_social: tuple[FixtureServer, SocialSite]
) -> None:
    server, site = slow_social
    home = tmp_path / "home"
    home.mkdir()
    slow, stuck = site.posts("slowpoke")[0], site.posts("stuck")[0]
    slow_url, stuck_url = (server.origin + p.permalink_path for p in (slow, stuck))
    registry = home / "sources.yaml"
    registry.write_text(
        f"""
sources:
  - id: posts
    kind: profile
    seeds: ["{slow_url}", "{stuck_url}"]
    profile: {{platform: generic}}
"""
    )
    # Generous bounds: the slow API (2 s) is well within the page's 12 s; the stuck one
    # never answers (the recorder gives up on it after 40 s and records a timeout).
    env = dict(_env(home, web), ATTEST_BROWSER_READY_TIMEOUT="12", ATTEST_DOWNLOAD_TIMEOUT="40")
    proc = run_attest(["crawl", "--sources", str(registry), "--json"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    records = read_records(store_warcs(home / "store"))
    pages = {
        r.json()["url"]: r.json()
        for r in records
        if r.type == "metadata" and "attest-page" in r.headers.get("Content-Type", "")
    }
    incomplete = pages[stuck_url]
    assert incomplete["outcome"] == "incomplete"
    assert incomplete["capture"]["complete"] is False
    missing = " ".join(incomplete["capture"]["wait"]["missing"])
    assert f"/api/post/{stuck.post_id}" in missing
    assert "content-ready selector" in missing
    # Tried twice, each time in a fresh context: the first attempt's response is recorded too.
    assert len(incomplete["capture"]["retried"]) == 1
    shells = [r for r in records if r.type == "response" and r.target == stuck_url]
    assert len(shells) == 2
    # What the page showed is kept (its placeholder), and never counted as captured.
    text = next(r for r in records if r.target == f"urn:text:{stuck_url}").block.decode()
    assert "Loading" in text
    assert stuck.token not in text
    assert summary["outcomes"]["incomplete"] == 1
    captured = pages[slow_url]
    assert captured["outcome"] == "captured"
    assert captured["capture"]["complete"] is True
    assert captured["capture"]["wait"]["content_ready"] is True
    dom = next(r for r in records if r.target == f"urn:dom:{slow_url}").block.decode()
    assert slow.token in dom


def test_a_page_that_never_stops_changing_is_complete_once_settled(
    web: FixtureWeb, tmp_path: Path, probe_servers: tuple[FixtureServer, FixtureServer]
) -> None:
    page, _api = probe_servers
    home = tmp_path / "home"
    home.mkdir()
    url = f"{page.origin}/ticker.html"
    env = dict(_env(home, web), ATTEST_BROWSER_READY_TIMEOUT="3")
    proc = run_attest(["capture", "--browser", url], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    records = read_records(store_warcs(home / "store"))
    meta = next(
        r.json()
        for r in records
        if r.type == "metadata" and "attest-page" in r.headers.get("Content-Type", "")
    )
    assert meta["outcome"] == "captured"
    wait = meta["capture"]["wait"]
    assert wait["complete"] is True
    assert wait["network_settled"] is True
    # Waited for until the bound, noted, and not held against the page.
    assert wait["dom_stable"] is False
    assert "retried" not in meta["capture"]
    assert TICKER_TOKEN in next(r for r in records if r.target == f"urn:text:{url}").block.decode()
