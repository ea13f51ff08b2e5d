"""Local replicas of three public social platforms, shaped after their documented responses.

Each class is a fixture-web site (``site(req) -> Reply``) with deterministic content: a fixed
base date (:data:`BASE_DATE`) going back in time, tokens from :func:`demoweb.assets.token`
and no wall-clock time anywhere. Origins in links are built from the request's ``Host``.

- :class:`TelegramSite`: the public channel preview ``/s/<channel>`` (``?before=<id>`` pages to
  older messages, newest last on a page), single-message pages ``/<channel>/<id>``.
- :class:`MastodonSite`: REST API ``/api/v1/accounts/lookup``, ``/api/v1/accounts/<id>``,
  ``/api/v1/accounts/<id>/statuses`` (``limit``/``max_id``/``since_id``/``min_id``, ``Link``
  header), ``/api/v1/statuses/<id>``; server-rendered ``/@<name>`` and ``/@<name>/<id>``.
- :class:`BlueskySite`: XRPC ``app.bsky.actor.getProfile``, ``app.bsky.feed.getAuthorFeed``
  (``limit``/``cursor``/``filter``), ``app.bsky.feed.getPostThread``,
  ``com.atproto.identity.resolveHandle``; bsky.app-like pages ``/profile/<handle>`` and
  ``/profile/<handle>/post/<rkey>``.

For tests, ``posts(account)`` describes what each site holds as :class:`ReplicaPost` records,
newest first (the order the platform's paging walks), without deleted items; ``deleted_ids``
names the deleted ones. JSON Schemas for the API responses live in :data:`SCHEMA_DIR`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from demoweb.assets import png, sentences, token
from demoweb.http import Reply, Request

#: The newest item of every replica is dated here; older items go back in time from it.
BASE_DATE = datetime(2024, 5, 13, 8, 0, tzinfo=UTC)
#: Hand-written JSON Schemas (draft 2020-12) of the replicas' API responses.
SCHEMA_DIR = Path(__file__).with_name("schemas")

JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    404: "Not Found",
    501: "Not Implemented",
}

Json = dict[str, Any]


@dataclass(frozen=True)
class ReplicaPost:
    """One post a replica serves, as tests expect a crawler to find it."""

    platform: str  # "telegram", "mastodon" or "bluesky"
    account: str  # channel name, Mastodon username or Bluesky handle
    post_id: str  # message id, status id or record key
    token: str  # the unique token in the post's text
    created_at: datetime  # aware, UTC
    permalink_path: str  # the post's own HTML page on the replica
    number: int  # 1 for the account's oldest post
    media_path: str | None = None  # the attached image, when there is one


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _origin(req: Request, scheme: str) -> str:
    return f"{scheme}://{req.host or '127.0.0.1'}"


def _reply(
    status: int, content_type: str, body: bytes, extra: Iterable[tuple[str, str]] = ()
) -> Reply:
    headers = [("Content-Type", content_type), *extra]
    return Reply(status, _REASONS.get(status, "Unknown"), headers, body)


def _json(status: int, data: object, extra: Iterable[tuple[str, str]] = ()) -> Reply:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return _reply(status, JSON_TYPE, body, extra)


def _html(status: int, body: str) -> Reply:
    return _reply(status, HTML_TYPE, body.encode())


def _png(seed: int, width: int, height: int) -> Reply:
    return _reply(200, "image/png", png(seed, width, height))


def _not_found_page(what: str) -> Reply:
    return _html(
        404,
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Not found</title>'
        f"</head><body><h1>404</h1><p>{escape(what)}</p></body></html>\n",
    )


def _redirect(location: str) -> Reply:
    return _reply(301, HTML_TYPE, b"", [("Location", location)])


def _robots() -> Reply:
    return _reply(200, "text/plain; charset=utf-8", b"User-agent: *\nAllow: /\n")


def _param(req: Request, name: str) -> str | None:
    values = req.query.get(name)
    return values[0] if values else None


def _digits(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _iso_ms(moment: datetime) -> str:
    """``2024-05-13T08:00:00.000Z``: the form Mastodon and the AT Protocol both serve."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds_since_epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _text_html(text: str) -> str:
    return "<br/>".join(escape(line) for line in text.split("\n"))


# ---------------------------------------------------------------------------------------------
# Telegram


