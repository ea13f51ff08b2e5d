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
import hashlib
import json
import re
import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from archive_fixture import NEWS_ARTICLES, Archive
from playwright.sync_api import Browser, Page, expect
from support.browser import chromium
from support.browser import guarded_page as support_guarded_page
from support.cli import run_attest
from support.replay import replay_venv, warc_timestamp
from support.serve import AttestServer, free_port
from support.warcs import Rec

from archive.dates import http_date, warc_date_micros

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


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    directory = tmp_path_factory.mktemp("tokens")
    made = Tokens(
        file=directory / "tokens.json",
        investigator=secrets.token_urlsafe(24),
        investigator_actor="ines@ngo.example",
        admin=secrets.token_urlsafe(24),
        admin_actor="adam@ngo.example",
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
def guarded_server(
    retrieval: Archive, tokens: Tokens, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AttestServer]:
    """Tokens required, no pywb."""
    env = dict(retrieval.env, ATTEST_TOKENS=str(tokens.file))
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
        expected = {warc_timestamp(r.headers["WARC-Date"]): r for r in captures}
        assert len(expected) == 2, "the two runs share a second"
        seen = set()
        for i in range(2):
            item = items.nth(i)
            replay = item.locator("a.replay").get_attribute("href") or ""
            stamp = re.fullmatch(r"/web/(\d{14})/(.+)", replay)
            assert stamp, replay
            assert stamp.group(2) == url, replay
            rec_i = expected[stamp.group(1)]
            assert (
                item.locator("a.capture").get_attribute("href") == f"/ui/capture/{uuid_of(rec_i)}"
            )
            assert rec_i.headers["WARC-Date"] in item.inner_text()
            ts = stamp.group(1)
            seen.add(ts)
            day = item.locator("xpath=ancestor::div[contains(@class,'day')][1]/strong")
            assert day.inner_text() == f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}"
            month = item.locator("xpath=ancestor::div[contains(@class,'month')][1]/h3")
            assert month.inner_text() == f"{ts[:4]}-{ts[4:6]}"
            year = item.locator("xpath=ancestor::section[contains(@class,'year')][1]/h2")
            assert year.inner_text().startswith(ts[:4])
        assert seen == set(expected), "the timeline does not link both captures"

        # Replay: pywb's frame shows the archived article.
        with page.expect_navigation():
            items.first.locator("a.replay").click()
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
    guarded_server: AttestServer, retrieval: Archive, tokens: Tokens
) -> None:
    for path in _protected(retrieval):
        bare = guarded_server.get(path)
        assert bare.status == 401, (path, bare.status, bare.text)
        assert bare.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token is required" in bare.text
        for wrong in ("Bearer " + secrets.token_urlsafe(24), "Bearer " + tokens.investigator + "x",
                      "Bearer " + _sha256(tokens.investigator), "Basic aW5lczpzZWNyZXQ="):  # fmt: skip
            denied = guarded_server.get(path, {"Authorization": wrong})
            assert denied.status == 401, (path, wrong, denied.status, denied.text)
            assert "Traceback" not in denied.text
            assert tokens.investigator not in denied.text
        for good in (tokens.investigator, tokens.admin):
            ok = guarded_server.get(path, {"Authorization": f"Bearer {good}"})
            assert ok.status == 200, (path, ok.status, ok.text)
            assert ok.body


def test_a_capture_read_with_a_token_is_logged_with_its_actor(
    guarded_server: AttestServer, retrieval: Archive, tokens: Tokens
) -> None:
    rec = retrieval.responses(article(retrieval, NEWS_ARTICLES[1]))[-1]
    before = last_seq(retrieval)
    answer = guarded_server.get(
        f"/api/capture/{uuid_of(rec)}", {"Authorization": f"Bearer {tokens.investigator}"}
    )
    assert answer.status == 200, answer.text
    assert json.loads(answer.text)["payload_sha256"] == rec.headers["WARC-Payload-Digest"]
    new = [
        (seq, d) for seq, d in reads_of(retrieval, rec, tokens.investigator_actor) if seq > before
    ]
    assert len(new) == 1, new
    seq, details = new[0]
    assert json.loads(details)["via"] == "capture metadata"
    (prev_hash,) = retrieval.rows("SELECT prev_hash FROM custody_log WHERE seq = ?", (seq,))[0]
    (previous,) = retrieval.rows("SELECT hash FROM custody_log WHERE seq = ?", (seq - 1,))[0]
    assert prev_hash == previous, "the read entry does not chain to the entry before it"
    # An unauthenticated attempt reads nothing and logs nothing.
    after = last_seq(retrieval)
    assert guarded_server.get(f"/api/capture/{uuid_of(rec)}").status == 401
    assert last_seq(retrieval) == after


def test_the_web_page_asks_for_a_login_and_keeps_a_session(
    guarded_server: AttestServer, retrieval: Archive, tokens: Tokens, browser: Browser
) -> None:
    url = article(retrieval, NEWS_ARTICLES[0])
    captures = retrieval.responses(url)
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
        before = last_seq(retrieval)
        page.locator(f"#timeline a.capture[href='/ui/capture/{uuid_of(rec)}']").click()
        page.wait_for_url(re.compile(r"/ui/capture/"))
        assert page.locator("#payload-sha256").inner_text() == rec.headers["WARC-Payload-Digest"]
        new = [
            json.loads(d)["via"]
            for seq, d in reads_of(retrieval, rec, tokens.investigator_actor)
            if seq > before
        ]
        assert new == ["capture page"]
        expect(page.locator("#custody")).to_contain_text(f"read by {tokens.investigator_actor}")
        answer = page.goto(
            f"{guarded_server.base}/ui/search?q={quote(retrieval.web.news.article_token(NEWS_ARTICLES[0]))}"
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
    guarded_server: AttestServer, retrieval: Archive, tokens: Tokens, n: int
) -> None:
    url = article(retrieval, n)
    auth = {"Authorization": f"Bearer {tokens.investigator}", "Accept-Encoding": "identity"}
    for rec in retrieval.responses(url):
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
    # The fixture serves articles gzip-encoded; the memento keeps the encoding as archived.
    assert stored_header(rec, "Content-Encoding") == "gzip"
    # A timestamp that is not exact goes to the exact memento; no token, no memento.
    near = guarded_server.get(f"/web/{ts[:10]}id_/{url}", auth)
    assert near.status == 302
    assert re.search(r"/web/\d{14}id_/", near.headers["Location"])
    assert guarded_server.get(f"/web/{ts}id_/{url}").status == 401
