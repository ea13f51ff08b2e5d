"""The platform replicas answer as their documentation says: shapes, paging, errors, HTML.

Each replica is served on 127.0.0.1 and fetched with urllib, so the tests see what a crawler
would: status lines, headers (``Link``, ``Content-Type``, rate limits) and bodies.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import lxml.html
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from demoweb.http import FixtureServer, Request
from demoweb.platforms import (
    BASE_DATE,
    HTML_TYPE,
    JSON_TYPE,
    SCHEMA_DIR,
    BlueskySite,
    MastodonSite,
    ReplicaPost,
    TelegramSite,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
PLC = re.compile(r"^did:plc:[a-z2-7]{24}$")

# ---------------------------------------------------------------------------------------------
# Helpers

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Fetched:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def html(self) -> Any:
        return lxml.html.fromstring(self.body)


def fetch(url: str) -> Fetched:
    try:
        with _OPENER.open(url, timeout=10) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return Fetched(resp.geturl(), resp.status, headers, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            headers = {k.lower(): v for k, v in err.headers.items()}
            return Fetched(url, err.code, headers, err.read())


def links(value: str | None) -> dict[str, str]:
    """RFC 8288 ``Link`` header -> {rel: url} (the replicas' URLs hold no commas)."""
    out: dict[str, str] = {}
    for part in (value or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="([^"]+)"\s*$', part)
        if match:
            out[match.group(2)] = match.group(1)
    return out


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry()
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        contents = json.loads(path.read_text())
        registry = registry.with_resource(contents["$id"], Resource.from_contents(contents))
    return registry


REGISTRY = _registry()


def validate(schema_name: str, instance: object) -> None:
    schema = json.loads((SCHEMA_DIR / schema_name).read_text())
    Draft202012Validator(schema, registry=REGISTRY).validate(instance)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


S = TypeVar("S", TelegramSite, MastodonSite, BlueskySite)


@dataclass
class Live(Generic[S]):
    site: S
    server: FixtureServer

    def url(self, path: str) -> str:
        return self.server.origin + path


