"""What a bundle says is exactly what happened, per capture, on an archive built here.

The WARC is written with attest's own writer (``support.indexwarcs``) as a run that mixed both
capture methods would write it: an article the crawler fetched, a post the browser rendered
(its page record says browser, automation, viewport, user agent, behaviors, the post's own
time; its text and screenshot are derivatives), and a page captured before pages recorded their
method. The run's ``warcinfo`` names a browser, as such runs' did: the bundle must not take
any page's method from it. Then ``attest export`` (signed, timestamped by a local TSA), the
manifest and report read, ``evidence/verify.sh`` run from the extracted bundle as a stranger
would, and a bundle exported without a timestamp authority verified as "signed, not
timestamped".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.cli import run_attest
from support.indexwarcs import PNG, WarcBuilder
from support.pki import make_pki
from support.tsa import local_tsa

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.ingest.indexer import index_keys
from archive.store import FileStore, file_sha256
from archive.warc.write import Block, RecordSpec

if TYPE_CHECKING:
    from support.pki import TestPKI

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 5, 14, 8, 0, 0, tzinfo=UTC)
ARTICLE = "http://news.example/2026/05/14/statement.html"
STYLE = "http://news.example/static/site.css"
POST = "http://social.example/@minister/post/42"
OLDER = "http://news.example/2026/05/13/earlier.html"
QUOTE = "some separatists have made a deal"
POST_QUOTE = "we will not accept interference"
CRAWLER = {"method": "crawler", "software": "attest 0.1.0 (Scrapy 2.19.0)"}
BROWSER = {
    "method": "browser",
    "software": "attest 0.1.0",
    "browser": "Chromium 156.0.8078.108",
    "automation": "Playwright 1.65.2",
    "viewport": {"width": 1280, "height": 800},
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/156",
    "behaviors": [{"name": "scroll", "steps": 2}],
    "complete": True,
}
POST_REF = {"platform": "generic", "account": "minister", "post_id": "42",
            "platform_time": "2026-05-14T07:58:00Z", "platform_time_shown": "14 May, 09:58"}  # fmt: skip


@dataclass
class Built:
    home: Path
    env: dict[str, str]
    case: Path
    ids: dict[str, str]
    pki: TestPKI


def _resource(builder: WarcBuilder, url: str, of: str, data: bytes, content_type: str) -> str:
    written = builder.writer.write(
        RecordSpec(record_type="resource", block=Block.from_bytes(data), target_uri=url,
                   content_type=content_type, headers=[("WARC-Concurrent-To", of)])
    )  # fmt: skip
    builder.records.append(written)
    return written.record_id


def _build(directory: Path) -> tuple[Path, dict[str, str]]:
    # The run's warcinfo names a browser and a user agent: true of some pages, not of all.
    builder = WarcBuilder(directory / "mixed.warc.gz", "mixed.warc.gz", start=START,
                          info=[("browser-version", "Chromium 999.0 (the run's)"),
                                ("http-header-user-agent", "the-run-user-agent/9")])  # fmt: skip
    article = builder.exchange(
        ARTICLE, f"<html><body><p>The minister said {QUOTE} with Baku.</p></body></html>".encode()
    )
    builder.page_metadata(ARTICLE, article.response.record_id,
                          {"url": ARTICLE, "outcome": "captured", "requisites": [STYLE],
                           "capture": CRAWLER})  # fmt: skip
    style = builder.exchange(STYLE, b"p{color:#333}", content_type="text/css")
    post = builder.exchange(POST, b"<html><body><div id=app>Loading...</div></body></html>")
    builder.page_metadata(POST, post.response.record_id,
                          {"url": POST, "outcome": "captured", "post": POST_REF,
                           "capture": {**BROWSER, "exchanges": [{"url": POST}]}})  # fmt: skip
    text = _resource(builder, f"urn:text:{POST}", post.response.record_id,
                     f"@minister: On the referendum, {POST_QUOTE} from abroad.".encode(),
                     "text/plain; charset=utf-8")  # fmt: skip
    _resource(builder, f"urn:view:{POST}", post.response.record_id, PNG, "image/png")
    older = builder.exchange(OLDER, b"<html><body><p>Earlier report.</p></body></html>")
    builder.page_metadata(OLDER, older.response.record_id, {"url": OLDER, "outcome": "captured"})
    path = builder.close()
    return path, {"article": article.response.record_id, "style": style.response.record_id,
                  "post": post.response.record_id, "text": text,
                  "older": older.response.record_id}  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    base = tmp_path_factory.mktemp("bundle-facts")
    home = base / "home"
    store = FileStore(home / "store")
    path, ids = _build(base)
    key = "warcs/src/2026/05/14/mixed.warc.gz"
    store.put_file(key, path, file_sha256(path))
    with IndexDB(str(home / "index.sqlite")) as db:
        assert not [r for r in index_keys(db, store, [key], custody=CustodyLog(db, store))
                    if r.error]  # fmt: skip
    case = base / "facts.yaml"
    case.write_text(json.dumps({"id": "facts", "title": "Per-page facts", "claims": [
        {"id": "C1", "text": "The minister said it.", "source": "news",
         "evidence": [{"url": ARTICLE, "selector": {"quote": QUOTE}}]},
        {"id": "C2", "text": "The minister posted it.", "source": "social",
         "evidence": [{"capture": ids["post"], "selector": {"quote": POST_QUOTE}}]},
        {"id": "C3", "text": "An earlier report.", "source": "news",
         "evidence": [{"url": OLDER}, {"url": "http://news.example/never.html"}]},
    ]}))  # fmt: skip
    pki = make_pki(base / "pki")
    trust = base / "trust.pem"
    trust.write_bytes(pki.org_public.read_bytes() + pki.root.read_bytes())
    with local_tsa(pki, base / "tsa") as tsa:
        env = dict(os.environ, ATTEST_HOME=str(home), ATTEST_ACTOR="examiner",
                   ATTEST_SIGNING_KEY=str(pki.org_key), ATTEST_TSA_URLS=tsa.url,
                   ATTEST_TRUST=str(trust))  # fmt: skip
        for name in ("ATTEST_STORE", "ATTEST_INDEX"):
            env.pop(name, None)
        # A stylesheet linked (with a reason), then withdrawn: history the bundle must show.
        linked = run_attest(["claim", "link", str(case), "C1", ids["style"], "--any-record",
                             "--reason", "its colours were cited"], env)  # fmt: skip
        assert linked.returncode == 0, linked.stderr
        unlinked = run_attest(["claim", "unlink", str(case), "C1", ids["style"],
                               "--reason", "a stylesheet is not the statement"], env)  # fmt: skip
        assert unlinked.returncode == 0, unlinked.stderr
        yield Built(home, env, case, ids, pki)


@pytest.fixture(scope="module")
def bundle(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("facts-bundle") / "facts.wacz"
    proc = run_attest(["export", str(built.case), "-o", str(path)], built.env)
    assert proc.returncode == 0, proc.stderr
    assert "GAP: claim C3: exact http://news.example/never.html: no capture" in proc.stdout
    return path


def _manifest(bundle: Path) -> dict[str, Any]:
    with zipfile.ZipFile(bundle) as archive:
        data: dict[str, Any] = json.loads(archive.read("evidence/manifest.json"))
    return data


def _captures(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["record_id"]: c for claim in manifest["claims"] for c in claim["captures"]}


def test_each_capture_carries_its_own_pages_method(bundle: Path, built: Built) -> None:
    captures = _captures(_manifest(bundle))
    article, post, older = (captures[built.ids[k]] for k in ("article", "post", "older"))
    assert article["method"] == CRAWLER
    assert article["user_agent"] is None  # its request record sent none; never the run's
    assert post["method"] == BROWSER  # every recorded fact, not the bulky exchange list
    assert post["user_agent"] == BROWSER["user_agent"]
    assert older["method"] == {"method": None, "note": "not recorded for this page"}
    for capture in (article, post, older):
        assert "Chromium 999" not in json.dumps(capture)  # nothing taken from the run
        assert capture["capture_id"] == capture["record_id"][10:-1]
        # one capture's exact links in the archive's service (a per-second URI-M is not)
        uuid = capture["capture_id"]
        assert capture["archive_links"] == {
            "replay": f"/capture/{uuid}/replay", "raw": f"/capture/{uuid}/raw",
            "page": f"/ui/capture/{uuid}", "api": f"/api/capture/{uuid}",
        }  # fmt: skip
    with zipfile.ZipFile(bundle) as archive:
        html = archive.read("evidence/report.html").decode()
    sections = html.split('<div class="capture">')[1:]
    by_url = {next(u for u in (ARTICLE, POST, OLDER) if u in s): s for s in sections}
    for capture in (article, post, older):
        assert f"/capture/{capture['capture_id']}/replay" in by_url[capture["url"]]
    assert "crawler (HTTP fetch, no browser)" in by_url[ARTICLE]
    assert "Chromium" not in by_url[ARTICLE]
    assert "browser (rendered in Chromium)" in by_url[POST]
    assert "Playwright 1.65.2" in by_url[POST]
    assert "not recorded for this page" in by_url[OLDER]
    assert "Chromium" not in by_url[OLDER]
    assert "scrapy" not in by_url[POST].lower()


def test_the_manifest_says_what_was_checked_and_what_is_missing(bundle: Path, built: Built) -> None:
    manifest = _manifest(bundle)
    claims = {c["id"]: c for c in manifest["claims"]}
    captures = _captures(manifest)
    [article_quote] = captures[built.ids["article"]]["quotes"]
    assert article_quote == {"quote": QUOTE, "capture": built.ids["article"], "found": True,
                             "text": "html", "text_record": built.ids["article"], "shown": QUOTE,
                             "before": "The minister said", "after": "with Baku."}  # fmt: skip
    [post_quote] = captures[built.ids["post"]]["quotes"]
    assert (post_quote["text"], post_quote["text_record"]) == ("rendered", built.ids["text"])
    assert post_quote["after"] == "from abroad."
    assert captures[built.ids["post"]]["post"] == POST_REF
    assert manifest["summary"] == {"claims": 3, "covered": 2, "with_gaps": 1, "gap_links": 1}
    assert manifest["gaps"] == [{"claim": "C3", "gap": "exact http://news.example/never.html: "
                                 "no capture"}]  # fmt: skip
    assert [link["status"] for link in claims["C3"]["links"]] == ["found", "gap"]
    [withdrawn] = claims["C1"]["withdrawn"]
    assert (withdrawn["record_id"], withdrawn["linked_by"], withdrawn["withdrawn_by"],
            withdrawn["reason"], withdrawn["still_evidence"]) == (
        built.ids["style"], "examiner", "examiner", "a stylesheet is not the statement", False
    )  # fmt: skip
    # The withdrawn link is no longer the claim's evidence, and its custody entries travel.
    assert built.ids["style"] not in {c["record_id"] for c in claims["C1"]["captures"]}
    with zipfile.ZipFile(bundle) as archive:
        custody = [json.loads(x) for x in archive.read("evidence/custody.jsonl").splitlines()]
    actions = [(e["action"], e["details"].get("reason") or e["details"].get("any_record_reason"))
               for e in custody if e["object"] == built.ids["style"]]  # fmt: skip
    assert actions == [("link", "its colours were cited"),
                       ("unlink", "a stylesheet is not the statement")]  # fmt: skip


# --- evidence/verify.sh, run from the extracted bundle ---------------------------------------

TOOLS = ("sh", "sha256sum", "openssl", "cat", "find", "mkdir", "rm")


def run_bundled_script(
    bundle: Path, workdir: Path, pki: TestPKI, *, attest: bool = False
) -> subprocess.CompletedProcess[str]:
    """As a stranger would: unzip, then ``sh evidence/verify.sh`` with the organisation's
    public key and the TSA root obtained separately, and only the standard tools on PATH
    (and attest, when ``attest``)."""
    tools = workdir / "bin"
    tools.mkdir(parents=True)
    for tool in TOOLS + (("attest",) if attest else ()):
        found = shutil.which(tool, path=str(ROOT / ".venv" / "bin") + os.pathsep
                             + os.environ.get("PATH", ""))  # fmt: skip
        assert found, f"{tool} is not installed"
        (tools / tool).symlink_to(found)
    extracted = workdir / "bundle"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(extracted)
    env = {"PATH": str(tools), "PUBKEY": str(pki.org_public), "TSA_ROOTS": str(pki.root),
           "TMPDIR": str(workdir)}  # fmt: skip
    if attest:
        env.update(WACZ=str(bundle), ATTEST_HOME=str(workdir / "home"))
    return subprocess.run(["sh", "evidence/verify.sh"], cwd=extracted, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_the_bundled_script_passes_a_good_bundle(
    bundle: Path, built: Built, tmp_path: Path
) -> None:
    with zipfile.ZipFile(bundle) as archive:
        package = json.loads(archive.read("datapackage.json"))
        script = archive.read("evidence/verify.sh")
        html = archive.read("evidence/report.html").decode()
    listed = {r["path"]: r["hash"] for r in package["resources"]}
    assert listed["evidence/verify.sh"] == f"sha256:{hashlib.sha256(script).hexdigest()}"
    # The report prints that very script, unwrapped.
    assert (
        script.decode()
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
        in html
    )
    done = run_bundled_script(bundle, tmp_path / "plain", built.pki)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("\nALL CHECKS PASSED")
    assert "OK           signature: Verified OK" in done.stdout
    assert "OK           timestamp 1 (" in done.stdout
    with_attest = run_bundled_script(bundle, tmp_path / "attest", built.pki, attest=True)
    assert with_attest.returncode == 0, with_attest.stdout + with_attest.stderr
    assert f"OK           attest verify {bundle}: OK " in with_attest.stdout


def test_the_bundled_script_fails_a_tampered_bundle(
    bundle: Path, built: Built, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "evidence/manifest.json":
                data = data.replace(b"The minister said it.", b"The minister denied it.")
            dst.writestr(info, data)
    done = run_bundled_script(tampered, tmp_path / "run", built.pki, attest=True)
    assert done.returncode == 1, done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert failed[0].startswith("FAILED       evidence/manifest.json: its SHA-256 is "), failed
    assert any(line.startswith(f"FAILED       attest verify {tampered} (exit status 1)")
               for line in failed), failed  # fmt: skip


# --- signed, not timestamped ---------------------------------------------------------------


def test_a_bundle_without_a_timestamp_is_signed_not_timestamped(
    built: Built, tmp_path: Path
) -> None:
    path = tmp_path / "unstamped.wacz"
    env = dict(built.env, ATTEST_TSA_URLS="")
    proc = run_attest(["export", str(built.case), "--claim", "C1", "-o", str(path)], env)
    assert proc.returncode == 0, proc.stderr
    assert "no timestamp authority configured" in proc.stderr
    proc = run_attest(["verify", str(path)], env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"SIGNED, NOT TIMESTAMPED {path}: ")
    assert "not timestamped: no RFC 3161 token" in proc.stdout
    assert "Exit status 3: signed, not timestamped" in proc.stdout
    assert "docs/LEGAL.md" in proc.stdout
    [verdict] = json.loads(run_attest(["verify", str(path), "--json"], env).stdout)
    assert (verdict["ok"], verdict["verdict"], verdict["problems"]) == (
        True, "signed, not timestamped", [])  # fmt: skip
    # Signed by an untrusted key and not timestamped: a failure (1), not the verdict 3.
    proc = run_attest(["verify", str(path), "--trust", str(built.pki.root)], env)
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.startswith(f"FAILED {path}")
    # The bundled script says the same, with the same exit status.
    done = run_bundled_script(path, tmp_path / "script", built.pki)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "NOT TIMESTAMPED  no timestamp authority dated this bundle" in done.stdout


# --- every record exported is checked --------------------------------------------------------


def test_an_export_refuses_a_record_changed_in_the_store_and_leaves_no_bundle(
    built: Built, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(built.home, home)
    env = dict(built.env, ATTEST_HOME=str(home))
    with IndexDB(str(home / "index.sqlite")) as db:
        (row,) = [r for r in db.select(low="", high="\U0010ffff", exact=False)
                  if r.record_id == built.ids["article"]]  # fmt: skip
    warc = home / "store" / row.warc_key
    warc.chmod(0o644)  # the store keeps it read-only; whoever controls the disk need not care
    data = bytearray(warc.read_bytes())
    data[row.offset + row.length // 2] ^= 0x01  # one bit inside the article's gzip member
    warc.write_bytes(bytes(data))
    path = tmp_path / "out.wacz"
    proc = run_attest(["export", str(built.case), "--claim", "C1", "-o", str(path)], env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{row.warc_key} at offset {row.offset} (record {row.record_id})" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not path.exists()
    assert not list(tmp_path.glob(".out.wacz*")), "no partial bundle is left behind"
