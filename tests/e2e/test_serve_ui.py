"""The investigators' web page and the service's access control, in a real browser.

``attest serve`` runs twice over the archive of ``archive_fixture``: open on loopback with pywb
for replay (the embedded default), and with a tokens file and no pywb (a shared deployment).
Chromium (Playwright) drives the web page: search, capture details, URL lookup with its
timeline, framed replay, screenshots, TLS chains, and the login form. Every browser context is
guarded: a request to anything but the service is aborted and recorded, and none may happen.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import http.client
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import ssl
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from archive_fixture import NEWS_ARTICLES, Archive
from botocore.exceptions import ClientError
from playwright.sync_api import Browser, Page, expect
from support.browser import chromium
from support.browser import guarded_page as support_guarded_page
from support.cli import run_attest
from support.replay import replay_venv, warc_timestamp
from support.seaweed import SeaweedServer
from support.serve import Answer, AttestServer, free_port
from support.warcs import Rec

from archive.dates import http_date, warc_date_micros
from archive.index.db import COLUMNS, IndexDB
from archive.serve.auth import MAX_FAILURES, ROLES
from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e

WAIT_MS = 20_000


# --- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    file: Path
    investigator: str
    investigator_actor: str
    admin: str
    admin_actor: str
    legal: str
    legal_actor: str

    def token(self, role: str) -> str:
        return str(getattr(self, role))

    def actor(self, role: str) -> str:
        return str(getattr(self, f"{role}_actor"))


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    directory = tmp_path_factory.mktemp("tokens")
    made = Tokens(
        file=directory / "tokens.json",
        investigator=secrets.token_urlsafe(24),
        investigator_actor="ines@ngo.example",
        admin=secrets.token_urlsafe(24),
        admin_actor="adam@ngo.example",
        legal=secrets.token_urlsafe(24),
        legal_actor="lea@lawfirm.example",
    )
    made.file.write_text(
        json.dumps(
            [
                {
                    "actor": made.investigator_actor,
                    "role": "investigator",
                    "sha256": _sha256(made.investigator),
                },
                {"actor": made.admin_actor, "role": "admin", "sha256": _sha256(made.admin)},
                {"actor": made.legal_actor, "role": "legal", "sha256": _sha256(made.legal)},
            ]
        ),
        encoding="utf-8",
    )
    return made


@pytest.fixture(scope="module")
def open_server(
    retrieval: Archive, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AttestServer]:
    """No tokens, loopback only, pywb replaying."""
    replay_venv()  # fails clearly when the replay venv is missing
    with AttestServer(
        retrieval.env, workdir=tmp_path_factory.mktemp("serve-ui"), replay=True
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def guarded(retrieval: Archive, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """A copy of the shared archive for the tests that make changes through the service
    (claim links, holds, seals), so that other tests never see what these leave behind."""
    home = tmp_path_factory.mktemp("serve-tokens-home") / "home"
    shutil.copytree(retrieval.home, home)
    return dataclasses.replace(retrieval, home=home, env=dict(retrieval.env, ATTEST_HOME=str(home)))


@pytest.fixture(scope="module")
def guarded_server(
    guarded: Archive, tokens: Tokens, case_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AttestServer]:
    """Tokens required, no pywb; the test case (``test-case``) among its cases; serving the
    copy ``guarded``."""
    env = dict(guarded.env, ATTEST_TOKENS=str(tokens.file), ATTEST_CASES=str(case_file.parent))
    with AttestServer(env, workdir=tmp_path_factory.mktemp("serve-tokens"), replay=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@contextlib.contextmanager
def guarded_page(browser: Browser, server: AttestServer) -> Iterator[tuple[Page, list[str]]]:
    """A fresh context whose requests may only reach ``server``; others are aborted and listed."""
    with support_guarded_page(browser, server.base, timeout_ms=WAIT_MS) as guarded:
        yield guarded


# --- helpers --------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def article(retrieval: Archive, n: int) -> str:
    return retrieval.web.url("news", f"/article/{n}.html")


def uuid_of(rec: Rec) -> str:
    return rec.id.removeprefix("<urn:uuid:").removesuffix(">")


def by_uuid(retrieval: Archive, uuid: str) -> Rec:
    found = [r for r in retrieval.records if r.id == f"<urn:uuid:{uuid}>"]
    assert len(found) == 1, f"no single record {uuid}"
    return found[0]


def stored_header(rec: Rec, name: str) -> str | None:
    for line in rec.http_head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def cell(page: Page, table: str, heading: str) -> str:
    """The text of the cell next to ``heading`` in the page's ``table``."""
    row = page.locator(f"{table} tr").filter(has=page.locator("th", has_text=heading))
    return row.locator("td").inner_text().strip()


