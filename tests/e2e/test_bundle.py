"""Claims and evidence bundles over a real captured archive (issue 5, first part).

A case file (``case_file`` of ``archive_fixture``) links claims to its archive: a news article
by URL and date (two captures), a browser-captured post by capture id, a counter-statement that
was never captured (a gap). ``attest claims`` shows them; ``attest export`` writes a WACZ that the
reference validator (PyPI ``wacz``) accepts, whose WARC holds the records byte for byte with
every digest intact, and whose index points at the right records.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from archive_fixture import Archive
from cryptography.hazmat.primitives import serialization
from signing_fixture import Signing
from support.cli import run_attest
from support.warcs import read_records

from archive.index.cdxj import read_warc_index
from archive.warc.read import verify_warc

pytestmark = pytest.mark.e2e


def test_claims_show_captures_and_gaps(retrieval: Archive, case_file: Path) -> None:
    proc = run_attest(["claims", str(case_file), "--json"], retrieval.env)
    assert proc.returncode == 0, proc.stderr
    claims = {c["id"]: c for c in json.loads(proc.stdout)["claims"]}
    assert len(claims["C1"]["captures"]) == 2
    assert all(c["quote_found"] for c in claims["C1"]["captures"])
    assert [c["record_type"] for c in claims["C2"]["captures"]] == ["response"]
    assert claims["C3"]["gap"]
    assert claims["C3"]["gaps"] == [f"exact {retrieval.web.url('news', '/never.html')}: no capture"]


def test_export_writes_a_valid_wacz_with_intact_records(
    retrieval: Archive, case_file: Path, signing: Signing, tmp_path: Path
) -> None:
    bundle = tmp_path / "evidence.wacz"
    proc = run_attest(["export", str(case_file), "-o", str(bundle)], signing.env)
    assert proc.returncode == 0, proc.stderr
    assert "GAP: claim C3: exact " in proc.stdout
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
    # The CDXJ is made from the index rows while the records are copied: byte for byte what
    # reading the bundle's WARC back gives.
    cdxj = (root / "indexes" / "index.cdxj").read_bytes()
    assert cdxj == read_warc_index(warc, "data.warc.gz", texts=False).cdxj()
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
    # How each page was made comes from its own page record, never from the run's warcinfo.
    assert post_capture["method"]["method"] in ("browser", None)
    if post_capture["method"]["method"] is None:
        assert post_capture["method"]["note"] == "not recorded for this page"
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
    retrieval: Archive, case_file: Path, signing: Signing, tmp_path: Path
) -> None:
    bundle = tmp_path / "b.wacz"
    bundle.write_bytes(b"keep me")
    proc = run_attest(["export", str(case_file), "-o", str(bundle)], signing.env)
    assert proc.returncode == 2
    assert "never overwritten" in proc.stderr
    assert bundle.read_bytes() == b"keep me"
    proc = run_attest(
        ["export", str(case_file), "--claim", "C9", "-o", str(tmp_path / "c.wacz")], signing.env
    )
    assert proc.returncode == 2
    assert "claim 'C9'" in proc.stderr
    proc = run_attest(
        ["export", str(case_file), "--claim", "C3", "-o", str(tmp_path / "d.wacz")], signing.env
    )
    assert proc.returncode == 2
    assert "no capture" in proc.stderr
    assert not (tmp_path / "c.wacz").exists()
    assert not (tmp_path / "d.wacz").exists()


# --- known-bad bundles: each rejected with its exact verdict --------------------------------


@pytest.fixture(scope="module")
def good_bundle(
    signing: Signing, case_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    bundle = tmp_path_factory.mktemp("good") / "good.wacz"
    proc = run_attest(["export", str(case_file), "--claim", "C1", "-o", str(bundle)], signing.env)
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


def test_a_good_bundle_verifies(good_bundle: Path, signing: Signing) -> None:
    code, problems = verdict(good_bundle, signing.env)
    assert (code, problems) == (0, [])
    # Nothing trusted, nothing proven: the same bundle fails for a verifier with no anchors.
    proc = run_attest(["verify", str(good_bundle), "--json"], dict(signing.env, ATTEST_TRUST=""))
    assert proc.returncode == 1
    assert {p["check"] for p in json.loads(proc.stdout)[0]["problems"]} == {
        "signature",
        "timestamp",
    }


def test_verify_reads_the_warc_in_place_and_writes_nothing(
    good_bundle: Path, signing: Signing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from archive.evidence.verify import verify_bundle
    from archive.trust.signing import load_trust

    trust = load_trust([Path(signing.env["ATTEST_TRUST"])])
    # A WARC compressed inside the ZIP (attest never writes one) is checked from a temporary copy.
    deflated = tmp_path / "deflated.wacz"
    with zipfile.ZipFile(good_bundle) as src, zipfile.ZipFile(deflated, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            info.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(info, data)
    verdict = verify_bundle(deflated, trust)
    assert verdict.ok, verdict.failures
    # attest's own bundles store it uncompressed: read where it lies, no temporary file at all.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-directory"))
    in_place = verify_bundle(good_bundle, trust)
    assert in_place.ok, in_place.failures
    assert in_place.checked == verdict.checked
    assert in_place.checked["records"] > 0
    assert in_place.checked["index_lines"] > 0


def test_a_flipped_payload_byte_names_the_record(
    good_bundle: Path, signing: Signing, tmp_path: Path
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
        signing.env,
    )
    assert code == 1
    record_problems = [p for p in problems if p["check"] == "record"]
    assert {p["record_id"] for p in record_problems} == {target_id}
    details = " ".join(p["detail"] for p in record_problems)
    assert "block-digest" in details
    assert "payload-digest" in details
    assert any(p["check"] == "package" and p["file"] == "archive/data.warc.gz" for p in problems)


def test_an_edited_datapackage_is_caught(
    good_bundle: Path, signing: Signing, tmp_path: Path
) -> None:
    package = json.loads(zipfile.ZipFile(good_bundle).read("datapackage.json"))
    package["title"] = "Something else"
    edited = rewrite(
        good_bundle, tmp_path / "edited.wacz", {"datapackage.json": json.dumps(package).encode()}
    )
    code, problems = verdict(edited, signing.env)
    assert code == 1
    # The digest file, the signature and the timestamp all covered the original datapackage.
    assert [(p["check"], p["file"]) for p in problems] == [
        ("package", "datapackage-digest.json"),
        ("signature", "datapackage-digest.json"),
        ("timestamp", "datapackage-digest.json"),
    ]
    assert "datapackage.json hashes to" in problems[1]["detail"]
    assert "stamps digest" in problems[2]["detail"]


def test_a_removed_file_is_caught(good_bundle: Path, signing: Signing, tmp_path: Path) -> None:
    removed = rewrite(good_bundle, tmp_path / "removed.wacz", {"pages/pages.jsonl": None})
    code, problems = verdict(removed, signing.env)
    assert code == 1
    assert [(p["check"], p["file"], p["detail"]) for p in problems] == [
        ("package", "pages/pages.jsonl", "listed in datapackage.json but missing")
    ]


def test_a_broken_custody_chain_is_caught(
    good_bundle: Path, signing: Signing, tmp_path: Path
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
    code, problems = verdict(broken, signing.env)
    assert code == 1
    custody = [p for p in problems if p["check"] == "custody"]
    assert [p["file"] for p in custody] == ["evidence/custody.jsonl line 2"]
    assert "hash does not match" in custody[0]["detail"]


# --- signature and timestamps ---------------------------------------------------------------


def digest_doc(bundle: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(zipfile.ZipFile(bundle).read("datapackage-digest.json"))
    return doc


def test_the_signature_and_timestamp_hold_and_name_their_signer(
    good_bundle: Path, signing: Signing
) -> None:
    doc = digest_doc(good_bundle)
    package = zipfile.ZipFile(good_bundle).read("datapackage.json")
    signed = doc["signedData"]
    assert signed["hash"] == doc["hash"] == f"sha256:{hashlib.sha256(package).hexdigest()}"
    # The WACZ signing spec: `created` equals the datapackage's own.
    assert signed["created"] == json.loads(package)["created"]
    assert [t["tsa"] for t in doc["timestamps"]] == [signing.tsa.url]
    proc = run_attest(["verify", str(good_bundle)], signing.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    public = serialization.load_pem_public_key(signing.pki.org_public.read_bytes())
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert f"signed by key {hashlib.sha256(der).hexdigest()} (trusted)" in proc.stdout
    assert f"timestamp 1 by {signing.tsa.url}: " in proc.stdout


def test_openssl_verifies_our_timestamp_token(
    good_bundle: Path, signing: Signing, tmp_path: Path
) -> None:
    """A third-party check: OpenSSL's own RFC 3161 verifier, given only the trusted root."""
    doc = digest_doc(good_bundle)
    token = tmp_path / "token.tsr"
    token.write_bytes(base64.b64decode(doc["timestamps"][0]["token"]))
    digest = doc["hash"].removeprefix("sha256:")
    ok = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", digest, "-in", str(token),
         "-CAfile", str(signing.pki.root)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "Verification: OK" in ok.stdout
    other = hashlib.sha256(b"another datapackage").hexdigest()
    bad = subprocess.run(
        ["openssl", "ts", "-verify", "-digest", other, "-in", str(token),
         "-CAfile", str(signing.pki.root)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode != 0


def test_a_bundle_signed_by_an_untrusted_key_fails(
    signing: Signing, case_file: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "stranger.wacz"
    env = dict(signing.env, ATTEST_SIGNING_KEY=str(signing.pki.stranger_key))
    proc = run_attest(["export", str(case_file), "--claim", "C1", "-o", str(bundle)], env)
    assert proc.returncode == 0, proc.stderr
    code, problems = verdict(bundle, signing.env)
    assert code == 1
    assert [(p["check"], p["file"]) for p in problems] == [("signature", "datapackage-digest.json")]
    assert "signed by an untrusted key" in problems[0]["detail"]
    assert "the signature is valid" in problems[0]["detail"]
    # The same bundle verifies for someone who does trust that key.
    stranger_public = tmp_path / "stranger.pub.pem"
    key = serialization.load_pem_private_key(signing.pki.stranger_key.read_bytes(), None)
    stranger_public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    proc = run_attest(
        ["verify", str(bundle), "--trust", str(stranger_public), "--trust", str(signing.pki.root)],
        signing.env,
    )
    assert proc.returncode == 0, proc.stdout


def test_a_timestamp_over_another_digest_fails(
    good_bundle: Path, signing: Signing, tmp_path: Path
) -> None:
    doc = digest_doc(good_bundle)
    from archive.trust.timestamps import Authority, request

    doc["timestamps"][0] = request(Authority(signing.tsa.url), b"some other datapackage")
    swapped = rewrite(
        good_bundle,
        tmp_path / "swapped.wacz",
        {"datapackage-digest.json": json.dumps(doc, indent=1).encode()},
    )
    code, problems = verdict(swapped, signing.env)
    assert code == 1
    assert [(p["check"], p["file"]) for p in problems] == [("timestamp", "datapackage-digest.json")]
    other = hashlib.sha256(b"some other datapackage").hexdigest()
    assert f"token 1 ({signing.tsa.url}): stamps digest {other}" in problems[0]["detail"]


def test_unsigned_bundles_fail_verification(
    signing: Signing, case_file: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bare.wacz"
    env = dict(signing.env, ATTEST_TSA_URLS="")
    proc = run_attest(
        ["export", str(case_file), "--claim", "C1", "--unsigned", "-o", str(bundle)], env
    )
    assert proc.returncode == 0, proc.stderr
    assert "no timestamp authority configured" in proc.stderr
    code, problems = verdict(bundle, signing.env)
    assert code == 1
    assert [(p["check"], p["detail"]) for p in problems] == [
        ("signature", "the bundle is not signed (no signedData in datapackage-digest.json)"),
    ]
    # Not timestamped either: said, but the failure is the missing signature (exit 1, not 3).
    [result] = json.loads(run_attest(["verify", str(bundle), "--json"], signing.env).stdout)
    assert result["verdict"] == "failed"
    assert any(n.startswith("not timestamped") for n in result["notes"])


def test_export_without_a_key_says_how_to_make_one(
    signing: Signing, case_file: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in signing.env.items() if k != "ATTEST_SIGNING_KEY"}
    env["ATTEST_HOME"] = str(tmp_path / "home")
    proc = run_attest(
        ["export", str(case_file), "--claim", "C1", "-o", str(tmp_path / "x.wacz")], env
    )
    assert proc.returncode == 2
    assert "attest keygen" in proc.stderr
    assert not (tmp_path / "x.wacz").exists()
    made = run_attest(["keygen"], env)
    assert made.returncode == 0, made.stderr
    key = tmp_path / "home" / "keys" / "signing.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "home" / "keys" / "signing.pub.pem").is_file()
    again = run_attest(["keygen"], env)
    assert again.returncode == 2
    assert "never overwritten" in again.stderr


def test_a_domain_certificate_signature_with_its_time_signature(
    signing: Signing, case_file: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "domain.wacz"
    env = dict(
        signing.env,
        ATTEST_SIGNING_KEY=str(signing.pki.domain_key),
        ATTEST_SIGNING_CERT=str(signing.pki.domain_chain),
    )
    proc = run_attest(["export", str(case_file), "--claim", "C1", "-o", str(bundle)], env)
    assert proc.returncode == 0, proc.stderr
    signed = digest_doc(bundle)["signedData"]
    assert signed["domain"] == signing.pki.domain
    assert {"domainCert", "timeSignature", "timestampCert"} <= set(signed)
    assert "publicKey" not in signed
    proc = run_attest(["verify", str(bundle)], signing.env)
    assert proc.returncode == 0, proc.stdout
    assert f"signed by domain {signing.pki.domain} (trusted)" in proc.stdout
    # Without the root among the trust anchors, neither the domain nor the TSA is trusted.
    proc = run_attest(
        ["verify", str(bundle), "--trust", str(signing.pki.org_public), "--json"], signing.env
    )
    problems = json.loads(proc.stdout)[0]["problems"]
    assert proc.returncode == 1
    assert {p["check"] for p in problems} == {"signature", "timestamp"}
    assert any("no trusted root certificate is configured" in p["detail"] for p in problems)


# --- the report's "how to verify" steps, followed literally ---------------------------------


class _ScriptText(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.script = ""
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = self._inside or dict(attrs).get("id") == "verify-script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.script += data


def follow_the_report(
    bundle: Path, signing: Signing, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Do what the report says, as a stranger would: extract the bundle, and run the script the
    report prints (the bundle's evidence/verify.sh, byte for byte) in it, with the organisation's
    public key and the TSA root obtained separately and only the shell, sha256sum, openssl and
    POSIX's cat, find, mkdir and rm on PATH."""
    with zipfile.ZipFile(bundle) as archive:
        html = archive.read("evidence/report.html").decode("utf-8")
        bundled = archive.read("evidence/verify.sh").decode("utf-8")
        archive.extractall(workdir / "bundle")
    parser = _ScriptText()
    parser.feed(html)
    assert parser.script == bundled
    assert "openssl ts -verify" in parser.script
    tools = workdir / "bin"
    tools.mkdir(parents=True)
    for tool in ("sh", "sha256sum", "openssl", "cat", "find", "mkdir", "rm"):
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (tools / tool).symlink_to(found)
    env = {"PATH": str(tools), "PUBKEY": str(signing.pki.org_public),
           "TSA_ROOTS": str(signing.pki.root), "TMPDIR": str(workdir)}  # fmt: skip
    return subprocess.run(
        [str(tools / "sh"), "evidence/verify.sh"], cwd=workdir / "bundle", env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_reports_steps_pass_a_good_bundle_with_common_tools_only(
    good_bundle: Path, signing: Signing, tmp_path: Path
) -> None:
    done = follow_the_report(good_bundle, signing, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALL CHECKS PASSED" in done.stdout
    assert "FAILED" not in done.stdout
    with zipfile.ZipFile(good_bundle) as archive:
        pdf = archive.read("evidence/report.pdf")
        html = archive.read("evidence/report.html").decode()
    assert pdf.startswith(b"%PDF-")
    manifest = json.loads(zipfile.ZipFile(good_bundle).read("evidence/manifest.json"))
    for capture in manifest["claims"][0]["captures"]:
        assert capture["url"] in html
        assert capture["payload_sha256"] in html


def test_the_reports_steps_fail_a_tampered_bundle(
    good_bundle: Path, signing: Signing, tmp_path: Path
) -> None:
    with zipfile.ZipFile(good_bundle) as archive:
        pages = archive.read("pages/pages.jsonl")
    tampered = rewrite(
        good_bundle, tmp_path / "tampered.wacz", {"pages/pages.jsonl": pages.replace(b"C1", b"C9")}
    )
    done = follow_the_report(tampered, signing, tmp_path / "check")
    assert done.returncode == 1, done.stdout
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1, done.stdout
    assert "pages/pages.jsonl" in failed[0]


def test_an_https_capture_carries_its_tls_chain_fingerprints(
    retrieval: Archive, signing: Signing, tmp_path: Path
) -> None:
    https = next(
        r
        for r in retrieval.records
        if r.type == "response" and (r.target or "").startswith("https://")
    )
    case = tmp_path / "tls-case.yaml"
    claim = {"id": "T1", "text": "Served over HTTPS.", "source": "test",
             "evidence": [{"capture": https.id}]}  # fmt: skip
    case.write_text(json.dumps({"id": "tls-case", "title": "TLS", "claims": [claim]}))
    bundle = tmp_path / "tls.wacz"
    proc = run_attest(["export", str(case), "-o", str(bundle)], signing.env)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("evidence/manifest.json"))
        html = archive.read("evidence/report.html").decode()
    tls = manifest["claims"][0]["captures"][0]["tls"]
    chains = [
        r for r in retrieval.records
        if r.type == "metadata" and "attest-tls-chain" in r.headers.get("Content-Type", "")
    ]  # fmt: skip
    seen = [c["sha256"] for r in chains for c in r.json()["chain"]]
    assert tls["chain_sha256"]
    assert set(tls["chain_sha256"]) <= set(seen)
    assert all(len(f) == 64 for f in tls["chain_sha256"])
    for fingerprint in tls["chain_sha256"]:
        assert fingerprint in html


def test_a_stylesheets_own_subresources_travel_with_the_page(
    good_bundle: Path, tmp_path: Path
) -> None:
    """The article's stylesheet pulls a web font and a background image: a bundle without them
    would replay the page with holes (ReplayWeb.page showed 404s for both)."""
    with zipfile.ZipFile(good_bundle) as archive:
        archive.extract("archive/data.warc.gz", tmp_path)
    targets = {
        r.target
        for r in read_records([tmp_path / "archive" / "data.warc.gz"])
        if r.type in ("response", "revisit")
    }
    assert any(t and t.endswith(".css") for t in targets), targets
    assert any(t and t.endswith("/static/fixture.woff2") for t in targets), targets
    assert any(t and t.endswith("/static/bg.png") for t in targets), targets