def _serve(site: S) -> Iterator[Live[S]]:
    server = FixtureServer(site).start()
    try:
        yield Live(site, server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def telegram() -> Iterator[Live[TelegramSite]]:
    yield from _serve(TelegramSite({"fixturechannel": 45, "quietchannel": 3}))


@pytest.fixture(scope="module")
def mastodon() -> Iterator[Live[MastodonSite]]:
    yield from _serve(MastodonSite({"fixture": 45, "other": 6}))


@pytest.fixture(scope="module")
def bluesky() -> Iterator[Live[BlueskySite]]:
    yield from _serve(BlueskySite({"fixture.bsky.social": 45, "other.example.com": 4}))


# ---------------------------------------------------------------------------------------------
# All replicas


def test_schemas_are_valid_draft_2020_12() -> None:
    names = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
    assert {
        "mastodon_status.json",
        "mastodon_account.json",
        "bluesky_author_feed.json",
        "bluesky_profile.json",
        "bluesky_post_thread.json",
    } <= set(names)
    for name in names:
        schema = json.loads((SCHEMA_DIR / name).read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_defaults_and_content_are_deterministic() -> None:
    assert TelegramSite().channels == {"fixturechannel": 45}
    assert MastodonSite().accounts == {"fixture": 45}
    assert BlueskySite().actors == {"fixture.bsky.social": 45}
    mastodon_id = MastodonSite().account_id("fixture")
    rkey = BlueskySite().posts("fixture.bsky.social")[3].post_id
    targets: list[tuple[type[TelegramSite | MastodonSite | BlueskySite], str]] = [
        (TelegramSite, "/s/fixturechannel?before=30"),
        (TelegramSite, "/fixturechannel/7"),
        (MastodonSite, f"/api/v1/accounts/{mastodon_id}/statuses?limit=40"),
        (MastodonSite, "/@fixture"),
        (BlueskySite, "/xrpc/app.bsky.feed.getAuthorFeed?actor=fixture.bsky.social&limit=100"),
        (BlueskySite, f"/profile/fixture.bsky.social/post/{rkey}"),
    ]
    for cls, target in targets:
        req = Request("GET", target, {"host": "127.0.0.1:1"}, "127.0.0.1:1")
        first, second = cls()(req), cls()(req)
        assert first.status == 200, target
        assert (first.headers, first.body) == (second.headers, second.body), target
    newest = [
        TelegramSite().posts("fixturechannel")[0],
        MastodonSite().posts("fixture")[0],
        BlueskySite().posts("fixture.bsky.social")[0],
    ]
    for post in newest:
        assert post.created_at <= BASE_DATE
        assert (BASE_DATE - post.created_at).total_seconds() < 60


def _check_posts(posts: list[ReplicaPost], platform: str, account: str, total: int) -> None:
    assert [p.platform for p in posts] == [platform] * total
    assert {p.account for p in posts} == {account}
    assert len({p.post_id for p in posts}) == total
    assert len({p.token for p in posts}) == total
    times = [p.created_at for p in posts]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) == total


def test_posts_describe_each_replica() -> None:
    tg, md, bs = TelegramSite(), MastodonSite(), BlueskySite()
    _check_posts(tg.posts("fixturechannel"), "telegram", "fixturechannel", 45)
    _check_posts(md.posts("fixture"), "mastodon", "fixture", 44)
    _check_posts(bs.posts("fixture.bsky.social"), "bluesky", "fixture.bsky.social", 45)
    assert tg.deleted_ids("fixturechannel") == []
    assert bs.deleted_ids("fixture.bsky.social") == []
    (deleted,) = md.deleted_ids("fixture")
    assert deleted not in {p.post_id for p in md.posts("fixture")}
    assert [p.number for p in md.posts("fixture")] == [n for n in range(45, 0, -1) if n != 5]
    assert [p.number for p in md.posts("fixture") if p.media_path] == [7]
    with pytest.raises(KeyError):
        tg.posts("nochannel")


# ---------------------------------------------------------------------------------------------
# Telegram


def _messages(page: Any) -> list[Any]:
    return list(page.cssselect("div.tgme_widget_message[data-post]"))


def test_telegram_latest_page_has_the_documented_widget_markup(
    telegram: Live[TelegramSite],
) -> None:
    got = fetch(telegram.url("/s/fixturechannel"))
    assert got.status == 200
    assert got.content_type == HTML_TYPE
    page = got.html()
    posts = {p.post_id: p for p in telegram.site.posts("fixturechannel")}
    messages = _messages(page)
    # The newest 20, oldest first and the newest last, as Telegram lays them out.
    assert [m.get("data-post") for m in messages] == [f"fixturechannel/{i}" for i in range(26, 46)]
    for message in messages:
        post = posts[message.get("data-post").split("/")[1]]
        (text,) = message.cssselect(".tgme_widget_message_text")
        assert post.token in text.text_content()
        (date,) = message.cssselect("a.tgme_widget_message_date")
        assert date.get("href") == telegram.url(post.permalink_path)
        (time,) = date.cssselect("time[datetime]")
        assert parse_time(time.get("datetime")) == post.created_at
        assert time.get("datetime").endswith("+00:00")
        assert time.text_content() == post.created_at.strftime("%H:%M")
    (more,) = page.cssselect("a.tme_messages_more[data-before]")
    assert more.get("data-before") == "26"
    assert more.get("href") == "/s/fixturechannel?before=26"
    (prev,) = page.cssselect('link[rel="prev"]')
    assert prev.get("href") == "/s/fixturechannel?before=26"
    assert not page.cssselect("a.tme_messages_more[data-after]")
    assert not page.cssselect('link[rel="next"]')


def test_telegram_before_paging_walks_every_message_once(telegram: Live[TelegramSite]) -> None:
    url: str | None = telegram.url("/s/fixturechannel")
    pages: list[list[int]] = []
    while url is not None:
        page = fetch(url).html()
        pages.append([int(m.get("data-post").split("/")[1]) for m in _messages(page)])
        more = page.cssselect("a.tme_messages_more[data-before]")
        url = telegram.url(more[0].get("href")) if more else None
        if more:
            assert int(more[0].get("data-before")) == pages[-1][0]
        assert len(pages) < 10
    assert [len(p) for p in pages] == [20, 20, 5]
    for ids in pages:
        assert ids == sorted(ids)  # newest last on each page
    walked = [str(i) for ids in pages for i in reversed(ids)]
    assert walked == [p.post_id for p in telegram.site.posts("fixturechannel")]
    assert len(set(walked)) == 45

    # Telegram's ?after= goes the other way; ?before=1 is an empty page with no more link.
    after = fetch(telegram.url("/s/fixturechannel?after=5")).html()
    assert [m.get("data-post") for m in _messages(after)][:2] == [
        "fixturechannel/6",
        "fixturechannel/7",
    ]
    assert after.cssselect("a.tme_messages_more[data-after]")
    first = fetch(telegram.url("/s/fixturechannel?before=1"))
    assert first.status == 200
    assert not _messages(first.html())
    assert not first.html().cssselect("a.tme_messages_more")


def test_telegram_photo_and_single_message_page(telegram: Live[TelegramSite]) -> None:
    post = next(p for p in telegram.site.posts("fixturechannel") if p.number == 7)
    assert post.media_path == "/img/fixturechannel/7.png"
    page = fetch(telegram.url("/s/fixturechannel?before=10")).html()
    (photo,) = page.cssselect('div[data-post="fixturechannel/7"] a.tgme_widget_message_photo_wrap')
    match = re.search(r"background-image:url\('([^']+)'\)", photo.get("style"))
    assert match is not None
    assert match.group(1) == telegram.url(post.media_path)
    image = fetch(match.group(1))
    assert image.status == 200
    assert image.content_type == "image/png"
    assert image.body.startswith(PNG_MAGIC)
    assert len(page.cssselect("a.tgme_widget_message_photo_wrap")) == 1

    single = fetch(telegram.url(post.permalink_path))
    assert single.status == 200
    assert single.content_type == HTML_TYPE
    doc = single.html()
    (description,) = doc.cssselect('meta[property="og:description"]')
    assert post.token in description.get("content")
    (og_image,) = doc.cssselect('meta[property="og:image"]')
    assert og_image.get("content") == telegram.url(post.media_path)
    assert [m.get("data-post") for m in _messages(doc)] == ["fixturechannel/7"]
    assert post.token in doc.cssselect(".tgme_widget_message_text")[0].text_content()


@pytest.mark.parametrize(
    "path",
    [
        "/s/nochannel",
        "/nochannel/1",
        "/fixturechannel/0",
        "/fixturechannel/46",
        "/fixturechannel/abc",
        "/quietchannel/4",
        "/img/fixturechannel/8.png",
    ],
)
def test_telegram_unknown_channel_or_message_is_404_html(
    telegram: Live[TelegramSite], path: str
) -> None:
    got = fetch(telegram.url(path))
    assert got.status == 404
    assert got.content_type == HTML_TYPE


def test_telegram_second_channel_and_robots(telegram: Live[TelegramSite]) -> None:
    page = fetch(telegram.url("/s/quietchannel")).html()
    assert [m.get("data-post") for m in _messages(page)] == [f"quietchannel/{i}" for i in (1, 2, 3)]
    assert not page.cssselect("a.tme_messages_more")
    robots = fetch(telegram.url("/robots.txt"))
    assert robots.status == 200
    assert b"Allow: /" in robots.body


# ---------------------------------------------------------------------------------------------
# Mastodon


RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _statuses_url(live: Live[MastodonSite], name: str, params: str = "") -> str:
    path = f"/api/v1/accounts/{live.site.account_id(name)}/statuses"
    return live.url(path + (f"?{params}" if params else ""))


def test_mastodon_lookup_returns_the_account_entity(mastodon: Live[MastodonSite]) -> None:
    got = fetch(mastodon.url("/api/v1/accounts/lookup?acct=fixture"))
    assert got.status == 200
    assert got.content_type == JSON_TYPE
    assert all(h in got.headers for h in RATE_HEADERS)
    assert int(got.headers["x-ratelimit-remaining"]) <= int(got.headers["x-ratelimit-limit"])
    account = got.json()
    validate("mastodon_account.json", account)
    assert account["id"] == mastodon.site.account_id("fixture")
    assert account["id"].isdigit()
    assert account["username"] == account["acct"] == "fixture"
    assert account["url"] == mastodon.url("/@fixture")
    assert account["statuses_count"] == 44
    host = urlsplit(mastodon.server.origin).netloc
    assert fetch(mastodon.url(f"/api/v1/accounts/lookup?acct=fixture@{host}")).json() == account
    assert fetch(mastodon.url(f"/api/v1/accounts/{account['id']}")).json() == account
    avatar = fetch(account["avatar"])
    assert avatar.status == 200
    assert avatar.body.startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/lookup?acct=nobody",
        "/api/v1/accounts/lookup?acct=fixture@elsewhere.example",
        "/api/v1/accounts/1/statuses",
        "/api/v1/accounts/1",
        "/api/v1/statuses/1",
        "/api/v1/statuses/abc",
    ],
)
def test_mastodon_unknown_records_are_404_record_not_found(
    mastodon: Live[MastodonSite], path: str
) -> None:
    got = fetch(mastodon.url(path))
    assert got.status == 404
    assert got.content_type == JSON_TYPE
    validate("mastodon_error.json", got.json())
    assert got.json() == {"error": "Record not found"}


