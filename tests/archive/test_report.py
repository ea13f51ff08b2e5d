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
from archive.evidence.report import (
    DETAILED_CAPTURES,
    SCRIPT_WIDTH,
    find_chromium,
    print_pdf,
    render_report,
    verify_script,
)  # fmt: skip
from archive.trust.signing import Signer, sign

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
    "evidence/verify.sh",
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
                "gaps": [],
                "links": [{"link": f"exact {page}", "kind": "declared", "status": "found",
                           "why": None, "captures": ["<urn:uuid:3f1d2c4b-0000-4000-8000-000000000001>"],
                           "incomplete": [], "quote": "we will not accept"}],
                "withdrawn": [{"capture_id": "3f1d2c4b-0000-4000-8000-0000000000ff",
                               "record_id": "<urn:uuid:3f1d2c4b-0000-4000-8000-0000000000ff>",
                               "linked_by": "ana", "linked_at": "2026-05-14T10:00:00Z",
                               "withdrawn_by": "bo", "withdrawn_at": "2026-05-15T09:00:00Z",
                               "reason": "a stylesheet, linked by mistake", "still_evidence": False}],
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
                        "capture_id": "3f1d2c4b-0000-4000-8000-000000000001",
                        "outcome": "captured",
                        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/156",
                        "method": {
                            "method": "browser",
                            "software": "attest 0.1.0",
                            "browser": "Chromium 156.0.8078.108",
                            "automation": "Playwright 1.65.2",
                            "viewport": {"width": 1280, "height": 800},
                            "behaviors": [{"name": "scroll", "steps": 3}],
                            "complete": True,
                        },
                        "warc_software": {"software": "attest 0.1.0", "recorder": "attest-recorder 0.1"},
                        "post": {"platform": "mastodon", "account": "@official", "post_id": "42",
                                 "platform_time": "2026-05-14T07:58:00Z",
                                 "platform_time_shown": "14 May 2026, 09:58"},
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
                        "quotes": [{"quote": "we will not accept", "found": True,
                                    "capture": "<urn:uuid:3f1d2c4b-0000-4000-8000-000000000001>",
                                    "text": "rendered",
                                    "text_record": "<urn:uuid:3f1d2c4b-0000-4000-8000-00000000000b>",
                                    "shown": "We will not accept", "before": "The minister said:",
                                    "after": "any result before the count ends."}],
                    },
                    {
                        "url": "https://news.example/2026/05/older",
                        "capture_id": "3f1d2c4b-0000-4000-8000-000000000021",
                        "captured": "2026-05-13T08:00:01.000000Z",
                        "record_id": "<urn:uuid:3f1d2c4b-0000-4000-8000-000000000021>",
                        "record_type": "response",
                        "status": 200,
                        "mime": "text/html",
                        "outcome": None,
                        "method": {"method": None, "note": "not recorded for this page"},
                        "user_agent": "attest/0.1 (+https://attest.example/bot)",
                        "post": None,
                        "linked_records": [],
                        "quotes": [],
                    },
                ],
            },
            {
                "id": "C2",
                "kind": "counter-statement",
                "text": "The ministry denied it.",
                "source": "Press release",
                "notes": None,
                "gap": True,
                "gaps": ["exact https://gov.example/press/7: no capture from 2026-05-01 to 2026-05-31"],
                "links": [{"link": "exact https://gov.example/press/7", "kind": "declared",
                           "status": "gap", "captures": [], "incomplete": [], "quote": None,
                           "why": "no capture from 2026-05-01 to 2026-05-31"}],
                "captures": [],
            },
        ],
        "summary": {"claims": 2, "covered": 1, "with_gaps": 1, "gap_links": 1},
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
                  "attest-recorder 0.1", "Chromium 156.0.8078.108", "urn:text:",
                  "Interview, 14 May 2026", "Gap: no capture", "https://gov.example/press/7",
                  "no capture from 2026-05-01 to 2026-05-31", "https://tsa.example/tsr",
                  _signing(key)["public_key_sha256"], "3f1d2c4b-0000-4000-8000-000000000001",
                  "1 fully covered, 1 with gaps (1 gap link; 1 claim without any capture)"):  # fmt: skip
        assert shown in html, shown
    assert page.script.startswith("#!/bin/sh\n")
    assert "evidence/verify.sh" in html
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


