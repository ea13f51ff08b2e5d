"""Claims and evidence bundles over a real captured archive (issue 5, first part).

A case file links claims to the archive of ``archive_fixture``: a news article by URL and date
(two captures), a browser-captured post by capture id, a counter-statement that was never
captured (a gap). ``attest claims`` shows them; ``attest export`` writes a WACZ that the
reference validator (PyPI ``wacz``) accepts, whose WARC holds the records byte for byte with
every digest intact, and whose index points at the right records.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

import pytest
import yaml
from archive_fixture import NEWS_ARTICLES, Archive
from support.cli import run_attest
from support.warcs import read_records

from archive.warcread import verify_warc

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def case_file(retrieval: Archive, tmp_path_factory: pytest.TempPathFactory) -> Path:
    post = retrieval.web.social.posts("alice")[0]
    post_rec = retrieval.responses(retrieval.web.url("social", post.permalink_path))[0]
    article = retrieval.web.url("news", f"/article/{NEWS_ARTICLES[0]}.html")
    day = retrieval.responses(article)[0].headers["WARC-Date"][:10]
    path = tmp_path_factory.mktemp("cases") / "test-case.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "id": "test-case",
                "title": "A test case",
                "claims": [
                    {"id": "C1", "text": "The article reports it.", "source": "news",
                     "evidence": [{"url": article, "from": day, "to": day,
                                   "selector": {"quote": retrieval.web.news.article_token(NEWS_ARTICLES[0])}}]},
                    {"id": "C2", "text": "Alice posted it.", "source": "social",
                     "evidence": [{"capture": post_rec.id}]},
                    {"id": "C3", "text": "It was denied.", "source": "a statement",
                     "kind": "counter-statement",
                     "evidence": [{"url": retrieval.web.url("news", "/never.html")}]},
                ],
            }
        )
    )  # fmt: skip
    return path


def test_claims_show_captures_and_gaps(retrieval: Archive, case_file: Path) -> None:
    proc = run_attest(["claims", str(case_file), "--json"], retrieval.env)
    assert proc.returncode == 0, proc.stderr
    claims = {c["id"]: c for c in json.loads(proc.stdout)["claims"]}
    assert len(claims["C1"]["captures"]) == 2
    assert all(c["quote_found"] for c in claims["C1"]["captures"])
    assert [c["record_type"] for c in claims["C2"]["captures"]] == ["response"]
    assert claims["C3"]["gap"]


def test_export_writes_a_valid_wacz_with_intact_records(
    retrieval: Archive, case_file: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "evidence.wacz"
    proc = run_attest(["export", str(case_file), "-o", str(bundle)], retrieval.env)
    assert proc.returncode == 0, proc.stderr
    assert "GAP: claim C3" in proc.stdout
    wacz = shutil.which("wacz", path=str(Path(__file__).resolve().parents[2] / ".venv" / "bin"))
    assert wacz, "the wacz validator (PyPI wacz, a dev dependency) is missing"
    check = subprocess.run(
        [wacz, "validate", "-f", str(bundle)], capture_output=True, text=True, check=False,
        cwd=tmp_path,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Validation succeeded" in check.stdout

    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert all(
            name.count("/") == 1 for name in names - {"datapackage.json", "datapackage-digest.json"}
        )
        assert archive.getinfo("archive/data.warc.gz").compress_type == zipfile.ZIP_STORED
        archive.extractall(tmp_path / "x")
    root = tmp_path / "x"
    warc = root / "archive" / "data.warc.gz"
    assert verify_warc(warc).ok
    records = {r.id: r for r in read_records([warc])}
    manifest = json.loads((root / "evidence" / "manifest.json").read_text())
    by_claim = {c["id"]: c for c in manifest["claims"]}
    assert by_claim["C3"]["gap"]
    for claim in ("C1", "C2"):
        for capture in by_claim[claim]["captures"]:
            stored = records[capture["record_id"]]
            assert stored.headers["WARC-Block-Digest"] == capture["block_sha256"]
            assert stored.headers["WARC-Payload-Digest"] == capture["payload_sha256"]
            for linked in capture["linked_records"]:
                assert linked["record_id"] in records, f"{linked['type']} of {capture['url']}"
    # The browser capture brings its screenshot and every subresource the page used.
    post_capture = by_claim["C2"]["captures"][0]
    assert any(r.target and r.target.startswith("urn:view:") for r in records.values())
    assert post_capture["software"].get("browser")
    assert sum(1 for r in records.values() if r.type == "warcinfo") >= 2
    # Every index line points at the record it names.
    data = warc.read_bytes()
    for line in (root / "indexes" / "index.cdxj").read_text().splitlines():
        entry = json.loads(line.split(" ", 2)[2])
        offset, length = int(entry["offset"]), int(entry["length"])
        assert entry["filename"] == "data.warc.gz"
        member = records_at(data, offset, length)
        assert entry["url"].encode() in member
    custody = [
        json.loads(x) for x in (root / "evidence" / "custody.jsonl").read_text().splitlines()
    ]
    assert {e["action"] for e in custody} >= {"capture", "index"}
    log = retrieval.rows("SELECT action, object FROM custody_log WHERE action = 'export'")
    assert log
    assert log[-1][1].startswith("test-case:C1,C2,C3")


def records_at(data: bytes, offset: int, length: int) -> bytes:
    import gzip

    return gzip.decompress(data[offset : offset + length])


def test_export_refuses_to_overwrite_and_names_bad_claims(
    retrieval: Archive, case_file: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "b.wacz"
    bundle.write_bytes(b"keep me")
    proc = run_attest(["export", str(case_file), "-o", str(bundle)], retrieval.env)
    assert proc.returncode == 2
    assert "never overwritten" in proc.stderr
    assert bundle.read_bytes() == b"keep me"
    proc = run_attest(
        ["export", str(case_file), "--claim", "C9", "-o", str(tmp_path / "c.wacz")], retrieval.env
    )
    assert proc.returncode == 2
    assert "claim 'C9'" in proc.stderr
    proc = run_attest(
        ["export", str(case_file), "--claim", "C3", "-o", str(tmp_path / "d.wacz")], retrieval.env
    )
    assert proc.returncode == 2
    assert "no capture" in proc.stderr
    assert not (tmp_path / "c.wacz").exists()
    assert not (tmp_path / "d.wacz").exists()


# --- known-bad bundles: each rejected with its exact verdict --------------------------------


@pytest.fixture(scope="module")
def good_bundle(
    retrieval: Archive, case_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    bundle = tmp_path_factory.mktemp("good") / "good.wacz"
    proc = run_attest(["export", str(case_file), "--claim", "C1", "-o", str(bundle)], retrieval.env)
    assert proc.returncode == 0, proc.stderr
    return bundle


def rewrite(bundle: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of ``bundle`` with members replaced (bytes) or removed (None)."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in change:
                data = change[info.filename]
                if data is None:
                    continue
            else:
                data = src.read(info.filename)
            dst.writestr(info, data)
    return target


def verdict(bundle: Path, env: dict[str, str]) -> tuple[int, list[dict[str, str]]]:
    proc = run_attest(["verify", str(bundle), "--json"], env)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)[0]["problems"]


def test_a_good_bundle_verifies(good_bundle: Path, retrieval: Archive) -> None:
    code, problems = verdict(good_bundle, retrieval.env)
    assert (code, problems) == (0, [])


def test_a_flipped_payload_byte_names_the_record(
    good_bundle: Path, retrieval: Archive, tmp_path: Path
) -> None:
    import gzip as gz

    with zipfile.ZipFile(good_bundle) as archive:
        data = archive.read("archive/data.warc.gz")
    manifest = json.loads(zipfile.ZipFile(good_bundle).read("evidence/manifest.json"))
    target_id = manifest["claims"][0]["captures"][0]["record_id"]
    out = bytearray()
    pos = 0
    # Rewrite the page's own gzip member with one payload byte changed (still valid gzip).
    while pos < len(data):
        inflater = zlib.decompressobj(31)
        record = inflater.decompress(data[pos:])
        end = len(data) - len(inflater.unused_data)
        if (
            target_id.encode() in record.split(b"\r\n\r\n", 1)[0]
            and b"WARC-Type: response" in record
        ):
            cut = len(record) - 5  # the payload's last byte, before the closing CRLF CRLF
            record = record[:cut] + bytes([record[cut] ^ 0x20]) + record[cut + 1 :]
            out += gz.compress(record)
        else:
            out += data[pos:end]
        pos = end
    code, problems = verdict(
        rewrite(good_bundle, tmp_path / "flipped.wacz", {"archive/data.warc.gz": bytes(out)}),
        retrieval.env,
    )
    assert code == 1
    record_problems = [p for p in problems if p["check"] == "record"]
    assert {p["record_id"] for p in record_problems} == {target_id}
    details = " ".join(p["detail"] for p in record_problems)
    assert "block-digest" in details
    assert "payload-digest" in details
    assert any(p["check"] == "package" and p["file"] == "archive/data.warc.gz" for p in problems)


def test_an_edited_datapackage_is_caught(
    good_bundle: Path, retrieval: Archive, tmp_path: Path
) -> None:
    package = json.loads(zipfile.ZipFile(good_bundle).read("datapackage.json"))
    package["title"] = "Something else"
    edited = rewrite(
        good_bundle, tmp_path / "edited.wacz", {"datapackage.json": json.dumps(package).encode()}
    )
    code, problems = verdict(edited, retrieval.env)
    assert code == 1
    assert [(p["check"], p["file"]) for p in problems] == [("package", "datapackage-digest.json")]


def test_a_removed_file_is_caught(good_bundle: Path, retrieval: Archive, tmp_path: Path) -> None:
    removed = rewrite(good_bundle, tmp_path / "removed.wacz", {"pages/pages.jsonl": None})
    code, problems = verdict(removed, retrieval.env)
    assert code == 1
    assert [(p["check"], p["file"], p["detail"]) for p in problems] == [
        ("package", "pages/pages.jsonl", "listed in datapackage.json but missing")
    ]


def test_a_broken_custody_chain_is_caught(
    good_bundle: Path, retrieval: Archive, tmp_path: Path
) -> None:
    lines = zipfile.ZipFile(good_bundle).read("evidence/custody.jsonl").decode().splitlines()
    assert len(lines) >= 2
    entry = json.loads(lines[1])
    entry["actor"] = "someone else"
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    broken = rewrite(
        good_bundle,
        tmp_path / "custody.wacz",
        {"evidence/custody.jsonl": ("\n".join(lines) + "\n").encode()},
    )
    code, problems = verdict(broken, retrieval.env)
    assert code == 1
    custody = [p for p in problems if p["check"] == "custody"]
    assert [p["file"] for p in custody] == ["evidence/custody.jsonl line 2"]
    assert "hash does not match" in custody[0]["detail"]
