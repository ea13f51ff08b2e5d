"""A full capture of the fixture web, read back record by record.

One real run (``attest crawl --sources``: recorder process, Scrapy, spool, file store) over the
news site, the NGO site, the HTTPS host and a source of named failures; then every capture
requirement of the spine is checked against the WARCs it produced.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest
from support.cli import run_attest
from support.warcs import Rec, read_records, store_warcs

from archive.warc.read import verify_warc
from demoweb import FixtureWeb
from demoweb.http import Request

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fixture_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureWeb]:
    """A fixture web of this module's own: the busy page answers 503 only to its first request."""
    web = FixtureWeb(
        articles=40,
        releases=25,
        tls=True,
        slow=True,
        keep_log=True,
        workdir=tmp_path_factory.mktemp("capture-ca"),
    )
    web.start()
    yield web
    web.stop()


@pytest.fixture(scope="module")
def crawl(fixture_web: FixtureWeb, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("capture-home")
    news = fixture_web.url("news", "")
    ngo = fixture_web.url("ngo", "")
    secure_port = fixture_web.servers["secure"].port
    hosts = home / "hosts"
    hosts.write_text(
        "127.0.0.1 secure.fixture.test\n"
        "169.254.169.254 metadata.fixture.test\n"
        "10.1.2.3 intranet.fixture.test\n"
        "fd00::7 ula.fixture.test\n"
    )
    registry = home / "sources.yaml"
    registry.write_text(
        f"""
sources:
  - id: news
    kind: news
    seeds: ["{news}/"]
    scope: {{max_depth: 3, max_pages: 400}}
    discovery: {{sitemaps: true, feeds: ["{news}/rss.xml"]}}
    politeness: {{concurrency_per_host: 8}}
  - id: ngo
    kind: press
    seeds: ["{ngo}/"]
    scope: {{max_depth: 3, max_pages: 400}}
    discovery:
      listings:
        - {{url: "{ngo}/press/", items: "ul.releases a"}}
        - {{url: "{ngo}/fr/communiques/", items: "ul.releases a"}}
  - id: secure
    kind: press
    seeds: ["https://secure.fixture.test:{secure_port}/press/"]
    scope: {{max_depth: 1, max_pages: 20}}
  - id: edge
    kind: news
    seeds:
      - "http://metadata.fixture.test/latest/meta-data/"
      - "http://intranet.fixture.test/"
      - "http://ula.fixture.test/"
      - "http://nowhere.fixture.test/"
      - "http://127.0.0.1:1/"
      - "{news}/slow.html"
    scope: {{max_depth: 0}}
    politeness: {{robots: ignore, robots_override_reason: "edge cases for the test suite only"}}
"""
    )
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_HOSTS_FILE=str(hosts),
        ATTEST_CA_BUNDLE=str(fixture_web.ca.ca_pem) if fixture_web.ca else "",
        ATTEST_DOWNLOAD_TIMEOUT="2",
        ATTEST_RETRIES="2",
    )
    env.pop("ATTEST_STORE", None)
    proc = run_attest(["crawl", "--sources", str(registry), "--json"], env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout)
    warcs = store_warcs(home / "store")
    return {
        "home": home,
        "summary": summary,
        "warcs": warcs,
        "records": read_records(warcs),
        "ledger": ledger(home),
        "stderr": proc.stderr,
    }


def ledger(home: Path) -> list[dict[str, Any]]:
    entries = []
    for path in (home / "store" / "runs").rglob("ledger.jsonl"):
        entries.extend(json.loads(line) for line in path.read_text().splitlines())
    return entries


def responses(records: list[Rec], origin: str) -> dict[str, list[Rec]]:
    out: dict[str, list[Rec]] = {}
    for rec in records:
        if rec.type == "response" and rec.target and rec.target.startswith(origin):
            out.setdefault(rec.target[len(origin) :], []).append(rec)
    return out


def test_every_warc_verifies_and_is_warc_1_1(crawl: dict[str, Any]) -> None:
    assert crawl["warcs"], "no WARC in the store"
    for path in crawl["warcs"]:
        verdict = verify_warc(path)
        assert verdict.ok, verdict.problems
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    for rec in crawl["records"]:
        assert rec.headers["WARC-Date"].endswith("Z")
        assert len(rec.headers["WARC-Date"]) == 27
        assert rec.headers["WARC-Block-Digest"] == "sha256:" + hashlib.sha256(rec.block).hexdigest()


