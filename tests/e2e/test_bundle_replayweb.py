"""A real client opens an exported bundle: ReplayWeb.page shows the captured pages (issue 5).

``attest export`` writes claims C1 (a news article) and C2 (a browser-captured post) of the case
of ``archive_fixture`` as a signed, timestamped WACZ. A directory served on 127.0.0.1 holds it
beside ReplayWeb.page's own files (npm ``replaywebpage``, pinned, unpacked into ``.replayweb/``
by ``./setup.sh``): ``ui.js``, the service worker ``replay/sw.js``, and pages embedding
``<replay-web-page source="/bundle.wacz" url=...>``. Debian's Chromium opens them with every
request outside that origin aborted, so the live fixture web is never reached: what shows comes
from the bundle. ReplayWeb.page reads the WACZ with HTTP Range requests from its service worker
and renders the captured page in an iframe (``/replay/w/<coll>/<ts>mp_/<url>``), inside its app
iframe and shadow DOM; the tests wait for the captured page's own text in that frame.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pytest
from archive_fixture import NEWS_ARTICLES, Archive
from playwright.sync_api import Browser, ConsoleMessage, Frame, Page
from playwright.sync_api import Error as PlaywrightError
from signing_fixture import Signing
from support.browser import chromium, guarded_page
from support.cli import ROOT, run_attest
from support.static import StaticServer

pytestmark = pytest.mark.e2e

RWP_VERSION = "2.5.3"  # as pinned in setup.sh
RWP_DIR = ROOT / ".replayweb" / "replaywebpage"
#: From opening the page to the captured text in the replay frame: ReplayWeb.page registers its
#: service worker, reads the WACZ's directory and index, then the page (a few seconds here).
RENDER_TIMEOUT = 60.0

#: Text of a frame, shadow roots included (ReplayWeb.page's UI and its errors live in them).
_DEEP_TEXT = """() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) out.push(node.textContent);
    if (['SCRIPT', 'STYLE'].includes(node.nodeName)) return;
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  if (document.body) walk(document.body);
  return out.join(' ').replace(/\\s+/g, ' ').trim();
}"""

#: ReplayWeb.page's own record of what it verified in the WACZ (IndexedDB, store
#: ``verification`` of each collection's database): ``[{id, matched}]``.
_VERIFICATION = """async () => {
  const rows = [];
  for (const info of await indexedDB.databases()) {
    const db = await new Promise((ok, ko) => {
      const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); r.onerror = ko;
    });
    if (db.objectStoreNames.contains('verification')) {
      const all = await new Promise((ok, ko) => {
        const r = db.transaction('verification').objectStore('verification').getAll();
        r.onsuccess = () => ok(r.result); r.onerror = ko;
      });
      for (const row of all) rows.push({id: row.id, matched: row.matched});
    }
    db.close();
  }
  return rows;
}"""


@dataclass
class Viewer:
    server: StaticServer
    bundle: Path

    def embed(self, name: str, url: str | None) -> str:
        """Writes ``<name>.html`` embedding the bundle (at ``url``, else its list of pages)."""
        at = f' url="{escape(url)}"' if url else ""
        (self.server.root / f"{name}.html").write_text(
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>attest bundle</title>'
            '<script src="/ui.js"></script></head>\n<body style="margin:0;height:100vh">'
            f'<replay-web-page source="/bundle.wacz"{at} replayBase="/replay/">'
            "</replay-web-page></body></html>\n"
        )
        return f"{self.server.base}/{name}.html"


@dataclass
class Session:
    """One page of a fresh browser context on the viewer, with what it logged."""

    page: Page
    leaked: list[str]
    console: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def viewer(
    signing: Signing, case_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Viewer]:
    """ReplayWeb.page and the bundle of claims C1 and C2, served on 127.0.0.1."""
    package = RWP_DIR / "package.json"
    version = json.loads(package.read_text())["version"] if package.is_file() else None
    if version != RWP_VERSION:
        pytest.fail(
            f"ReplayWeb.page {RWP_VERSION} is not in {RWP_DIR} (found: {version}): run ./setup.sh",
            pytrace=False,
        )
    site = tmp_path_factory.mktemp("replayweb-site")
    (site / "replay").mkdir()
    shutil.copy(RWP_DIR / "ui.js", site / "ui.js")
    shutil.copy(RWP_DIR / "sw.js", site / "replay" / "sw.js")
    # The embed's iframe opens /replay/?source=..., which the service worker answers with its
    # app page (ui.js beside it, then <replay-app-main>). When the iframe's first load races the
    # worker's activation it reaches the server instead: served the same page, it starts the
    # app; served an error page, ReplayWeb.page stays blank (about 1 load in 10 here).
    shutil.copy(RWP_DIR / "ui.js", site / "replay" / "ui.js")
    (site / "replay" / "index.html").write_text(
        '<!doctype html>\n<html><head><script src="./ui.js"></script></head>\n'
        "<body><replay-app-main></replay-app-main></body></html>\n"
    )
    bundle = site / "bundle.wacz"
    proc = run_attest(
        ["export", str(case_file), "--claim", "C1", "--claim", "C2", "-o", str(bundle)],
        signing.env,
    )
    assert proc.returncode == 0, proc.stderr
    with StaticServer(site) as server:
        yield Viewer(server, bundle)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@contextlib.contextmanager
def opened(browser: Browser, viewer: Viewer, page_url: str) -> Iterator[Session]:
    with guarded_page(browser, viewer.server.base, timeout_ms=30_000) as (page, leaked):
        session = Session(page, leaked)

        def note(msg: ConsoleMessage) -> None:
            session.console.append(f"[{msg.type}] {msg.text.splitlines()[0] if msg.text else ''}")

        page.context.on("console", note)
        page.on("pageerror", lambda e: session.console.append(f"[pageerror] {e}"))
        page.goto(page_url)
        yield session


def replay_frames(page: Page, url: str) -> list[Frame]:
    """The frames showing the archived ``url`` (ReplayWeb.page's ``.../<ts>mp_/<url>``)."""
    return [f for f in page.frames if "mp_/" in f.url and f.url.split("mp_/", 1)[1] == url]


def app_frame(page: Page) -> Frame | None:
    return next((f for f in page.frames if "/replay/?" in f.url), None)


def deep_text(frame: Frame) -> str:
    try:
        text: str = frame.evaluate(_DEEP_TEXT)
    except PlaywrightError as e:
        return f"<unreadable: {e.message.splitlines()[0]}>"
    return text


def wait_until(
    session: Session, viewer: Viewer, what: str, found: Callable[[], bool], shot: Path
) -> None:
    """Polls ``found`` until it holds; fails with what the browser showed and logged."""
    deadline = time.monotonic() + RENDER_TIMEOUT
    while time.monotonic() < deadline:
        if found():
            return
        session.page.wait_for_timeout(500)
    with contextlib.suppress(PlaywrightError):
        session.page.screenshot(path=str(shot))
    frames = "\n".join(f"  {f.url}\n    {deep_text(f)[:800]!r}" for f in session.page.frames)
    served = "\n".join(
        f"  {r.method} {r.path} {r.range or ''} -> {r.status}"
        for r in viewer.server.requests[-30:]
    )  # fmt: skip
    console = "\n".join(f"  {line}" for line in session.console[-30:])
    pytest.fail(
        f"ReplayWeb.page did not show {what} within {RENDER_TIMEOUT:.0f} s.\n"
        f"Frames (URL, then text):\n{frames}\nConsole (last 30):\n{console}\n"
        f"Requests blocked by the guard: {session.leaked}\n"
        f"Served (last 30):\n{served}\nScreenshot: {shot}",
        pytrace=False,
    )


def replayed_text(session: Session, viewer: Viewer, url: str, texts: list[str], shot: Path) -> str:
    """The text of the replay frame of ``url``, once it holds every one of ``texts``."""
    seen = [""]

    def found() -> bool:
        for frame in replay_frames(session.page, url):
            try:
                seen[0] = frame.locator("body").inner_text(timeout=2_000)
            except PlaywrightError:
                continue
            if all(t in seen[0] for t in texts):
                return True
        return False

    wait_until(session, viewer, f"{texts} in the replay of {url}", found, shot)
    return seen[0]


def assert_read_by_ranges(viewer: Viewer, since: int) -> None:
    asked = [r for r in viewer.server.requests[since:] if r.path == "/bundle.wacz"]
    assert asked, "ReplayWeb.page never asked for the bundle"
    whole = [r for r in asked if r.range is None or r.status == 200]
    assert not whole, f"the bundle was fetched whole, not by ranges: {whole}"
    assert all(r.status == 206 for r in asked), asked


def test_replaywebpage_shows_a_captured_news_article(
    retrieval: Archive, viewer: Viewer, browser: Browser, tmp_path: Path
) -> None:
    n = NEWS_ARTICLES[0]
    url = retrieval.web.url("news", f"/article/{n}.html")
    news = retrieval.web.news
    since = len(viewer.server.requests)
    with opened(browser, viewer, viewer.embed("article", url)) as session:
        text = replayed_text(
            session, viewer, url, [news.article_title(n), news.article_token(n)], tmp_path / "a.png"
        )
        assert session.leaked == []
    assert "Fixture News" in text
    assert_read_by_ranges(viewer, since)


def test_replaywebpage_shows_a_captured_social_post(
    retrieval: Archive, viewer: Viewer, browser: Browser, tmp_path: Path
) -> None:
    # The post's HTML is an empty shell: its text exists only once the captured script has run
    # and fetched the captured JSON, both answered from the bundle.
    post = retrieval.web.social.posts("alice")[0]
    assert post.long_token, "the first post is a long one: its permalink shows all of it"
    url = retrieval.web.url("social", post.permalink_path)
    with opened(browser, viewer, viewer.embed("post", url)) as session:
        text = replayed_text(
            session, viewer, url, [post.token, post.long_token], tmp_path / "post.png"
        )
        assert session.leaked == []
    assert f"Post {post.n} by @alice" in text


def test_replaywebpage_lists_the_bundles_pages(
    viewer: Viewer, browser: Browser, tmp_path: Path
) -> None:
    lines = zipfile.ZipFile(viewer.bundle).read("pages/pages.jsonl").decode().splitlines()
    titles = [json.loads(line)["title"] for line in lines[1:]]
    assert {t.split(":", 1)[0] for t in titles} == {"C1", "C2"}
    with opened(browser, viewer, viewer.embed("index", None)) as session:

        def listed() -> bool:
            frame = app_frame(session.page)
            text = deep_text(frame) if frame else ""
            return f"{len(titles)} pages" in text and all(t in text for t in titles)

        wait_until(session, viewer, f"the pages {titles}", listed, tmp_path / "pages.png")
        assert session.leaked == []


def test_replaywebpage_verifies_the_bundles_signature(
    retrieval: Archive, viewer: Viewer, browser: Browser, tmp_path: Path
) -> None:
    url = retrieval.web.url("news", f"/article/{NEWS_ARTICLES[0]}.html")
    with opened(browser, viewer, viewer.embed("article", url)) as session:
        replayed_text(session, viewer, url, [], tmp_path / "a.png")
        frame = app_frame(session.page)
        assert frame is not None
        rows = frame.evaluate(_VERIFICATION)
        signature = [r["matched"] for r in rows if r["id"].endswith("signature")]
        assert signature == [True], (
            f"ReplayWeb.page's verification records: {rows}; console: {session.console}"
        )
