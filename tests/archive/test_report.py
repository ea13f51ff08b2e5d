"""The bundle's human report: self-contained HTML, its PDF, and the verification script.

The script is run for real: ``sh`` with a PATH holding only ``unzip``, ``sha256sum`` and
``openssl``, on small bundles built here in the export's format, intact and tampered with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import time
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from archive.errors import ConfigError, ReportError
from archive.report import DETAILED_CAPTURES, find_chromium, print_pdf, render_report, verify_script
from archive.signing import Signer, sign

HOSTILE = (
    'He said <script>alert("x")</script> & left </blockquote><img src="https://evil.test/x.png">'
)
CREATED = "2026-05-14T09:30:00.000000Z"
FILES = [
    "archive/data.warc.gz",
    "indexes/index.cdxj",
    "pages/pages.jsonl",
    "evidence/manifest.json",
    "evidence/custody.jsonl",
    "evidence/report.html",
    "evidence/report.pdf",
]
VIEW_ID = "<urn:uuid:3f1d2c4b-0000-4000-8000-00000000000a>"


def _png(width: int = 4, height: int = 3) -> bytes:
    """A small valid PNG (RGB, one colour)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xc0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))  # fmt: skip


PNG = _png()


def _manifest() -> dict[str, Any]:
    page = "https://news.example/2026/05/statement"
    return {
        "case": "nc-referendum",
        "title": "New Caledonia referendum statements",
        "created": CREATED,
        "claims": [
            {
                "id": "C1",
                "kind": "claim",
                "text": HOSTILE,
                "source": "Interview, 14 May 2026",
                "notes": "Second line <b>not bold</b>",
                "gap": False,
                "not_found": [],
                "captures": [
                    {
                        "url": page,
                        "captured": "2026-05-14T08:00:01.123456Z",
                        "record_id": "<urn:uuid:3f1d2c4b-0000-4000-8000-000000000001>",
                        "record_type": "response",
                        "status": 200,
                        "mime": "text/html",
                        "block_sha256": "sha256:" + "a" * 64,
                        "payload_sha256": "sha256:" + "b" * 64,
                        "server_ip": "203.0.113.7",
                        "run_id": "run-20260514-0800",
                        "source": "news-example",
                        "user_agent": "attest/0.1 (+https://attest.example/bot)",
                        "software": {
                            "software": "attest 0.1.0",
                            "recorder": "warcprox 2.13.1",
                            "browser": "Chromium 156.0.8078.108",
                            "browser-viewport": "1280x800",
                        },
                        "post": {"platform": "mastodon", "account": "@official", "post_id": "42"},
                        "role": "original",
                        "linked_records": [
                            {
                                "record_id": "<urn:uuid:3f1d2c4b-0000-4000-8000-000000000002>",
                                "type": "request",
                                "url": page,
                                "block_sha256": "sha256:" + "c" * 64,
                                "role": "original",
                            },
                            {
                                "record_id": VIEW_ID,
                                "type": "resource",
                                "url": f"urn:view:{page}",
                                "block_sha256": f"sha256:{hashlib.sha256(PNG).hexdigest()}",
                                "role": "derivative",
                            },
                            {
                                "record_id": "<urn:uuid:3f1d2c4b-0000-4000-8000-00000000000b>",
                                "type": "resource",
                                "url": f"urn:text:{page}",
                                "block_sha256": "sha256:" + "d" * 64,
                                "role": "derivative",
                            },
                        ],
                        "found_by": f"url {page}",
                        "quote_shown": True,
                    }
                ],
            },
            {
                "id": "C2",
                "kind": "counter-statement",
                "text": "The ministry denied it.",
                "source": "Press release",
                "notes": None,
                "gap": True,
                "not_found": ["url https://gov.example/press/7 between 2026-05-01 and 2026-05-31"],
                "captures": [],
            },
        ],
        "records": [],
    }