class TelegramSite:
    """Telegram's public channel preview (``t.me/s/<channel>``) and single-post pages.

    Routes:

    - ``/s/<channel>``: the latest :attr:`PAGE` messages, oldest first and newest last as
      Telegram lays them out; ``?before=<id>`` gives the :attr:`PAGE` messages before ``id``
      and ``?after=<id>`` those after it. A page with older messages carries
      ``a.tme_messages_more[data-before]`` and ``link[rel=prev]`` to ``?before=<oldest id>``.
    - ``/<channel>/<id>`` (also with ``?embed=1``): one message, its text in ``og:description``.
    - ``/<channel>``: the channel's landing page, linking the preview.
    - ``/img/<channel>/<id>.png`` (the photo of message :attr:`PHOTO_ID`) and
      ``/img/<channel>/avatar.png``; ``/robots.txt`` allows all.

    Unknown channels and message ids answer 404 HTML. Messages are numbered ``1..N`` (oldest
    first) and each text contains ``token("tg-<channel>", id)``.
    """

    platform = "telegram"
    PAGE = 20
    PHOTO_ID = 7
    STEP = timedelta(hours=2, minutes=13)

    def __init__(self, channels: dict[str, int] | None = None, *, scheme: str = "http") -> None:
        self.channels = dict(channels) if channels is not None else {"fixturechannel": 45}
        self.scheme = scheme
        self._index = {name.lower(): i for i, name in enumerate(self.channels)}
        self._names = {name.lower(): name for name in self.channels}

    # -- content -------------------------------------------------------------------------

    def title(self, channel: str) -> str:
        return f"Fixture Channel {channel}"

    def created_at(self, channel: str, msg_id: int) -> datetime:
        index = self._index[channel.lower()]
        total = self.channels[self._names[channel.lower()]]
        return (
            BASE_DATE
            - timedelta(minutes=11 * index)
            - self.STEP * (total - msg_id)
            - timedelta(seconds=(msg_id * 17) % 60)
        )

    def token(self, channel: str, msg_id: int) -> str:
        return token(f"tg-{channel}", msg_id)

    def text(self, channel: str, msg_id: int) -> str:
        seed = 31_000 + 1_000 * self._index[channel.lower()] + msg_id
        return f"{sentences(seed, 1)[0]}\n{self.token(channel, msg_id)}"

    def photo_path(self, channel: str, msg_id: int) -> str | None:
        return f"/img/{channel}/{msg_id}.png" if msg_id == self.PHOTO_ID else None

    def posts(self, channel: str) -> list[ReplicaPost]:
        """Every message of ``channel``, newest first."""
        name = self._names[channel.lower()]
        return [
            ReplicaPost(
                platform=self.platform,
                account=name,
                post_id=str(msg_id),
                token=self.token(name, msg_id),
                created_at=self.created_at(name, msg_id),
                permalink_path=f"/{name}/{msg_id}",
                number=msg_id,
                media_path=self.photo_path(name, msg_id),
            )
            for msg_id in range(self.channels[name], 0, -1)
        ]

    def deleted_ids(self, channel: str) -> list[str]:
        """Telegram's replica has no deleted messages (ids run 1..N without gaps)."""
        if channel.lower() not in self._names:
            raise KeyError(channel)
        return []

    # -- rendering -----------------------------------------------------------------------

    def _views(self, msg_id: int) -> str:
        count = 400 + (msg_id * 7_919) % 12_000
        return f"{count / 1000:.1f}K" if count >= 1000 else str(count)

    def _widget(self, origin: str, channel: str, msg_id: int) -> str:
        created = self.created_at(channel, msg_id)
        link = f"{origin}/{channel}/{msg_id}"
        photo = self.photo_path(channel, msg_id)
        photo_html = ""
        if photo is not None:
            photo_html = (
                f'<a class="tgme_widget_message_photo_wrap {msg_id} js-message_photo" '
                f"style=\"width:240px;background-image:url('{origin}{photo}')\" "
                f'data-photo-id="{msg_id}" href="{_attr(link)}">'
                '<div class="tgme_widget_message_photo" style="padding-top:66.6667%"></div></a>'
            )
        return (
            '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
            f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" '
            f'data-post="{_attr(channel)}/{msg_id}" data-view="{msg_id}">'
            '<div class="tgme_widget_message_user">'
            f'<a href="{origin}/{_attr(channel)}"><i class="tgme_widget_message_user_photo">'
            f'<img src="{origin}/img/{_attr(channel)}/avatar.png" alt=""></i></a></div>'
            '<div class="tgme_widget_message_bubble">'
            '<div class="tgme_widget_message_author accent_color">'
            f'<a class="tgme_widget_message_owner_name" href="{origin}/{_attr(channel)}">'
            f'<span dir="auto">{escape(self.title(channel))}</span></a></div>'
            f"{photo_html}"
            '<div class="tgme_widget_message_text js-message_text" dir="auto">'
            f"{_text_html(self.text(channel, msg_id))}</div>"
            '<div class="tgme_widget_message_footer compact js-message_footer">'
            '<div class="tgme_widget_message_info short js-message_info">'
            f'<span class="tgme_widget_message_views">{self._views(msg_id)}</span>'
            '<span class="copyonly"> views</span>'
            '<span class="tgme_widget_message_meta">'
            f'<a class="tgme_widget_message_date" href="{_attr(link)}">'
            f'<time datetime="{created.isoformat()}" class="time">{created:%H:%M}</time>'
            "</a></span></div></div></div></div></div>"
        )

    def _channel_page(self, req: Request, channel: str) -> Reply:
        origin = _origin(req, self.scheme)
        total = self.channels[channel]
        before = _digits(_param(req, "before"))
        after = _digits(_param(req, "after"))
        if after is not None:
            ids = list(range(after + 1, total + 1))[: self.PAGE]
        else:
            top = total if before is None else min(total, before - 1)
            ids = list(range(max(1, top - self.PAGE + 1), top + 1))
        base = f"/s/{channel}"
        head_links = []
        more_before = more_after = ""
        if ids and ids[0] > 1:
            older = f"{base}?before={ids[0]}"
            head_links.append(f'<link rel="prev" href="{_attr(older)}">')
            more_before = (
                '<div class="tgme_widget_message_centered js-messages_more_wrap">'
                f'<a href="{_attr(older)}" class="tme_messages_more js-messages_more" '
                f'data-before="{ids[0]}"></a></div>'
            )
        if ids and ids[-1] < total:
            newer = f"{base}?after={ids[-1]}"
            head_links.append(f'<link rel="next" href="{_attr(newer)}">')
            more_after = (
                '<div class="tgme_widget_message_centered js-messages_more_wrap">'
                f'<a href="{_attr(newer)}" class="tme_messages_more js-messages_more" '
                f'data-after="{ids[-1]}"></a></div>'
            )
        canonical = origin + base + (f"?before={before}" if before is not None else "")
        messages = "".join(self._widget(origin, channel, msg_id) for msg_id in ids)
        if not ids:
            messages = '<div class="tme_no_messages_found">No messages here yet</div>'
        title = self.title(channel)
        body = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{escape(title)} &#8211; Telegram</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
            f'<meta property="og:title" content="{_attr(title)}">'
            f'<meta property="og:image" content="{origin}/img/{_attr(channel)}/avatar.png">'
            '<meta property="og:site_name" content="Telegram">'
            f'<meta property="og:description" content="Public posts of @{_attr(channel)}">'
            f'<link rel="canonical" href="{_attr(canonical)}">'
            f"{''.join(head_links)}</head>"
            '<body class="widget_frame_base tgme_webpreview_body">'
            '<header class="tgme_header"><div class="tgme_channel_info">'
            '<div class="tgme_channel_info_header">'
            f'<div class="tgme_channel_info_header_title"><span dir="auto">{escape(title)}</span></div>'
            f'<div class="tgme_channel_info_header_username"><a href="{origin}/{_attr(channel)}">'
            f"@{escape(channel)}</a></div></div>"
            '<div class="tgme_channel_info_counters"><div class="tgme_channel_info_counter">'
            f'<span class="counter_value">{1200 + 37 * self._index[channel.lower()]}</span> <span class="counter_type">subscribers</span>'
            "</div></div></div></header>"
            '<main class="tgme_main"><section class="tgme_channel_history js-message_history">'
            f"{more_before}{messages}{more_after}</section></main></body></html>\n"
        )
        return _html(200, body)

    def _message_page(self, req: Request, channel: str, msg_id: int) -> Reply:
        origin = _origin(req, self.scheme)
        title = self.title(channel)
        text = self.text(channel, msg_id)
        photo = self.photo_path(channel, msg_id)
        image = f"{origin}{photo}" if photo else f"{origin}/img/{channel}/avatar.png"
        link = f"{origin}/{channel}/{msg_id}"
        body = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{escape(title)} &#8211; Telegram</title>"
            f'<meta property="og:title" content="{_attr(title)}">'
            f'<meta property="og:image" content="{_attr(image)}">'
            '<meta property="og:site_name" content="Telegram">'
            f'<meta property="og:description" content="{_attr(text)}">'
            f'<meta property="og:url" content="{_attr(link)}">'
            f'<meta property="twitter:title" content="{_attr(title)}">'
            f'<meta property="twitter:description" content="{_attr(text)}">'
            f'<link rel="canonical" href="{_attr(link)}">'
            '</head><body class="tgme_page_body"><div class="tgme_page_wrap">'
            '<div class="tgme_page tgme_page_post">'
            f"{self._widget(origin, channel, msg_id)}"
            '<div class="tgme_page_action">'
            f'<a class="tgme_action_button_new" href="/s/{_attr(channel)}?before={msg_id + 1}">'
            "View in channel</a></div></div></div></body></html>\n"
        )
        return _html(200, body)

    def _landing_page(self, req: Request, channel: str) -> Reply:
        origin = _origin(req, self.scheme)
        title = self.title(channel)
        body = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>Telegram: Contact @{escape(channel)}</title>"
            f'<meta property="og:title" content="{_attr(title)}">'
            f'<meta property="og:image" content="{origin}/img/{_attr(channel)}/avatar.png">'
            '</head><body class="tgme_page_body"><div class="tgme_page">'
            f'<div class="tgme_page_title"><span dir="auto">{escape(title)}</span></div>'
            f'<div class="tgme_page_extra">{self.channels[channel]} messages</div>'
            f'<div class="tgme_page_context_link_wrap"><a class="tgme_page_context_link" '
            f'href="/s/{_attr(channel)}">Preview channel</a></div></div></body></html>\n'
        )
        return _html(200, body)

    def __call__(self, req: Request) -> Reply:
        path = req.path
        if path == "/robots.txt":
            return _robots()
        parts = [p for p in path.split("/") if p]
        if len(parts) == 3 and parts[0] == "img":
            name = self._names.get(parts[1].lower())
            if name is not None:
                if parts[2] == "avatar.png":
                    return _png(70_000 + self._index[name.lower()], 32, 32)
                msg_id = _digits(parts[2].removesuffix(".png"))
                if (
                    parts[2].endswith(".png")
                    and msg_id is not None
                    and self.photo_path(name, msg_id) is not None
                    and msg_id <= self.channels[name]
                ):
                    return _png(71_000 + 1000 * self._index[name.lower()] + msg_id, 48, 32)
            return _not_found_page("No such image")
        if len(parts) == 2 and parts[0] == "s":
            name = self._names.get(parts[1].lower())
            if name is None:
                return _not_found_page(f"No channel @{parts[1]}")
            return self._channel_page(req, name)
        if len(parts) == 2:
            name = self._names.get(parts[0].lower())
            msg_id = _digits(parts[1])
            if name is None or msg_id is None or not 1 <= msg_id <= self.channels[name]:
                return _not_found_page("Post not found")
            return self._message_page(req, name, msg_id)
        if len(parts) == 1:
            name = self._names.get(parts[0].lower())
            if name is not None:
                return self._landing_page(req, name)
        return _not_found_page("Not found")


