"""The index key's fast path gives exactly what the ``surt`` library (pywb's) gives."""

from __future__ import annotations

import random
import string

import pytest
import surt

from archive.index.cdxj import _SIMPLE_URL, surt_key


def _library(url: str) -> str | None:
    try:
        key: str = surt.surt(url)
    except Exception:
        return None
    return key


@pytest.mark.parametrize(
    "url",
    [
        "http://Example.com", "http://example.com/", "https://www.example.com/A/b/",
        "http://www2.example.com:80/x", "https://example.com:443/x", "http://example.com:8080/x/",
        "http://127.0.0.1:4000/a.html", "http://example.com/a//b", "http://example.com/a/./b",
        "http://example.com/~x/y_z-1.PNG", "http://www.com/", "http://wwwexample.com/",
        "http://localhost:8000/", "http://1.2.3.4:80/", "https://example.com:80/",
        "http://78/a", "http://0x7f.1/", "http://256.1.1.1/", "http://01.2.3.4/",
        "http://example.com/a?b=2&a=1", "http://example.com/%41", "http://xn--bcher-kva.example/",
    ],
)  # fmt: skip
def test_known_urls(url: str) -> None:
    expected = _library(url)
    assert expected is not None
    assert surt_key(url) == expected


def test_generated_urls_agree_with_the_library() -> None:
    rnd = random.Random(20261128)
    alpha = string.ascii_letters + string.digits + "-._~"
    fast = checked = 0
    for _ in range(40_000):
        if rnd.random() < 0.15:
            octets = [0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, "01", "0x7f"]
            host = ".".join(str(rnd.choice(octets)) for _ in range(rnd.randint(1, 5)))
        else:
            chars = string.ascii_letters + string.digits + "-"
            host = ".".join(
                "".join(rnd.choice(chars) for _ in range(rnd.randint(1, 6)))
                for _ in range(rnd.randint(1, 4))
            )
        if rnd.random() < 0.2:
            host = "www" + rnd.choice(["", "1", "23"]) + "." + host
        port = rnd.choice(["", ":80", ":443", ":8080", ":1", ":65535"])
        path = "".join(
            "/" + "".join(rnd.choice(alpha) for _ in range(rnd.randint(0, 5)))
            for _ in range(rnd.randint(0, 4))
        )
        url = rnd.choice(["http", "https", "HTTP"]) + "://" + host + port + path
        expected = _library(url)
        if expected is None:
            continue
        checked += 1
        fast += bool(_SIMPLE_URL.match(url))
        assert surt_key(url) == expected, url
    assert checked > 30_000
    assert fast > checked // 3, "the fast path was hardly exercised"
