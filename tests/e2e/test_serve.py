"""The retrieval service, used by real clients: pywb, cdx_toolkit, a link-format parser.

``attest serve`` runs in a subprocess over the archive of ``archive_fixture`` (two news runs,
an HTTPS origin, a browser run over @alice), with pywb started from the replay venv reading our
index through ``/cdx`` and our WARCs from the store.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import signal
import socket
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import brotli
import cdx_toolkit
import link_header
import psutil
import pytest
from archive_fixture import NEWS_ARTICLES, Archive
from playwright.sync_api import expect
from support.browser import chromium, guarded_page
from support.cli import run_attest
from support.replay import replay_venv, warc_timestamp
from support.serve import AttestServer
from support.warcs import Rec

from archive.dates import warc_date_micros
from archive.index.cdxj import surt_key
from archive.index.query import search_range

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(retrieval: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AttestServer]:
    replay_venv()  # fails clearly when the replay venv is missing
    with AttestServer(retrieval.env, workdir=tmp_path_factory.mktemp("serve")) as srv:
        yield srv


def decoded(rec: Rec) -> bytes:
    head = rec.http_head.decode("latin-1").lower()
    if "content-encoding: gzip" in head:
        return gzip.decompress(rec.http_body)
    if "content-encoding: br" in head:
        return bytes(brotli.decompress(rec.http_body))
    return rec.http_body


def article(retrieval: Archive, n: int) -> str:
    return retrieval.web.url("news", f"/article/{n}.html")


# --- replay through pywb, which reads our index over /cdx ------------------------------------


@pytest.mark.parametrize("n", NEWS_ARTICLES)
def test_pywb_replays_each_capture_from_our_index_and_store(
    server: AttestServer, retrieval: Archive, n: int
) -> None:
    url = article(retrieval, n)
    for rec in retrieval.responses(url):
        ts = warc_timestamp(rec.headers["WARC-Date"])
        answer = server.get(f"/web/{ts}id_/{url}", {"Accept-Encoding": "identity"})
        assert answer.status == 200, server.log_tail()
        body = answer.body
        if answer.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert body == decoded(rec)
        assert retrieval.web.news.article_token(n) in body.decode()
        assert answer.headers["Memento-Datetime"] == _http_date(rec.headers["WARC-Date"])
        rewritten = server.get(f"/web/{ts}mp_/{url}")
        assert rewritten.status == 200
        assert retrieval.web.news.article_token(n) in _text(rewritten)


def test_a_page_replays_as_the_page_never_as_attest_metadata(
    server: AttestServer, retrieval: Archive
) -> None:
    """attest's JSON metadata records name the page's URL; replay must still serve the page.

    (pywb's own indexer lists them as captures of the page: the CDXJ attest writes beside each
    WARC, which pywb now reads through /cdx, holds only response, revisit and resource records.)
    """
    post = retrieval.web.social.posts("alice")[0]
    page = retrieval.web.url("social", post.permalink_path)
    rec = retrieval.responses(page)[0]
    assert any(r.type == "metadata" and r.target == page for r in retrieval.records), (
        "the browser run wrote no metadata record for the post page"
    )
    cdx = server.get(f"/cdx?url={quote(page)}&output=json")
    mimes = {json.loads(line)["mime"] for line in cdx.text.splitlines()}
    assert mimes == {"text/html"}
    # A timestamp a little after the capture: the closest capture must be the page itself.
    later = str(int(warc_timestamp(rec.headers["WARC-Date"])) + 1)
    answer = server.get(f"/web/{later}id_/{page}")
    if answer.status == 302:
        answer = server.get(answer.headers["Location"].replace(server.base, ""))
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    listed = set()
    for cdxj in retrieval.home.joinpath("store").rglob("*.cdxj"):
        for line in cdxj.read_text().splitlines():
            entry = json.loads(line.split(" ", 2)[2])
            listed.add((Path(entry["filename"]).name, int(entry["offset"])))
    replayable = {
        (r.file.name, r.offset)
        for r in retrieval.records
        if r.type in ("response", "revisit", "resource")
    }
    assert listed == replayable


def test_rendered_replay_shows_text_the_page_script_fetched(
    server: AttestServer, retrieval: Archive
) -> None:
    """In Chromium, through attest and pywb: the post's text, which the page's script fetched,
    is answered from the archive; nothing reaches the live fixture web."""
    post = retrieval.web.social.posts("alice")[0]
    page_url = retrieval.web.url("social", post.permalink_path)
    ts = warc_timestamp(retrieval.responses(page_url)[0].headers["WARC-Date"])
    with chromium() as browser, guarded_page(browser, server.base) as (page, leaked):
        page.goto(f"{server.base}/web/{ts}/{page_url}")
        archived = page.frame_locator("#replay_iframe")
        archived.locator("article.post p.post-text").first.wait_for(timeout=20_000)
        text = archived.locator("body").inner_text()
    assert post.token in text
    assert not leaked, f"replay reached outside the archive: {leaked}"


# --- pywb is reachable only through attest serve -----------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, as another process of this user could try it."""

    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(self.socket_path))