# ---------------------------------------------------------------------------------------------
# Mastodon


def _snowflake(moment: datetime, sequence: int) -> int:
    """Mastodon's ids: milliseconds since the epoch in the high bits, a sequence in the low 16."""
    return (int(moment.timestamp() * 1000) << 16) | (sequence & 0xFFFF)


@dataclass(frozen=True)
class _Status:
    n: int
    id: int
    created_at: datetime
    deleted: bool
    media_id: int | None


@dataclass(frozen=True)
class _MastodonAccount:
    index: int
    name: str
    id: str
    created_at: datetime
    statuses: tuple[_Status, ...]  # newest first, deleted ones included

    @property
    def visible(self) -> list[_Status]:
        return [s for s in self.statuses if not s.deleted]


class MastodonSite:
    """A Mastodon server's public REST API and its server-rendered profile and status pages.

    Routes (JSON answers carry ``X-RateLimit-Limit``/``-Remaining``/``-Reset``):

    - ``GET /api/v1/accounts/lookup?acct=<name>`` (or ``<name>@<host>``): Account;
      unknown -> 404 ``{"error": "Record not found"}``.
    - ``GET /api/v1/accounts/<id>``: Account.
    - ``GET /api/v1/accounts/<id>/statuses``: Status list, newest first; ``limit`` (default
      20, max 40), ``max_id``, ``since_id``, ``min_id``, ``only_media``, ``pinned``; a
      ``Link`` header with ``rel="next"`` (``max_id`` = last id; only while older statuses
      remain) and ``rel="prev"`` (``min_id`` = first id); an empty page has no ``Link``.
    - ``GET /api/v1/statuses/<id>``: Status; deleted or unknown -> 404 Record not found.
    - ``/@<name>`` (20 statuses a page, ``?max_id=`` for older ones, ``a.load-more[rel=next]``)
      and ``/@<name>/<id>``: HTML with the status content visible without JavaScript.
    - ``/users/<name>`` and ``/users/<name>/statuses/<id>`` (the federation URIs) redirect to
      the HTML pages; media under ``/system/``; ``/robots.txt``.

    Status ``n`` (1 = oldest) has ``token("mastodon-<name>", n)`` in its content; status
    :attr:`DELETED_N` is deleted, status :attr:`MEDIA_N` has an image attachment.
    """

    platform = "mastodon"
    DEFAULT_LIMIT = 20
    MAX_LIMIT = 40
    HTML_PAGE = 20
    DELETED_N = 5
    MEDIA_N = 7
    RATE_LIMIT = 300
    STEP = timedelta(hours=3, minutes=7)
    PAGINATION_FLAGS = ("only_media", "exclude_replies", "exclude_reblogs", "pinned")

    def __init__(self, accounts: dict[str, int] | None = None, *, scheme: str = "http") -> None:
        self.accounts = dict(accounts) if accounts is not None else {"fixture": 45}
        self.scheme = scheme
        self._by_name: dict[str, _MastodonAccount] = {}
        self._by_id: dict[str, _MastodonAccount] = {}
        self._statuses: dict[int, tuple[_MastodonAccount, _Status]] = {}
        self._media: dict[int, tuple[_MastodonAccount, _Status]] = {}
        for index, (name, total) in enumerate(self.accounts.items()):
            created = (BASE_DATE - timedelta(days=400 + index)).replace(hour=0, minute=0)
            statuses = []
            for n in range(total, 0, -1):
                moment = (
                    BASE_DATE
                    - timedelta(minutes=7 * index)
                    - self.STEP * (total - n)
                    - timedelta(milliseconds=(n * 137) % 1000)
                )
                status_id = _snowflake(moment, index * 4096 + n)
                media_id = status_id + 1 if n == self.MEDIA_N else None
                statuses.append(_Status(n, status_id, moment, n == self.DELETED_N, media_id))
            account = _MastodonAccount(
                index, name, str(_snowflake(created, index)), created, tuple(statuses)
            )
            self._by_name[name.lower()] = account
            self._by_id[account.id] = account
            for status in statuses:
                self._statuses[status.id] = (account, status)
                if status.media_id is not None:
                    self._media[status.media_id] = (account, status)

    # -- content -------------------------------------------------------------------------

    def account_id(self, name: str) -> str:
        return self._by_name[name.lower()].id

    def token(self, name: str, n: int) -> str:
        return token(f"mastodon-{name}", n)

    def text(self, name: str, n: int) -> str:
        account = self._by_name[name.lower()]
        seed = 41_000 + 1_000 * account.index + n
        return f"{sentences(seed, 1)[0]} {self.token(account.name, n)}"

    def _media_hash(self, media_id: int) -> str:
        return hashlib.sha256(f"mastodon-media-{media_id}".encode()).hexdigest()[:16]

    def _media_path(self, media_id: int, size: str) -> str:
        return f"/system/media_attachments/files/{media_id}/{size}/{self._media_hash(media_id)}.png"

    def posts(self, name: str) -> list[ReplicaPost]:
        """The account's statuses, newest first, without the deleted one."""
        account = self._by_name[name.lower()]
        return [
            ReplicaPost(
                platform=self.platform,
                account=account.name,
                post_id=str(s.id),
                token=self.token(account.name, s.n),
                created_at=s.created_at,
                permalink_path=f"/@{account.name}/{s.id}",
                number=s.n,
                media_path=self._media_path(s.media_id, "original") if s.media_id else None,
            )
            for s in account.visible
        ]

    def deleted_ids(self, name: str) -> list[str]:
        return [str(s.id) for s in self._by_name[name.lower()].statuses if s.deleted]

    # -- entities ------------------------------------------------------------------------

    def account_entity(self, origin: str, account: _MastodonAccount) -> Json:
        visible = account.visible
        avatar = f"{origin}/system/accounts/avatars/{account.id}/original/avatar.png"
        header = f"{origin}/system/accounts/headers/{account.id}/original/header.png"
        return {
            "id": account.id,
            "username": account.name,
            "acct": account.name,
            "display_name": f"Fixture {account.name.title()}",
            "locked": False,
            "bot": False,
            "discoverable": True,
            "indexable": True,
            "group": False,
            "created_at": _iso_ms(account.created_at),
            "note": f"<p>A fixture account for archiving tests ({escape(account.name)}).</p>",
            "url": f"{origin}/@{account.name}",
            "uri": f"{origin}/users/{account.name}",
            "avatar": avatar,
            "avatar_static": avatar,
            "header": header,
            "header_static": header,
            "followers_count": 120 + 13 * account.index,
            "following_count": 42,
            "statuses_count": len(visible),
            "last_status_at": visible[0].created_at.date().isoformat() if visible else None,
            "hide_collections": False,
            "noindex": False,
            "emojis": [],
            "roles": [],
            "fields": [],
        }

    def _attachment(self, origin: str, status: _Status) -> Json:
        assert status.media_id is not None
        return {
            "id": str(status.media_id),
            "type": "image",
            "url": origin + self._media_path(status.media_id, "original"),
            "preview_url": origin + self._media_path(status.media_id, "small"),
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": {
                "original": {"width": 48, "height": 32, "size": "48x32", "aspect": 1.5},
                "small": {"width": 24, "height": 16, "size": "24x16", "aspect": 1.5},
            },
            "description": f"Fixture photo of status {status.n}",
            "blurhash": None,
        }

    def status_entity(self, origin: str, account: _MastodonAccount, status: _Status) -> Json:
        media = [self._attachment(origin, status)] if status.media_id is not None else []
        return {
            "id": str(status.id),
            "uri": f"{origin}/users/{account.name}/statuses/{status.id}",
            "url": f"{origin}/@{account.name}/{status.id}",
            "created_at": _iso_ms(status.created_at),
            "account": self.account_entity(origin, account),
            "content": f"<p>{escape(self.text(account.name, status.n))}</p>",
            "visibility": "public",
            "sensitive": False,
            "spoiler_text": "",
            "media_attachments": media,
            "application": {"name": "Web", "website": None},
            "mentions": [],
            "tags": [],
            "emojis": [],
            "reblogs_count": status.n % 4,
            "favourites_count": (status.n * 3) % 11,
            "replies_count": status.n % 3,
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "reblog": None,
            "poll": None,
            "card": None,
            "language": "en",
            "text": None,
            "edited_at": None,
        }

    # -- API -----------------------------------------------------------------------------

    def _rate_headers(self) -> list[tuple[str, str]]:
        reset = (BASE_DATE + timedelta(minutes=5)).isoformat(timespec="microseconds")
        return [
            ("X-RateLimit-Limit", str(self.RATE_LIMIT)),
            ("X-RateLimit-Remaining", str(self.RATE_LIMIT - 1)),
            ("X-RateLimit-Reset", reset.replace("+00:00", "Z")),
        ]

    def _api(self, status: int, data: object, extra: Iterable[tuple[str, str]] = ()) -> Reply:
        return _json(status, data, [*self._rate_headers(), *extra])

    def _record_not_found(self) -> Reply:
        return self._api(404, {"error": "Record not found"})

    @staticmethod
    def _flag(value: str | None) -> bool:
        return value is not None and value.lower() in {"1", "true", "t", "on", "yes"}

    def _page(
        self,
        account: _MastodonAccount,
        *,
        limit: int,
        max_id: int | None,
        since_id: int | None,
        min_id: int | None,
        only_media: bool = False,
        pinned: bool = False,
    ) -> tuple[list[_Status], bool]:
        """One page of statuses (newest first) and whether older ones remain after it."""
        pool = [s for s in account.visible if not only_media or s.media_id is not None]
        if pinned:
            pool = []
        candidates = [
            s
            for s in pool
            if (max_id is None or s.id < max_id)
            and (since_id is None or s.id > since_id)
            and (min_id is None or s.id > min_id)
        ]
        if limit <= 0:
            return [], False
        page = candidates[-limit:] if min_id is not None else candidates[:limit]
        more = bool(page) and any(s.id < page[-1].id for s in pool)
        return page, more

    def _account_statuses(self, req: Request, account: _MastodonAccount) -> Reply:
        origin = _origin(req, self.scheme)
        raw_limit = _param(req, "limit")
        if raw_limit is None:
            limit = self.DEFAULT_LIMIT
        else:
            match = re.match(r"\s*-?(\d+)", raw_limit)
            limit = min(int(match.group(1)) if match else 0, self.MAX_LIMIT)
        flags = {name: _param(req, name) for name in self.PAGINATION_FLAGS}
        page, more = self._page(
            account,
            limit=limit,
            max_id=_digits(_param(req, "max_id")),
            since_id=_digits(_param(req, "since_id")),
            min_id=_digits(_param(req, "min_id")),
            only_media=self._flag(flags["only_media"]),
            pinned=self._flag(flags["pinned"]),
        )
        extra: list[tuple[str, str]] = []
        if page:
            base = f"{origin}/api/v1/accounts/{account.id}/statuses"
            kept = [("limit", str(limit))] + [(k, v) for k, v in flags.items() if v is not None]
            links = []
            if more:
                links.append(
                    f'<{base}?{urlencode([*kept, ("max_id", str(page[-1].id))])}>; rel="next"'
                )
            links.append(f'<{base}?{urlencode([*kept, ("min_id", str(page[0].id))])}>; rel="prev"')
            extra.append(("Link", ", ".join(links)))
        return self._api(200, [self.status_entity(origin, account, s) for s in page], extra)

    def _lookup(self, req: Request) -> Reply:
        acct = (_param(req, "acct") or "").strip().removeprefix("@")
        name, _, domain = acct.partition("@")
        host = req.host or "127.0.0.1"
        if domain and domain.lower() not in {host.lower(), host.split(":")[0].lower()}:
            return self._record_not_found()
        account = self._by_name.get(name.lower())
        if account is None:
            return self._record_not_found()
        return self._api(200, self.account_entity(_origin(req, self.scheme), account))

    def _api_route(self, req: Request, parts: list[str]) -> Reply:
        origin = _origin(req, self.scheme)
        if parts == ["api", "v1", "accounts", "lookup"]:
            return self._lookup(req)
        if len(parts) in (4, 5) and parts[:3] == ["api", "v1", "accounts"]:
            account = self._by_id.get(parts[3])
            if account is None:
                return self._record_not_found()
            if len(parts) == 4:
                return self._api(200, self.account_entity(origin, account))
            if parts[4] == "statuses":
                return self._account_statuses(req, account)
        if len(parts) == 4 and parts[:3] == ["api", "v1", "statuses"]:
            found = self._statuses.get(_digits(parts[3]) or -1)
            if found is None or found[1].deleted:
                return self._record_not_found()
            return self._api(200, self.status_entity(origin, *found))
        return self._record_not_found()

    # -- HTML ----------------------------------------------------------------------------

    def _status_html(self, origin: str, account: _MastodonAccount, status: _Status) -> str:
        url = f"{origin}/@{account.name}/{status.id}"
        gallery = ""
        if status.media_id is not None:
            gallery = (
                '<div class="media-gallery">'
                f'<a class="media-gallery__item-thumbnail" href="{origin}{self._media_path(status.media_id, "original")}">'
                f'<img src="{origin}{self._media_path(status.media_id, "small")}" '
                f'alt="Fixture photo of status {status.n}"></a></div>'
            )
        return (
            f'<div class="entry h-entry" data-id="{status.id}"><div class="status">'
            '<div class="status__info">'
            f'<a class="status__relative-time u-url u-uid" href="{_attr(url)}">'
            f'<time class="dt-published" datetime="{_iso_ms(status.created_at)}">'
            f"{status.created_at:%b %d, %Y, %H:%M}</time></a>"
            f'<a class="status__display-name p-author h-card" href="{origin}/@{account.name}">'
            f"@{escape(account.name)}</a></div>"
            f'<div class="status__content e-content" lang="en">'
            f"<p>{escape(self.text(account.name, status.n))}</p></div>"
            f"{gallery}</div></div>"
        )

    def _page_html(self, title: str, head: str, body: str) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title>"
            '<meta property="og:site_name" content="Fixture Mastodon">'
            f"{head}</head><body><main>{body}</main></body></html>\n"
        )

    def _profile_page(self, req: Request, account: _MastodonAccount) -> Reply:
        origin = _origin(req, self.scheme)
        host = req.host or "127.0.0.1"
        page, more = self._page(
            account,
            limit=self.HTML_PAGE,
            max_id=_digits(_param(req, "max_id")),
            since_id=None,
            min_id=None,
        )
        entity = self.account_entity(origin, account)
        older = f"/@{account.name}?max_id={page[-1].id}" if more else None
        head = (
            f'<meta property="og:title" content="{_attr(entity["display_name"])} (@{_attr(account.name)}@{_attr(host)})">'
            f'<meta property="og:type" content="profile">'
            f'<meta property="og:url" content="{origin}/@{_attr(account.name)}">'
            f'<meta property="og:description" content="A fixture account for archiving tests.">'
            f'<link rel="alternate" type="application/activity+json" href="{_attr(entity["uri"])}">'
            + (f'<link rel="next" href="{_attr(older)}">' if older else "")
        )
        body = (
            '<div class="h-feed">'
            f'<div class="public-account-header h-card"><img class="u-photo" src="{_attr(entity["avatar"])}" alt="">'
            f'<h1 class="p-name">{escape(entity["display_name"])}</h1>'
            f'<a class="u-url" href="{origin}/@{_attr(account.name)}">@{escape(account.name)}@{escape(host)}</a>'
            f'<div class="p-note">{entity["note"]}</div></div>'
            '<div class="activity-stream">'
            + "".join(self._status_html(origin, account, s) for s in page)
            + "</div>"
            + (
                f'<div class="entry"><a class="load-more load-gap" rel="next" href="{_attr(older)}">Load more</a></div>'
                if older
                else ""
            )
            + "</div>"
        )
        title = f"{entity['display_name']} (@{account.name}@{host})"
        return _html(200, self._page_html(title, head, body))

    def _status_page(self, req: Request, account: _MastodonAccount, status: _Status) -> Reply:
        origin = _origin(req, self.scheme)
        text = self.text(account.name, status.n)
        entity = self.status_entity(origin, account, status)
        image = (
            f'<meta property="og:image" content="{origin}{self._media_path(status.media_id, "original")}">'
            if status.media_id is not None
            else ""
        )
        head = (
            f'<meta property="og:title" content="Fixture {_attr(account.name.title())} (@{_attr(account.name)})">'
            '<meta property="og:type" content="article">'
            f'<meta property="og:url" content="{_attr(entity["url"])}">'
            f'<meta property="og:description" content="{_attr(text)}">'
            f'<meta property="og:published_time" content="{_attr(entity["created_at"])}">'
            f"{image}"
            f'<link rel="alternate" type="application/activity+json" href="{_attr(entity["uri"])}">'
            f'<link rel="canonical" href="{_attr(entity["url"])}">'
        )
        body = f'<div class="detailed-status">{self._status_html(origin, account, status)}</div>'
        return _html(200, self._page_html(f"{account.name}: {text[:40]}", head, body))

    def __call__(self, req: Request) -> Reply:
        path = req.path
        if path == "/robots.txt":
            return _robots()
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            return self._api_route(req, parts)
        if parts and parts[0].startswith("@") and len(parts) <= 2:
            account = self._by_name.get(parts[0][1:].lower())
            if account is None:
                return _not_found_page("The page you are looking for isn't here.")
            if len(parts) == 1:
                return self._profile_page(req, account)
            found = self._statuses.get(_digits(parts[1]) or -1)
            if found is None or found[0] is not account or found[1].deleted:
                return _not_found_page("The page you are looking for isn't here.")
            return self._status_page(req, account, found[1])
        if parts[:1] == ["users"] and len(parts) in (2, 4):
            account = self._by_name.get(parts[1].lower())
            if account is not None:
                if len(parts) == 2:
                    return _redirect(f"/@{account.name}")
                if parts[2] == "statuses":
                    return _redirect(f"/@{account.name}/{parts[3]}")
        if parts[:2] == ["system", "accounts"] and len(parts) == 6:
            account = self._by_id.get(parts[3])
            if account is not None and parts[5] in {"avatar.png", "header.png"}:
                big = parts[5] == "header.png"
                return _png(80_000 + 2 * account.index + big, 96 if big else 32, 32)
        if parts[:3] == ["system", "media_attachments", "files"] and len(parts) == 6:
            media_id = _digits(parts[3])
            found = self._media.get(media_id or -1)
            if (
                found is not None
                and media_id is not None
                and parts[4] in {"original", "small"}
                and parts[5] == f"{self._media_hash(media_id)}.png"
            ):
                small = parts[4] == "small"
                seed = 81_000 + 1_000 * found[0].index + found[1].n
                return _png(seed, 24 if small else 48, 16 if small else 32)
        return _not_found_page("The page you are looking for isn't here.")


