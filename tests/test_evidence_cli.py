"""The evidence commands on a small indexed archive built here: ``attest get`` says when the
capture it wrote was made (ISO 8601 UTC) and warns when that is far from the time asked."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.indexwarcs import WarcBuilder

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.ingest.indexer import index_keys
from archive.store import FileStore, file_sha256

ROOT = Path(__file__).resolve().parents[1]
PAGE = "http://news.example/2024/05/flags.html"
OLD = datetime(2021, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)
NEW = datetime(2024, 5, 13, 10, 0, 0, 500000, tzinfo=UTC)


@dataclass
class Home:
    path: Path
    env: dict[str, str]

    def attest(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def indexed_home(tmp_path: Path, builder: WarcBuilder, key: str) -> Home:
    """A data home whose file store holds the builder's WARC under ``key``, indexed."""
    home = tmp_path / "home"
    store = FileStore(home / "store")
    path = builder.close()
    store.put_file(key, path, file_sha256(path))
    with IndexDB(str(home / "index.sqlite")) as db:
        results = index_keys(db, store, [key], custody=CustodyLog(db, store))
    assert not [r.error for r in results if r.error]
    env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ACTOR="tester")
    for name in ("ATTEST_STORE", "ATTEST_INDEX", "ATTEST_TSA_URLS", "ATTEST_TRUST"):
        env.pop(name, None)
    return Home(home, env)


@pytest.fixture
def two_captures(tmp_path: Path) -> Home:
    """One page captured in March 2021 and in May 2024."""
    builder = WarcBuilder(tmp_path / "get.warc.gz", "get.warc.gz", start=OLD)
    builder.exchange(PAGE, b"<html><body>March 2021</body></html>", at=OLD)
    builder.exchange(PAGE, b"<html><body>May 2024</body></html>", at=NEW)
    return indexed_home(tmp_path, builder, "warcs/src/2024/05/13/get.warc.gz")


