"""The platform adapters against the local replicas of Telegram, Mastodon and Bluesky.

One real run (``attest crawl --sources``: recorder, Scrapy, the browser for Bluesky) over a
registry with one profile source per platform, plus bounded and broken ones; then the WARCs are
read back: every replica post is a page of its own with its platform metadata, every API answer
is stored byte for byte, paging walks to the end and no further, bounds hold, and an account
that does not exist is reported as removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.cli import run_attest
from support.warcs import Rec, read_records, store_warcs

from archive.warc.read import verify_warc
from demoweb import FixtureWeb
from demoweb.platforms import BlueskySite, ReplicaPost

pytestmark = pytest.mark.e2e

CHANNEL = "fixturechannel"
ACCOUNT = "fixture"
HANDLE = "fixture.bsky.social"
#: A second Bluesky actor with enough posts for three feed pages (50, 50, 5).
PAGED = "paged.example.com"
PAGE_METADATA = "application/json; profile=attest-page"


@pytest.fixture(scope="module")
def web() -> Iterator[FixtureWeb]:
    fixture_web = FixtureWeb(keep_log=True)
    fixture_web.bluesky = BlueskySite({HANDLE: 45, PAGED: 105})
    fixture_web.start()
    yield fixture_web
    fixture_web.stop()


@pytest.fixture(scope="module")
def crawl(web: FixtureWeb, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("platforms-home")
    tg, md, bs = (web.url(name, "") for name in ("telegram", "mastodon", "bluesky"))
    registry = home / "sources.yaml"
    registry.write_text(
        f"""
sources:
  - id: telegram
    kind: profile
    seeds: ["{tg}/s/{CHANNEL}"]
    browser: false
    profile: {{platform: telegram}}
  - id: telegram-bounded
    kind: profile
    seeds: ["{tg}/{CHANNEL}"]
    profile: {{platform: telegram, max_feed_pages: 1, screenshot: false}}
  - id: mastodon
    kind: profile
    seeds: ["{md}/@{ACCOUNT}"]
    browser: false
    profile: {{platform: mastodon}}
  - id: mastodon-bounded
    kind: profile
    seeds: ["{md}/@{ACCOUNT}"]
    browser: false
    profile: {{platform: mastodon, max_posts: 10, api_base: "{md}/"}}
  - id: mastodon-gone
    kind: profile
    seeds: ["{md}/@nobody"]
    browser: false
    profile: {{platform: mastodon}}
  - id: bluesky
    kind: profile
    seeds: ["{bs}/profile/{HANDLE}"]
    browser: true
    profile: {{platform: bluesky, screenshot: false}}
  - id: bluesky-paged
    kind: profile
    seeds: ["{bs}/profile/{PAGED}"]
    browser: false
    profile: {{platform: bluesky}}
"""
    )
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_DOWNLOAD_TIMEOUT="10",
        ATTEST_RETRIES="1",
    )
    env.pop("ATTEST_STORE", None)
    proc = run_attest(["crawl", "--sources", str(registry), "--json"], env, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    warcs = store_warcs(home / "store")
    ledger = []
    for path in (home / "store" / "runs").rglob("ledger.jsonl"):
        ledger.extend(json.loads(line) for line in path.read_text().splitlines())
    records = read_records(warcs)
    by_source: dict[str, list[Rec]] = {}
    for rec in records:
        source = rec.file.relative_to(home / "store").parts[1]
        by_source.setdefault(source, []).append(rec)
    return {
        "summary": json.loads(proc.stdout),
        "warcs": warcs,
        "records": records,
        "by_source": by_source,
        "ledger": ledger,
    }


# --- helpers ------------------------------------------------------------------------------


def responses(recs: list[Rec]) -> dict[str, list[Rec]]:
    out: dict[str, list[Rec]] = {}
    for rec in recs:
        if rec.type == "response" and rec.target:
            out.setdefault(rec.target, []).append(rec)
    return out


def page_metadata(recs: list[Rec]) -> dict[str, dict[str, Any]]:
    """Each page's metadata record (by target), checked to point at its response record."""
    by_id = {rec.id: rec for rec in recs}
    out: dict[str, dict[str, Any]] = {}
    for rec in recs:
        if rec.type == "metadata" and rec.headers.get("Content-Type") == PAGE_METADATA:
            response = by_id[rec.headers["WARC-Concurrent-To"]]
            assert response.type == "response"
            assert response.target == rec.target
            assert rec.target not in out, f"two page records for {rec.target}"
            out[rec.target or ""] = rec.json()
    return out


