"""Scope: a source's seeds' origins, its listed hosts and prefixes, nothing else."""

from __future__ import annotations

from crawlers.registry import SourceSpec
from crawlers.scope import Scope, origin


def test_origin_is_scheme_host_and_port() -> None:
    assert origin("https://Example.org/a") == ("https", "example.org", 443)
    assert origin("http://example.org:8080/") == ("http", "example.org", 8080)
    assert origin("ftp://example.org/") is None
    assert origin("http://example.org:99999/") is None


def test_seed_origins_hosts_and_prefixes() -> None:
    source = SourceSpec(
        id="s", kind="news", seeds=("https://news.example/", "http://127.0.0.1:8001/x"),
        hosts=("media.example", "cdn.example:8443"), prefixes=("https://ngo.example/press/",),
    )  # fmt: skip
    scope = Scope.for_source(source)
    assert scope.allows("https://news.example/any/page")
    assert not scope.allows("http://news.example/any/page")  # other scheme, other origin
    assert scope.allows("http://127.0.0.1:8001/other")
    assert not scope.allows("http://127.0.0.1:8002/")
    assert scope.allows("https://media.example/photo.jpg")
    assert scope.allows("http://media.example:8080/")  # a listed host, any port
    assert scope.allows("https://cdn.example:8443/x")
    assert not scope.allows("https://cdn.example/x")  # host:port listed: that port only
    assert scope.allows("https://ngo.example/press/2024/release.html")
    assert not scope.allows("https://ngo.example/about/")
    assert not scope.allows("mailto:someone@news.example")