def fetch_bytes(page: Page, src: str) -> bytes:
    """``src`` fetched by the page itself (its cookies, its origin), as bytes."""
    encoded: str = page.evaluate(
        """async (src) => {
            const r = await fetch(src);
            if (!r.ok) throw new Error(`${src}: HTTP ${r.status}`);
            const bytes = new Uint8Array(await r.arrayBuffer());
            let bin = "";
            for (let i = 0; i < bytes.length; i += 0x8000) {
                bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
            }
            return btoa(bin);
        }""",
        src,
    )
    return base64.b64decode(encoded)


def pem_fingerprints(pem: Path) -> list[str]:
    blocks = re.findall(
        r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem.read_text(), re.S
    )
    assert blocks, f"{pem}: no certificate"
    return [hashlib.sha256(ssl.PEM_cert_to_DER_cert(b)).hexdigest() for b in blocks]


def reads_of(retrieval: Archive, rec: Rec, actor: str) -> list[tuple[int, str]]:
    rows = retrieval.rows(
        "SELECT seq, details FROM custody_log WHERE object = ? AND action = 'read' AND actor = ? ORDER BY seq",
        (rec.id, actor),
    )
    return [(int(seq), str(details)) for seq, details in rows]


def last_seq(retrieval: Archive) -> int:
    return int(retrieval.rows("SELECT coalesce(max(seq), 0) FROM custody_log")[0][0])


# --- 1. the web page, open on loopback, with pywb ------------------------------------------


@pytest.mark.parametrize("n", NEWS_ARTICLES)
def test_search_capture_details_lookup_timeline_and_replay(
    open_server: AttestServer, retrieval: Archive, browser: Browser, n: int
) -> None:
    url = article(retrieval, n)
    token = retrieval.web.news.article_token(n)
    captures = retrieval.responses(url)
    assert len(captures) == 2, "the fixture captures each article in two runs"
    with guarded_page(browser, open_server) as (page, leaked):
        page.goto(f"{open_server.base}/")
        expect(page.locator("h1")).to_have_text("Web evidence archive")

        # Search the captured text.
        page.get_by_role("searchbox", name="Search captured text").fill(token)
        page.get_by_role("searchbox", name="Search captured text").press("Enter")
        page.wait_for_url(re.compile(r"/ui/search\?q="))
        hits = page.locator(".hit")
        expect(hits.first).to_be_visible()
        assert {hits.nth(i).locator("a.replay").inner_text() for i in range(hits.count())} == {url}
        hit = hits.first
        assert token in hit.locator(".snippet").inner_text()
        marked = hit.locator(".snippet mark").all_inner_texts()
        assert marked, "the snippet highlights nothing"
        # The token is highlighted (whole, or word by word as the FTS tokenizer splits it).
        assert token.replace("-", "") in "".join(marked).replace("-", ""), (token, marked)

        # Its capture details: the metadata table against the WARC record itself.
        with page.expect_navigation():
            hit.get_by_role("link", name="capture details").click()
        uuid = urlsplit(page.url).path.removeprefix("/ui/capture/")
        rec = by_uuid(retrieval, uuid)
        assert rec in captures
        expect(page.locator("h1")).to_contain_text(uuid)
        assert page.locator("#payload-sha256").inner_text() == rec.headers["WARC-Payload-Digest"]
        assert page.locator("#block-sha256").inner_text() == rec.headers["WARC-Block-Digest"]
        assert page.locator("#ip").inner_text() == rec.headers["WARC-IP-Address"]
        captured = cell(page, "#metadata", "Captured (UTC)")
        assert captured == rec.headers["WARC-Date"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", captured)
        assert cell(page, "#metadata", "URL") == url
        assert cell(page, "#metadata", "HTTP status") == "200"

        # Back, then look the URL up: two captures on the timeline, grouped by year/month/day.
        page.go_back()
        page.wait_for_url(re.compile(r"/ui/search\?q="))
        page.get_by_role("textbox", name="Look up a URL").fill(url)
        with page.expect_navigation():
            page.get_by_role("button", name="Look up").click()
        assert urlsplit(page.url).path == "/ui/lookup"
        expect(page.locator("#summary")).to_contain_text("2 capture(s)")
        items = page.locator("#timeline .year .month .day li")
        expect(items).to_have_count(2)
        assert len({warc_timestamp(r.headers["WARC-Date"]) for r in captures}) == 2
        seen = set()
        for i in range(2):
            item = items.nth(i)
            # Each capture's own links: exactly its record, whatever else shares its second.
            replay = item.locator("a.replay").get_attribute("href") or ""
            exact = re.fullmatch(r"/capture/([0-9a-f-]{36})/replay", replay)
            assert exact, replay
            rec_i = by_uuid(retrieval, exact.group(1))
            assert rec_i in captures
            assert item.locator("a.raw").get_attribute("href") == f"/capture/{uuid_of(rec_i)}/raw"
            assert (
                item.locator("a.capture").get_attribute("href") == f"/ui/capture/{uuid_of(rec_i)}"
            )
            assert rec_i.headers["WARC-Date"] in item.inner_text()
            ts = warc_timestamp(rec_i.headers["WARC-Date"])
            seen.add(rec_i.id)
            day = item.locator("xpath=ancestor::div[contains(@class,'day')][1]/strong")
            assert day.inner_text() == f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}"
            month = item.locator("xpath=ancestor::div[contains(@class,'month')][1]/h3")
            assert month.inner_text() == f"{ts[:4]}-{ts[4:6]}"
            year = item.locator("xpath=ancestor::section[contains(@class,'year')][1]/h2")
            assert year.inner_text().startswith(ts[:4])
        assert seen == {r.id for r in captures}, "the timeline does not link both captures"

        # Replay: pywb's frame shows the archived article, under the capture's own prefix.
        first = by_uuid(retrieval, (items.first.locator("a.replay").get_attribute("href") or "")
                        .split("/")[2])  # fmt: skip
        with page.expect_navigation():
            items.first.locator("a.replay").click()
        page.wait_for_url(re.compile(rf"/capture/{uuid_of(first)}/web/\d{{14}}/"))
        archived = page.frame_locator("#replay_iframe")
        expect(archived.locator("body")).to_contain_text(token, timeout=WAIT_MS)
    assert not leaked, f"the web page reached outside the service: {leaked}"


