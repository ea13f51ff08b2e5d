"""Requisites and outlinks: what a replay needs, found in one pass over the HTML and CSS."""

from __future__ import annotations

from crawlers.links import extract_css, extract_html

PAGE = b"""<!doctype html><html><head>
<base href="https://news.example/section/">
<link rel="stylesheet" href="/static/site.css"><link rel="icon" href="favicon.ico">
<link rel="alternate" href="/feed.xml"><link rel="preload" href="/font.woff2" as="font">
<script src="app.js"></script><style>body{background:url('/bg.png')}</style>
</head><body background="/body.gif">
<img src="a.png" srcset="a-2x.png 2x, /a-3x.png 3x"><img data-src="/lazy.jpg">
<picture><source srcset="/p.webp 1x"></picture><video src="/v.mp4" poster="/poster.jpg"></video>
<iframe src="/embed.html"></iframe><object data="/doc.pdf"></object>
<div style="background-image: url(&quot;/div.png&quot;)"></div>
<a href="story.html#comments">story</a><a href="https://other.example/x">other</a>
<a href="javascript:void(0)">js</a><a href="mailto:a@b.c">mail</a><a href="#top">top</a>
<area href="/map-target"><a href="../up/../index.html">up</a><a href="//cdn.example/x.html">cdn</a>
</body></html>"""


def test_requisites_cover_styles_scripts_images_media_frames_and_css_urls() -> None:
    links = extract_html(PAGE, "https://news.example/section/page.html", "utf-8")
    assert links.base == "https://news.example/section/"
    expected = {
        "https://news.example/static/site.css", "https://news.example/section/favicon.ico",
        "https://news.example/font.woff2", "https://news.example/section/app.js",
        "https://news.example/bg.png", "https://news.example/body.gif",
        "https://news.example/section/a.png", "https://news.example/section/a-2x.png",
        "https://news.example/a-3x.png", "https://news.example/lazy.jpg", "https://news.example/p.webp",
        "https://news.example/v.mp4", "https://news.example/poster.jpg", "https://news.example/embed.html",
        "https://news.example/doc.pdf", "https://news.example/div.png",
    }  # fmt: skip
    assert set(links.requisites) == expected
    assert (
        "https://news.example/feed.xml" not in links.requisites
    )  # rel=alternate is a link, not a requisite


def test_outlinks_are_absolute_without_fragments_or_non_http_schemes() -> None:
    links = extract_html(PAGE, "https://news.example/section/page.html", "utf-8")
    assert links.outlinks == [
        "https://news.example/section/story.html",
        "https://other.example/x",
        "https://news.example/map-target",
        "https://news.example/index.html",
        "https://cdn.example/x.html",
    ]


def test_legacy_encodings_and_empty_bodies_are_handled() -> None:
    body = '<html><body><a href="/caf\u00e9.html">caf\u00e9</a></body></html>'.encode("cp1252")
    links = extract_html(body, "http://old.example/", "cp1252")
    assert links.outlinks == ["http://old.example/caf\u00e9.html"]
    assert extract_html(b"   ", "http://old.example/", None).outlinks == []


def test_css_urls_and_imports() -> None:
    css = b"""@import "print.css"; @import url(/theme.css);
    @font-face{src:url(/f.woff2) format('woff2'), url("data:font/woff2;base64,AAAA")}
    .a{background:url( 'img/x.png' )}"""
    assert extract_css(css, "https://s.example/css/main.css") == [
        "https://s.example/css/print.css",
        "https://s.example/theme.css",
        "https://s.example/f.woff2",
        "https://s.example/css/img/x.png",
    ]
