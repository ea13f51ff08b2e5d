"""Checking an evidence bundle offline, without trusting whoever made it.

``verify_bundle`` reads a WACZ and checks, writing nothing (the WARC is read in place, where
the ZIP stores it uncompressed, as attest does; a WARC compressed inside the ZIP is copied to a
temporary file first, deleted after):

- ``package``: every file is listed in ``datapackage.json`` with its SHA-256 and size, and no
  listed file is missing; ``datapackage-digest.json`` holds the SHA-256 of ``datapackage.json``;
- ``record``: every WARC record's block and payload digests (the same checks as ``attest verify``
  on a WARC);
- ``index``: every line of ``indexes/index.cdxj`` points at a record of the named URL whose
  payload digest is the one the line states;
- ``claims``: every capture the manifest lists for a claim, and every record linked to it, is
  in the bundle's WARC with the digests the manifest states;
- ``custody``: each entry of the custody excerpt hashes to its stated hash, and entries with
  consecutive sequence numbers chain;
- ``signature``: ``signedData`` signs the datapackage's hash, with its ``created``, and the
  signer is trusted (an organisation key or a domain certificate chaining to a trusted root;
  see :mod:`archive.trust.signing`); a valid signature by an untrusted key fails;
- ``timestamp``: each RFC 3161 token stamps the SHA-256 of ``datapackage.json`` and chains to a
  trusted TSA root (:mod:`archive.trust.timestamps`).

The verdict (:attr:`BundleVerdict.status`) is ``verified`` when every check passed, ``failed``
when one did, and ``signed, not timestamped`` when every check passed but the bundle carries no
timestamp token at all (it was exported without a timestamp authority): the files and the
signature hold, so it shows who signed it, but nothing independent shows when it existed.
That is not a failure, and not a full verification either; ``attest verify`` exits with 3 for
it (docs/LEGAL.md says how to configure timestamp authorities).

Trust anchors come from the caller (``--trust`` files or ``ATTEST_TRUST``), never from the
bundle. Each failure names the check, the file and, where there is one, the record id; ``notes``
says who signed and when each authority stamped.

The record check (every record inflated, its block and payload hashed) runs in a second thread
while this one hashes the files for the package check and checks the index: both spend their
time in zlib and hashlib, which release the GIL, so a bundle is checked on two cores. Failures
are still reported in the order of the checks above.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from archive.custody.log import Entry, entry_hash
from archive.errors import IntegrityError
from archive.index.cdxj import parse_head
from archive.trust.signing import Trust, verify_signed_data
from archive.trust.timestamps import check_token
from archive.warc.read import Problem, iter_records

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


VERIFIED = "verified"
NOT_TIMESTAMPED = "signed, not timestamped"
FAILED = "failed"


@dataclass
class BundleVerdict:
    bundle: str
    failures: list[Failure] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: the bundle carries no timestamp token at all
    untimestamped: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def status(self) -> str:
        """``verified``, ``signed, not timestamped`` or ``failed``."""
        if self.failures:
            return FAILED
        return NOT_TIMESTAMPED if self.untimestamped else VERIFIED

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


class _Cancelled(Exception):
    """The check this reader was for is no longer wanted."""


class _Member:
    """``size`` bytes of a file from ``start``, as a read-only seekable file (``os.pread``, so
    several readers share nothing): a ZIP member stored uncompressed, read where it lies."""

    def __init__(
        self, path: Path, start: int, size: int, cancel: threading.Event | None = None
    ) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self.path, self.start, self.size, self.pos = path, start, size, 0
        self._cancel = cancel

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise _Cancelled
        left = max(0, self.size - self.pos)
        data = os.pread(self._fd, left if size < 0 else min(size, left), self.start + self.pos)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> _Member:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stored_at(path: Path, info: zipfile.ZipInfo) -> int | None:
    """Where a member's bytes start in the file, if it is stored uncompressed and unencrypted
    and its local header agrees with the central directory (else None: read it the usual way)."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x61:  # encrypted, patched
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        head = handle.read(30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            return None
        name_length = int.from_bytes(head[26:28], "little")
        extra_length = int.from_bytes(head[28:30], "little")
        raw = handle.read(name_length)
    try:
        name = raw.decode("utf-8" if info.flag_bits & 0x800 else "cp437")
    except UnicodeDecodeError:
        return None
    if name != info.orig_filename:
        return None
    return int(info.header_offset) + 30 + name_length + extra_length


def _sha256_in_place(path: Path, info: zipfile.ZipInfo, start: int) -> tuple[str, int]:
    """SHA-256 and size of a stored member read in place; its CRC-32 is checked as ``ZipFile``
    would (a mismatch raises ``BadZipFile``, as reading it through ``ZipFile`` did)."""
    digest = hashlib.sha256()
    crc = size = 0
    with _Member(path, start, info.file_size) as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    if size == info.file_size and crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return digest.hexdigest(), size


def verify_bundle(path: Path, trust: Trust | None = None) -> BundleVerdict:
    verdict = BundleVerdict(str(path))
    trust = trust or Trust()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        verdict.fail("package", path.name, f"not a readable ZIP/WACZ file: {exc}")
        return verdict
    with archive, contextlib.ExitStack() as stack:
        names = set(archive.namelist())
        parsed = _read_package(archive, names, verdict)
        if parsed is None:
            return verdict
        warcs = sorted(n for n in names if n.startswith("archive/") and ".warc" in n)
        stored = {n: at for n in names if (at := _stored_at(path, archive.getinfo(n))) is not None}
        cancel = threading.Event()
        readers: dict[str, _Member] = {}
        for name in warcs:
            if name in stored:
                reader = _Member(path, stored[name], archive.getinfo(name).file_size, cancel)
            else:  # compressed in the ZIP (attest never writes that): a temporary copy
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="attest-verify-"))
                copy = Path(tmp) / Path(name).name
                with archive.open(name) as src, open(copy, "wb") as dst:
                    while chunk := src.read(1024 * 1024):
                        dst.write(chunk)
                reader = _Member(copy, 0, copy.stat().st_size, cancel)
            readers[name] = stack.enter_context(reader)
        # Findings of the later checks, reported after the package and signature checks'.
        found = BundleVerdict(verdict.bundle)
        indexed = BundleVerdict(verdict.bundle)
        records: dict[str, dict[str, str]] = {}
        with ThreadPoolExecutor(1, thread_name_prefix="bundle-records") as pool:
            checking = pool.submit(_check_warcs, readers, records, found)
            try:
                package = _check_package(archive, names, parsed, verdict, path, stored)
                _check_authenticity(archive, names, package, trust, verdict)
                if warcs and "indexes/index.cdxj" in names:
                    index_readers = {
                        Path(n).name: stack.enter_context(_Member(r.path, r.start, r.size))
                        for n, r in readers.items()
                    }
                    _check_index(archive.read("indexes/index.cdxj"), index_readers, indexed)
                checking.result()
            except BaseException:
                cancel.set()
                raise
        if not warcs:
            verdict.fail("package", "archive/", "the bundle holds no WARC file")
            return verdict
        _merge(verdict, found)
        if "indexes/index.cdxj" in names:
            _merge(verdict, indexed)
        else:
            verdict.fail("index", "indexes/index.cdxj", "missing")
        if "evidence/manifest.json" in names:
            _check_claims(archive.read("evidence/manifest.json"), records, verdict)
        else:
            verdict.fail("claims", "evidence/manifest.json", "missing")
        if "evidence/custody.jsonl" in names:
            _check_custody(archive.read("evidence/custody.jsonl"), verdict)
    return verdict