def test_capture_page_shows_the_screenshot_recorded_with_the_post(
    open_server: AttestServer, retrieval: Archive, browser: Browser
) -> None:
    post = retrieval.web.social.posts("alice")[0]
    page_url = retrieval.web.url("social", post.permalink_path)
    response = retrieval.responses(page_url)[0]
    views = [
        r
        for r in retrieval.records
        if r.type == "resource"
        and (r.target or "").startswith("urn:view:")
        and r.headers.get("WARC-Concurrent-To") == response.id
    ]
    assert len(views) == 1, "the browser run recorded no screenshot for the post page"
    view = views[0]
    assert view.headers["WARC-Block-Digest"] == "sha256:" + hashlib.sha256(view.block).hexdigest()
    with guarded_page(browser, open_server) as (page, leaked):
        page.goto(f"{open_server.base}/ui/capture/{uuid_of(response)}")
        assert cell(page, "#metadata", "URL") == page_url
        img = page.locator("img#screenshot")
        expect(img).to_be_visible()
        img.evaluate("el => el.decode()")
        size = img.evaluate("el => [el.complete, el.naturalWidth, el.naturalHeight]")
        assert size[0], size
        assert size[1] > 0, size
        assert size[2] > 0, size
        src = img.get_attribute("src") or ""
        assert uuid_of(view) in src
        shown = fetch_bytes(page, src)
        assert shown.startswith(b"\x89PNG\r\n\x1a\n")
        assert hashlib.sha256(shown).hexdigest() == hashlib.sha256(view.block).hexdigest()
        # The linked-records table lists the screenshot with its hash.
        expect(page.locator("#linked")).to_contain_text(hashlib.sha256(view.block).hexdigest())
    assert not leaked, f"the capture page reached outside the service: {leaked}"


def test_capture_page_of_an_https_capture_lists_the_certificate_fingerprints(
    open_server: AttestServer, retrieval: Archive, browser: Browser
) -> None:
    https = [
        r
        for r in retrieval.records
        if r.type == "response" and (r.target or "").startswith("https://")
    ]
    assert https, "the fixture captured no HTTPS page"
    rec = https[0]
    assert retrieval.web.ca is not None
    leaf, *issuers = pem_fingerprints(retrieval.web.ca.cert_pem)
    with guarded_page(browser, open_server) as (page, leaked):
        page.goto(f"{open_server.base}/ui/capture/{uuid_of(rec)}")
        assert cell(page, "#metadata", "URL") == rec.target
        table = page.locator("table#tls")
        expect(table).to_be_visible()
        text = table.inner_text()
        listed = re.findall(r"SHA-256 ([0-9a-f]{64})", text)
    assert listed, text
    assert listed[0] == leaf, (listed, leaf)
    # The chain as the server presented it: its certificate, then the CA.
    assert listed == [leaf, *issuers], (listed, leaf, issuers)
    assert not leaked, f"the capture page reached outside the service: {leaked}"


# --- 2. access control with tokens -----------------------------------------------------------


def _protected(retrieval: Archive) -> list[str]:
    n = NEWS_ARTICLES[0]
    url = article(retrieval, n)
    rec = retrieval.responses(url)[0]
    return [
        f"/cdx?url={quote(url)}",
        f"/search?q={quote(retrieval.web.news.article_token(n))}",
        f"/web/timemap/link/{url}",
        f"/api/capture/{uuid_of(rec)}",
    ]