def test_mastodon_first_page_and_link_header(mastodon: Live[MastodonSite]) -> None:
    got = fetch(_statuses_url(mastodon, "fixture"))
    assert got.status == 200
    assert got.content_type == JSON_TYPE
    assert all(h in got.headers for h in RATE_HEADERS)
    statuses = got.json()
    validate("mastodon_statuses.json", statuses)
    assert len(statuses) == 20  # the documented default
    rel = links(got.headers.get("link"))
    assert set(rel) == {"next", "prev"}
    base = _statuses_url(mastodon, "fixture")
    assert rel["next"].startswith(base + "?")
    assert rel["prev"].startswith(base + "?")
    assert query(rel["next"])["max_id"] == [statuses[-1]["id"]]
    assert query(rel["prev"])["min_id"] == [statuses[0]["id"]]
    for status in statuses:
        assert status["id"].isdigit()
        assert status["account"]["id"].isdigit()
        assert status["url"] == mastodon.url(f"/@fixture/{status['id']}")
        assert status["visibility"] == "public"


@pytest.mark.parametrize("limit", [7, 11, 40])
def test_mastodon_link_next_walks_every_status_once(
    mastodon: Live[MastodonSite], limit: int
) -> None:
    url: str | None = _statuses_url(mastodon, "fixture", f"limit={limit}")
    pages: list[list[dict[str, Any]]] = []
    while url is not None:
        got = fetch(url)
        assert got.status == 200
        page = got.json()
        validate("mastodon_statuses.json", page)
        pages.append(page)
        url = links(got.headers.get("link")).get("next")
        if url is not None:
            assert query(url)["limit"] == [str(limit)]
        assert len(pages) < 20
    sizes = [len(p) for p in pages]
    assert all(size == limit for size in sizes[:-1])
    assert 0 < sizes[-1] <= limit
    walked = [s["id"] for page in pages for s in page]
    expected = mastodon.site.posts("fixture")
    assert walked == [p.post_id for p in expected]
    assert len(set(walked)) == len(walked) == 44
    assert mastodon.site.deleted_ids("fixture")[0] not in walked
    ids = [int(i) for i in walked]
    assert ids == sorted(ids, reverse=True)  # snowflake-like: decreasing with age
    for status, post in zip((s for page in pages for s in page), expected, strict=True):
        assert post.token in status["content"]
        assert status["content"].startswith("<p>")
        assert parse_time(status["created_at"]) == post.created_at
        assert status["url"] == mastodon.url(post.permalink_path)