def ledger_of(crawl: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [e for e in crawl["ledger"] if e["source"] == source]


def sent_targets(web: FixtureWeb, site: str, prefix: str) -> list[str]:
    return [t for _m, t, _h, _b in web.servers[site].sent if t.startswith(prefix)]


def check_posts(
    crawl: dict[str, Any], source: str, origin: str, posts: list[ReplicaPost]
) -> dict[str, dict[str, Any]]:
    """Each post is a captured page with its token, and its metadata names the post."""
    recs = crawl["by_source"][source]
    pages = responses(recs)
    meta = page_metadata(recs)
    for post in posts:
        url = origin + post.permalink_path
        assert url in pages, f"{source}: {url} not captured"
        (response,) = pages[url]
        assert response.http_status == 200
        assert post.token.encode() in response.http_body, url
        fields = meta[url]["post"]
        assert fields["platform"] == post.platform
        assert fields["account"] == post.account
        assert fields["post_id"] == post.post_id
        assert fields["permalink"] == url
        assert datetime.fromisoformat(fields["platform_time"]) == post.created_at
        assert meta[url]["outcome"] == "captured"
    captured_posts = {url for url, data in meta.items() if "post" in data}
    assert captured_posts == {origin + p.permalink_path for p in posts}
    posted = [e for e in ledger_of(crawl, source) if "post" in e]
    assert sorted(e["post"]["post_id"] for e in posted) == sorted(p.post_id for p in posts)
    return meta


def check_api_bytes(crawl: dict[str, Any], web: FixtureWeb, site: str, source: str) -> int:
    """Every API response stored for ``source`` is exactly what the replica sent."""
    server = web.servers[site]
    sent: dict[str, set[tuple[bytes, bytes]]] = {}
    for _method, target, head, body in server.sent:
        sent.setdefault(target, set()).add((head, body))
    count = 0
    for url, recs in responses(crawl["by_source"][source]).items():
        path = url[len(server.origin) :]
        if not path.startswith(("/api/", "/xrpc/")):
            continue
        for rec in recs:
            assert (rec.http_head, rec.http_body) in sent[path], f"{url} differs from the wire"
            assert b"application/json" in rec.http_head
            count += 1
    return count


# --- the run ------------------------------------------------------------------------------


def test_run_is_clean_and_every_warc_verifies(crawl: dict[str, Any]) -> None:
    assert crawl["summary"]["stopped"] is None
    assert crawl["summary"]["pending"] == []
    assert set(crawl["by_source"]) >= {
        "telegram",
        "telegram-bounded",
        "mastodon",
        "mastodon-bounded",
        "mastodon-gone",
        "bluesky",
        "bluesky-paged",
    }
    for path in crawl["warcs"]:
        verdict = verify_warc(path)
        assert verdict.ok, verdict.problems


def test_every_fetch_is_reported_once(crawl: dict[str, Any]) -> None:
    """One ledger line per response, except robots.txt and what the browser loaded itself."""
    for source, recs in crawl["by_source"].items():
        reported = [e["capture_id"] for e in ledger_of(crawl, source) if e.get("capture_id")]
        assert len(reported) == len(set(reported)), source
        browser_loaded = {
            x["url"]
            for data in page_metadata(recs).values()
            for x in data.get("capture", {}).get("exchanges", [])
        }
        for rec in recs:
            if rec.type != "response" or rec.id in reported:
                continue
            path = urlsplit(rec.target or "").path
            assert path in ("/robots.txt", "/favicon.ico") or rec.target in browser_loaded, (
                f"{source}: {rec.target} was fetched but not reported"
            )
        assert set(reported) <= {r.id for r in recs if r.type == "response"}, source


# --- Telegram -----------------------------------------------------------------------------


def test_telegram_every_message_is_a_page_with_its_time(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    origin = web.url("telegram", "")
    posts = web.telegram.posts(CHANNEL)
    meta = check_posts(crawl, "telegram", origin, posts)
    for post in posts:
        fields = meta[origin + post.permalink_path]["post"]
        assert fields["platform_time_shown"] == f"{post.created_at:%H:%M}"
        assert fields["found_on"].startswith(f"{origin}/s/{CHANNEL}")
    photo = next(p for p in posts if p.media_path)
    assert origin + (photo.media_path or "") in responses(crawl["by_source"]["telegram"])


def test_telegram_preview_pages_are_listings_walked_to_the_oldest(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    origin = web.url("telegram", "")
    base = f"{origin}/s/{CHANNEL}"
    meta = page_metadata(crawl["by_source"]["telegram"])
    listings = {url: data["listing"] for url, data in meta.items() if "listing" in data}
    assert set(listings) == {base, f"{base}?before=26", f"{base}?before=6"}
    assert [listings[u]["posts_found"] for u in sorted(listings)] == [20, 20, 5]
    listed = {p["post_id"] for listing in listings.values() for p in listing["posts"]}
    assert listed == {p.post_id for p in web.telegram.posts(CHANNEL)}
    assert meta[base]["via"] == "seed"
    assert f"{origin}/img/{CHANNEL}/avatar.png" in meta[base]["requisites"]
    # The oldest page links to nothing older, so nothing older was asked for.
    asked = set(sent_targets(web, "telegram", f"/s/{CHANNEL}"))
    assert asked == {f"/s/{CHANNEL}", f"/s/{CHANNEL}?before=26", f"/s/{CHANNEL}?before=6"}


def test_telegram_max_feed_pages_bounds_the_walk_and_browser_renders_only_posts(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    """A profile source uses the browser by default: for the posts, not the preview pages."""
    origin = web.url("telegram", "")
    meta = page_metadata(crawl["by_source"]["telegram-bounded"])
    listings = sorted(url for url, data in meta.items() if "listing" in data)
    assert listings == [f"{origin}/s/{CHANNEL}"]
    assert meta[listings[0]]["capture"]["method"] == "crawler"
    posts = {url: data for url, data in meta.items() if "post" in data}
    assert {data["post"]["post_id"] for data in posts.values()} == {str(n) for n in range(26, 46)}
    assert {data["capture"]["method"] for data in posts.values()} == {"browser"}
    for post in web.telegram.posts(CHANNEL)[:20]:
        (response,) = responses(crawl["by_source"]["telegram-bounded"])[
            origin + post.permalink_path
        ]
        assert post.token.encode() in response.http_body


# --- Mastodon -----------------------------------------------------------------------------


def test_mastodon_every_status_is_a_page_with_its_api_ids(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    origin = web.url("mastodon", "")
    posts = web.mastodon.posts(ACCOUNT)
    meta = check_posts(crawl, "mastodon", origin, posts)
    for post in posts:
        data = meta[origin + post.permalink_path]
        assert "platform_time_shown" not in data["post"]
        assert data["mastodon"] == {
            "id": post.post_id,
            "uri": f"{origin}/users/{ACCOUNT}/statuses/{post.post_id}",
        }
        assert data["via"] == "api"


def test_mastodon_api_answers_are_stored_byte_exact_and_paging_ends(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    assert check_api_bytes(crawl, web, "mastodon", "mastodon") == 3  # lookup + 2 pages
    account_id = web.mastodon.account_id(ACCOUNT)
    statuses = f"/api/v1/accounts/{account_id}/statuses"
    stored = sorted(
        urlsplit(url).query
        for url in responses(crawl["by_source"]["mastodon"])
        if url.startswith(web.url("mastodon", statuses))
    )
    posts = web.mastodon.posts(ACCOUNT)
    assert stored == ["limit=40", f"limit=40&max_id={posts[39].post_id}"]
    # The second page had no rel="next": nothing past it was asked for (by any source).
    asked = {t for t in sent_targets(web, "mastodon", statuses)}
    assert asked == {f"{statuses}?limit=40", f"{statuses}?limit=40&max_id={posts[39].post_id}"}
    entries = [e for e in ledger_of(crawl, "mastodon") if e["role"] == "api"]
    assert [e["outcome"] for e in entries] == ["captured"] * 3
    assert {e["via"] for e in entries} == {"api"}


def test_mastodon_deleted_status_is_not_a_post(crawl: dict[str, Any], web: FixtureWeb) -> None:
    (deleted,) = web.mastodon.deleted_ids(ACCOUNT)
    for source in ("mastodon", "mastodon-bounded"):
        urls = {r.target for r in crawl["by_source"][source]}
        assert not any(deleted in (u or "") for u in urls)
        assert all(e.get("post", {}).get("post_id") != deleted for e in crawl["ledger"])
    assert not any(deleted in t for t in sent_targets(web, "mastodon", "/@"))


def test_mastodon_max_posts_bounds_the_walk(crawl: dict[str, Any], web: FixtureWeb) -> None:
    meta = page_metadata(crawl["by_source"]["mastodon-bounded"])
    posts = [data["post"]["post_id"] for data in meta.values() if "post" in data]
    assert sorted(posts) == sorted(p.post_id for p in web.mastodon.posts(ACCOUNT)[:10])
    api = [e for e in ledger_of(crawl, "mastodon-bounded") if e["role"] == "api"]
    assert len(api) == 2  # the lookup and one page: the bound stops the paging


def test_mastodon_unknown_account_is_reported_removed_on_the_seed(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    origin = web.url("mastodon", "")
    entries = {e["url"]: e for e in ledger_of(crawl, "mastodon-gone")}
    lookup = entries[f"{origin}/api/v1/accounts/lookup?acct=nobody"]
    assert (lookup["role"], lookup["outcome"], lookup["status"]) == ("api", "removed", 404)
    seed = entries[f"{origin}/@nobody"]
    assert (seed["role"], seed["via"], seed["outcome"]) == ("page", "seed", "removed")
    meta = page_metadata(crawl["by_source"]["mastodon-gone"])
    data = meta[f"{origin}/@nobody"]
    assert data["outcome"] == "removed"
    assert data["profile"] == {
        "unavailable": "removed",
        "api": f"{origin}/api/v1/accounts/lookup?acct=nobody",
    }
    assert not [e for e in entries.values() if "/statuses" in e["url"]]


# --- Bluesky ------------------------------------------------------------------------------


def test_bluesky_every_post_is_a_rendered_page_with_its_record(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    origin = web.url("bluesky", "")
    posts = web.bluesky.posts(HANDLE)
    meta = check_posts(crawl, "bluesky", origin, posts)
    for post in posts:
        data = meta[origin + post.permalink_path]
        assert data["capture"]["method"] == "browser"
        assert data["bluesky"]["uri"] == web.bluesky.at_uri(HANDLE, post.post_id)
        assert data["bluesky"]["cid"].startswith("bafyrei")


def test_bluesky_feed_and_threads_are_stored_byte_exact(
    crawl: dict[str, Any], web: FixtureWeb
) -> None:
    origin = web.url("bluesky", "")
    posts = web.bluesky.posts(HANDLE)
    assert check_api_bytes(crawl, web, "bluesky", "bluesky") == 1 + len(posts)
    threads: dict[str, Rec] = {}
    for url, recs in responses(crawl["by_source"]["bluesky"]).items():
        if url.startswith(f"{origin}/xrpc/app.bsky.feed.getPostThread?"):
            query = parse_qs(urlsplit(url).query)
            assert query["depth"] == ["0"]
            (threads[query["uri"][0]],) = recs
    assert set(threads) == {web.bluesky.at_uri(HANDLE, p.post_id) for p in posts}
    for post in posts:
        rec = threads[web.bluesky.at_uri(HANDLE, post.post_id)]
        thread = json.loads(rec.http_body)["thread"]
        assert post.token in thread["post"]["record"]["text"]
    feeds = sent_targets(web, "bluesky", f"/xrpc/app.bsky.feed.getAuthorFeed?actor={HANDLE}")
    assert feeds == [f"/xrpc/app.bsky.feed.getAuthorFeed?actor={HANDLE}&limit=50"]


def test_bluesky_cursor_paging_walks_to_the_end(crawl: dict[str, Any], web: FixtureWeb) -> None:
    origin = web.url("bluesky", "")
    posts = web.bluesky.posts(PAGED)
    check_posts(crawl, "bluesky-paged", origin, posts)
    assert check_api_bytes(crawl, web, "bluesky", "bluesky-paged") == 3 + len(posts)
    feeds = sent_targets(web, "bluesky", f"/xrpc/app.bsky.feed.getAuthorFeed?actor={PAGED}")
    cursors = [parse_qs(urlsplit(t).query).get("cursor", [None])[0] for t in feeds]
    # The cursor is the createdAt of a page's last post; the third page has none.
    expected = [None, posts[49].created_at, posts[99].created_at]
    assert len(cursors) == 3
    assert [c if c is None else datetime.fromisoformat(c) for c in cursors] == expected
