"""A social network whose pages only exist after JavaScript runs.

Every page is the same HTML shell and script; the script fetches JSON from ``/api/`` and
renders the profile or the post. What tests look for is placed so that each capture mechanism
is proven by a token that exists nowhere else:

- the first page of a profile's feed: ``token("social-<handle>", n)`` in each post's text,
  present in the DOM only after the script ran (the HTML shell never holds post text);
- later pages: only after scrolling to the end (``mode: scroll``) or clicking "Show more"
  (``mode: button``);
- long posts are cut in the feed; the rest of their text, with ``token("social-x-<handle>", n)``,
  appears after clicking the post's "more" control (and always on its permalink page);
- images are lazy: ``loading=lazy`` ones and ``data-src`` ones the script swaps in when seen.

Profiles: ``alice`` (infinite scroll), ``bob`` (a "Show more" button, and one post listed in the
feed whose permalink now says it was removed), ``carol`` (suspended), ``dave`` (the feed answers
429 with Retry-After), ``erin`` (behind a login wall).

A profile may instead hold posts with given texts and times (:class:`Authored`, as the demo
case's accounts do, :mod:`demoweb.case`). Hashtags in those texts make tag pages:
``/tag/<name>`` lists every post carrying ``#<name>``, newest first, as an infinite-scroll feed
(``/api/tag/<name>/posts``) with each post's permalink.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from demoweb.assets import png, token
from demoweb.http import Reply, Request

BASE_TIME = datetime(2024, 5, 13, 8, 0, tzinfo=UTC)
PAGE_SIZE = 6


HASHTAG = re.compile(r"#(\w+)")


@dataclass(frozen=True)
class Authored:
    """A post with a given text and time (instead of a generated one)."""

    text: str
    created_at: datetime
    image: bool = False


@dataclass(frozen=True)
class Profile:
    handle: str
    name: str
    posts: int = 0
    mode: str = "scroll"  # scroll | button
    state: str = "active"  # active | suspended | rate_limited | login
    removed: tuple[int, ...] = ()
    #: Posts with given texts, newest first (``posts`` is then ignored).
    authored: tuple[Authored, ...] = ()
    #: Seconds each post's own API call (``/api/post/<id>``) takes to answer: a slow API, or
    #: (hours) one that never answers, so its page keeps showing its placeholder.
    api_delay: float = 0.0


@dataclass(frozen=True)
class SocialPost:
    handle: str
    n: int
    post_id: str
    token: str
    long_token: str | None
    created_at: str
    shown_time: str
    image: str | None
    lazy_kind: str | None
    removed: bool
    #: The text of an authored post (generated posts build theirs from the token).
    text: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def permalink_path(self) -> str:
        return f"/@{self.handle}/post/{self.post_id}"


DEFAULT_PROFILES = (
    Profile("alice", "Alice Example", posts=20, mode="scroll"),
    Profile("bob", "Bob Example", posts=14, mode="button", removed=(3,)),
    Profile("carol", "Carol Example", state="suspended"),
    Profile("dave", "Dave Example", posts=10, state="rate_limited"),
    Profile("erin", "Erin Example", posts=5, state="login"),
)

SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fixture Social</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/social.css">
<script src="/static/social.js" defer></script></head>
<body><header><a href="/">Fixture Social</a></header>
<main id="app" data-view="{view}" data-handle="{handle}" data-post="{post}" data-tag="{tag}">Loading&#8230;</main>
<noscript>This site needs JavaScript.</noscript>
</body></html>
"""

CSS = b"""body{font-family:sans-serif;margin:0 auto;max-width:40em}
.post{min-height:220px;border-bottom:1px solid #ccc;padding:1em}
.post img{display:block;width:240px;height:120px;background:#eee}
.notice{padding:2em;font-weight:bold}
"""