def _merge(verdict: BundleVerdict, part: BundleVerdict) -> None:
    verdict.failures.extend(part.failures)
    verdict.checked.update(part.checked)
    verdict.notes.extend(part.notes)


_Package = tuple[dict[str, Any], bytes, dict[str, dict[str, Any]]]


def _read_package(
    archive: zipfile.ZipFile, names: set[str], verdict: BundleVerdict
) -> _Package | None:
    """``datapackage.json``: (the package, its bytes, its resources by path), or None."""
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
    return package, raw, resources


def _check_package(
    archive: zipfile.ZipFile,
    names: set[str],
    parsed: _Package,
    verdict: BundleVerdict,
    path: Path,
    stored: dict[str, int],
) -> dict[str, Any]:
    """Every file against its size and SHA-256 in ``datapackage.json``; members stored
    uncompressed (``stored``: where their bytes start) are read in place."""
    package, raw, resources = parsed
    for name in sorted(names):
        if name.endswith("/") or name in EXEMPT:
            continue
        if name not in resources:
            verdict.fail("package", name, "not listed in datapackage.json")
    for name, resource in sorted(resources.items()):
        if name not in names:
            verdict.fail("package", name, "listed in datapackage.json but missing")
            continue
        if name in stored:
            digest, size = _sha256_in_place(path, archive.getinfo(name), stored[name])
        else:
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
                verdict.fail(
                    "package",
                    "datapackage-digest.json",
                    f"states {stated}, datapackage.json hashes to {actual}",
                )
    return package


