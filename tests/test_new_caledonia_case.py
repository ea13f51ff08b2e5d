"""The shipped demo case, cases/new-caledonia.yaml, against the demo web it names (no network).

The case file must parse, hold every claim of the motivating case (C1-C12 of CASE.md) and the
two counter-statements, and name only pages the demo web serves, at the fixed origins
``attest demo`` serves them on, each showing the quote the case expects; the links kept on
purpose as gaps must name pages the demo web does not have. Pages are asked of the fixture
sites' handlers directly, as the server would.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from archive.evidence.cases import Case, Evidence, find_case, load_case
from archive.warc.text import html_text
from crawlers.registry import load_registry
from demoweb import FixtureWeb
from demoweb.case import CASE_PROFILES, DEMO_PORTS, TAG
from demoweb.http import Request

ROOT = Path(__file__).resolve().parents[1]
CASE_FILE = ROOT / "cases" / "new-caledonia.yaml"
CLAIMS = [f"C{n}" for n in range(1, 13)]
COUNTERS = ["C2-counter", "C7-counter"]
ORIGINS = {f"http://127.0.0.1:{port}": site for site, port in DEMO_PORTS.items()}


@pytest.fixture(scope="module")
def case() -> Case:
    return load_case(CASE_FILE)


@pytest.fixture(scope="module")
def web() -> FixtureWeb:
    """The demo web's sites, not started: the tests call their handlers."""
    return FixtureWeb(articles=12, case=True)


def fetch(web: FixtureWeb, url: str) -> tuple[int, str]:
    """(status, visible text) of a demo page, the text as a browser shows it for social pages."""
    parts = urlsplit(url)
    site = ORIGINS[f"{parts.scheme}://{parts.netloc}"]
    reply = getattr(web, site)(Request("GET", parts.path, {}, parts.netloc))
    if reply.status != 200 or site != "social":
        return reply.status, html_text(reply.body, None)
    # The social site renders with JavaScript: its text is what its API gives the page.
    segments = parts.path.strip("/").split("/")
    if segments[0] == "tag":
        posts = web.social.tagged(segments[1])
    else:
        posts = [p for p in web.social.posts(segments[0][1:]) if p.post_id == segments[-1]]
    return 200, " ".join(str(web.social.post_json(p)["text"]) for p in posts)


def served_paths(web: FixtureWeb, site: str) -> list[str]:
    if site == "social":
        return [p.permalink_path for p in web.social.tagged(TAG)] + [f"/tag/{TAG}"]
    paths: list[str] = getattr(web, site).all_paths()
    return paths


def is_intended_gap(link: Evidence) -> bool:
    return bool(link.note and "gap" in link.note)


def test_the_case_parses_and_holds_every_claim_of_the_motivating_case(case: Case) -> None:
    assert case.id == "new-caledonia"
    ids = [c.id for c in case.claims]
    assert set(CLAIMS + COUNTERS) == set(ids)
    for claim in case.claims:
        assert claim.text
        assert "L'Express" in claim.source
        assert claim.notes
        assert claim.evidence, f"{claim.id} links to no page"
        assert claim.kind == ("counter-statement" if claim.id in COUNTERS else "claim")
    # `attest claims new-caledonia` finds it by id in the checkout's cases/.
    assert find_case("new-caledonia", [ROOT / "cases"]).path == str(CASE_FILE)


def test_every_link_names_a_demo_page_that_shows_its_quote(case: Case, web: FixtureWeb) -> None:
    for claim in case.claims:
        for link in claim.evidence:
            assert link.url is not None, f"{claim.id}: the demo case links pages by URL"
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(link.url))
            assert origin in ORIGINS, f"{claim.id}: {link.url} is not on a demo origin"
            where = f"{claim.id}: {link.url}"
            if is_intended_gap(link):
                assert fetch(web, link.url)[0] == 404, f"{where} is served; not a gap"
                continue
            if link.match == "prefix":
                path = urlsplit(link.url).path
                members = [p for p in served_paths(web, ORIGINS[origin]) if p.startswith(path)]
                assert members, f"{where} matches no demo page"
                for member in members:
                    status, text = fetch(web, origin + member)
                    assert status == 200, f"{where}: {member}"
                    assert not link.quote or link.quote in text, f"{where}: {member}"
                continue
            status, text = fetch(web, link.url)
            assert status == 200, where
            if link.quote:
                assert " ".join(link.quote.split()) in text, f"{where} does not show the quote"


def test_every_demo_page_says_it_is_a_fictional_reproduction(web: FixtureWeb) -> None:
    pages = [a.path for a in web.news.case_articles]
    for path in pages:
        assert "Fictional demo reproduction" in fetch(web, "http://127.0.0.1:8781" + path)[1]
    for release in web.ngo.case_releases:
        assert (
            "Fictional demo reproduction"
            in fetch(web, "http://127.0.0.1:8782" + release.en_path)[1]
        )
        assert "Reproduction fictive" in fetch(web, "http://127.0.0.1:8782" + release.fr_path)[1]
    for profile in CASE_PROFILES:
        assert "demo stand-in" in profile.name
        for post in web.social.posts(profile.handle):
            assert str(web.social.post_json(post)["text"]).startswith("[Fictional demo post]")