def test_each_file_starts_with_warcinfo_naming_run_source_and_versions(
    crawl: dict[str, Any],
) -> None:
    first_by_file: dict[Path, Rec] = {}
    for rec in crawl["records"]:
        first_by_file.setdefault(rec.file, rec)
    run_id = crawl["summary"]["run_id"]
    for path, rec in first_by_file.items():
        assert rec.type == "warcinfo", path
        fields = dict(line.split(": ", 1) for line in rec.block.decode().strip().split("\r\n"))
        assert fields["attest-run-id"] == run_id
        assert fields["source-id"] in path.name
        for name in (
            "software",
            "scrapy-version",
            "recorder",
            "settings-sha256",
            "http-header-user-agent",
            "egress-ip",
            "robots",
        ):
            assert fields.get(name), f"warcinfo lacks {name}"
        assert path.relative_to(crawl["home"] / "store").parts[:2] == ("warcs", fields["source-id"])


def test_requests_and_responses_are_linked_pairs_with_peer_ip(crawl: dict[str, Any]) -> None:
    by_id = {rec.id: rec for rec in crawl["records"]}
    pairs = 0
    for rec in crawl["records"]:
        if rec.type != "request":
            continue
        response = by_id[rec.headers["WARC-Concurrent-To"]]
        assert response.type == "response"
        assert response.target == rec.target
        assert response.headers["WARC-IP-Address"] == "127.0.0.1"
        assert rec.block.split(b"\r\n", 1)[0].endswith(b" HTTP/1.1")
        assert b"Attest-" not in rec.block, "control headers must not reach the origin"
        pairs += 1
    assert pairs == sum(1 for r in crawl["records"] if r.type == "response")