def _ask(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def reads_of(retrieval: Archive, record_id: str) -> list[dict[str, object]]:
    return [
        json.loads(d)
        for (d,) in retrieval.rows(
            "SELECT details FROM custody_log WHERE object = ? AND action = 'read' ORDER BY seq",
            (record_id,),
        )
    ]


def test_pywb_has_no_port_and_answers_only_attest_serve(
    server: AttestServer, retrieval: Archive
) -> None:
    """pywb used to listen on a loopback port (and its WarcServer on another) and answer anyone
    there, token or not, with no custody entry. Now: no TCP port at all, a Unix socket in a
    folder only its user may enter, and a per-process secret on every request."""
    url = article(retrieval, NEWS_ARTICLES[0])
    rec = retrieval.responses(url)[0]
    ts = warc_timestamp(rec.headers["WARC-Date"])
    token = retrieval.web.news.article_token(NEWS_ARTICLES[0])
    pywb = server.pywb()
    listening = [c for c in pywb.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    for conn in listening:
        host = "127.0.0.1" if conn.laddr.ip in ("0.0.0.0", "::", "::1") else conn.laddr.ip
        status, body = _ask(
            http.client.HTTPConnection(host, conn.laddr.port, timeout=30), f"/web/{ts}id_/{url}", {}
        )
        assert token.encode() not in body, f"pywb answered on port {conn.laddr.port} ({status})"
    assert listening == [], f"pywb listens on {[c.laddr for c in listening]}"
    folder = Path(pywb.cwd())
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
    sock = folder / "pywb.sock"
    assert sock.is_socket()
    for headers in ({}, {"X-Attest-Secret": "a-guess"}):
        status, body = _ask(UnixHTTPConnection(sock), f"/web/{ts}id_/{url}", headers)
        assert status == 403, (headers, status)
        assert token.encode() not in body
    # Through attest serve the replay is answered, and the read is in the custody log.
    before = len(reads_of(retrieval, rec.id))
    answer = server.get(f"/web/{ts}id_/{url}", {"Accept-Encoding": "identity"})
    assert answer.status == 200, server.log_tail()
    assert token in _text(answer)
    new = reads_of(retrieval, rec.id)[before:]
    assert [r["via"] for r in new] == ["replay id_"], new


@pytest.mark.parametrize(
    ("stop", "exit_code"),
    [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGINT", "SIGKILL"],
)
def test_stopping_serve_stops_pywb_and_removes_its_folder(
    retrieval: Archive, tmp_path: Path, stop: signal.Signals, exit_code: int
) -> None:
    """However attest serve ends, pywb ends with it and its folder (socket, the secret's only
    holder on disk) is gone: SIGTERM and SIGINT through the service's own cleanup, SIGKILL
    through pywb's (the kernel sends it SIGTERM when its parent dies)."""
    srv = AttestServer(retrieval.env, workdir=tmp_path)
    srv.start()
    try:
        pywb = srv.pywb()
        folder = Path(pywb.cwd())
        assert folder.is_dir()
        assert srv.proc is not None
        os.kill(srv.proc.pid, stop)  # the service process only, as a supervisor would
        assert srv.proc.wait(30) == exit_code, srv.log_tail()
        _gone, alive = psutil.wait_procs([pywb], timeout=15)
        assert not alive, f"pywb still runs after {stop.name} to attest serve"
        assert not folder.exists(), sorted(p.name for p in folder.iterdir())
    finally:
        srv.stop()


# --- the replay banner ------------------------------------------------------------------------


def banner_time(ts: str) -> str:
    """How pywb's banner writes a 14-digit timestamp in Chromium's en locale (lowercased)."""
    moment = datetime.strptime(ts, "%Y%m%d%H%M%S")
    hour = moment.hour % 12 or 12
    half = "am" if moment.hour < 12 else "pm"
    return f"{moment.month}/{moment.day}/{moment.year}, {hour}:{moment:%M:%S} {half}"


def test_banner_capture_list_is_answered_in_pywb_format(
    server: AttestServer, retrieval: Archive
) -> None:
    url = article(retrieval, NEWS_ARTICLES[0])
    recs = retrieval.responses(url)
    answer = server.get(f"/web/cdx?url={quote(url, safe='')}&output=json")
    assert answer.status == 200, answer.text
    entries = [json.loads(line) for line in answer.text.splitlines()]
    assert [e["timestamp"] for e in entries] == [
        warc_timestamp(r.headers["WARC-Date"]) for r in recs
    ]
    for entry in entries:
        assert entry["url"] == url
        assert {"urlkey", "mime", "status", "digest"} <= set(entry)
    nothing = server.get(f"/web/cdx?url={quote(article(retrieval, 999), safe='')}&output=json")
    assert nothing.status == 200
    assert nothing.text == ""


def test_replay_banner_shows_the_capture_time_and_the_captures(
    server: AttestServer, retrieval: Archive
) -> None:
    """In Chromium: the banner above the replayed page names the capture's time, and its
    calendar lists the URL's captures (pywb builds both from /web/cdx)."""
    url = article(retrieval, NEWS_ARTICLES[1])
    recs = retrieval.responses(url)
    rec = recs[-1]
    ts = warc_timestamp(rec.headers["WARC-Date"])
    with chromium() as browser, guarded_page(browser, server.base) as (page, leaked):
        page.goto(f"{server.base}/web/{ts}/{url}")
        archived = page.frame_locator("#replay_iframe")
        expect(archived.locator("body")).to_contain_text(
            retrieval.web.news.article_token(NEWS_ARTICLES[1]), timeout=20_000
        )
        banner = page.locator("#second-navbar")
        expect(banner).to_contain_text("Current Capture", timeout=20_000)
        shown = " ".join(banner.inner_text().split())
        assert banner_time(ts) in shown, (shown, banner_time(ts))
        page.get_by_title("Show calendar").click()
        app = page.locator("[data-app]")
        expect(app).to_contain_text(f"({len(recs)} captures)", timeout=20_000)
    assert not leaked, f"replay reached outside the service: {leaked}"


# --- Memento -------------------------------------------------------------------------------


def test_timegate_redirects_to_the_memento_closest_to_accept_datetime(
    server: AttestServer, retrieval: Archive
) -> None:
    url = article(retrieval, NEWS_ARTICLES[0])
    first, second = retrieval.responses(url)[:2]
    for rec in (first, second):
        answer = server.get(
            f"/web/{url}", {"Accept-Datetime": _http_date(rec.headers["WARC-Date"])}
        )
        assert answer.status == 302
        assert (
            answer.headers["Location"]
            == f"{server.base}/web/{warc_timestamp(rec.headers['WARC-Date'])}/{url}"
        )
        assert answer.headers["Vary"].lower() == "accept-datetime"
        rels = {link.rel: link.href for link in link_header.parse(answer.headers["Link"]).links}
        assert rels["original"] == url
        assert rels["timegate"] == f"{server.base}/web/{url}"
        assert rels["timemap"] == f"{server.base}/web/timemap/link/{url}"
    # No Accept-Datetime: the most recent memento.
    latest = server.get(f"/web/{url}")
    assert warc_timestamp(second.headers["WARC-Date"]) in latest.headers["Location"]


def test_timemap_parses_as_link_format_and_each_memento_resolves(
    server: AttestServer, retrieval: Archive
) -> None:
    url = article(retrieval, NEWS_ARTICLES[1])
    answer = server.get(f"/web/timemap/link/{url}")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/link-format")
    links = link_header.parse(answer.text.replace("\n", "")).links
    by_rel = {}
    mementos = []
    for link in links:
        by_rel.setdefault(link.rel, link.href)
        if "memento" in link.rel.split():
            mementos.append(link)
    assert by_rel["original"] == url
    assert by_rel["self"] == f"{server.base}/web/timemap/link/{url}"
    expected = sorted({warc_timestamp(r.headers["WARC-Date"]) for r in retrieval.responses(url)})
    assert [re.search(r"/web/(\d{14})/", m.href).group(1) for m in mementos] == expected  # type: ignore[union-attr]
    for link in mementos:
        datetime_attr = dict(link.attr_pairs)["datetime"]
        stamp = link.href.split("/web/", 1)[1][:14]
        got = server.get(
            link.href.removeprefix(server.base).replace(f"/web/{stamp}/", f"/web/{stamp}id_/")
        )
        assert got.status == 200
        assert got.headers["Memento-Datetime"] == datetime_attr
        assert 'rel="original"' in got.headers["Link"]


def test_memento_timestamp_that_is_not_exact_redirects_to_the_exact_memento(
    server: AttestServer, retrieval: Archive
) -> None:
    url = article(retrieval, NEWS_ARTICLES[0])
    ts = warc_timestamp(retrieval.responses(url)[0].headers["WARC-Date"])
    answer = server.get(f"/web/{ts[:8]}id_/{url}")
    assert answer.status == 302
    assert re.search(r"/web/\d{14}id_/", answer.headers["Location"])


# --- the CDX API, through a third-party client ------------------------------------------------


def _index_rows(
    retrieval: Archive, where: str, params: tuple[object, ...] = ()
) -> list[tuple[str, str]]:
    return sorted(
        (url, str(ts))
        for url, ts in retrieval.rows(
            f"SELECT url, ts FROM captures WHERE record_type IN ('response','revisit','resource') AND {where}",
            params,
        )
    )


def test_cdx_toolkit_queries_agree_with_the_index(server: AttestServer, retrieval: Archive) -> None:
    cdx = cdx_toolkit.CDXFetcher(source=f"{server.base}/cdx")
    url = article(retrieval, NEWS_ARTICLES[0])
    key = surt_key(url)

    def pairs(caps: list[cdx_toolkit.CaptureObject]) -> list[tuple[str, str]]:
        return sorted((c["url"], c["timestamp"]) for c in caps)

    def ts14(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        from archive.dates import timestamp14

        return sorted((u, timestamp14(int(t))) for u, t in rows)

    exact = cdx.get(url)
    assert pairs(exact) == ts14(_index_rows(retrieval, "surt = ?", (key,)))
    assert len(exact) == 2
    news = retrieval.web.url("news", "/article/")
    prefix = cdx.get(news, matchType="prefix")
    low, high = search_range(news, "prefix")
    assert pairs(prefix) == ts14(_index_rows(retrieval, "surt >= ? AND surt < ?", (low, high)))
    assert len(prefix) >= 4
    first_ts = min(c["timestamp"] for c in exact)
    assert pairs(cdx.get(url, from_ts=first_ts, to=first_ts)) == [(url, first_ts)]
    later_ts = max(c["timestamp"] for c in exact)
    closest = cdx.get(url, closest=later_ts, sort="closest", limit=1)
    assert [c["timestamp"] for c in closest] == [later_ts]
    html_only = cdx.get(news, matchType="prefix", filter=["=mime:text/html"])
    assert html_only
    assert all(c["mime"] == "text/html" for c in html_only)
    assert len(cdx.get(news, matchType="prefix", limit=3)) == 3
    assert len(list(cdx.iter(url))) == 2
    assert cdx.get(retrieval.web.url("news", "/never-captured.html")) == []


def test_cdx_outputs_and_collapse(server: AttestServer, retrieval: Archive) -> None:
    url = article(retrieval, NEWS_ARTICLES[0])
    lines = server.get(f"/cdx?url={quote(url)}").text.splitlines()
    assert len(lines) == 2
    key, ts, body = lines[0].split(" ", 2)
    assert key == surt_key(url)
    assert len(ts) == 14
    assert set(json.loads(body)) >= {
        "url",
        "mime",
        "status",
        "digest",
        "length",
        "offset",
        "filename",
    }
    text = server.get(f"/cdx?url={quote(url)}&output=text&fl=timestamp,status").text.splitlines()
    assert all(re.fullmatch(r"\d{14} 200", line) for line in text)
    # The two runs saw the same bytes: collapse=digest keeps one.
    assert len(server.get(f"/cdx?url={quote(url)}&collapse=digest").text.splitlines()) == 1
    same_day = server.get(f"/cdx?url={quote(url)}&collapse=timestamp:8").text.splitlines()
    assert len(same_day) == 1
    reverse = server.get(f"/cdx?url={quote(url)}&sort=reverse&output=json").text.splitlines()
    assert [json.loads(x)["timestamp"] for x in reverse] == sorted(
        (json.loads(x)["timestamp"] for x in reverse), reverse=True
    )


# --- search, metadata, custody ----------------------------------------------------------------


def test_search_finds_pages_by_their_visible_text(server: AttestServer, retrieval: Archive) -> None:
    n = NEWS_ARTICLES[1]
    token = retrieval.web.news.article_token(n)
    answer = server.get(f"/search?q={quote(token)}")
    assert answer.status == 200
    hits = json.loads(answer.text)["hits"]
    assert hits
    assert {h["url"] for h in hits} == {article(retrieval, n)}
    assert all(token.lower() in h["snippet"].lower() for h in hits)
    # Text only the browser saw (the post's text arrives by script) is searchable too.
    post = retrieval.web.social.posts("alice")[0]
    rendered = json.loads(server.get(f"/search?q={quote(post.token)}").text)["hits"]
    assert retrieval.web.url("social", post.permalink_path) in {h["url"] for h in rendered}
    cli = run_attest(["search", token, "--json"], retrieval.env)
    assert cli.returncode == 0, cli.stderr
    assert {json.loads(x)["url"] for x in cli.stdout.splitlines()} == {article(retrieval, n)}


def test_capture_metadata_has_hashes_ip_tls_chain_and_reads_are_logged(
    server: AttestServer, retrieval: Archive
) -> None:
    https = [
        r
        for r in retrieval.records
        if r.type == "response" and (r.target or "").startswith("https://")
    ]
    rec = https[0]
    uuid = rec.id.removeprefix("<urn:uuid:").removesuffix(">")
    answer = server.get(f"/api/capture/{uuid}")
    assert answer.status == 200, answer.text
    meta = json.loads(answer.text)
    assert meta["payload_sha256"] == rec.headers["WARC-Payload-Digest"]
    assert meta["block_sha256"] == rec.headers["WARC-Block-Digest"]
    assert meta["ip"] == rec.headers["WARC-IP-Address"]
    assert meta["tls"]["chain"]
    assert len(meta["tls"]["chain"][0]["sha256"]) == 64
    assert meta["datetime"] == rec.headers["WARC-Date"]
    reads = retrieval.rows(
        "SELECT actor, action, details FROM custody_log WHERE object = ? AND action = 'read'",
        (rec.id,),
    )
    assert reads
    assert reads[-1][0].startswith("local:127.0.0.1")
    verify = run_attest(["custody", "verify"], retrieval.env)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_post_captures_carry_platform_ids_in_the_index(retrieval: Archive) -> None:
    post = retrieval.web.social.posts("alice")[0]
    page = retrieval.web.url("social", post.permalink_path)
    rows = retrieval.rows(
        "SELECT platform, account, post_id FROM captures WHERE url = ? AND record_type = 'response'",
        (page,),
    )
    assert rows
    assert rows[0][0] == "generic"
    assert rows[0][1]
    assert rows[0][2]


def test_find_and_get_from_the_cli(retrieval: Archive, tmp_path: Path) -> None:
    url = article(retrieval, NEWS_ARTICLES[0])
    recs = retrieval.responses(url)
    at = recs[-1].headers["WARC-Date"]
    found = run_attest(["find", url, "--at", at, "--json"], retrieval.env)
    assert found.returncode == 0, found.stderr
    first = json.loads(found.stdout.splitlines()[0])
    assert first["datetime"] == at
    assert first["recordid"] == recs[-1].id
    out = tmp_path / "page.html"
    got = run_attest(["get", url, "--at", warc_timestamp(at), "-o", str(out)], retrieval.env)
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == decoded(recs[-1])
    record = tmp_path / "record.warc"
    got = run_attest(["get", url, "--at", at, "--record", "-o", str(record)], retrieval.env)
    assert got.returncode == 0, got.stderr
    assert record.read_bytes().startswith(b"WARC/1.1\r\n")
    assert recs[-1].id.encode() in record.read_bytes()
    ranged = run_attest(
        [
            "find",
            url,
            "--from",
            recs[0].headers["WARC-Date"],
            "--to",
            recs[0].headers["WARC-Date"],
            "--json",
        ],
        retrieval.env,
    )
    assert [json.loads(x)["recordid"] for x in ranged.stdout.splitlines()] == [recs[0].id]


def test_rebuild_from_the_store_equals_the_incremental_index(
    retrieval: Archive, tmp_path: Path
) -> None:
    columns = (
        "surt, url, ts, status, mime, digest, record_type, record_id, warc_key, warc_offset, length, "
        "source, run_id, ip, concurrent_to, platform, account, post_id, block_digest"
    )
    incremental = sorted(retrieval.rows(f"SELECT {columns} FROM captures"), key=repr)
    texts_before = sorted(
        retrieval.rows(
            "SELECT c.record_id, t.body FROM texts t JOIN captures c ON c.id = t.capture_id"
        )
    )
    custody_before = retrieval.rows("SELECT seq, hash FROM custody_log ORDER BY seq")
    assert incremental
    assert texts_before
    assert custody_before
    # Rebuild into a fresh copy of the database, so the other tests keep their index, over a
    # copy of the store: the rebuild's custody entries are sealed into the store it uses, and a
    # second database's segments in the shared store would contradict the first's.
    copy = tmp_path / "index.sqlite"
    import shutil
    import sqlite3

    with sqlite3.connect(retrieval.index) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    store = tmp_path / "store"
    shutil.copytree(retrieval.home / "store", store)
    env = dict(retrieval.env, ATTEST_INDEX=str(copy), ATTEST_STORE=store.as_uri())
    proc = run_attest(["index", "--rebuild", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    with sqlite3.connect(copy) as conn:
        rebuilt = sorted(conn.execute(f"SELECT {columns} FROM captures").fetchall(), key=repr)
        texts_after = sorted(
            conn.execute(
                "SELECT c.record_id, t.body FROM texts t JOIN captures c ON c.id = t.capture_id"
            ).fetchall()
        )
        custody_after = conn.execute("SELECT seq, hash FROM custody_log ORDER BY seq").fetchall()
    assert rebuilt == incremental
    assert texts_after == texts_before
    assert custody_after[: len(custody_before)] == custody_before
    with sqlite3.connect(copy) as conn:
        added = conn.execute(
            "SELECT action, object FROM custody_log WHERE seq > ? ORDER BY seq",
            (custody_before[-1][0],),
        ).fetchall()
    # One index entry per WARC; the copy's WARCs are objects of their own (their URIs name the
    # copy), so each first gets the capture entry its run's ship report in the store gives it.
    copied = [(store / w.relative_to(retrieval.home / "store")).as_uri() for w in retrieval.warcs]
    assert sorted(added) == sorted([("capture", u) for u in copied] + [("index", u) for u in copied])
    verify = run_attest(["custody", "verify"], env)
    assert verify.returncode == 0, verify.stdout
    # Indexing again changes nothing.
    again = run_attest(["index", "--json"], env)
    assert all(r["skipped"] for r in json.loads(again.stdout)["results"])


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "url: required"),
        ("url=example.com&limit=1000000000", "limit"),
        ("url=example.com&limit=0", "limit"),
        ("url=example.com&from=20261399", "from"),
        ("url=example.com&from=3000", "from"),
        ("url=example.com&to=yesterday", "to"),
        ("url=example.com&matchType=everything", "matchType"),
        ("url=example.com&sort=random", "sort"),
        ("url=example.com&filter=~mime:(", "filter"),
        ("url=example.com&fl=password", "fl"),
        ("url=example.com&output=xml", "output"),
        ("url=example.com&collapse=digest:0", "collapse"),
        ("url=example.com&drop=table", "unknown parameter 'drop'"),
        ("url=example.com&url=other.com", "url: given 2 times"),
        ("url=%27%20OR%201%3D1%20--&filter=~%27;DROP%20TABLE%20captures;--(", "filter"),
    ],
)
def test_bad_cdx_queries_get_a_clear_400(server: AttestServer, query: str, reason: str) -> None:
    answer = server.get(f"/cdx?{query}")
    assert answer.status == 400, answer.text
    assert reason in answer.text
    assert "Traceback" not in answer.text


def test_sql_like_and_traversal_strings_are_just_urls(
    server: AttestServer, retrieval: Archive
) -> None:
    before = retrieval.rows("SELECT count(*) FROM captures")
    for url in (
        "' OR 1=1 --",
        "../../../../etc/passwd",
        "http://x/%00",
        'a"); DROP TABLE captures; --',
    ):
        answer = server.get(f"/cdx?url={quote(url)}")
        assert answer.status in (400, 404), answer.text
        assert "root:" not in answer.text
    assert server.get("/web/timemap/link/..%2F..%2Fetc%2Fpasswd").status == 404
    assert server.get("/api/capture/..%2F..%2Fetc%2Fpasswd").status in (400, 404)
    assert server.get("/search?q=%22%29%20OR%20*&limit=5").status == 200
    assert server.get("/search?q=x&limit=100000").status == 400
    assert retrieval.rows("SELECT count(*) FROM captures") == before


def test_the_open_service_answers_loopback_names_only(
    server: AttestServer, retrieval: Archive
) -> None:
    """Without tokens anyone on this machine may read; a web page whose name was made to
    resolve to 127.0.0.1 (DNS rebinding) is not on this machine."""
    url = article(retrieval, NEWS_ARTICLES[0])
    for host in ("evil.example", f"evil.example:{server.port}", "10.0.0.8"):
        for method, path in (("GET", f"/cdx?url={quote(url)}"), ("POST", "/api/custody/seal")):
            answer = server.get(path, {"Host": host, "Content-Type": "application/json"},
                                method=method, body=b"{}" if method == "POST" else None)  # fmt: skip
            assert answer.status == 421, (host, path, answer.status)
            assert "loopback names only" in answer.text
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]"):
        assert server.get(f"/cdx?url={quote(url)}", {"Host": host}).status == 200, host


@pytest.mark.parametrize(
    "path",
    [
        "/static/%00",
        "/static/wb_frame.js%00",
        "/web/%01http://example.com/",
        "/web/20260101000000id_/http://example.com/%00",
        "/web/timemap/link/http://example.com/%1b",
        "/cdx%00",
        "/api/capture/%00",
        "/capture/%7f/raw",
        "/ui/lookup%0a",
    ],
)
def test_control_characters_in_a_path_get_a_clear_400(server: AttestServer, path: str) -> None:
    answer = server.get(path)
    assert answer.status == 400, (path, answer.status, answer.text)
    assert "control character" in answer.text
    assert "Traceback" not in answer.text


def test_index_refuses_warc_names_outside_the_store(retrieval: Archive) -> None:
    before = retrieval.rows("SELECT count(*) FROM warcs")
    for bad in ("../../etc/passwd", "warcs/../../../etc/passwd", "/etc/passwd", "file:///etc/passwd",
                "warcs/x/none.warc.gz"):  # fmt: skip
        proc = run_attest(["index", bad], retrieval.env)
        assert proc.returncode == 2, (bad, proc.stdout, proc.stderr)
        assert bad in proc.stderr
    for bad in ("2026-13-01", "yesterday", "20261"):
        proc = run_attest(["find", "http://example.com/", "--at", bad], retrieval.env)
        assert proc.returncode == 2
        assert bad in proc.stderr
    assert retrieval.rows("SELECT count(*) FROM warcs") == before


def _http_date(warc_date: str) -> str:
    from archive.dates import http_date

    return http_date(warc_date_micros(warc_date))


def _text(answer: object) -> str:
    body: bytes = answer.body  # type: ignore[attr-defined]
    if answer.headers.get("Content-Encoding") == "gzip":  # type: ignore[attr-defined]
        body = gzip.decompress(body)
    return body.decode("utf-8", "replace")