def test_every_api_needs_a_known_token(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens
) -> None:
    paths = _protected(guarded)
    for path in paths:
        bare = guarded_server.get(path)
        assert bare.status == 401, (path, bare.status, bare.text)
        assert bare.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token is required" in bare.text
    # Wrong tokens on one path only: each one counts against this address (rate limit).
    for wrong in ("Bearer " + secrets.token_urlsafe(24), "Bearer " + tokens.investigator + "x",
                  "Bearer " + _sha256(tokens.investigator), "Basic aW5lczpzZWNyZXQ="):  # fmt: skip
        denied = guarded_server.get(paths[0], {"Authorization": wrong})
        assert denied.status == 401, (wrong, denied.status, denied.text)
        assert "Traceback" not in denied.text
        assert tokens.investigator not in denied.text
    for path in paths:
        for good in (tokens.investigator, tokens.legal, tokens.admin):
            ok = guarded_server.get(path, {"Authorization": f"Bearer {good}"})
            assert ok.status == 200, (path, ok.status, ok.text)
            assert ok.body


def test_a_capture_read_with_a_token_is_logged_with_its_actor(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens
) -> None:
    rec = guarded.responses(article(guarded, NEWS_ARTICLES[1]))[-1]
    before = last_seq(guarded)
    answer = guarded_server.get(
        f"/api/capture/{uuid_of(rec)}", {"Authorization": f"Bearer {tokens.investigator}"}
    )
    assert answer.status == 200, answer.text
    assert json.loads(answer.text)["payload_sha256"] == rec.headers["WARC-Payload-Digest"]
    new = [(seq, d) for seq, d in reads_of(guarded, rec, tokens.investigator_actor) if seq > before]
    assert len(new) == 1, new
    seq, details = new[0]
    assert json.loads(details)["via"] == "capture metadata"
    (prev_hash,) = guarded.rows("SELECT prev_hash FROM custody_log WHERE seq = ?", (seq,))[0]
    (previous,) = guarded.rows("SELECT hash FROM custody_log WHERE seq = ?", (seq - 1,))[0]
    assert prev_hash == previous, "the read entry does not chain to the entry before it"
    # An unauthenticated attempt reads nothing and logs nothing.
    after = last_seq(guarded)
    assert guarded_server.get(f"/api/capture/{uuid_of(rec)}").status == 401
    assert last_seq(guarded) == after


def test_the_web_page_asks_for_a_login_and_keeps_a_session(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens, browser: Browser
) -> None:
    url = article(guarded, NEWS_ARTICLES[0])
    captures = guarded.responses(url)
    bare = guarded_server.get("/")
    assert bare.status == 303
    assert bare.headers["Location"].startswith("/login")
    with guarded_page(browser, guarded_server) as (page, leaked):
        # A page without a session goes to the login form, remembering where it was going.
        page.goto(f"{guarded_server.base}/ui/lookup?url={quote(url, safe='')}")
        assert urlsplit(page.url).path == "/login"
        token_box = page.get_by_label("Access token")
        expect(token_box).to_be_visible()

        # A bad token: an error, no session.
        token_box.fill("not-" + tokens.investigator)
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Log in").click()
        assert posted.value.status == 401
        expect(page.locator("#error")).to_contain_text("not valid")
        assert not [c for c in page.context.cookies() if c["name"] == "attest_session"]

        # The investigator's token: a session cookie, and the page it was going to.
        page.get_by_label("Access token").fill(tokens.investigator)
        with page.expect_navigation(url=re.compile(r"/ui/lookup")):
            page.get_by_role("button", name="Log in").click()
        session = [c for c in page.context.cookies() if c["name"] == "attest_session"]
        assert len(session) == 1, session
        assert session[0]["httpOnly"], session
        assert tokens.investigator not in session[0]["value"]
        expect(page.locator("header")).to_contain_text(
            f"{tokens.investigator_actor} (investigator)"
        )
        expect(page.locator("#summary")).to_contain_text("2 capture(s)")
        expect(page.locator("#timeline li")).to_have_count(2)

        # The session opens the other pages; reading a capture is logged with the actor.
        rec = captures[0]
        before = last_seq(guarded)
        page.locator(f"#timeline a.capture[href='/ui/capture/{uuid_of(rec)}']").click()
        page.wait_for_url(re.compile(r"/ui/capture/"))
        assert page.locator("#payload-sha256").inner_text() == rec.headers["WARC-Payload-Digest"]
        new = [
            json.loads(d)["via"]
            for seq, d in reads_of(guarded, rec, tokens.investigator_actor)
            if seq > before
        ]
        assert new == ["capture page"]
        expect(page.locator("#custody")).to_contain_text(f"read by {tokens.investigator_actor}")
        answer = page.goto(
            f"{guarded_server.base}/ui/search?q={quote(guarded.web.news.article_token(NEWS_ARTICLES[0]))}"
        )
        assert answer is not None
        assert answer.status == 200
        expect(page.locator(".hit").first).to_contain_text(url)

        # Logging out ends the session.
        page.goto(f"{guarded_server.base}/logout")
        assert urlsplit(page.url).path == "/login"
        page.goto(f"{guarded_server.base}/")
        assert urlsplit(page.url).path == "/login"
    assert not leaked, f"the web page reached outside the service: {leaked}"