SCRIPT = r"""
(function () {
  const app = document.getElementById('app');
  const view = app.dataset.view, handle = app.dataset.handle, postId = app.dataset.post;
  const tagName = app.dataset.tag;
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  };
  const notice = (kind, text) => { app.replaceChildren(el('div', {class: 'notice ' + kind}, text)); };
  const lazyObserver = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const img = entry.target;
      if (img.dataset.src) { img.src = img.dataset.src; delete img.dataset.src; }
      lazyObserver.unobserve(img);
    }
  });
  function renderPost(p, full) {
    const art = el('article', {class: 'post', 'data-post-id': p.id});
    const head = el('div', {class: 'post-head'});
    head.append(el('a', {class: 'author', href: '/@' + p.handle}, '@' + p.handle), ' ');
    const link = el('a', {class: 'permalink', href: '/@' + p.handle + '/post/' + p.id});
    link.append(el('time', {class: 'post-time', datetime: p.created_at}, p.shown_time));
    head.append(link);
    art.append(head);
    const body = el('p', {class: 'post-text'});
    if (p.more && !full) {
      body.textContent = p.text + '\u2026 ';
      const more = el('button', {class: 'expand', type: 'button'}, 'more');
      more.addEventListener('click', () => { body.textContent = p.text + ' ' + p.more; });
      body.append(more);
    } else {
      body.textContent = p.text + (p.more ? ' ' + p.more : '');
    }
    art.append(body);
    if (p.image) {
      let img;
      if (p.lazy === 'data-src') {
        img = el('img', {class: 'lazy', alt: 'photo', 'data-src': p.image});
        lazyObserver.observe(img);
      } else {
        img = el('img', {alt: 'photo', loading: 'lazy', src: p.image});
      }
      art.append(img);
    }
    return art;
  }
  async function getJSON(url) {
    const r = await fetch(url, {headers: {'Accept': 'application/json'}});
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return {status: r.status, data: data};
  }
  function failure(res) {
    const error = res.data && res.data.error;
    if (res.status === 429) return notice('rate-limited', 'Rate limit exceeded. Too many requests, try again later.');
    if (error === 'suspended') return notice('suspended', 'This account has been suspended.');
    if (error === 'login_required') {
      notice('login-wall', 'Log in to see this profile.');
      const form = el('form', {class: 'login', method: 'post', action: '/login'});
      form.append(el('input', {name: 'user'}), el('input', {name: 'password', type: 'password'}),
                  el('button', {type: 'submit'}, 'Log in'));
      app.append(form);
      return;
    }
    if (error === 'removed') return notice('removed', 'This post has been removed.');
    return notice('missing', 'This page does not exist.');
  }
  async function profile() {
    const res = await getJSON('/api/profile/' + handle);
    if (res.status !== 200) return failure(res);
    const info = res.data;
    document.title = info.name + ' (@' + info.handle + ') - Fixture Social';
    app.replaceChildren(el('h1', {class: 'profile-name'}, info.name),
                        el('div', {class: 'handle'}, '@' + info.handle));
    await feedOf('/api/profile/' + handle + '/posts', info.mode);
  }
  async function tag() {
    const res = await getJSON('/api/tag/' + encodeURIComponent(tagName));
    if (res.status !== 200) return failure(res);
    document.title = '#' + res.data.tag + ' - Fixture Social';
    app.replaceChildren(el('h1', {class: 'tag-name'}, '#' + res.data.tag),
                        el('div', {class: 'tag-count'}, res.data.posts + ' posts'));
    await feedOf('/api/tag/' + encodeURIComponent(tagName) + '/posts', 'scroll');
  }
  async function feedOf(pagesUrl, mode) {
    const feed = el('section', {class: 'feed'});
    app.append(feed);
    let cursor = '0', loading = false;
    const button = el('button', {class: 'load-more', type: 'button'}, 'Show more');
    async function more() {
      if (loading || cursor === null) return;
      loading = true;
      const page = await getJSON(pagesUrl + '?cursor=' + cursor);
      loading = false;
      if (page.status !== 200) { failure(page); cursor = null; return; }
      for (const p of page.data.posts) feed.append(renderPost(p, false));
      cursor = page.data.next;
      if (cursor === null) { button.remove(); app.append(el('div', {class: 'end'}, 'No more posts.')); }
    }
    if (mode === 'button') {
      button.addEventListener('click', more);
      app.append(button);
    } else {
      window.addEventListener('scroll', () => {
        if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 100) more();
      });
    }
    await more();
  }
  async function post() {
    const res = await getJSON('/api/post/' + postId);
    if (res.status !== 200) return failure(res);
    document.title = '@' + res.data.handle + ': ' + res.data.text.slice(0, 40) + ' - Fixture Social';
    app.replaceChildren(renderPost(res.data, true));
  }
  async function index() {
    const res = await getJSON('/api/profiles');
    const list = el('ul', {class: 'profiles'});
    for (const h of res.data.handles) {
      const li = el('li');
      li.append(el('a', {href: '/@' + h}, '@' + h));
      list.append(li);
    }
    app.replaceChildren(el('h1', {}, 'Fixture Social'), list);
  }
  ({profile: profile, post: post, index: index, tag: tag})[view]();
})();
"""