# ---------------------------------------------------------------------------------------------
# Bluesky


_S32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
_HANDLE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
_AT_URI = re.compile(r"^at://([^/?#]+)(?:/([^/?#]+)(?:/([^/?#]+))?)?$")


def _tid(microseconds: int, clock_id: int) -> str:
    """An AT Protocol TID: 53 bits of microseconds, 10 of clock id, base32-sortable, 13 chars."""
    value = (microseconds << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_S32_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _cid(codec: int, data: bytes) -> str:
    """A CIDv1 (base32, sha2-256) of ``data``: codec 0x71 dag-cbor ("bafyrei…") or 0x55 raw."""
    raw = bytes((0x01, codec, 0x12, 0x20)) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


@dataclass(frozen=True)
class _BskyPost:
    n: int
    rkey: str
    cid: str
    created_at: datetime
    indexed_at: datetime
    image_cid: str | None


@dataclass(frozen=True)
class _BskyActor:
    index: int
    handle: str
    did: str
    avatar_cid: str
    posts: tuple[_BskyPost, ...]  # newest first

    @property
    def created_at(self) -> datetime:
        return BASE_DATE - timedelta(days=300 + self.index)


class _XrpcError(Exception):
    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.status = status


class BlueskySite:
    """A Bluesky AppView's public XRPC API, plus bsky.app-like HTML permalinks.

    Routes:

    - ``/xrpc/app.bsky.actor.getProfile?actor=<handle or did>``: profileViewDetailed.
    - ``/xrpc/app.bsky.feed.getAuthorFeed?actor=&limit=&cursor=&filter=``: ``{cursor?, feed}``,
      newest first; ``limit`` 1..100 (default 50); ``cursor`` is the ``createdAt`` of the
      page's last post and is absent on the last page; ``filter=posts_with_media`` keeps only
      the post with an image.
    - ``/xrpc/app.bsky.feed.getPostThread?uri=at://<did or handle>/app.bsky.feed.post/<rkey>``:
      ``{thread: threadViewPost}``.
    - ``/xrpc/com.atproto.identity.resolveHandle?handle=``: ``{did}``.
    - Errors are XRPC JSON ``{"error", "message"}``: 400 ``InvalidRequest`` (bad or missing
      params, unknown actor: "Profile not found"), 400 ``NotFound`` (unknown post), 501
      ``MethodNotImplemented`` (other methods).
    - ``/profile/<handle or did>`` and ``/profile/<handle or did>/post/<rkey>``: HTML whose
      ``og:description`` and ``<noscript>`` summary carry the text; images under ``/img/``.

    Post ``n`` (1 = oldest) has ``token("bsky-<handle>", n)`` in its text; post :attr:`MEDIA_N`
    embeds an image.
    """

    platform = "bluesky"
    DEFAULT_LIMIT = 50
    MAX_LIMIT = 100
    MEDIA_N = 7
    STEP = timedelta(hours=2, minutes=41)
    FILTERS = (
        "posts_with_replies",
        "posts_no_replies",
        "posts_with_media",
        "posts_and_author_threads",
        "posts_with_video",
    )

    def __init__(self, actors: dict[str, int] | None = None, *, scheme: str = "http") -> None:
        self.actors = dict(actors) if actors is not None else {"fixture.bsky.social": 45}
        self.scheme = scheme
        self._by_handle: dict[str, _BskyActor] = {}
        self._by_did: dict[str, _BskyActor] = {}
        for index, (handle, total) in enumerate(self.actors.items()):
            did = self.did(handle)
            posts = []
            for n in range(total, 0, -1):
                created = (
                    BASE_DATE
                    - timedelta(minutes=5 * index)
                    - self.STEP * (total - n)
                    - timedelta(milliseconds=(n * 211) % 1000)
                )
                micros = int(created.timestamp()) * 1_000_000 + created.microsecond
                rkey = _tid(micros, index * 64 + n)
                image = (
                    _cid(0x55, f"bsky-image-{handle}-{n}".encode()) if n == self.MEDIA_N else None
                )
                cid = _cid(0x71, f"bsky-post-{handle}-{n}".encode())
                posts.append(
                    _BskyPost(n, rkey, cid, created, created + timedelta(milliseconds=731), image)
                )
            actor = _BskyActor(
                index, handle, did, _cid(0x55, f"bsky-avatar-{handle}".encode()), tuple(posts)
            )
            self._by_handle[handle.lower()] = actor
            self._by_did[did] = actor

    # -- content -------------------------------------------------------------------------

    @staticmethod
    def did(handle: str) -> str:
        """The actor's deterministic ``did:plc:`` (24 base32 characters)."""
        digest = hashlib.sha256(f"plc:{handle.lower()}".encode()).digest()
        return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]

    def token(self, handle: str, n: int) -> str:
        return token(f"bsky-{handle}", n)

    def text(self, handle: str, n: int) -> str:
        actor = self._by_handle[handle.lower()]
        seed = 51_000 + 1_000 * actor.index + n
        return f"{sentences(seed, 1)[0][:200]} {self.token(actor.handle, n)}"

    def at_uri(self, handle: str, rkey: str) -> str:
        return f"at://{self._by_handle[handle.lower()].did}/app.bsky.feed.post/{rkey}"

    def _image_path(self, actor: _BskyActor, image_cid: str, size: str) -> str:
        return f"/img/{size}/plain/{actor.did}/{image_cid}@png"

    def posts(self, handle: str) -> list[ReplicaPost]:
        """The actor's posts, newest first."""
        actor = self._by_handle[handle.lower()]
        return [
            ReplicaPost(
                platform=self.platform,
                account=actor.handle,
                post_id=p.rkey,
                token=self.token(actor.handle, p.n),
                created_at=p.created_at,
                permalink_path=f"/profile/{actor.handle}/post/{p.rkey}",
                number=p.n,
                media_path=self._image_path(actor, p.image_cid, "feed_fullsize")
                if p.image_cid
                else None,
            )
            for p in actor.posts
        ]

    def deleted_ids(self, handle: str) -> list[str]:
        """The Bluesky replica has no deleted posts."""
        if handle.lower() not in self._by_handle:
            raise KeyError(handle)
        return []

    # -- views ---------------------------------------------------------------------------

    def _display_name(self, actor: _BskyActor) -> str:
        return f"Fixture {actor.handle.split('.')[0].title()}"

    def _avatar(self, origin: str, actor: _BskyActor) -> str:
        return origin + self._image_path(actor, actor.avatar_cid, "avatar")

    def profile_basic(self, origin: str, actor: _BskyActor) -> Json:
        return {
            "did": actor.did,
            "handle": actor.handle,
            "displayName": self._display_name(actor),
            "avatar": self._avatar(origin, actor),
            "associated": {"chat": {"allowIncoming": "following"}},
            "labels": [],
            "createdAt": _iso_ms(actor.created_at),
        }

    def profile_detailed(self, origin: str, actor: _BskyActor) -> Json:
        return {
            "did": actor.did,
            "handle": actor.handle,
            "displayName": self._display_name(actor),
            "description": f"A fixture account for archiving tests ({actor.handle}).",
            "avatar": self._avatar(origin, actor),
            "banner": origin + self._image_path(actor, actor.avatar_cid, "banner"),
            "followersCount": 210 + 17 * actor.index,
            "followsCount": 35,
            "postsCount": len(actor.posts),
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
            "indexedAt": _iso_ms(actor.created_at),
            "createdAt": _iso_ms(actor.created_at),
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
        }

    def post_view(self, origin: str, actor: _BskyActor, post: _BskyPost) -> Json:
        record: Json = {
            "$type": "app.bsky.feed.post",
            "createdAt": _iso_ms(post.created_at),
            "langs": ["en"],
            "text": self.text(actor.handle, post.n),
        }
        view: Json = {
            "uri": f"at://{actor.did}/app.bsky.feed.post/{post.rkey}",
            "cid": post.cid,
            "author": self.profile_basic(origin, actor),
            "record": record,
        }
        if post.image_cid is not None:
            alt = f"Fixture photo of post {post.n}"
            record["embed"] = {
                "$type": "app.bsky.embed.images",
                "images": [
                    {
                        "alt": alt,
                        "aspectRatio": {"width": 48, "height": 32},
                        "image": {
                            "$type": "blob",
                            "ref": {"$link": post.image_cid},
                            "mimeType": "image/png",
                            "size": len(png(self._image_seed(actor, post.n), 48, 32)),
                        },
                    }
                ],
            }
            view["embed"] = {
                "$type": "app.bsky.embed.images#view",
                "images": [
                    {
                        "thumb": origin + self._image_path(actor, post.image_cid, "feed_thumbnail"),
                        "fullsize": origin
                        + self._image_path(actor, post.image_cid, "feed_fullsize"),
                        "alt": alt,
                        "aspectRatio": {"width": 48, "height": 32},
                    }
                ],
            }
        view.update(
            {
                "replyCount": post.n % 3,
                "repostCount": post.n % 5,
                "likeCount": (post.n * 7) % 23,
                "quoteCount": post.n % 2,
                "indexedAt": _iso_ms(post.indexed_at),
                "labels": [],
            }
        )
        return view

    def _image_seed(self, actor: _BskyActor, n: int) -> int:
        return 91_000 + 1_000 * actor.index + n

    # -- XRPC ----------------------------------------------------------------------------

    def _actor(self, value: str | None) -> _BskyActor:
        if value is None:
            raise _XrpcError("InvalidRequest", 'Error: Params must have the property "actor"')
        if not (_HANDLE.match(value) or _DID.match(value)):
            raise _XrpcError("InvalidRequest", "Error: actor must be a valid did or a handle")
        actor = self._by_did.get(value) or self._by_handle.get(value.lower())
        if actor is None:
            raise _XrpcError("InvalidRequest", "Profile not found")
        return actor

    @staticmethod
    def _int_param(req: Request, name: str, default: int, low: int, high: int) -> int:
        raw = _param(req, name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _XrpcError("InvalidRequest", f"Error: {name} must be an integer") from None
        if value < low:
            raise _XrpcError("InvalidRequest", f"Error: {name} can not be less than {low}")
        if value > high:
            raise _XrpcError("InvalidRequest", f"Error: {name} can not be greater than {high}")
        return value

    def _get_profile(self, req: Request, origin: str) -> Json:
        return self.profile_detailed(origin, self._actor(_param(req, "actor")))

    def _get_author_feed(self, req: Request, origin: str) -> Json:
        actor = self._actor(_param(req, "actor"))
        limit = self._int_param(req, "limit", self.DEFAULT_LIMIT, 1, self.MAX_LIMIT)
        pool = list(actor.posts)
        if _param(req, "filter") == "posts_with_media":
            pool = [p for p in pool if p.image_cid is not None]
        elif _param(req, "filter") == "posts_with_video":
            pool = []
        cursor = _param(req, "cursor")
        if cursor is not None:
            try:
                bound = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
            except ValueError:
                return {"feed": []}
            if bound.tzinfo is None:
                return {"feed": []}
            pool = [p for p in pool if p.created_at < bound]
        page = pool[:limit]
        out: Json = {"feed": [{"post": self.post_view(origin, actor, p)} for p in page]}
        if len(pool) > len(page):
            out["cursor"] = _iso_ms(page[-1].created_at)
        return out

    def _get_post_thread(self, req: Request, origin: str) -> Json:
        uri = _param(req, "uri")
        if uri is None:
            raise _XrpcError("InvalidRequest", 'Error: Params must have the property "uri"')
        self._int_param(req, "depth", 6, 0, 1000)
        self._int_param(req, "parentHeight", 80, 0, 1000)
        match = _AT_URI.match(uri)
        if match is None:
            raise _XrpcError("InvalidRequest", "Error: uri must be a valid at-uri")
        authority, collection, rkey = match.groups()
        actor = self._by_did.get(authority) or self._by_handle.get(authority.lower())
        post = None
        if actor is not None and collection == "app.bsky.feed.post":
            post = next((p for p in actor.posts if p.rkey == rkey), None)
        if actor is None or post is None:
            raise _XrpcError("NotFound", f"Post not found: {uri}")
        return {
            "thread": {
                "$type": "app.bsky.feed.defs#threadViewPost",
                "post": self.post_view(origin, actor, post),
                "replies": [],
            }
        }

    def _resolve_handle(self, req: Request, origin: str) -> Json:
        handle = _param(req, "handle")
        if handle is None:
            raise _XrpcError("InvalidRequest", 'Error: Params must have the property "handle"')
        if not _HANDLE.match(handle):
            raise _XrpcError("InvalidRequest", "Error: handle must be a valid handle")
        actor = self._by_handle.get(handle.lower())
        if actor is None:
            raise _XrpcError("InvalidRequest", "Unable to resolve handle")
        return {"did": actor.did}

    def _xrpc(self, req: Request, method: str) -> Reply:
        handlers = {
            "app.bsky.actor.getProfile": self._get_profile,
            "app.bsky.feed.getAuthorFeed": self._get_author_feed,
            "app.bsky.feed.getPostThread": self._get_post_thread,
            "com.atproto.identity.resolveHandle": self._resolve_handle,
        }
        handler = handlers.get(method)
        if handler is None:
            return _json(
                501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}
            )
        try:
            return _json(200, handler(req, _origin(req, self.scheme)))
        except _XrpcError as exc:
            return _json(exc.status, {"error": exc.error, "message": exc.message})

    # -- HTML ----------------------------------------------------------------------------

    def _html_page(self, title: str, head: str, noscript: str) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title>"
            '<meta property="og:site_name" content="Bluesky Social">'
            f'{head}</head><body><div id="root"></div><noscript>'
            "<p>This is a heavily interactive web application, and JavaScript is required.</p>"
            f"{noscript}</noscript></body></html>\n"
        )

    def _post_page(self, req: Request, actor: _BskyActor, post: _BskyPost) -> Reply:
        origin = _origin(req, self.scheme)
        text = self.text(actor.handle, post.n)
        name = self._display_name(actor)
        url = f"{origin}/profile/{actor.handle}/post/{post.rkey}"
        image = (
            f'<meta property="og:image" content="{origin}{self._image_path(actor, post.image_cid, "feed_fullsize")}">'
            if post.image_cid
            else f'<meta property="og:image" content="{self._avatar(origin, actor)}">'
        )
        head = (
            '<meta property="og:type" content="article">'
            f'<meta property="profile:username" content="{_attr(actor.handle)}">'
            f'<meta property="og:url" content="{_attr(url)}">'
            f'<meta property="og:title" content="{_attr(name)} (@{_attr(actor.handle)})">'
            f'<meta property="og:description" content="{_attr(text)}">'
            f'<meta name="description" content="{_attr(text)}">'
            f'<meta property="article:published_time" content="{_iso_ms(post.indexed_at)}">'
            f"{image}"
            '<meta name="twitter:card" content="summary">'
            f'<link rel="canonical" href="{_attr(url)}">'
            f'<link rel="alternate" href="at://{actor.did}/app.bsky.feed.post/{post.rkey}">'
        )
        summary = (
            '<div id="bsky_post_summary"><h3>Post</h3>'
            f'<p id="bsky_display_name">{escape(name)}</p>'
            f'<p id="bsky_handle">{escape(actor.handle)}</p>'
            f'<p id="bsky_did">{escape(actor.did)}</p>'
            f'<p id="bsky_post_text">{escape(text)}</p>'
            f'<p id="bsky_post_indexedat">{_iso_ms(post.indexed_at)}</p></div>'
        )
        return _html(200, self._html_page(f"{name} (@{actor.handle}) on Bluesky", head, summary))

    def _profile_page(self, req: Request, actor: _BskyActor) -> Reply:
        origin = _origin(req, self.scheme)
        profile = self.profile_detailed(origin, actor)
        url = f"{origin}/profile/{actor.handle}"
        head = (
            '<meta property="og:type" content="profile">'
            f'<meta property="profile:username" content="{_attr(actor.handle)}">'
            f'<meta property="og:url" content="{_attr(url)}">'
            f'<meta property="og:title" content="{_attr(profile["displayName"])} (@{_attr(actor.handle)})">'
            f'<meta property="og:description" content="{_attr(profile["description"])}">'
            f'<meta property="og:image" content="{_attr(profile["avatar"])}">'
            f'<link rel="canonical" href="{_attr(url)}">'
            f'<link rel="alternate" href="at://{actor.did}/app.bsky.actor.profile/self">'
        )
        summary = (
            '<div id="bsky_profile_summary"><h3>Profile</h3>'
            f'<p id="bsky_display_name">{escape(profile["displayName"])}</p>'
            f'<p id="bsky_handle">{escape(actor.handle)}</p>'
            f'<p id="bsky_did">{escape(actor.did)}</p>'
            f'<p id="bsky_profile_description">{escape(profile["description"])}</p></div>'
        )
        title = f"{profile['displayName']} (@{actor.handle}) — Bluesky"
        return _html(200, self._html_page(title, head, summary))

    def _image(self, parts: list[str]) -> Reply | None:
        # /img/<size>/plain/<did>/<cid>@png
        if len(parts) != 5 or parts[2] != "plain" or not parts[4].endswith("@png"):
            return None
        actor = self._by_did.get(parts[3])
        cid = parts[4].removesuffix("@png")
        if actor is None:
            return None
        if cid == actor.avatar_cid and parts[1] in {"avatar", "banner"}:
            banner = parts[1] == "banner"
            return _png(90_000 + 2 * actor.index + banner, 96 if banner else 32, 32)
        if parts[1] in {"feed_thumbnail", "feed_fullsize"}:
            for post in actor.posts:
                if post.image_cid == cid:
                    return _png(self._image_seed(actor, post.n), 48, 32)
        return None

    def __call__(self, req: Request) -> Reply:
        path = req.path
        if path == "/robots.txt":
            return _robots()
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "xrpc":
            return self._xrpc(req, parts[1])
        if parts[:1] == ["img"]:
            return self._image(parts) or _not_found_page("No such image")
        if parts[:1] == ["profile"] and len(parts) in (2, 4):
            actor = self._by_did.get(parts[1]) or self._by_handle.get(parts[1].lower())
            if actor is None:
                return _not_found_page("Profile not found")
            if len(parts) == 2:
                return self._profile_page(req, actor)
            if parts[2] == "post":
                post = next((p for p in actor.posts if p.rkey == parts[3]), None)
                if post is not None:
                    return self._post_page(req, actor, post)
            return _not_found_page("Post not found")
        return _not_found_page("Not found")