class _Page(HTMLParser):
    """Every attribute that makes a browser fetch, and the verification script's text."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.script = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for name in ("src", "srcset", "data", "poster", "background", "action"):
            if values.get(name):
                self.fetches.append(values[name] or "")
        if tag == "link" and values.get("href"):
            self.fetches.append(values["href"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        self._in_script = values.get("id") == "verify-script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _signing(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"mode": "key", "public_key_sha256": hashlib.sha256(der).hexdigest()}


# --- the HTML ----------------------------------------------------------------------------------


def test_report_is_self_contained_and_escapes_hostile_text() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(_manifest(), files=FILES, screenshots={VIEW_ID: PNG},
                         signing=_signing(key), tsas=["https://tsa.example/tsr"])  # fmt: skip
    page = _parse(html)
    assert page.fetches, "the screenshot should be an <img>"
    assert all(src.startswith("data:image/png;base64,") for src in page.fetches), page.fetches
    assert all(href.startswith("#") for href in page.links), page.links
    assert "script" not in page.tags
    assert "link" not in page.tags
    assert "Content-Security-Policy" in html
    assert "default-src 'none'" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    # hostile text is shown, escaped, never markup
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html
    assert "evil.test" in html
    assert 'src="https://evil.test' not in html
    # the screenshot is the PNG itself, and its hash is the record's
    (src,) = page.fetches
    assert base64.b64decode(src.split(",", 1)[1]) == PNG
    assert f"sha256:{hashlib.sha256(PNG).hexdigest()}" in html
    assert "differs from the record" not in html
    for shown in ("https://news.example/2026/05/statement", "2026-05-14 08:00:01.123456 UTC",
                  "203.0.113.7", "sha256:" + "a" * 64, "sha256:" + "b" * 64, "run-20260514-0800",
                  "warcprox 2.13.1", "Chromium 156.0.8078.108", "urn:text:", "Interview, 14 May 2026",
                  "Gap: no capture", "https://gov.example/press/7", "https://tsa.example/tsr",
                  _signing(key)["public_key_sha256"]):  # fmt: skip
        assert shown in html, shown
    assert page.script.startswith("#!/bin/sh\n")
    assert page.script == verify_script(FILES, signing=_signing(key),
                                        tsas=["https://tsa.example/tsr"], case="nc-referendum",
                                        signed_at=CREATED)  # fmt: skip


def test_a_claim_with_many_captures_lists_the_rest_in_brief() -> None:
    manifest = _manifest()
    claim = next(c for c in manifest["claims"] if c["captures"])
    first = claim["captures"][0]
    claim["captures"] = [
        {**first, "url": f"https://social.example/post/{n}", "record_id": f"<urn:uuid:{n:08d}>",
         "payload_sha256": f"sha256:{n:064x}"}
        for n in range(DETAILED_CAPTURES + 5)
    ]  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(manifest, files=FILES, screenshots={VIEW_ID: PNG},
                         signing=_signing(key), tsas=[])  # fmt: skip
    assert f"{DETAILED_CAPTURES + 5} captures" in html
    assert html.count('<div class="capture">') == DETAILED_CAPTURES
    assert f"Captures {DETAILED_CAPTURES + 1} to {DETAILED_CAPTURES + 5}, in brief" in html
    for n in range(DETAILED_CAPTURES + 5):  # every capture is named, in full or in brief
        assert f"https://social.example/post/{n}<" in html
        assert f"sha256:{n:064x}" in html


def test_a_screenshot_that_is_not_the_records_bytes_is_flagged() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(_manifest(), files=FILES, screenshots={VIEW_ID: _png(5, 5)},
                         signing=_signing(key), tsas=[])  # fmt: skip
    assert "differs from the record" in html
    assert "TSA_ROOTS" not in _parse(html).script


def test_file_names_the_script_cannot_quote_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ReportError, match="not a path"):
        verify_script(["evidence/a b.json"], signing=_signing(key), tsas=[])
    with pytest.raises(ReportError, match="public_key_sha256"):
        verify_script(FILES, signing={"mode": "key", "public_key_sha256": "xyz"}, tsas=[])


# --- bundles the script runs on -----------------------------------------------------------------


@dataclass
class Bundle:
    path: Path
    members: dict[str, bytes]
    key: ec.EllipticCurvePrivateKey
    script: str


def _datapackage(members: dict[str, bytes]) -> bytes:
    """datapackage.json as the export writes it: one resource per line."""
    lines = [
        json.dumps(
            {
                "path": name,
                "hash": f"sha256:{hashlib.sha256(data).hexdigest()}",
                "bytes": len(data),
                "name": Path(name).name,
            }
        )
        for name, data in members.items()
    ]
    return (
        '{\n "profile": "data-package",\n "resources": [\n  '
        + ",\n  ".join(lines)
        + f'\n ],\n "wacz_version": "1.1.1",\n "created": "{CREATED}"\n}}'
    ).encode()


def _digest_doc(package: bytes, signed: dict[str, Any], timestamps: list[dict[str, str]]) -> bytes:
    package_hash = f"sha256:{hashlib.sha256(package).hexdigest()}"
    doc: dict[str, Any] = {"path": "datapackage.json", "hash": package_hash, "signedData": signed}
    if timestamps:
        doc["timestamps"] = timestamps
    return json.dumps(doc, indent=1).encode()


def _sign_key_mode(key: ec.EllipticCurvePrivateKey, package: bytes) -> dict[str, Any]:
    package_hash = f"sha256:{hashlib.sha256(package).hexdigest()}"
    return sign(Signer(key), package_hash, CREATED, "attest 0.1.0")


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            compress = zipfile.ZIP_STORED if name.startswith("archive/") else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=compress)
    return path


def _contents(html: bytes) -> dict[str, bytes]:
    return {
        "archive/data.warc.gz": gzip_member(b"WARC/1.1\r\nWARC-Type: warcinfo\r\n\r\n"),
        "indexes/index.cdxj": b'com,example)/ 20260514080001 {"url": "https://example.com/"}\n',
        "pages/pages.jsonl": b'{"format": "json-pages-1.0", "id": "pages"}\n',
        "evidence/manifest.json": json.dumps(_manifest(), indent=1).encode(),
        "evidence/custody.jsonl": b"",
        "evidence/report.html": html,
        "evidence/report.pdf": b"%PDF-1.7\n% not a real PDF, the script only hashes it\n",
    }


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


def _bundle(tmp_path: Path, *, tsas: list[str] | None = None,
            tokens: list[dict[str, str]] | None = None) -> Bundle:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(_manifest(), files=FILES, screenshots={VIEW_ID: PNG},
                         signing=_signing(key), tsas=tsas or [])  # fmt: skip
    members = _contents(html.encode())
    package = _datapackage(members)
    members["datapackage.json"] = package
    members["datapackage-digest.json"] = _digest_doc(
        package, _sign_key_mode(key, package), tokens or []
    )
    path = _write_zip(tmp_path / "bundle.wacz", members)
    return Bundle(path, members, key, _parse(html).script)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory with only the tools the script may use."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("sh", "unzip", "sha256sum", "openssl"):
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (directory / tool).symlink_to(found)
    return directory


def _run_script(script: str, workdir: Path, bin_dir: Path, inputs: dict[str, Path],
                **settings: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Copy the inputs into an empty directory, adjust the script's settings, run it."""
    workdir.mkdir()
    for name, source in inputs.items():
        shutil.copyfile(source, workdir / name)
    for variable, value in settings.items():
        script, count = re.subn(rf"^{variable}=\S+", f"{variable}={value}", script, flags=re.M)
        assert count == 1, variable
    (workdir / "verify.sh").write_text(script)
    return subprocess.run([str(bin_dir / "sh"), "verify.sh"], cwd=workdir, env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _public_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return path


def _check(bundle: Bundle, tmp_path: Path, bin_dir: Path, name: str = "run",
           key: ec.EllipticCurvePrivateKey | None = None,
           bundle_path: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    public = _public_pem(key or bundle.key, tmp_path / f"{name}-key.pem")
    inputs = {"bundle.wacz": bundle_path or bundle.path, "organisation-public-key.pem": public}
    return _run_script(bundle.script, tmp_path / name, bin_dir, inputs)


def test_the_script_passes_an_intact_bundle_using_only_unzip_sha256sum_openssl(
    tmp_path: Path, bin_dir: Path
) -> None:
    bundle = _bundle(tmp_path)
    result = _check(bundle, tmp_path, bin_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("ALL CHECKS PASSED")
    assert "FAILED" not in result.stdout
    for name in FILES:
        digest = hashlib.sha256(bundle.members[name]).hexdigest()
        assert f"OK      {name} sha256:{digest}" in result.stdout
    assert "OK      signature: Verified OK" in result.stdout
    assert "Step 5" not in result.stdout  # no timestamps, no token step
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert written == ["bundle.wacz", "organisation-public-key.pem", "signature.der",
                       "signed-hash.txt", "verify.sh"]  # fmt: skip


def _tampered(bundle: Bundle, tmp_path: Path, change: dict[str, bytes | None]) -> Path:
    members = dict(bundle.members)
    for name, data in change.items():
        if data is None:
            members.pop(name)
        else:
            members[name] = data
    return _write_zip(tmp_path / "tampered.wacz", members)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_a_changed_byte_fails_the_file_check(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    warc = bundle.members["archive/data.warc.gz"]
    path = _tampered(bundle, tmp_path, {"archive/data.warc.gz": _flip(warc, len(warc) // 2)})
    result = _check(bundle, tmp_path, bin_dir, bundle_path=path)
    assert result.returncode == 1, result.stdout
    assert re.search(r"^FAILED  archive/data\.warc\.gz: its SHA-256 is [0-9a-f]{64}, not the one datapackage\.json lists$",
                     result.stdout, re.M), result.stdout  # fmt: skip
    assert "1 CHECK(S) FAILED" in result.stdout
    assert "OK      signature: Verified OK" in result.stdout


def test_a_rewritten_datapackage_fails_the_digest_and_the_signature(
    tmp_path: Path, bin_dir: Path
) -> None:
    """A forger changes the manifest, then datapackage.json and the digest to match it, and
    signs with their own key: only the organisation's key, from outside the bundle, catches it."""
    bundle = _bundle(tmp_path)
    members = dict(bundle.members)
    members["evidence/manifest.json"] = members["evidence/manifest.json"].replace(
        b"denied", b"confirmed"
    )
    del members["datapackage.json"], members["datapackage-digest.json"]
    package = _datapackage(members)
    step_one = _tampered(bundle, tmp_path, {**members, "datapackage.json": package})
    result = _check(bundle, tmp_path, bin_dir, "digest", bundle_path=step_one)
    assert result.returncode == 1
    assert "FAILED  datapackage.json: its SHA-256 is" in result.stdout
    assert "FAILED  evidence/manifest.json" not in result.stdout
    forger = ec.generate_private_key(ec.SECP256R1())
    resigned = {**members, "datapackage.json": package,
                "datapackage-digest.json": _digest_doc(package, _sign_key_mode(forger, package), [])}  # fmt: skip
    result = _check(
        bundle,
        tmp_path,
        bin_dir,
        "resigned",
        bundle_path=_write_zip(tmp_path / "forged.wacz", resigned),
    )
    assert result.returncode == 1
    assert "OK      datapackage.json sha256:" in result.stdout
    assert "FAILED  signature: Verification failure" in result.stdout
    assert "1 CHECK(S) FAILED" in result.stdout


def test_a_wrong_public_key_fails(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    result = _check(bundle, tmp_path, bin_dir, key=ec.generate_private_key(ec.SECP256R1()))
    assert result.returncode == 1
    assert "but this bundle names the key" in result.stdout
    assert "FAILED  signature: Verification failure" in result.stdout


def test_missing_and_unlisted_files_fail(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    path = _tampered(
        bundle, tmp_path, {"evidence/custody.jsonl": None, "evidence/extra.html": b"<p>hi"}
    )
    result = _check(bundle, tmp_path, bin_dir, bundle_path=path)
    assert result.returncode == 1
    assert "FAILED  evidence/custody.jsonl: missing from the bundle" in result.stdout
    assert (
        "FAILED  evidence/extra.html: in the bundle but not one of its listed files"
        in result.stdout
    )
    assert "2 CHECK(S) FAILED" in result.stdout


def test_missing_inputs_fail_clearly(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    result = _run_script(bundle.script, tmp_path / "run", bin_dir, {"bundle.wacz": bundle.path})
    assert result.returncode == 1
    assert "FAILED  cannot read organisation-public-key.pem" in result.stdout
    not_zip = tmp_path / "not.wacz"
    not_zip.write_bytes(b"nope")
    public = _public_pem(bundle.key, tmp_path / "key.pem")
    result = _run_script(bundle.script, tmp_path / "run2", bin_dir,
                         {"bundle.wacz": not_zip, "organisation-public-key.pem": public})  # fmt: skip
    assert result.returncode == 1
    assert "FAILED  datapackage.json: missing from bundle.wacz" in result.stdout


# --- timestamps and domain signatures (the test PKI and openssl's own TSA) ---------------------


def _token(tsa: Any, package: bytes, workdir: Path) -> str:
    query = workdir / "q.tsq"
    subprocess.run(["openssl", "ts", "-query", "-digest", hashlib.sha256(package).hexdigest(), "-sha256",
                    "-cert", "-out", str(query)], check=True, capture_output=True)  # fmt: skip
    return base64.b64encode(tsa.reply(query.read_bytes())).decode()


def test_the_script_checks_timestamp_tokens(tmp_path: Path, bin_dir: Path) -> None:
    from support.pki import make_pki
    from support.tsa import LocalTSA

    pki = make_pki(tmp_path / "pki")
    tsas = ["http://tsa-one.test/tsr", "http://tsa-two.test/tsr"]
    first = _bundle(tmp_path, tsas=tsas)
    package = first.members["datapackage.json"]
    (tmp_path / "tsa").mkdir()
    authority = LocalTSA(pki, tmp_path / "tsa")
    try:
        chain = pki.tsa_chain.read_text()
        tokens = [{"tsa": url, "token": _token(authority, package, tmp_path), "chain": chain,
                   "time": CREATED} for url in tsas]  # fmt: skip
    finally:
        authority.server.server_close()
    members = dict(first.members)
    members["datapackage-digest.json"] = _digest_doc(
        package, _sign_key_mode(first.key, package), tokens
    )
    path = _write_zip(tmp_path / "stamped.wacz", members)
    public = _public_pem(first.key, tmp_path / "org.pem")
    inputs = {"bundle.wacz": path, "organisation-public-key.pem": public, "tsa-roots.pem": pki.root}
    result = _run_script(first.script, tmp_path / "run", bin_dir, inputs)
    assert result.returncode == 0, result.stdout + result.stderr
    year = str(datetime.now(UTC).year)
    for i, url in enumerate(tsas, 1):
        line = re.search(
            rf"^OK      timestamp {i} \({re.escape(url)}\): (.*)$", result.stdout, re.M
        )
        assert line, result.stdout
        assert year in line.group(1), line.group(1)
        assert "test TSA" in line.group(1), line.group(1)
    assert (tmp_path / "run" / "tsa-2.tsr").read_bytes() == base64.b64decode(tokens[1]["token"])

    stranger = make_pki(tmp_path / "other", label="other")
    inputs["tsa-roots.pem"] = stranger.root
    result = _run_script(first.script, tmp_path / "untrusted", bin_dir, inputs)
    assert result.returncode == 1
    assert re.search(r"^FAILED  timestamp 1 \(http://tsa-one\.test/tsr\): .*self-signed certificate.* / Verification: FAILED$",
                     result.stdout, re.M), result.stdout  # fmt: skip
    assert "2 CHECK(S) FAILED" in result.stdout

    members["datapackage-digest.json"] = _digest_doc(
        package, _sign_key_mode(first.key, package), tokens[:1]
    )
    inputs.update(
        {"bundle.wacz": _write_zip(tmp_path / "one.wacz", members), "tsa-roots.pem": pki.root}
    )
    result = _run_script(first.script, tmp_path / "one-token", bin_dir, inputs)
    assert result.returncode == 1
    assert (
        "FAILED  timestamp 2 (http://tsa-two.test/tsr): datapackage-digest.json holds no token 2"
        in result.stdout
    )


def test_the_script_checks_a_domain_signature(tmp_path: Path, bin_dir: Path) -> None:
    from support.pki import make_pki

    pki = make_pki(tmp_path / "pki")
    domain_key = serialization.load_pem_private_key(pki.domain_key.read_bytes(), password=None)
    assert isinstance(domain_key, ec.EllipticCurvePrivateKey)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    signing = {"mode": "domain", "domain": pki.domain, "created": created,
               "public_key_sha256": _signing(domain_key)["public_key_sha256"]}  # fmt: skip
    html = render_report(_manifest(), files=FILES, screenshots={}, signing=signing, tsas=[])
    members = _contents(html.encode())
    package = _datapackage(members)
    package_hash = f"sha256:{hashlib.sha256(package).hexdigest()}"
    signed = {"hash": package_hash, "created": created, "software": "attest", "version": "0.1.0",
              "signature": base64.b64encode(domain_key.sign(package_hash.encode(), ec.ECDSA(hashes.SHA256()))).decode(),
              "domain": pki.domain, "domainCert": pki.domain_chain.read_text()}  # fmt: skip
    members.update({"datapackage.json": package,
                    "datapackage-digest.json": _digest_doc(package, signed, [])})  # fmt: skip
    path = _write_zip(tmp_path / "domain.wacz", members)
    script = _parse(html).script
    assert "PUBKEY" not in script
    result = _run_script(script, tmp_path / "run", bin_dir, {"bundle.wacz": path, "roots.pem": pki.root},
                         CERT_ROOTS="roots.pem")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK      certificate for {pki.domain}" in result.stdout
    assert "OK      signature: Verified OK" in result.stdout

    stranger = make_pki(tmp_path / "other", label="other")
    result = _run_script(script, tmp_path / "untrusted", bin_dir,
                         {"bundle.wacz": path, "roots.pem": stranger.root}, CERT_ROOTS="roots.pem")  # fmt: skip
    assert result.returncode == 1
    assert f"FAILED  certificate for {pki.domain}" in result.stdout


# --- the PDF ----------------------------------------------------------------------------------------


def test_print_pdf_with_chromium(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(_manifest(), files=FILES, screenshots={VIEW_ID: _png(800, 1200)},
                         signing=_signing(key), tsas=["https://tsa.example/tsr"])  # fmt: skip
    output = tmp_path / "report.pdf"
    print_pdf(html, output, chromium=os.environ.get("ATTEST_CHROMIUM") or None, timeout=120)
    data = output.read_bytes()
    assert data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 3, pages  # the summary, a page per claim, the verification steps
    assert b"/Subtype /Image" in data or b"/Subtype/Image" in data


def test_missing_chromium_is_a_config_error_naming_it(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-chromium")
    with pytest.raises(ConfigError, match=re.escape(repr(missing))):
        print_pdf("<p>x</p>", tmp_path / "out.pdf", chromium=missing)
    assert not (tmp_path / "out.pdf").exists()
    with pytest.raises(ConfigError, match="ATTEST_CHROMIUM"):
        find_chromium("no-such-chromium-on-path")


def _fake_chromium(tmp_path: Path, body: str) -> str:
    path = tmp_path / "fake-chromium"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_a_failing_chromium_is_a_report_error(tmp_path: Path) -> None:
    fake = _fake_chromium(tmp_path, "echo 'cannot open display' >&2; exit 3")
    with pytest.raises(ReportError, match=r"exit status 3.*cannot open display"):
        print_pdf("<p>x</p>", tmp_path / "out.pdf", chromium=fake)
    assert not (tmp_path / "out.pdf").exists()


def test_a_hanging_chromium_is_stopped_after_the_timeout(tmp_path: Path) -> None:
    fake = _fake_chromium(tmp_path, "sleep 60 & sleep 60")
    started = time.monotonic()
    with pytest.raises(ReportError, match="within 1 s"):
        print_pdf("<p>x</p>", tmp_path / "out.pdf", chromium=fake, timeout=1)
    assert time.monotonic() - started < 20