def test_mastodon_limits_and_cursors(mastodon: Live[MastodonSite]) -> None:
    posts = mastodon.site.posts("fixture")
    ids = [p.post_id for p in posts]
    assert len(fetch(_statuses_url(mastodon, "fixture", "limit=100")).json()) == 40  # max 40
    past = fetch(_statuses_url(mastodon, "fixture", f"max_id={ids[-1]}"))
    assert past.status == 200
    assert past.json() == []
    assert "link" not in past.headers
    # max_id is exclusive; since_id gives the newest above it; min_id those right above it.
    assert [
        s["id"]
        for s in fetch(_statuses_url(mastodon, "fixture", f"max_id={ids[3]}&limit=2")).json()
    ] == ids[4:6]
    assert [
        s["id"]
        for s in fetch(_statuses_url(mastodon, "fixture", f"since_id={ids[-10]}&limit=3")).json()
    ] == ids[:3]
    assert [
        s["id"]
        for s in fetch(_statuses_url(mastodon, "fixture", f"min_id={ids[-10]}&limit=3")).json()
    ] == ids[-13:-10]
    last = fetch(_statuses_url(mastodon, "fixture", f"max_id={ids[-3]}"))
    assert [s["id"] for s in last.json()] == ids[-2:]
    assert set(links(last.headers.get("link"))) == {"prev"}
    media = fetch(_statuses_url(mastodon, "fixture", "only_media=true")).json()
    assert [s["id"] for s in media] == [p.post_id for p in posts if p.media_path]