def test_payload_bytes_are_exactly_what_the_server_sent(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    for site in ("news", "ngo"):
        server = fixture_web.servers[site]
        sent: dict[str, set[tuple[bytes, bytes]]] = {}
        for _method, target, head, body in server.sent:
            sent.setdefault(target, set()).add((head, body))
        for path, recs in responses(crawl["records"], server.origin).items():
            for rec in recs:
                assert (rec.http_head, rec.http_body) in sent[path], (
                    f"{site}{path} differs from the wire"
                )


def test_compressed_and_chunked_bodies_stay_as_received(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    news = responses(crawl["records"], fixture_web.url("news", ""))
    article = news["/article/1.html"][0]
    assert b"Content-Encoding: gzip" in article.http_head
    assert gzip.decompress(article.http_body) == fixture_web.news.article_html(1)
    entity = gzip.decompress(article.http_body)
    assert (
        article.headers["WARC-Payload-Digest"]
        == "sha256:" + hashlib.sha256(article.http_body).hexdigest()
    )
    assert entity.count(fixture_web.news.article_token(1).encode()) == 1
    css = news["/static/site.css"][0]
    assert b"Content-Encoding: br" in css.http_head
    assert brotli.decompress(css.http_body) == fixture_web.news.css()
    section = news["/section/politics/"][0]
    assert b"Transfer-Encoding: chunked" in section.http_head
    assert section.http_body.startswith(b"3e8\r\n")
    assert section.http_body.endswith(b"0\r\n\r\n")
    # what the server generates for this path, without the chunk framing
    dechunked = fixture_web.news(Request("GET", "/section/politics/", {}, "")).body
    assert (
        section.headers["WARC-Payload-Digest"] == "sha256:" + hashlib.sha256(dechunked).hexdigest()
    )


def test_every_in_scope_fixture_url_is_captured_with_its_status(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    news = responses(crawl["records"], fixture_web.url("news", ""))
    for path in fixture_web.news.all_paths():
        assert path in news, f"news {path} not captured"
    statuses = {p: {r.http_status for r in recs} for p, recs in news.items()}
    assert statuses["/missing.html"] == {404}
    assert statuses["/gone.html"] == {410}
    assert statuses["/broken.html"] == {500}
    assert statuses["/old/start"] == {301}
    assert statuses["/old/middle"] == {302}
    assert statuses["/busy.html"] == {503, 200}
    ngo = responses(crawl["records"], fixture_web.url("ngo", ""))
    for path in fixture_web.ngo.all_paths():
        assert path in ngo, f"ngo {path} not captured"


def test_robots_disallowed_page_is_absent_and_its_refusal_recorded(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    url = fixture_web.url("news", "/private/secret.html")
    assert not [
        r for r in crawl["records"] if r.target == url and r.type in ("request", "response")
    ]
    refusals = [r for r in crawl["records"] if r.target == url and r.type == "metadata"]
    assert refusals
    assert refusals[0].json()["outcome"] == "robots_disallowed"
    assert any(e["url"] == url and e["outcome"] == "robots_disallowed" for e in crawl["ledger"])


def test_retry_after_is_honoured_and_each_attempt_kept(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    url = fixture_web.url("news", "/busy.html")
    entry = next(e for e in crawl["ledger"] if e["url"] == url)
    assert entry["outcome"] == "captured"
    assert entry["status"] == 200
    assert [a["status"] for a in entry["attempts"]] == [503]
    assert entry["attempts"][0]["retry_after"] == 1.0
    ids = {r.id for r in crawl["records"] if r.target == url and r.type == "response"}
    assert entry["attempts"][0]["capture_id"] in ids
    assert entry["capture_id"] in ids
    broken = next(e for e in crawl["ledger"] if e["url"] == fixture_web.url("news", "/broken.html"))
    assert broken["outcome"] == "http_error"
    assert len(broken["attempts"]) == 2


def test_failures_are_recorded_as_outcomes(crawl: dict[str, Any], fixture_web: FixtureWeb) -> None:
    outcomes = {e["url"]: e["outcome"] for e in crawl["ledger"] if e["source"] == "edge"}
    assert outcomes["http://metadata.fixture.test/latest/meta-data/"] == "egress_refused"
    assert outcomes["http://intranet.fixture.test/"] == "egress_refused"
    assert outcomes["http://ula.fixture.test/"] == "egress_refused"
    assert outcomes["http://nowhere.fixture.test/"] == "dns_error"
    assert outcomes["http://127.0.0.1:1/"] == "connection_error"
    assert outcomes[fixture_web.url("news", "/slow.html")] == "timeout"
    meta = {
        r.target: r.json()
        for r in crawl["records"]
        if r.type == "metadata" and r.headers.get("Content-Type", "").endswith("attest-outcome")
    }
    assert meta["http://metadata.fixture.test/latest/meta-data/"]["outcome"] == "egress_refused"
    assert "cloud metadata" in meta["http://metadata.fixture.test/latest/meta-data/"]["error"]
    assert meta["http://nowhere.fixture.test/"]["outcome"] == "dns_error"
    counts = crawl["summary"]["outcomes"]
    assert counts["egress_refused"] == 3
    assert counts["dns_error"] == 1
    assert counts["timeout"] >= 1


def test_tls_chain_of_the_https_origin_is_kept(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    assert fixture_web.ca is not None
    chains = [
        r
        for r in crawl["records"]
        if r.type == "metadata" and r.headers.get("Content-Type", "").endswith("attest-tls-chain")
    ]
    assert len(chains) == 1, "one chain record per host, source and run"
    info = chains[0].json()
    assert info["host"] == "secure.fixture.test"
    assert info["verified"] is True
    served = fixture_web.ca.cert_pem.read_text()
    assert [c["pem"] for c in info["chain"]] == [
        "-----BEGIN CERTIFICATE-----" + part
        for part in served.split("-----BEGIN CERTIFICATE-----")[1:]
    ]
    responses_https = [
        r
        for r in crawl["records"]
        if r.type == "response" and (r.target or "").startswith("https://")
    ]
    assert responses_https
    assert chains[0].headers["WARC-Concurrent-To"] in {r.id for r in responses_https}


def test_pages_have_metadata_with_outlinks_and_discovery(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    by_id = {rec.id: rec for rec in crawl["records"]}
    pages = [
        r
        for r in crawl["records"]
        if r.type == "metadata" and r.headers.get("Content-Type", "").endswith("attest-page")
    ]
    home = next(p for p in pages if p.target == fixture_web.url("news", "/"))
    data = home.json()
    assert data["via"] == "seed"
    assert data["depth"] == 0
    latest = fixture_web.news.articles
    assert {"url": fixture_web.url("news", f"/article/{latest}.html"), "in_scope": True} in data[
        "outlinks"
    ]
    assert fixture_web.url("news", "/static/site.css") in data["requisites"]
    assert by_id[home.headers["WARC-Concurrent-To"]].type == "response"
    via = Counter(p.json()["via"] for p in pages)
    assert via["sitemap"] or via["feed"], via
    assert via["listing"], via


def test_legacy_windows_1252_page_is_captured_byte_exact(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    news = responses(crawl["records"], fixture_web.url("news", ""))
    rec = news["/legacy/cp1252.html"][0]
    assert "Café".encode("cp1252") in rec.http_body
    assert b"charset=windows-1252" in rec.http_body
    assert b"charset" not in rec.http_head


def test_summary_counts_match_the_ledger(crawl: dict[str, Any]) -> None:
    counted = Counter(e["outcome"] for e in crawl["ledger"])
    assert crawl["summary"]["outcomes"] == dict(sorted(counted.items()))
    assert crawl["summary"]["pending"] == []
    assert not list((crawl["home"] / "spool").iterdir()), "the spool is emptied after upload"


def test_recorded_requests_are_byte_for_byte_what_the_origins_received(
    crawl: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    for site in ("news", "ngo"):
        server = fixture_web.servers[site]
        sent = [
            r.block
            for r in crawl["records"]
            if r.type == "request" and (r.target or "").startswith(server.origin)
        ]
        assert sent
        for block in sent:
            assert block in server.received, block[:300]
            assert b"Proxy-Authorization" not in block


def _invalid_seeds(news: str) -> dict[str, str]:
    """The seeds that once left nothing behind, and what their outcome must say."""
    return {
        f"{news}/article/1.html?q=" + "x" * 2100: "longer than 2083 characters",
        "http://127.0.0.1:99999/": "Port out of range",
        "http://ex ample.org/": "contains a space",
        "http://[::1": "Invalid IPv6 URL",
    }


def _env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ALLOW_NETWORKS="127.0.0.0/8")
    env.pop("ATTEST_STORE", None)
    return env


@pytest.mark.parametrize("command", ["crawl", "capture"])
def test_a_seed_that_cannot_be_fetched_is_bad_input(
    command: str, fixture_web: FixtureWeb, tmp_path: Path
) -> None:
    for n, (seed, reason) in enumerate(_invalid_seeds(fixture_web.url("news", "")).items()):
        home = tmp_path / f"home-{n}"
        home.mkdir()
        proc = run_attest([command, seed], _env_for(home))
        assert proc.returncode == 2, (seed[:80], proc.stdout, proc.stderr[-2000:])
        assert reason in proc.stderr, proc.stderr[-2000:]
        assert seed[:60] in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (home / "store").exists(), "bad input changes nothing"


def test_invalid_seeds_beside_valid_ones_get_the_outcome_invalid_url(
    fixture_web: FixtureWeb, tmp_path: Path
) -> None:
    news = fixture_web.url("news", "")
    invalid = _invalid_seeds(news)
    home = tmp_path / "home"
    home.mkdir()
    valid = f"{news}/article/2.html"
    proc = run_attest(["crawl", "--depth", "0", "--json", valid, *invalid], _env_for(home))
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["outcomes"]["invalid_url"] == len(invalid)
    # The outcome records are indexed like any other.
    assert summary["indexed"] >= 1
    assert summary["index_pending"] == []
    assert summary["outcomes"]["captured"] >= 1
    records = read_records(store_warcs(home / "store"))
    assert any(r.type == "response" and r.target == valid for r in records)
    outcomes = {
        r.json()["url"]: r
        for r in records
        if r.type == "metadata" and "attest-outcome" in r.headers.get("Content-Type", "")
    }
    for seed, reason in invalid.items():
        rec = outcomes[seed]
        assert rec.json()["outcome"] == "invalid_url"
        assert reason in rec.json()["reason"]
        assert (rec.target or "").startswith("urn:attest:invalid-url:")
    entries = {e["url"]: e for e in ledger(home)}
    for seed, reason in invalid.items():
        assert entries[seed]["outcome"] == "invalid_url"
        assert reason in entries[seed]["error"]