def test_serving_beyond_loopback_without_tokens_is_refused(retrieval: Archive) -> None:
    proc = run_attest(
        ["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--no-replay"],
        retrieval.env,
        timeout=60,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "0.0.0.0" in proc.stderr
    assert "ATTEST_TOKENS" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "names"),
    [
        (
            json.dumps([{"actor": "ines", "role": "superuser", "sha256": "a" * 64}]),
            ("entry 0", "'role'", "superuser"),
        ),
        (
            json.dumps(
                [
                    {"actor": "ines", "role": "investigator", "sha256": "a" * 64},
                    {"actor": "adam", "role": "admin"},
                ]
            ),
            ("entry 1", "'sha256'"),
        ),
        (
            json.dumps([{"actor": "ines", "role": "investigator", "sha256": "not-a-hash"}]),
            ("entry 0", "'sha256'"),
        ),
        (json.dumps([{"role": "investigator", "sha256": "a" * 64}]), ("entry 0", "'actor'")),
        ('[{"actor": "ines", "role": "investigator",', ("cannot read tokens", "line 1")),
        (json.dumps({"actor": "ines"}), ("JSON list",)),
        ("[]", ("no token",)),
    ],
    ids=[
        "bad-role",
        "missing-sha256",
        "bad-sha256",
        "missing-actor",
        "not-json",
        "not-a-list",
        "empty",
    ],
)
def test_a_malformed_tokens_file_stops_serve_with_a_clear_error(
    retrieval: Archive, tmp_path: Path, content: str, names: tuple[str, ...]
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content, encoding="utf-8")
    env = dict(retrieval.env, ATTEST_TOKENS=str(path))
    proc = run_attest(["serve", "--port", str(free_port()), "--no-replay"], env, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert str(path) in proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)
    assert "Traceback" not in proc.stderr


# --- 3. mementos without pywb ----------------------------------------------------------------


@pytest.mark.parametrize("n", NEWS_ARTICLES)
def test_without_pywb_a_memento_is_the_archived_payload_as_sent(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens, n: int
) -> None:
    url = article(guarded, n)
    auth = {"Authorization": f"Bearer {tokens.investigator}", "Accept-Encoding": "identity"}
    for rec in guarded.responses(url):
        ts = warc_timestamp(rec.headers["WARC-Date"])
        answer = guarded_server.get(f"/web/{ts}id_/{url}", auth)
        assert answer.status == 200, answer.text
        assert answer.body == rec.http_body
        assert answer.headers.get("Content-Encoding") == stored_header(rec, "Content-Encoding")
        assert answer.headers["Content-Type"] == stored_header(rec, "Content-Type")
        assert answer.headers["Memento-Datetime"] == http_date(
            warc_date_micros(rec.headers["WARC-Date"])
        )
        link = answer.headers["Link"]
        assert f"<{url}>" in link
        assert 'rel="original"' in link
        assert f"<{guarded_server.base}/web/timemap/link/{url}>" in link
        assert f"<{guarded_server.base}/web/{url}>" in link
        # Each capture's replay link, without pywb, is its archived bytes.
        replay = guarded_server.get(f"/capture/{uuid_of(rec)}/replay", auth)
        assert replay.status == 302
        assert replay.headers["Location"] == f"/capture/{uuid_of(rec)}/raw"
        raw = guarded_server.get(replay.headers["Location"], auth)
        assert raw.status == 200
        assert raw.body == rec.http_body
    # The fixture serves articles gzip-encoded; the memento keeps the encoding as archived.
    assert stored_header(rec, "Content-Encoding") == "gzip"
    # A timestamp that is not exact goes to the exact memento; no token, no memento.
    near = guarded_server.get(f"/web/{ts[:10]}id_/{url}", auth)
    assert near.status == 302
    assert re.search(r"/web/\d{14}id_/", near.headers["Location"])
    assert guarded_server.get(f"/web/{ts}id_/{url}").status == 401


# --- 4. changes through the service: each needs its role --------------------------------------

#: The role each change needs (docs/INVESTIGATORS.md).
CHANGES = {"hold": "legal", "export": "legal", "claim link": "legal", "claim unlink": "legal",
           "custody seal": "admin"}  # fmt: skip
CALLERS = ("nobody", "investigator", "legal", "admin")


def custody_after(guarded: Archive, seq: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (str(actor), str(action), str(obj), json.loads(details))
        for actor, action, obj, details in guarded.rows(
            "SELECT actor, action, object, details FROM custody_log WHERE seq > ? ORDER BY seq",
            (seq,),
        )
    ]