def test_get_prints_the_capture_time_as_iso_8601_utc(two_captures: Home, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    proc = two_captures.attest("get", PAGE, "--at", "2024-05-13T10:00:00Z", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == b"<html><body>May 2024</body></html>"
    assert "captured 2024-05-13T10:00:00.500000Z" in proc.stderr
    assert "warning" not in proc.stderr


def test_get_warns_when_the_closest_capture_is_far_from_the_time_asked(
    two_captures: Home, tmp_path: Path
) -> None:
    proc = two_captures.attest("get", PAGE, "--at", "2019-01-01", "-o", str(tmp_path / "p"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "p").read_bytes() == b"<html><body>March 2021</body></html>"
    assert "captured 2021-03-01T08:00:00.250000Z" in proc.stderr
    assert "warning: the closest capture was made 790 days 8 hours after the time asked " \
        "(2019-01-01T00:00:00.000000Z)" in proc.stderr
    # Written to stdout, the payload alone goes there; the warning still goes to stderr.
    proc = two_captures.attest("get", PAGE, "--at", "2025-06-01T10:00:00Z")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "<html><body>May 2024</body></html>"
    assert "383 days 23 hours before the time asked" in proc.stderr


ARTICLE = "http://news.example/2024/05/16/flags.html"
OTHER = "http://news.example/2024/05/17/other.html"
STYLE = "http://news.example/static/site.css"
SLOW_POST = "http://social.example/@nc/post/1"
NEVER = "http://news.example/never.html"


@pytest.fixture
def case_home(tmp_path: Path) -> tuple[Home, Path, dict[str, str]]:
    """An article (with its request and stylesheet), a page without the quote, a post captured
    only as ``incomplete``, and a case over them; the record ids by name."""
    builder = WarcBuilder(tmp_path / "case.warc.gz", "case.warc.gz", start=NEW)
    article = builder.exchange(ARTICLE, b"<html><body><p>Azerbaijani flags were flown at "
                               b"pro-independence rallies on Monday.</p></body></html>")  # fmt: skip
    builder.page_metadata(ARTICLE, article.response.record_id,
                          {"url": ARTICLE, "outcome": "captured", "requisites": [STYLE]})  # fmt: skip
    style = builder.exchange(STYLE, b"p{color:red}", content_type="text/css")
    other = builder.exchange(OTHER, b"<html><body><p>Nothing about flags.</p></body></html>")
    post = builder.exchange(SLOW_POST, b"<html><body><div>Loading...</div></body></html>")
    builder.page_metadata(SLOW_POST, post.response.record_id,
                          {"url": SLOW_POST, "outcome": "incomplete"})  # fmt: skip
    home = indexed_home(tmp_path, builder, "warcs/src/2024/05/13/case.warc.gz")
    case = tmp_path / "cases" / "flags.yaml"
    case.parent.mkdir()
    quote = "Azerbaijani flags were flown"
    case.write_text(json.dumps({"id": "flags", "title": "Flags", "claims": [
        {"id": "C1", "text": "Flags flown.", "source": "news",
         "evidence": [{"url": ARTICLE, "selector": {"quote": quote}}]},
        {"id": "C2", "text": "Also elsewhere.", "source": "news",
         "evidence": [{"url": ARTICLE}, {"url": NEVER, "from": "2024-05-13"}]},
        {"id": "C3", "text": "The other page says so.", "source": "news",
         "evidence": [{"url": OTHER, "selector": {"quote": quote}}]},
        {"id": "C4", "text": "A post says so.", "source": "social",
         "evidence": [{"url": SLOW_POST}]},
        {"id": "C5", "text": "Nothing linked yet.", "source": "rumour"},
    ]}))  # fmt: skip
    ids = {"article": article.response.record_id, "request": article.request.record_id,
           "style": style.response.record_id, "other": other.response.record_id,
           "post": post.response.record_id}  # fmt: skip
    return home, case, ids


def test_claims_count_gaps_per_link_and_name_each(
    case_home: tuple[Home, Path, dict[str, str]],
) -> None:
    home, case, ids = case_home
    proc = home.attest("claims", str(case))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.rstrip().endswith("1 of 5 claims fully covered; 4 with gaps; 3 gap link(s)"), out
    assert f"  GAP    exact {NEVER}: no capture from 2024-05-13T00:00:00.000000Z to now\n" in out
    assert f"  GAP    exact {OTHER}: the quote is not shown by its 1 capture(s)\n" in out
    assert f"  GAP    exact {SLOW_POST}: only incomplete captures (1)" in out
    assert "  GAP    no evidence is linked to this claim\n" in out
    assert f"  found  exact {ARTICLE} (1 capture(s))\n" in out
    assert "[Azerbaijani flags were flown] at pro-independence rallies on Monday." in out
    assert "QUOTE NOT SHOWN (html text): 'Azerbaijani flags were flown'" in out
    report = json.loads(home.attest("claims", str(case), "--json").stdout)
    assert report["summary"] == {"claims": 5, "covered": 1, "with_gaps": 4, "gap_links": 3}
    by_id = {c["id"]: c for c in report["claims"]}
    assert [(link["status"], link["why"]) for link in by_id["C2"]["links"]] == [
        ("found", None), ("gap", "no capture from 2024-05-13T00:00:00.000000Z to now"),
    ]  # fmt: skip
    assert by_id["C4"]["captures"] == []
    assert by_id["C4"]["links"][0]["incomplete"] == [ids["post"]]
    quote = by_id["C1"]["captures"][0]["quotes"][0]
    assert (quote["found"], quote["text"], quote["capture"]) == (True, "html", ids["article"])


def custody_entries(home: Home, action: str) -> list[tuple[str, str, dict[str, object]]]:
    with sqlite3.connect(home.path / "index.sqlite") as conn:
        rows = conn.execute(
            "SELECT actor, object, details FROM custody_log WHERE action = ? ORDER BY seq",
            (action,),
        ).fetchall()
    return [(actor, obj, json.loads(details)) for actor, obj, details in rows]


def test_claim_link_takes_pages_and_unlink_withdraws_with_a_logged_reason(
    case_home: tuple[Home, Path, dict[str, str]],
) -> None:
    home, case, ids = case_home
    for name in ("request", "style"):
        proc = home.attest("claim", "link", str(case), "C5", ids[name])
        assert proc.returncode == 2, proc.stdout
        assert f"{ids[name]} is a " in proc.stderr
        assert "--any-record --reason" in proc.stderr
    assert custody_entries(home, "link") == []
    proc = home.attest("claim", "link", str(case), "C5", ids["style"], "--any-record")
    assert proc.returncode == 2
    assert "--any-record needs --reason" in proc.stderr
    proc = home.attest("claim", "link", str(case), "C5", ids["style"], "--any-record",
                       "--reason", "the banner colour is the claim")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = home.attest("claim", "link", str(case), "C5", ids["article"], "--note", "the report")
    assert proc.returncode == 0, proc.stderr
    links = custody_entries(home, "link")
    assert [(obj, details.get("any_record_reason")) for _, obj, details in links] == [
        (ids["style"], "the banner colour is the claim"), (ids["article"], None),
    ]  # fmt: skip
    proc = home.attest("claim", "unlink", str(case), "C5", ids["style"])
    assert proc.returncode == 2  # --reason is required
    proc = home.attest("claim", "unlink", str(case), "C5", ids["style"], "--reason", "not a page")
    assert proc.returncode == 0, proc.stderr
    assert "withdrawn" in proc.stdout
    [(actor, obj, details)] = custody_entries(home, "unlink")
    assert (actor, obj, details["reason"], details["claim"]) == ("tester", ids["style"],
                                                                 "not a page", "C5")  # fmt: skip
    assert details["linked_by"] == "tester"
    proc = home.attest("claim", "unlink", str(case), "C5", ids["style"], "--reason", "again")
    assert proc.returncode == 2
    assert "no active link" in proc.stderr
    claims = json.loads(home.attest("claims", str(case), "--json").stdout)
    c5 = next(c for c in claims["claims"] if c["id"] == "C5")
    assert [c["capture"] for c in c5["captures"]] == [ids["article"]]
    assert [(w["record_id"], w["withdrawn_by"], w["withdrawn_reason"]) for w in c5["withdrawn"]] \
        == [(ids["style"], "tester", "not a page")]
    assert c5["covered"]
    text = home.attest("claims", str(case)).stdout
    assert f"  withdrawn: capture {ids['style']}, linked by tester at " in text


def test_tsa_chain_files_stay_with_their_authority(tmp_path: Path) -> None:
    """``ATTEST_TSA_CHAINS`` follows ``ATTEST_TSA_URLS`` by position: an empty entry is an
    authority without a chain file, not a reason to give the next file to the wrong one."""
    from support.pki import make_pki

    import cli.evidence
    import settings

    pki = make_pki(tmp_path / "pki")
    env = {"ATTEST_HOME": str(tmp_path / "home"),
           "ATTEST_TSA_URLS": "http://one.test/tsr,http://two.test/tsr,http://three.test/tsr",
           "ATTEST_TSA_CHAINS": f",{pki.tsa_chain},"}  # fmt: skip
    _, tsas = cli.evidence._signing(settings.load_config(env), unsigned=True)
    assert [(t.url, len(t.chain)) for t in tsas] == [
        ("http://one.test/tsr", 0), ("http://two.test/tsr", 2), ("http://three.test/tsr", 0),
    ]  # fmt: skip