def test_mastodon_single_status_media_and_deleted(mastodon: Live[MastodonSite]) -> None:
    post = next(p for p in mastodon.site.posts("fixture") if p.media_path)
    got = fetch(mastodon.url(f"/api/v1/statuses/{post.post_id}"))
    assert got.status == 200
    assert got.content_type == JSON_TYPE
    assert all(h in got.headers for h in RATE_HEADERS)
    status = got.json()
    validate("mastodon_status.json", status)
    (attachment,) = status["media_attachments"]
    assert attachment["type"] == "image"
    assert attachment["url"] == mastodon.url(post.media_path or "")
    for url in (attachment["url"], attachment["preview_url"]):
        image = fetch(url)
        assert image.status == 200
        assert image.content_type == "image/png"
        assert image.body.startswith(PNG_MAGIC)
    (deleted,) = mastodon.site.deleted_ids("fixture")
    gone = fetch(mastodon.url(f"/api/v1/statuses/{deleted}"))
    assert gone.status == 404
    assert gone.json() == {"error": "Record not found"}
    assert fetch(mastodon.url(f"/@fixture/{deleted}")).status == 404
    # Another account's status ids never collide with these.
    other = {p.post_id for p in mastodon.site.posts("other")}
    assert len(other) == 5
    assert not other & {p.post_id for p in mastodon.site.posts("fixture")}


def test_mastodon_html_pages_show_statuses_without_javascript(
    mastodon: Live[MastodonSite],
) -> None:
    posts = mastodon.site.posts("fixture")
    profile = fetch(mastodon.url("/@fixture"))
    assert profile.status == 200
    assert profile.content_type == HTML_TYPE
    doc = profile.html()
    entries = doc.cssselect("div.h-entry")
    assert len(entries) == 20
    for entry, post in zip(entries, posts, strict=False):
        assert post.token in entry.cssselect(".e-content")[0].text_content()
        (link,) = entry.cssselect("a.u-url")
        assert link.get("href") == mastodon.url(post.permalink_path)
    (more,) = doc.cssselect('a.load-more[rel="next"]')
    older = fetch(mastodon.url(more.get("href"))).html()
    assert posts[20].token in older.cssselect("div.h-entry .e-content")[0].text_content()

    post = posts[0]
    page = fetch(mastodon.url(post.permalink_path))
    assert page.status == 200
    assert page.content_type == HTML_TYPE
    doc = page.html()
    (description,) = doc.cssselect('meta[property="og:description"]')
    assert post.token in description.get("content")
    assert post.token in doc.cssselect(".e-content")[0].text_content()
    # The federation URI redirects to the same page.
    status = fetch(mastodon.url(f"/api/v1/statuses/{post.post_id}")).json()
    followed = fetch(status["uri"])
    assert followed.status == 200
    assert followed.url == mastodon.url(post.permalink_path)
    assert fetch(mastodon.url("/@nobody")).status == 404