def change_request(change: str, caller: str, guarded: Archive) -> tuple[str, dict[str, Any]]:
    # Each caller links a capture of its own, so every allowed link is a new one.
    url = article(guarded, NEWS_ARTICLES[CALLERS.index(caller) % 2])
    rec = guarded.responses(url)[CALLERS.index(caller) // 2]
    if change == "hold":
        return "/api/holds", {"captures": [uuid_of(rec)], "note": "matter 14"}
    if change == "export":
        return "/api/exports", {"case": "test-case", "claims": ["C2"], "unsigned": True}
    if change == "claim link":
        return "/api/claims/link", {"case": "test-case", "claim": "C3", "capture": uuid_of(rec),
                                    "note": f"linked by the {caller}"}  # fmt: skip
    if change == "claim unlink":
        return "/api/claims/unlink", {"case": "test-case", "claim": "C2", "capture": uuid_of(rec),
                                      "reason": f"withdrawn by the {caller}"}  # fmt: skip
    return "/api/custody/seal", {}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_needs_its_role_and_is_logged_with_the_caller(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens, change: str, caller: str
) -> None:
    path, body = change_request(change, caller, guarded)
    auth = {} if caller == "nobody" else {"Authorization": f"Bearer {tokens.token(caller)}"}
    if change == "claim unlink":  # something to withdraw: a link made by the admin
        made = guarded_server.post(
            "/api/claims/link", {"case": "test-case", "claim": "C2", "capture": body["capture"]},
            {"Authorization": f"Bearer {tokens.admin}"},
        )  # fmt: skip
        assert made.status == 200, made.text
    before = last_seq(guarded)
    answer = guarded_server.post(path, body, auth)
    needed = CHANGES[change]
    if caller == "nobody":
        assert answer.status == 401, answer.text
        assert custody_after(guarded, before) == []
        return
    if ROLES.index(caller) < ROLES.index(needed):
        assert answer.status == 403, answer.text
        assert f"needs the {needed} role" in answer.text
        assert custody_after(guarded, before) == []
        return
    actor = tokens.actor(caller)
    if change == "hold":
        # The role suffices; this archive's file store cannot hold (see the SeaweedFS test).
        assert answer.status == 409, answer.text
        assert "no legal holds" in answer.text
        assert custody_after(guarded, before) == []
        return
    assert answer.status in (200, 201), answer.text
    done = json.loads(answer.text)
    entries = custody_after(guarded, before)
    if change == "export":
        assert answer.status == 201
        assert done["claims"] == ["C2"]
        assert done["signed"] is False
        exports = [e for e in entries if e[1] == "export"]
        assert [(e[0], e[3]["bundle"]) for e in exports] == [(actor, done["bundle"])]
        # The bundle is offered for download, to the roles that may export only.
        got = guarded_server.get(done["download"], auth)
        assert got.status == 200
        assert hashlib.sha256(got.body).hexdigest() == done["sha256"]
        with zipfile.ZipFile(io.BytesIO(got.body)) as bundle:
            assert "datapackage.json" in bundle.namelist()
        refused = guarded_server.get(
            done["download"], {"Authorization": f"Bearer {tokens.investigator}"}
        )
        assert refused.status == 403
    elif change == "claim link":
        assert done["linked"] is True
        (entry,) = [e for e in entries if e[1] == "link"]
        assert entry[0] == actor
        assert entry[3]["case"] == "test-case"
        assert entry[3]["claim"] == "C3"
        assert entry[2] == f"<urn:uuid:{body['capture']}>"
        assert guarded.rows(
            "SELECT annotator FROM claim_links WHERE record_id = ? AND claim_id = 'C3'",
            (entry[2],),
        ) == [(actor,)]
    elif change == "claim unlink":
        assert done["withdrawn"] is True
        assert done["linked_by"] == tokens.admin_actor
        (entry,) = [e for e in entries if e[1] == "unlink"]
        assert entry[0] == actor
        assert entry[3]["reason"] == body["reason"]
        assert guarded.rows(
            "SELECT withdrawn_by FROM claim_links WHERE record_id = ? AND claim_id = 'C2' "
            "AND withdrawn_at IS NOT NULL", (entry[2],),
        ) == [(actor,)]  # fmt: skip
    else:
        assert done["sealed"], done
        (entry,) = [e for e in entries if e[1] == "seal"]
        assert entry[0] == actor
        assert guarded.rows(
            "SELECT 1 FROM custody_seals WHERE segment_key = ? AND last_seq >= ?",
            (done["sealed"], done["through"]),
        )
    verify = run_attest(["custody", "verify"], guarded.env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bad_change_requests_are_named_and_change_nothing(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens
) -> None:
    auth = {"Authorization": f"Bearer {tokens.admin}"}
    before = last_seq(guarded)
    for path, body, status, names in [
        ("/api/claims/link", {"case": "../../etc/passwd", "claim": "C1", "capture": "x"}, 400,
         "not a case id"),
        ("/api/claims/link", {"case": "no-such-case", "claim": "C1", "capture": "x"}, 404,
         "no-such-case"),
        ("/api/claims/link", {"case": "test-case", "claim": "C9",
                              "capture": uuid_of(guarded.records[0])}, 400, "C9"),
        ("/api/claims/link", {"case": "test-case", "claim": "C1", "capture": "nope"}, 400, "nope"),
        ("/api/claims/link", {"case": "test-case", "claim": "C1", "capture": uuid_of(
            next(r for r in guarded.records if r.type == "request"))}, 400, "not a page"),
        ("/api/claims/unlink", {"case": "test-case", "claim": "C1",
                                "capture": uuid_of(guarded.records[1])}, 400, "'reason'"),
        ("/api/holds", {"captures": ["x"], "case": "test-case"}, 400, "either"),
        ("/api/exports", {"case": "test-case", "claims": ["C1"], "sign": True}, 400, "'sign'"),
        ("/api/exports", {"case": "test-case", "claims": "C1", "unsigned": True}, 400, "'claims'"),
        ("/api/exports", {"case": "test-case", "claims": ["C1"]}, 409, "signing key"),
        ("/api/custody/seal", [], 400, "JSON object"),
    ]:  # fmt: skip
        answer = guarded_server.post(path, body, auth)
        assert answer.status == status, (path, body, answer.status, answer.text)
        assert names in answer.text, (names, answer.text)
        assert "Traceback" not in answer.text
    assert last_seq(guarded) == before


def _login(server: AttestServer, token: str) -> str:
    """The session cookie the login form sets for ``token``."""
    answer = server.get(
        "/login", {"Content-Type": "application/x-www-form-urlencoded"}, method="POST",
        body=urlencode({"token": token}).encode(),
    )  # fmt: skip
    assert answer.status == 303, answer.text
    return answer.headers["Set-Cookie"].split(";")[0]


def test_a_change_with_the_session_cookie_needs_the_pages_csrf_token(
    guarded_server: AttestServer, guarded: Archive, tokens: Tokens
) -> None:
    cookie = _login(guarded_server, tokens.legal)
    page = guarded_server.get("/", {"Cookie": cookie})
    found = re.search(r'<meta name="attest-csrf" content="([^"]+)">', page.text)
    assert found, page.text[:500]
    csrf = found.group(1)
    rec = guarded.responses(article(guarded, NEWS_ARTICLES[1]))[1]
    path = "/api/claims/link"
    body = {"case": "test-case", "claim": "C1", "capture": uuid_of(rec)}
    before = last_seq(guarded)
    for headers, status, why in [
        ({"Cookie": cookie}, 403, "X-CSRF-Token"),
        ({"Cookie": cookie, "X-CSRF-Token": csrf + "x"}, 403, "X-CSRF-Token"),
        ({"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "http://evil.example"}, 403,
         "cross-origin"),
    ]:  # fmt: skip
        answer = guarded_server.post(path, body, headers)
        assert answer.status == status, (headers, answer.status, answer.text)
        assert why in answer.text
    # What a cross-site HTML form can send (no JSON) is refused too.
    form = guarded_server.get(
        path, {"Cookie": cookie, "X-CSRF-Token": csrf,
               "Content-Type": "application/x-www-form-urlencoded"},
        method="POST", body=urlencode(body).encode(),
    )  # fmt: skip
    assert form.status == 415, form.text
    assert last_seq(guarded) == before
    done = guarded_server.post(
        path, body, {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": guarded_server.base}
    )
    assert done.status == 200, done.text
    assert [e[:2] for e in custody_after(guarded, before)] == [(tokens.legal_actor, "link")]


def _from(server: AttestServer, address: str, path: str, headers: dict[str, str]) -> Answer:
    """A request from another loopback address (127.0.0.2, ...), as from another client."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60,
                                      source_address=(address, 0))  # fmt: skip
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def test_failed_logins_are_rate_limited_per_client_address(
    retrieval: Archive, tokens: Tokens, tmp_path: Path
) -> None:
    env = dict(retrieval.env, ATTEST_TOKENS=str(tokens.file))
    path = f"/search?q={quote(retrieval.web.news.article_token(NEWS_ARTICLES[0]))}"
    good = {"Authorization": f"Bearer {tokens.investigator}"}
    with AttestServer(env, workdir=tmp_path, replay=False) as srv:
        for _ in range(MAX_FAILURES):
            bad = srv.get(path, {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"})
            assert bad.status == 401, bad.text
        # That address must now wait, even with a good token: guessing gains nothing.
        for attempt in (
            lambda: srv.get(path, {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}),
            lambda: srv.get(path, good),
            lambda: srv.get("/login", {"Content-Type": "application/x-www-form-urlencoded"},
                            method="POST", body=urlencode({"token": tokens.investigator}).encode()),
        ):  # fmt: skip
            throttled = attempt()
            assert throttled.status == 429, throttled.text
            assert 0 < int(throttled.headers["Retry-After"]) <= 300
            assert "too many failed logins" in throttled.text
        # Another client is not affected.
        other = _from(srv, "127.0.0.2", path, good)
        assert other.status == 200, other.text


def test_healthz_answers_while_a_slow_cdx_query_runs(tmp_path: Path) -> None:
    """Database calls run in threads: a CDX query over a large index (built here, so its
    cost is known: filters that every row but the last passes make it read and test them all,
    for seconds) does not hold up others."""
    home = tmp_path / "home"
    db = IndexDB(str(home / "index.sqlite"))
    rows = 200_000
    base = {"mime": "text/html", "status": 200, "digest": "sha256:" + "0" * 64,
            "record_type": "response", "warc_key": "warcs/big.warc.gz", "length": 900,
            "source": "big"}  # fmt: skip
    with db.transaction():
        db.executemany(
            f"INSERT INTO captures ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            (
                tuple({**base, "surt": f"com,example)/page/{i}", "url": f"http://example.com/page/{i}",
                       "ts": 1_795_000_000_000_000 + i, "warc_offset": i * 1000,
                       "record_id": f"<urn:uuid:00000000-0000-4000-8000-{i:012d}>"}.get(c)
                      for c in COLUMNS)
                for i in range(rows)
            ),
        )  # fmt: skip
    db.close()
    env = dict(os.environ, ATTEST_HOME=str(home))
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_TOKENS"):
        env.pop(name, None)
    slow = (
        "/cdx?url=example.com&matchType=domain&limit=100000&filter=mime:text/html"
        "&filter=status:200&filter=source:big&filter=!%3Dmime:text/html"
    )
    with AttestServer(env, workdir=tmp_path, replay=False) as srv:
        done: dict[str, Any] = {}

        def query() -> None:
            started = time.monotonic()
            done["answer"] = srv.get(slow)
            done["took"] = time.monotonic() - started

        worker = threading.Thread(target=query)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), f"the CDX query ended too soon to test anything: {done}"
        took = []
        for _ in range(3):
            started = time.monotonic()
            assert srv.get("/healthz").status == 200
            took.append(time.monotonic() - started)
        query_running = worker.is_alive()
        worker.join(180)
    assert done["answer"].status == 404, done["answer"].text  # no row passes the filter
    assert query_running, f"the query ({done['took']:.1f} s) ended before /healthz answered"
    assert max(took) < 0.5, f"/healthz took {took} s during a {done['took']:.1f} s query"


def test_legal_holds_through_the_service_on_seaweedfs(
    fixture_web: FixtureWeb, seaweedfs: SeaweedServer, s3_bucket: str, tokens: Tokens,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A real hold and release on an Object Lock bucket, asked for over HTTP by a legal and an
    admin caller; an investigator may not. Each change is in the custody log under its caller."""
    home = tmp_path / "home"
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
               ATTEST_STORE=f"s3://{s3_bucket}/evidence", ATTEST_TOKENS=str(tokens.file),
               **seaweedfs.env())  # fmt: skip
    for name in ("ATTEST_INDEX", "ATTEST_S3_OBJECT_LOCK_DAYS"):
        env.pop(name, None)
    press = fixture_web.url("ngo", "/press/")
    crawl = run_attest(["crawl", press, "--max-pages", "1", "--depth", "0", "--json"], env)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    with sqlite3.connect(home / "index.sqlite") as conn:
        ((record_id, key),) = conn.execute(
            "SELECT record_id, warc_key FROM captures WHERE url = ? AND record_type = 'response'",
            (press,),
        ).fetchall()
    obj = f"evidence/{key}"
    client = seaweedfs.client()

    def legal_hold() -> str:
        try:
            found = client.get_object_legal_hold(Bucket=s3_bucket, Key=obj)
            return str(found["LegalHold"].get("Status", "OFF"))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NoSuchObjectLegalHold":
                return "OFF"
            raise

    def entries() -> list[tuple[str, str, str]]:
        with sqlite3.connect(home / "index.sqlite") as conn:
            return [
                (str(a), str(b), str(c))
                for a, b, c in conn.execute(
                    "SELECT actor, action, object FROM custody_log WHERE action IN "
                    "('hold', 'release') ORDER BY seq"
                )
            ]

    body = {"captures": [record_id.removeprefix("<urn:uuid:").removesuffix(">")],
            "note": "order 7/2026"}  # fmt: skip
    with AttestServer(env, workdir=tmp_path, replay=False) as srv:
        refused = srv.post("/api/holds", body, {"Authorization": f"Bearer {tokens.investigator}"})
        assert refused.status == 403, refused.text
        assert legal_hold() == "OFF"
        held = srv.post("/api/holds", body, {"Authorization": f"Bearer {tokens.legal}"})
        assert held.status == 200, held.text
        (hold,) = json.loads(held.text)["holds"]
        assert (hold["status"], hold["previous"], hold["captures"]) == ("ON", "OFF", [record_id])
        assert legal_hold() == "ON"
        released = srv.post("/api/holds", {**body, "release": True},
                            {"Authorization": f"Bearer {tokens.admin}"})  # fmt: skip
        assert released.status == 200, released.text
        assert legal_hold() == "OFF"
    uri = f"s3://{s3_bucket}/{obj}"
    assert entries() == [(tokens.legal_actor, "hold", uri), (tokens.admin_actor, "release", uri)]
    assert run_attest(["custody", "verify"], env).returncode == 0