def _check_warcs(
    readers: dict[str, _Member], records: dict[str, dict[str, str]], verdict: BundleVerdict
) -> None:
    """The record check of every WARC (in the second thread)."""
    try:
        for name, reader in readers.items():
            _check_records(reader, name, records, verdict)
    except _Cancelled:
        return


def _check_records(
    reader: _Member, name: str, records: dict[str, dict[str, str]], verdict: BundleVerdict
) -> None:
    """Every record's digests (as ``attest verify`` on a WARC), streaming: what the claims check
    needs of each record is kept, not its headers."""
    count = problems = 0
    for item in iter_records(Path(name), handle=cast(BinaryIO, reader), resync=True):
        if isinstance(item, Problem):
            problems += 1
            verdict.fail(
                "record",
                name,
                f"{item.check} at offset {item.offset}: {item.detail}",
                item.record_id,
            )
            continue
        count += 1
        records[item.record_id or ""] = {
            "file": Path(name).name,
            "offset": str(item.offset),
            "block": item.block_digest,
            "payload": item.payload_digest or "",
            "url": item.header("WARC-Target-URI") or "",
        }
    if not count and not problems:
        verdict.fail("record", name, "format at offset 0: file holds no WARC record")
    verdict.checked["records"] = verdict.checked.get("records", 0) + count


_HEAD_BYTES = 256 * 1024  # read of a record at most (as before)
_PARSED_HEAD = 64 * 1024  # parse_head looks no further into a record


def _record_head(handle: Any, length: int, where: str) -> bytes:
    """The start of the record at the handle's position (``length`` bytes as stored): enough of
    it for ``parse_head``, inflating only until its WARC head has ended (a few KB, not the
    record: the whole record's digests are the record check's business)."""
    left = min(length, _HEAD_BYTES)

    def take(size: int) -> bytes:
        nonlocal left
        data: bytes = handle.read(size if left < 0 else min(size, left))
        left = left if left < 0 else left - len(data)
        return data

    first = take(4096)
    if first[:2] != b"\x1f\x8b":
        return first if len(first) < 4096 else first + take(_PARSED_HEAD - len(first))
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out = bytearray()
    piece = first
    try:
        while True:
            out += inflater.decompress(piece, _PARSED_HEAD - len(out))
            if b"\r\n\r\n" in out or len(out) >= _PARSED_HEAD or inflater.eof:
                break
            piece = inflater.unconsumed_tail or take(65536)
            if not piece:
                break
    except zlib.error as exc:
        raise IntegrityError(f"{where}: not a gzip member: {exc}") from exc
    return bytes(out)


def _check_index(raw: bytes, handles: dict[str, _Member], verdict: BundleVerdict) -> None:
    _check_index_lines(raw, handles, verdict)