def _extract(path: Path, members: dict[str, bytes]) -> Path:
    """The bundle's files in a directory, as ``unzip bundle.wacz -d DIR`` leaves them."""
    for name, data in members.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def _contents(html: bytes, script: str) -> dict[str, bytes]:
    return {
        "archive/data.warc.gz": gzip_member(b"WARC/1.1\r\nWARC-Type: warcinfo\r\n\r\n"),
        "indexes/index.cdxj": b'com,example)/ 20260514080001 {"url": "https://example.com/"}\n',
        "pages/pages.jsonl": b'{"format": "json-pages-1.0", "id": "pages"}\n',
        "evidence/manifest.json": json.dumps(_manifest(), indent=1).encode(),
        "evidence/custody.jsonl": b"",
        "evidence/verify.sh": script.encode(),
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
    script = _parse(html).script
    members = _contents(html.encode(), script)
    package = _datapackage(members)
    members["datapackage.json"] = package
    members["datapackage-digest.json"] = _digest_doc(
        package, _sign_key_mode(key, package), tokens or []
    )
    return Bundle(tmp_path / "bundle", members, key, script)


#: What the script may use: the shell, sha256sum, openssl, and POSIX's cat, find, mkdir, rm.
SCRIPT_TOOLS = ("sh", "sha256sum", "openssl", "cat", "find", "mkdir", "rm")


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory with only the tools the script may use."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in SCRIPT_TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is not installed"
        (directory / tool).symlink_to(found)
    return directory


def _run_script(bundle_dir: Path, bin_dir: Path,
                **inputs: Path | str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """``sh evidence/verify.sh`` in an extracted bundle, with only the allowed tools on PATH
    and the inputs as environment variables; it may write only into its own TMPDIR."""
    tmp = bundle_dir.parent / f"{bundle_dir.name}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {"PATH": str(bin_dir), "TMPDIR": str(tmp), **{k: str(v) for k, v in inputs.items()}}
    before = sorted(p.relative_to(bundle_dir) for p in bundle_dir.rglob("*"))
    done = subprocess.run([str(bin_dir / "sh"), "evidence/verify.sh"], cwd=bundle_dir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert sorted(p.relative_to(bundle_dir) for p in bundle_dir.rglob("*")) == before
    assert list(tmp.iterdir()) == [], "the script leaves its working directory behind"
    return done


def _public_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return path


def _check(bundle: Bundle, tmp_path: Path, bin_dir: Path, name: str = "run",
           key: ec.EllipticCurvePrivateKey | None = None,
           members: dict[str, bytes] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    public = _public_pem(key or bundle.key, tmp_path / f"{name}-key.pem")
    directory = tmp_path / name
    directory.mkdir()
    _extract(directory, members or bundle.members)
    return _run_script(directory, bin_dir, PUBKEY=public)


def test_the_script_passes_an_intact_bundle_using_only_sha256sum_and_openssl(
    tmp_path: Path, bin_dir: Path
) -> None:
    bundle = _bundle(tmp_path)
    result = _check(bundle, tmp_path, bin_dir)
    # No timestamp authority dated this one: every check passes, the verdict says so (exit 3).
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(
        "ALL CHECKS PASSED, BUT NOT TIMESTAMPED: signed and intact, with no independent time"
    )
    assert "FAILED" not in result.stdout
    for name in FILES:
        digest = hashlib.sha256(bundle.members[name]).hexdigest()
        assert f"OK           {name} sha256:{digest}" in result.stdout
    assert "OK           signature: Verified OK" in result.stdout
    assert "NOT TIMESTAMPED  no timestamp authority dated this bundle" in result.stdout
    assert "SKIPPED      set WACZ to the bundle file" in result.stdout


def test_the_script_prints_unwrapped_and_fits_the_page() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for tsas in ([], ["https://tsa.example/" + "long/" * 30 + "tsr"]):
        html = render_report(_manifest(), files=FILES, screenshots={}, signing=_signing(key),
                             tsas=tsas)  # fmt: skip
        script = _parse(html).script
        assert max(len(line) for line in script.splitlines()) <= SCRIPT_WIDTH
        # The report's block never wraps it: a wrapped line would be a broken command.
        style = re.search(r"pre#verify-script \{([^}]*)\}", html)
        assert style is not None
        assert "white-space: pre;" in style.group(1)
        assert "pre-wrap" not in style.group(1)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_a_changed_byte_fails_the_file_check(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    warc = bundle.members["archive/data.warc.gz"]
    members = {**bundle.members, "archive/data.warc.gz": _flip(warc, len(warc) // 2)}
    result = _check(bundle, tmp_path, bin_dir, members=members)
    assert result.returncode == 1, result.stdout
    assert re.search(r"^FAILED       archive/data\.warc\.gz: its SHA-256 is [0-9a-f]{64}, not the one datapackage\.json lists$",
                     result.stdout, re.M), result.stdout  # fmt: skip
    assert "1 CHECK(S) FAILED" in result.stdout
    assert "OK           signature: Verified OK" in result.stdout


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
    step_one = {**bundle.members, **members, "datapackage.json": package}
    result = _check(bundle, tmp_path, bin_dir, "digest", members=step_one)
    assert result.returncode == 1
    assert "FAILED       datapackage.json: its SHA-256 is" in result.stdout
    assert "FAILED       evidence/manifest.json" not in result.stdout
    forger = ec.generate_private_key(ec.SECP256R1())
    resigned = {**members, "datapackage.json": package,
                "datapackage-digest.json": _digest_doc(package, _sign_key_mode(forger, package), [])}  # fmt: skip
    result = _check(bundle, tmp_path, bin_dir, "resigned", members=resigned)
    assert result.returncode == 1
    assert "OK           datapackage.json sha256:" in result.stdout
    assert "FAILED       signature: Verification failure" in result.stdout
    assert "1 CHECK(S) FAILED" in result.stdout


def test_a_wrong_public_key_fails(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    result = _check(bundle, tmp_path, bin_dir, key=ec.generate_private_key(ec.SECP256R1()))
    assert result.returncode == 1
    assert "; this bundle names " in result.stdout
    assert "FAILED       signature: Verification failure" in result.stdout


def test_missing_and_unlisted_files_fail(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path)
    members = {k: v for k, v in bundle.members.items() if k != "evidence/custody.jsonl"}
    members["evidence/extra.html"] = b"<p>hi"
    result = _check(bundle, tmp_path, bin_dir, members=members)
    assert result.returncode == 1
    assert "FAILED       evidence/custody.jsonl: missing from the bundle" in result.stdout
    assert (
        "FAILED       evidence/extra.html: not one of the bundle's listed files" in result.stdout
    )
    assert "2 CHECK(S) FAILED" in result.stdout


def test_missing_inputs_are_named_and_not_taken_for_a_pass(tmp_path: Path, bin_dir: Path) -> None:
    bundle = _bundle(tmp_path, tsas=["http://tsa-one.test/tsr"])
    directory = _extract(tmp_path / "no-key", bundle.members)
    result = _run_script(directory, bin_dir)
    assert result.returncode == 2, result.stdout
    assert "NOT CHECKED  signature: set PUBKEY" in result.stdout
    assert "NOT CHECKED  timestamps: set TSA_ROOTS" in result.stdout
    assert "NOT VERIFIED: 2 check(s) could not run" in result.stdout
    result = _run_script(directory, bin_dir, PUBKEY=tmp_path / "absent.pem")
    assert result.returncode == 1
    assert "FAILED       signature: cannot read PUBKEY=" in result.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "evidence").mkdir()
    (elsewhere / "evidence" / "verify.sh").write_text(bundle.script)
    result = _run_script(elsewhere, bin_dir)
    assert result.returncode == 1
    assert "datapackage.json: not here; run this in the extracted bundle's top" in result.stdout


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
    public = _public_pem(first.key, tmp_path / "org.pem")
    directory = _extract(tmp_path / "run", members)
    result = _run_script(directory, bin_dir, PUBKEY=public, TSA_ROOTS=pki.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("\nALL CHECKS PASSED")
    year = str(datetime.now(UTC).year)
    for i, url in enumerate(tsas, 1):
        line = re.search(
            rf"^OK           timestamp {i} \({re.escape(url)}\): (.*)$", result.stdout, re.M
        )
        assert line, result.stdout
        assert year in line.group(1), line.group(1)
        assert "test TSA" in line.group(1), line.group(1)

    stranger = make_pki(tmp_path / "other", label="other")
    result = _run_script(directory, bin_dir, PUBKEY=public, TSA_ROOTS=stranger.root)
    assert result.returncode == 1
    assert re.search(r"^FAILED       timestamp 1 \(http://tsa-one\.test/tsr\): .*self-signed certificate.* / Verification: FAILED$",
                     result.stdout, re.M), result.stdout  # fmt: skip
    assert "2 CHECK(S) FAILED" in result.stdout

    members["datapackage-digest.json"] = _digest_doc(
        package, _sign_key_mode(first.key, package), tokens[:1]
    )
    one = _extract(tmp_path / "one-token", members)
    result = _run_script(one, bin_dir, PUBKEY=public, TSA_ROOTS=pki.root)
    assert result.returncode == 1
    assert (
        "FAILED       timestamp 2 (authority 2): datapackage-digest.json holds no token 2"
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
    script = _parse(html).script
    members = _contents(html.encode(), script)
    package = _datapackage(members)
    package_hash = f"sha256:{hashlib.sha256(package).hexdigest()}"
    signed = {"hash": package_hash, "created": created, "software": "attest", "version": "0.1.0",
              "signature": base64.b64encode(domain_key.sign(package_hash.encode(), ec.ECDSA(hashes.SHA256()))).decode(),
              "domain": pki.domain, "domainCert": pki.domain_chain.read_text()}  # fmt: skip
    members.update({"datapackage.json": package,
                    "datapackage-digest.json": _digest_doc(package, signed, [])})  # fmt: skip
    assert "PUBKEY" not in script
    directory = _extract(tmp_path / "run", members)
    result = _run_script(directory, bin_dir, CERT_ROOTS=pki.root)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"OK           certificate for {pki.domain}" in result.stdout
    assert "OK           signature: Verified OK" in result.stdout

    stranger = make_pki(tmp_path / "other", label="other")
    result = _run_script(directory, bin_dir, CERT_ROOTS=stranger.root)
    assert result.returncode == 1
    assert f"FAILED       certificate for {pki.domain}" in result.stdout


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


def _section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


def test_each_capture_says_how_its_own_page_was_made_and_what_was_checked() -> None:
    """Per page, never per run: a browser capture shows its browser, automation and viewport;
    a capture whose page record has no method says so, and borrows nothing from the run."""
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(_manifest(), files=FILES, screenshots={VIEW_ID: PNG},
                         signing=_signing(key), tsas=[])  # fmt: skip
    browser = _section(html, "Capture 1:", "Capture 2:")
    older = _section(html, "Capture 2:", "</section>")
    assert "browser (rendered in Chromium)" in browser
    for fact in ("Chromium 156.0.8078.108", "Playwright 1.65.2", "&#34;width&#34;: 1280",
                 "scroll", "HeadlessChrome/156"):  # fmt: skip
        assert fact in browser, fact
    assert "not recorded for this page" in older
    assert "Chromium" not in older
    assert "crawler" not in older
    # The quote: which capture, which text, the words as shown and around them.
    assert "“we will not accept”" in browser
    assert "the text the browser showed (urn:text:), record" in browser
    assert "<mark>We will not accept</mark>" in browser
    assert "The minister said:" in browser
    # The post's own time, as the platform gives it and as the page shows it.
    assert "2026-05-14T07:58:00Z" in browser
    assert "14 May 2026, 09:58" in browser
    # Links, each found or a gap, and the withdrawn one with who, when and why.
    claim = _section(html, 'id="claim-1"', 'id="claim-2"')
    assert "a stylesheet, linked by mistake" in claim
    assert "bo, 2026-05-15T09:00:00Z" in claim
    gap = _section(html, 'id="claim-2"', 'id="verification"')
    assert "no capture from 2026-05-01 to 2026-05-31" in gap


def test_a_crawler_capture_is_described_as_one() -> None:
    manifest = _manifest()
    capture = manifest["claims"][0]["captures"][0]
    capture["method"] = {"method": "crawler", "software": "attest 0.1.0 (Scrapy 2.19.0)"}
    capture["user_agent"] = "attest/0.1 (+https://attest.example/bot)"
    key = ec.generate_private_key(ec.SECP256R1())
    html = render_report(manifest, files=FILES, screenshots={}, signing=_signing(key), tsas=[])
    first = _section(html, "Capture 1:", "Capture 2:")
    assert "crawler (HTTP fetch, no browser)" in first
    assert "Scrapy 2.19.0" in first
    assert "Chromium" not in first
