"""The fixture news site: sections, articles with requisites, RSS, sitemaps and edge cases.

Named edge cases (each linked from the home page unless said otherwise):

- ``/legacy/cp1252.html``: windows-1252 bytes, charset declared only in ``<meta>``
- ``/old/start`` -> 301 ``/old/middle`` -> 302 ``/article/1.html``: a redirect chain
- ``/missing.html`` 404, ``/gone.html`` 410, ``/broken.html`` 500 (always)
- ``/busy.html``: 503 with ``Retry-After: 1`` the first time, then 200
- ``/private/secret.html``: disallowed by robots.txt
- ``/big.html``: a multi-MB page
- gzip-encoded articles (when asked for), a brotli stylesheet, chunked section pages
- ``/slow.html`` (only with ``slow=True``): answers after ``slow_delay`` seconds

With ``case_articles`` (the demo case's, :mod:`demoweb.case`), the home page lists them in a
"New Caledonia" box, and the RSS feed and the first sitemap name them too.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from dataclasses import dataclass, field
from html import escape

import brotli

from demoweb.assets import font_stub, png, sentences, token
from demoweb.case import NOTICE_EN, CaseArticle
from demoweb.http import Reply, Request

SECTIONS = ("politics", "world", "pacific", "media")
PER_PAGE = 20
SITEMAP_CHUNK = 500


def _html(title: str, body: str, *, lang: str = "en", extra_head: str = "") -> str:
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/site.css">'
        '<script src="/static/site.js" defer></script>'
        '<link rel="icon" href="/static/favicon.png">'
        f"{extra_head}</head>\n<body>\n"
        '<header><a href="/">Fixture News</a> '
        + " ".join(f'<a href="/section/{s}/">{s.title()}</a>' for s in SECTIONS)
        + f"</header>\n{body}\n<footer>Fixture News, generated for tests.</footer>\n</body></html>\n"
    )


@dataclass
class NewsSite:
    articles: int = 40
    slow: bool = False
    slow_delay: float = 5.0
    big_bytes: int = 3_000_000
    #: Page weight, for benchmarks: extra photos per article (``/img/<n>-<k>.jpg``, each
    #: ``photo_kb`` of incompressible bytes) and ``markup_kb`` of inline markup per article,
    #: as real news pages carry. The defaults keep test pages small.
    photos: int = 0
    photo_kb: int = 40
    markup_kb: int = 0
    #: The demo case's articles (see :mod:`demoweb.case`); none by default.
    case_articles: tuple[CaseArticle, ...] = ()
    _busy_served: set[str] = field(default_factory=set)
    _bodies: dict[tuple[int, bool], bytes] = field(default_factory=dict, repr=False)

    # --- content ----------------------------------------------------------------------
    def section_of(self, n: int) -> str:
        return SECTIONS[n % len(SECTIONS)]

    def article_title(self, n: int) -> str:
        return f"Article {n}: " + sentences(n * 7 + 1, 1)[0][:60].rstrip(".")

    def article_token(self, n: int) -> str:
        return token("news", n)

    def article_html(self, n: int) -> bytes:
        paras = "".join(f"<p>{escape(s)}</p>" for s in sentences(n, 24))
        related = " ".join(
            f'<a href="/article/{m}.html">Related {m}</a>'
            for m in ((n * 7 + 3) % self.articles + 1, (n * 13 + 5) % self.articles + 1)
            if m != n
        )
        body = (
            f"<article><h1>{escape(self.article_title(n))}</h1>"
            f'<p class="byline">Section <a href="/section/{self.section_of(n)}/">'
            f"{self.section_of(n)}</a></p>"
            f'<img src="/img/{n}.png" alt="photo {n}" width="24" height="16">'
            + "".join(
                f'<figure><img src="/img/{n}-{k}.jpg" alt="photo {n}.{k}" loading="lazy">'
                f"<figcaption>{escape(sentences(n * 31 + k, 1)[0])}</figcaption></figure>"
                for k in range(1, self.photos + 1)
            )
            + f'<p class="token">{self.article_token(n)}</p>{paras}'
            f'<p class="related">{related}</p></article>' + self._markup(n)
        )
        return _html(self.article_title(n), body).encode("utf-8")

    def _markup(self, n: int) -> str:
        """Inline markup of the weight real article pages carry (menus, JSON-LD, scripts)."""
        if not self.markup_kb:
            return ""
        rows = []
        size = 0
        i = 0
        while size < self.markup_kb * 1024:
            line = f'<li class="menu-item menu-{i}"><span data-i="{i}">{escape(sentences(n + i, 1)[0])}</span></li>'
            rows.append(line)
            size += len(line)
            i += 1
        return f'<nav class="mega-menu"><ul>{"".join(rows)}</ul></nav>'

    def case_article_html(self, article: CaseArticle) -> bytes:
        paras = "".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)
        body = (
            f'<article class="case"><p class="demo-notice"><strong>{escape(NOTICE_EN)}</strong></p>'
            f"<h1>{escape(article.title)}</h1>"
            f'<p class="byline">Fixture News, <time datetime="{article.date}">{article.date}</time>'
            f' &middot; Section <a href="/section/pacific/">pacific</a></p>{paras}</article>'
        )
        return _html(article.title, body).encode("utf-8")

    def case_article(self, path: str) -> CaseArticle | None:
        return next((a for a in self.case_articles if a.path == path), None)

    def photo(self, n: int, k: int) -> bytes:
        # Photos are already compressed: random bytes, seeded so every fetch gets the same ones.
        rng = random.Random(f"photo-{n}-{k}")
        return b"\xff\xd8\xff\xe0" + rng.randbytes(self.photo_kb * 1024 - 4)

    def listing_html(
        self, title: str, numbers: list[int], page: int, more: bool, base: str
    ) -> bytes:
        items = "".join(
            f'<li><a href="/article/{n}.html">{escape(self.article_title(n))}</a></li>'
            for n in numbers
        )
        nav = ""
        if page > 1:
            prev = base if page == 2 else f"{base}?page={page - 1}"
            nav += f'<a rel="prev" href="{prev}">Previous</a> '
        if more:
            nav += f'<a rel="next" href="{base}?page={page + 1}">Next</a>'
        return _html(title, f"<h1>{escape(title)}</h1><ul>{items}</ul><nav>{nav}</nav>").encode()

    def home_html(self) -> bytes:
        latest = list(range(self.articles, max(0, self.articles - PER_PAGE), -1))
        items = "".join(
            f'<li><a href="/article/{n}.html">{escape(self.article_title(n))}</a></li>'
            for n in latest
        )
        specials = [
            ("/legacy/cp1252.html", "Archive page (1998)"),
            ("/old/start", "Moved story"),
            ("/missing.html", "A missing page"),
            ("/gone.html", "A removed page"),
            ("/broken.html", "A broken page"),
            ("/busy.html", "A busy page"),
            ("/private/secret.html", "Staff only"),
            ("/big.html", "Full transcript"),
            ("/legacy/bad-header.html", "Old server"),
        ]
        if self.slow:
            specials.append(("/slow.html", "Slow page"))
        links = "".join(f'<li><a href="{h}">{escape(t)}</a></li>' for h, t in specials)
        dossier = ""
        if self.case_articles:
            stories = "".join(
                f'<li><a href="{a.path}">{escape(a.title)}</a> ({a.date})</li>'
                for a in self.case_articles
            )
            dossier = (
                f'<h2>New Caledonia (demo reproductions)</h2><ul class="dossier">{stories}</ul>'
            )
        body = (
            '<h1>Fixture News</h1><p><a href="/rss.xml">RSS</a></p>'
            f'{dossier}<h2>Latest</h2><ul class="latest">{items}</ul><h2>Also</h2><ul>{links}</ul>'
        )
        return _html("Fixture News", body).encode()

    def css(self) -> bytes:
        return (
            b"@font-face{font-family:Fixture;src:url(/static/fixture.woff2) format('woff2')}\n"
            b"body{font-family:Fixture,serif;background:url('/static/bg.png') repeat-x}\n"
            b"header a{margin-right:1em}\n" + b"/* padding */\n" * 40
        )

    def js(self) -> bytes:
        return b"document.documentElement.dataset.fixture='news';\n"

    def rss(self, origin: str) -> bytes:
        items = "".join(
            f"<item><title>{escape(a.title)}</title>"
            f"<link>{origin}{a.path}</link><guid>{origin}{a.path}</guid></item>"
            for a in self.case_articles
        ) + "".join(
            f"<item><title>{escape(self.article_title(n))}</title>"
            f"<link>{origin}/article/{n}.html</link><guid>{origin}/article/{n}.html</guid></item>"
            for n in range(self.articles, max(0, self.articles - 50), -1)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Fixture News</title><link>{origin}/</link>{items}</channel></rss>"
        ).encode()

    def sitemap_index(self, origin: str) -> bytes:
        count = (self.articles + SITEMAP_CHUNK - 1) // SITEMAP_CHUNK
        if self.case_articles:
            count = max(count, 1)
        maps = "".join(
            f"<sitemap><loc>{origin}/sitemap-{i}.xml</loc></sitemap>" for i in range(1, count + 1)
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
        ).encode()

    def sitemap(self, origin: str, i: int) -> bytes:
        first = (i - 1) * SITEMAP_CHUNK + 1
        last = min(self.articles, i * SITEMAP_CHUNK)
        urls = "".join(
            f"<url><loc>{origin}/article/{n}.html</loc></url>" for n in range(first, last + 1)
        )
        if i == 1:
            urls += "".join(f"<url><loc>{origin}{a.path}</loc></url>" for a in self.case_articles)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        ).encode()

    def all_paths(self) -> list[str]:
        """Every in-scope path a full crawl with requisites should capture (robots obeyed)."""
        paths = [
            "/",
            "/robots.txt",
            "/rss.xml",
            "/static/site.css",
            "/static/site.js",
            "/static/favicon.png",
            "/static/fixture.woff2",
            "/static/bg.png",
        ]
        paths += [f"/article/{n}.html" for n in range(1, self.articles + 1)]
        paths += [f"/img/{n}.png" for n in range(1, self.articles + 1)]
        paths += [
            f"/img/{n}-{k}.jpg"
            for n in range(1, self.articles + 1)
            for k in range(1, self.photos + 1)
        ]
        for s in SECTIONS:
            count = len([n for n in range(1, self.articles + 1) if self.section_of(n) == s])
            pages = max(1, (count + PER_PAGE - 1) // PER_PAGE)
            paths.append(f"/section/{s}/")
            paths += [f"/section/{s}/?page={p}" for p in range(2, pages + 1)]
        paths += [
            "/legacy/cp1252.html",
            "/old/start",
            "/old/middle",
            "/missing.html",
            "/gone.html",
            "/broken.html",
            "/busy.html",
            "/big.html",
            "/legacy/bad-header.html",
        ]
        paths += [a.path for a in self.case_articles]
        return paths

    # --- routing ----------------------------------------------------------------------
    def __call__(self, req: Request) -> Reply:
        path = req.path
        origin = f"http://{req.host}" if req.host else ""
        html = [("Content-Type", "text/html; charset=utf-8")]
        if path == "/":
            return Reply(headers=html, body=self.home_html())
        if path == "/robots.txt":
            body = (
                f"User-agent: *\nDisallow: /private/\n\nSitemap: {origin}/sitemap.xml\n"
            ).encode()
            return Reply(headers=[("Content-Type", "text/plain")], body=body)
        if path == "/sitemap.xml":
            return Reply(
                headers=[("Content-Type", "application/xml")], body=self.sitemap_index(origin)
            )
        if path.startswith("/sitemap-") and path.endswith(".xml"):
            try:
                i = int(path[len("/sitemap-") : -4])
            except ValueError:
                return self.not_found()
            return Reply(
                headers=[("Content-Type", "application/xml")], body=self.sitemap(origin, i)
            )
        if path == "/rss.xml":
            return Reply(headers=[("Content-Type", "application/rss+xml")], body=self.rss(origin))
        if path.startswith("/article/") and path.endswith(".html"):
            try:
                n = int(path[len("/article/") : -5])
            except ValueError:
                return self.not_found()
            if not 1 <= n <= self.articles:
                return self.not_found()
            zipped = req.accepts("gzip")
            # Generated once per article: the server must not be the benchmark's bottleneck.
            cached = self._bodies.get((n, zipped))
            if cached is None:
                cached = self.article_html(n)
                if zipped:
                    cached = gzip.compress(cached, mtime=0)
                self._bodies[(n, zipped)] = cached
            body = cached
            if zipped:
                return Reply(
                    headers=[*html, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")],
                    body=body,
                )
            return Reply(headers=html, body=body)
        if path.startswith("/img/") and path.endswith(".jpg") and "-" in path:
            try:
                n, k = (int(x) for x in path[len("/img/") : -4].split("-", 1))
            except ValueError:
                return self.not_found()
            if not (1 <= n <= self.articles and 1 <= k <= self.photos):
                return self.not_found()
            return Reply(headers=[("Content-Type", "image/jpeg")], body=self.photo(n, k))
        if path.startswith("/img/") and path.endswith(".png"):
            try:
                n = int(path[len("/img/") : -4])
            except ValueError:
                return self.not_found()
            return Reply(headers=[("Content-Type", "image/png")], body=png(n))
        if path.startswith("/section/"):
            name = path.split("/")[2]
            if name not in SECTIONS:
                return self.not_found()
            page = int(req.query.get("page", ["1"])[0] or 1)
            numbers = [n for n in range(self.articles, 0, -1) if self.section_of(n) == name]
            chunk = numbers[(page - 1) * PER_PAGE : page * PER_PAGE]
            if not chunk and page > 1:
                return self.not_found()
            more = len(numbers) > page * PER_PAGE
            body = self.listing_html(name.title(), chunk, page, more, f"/section/{name}/")
            # Sections come chunked, in uneven pieces, as dynamic pages often do.
            return Reply(headers=html, body=body, chunks=[1000, 517, 4096])
        if path == "/static/site.css":
            css = self.css()
            if req.accepts("br"):
                return Reply(
                    headers=[("Content-Type", "text/css"), ("Content-Encoding", "br")],
                    body=brotli.compress(css),
                )
            return Reply(headers=[("Content-Type", "text/css")], body=css)
        if path == "/static/site.js":
            return Reply(headers=[("Content-Type", "application/javascript")], body=self.js())
        if path in ("/static/favicon.png", "/static/bg.png"):
            return Reply(headers=[("Content-Type", "image/png")], body=png(len(path)))
        if path == "/static/fixture.woff2":
            return Reply(headers=[("Content-Type", "font/woff2")], body=font_stub())
        article = self.case_article(path)
        if article is not None:
            return Reply(headers=html, body=self.case_article_html(article))
        return self.special(req)

    def special(self, req: Request) -> Reply:
        path = req.path
        if path == "/legacy/cp1252.html":
            text = (
                '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
                "<title>Archive 1998</title></head><body><h1>Caf\u00e9 \u2013 \u201cquotes\u201d</h1>"
                f"<p>{token('legacy', 1)} na\u00efve r\u00e9sum\u00e9 \u20ac5</p></body></html>"
            )
            return Reply(headers=[("Content-Type", "text/html")], body=text.encode("cp1252"))
        if path == "/legacy/bad-header.html":
            # A header line without a colon, as some old servers send: kept as received.
            return Reply(
                headers=[("Content-Type", "text/html")],
                # A line without a colon, and a name that is not an HTTP token.
                raw_lines=["X-Powered-By PHP/4.4.9", "Server Name: legacy"],
                body=f"<p>{token('legacy', 2)}</p>".encode(),
            )
        if path == "/old/start":
            return Reply(
                301, "Moved Permanently", [("Location", "/old/middle"), ("Content-Length", "0")]
            )
        if path == "/old/middle":
            return Reply(302, "Found", [("Location", "/article/1.html"), ("Content-Length", "0")])
        if path == "/missing.html":
            return self.not_found()
        if path == "/gone.html":
            return Reply(410, "Gone", [("Content-Type", "text/html")], b"<h1>410 Gone</h1>")
        if path == "/broken.html":
            return Reply(
                500, "Internal Server Error", [("Content-Type", "text/html")], b"<h1>500</h1>"
            )
        if path == "/busy.html":
            key = req.host + path
            if key not in self._busy_served:
                self._busy_served.add(key)
                return Reply(
                    503,
                    "Service Unavailable",
                    [("Content-Type", "text/html"), ("Retry-After", "1")],
                    b"<h1>busy, retry</h1>",
                )
            return Reply(
                headers=[("Content-Type", "text/html; charset=utf-8")],
                body=_html("Busy page", f"<p>{token('busy', 1)}</p>").encode(),
            )
        if path == "/private/secret.html":
            return Reply(headers=[("Content-Type", "text/html")], body=b"<p>secret</p>")
        if path == "/big.html":
            line = b"<p>" + b"transcript " * 20 + b"</p>\n"
            reps = self.big_bytes // len(line) + 1
            body = (
                b"<!doctype html><html><body><h1>Transcript</h1>" + line * reps + b"</body></html>"
            )
            return Reply(headers=[("Content-Type", "text/html; charset=utf-8")], body=body)
        if path == "/slow.html" and self.slow:
            return Reply(
                headers=[("Content-Type", "text/html")], body=b"<p>slow</p>", delay=self.slow_delay
            )
        return self.not_found()

    @staticmethod
    def not_found() -> Reply:
        return Reply(404, "Not Found", [("Content-Type", "text/html")], b"<h1>404 Not Found</h1>")


def body_sha256(reply: Reply) -> str:
    return hashlib.sha256(reply.body).hexdigest()