def _check_index_lines(raw: bytes, handles: dict[str, Any], verdict: BundleVerdict) -> None:
    lines = raw.decode("utf-8", "replace").splitlines()
    for number, line in enumerate(lines, 1):
        where = f"indexes/index.cdxj line {number}"
        try:
            entry = json.loads(line.split(" ", 2)[2])
            handle = handles[entry["filename"]]
            offset, length = int(entry["offset"]), int(entry["length"])
            handle.seek(offset)
            record = _record_head(handle, length, where)
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
                verdict.fail(
                    "claims",
                    "evidence/manifest.json",
                    f"claim {claim.get('id')}: capture not in the bundle",
                    rid,
                )
                continue
            for name, key in (("block_sha256", "block"), ("payload_sha256", "payload")):
                if capture.get(name) and capture[name] != held[key]:
                    verdict.fail(
                        "claims",
                        "evidence/manifest.json",
                        f"claim {claim.get('id')}: {name} {capture[name]} differs from the record's {held[key]}",
                        rid,
                    )
            for linked in capture.get("linked_records", []):
                if linked.get("record_id") not in records:
                    verdict.fail(
                        "claims",
                        "evidence/manifest.json",
                        f"claim {claim.get('id')}: linked {linked.get('type')} record missing",
                        linked.get("record_id"),
                    )
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
            entry = Entry(
                int(data["seq"]),
                data["at"],
                data["actor"],
                data["action"],
                data["object"],
                data["details"],
                data["prev_hash"],
                data["hash"],
            )
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


def _check_authenticity(
    archive: zipfile.ZipFile,
    names: set[str],
    package: dict[str, Any],
    trust: Trust,
    verdict: BundleVerdict,
) -> None:
    """The signature over the datapackage digest, and every timestamp token over it."""
    where = "datapackage-digest.json"
    if where not in names:
        return  # already reported by the package check
    raw = archive.read("datapackage.json")
    package_hash = f"sha256:{hashlib.sha256(raw).hexdigest()}"
    try:
        doc = json.loads(archive.read(where))
    except ValueError:
        return  # already reported by the package check
    if not isinstance(doc, dict):
        return
    signature = verify_signed_data(
        doc.get("signedData"),
        package_hash=package_hash,
        package_created=package.get("created"),
        trust=trust,
    )
    for problem in signature.problems:
        verdict.fail("signature", where, problem)
    if signature.valid:
        verdict.notes.append(
            f"signed by {signature.signer}"
            + (" (trusted)" if signature.trusted else " (NOT trusted)")
        )
    signed = doc.get("signedData")
    if isinstance(signed, dict) and "timeSignature" in signed:
        stamp = check_token(
            {
                "tsa": "timeSignature",
                "token": signed.get("timeSignature"),
                "chain": signed.get("timestampCert", ""),
            },
            str(signed.get("signature", "")).encode("ascii", "replace"),
            trust,
        )
        for problem in stamp.problems:
            verdict.fail("signature", where, f"timeSignature: {problem}")
    tokens = doc.get("timestamps") or []
    if not isinstance(tokens, list):
        verdict.fail("timestamp", where, "'timestamps' is not a list of tokens")
        return
    if not tokens:
        verdict.untimestamped = True
        verdict.notes.append(
            "not timestamped: no RFC 3161 token; nothing independent shows when the bundle "
            "existed (it was exported without a timestamp authority, ATTEST_TSA_URLS)"
        )
        verdict.checked["timestamps"] = 0
        return
    for number, entry in enumerate(tokens, 1):
        check = check_token(entry, raw, trust)
        for problem in check.problems:
            verdict.fail("timestamp", where, f"token {number} ({check.tsa}): {problem}")
        if check.valid and check.time is not None:
            verdict.notes.append(f"timestamp {number} by {check.tsa}: {check.time.isoformat()}")
    verdict.checked["timestamps"] = len(tokens)
