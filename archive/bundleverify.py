"""Checking an evidence bundle offline, without trusting whoever made it.

``verify_bundle`` reads a WACZ and checks, writing nothing beyond a temporary copy of its WARC
that it deletes:

- ``package``: every file is listed in ``datapackage.json`` with its SHA-256 and size, and no
  listed file is missing; ``datapackage-digest.json`` holds the SHA-256 of ``datapackage.json``;
- ``record``: every WARC record's block and payload digests (the same checks as ``attest verify``
  on a WARC);
- ``index``: every line of ``indexes/index.cdxj`` points at a record of the named URL whose
  payload digest is the one the line states;
- ``claims``: every capture the manifest lists for a claim, and every record linked to it, is
  in the bundle's WARC with the digests the manifest states;
- ``custody``: each entry of the custody excerpt hashes to its stated hash, and entries with
  consecutive sequence numbers chain.

Signature and timestamp checks come with signing (issue 5). Each failure names the check, the
file and, where there is one, the record id.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archive.cdxj import parse_head
from archive.custody import Entry, entry_hash
from archive.errors import IntegrityError
from archive.retrieve import inflate_record
from archive.warcread import verify_warc

EXEMPT = ("datapackage.json", "datapackage-digest.json")


@dataclass
class Failure:
    check: str
    file: str
    record_id: str | None
    detail: str

    def __str__(self) -> str:
        rid = f" record {self.record_id}" if self.record_id else ""
        return f"{self.check}: {self.file}{rid}: {self.detail}"


@dataclass
class BundleVerdict:
    bundle: str
    failures: list[Failure] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, check: str, file: str, detail: str, record_id: str | None = None) -> None:
        self.failures.append(Failure(check, file, record_id, detail))


def _sha256_member(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(name) as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify_bundle(path: Path) -> BundleVerdict:
    verdict = BundleVerdict(str(path))
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        verdict.fail("package", path.name, f"not a readable ZIP/WACZ file: {exc}")
        return verdict
    with archive:
        names = set(archive.namelist())
        package = _check_package(archive, names, verdict)
        if package is None:
            return verdict
        warcs = sorted(n for n in names if n.startswith("archive/") and ".warc" in n)
        if not warcs:
            verdict.fail("package", "archive/", "the bundle holds no WARC file")
            return verdict
        with tempfile.TemporaryDirectory(prefix="attest-verify-") as tmp:
            records: dict[str, dict[str, str]] = {}
            copies: dict[str, Path] = {}
            for name in warcs:
                copy = Path(tmp) / Path(name).name
                with archive.open(name) as src, open(copy, "wb") as dst:
                    while chunk := src.read(1024 * 1024):
                        dst.write(chunk)
                copies[Path(name).name] = copy
                _check_records(copy, name, records, verdict)
            if "indexes/index.cdxj" in names:
                _check_index(archive.read("indexes/index.cdxj"), copies, verdict)
            else:
                verdict.fail("index", "indexes/index.cdxj", "missing")
        if "evidence/manifest.json" in names:
            _check_claims(archive.read("evidence/manifest.json"), records, verdict)
        else:
            verdict.fail("claims", "evidence/manifest.json", "missing")
        if "evidence/custody.jsonl" in names:
            _check_custody(archive.read("evidence/custody.jsonl"), verdict)
    return verdict


def _check_package(
    archive: zipfile.ZipFile, names: set[str], verdict: BundleVerdict
) -> dict[str, Any] | None:
    if "datapackage.json" not in names:
        verdict.fail("package", "datapackage.json", "missing")
        return None
    raw = archive.read("datapackage.json")
    try:
        package: dict[str, Any] = json.loads(raw)
        resources = {r["path"]: r for r in package["resources"]}
    except (ValueError, KeyError, TypeError) as exc:
        verdict.fail("package", "datapackage.json", f"not a WACZ datapackage: {exc}")
        return None
    for name in sorted(names):
        if name.endswith("/") or name in EXEMPT:
            continue
        if name not in resources:
            verdict.fail("package", name, "not listed in datapackage.json")
    for name, resource in sorted(resources.items()):
        if name not in names:
            verdict.fail("package", name, "listed in datapackage.json but missing")
            continue
        digest, size = _sha256_member(archive, name)
        if resource.get("hash") != f"sha256:{digest}":
            verdict.fail(
                "package",
                name,
                f"SHA-256 is {digest}, datapackage.json says {resource.get('hash')}",
            )
        if resource.get("bytes") not in (None, size):
            verdict.fail(
                "package", name, f"{size} bytes, datapackage.json says {resource.get('bytes')}"
            )
    verdict.checked["files"] = len(resources)
    if "datapackage-digest.json" not in names:
        verdict.fail("package", "datapackage-digest.json", "missing")
    else:
        try:
            stated = json.loads(archive.read("datapackage-digest.json"))["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            verdict.fail("package", "datapackage-digest.json", f"unreadable: {exc}")
        else:
            actual = f"sha256:{hashlib.sha256(raw).hexdigest()}"
            if stated != actual:
                verdict.fail("package", "datapackage-digest.json",
                             f"states {stated}, datapackage.json hashes to {actual}")  # fmt: skip
    return package


def _check_records(
    copy: Path, name: str, records: dict[str, dict[str, str]], verdict: BundleVerdict
) -> None:
    result = verify_warc(copy)
    for problem in result.problems:
        verdict.fail("record", name, f"{problem.check} at offset {problem.offset}: {problem.detail}",
                     problem.record_id)  # fmt: skip
    for info in result.records:
        rid = info.record_id or ""
        records[rid] = {
            "file": Path(name).name,
            "offset": str(info.offset),
            "block": info.block_digest,
            "payload": info.payload_digest or "",
            "url": info.header("WARC-Target-URI") or "",
        }
    verdict.checked["records"] = verdict.checked.get("records", 0) + result.record_count


def _check_index(raw: bytes, copies: dict[str, Path], verdict: BundleVerdict) -> None:
    blobs = {name: path.read_bytes() for name, path in copies.items()}
    lines = raw.decode("utf-8", "replace").splitlines()
    for number, line in enumerate(lines, 1):
        where = f"indexes/index.cdxj line {number}"
        try:
            entry = json.loads(line.split(" ", 2)[2])
            data = blobs[entry["filename"]]
            offset, length = int(entry["offset"]), int(entry["length"])
            record = inflate_record(data[offset : offset + length], where)
            head = parse_head(record)
            if head is None:
                raise ValueError("no record head there")
        except (ValueError, KeyError, IndexError, IntegrityError) as exc:
            verdict.fail("index", where, f"does not point at a record: {exc}")
            continue
        headers = head[1]
        rid = headers.get("warc-record-id")
        if headers.get("warc-target-uri") != entry.get("url"):
            verdict.fail(
                "index",
                where,
                f"points at {headers.get('warc-target-uri')}, not {entry.get('url')}",
                rid,
            )
        digest = entry.get("digest")
        if digest and digest not in (
            headers.get("warc-payload-digest"),
            headers.get("warc-block-digest"),
        ):
            verdict.fail("index", where, f"digest {digest} differs from the record's", rid)
    verdict.checked["index_lines"] = len(lines)


def _check_claims(raw: bytes, records: dict[str, dict[str, str]], verdict: BundleVerdict) -> None:
    try:
        manifest = json.loads(raw)
        claims = manifest["claims"]
    except (ValueError, KeyError) as exc:
        verdict.fail("claims", "evidence/manifest.json", f"unreadable: {exc}")
        return
    count = 0
    for claim in claims:
        for capture in claim.get("captures", []):
            count += 1
            rid = capture.get("record_id")
            held = records.get(rid)
            if held is None:
                verdict.fail("claims", "evidence/manifest.json",
                             f"claim {claim.get('id')}: capture not in the bundle", rid)  # fmt: skip
                continue
            for name, key in (("block_sha256", "block"), ("payload_sha256", "payload")):
                if capture.get(name) and capture[name] != held[key]:
                    verdict.fail("claims", "evidence/manifest.json",
                                 f"claim {claim.get('id')}: {name} {capture[name]} differs from the record's {held[key]}",
                                 rid)  # fmt: skip
            for linked in capture.get("linked_records", []):
                if linked.get("record_id") not in records:
                    verdict.fail("claims", "evidence/manifest.json",
                                 f"claim {claim.get('id')}: linked {linked.get('type')} record missing",
                                 linked.get("record_id"))  # fmt: skip
    verdict.checked["claim_captures"] = count


def _check_custody(raw: bytes, verdict: BundleVerdict) -> None:
    previous: Entry | None = None
    count = 0
    for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"evidence/custody.jsonl line {number}"
        try:
            data = json.loads(line)
            entry = Entry(int(data["seq"]), data["at"], data["actor"], data["action"],
                          data["object"], data["details"], data["prev_hash"], data["hash"])  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            verdict.fail("custody", where, f"unreadable entry: {exc}")
            continue
        count += 1
        if entry_hash(entry.body()) != entry.hash:
            verdict.fail("custody", where, f"entry {entry.seq}: hash does not match its content")
        if previous is not None:
            if entry.seq <= previous.seq:
                verdict.fail("custody", where, f"entry {entry.seq} comes after {previous.seq}")
            elif entry.seq == previous.seq + 1 and entry.prev_hash != previous.hash:
                verdict.fail(
                    "custody", where, f"entry {entry.seq} does not chain to entry {previous.seq}"
                )
        previous = entry
    verdict.checked["custody_entries"] = count