# ---------------------------------------------------------------------------------------------
# Bluesky


HANDLE = "fixture.bsky.social"


def _xrpc(live: Live[BlueskySite], method: str, **params: str | int) -> Fetched:
    qs = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return fetch(live.url(f"/xrpc/{method}" + (f"?{qs}" if qs else "")))


def test_bluesky_profile_by_handle_and_did(bluesky: Live[BlueskySite]) -> None:
    did = bluesky.site.did(HANDLE)
    assert PLC.match(did)
    assert did != bluesky.site.did("other.example.com")
    got = _xrpc(bluesky, "app.bsky.actor.getProfile", actor=HANDLE)
    assert got.status == 200
    assert got.content_type == JSON_TYPE
    profile = got.json()
    validate("bluesky_profile.json", profile)
    assert (profile["did"], profile["handle"], profile["postsCount"]) == (did, HANDLE, 45)
    assert _xrpc(bluesky, "app.bsky.actor.getProfile", actor=did).json() == profile
    assert fetch(profile["avatar"]).body.startswith(PNG_MAGIC)
    resolved = _xrpc(bluesky, "com.atproto.identity.resolveHandle", handle=HANDLE)
    assert resolved.json() == {"did": did}


@pytest.mark.parametrize("limit", [10, 7, 100])
def test_bluesky_cursor_walks_every_post_once(bluesky: Live[BlueskySite], limit: int) -> None:
    did = bluesky.site.did(HANDLE)
    cursor: str | None = None
    pages: list[list[dict[str, Any]]] = []
    while True:
        params: dict[str, str | int] = {"actor": HANDLE, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        got = _xrpc(bluesky, "app.bsky.feed.getAuthorFeed", **params)
        assert got.status == 200
        assert got.content_type == JSON_TYPE
        body = got.json()
        validate("bluesky_author_feed.json", body)
        pages.append(body["feed"])
        cursor = body.get("cursor")
        if cursor is None:
            break
        assert len(pages) < 20
    sizes = [len(p) for p in pages]
    assert all(size == limit for size in sizes[:-1])
    assert 0 < sizes[-1] <= limit
    posts = bluesky.site.posts(HANDLE)
    views = [item["post"] for page in pages for item in page]
    assert [v["uri"] for v in views] == [
        f"at://{did}/app.bsky.feed.post/{p.post_id}" for p in posts
    ]
    assert len({v["uri"] for v in views}) == 45
    for view, post in zip(views, posts, strict=True):
        assert TID.match(post.post_id)
        assert post.token in view["record"]["text"]
        assert view["record"]["$type"] == "app.bsky.feed.post"
        assert parse_time(view["record"]["createdAt"]) == post.created_at
        assert view["author"] == {**view["author"], "did": did, "handle": HANDLE}
    rkeys = [p.post_id for p in posts]
    assert rkeys == sorted(rkeys, reverse=True)  # TIDs sort by time


def test_bluesky_author_feed_defaults_did_actor_and_media_filter(
    bluesky: Live[BlueskySite],
) -> None:
    body = _xrpc(bluesky, "app.bsky.feed.getAuthorFeed", actor=bluesky.site.did(HANDLE)).json()
    assert len(body["feed"]) == 45
    assert "cursor" not in body
    media = _xrpc(bluesky, "app.bsky.feed.getAuthorFeed", actor=HANDLE, filter="posts_with_media")
    (item,) = media.json()["feed"]
    validate("bluesky_author_feed.json", media.json())
    post = next(p for p in bluesky.site.posts(HANDLE) if p.media_path)
    assert item["post"]["uri"].endswith(post.post_id)
    (image,) = item["post"]["embed"]["images"]
    assert image["fullsize"] == bluesky.url(post.media_path or "")
    for url in (image["thumb"], image["fullsize"]):
        got = fetch(url)
        assert got.status == 200
        assert got.content_type == "image/png"
        assert got.body.startswith(PNG_MAGIC)
    empty = _xrpc(bluesky, "app.bsky.feed.getAuthorFeed", actor=HANDLE, cursor="not-a-cursor")
    assert empty.status == 200
    assert empty.json() == {"feed": []}


@pytest.mark.parametrize(
    ("method", "params", "status", "error", "message"),
    [
        ("app.bsky.actor.getProfile", {"actor": "nobody.bsky.social"}, 400, "InvalidRequest", "Profile not found"),
        ("app.bsky.actor.getProfile", {}, 400, "InvalidRequest", None),
        ("app.bsky.actor.getProfile", {"actor": "not a handle"}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getAuthorFeed", {"actor": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}, 400, "InvalidRequest", "Profile not found"),
        ("app.bsky.feed.getAuthorFeed", {"actor": HANDLE, "limit": 0}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getAuthorFeed", {"actor": HANDLE, "limit": 101}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getAuthorFeed", {"actor": HANDLE, "limit": "ten"}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getPostThread", {}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getPostThread", {"uri": "https://bsky.app/x"}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getPostThread", {"uri": f"at://{HANDLE}/app.bsky.feed.post/3kaaaaaaaaaaa"}, 400, "NotFound", None),
        ("com.atproto.identity.resolveHandle", {"handle": "nobody.example.com"}, 400, "InvalidRequest", None),
        ("app.bsky.feed.getTimeline", {}, 501, "MethodNotImplemented", None),
    ],
)  # fmt: skip
def test_bluesky_errors_have_the_xrpc_shape(
    bluesky: Live[BlueskySite],
    method: str,
    params: dict[str, str | int],
    status: int,
    error: str,
    message: str | None,
) -> None:
    got = _xrpc(bluesky, method, **params)
    assert got.status == status
    assert got.content_type == JSON_TYPE
    body = got.json()
    validate("xrpc_error.json", body)
    assert body["error"] == error
    if message is not None:
        assert body["message"] == message


def test_bluesky_post_thread(bluesky: Live[BlueskySite]) -> None:
    did = bluesky.site.did(HANDLE)
    post = bluesky.site.posts(HANDLE)[12]
    uri = f"at://{did}/app.bsky.feed.post/{post.post_id}"
    got = _xrpc(bluesky, "app.bsky.feed.getPostThread", uri=uri, depth=1)
    assert got.status == 200
    assert got.content_type == JSON_TYPE
    body = got.json()
    validate("bluesky_post_thread.json", body)
    assert body["thread"]["$type"] == "app.bsky.feed.defs#threadViewPost"
    assert body["thread"]["post"]["uri"] == uri
    assert post.token in body["thread"]["post"]["record"]["text"]
    by_handle = _xrpc(
        bluesky,
        "app.bsky.feed.getPostThread",
        uri=f"at://{HANDLE}/app.bsky.feed.post/{post.post_id}",
    )
    assert by_handle.json() == body
    missing = _xrpc(bluesky, "app.bsky.feed.getPostThread", uri=uri[:-1] + "z")
    assert missing.status == 400
    assert missing.json()["message"].startswith("Post not found: ")


def test_bluesky_permalink_and_profile_pages(bluesky: Live[BlueskySite]) -> None:
    post = bluesky.site.posts(HANDLE)[0]
    got = fetch(bluesky.url(post.permalink_path))
    assert got.status == 200
    assert got.content_type == HTML_TYPE
    doc = got.html()
    (description,) = doc.cssselect('meta[property="og:description"]')
    assert post.token in description.get("content")
    assert post.token.encode() in got.body.split(b"<noscript>", 1)[1]
    assert re.search(rb'<p id="bsky_post_text">[^<]*' + re.escape(post.token.encode()), got.body)
    did = bluesky.site.did(HANDLE)
    by_did = fetch(bluesky.url(f"/profile/{did}/post/{post.post_id}"))
    assert by_did.status == 200
    assert post.token.encode() in by_did.body

    profile = fetch(bluesky.url(f"/profile/{HANDLE}"))
    assert profile.status == 200
    assert profile.content_type == HTML_TYPE
    assert did.encode() in profile.body
    for path in (f"/profile/{HANDLE}/post/3kaaaaaaaaaaa", "/profile/nobody.bsky.social"):
        missing = fetch(bluesky.url(path))
        assert missing.status == 404
        assert missing.content_type == HTML_TYPE