class SocialSite:
    def __init__(self, profiles: tuple[Profile, ...] = DEFAULT_PROFILES) -> None:
        self.profiles = {p.handle: p for p in profiles}
        self._posts: dict[str, list[SocialPost]] = {}
        self._by_id: dict[str, SocialPost] = {}
        self._tags: dict[str, list[SocialPost]] = {}
        for p in profiles:
            if p.authored:
                posts = [self._authored(p, n, a) for n, a in enumerate(p.authored, start=1)]
            else:
                posts = [self._make(p, n) for n in range(1, p.posts + 1)]
            self._posts[p.handle] = posts
            self._by_id.update({post.post_id: post for post in posts})
            for post in posts:
                for tag in post.tags:
                    self._tags.setdefault(tag, []).append(post)
        for tagged in self._tags.values():
            tagged.sort(key=lambda post: (post.created_at, post.post_id), reverse=True)

    @staticmethod
    def _post_id(profile: Profile, n: int) -> str:
        # Distinct per handle and post: the handle's CRC picks a block of a million ids.
        return str((zlib.crc32(profile.handle.encode()) % 9000 + 1000) * 1_000_000 + n)

    @classmethod
    def _authored(cls, profile: Profile, n: int, authored: Authored) -> SocialPost:
        created = authored.created_at.astimezone(UTC)
        return SocialPost(
            handle=profile.handle,
            n=n,
            post_id=cls._post_id(profile, n),
            token=token(f"social-{profile.handle}", n),
            long_token=None,
            created_at=created.isoformat().replace("+00:00", "Z"),
            shown_time=created.strftime("%-d %b %Y, %H:%M"),
            image=f"/media/{profile.handle}/{n}.png" if authored.image else None,
            lazy_kind="loading" if authored.image else None,
            removed=False,
            text=authored.text,
            tags=tuple(dict.fromkeys(HASHTAG.findall(authored.text))),
        )

    @classmethod
    def _make(cls, profile: Profile, n: int) -> SocialPost:
        created = BASE_TIME - timedelta(hours=7 * n, minutes=n)
        post_id = cls._post_id(profile, n)
        image = f"/media/{profile.handle}/{n}.png" if n % 3 == 0 else None
        return SocialPost(
            handle=profile.handle,
            n=n,
            post_id=post_id,
            token=token(f"social-{profile.handle}", n),
            long_token=token(f"social-x-{profile.handle}", n) if n % 4 == 1 else None,
            created_at=created.isoformat().replace("+00:00", "Z"),
            shown_time=created.strftime("%-d %b %Y, %H:%M"),
            image=image,
            lazy_kind=("data-src" if n % 2 == 0 else "loading") if image else None,
            removed=n in profile.removed,
        )

    # --- for tests ----------------------------------------------------------------------
    def posts(self, handle: str) -> list[SocialPost]:
        """Every post the profile's feed lists, newest first (removed ones included)."""
        return list(self._posts.get(handle, []))

    def tagged(self, tag: str) -> list[SocialPost]:
        """Every post carrying ``#tag``, newest first (what ``/tag/<tag>`` lists)."""
        return list(self._tags.get(tag, []))

    def post_json(self, post: SocialPost) -> dict[str, Any]:
        text = post.text or (
            f"Post {post.n} by @{post.handle}: {post.token} statement relayed from the press office"
        )
        data: dict[str, Any] = {
            "id": post.post_id,
            "handle": post.handle,
            "text": text,
            "created_at": post.created_at,
            "shown_time": post.shown_time,
            "image": post.image,
            "lazy": post.lazy_kind,
        }
        if post.long_token:
            data["more"] = f"and the rest of a long post, {post.long_token}, ends here."
        return data

    # --- serving ------------------------------------------------------------------------
    def __call__(self, req: Request) -> Reply:
        path = req.path
        if path == "/robots.txt":
            return Reply(
                headers=[("Content-Type", "text/plain")], body=b"User-agent: *\nAllow: /\n"
            )
        if path == "/static/social.js":
            return Reply(headers=[("Content-Type", "application/javascript")], body=SCRIPT.encode())
        if path == "/static/social.css":
            return Reply(headers=[("Content-Type", "text/css")], body=CSS)
        if path.startswith("/media/"):
            return self._media(path)
        if path.startswith("/api/"):
            return self._api(req)
        if path == "/":
            return self._shell("index")
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "tag" and parts[1] in self._tags:
            return self._shell("tag", tag=parts[1])
        if parts[0].startswith("@") and parts[0][1:] in self.profiles:
            handle = parts[0][1:]
            if len(parts) == 1:
                return self._shell("profile", handle)
            if len(parts) == 3 and parts[1] == "post":
                return self._shell("post", handle, parts[2])
        return Reply(
            404, "Not Found", [("Content-Type", "text/html; charset=utf-8")], b"<h1>Not found</h1>"
        )

    def _shell(self, view: str, handle: str = "", post: str = "", tag: str = "") -> Reply:
        body = SHELL.format(view=view, handle=escape(handle), post=escape(post), tag=escape(tag))
        return Reply(headers=[("Content-Type", "text/html; charset=utf-8")], body=body.encode())

    def _media(self, path: str) -> Reply:
        try:
            handle, name = path[len("/media/") :].split("/")
            n = int(name.removesuffix(".png"))
        except ValueError:
            return Reply(404, "Not Found", [("Content-Type", "text/plain")], b"not found")
        return Reply(
            headers=[("Content-Type", "image/png")],
            body=png(sum(map(ord, handle)) * 100 + n, 48, 24),
        )

    @staticmethod
    def _json(data: Any, status: int = 200, reason: str = "OK", **headers: str) -> Reply:
        extra = [(k.replace("_", "-"), v) for k, v in headers.items()]
        return Reply(
            status,
            reason,
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Cache-Control", "no-store"),
                *extra,
            ],
            json.dumps(data).encode(),
        )

    def _page(self, posts: list[SocialPost], req: Request) -> Reply:
        """One page of a feed (``?cursor=<offset>``), and the cursor of the next."""
        start = int(req.query.get("cursor", ["0"])[0] or 0)
        page = posts[start : start + PAGE_SIZE]
        following = start + PAGE_SIZE
        return self._json(
            {
                "posts": [self.post_json(p) for p in page],
                "next": str(following) if following < len(posts) else None,
            }
        )

    def _api(self, req: Request) -> Reply:
        parts = req.path.strip("/").split("/")[1:]
        if parts == ["profiles"]:
            return self._json({"handles": sorted(self.profiles)})
        if len(parts) >= 2 and parts[0] == "profile":
            profile = self.profiles.get(parts[1])
            if profile is None:
                return self._json({"error": "not_found"}, 404, "Not Found")
            if profile.state == "suspended":
                return self._json({"error": "suspended"}, 403, "Forbidden")
            if profile.state == "login":
                return self._json({"error": "login_required"}, 401, "Unauthorized")
            if len(parts) == 2:
                return self._json(
                    {"handle": profile.handle, "name": profile.name, "mode": profile.mode}
                )
            if parts[2:] == ["posts"]:
                if profile.state == "rate_limited":
                    return self._json(
                        {"error": "rate_limited"}, 429, "Too Many Requests", Retry_After="3600"
                    )
                return self._page(self._posts[profile.handle], req)
        if len(parts) in (2, 3) and parts[0] == "tag":
            tagged = self._tags.get(parts[1])
            if tagged is None:
                return self._json({"error": "not_found"}, 404, "Not Found")
            if len(parts) == 2:
                return self._json({"tag": parts[1], "posts": len(tagged)})
            if parts[2] == "posts":
                return self._page(tagged, req)
        if len(parts) == 2 and parts[0] == "post":
            post = self._by_id.get(parts[1])
            if post is None:
                return self._json({"error": "not_found"}, 404, "Not Found")
            if post.removed:
                return self._json({"error": "removed"}, 410, "Gone")
            reply = self._json(self.post_json(post))
            reply.delay = self.profiles[post.handle].api_delay
            return reply
        return self._json({"error": "not_found"}, 404, "Not Found")