def test_the_demo_pages_are_linked_where_the_demo_crawl_finds_them(web: FixtureWeb) -> None:
    news_home = fetch(web, "http://127.0.0.1:8781/")[1]
    rss = web.news(Request("GET", "/rss.xml", {}, "127.0.0.1:8781")).body.decode()
    for article in web.news.case_articles:
        assert article.title in news_home
        assert f"http://127.0.0.1:8781{article.path}" in rss
    for listing, attr in (("/press/", "en_path"), ("/fr/communiques/", "fr_path")):
        page = web.ngo(Request("GET", listing, {}, "127.0.0.1:8782")).body.decode()
        for release in web.ngo.case_releases:
            assert f'href="{getattr(release, attr)}"' in page
    tagged = web.social(Request("GET", f"/api/tag/{TAG}/posts", {}, "127.0.0.1:8783"))
    first = json.loads(tagged.body)
    assert first["next"] == "6"  # the tag feed scrolls: a second page
    handles = {p.handle for p in web.social.tagged(TAG)}
    assert handles == {p.handle for p in CASE_PROFILES}


def test_the_demo_registry_crawls_the_origins_the_case_names() -> None:
    env = {f"DEMO_{site.upper()}": f"http://127.0.0.1:{port}" for site, port in DEMO_PORTS.items()}
    sources = {s.id: s for s in load_registry([ROOT / "sources" / "demo.yaml"], env)}
    social = sources["demo-social"]
    assert social.kind == "profile"
    # Every post the tag page lists.
    web = FixtureWeb(articles=1, case=True)
    origin = env["DEMO_SOCIAL"]
    assert sorted(social.seeds) == sorted(origin + p.permalink_path for p in web.social.tagged(TAG))
    assert DEMO_PORTS == {"news": 8781, "ngo": 8782, "social": 8783}
    text = CASE_FILE.read_text()
    assert {f"http://127.0.0.1:{p}/" for p in DEMO_PORTS.values()} <= {
        u[: len("http://127.0.0.1:8781/")] for u in text.split() if u.startswith("http://127.")
    }


def test_a_taken_port_is_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = FixtureWeb(articles=1, ports={"ngo": port})
        with pytest.raises(OSError, match=rf"the ngo site cannot listen on 127\.0\.0\.1:{port}: "):
            web.start()
        # The site started before it is stopped again.
        news_port = int(web.servers["news"].origin.rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", news_port), timeout=2).close()
        # Served from its own process (as `attest demo` does), the error is its JSON line.
        proc = subprocess.run(
            [sys.executable, "-m", "demoweb", "--articles", "1", "--port", f"social={port}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]
    assert error == f"the social site cannot listen on 127.0.0.1:{port}: address already in use"


def test_each_demo_page_is_linked_from_the_claims_it_stands_for(
    case: Case, web: FixtureWeb
) -> None:
    def linked(claim_id: str, url: str) -> bool:
        return any(
            link.url == url or (link.match == "prefix" and url.startswith(str(link.url)))
            for link in case.claim(claim_id).evidence
        )

    for article in web.news.case_articles:
        for claim_id in article.claims:
            assert linked(claim_id, f"http://127.0.0.1:8781{article.path}"), (claim_id, article)
    for release in web.ngo.case_releases:
        for claim_id in release.claims:
            for path in (release.en_path, release.fr_path):
                assert linked(claim_id, f"http://127.0.0.1:8782{path}"), (claim_id, path)


#: The demo registry's titles in full: a `#` after a space starts a YAML comment, which once
#: cut the social source's title short ("... the posts tagged").
DEMO_TITLES = {
    "demo-news": "Fixture News, a generated news site",
    "demo-ngo": "Fixture NGO, press releases in English and French",
    "demo-social": "Fixture Social, the posts tagged #NouvelleCaledonie (rendered in the browser)",
}


def test_the_demo_registry_keeps_its_full_titles() -> None:
    env = {f"DEMO_{site.upper()}": f"http://127.0.0.1:{port}" for site, port in DEMO_PORTS.items()}
    sources = load_registry([ROOT / "sources" / "demo.yaml"], env)
    assert {s.id: s.title for s in sources} == DEMO_TITLES


def plain_scalars_followed_by_a_comment(path: Path) -> list[str]:
    """Unquoted values with a comment after them on their line: the comment may be text the
    author meant as part of the value (YAML drops everything from `` #`` on)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for token in yaml.scan(path.read_text(encoding="utf-8")):
        if not isinstance(token, yaml.ScalarToken) or token.style is not None:
            continue
        end = token.end_mark
        rest = lines[end.line][end.column :] if end.line < len(lines) else ""
        if rest.lstrip().startswith("#"):
            found.append(f"{path.name}:{end.line + 1}: {token.value!r} then {rest.strip()!r}")
    return found


def test_no_shipped_value_is_cut_short_by_a_comment() -> None:
    files = sorted((ROOT / "sources").glob("*.yaml")) + sorted((ROOT / "cases").glob("*.yaml"))
    assert len(files) >= 3
    suspects = [s for path in files for s in plain_scalars_followed_by_a_comment(path)]
    assert suspects == []
