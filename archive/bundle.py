"""Evidence bundles: the records a case's claims need, as a WACZ 1.1.1 file.

``export_bundle`` collects, for each selected claim, its captures and what they depend on: the
request and ``metadata`` records written with each response, its derivatives (``urn:view:``,
``urn:dom:``, ``urn:text:``, ``urn:pdf:``), the page's subresources captured in the same run,
the original of a revisit, the origin's TLS-chain record, and the ``warcinfo`` record of each
WARC they come from. The records are copied as stored (each WARC record is its own gzip member,
so the bytes, and every digest in them, stay what the store holds) into
``archive/data.warc.gz``; then come ``indexes/index.cdxj``, ``pages/pages.jsonl``,
``evidence/manifest.json`` (per claim: what was captured, when, how, with which hashes),
``evidence/custody.jsonl`` (the custody entries of those records and WARCs),
``datapackage.json`` (SHA-256 of every file) and ``datapackage-digest.json``.

Every file sits one folder below the root and is listed in ``datapackage.json``, as ``wacz
validate`` requires; WARCs are stored uncompressed in the ZIP (they are gzip already), so
replay tools can read records by range. Signing and RFC 3161 timestamps come next (issue 5).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.cases import Case, Claim, ClaimEvidence, resolve
from archive.cdxj import IndexRow, read_warc_index, surt_key
from archive.custody import CustodyLog
from archive.dates import iso
from archive.errors import ConfigError, IntegrityError
from archive.indexdb import IndexDB
from archive.retrieve import load_payload
from archive.store import Store

WACZ_VERSION = "1.1.1"
BUNDLE_WARC = "data.warc.gz"
_DERIVED_PREFIXES = ("urn:view:", "urn:dom:", "urn:text:", "urn:pdf:")


@dataclass
class BundleReport:
    path: Path
    sha256: str
    claims: list[str]
    records: int
    warc_bytes: int
    gaps: list[str] = field(default_factory=list)


@dataclass
class _Selection:
    """Records chosen for the bundle, by record id, with why each is there."""

    rows: dict[str, IndexRow] = field(default_factory=dict)
    role: dict[str, str] = field(default_factory=dict)
    _linked: dict[str, list[IndexRow]] = field(default_factory=dict)

    def linked(self, db: IndexDB, record_id: str) -> list[IndexRow]:
        """Records written with this one (WARC-Concurrent-To), looked up once."""
        if record_id not in self._linked:
            self._linked[record_id] = db.concurrent_with(record_id)
        return self._linked[record_id]

    def add(self, row: IndexRow, role: str) -> bool:
        if row.record_id in self.rows:
            return False
        self.rows[row.record_id] = row
        self.role[row.record_id] = role
        return True


def _role(row: IndexRow) -> str:
    if row.url.startswith(_DERIVED_PREFIXES):
        return "derivative"
    if row.record_type == "metadata":
        return "metadata"
    return "original"


def _dependencies(db: IndexDB, store: Store, row: IndexRow, chosen: _Selection) -> None:
    """Add what a capture needs to be checked and replayed."""
    linked_rows = chosen.linked(db, row.record_id)
    for linked in linked_rows:
        chosen.add(linked, _role(linked))
    if row.record_type == "revisit" and row.concurrent_to:
        original = db.by_record_id(row.concurrent_to)
        if original is not None and chosen.add(original, "original"):
            _dependencies(db, store, original, chosen)
    if row.url.startswith("https://"):
        chain = db.tls_chain_for(row.run_id, row.surt.split(")/")[0] + ")/")
        if chain is not None:
            chosen.add(chain, "metadata")
    for linked in linked_rows:
        if linked.record_type == "metadata" and "attest-page" in linked.mime:
            try:
                page = json.loads(load_payload(store, linked).body)
            except (ValueError, IntegrityError):
                continue
            for url in page.get("requisites") or []:
                _add_requisite(db, row, str(url), chosen)


def _add_requisite(db: IndexDB, page: IndexRow, url: str, chosen: _Selection) -> None:
    rows = db.select(low=surt_key(url), high=None, exact=True, record_types=("response", "revisit"),
                     run_ids=[page.run_id] if page.run_id else None, closest=page.ts, limit=1)  # fmt: skip
    for row in rows:
        if chosen.add(row, "original"):
            for linked in chosen.linked(db, row.record_id):
                if linked.record_type == "request":
                    chosen.add(linked, "original")
            if row.record_type == "revisit" and row.concurrent_to:
                original = db.by_record_id(row.concurrent_to)
                if original is not None:
                    chosen.add(original, "original")


def _first_member(store: Store, key: str) -> bytes:
    """The WARC's first record (its warcinfo) as stored: one gzip member."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    taken = bytearray()
    with store.open(key) as handle:
        while not inflater.eof:
            chunk = handle.read(65536)
            if not chunk:
                raise IntegrityError(f"{key}: the first record ends early")
            try:
                inflater.decompress(chunk)
            except zlib.error as exc:
                raise IntegrityError(
                    f"{key}: the first record is not a gzip member: {exc}"
                ) from exc
            taken += chunk
            if len(taken) > 64 * 1024 * 1024:
                raise IntegrityError(f"{key}: the first record is larger than 64 MB")
    return bytes(taken[: len(taken) - len(inflater.unused_data)])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def export_bundle(
    db: IndexDB,
    store: Store,
    case: Case,
    output: Path,
    *,
    claim_ids: Iterable[str] = (),
    custody: CustodyLog | None = None,
    actor: str | None = None,
) -> BundleReport:
    wanted = list(claim_ids)
    claims: list[Claim] = [case.claim(c) for c in wanted] if wanted else list(case.claims)
    evidence: list[ClaimEvidence] = [resolve(db, case, claim) for claim in claims]
    gaps = [e.claim.id for e in evidence if e.is_gap]
    if len(gaps) == len(evidence):
        raise ConfigError(
            f"{case.path}: no capture for the selected claims ({', '.join(gaps)}): nothing to export"
        )
    chosen = _Selection()
    for item in evidence:
        for found in item.found:
            chosen.add(found.row, _role(found.row))
    for found_row in list(chosen.rows.values()):
        _dependencies(db, store, found_row, chosen)
    warc_keys = sorted({row.warc_key for row in chosen.rows.values()})
    if output.exists():
        raise ConfigError(f"{output}: exists; bundles are never overwritten")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with tempfile.TemporaryDirectory(prefix="attest-bundle-") as tmp:
        work = Path(tmp)
        warc_path = work / BUNDLE_WARC
        with open(warc_path, "wb") as warc:
            for key in warc_keys:
                warc.write(_first_member(store, key))
            for row in sorted(chosen.rows.values(), key=lambda r: (r.warc_key, r.offset)):
                warc.write(store.read_range(row.warc_key, row.offset, row.length))
        index = read_warc_index(warc_path, BUNDLE_WARC, texts=False)
        files: dict[str, bytes | Path] = {f"archive/{BUNDLE_WARC}": warc_path}
        files["indexes/index.cdxj"] = index.cdxj()
        files["pages/pages.jsonl"] = _pages(evidence, case)
        files["evidence/manifest.json"] = _manifest(db, case, evidence, chosen, created)
        files["evidence/custody.jsonl"] = _custody_excerpt(custody, store, chosen, warc_keys)
        report = _write_wacz(output, files, case, created)
        if custody is not None:
            custody.append(
                "export",
                f"{case.id}:{','.join(e.claim.id for e in evidence)}",
                {"bundle": output.name, "sha256": report, "records": len(chosen.rows) + len(warc_keys),
                 "claims": [e.claim.id for e in evidence], "gaps": gaps},
                actor=actor,
            )  # fmt: skip
    return BundleReport(
        output, report, [e.claim.id for e in evidence], len(chosen.rows) + len(warc_keys),
        warc_path_size(output), gaps,
    )  # fmt: skip


def warc_path_size(bundle: Path) -> int:
    with zipfile.ZipFile(bundle) as archive:
        return archive.getinfo(f"archive/{BUNDLE_WARC}").file_size


def _pages(evidence: list[ClaimEvidence], case: Case) -> bytes:
    lines = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": case.title})]
    seen: set[str] = set()
    for item in evidence:
        for found in item.found:
            row = found.row
            if row.record_type != "response" or row.record_id in seen:
                continue
            seen.add(row.record_id)
            lines.append(json.dumps({"id": row.record_id.removeprefix("<urn:uuid:").rstrip(">"),
                                     "url": row.url, "ts": iso(row.ts),
                                     "title": f"{item.claim.id}: {row.url}"}))  # fmt: skip
    return ("\n".join(lines) + "\n").encode("utf-8")


def _manifest(
    db: IndexDB, case: Case, evidence: list[ClaimEvidence], chosen: _Selection, created: str
) -> bytes:
    warcinfo: dict[str, dict[str, Any]] = {}
    for row in chosen.rows.values():
        if row.warc_key not in warcinfo:
            info = db.warc(row.warc_key) or {}
            warcinfo[row.warc_key] = json.loads(info.get("warcinfo") or "{}")
    claims = []
    for item in evidence:
        captures = []
        for found in item.found:
            row = found.row
            info = warcinfo.get(row.warc_key, {})
            linked = [
                {"record_id": r.record_id, "type": r.record_type, "url": r.url,
                 "block_sha256": r.block_digest, "role": chosen.role.get(r.record_id, "")}
                for r in chosen.linked(db, row.record_id)
            ]  # fmt: skip
            captures.append({
                "url": row.url,
                "captured": iso(row.ts),
                "record_id": row.record_id,
                "record_type": row.record_type,
                "status": row.status,
                "mime": row.mime,
                "block_sha256": row.block_digest,
                "payload_sha256": row.digest,
                "server_ip": row.ip,
                "run_id": row.run_id,
                "source": row.source,
                "user_agent": info.get("http-header-user-agent"),
                "software": {
                    k: v
                    for k, v in info.items()
                    if k in ("software", "scrapy-version", "python-version", "recorder")
                    or k.startswith("browser")
                },
                "post": {"platform": row.platform, "account": row.account, "post_id": row.post_id}
                if row.platform else None,
                "role": chosen.role.get(row.record_id, "original"),
                "linked_records": linked,
                "found_by": found.via,
                "quote_shown": found.quote_found,
            })  # fmt: skip
        claims.append({"id": item.claim.id, "kind": item.claim.kind, "text": item.claim.text,
                       "source": item.claim.source, "notes": item.claim.notes,
                       "gap": item.is_gap, "not_found": item.unmatched, "captures": captures})  # fmt: skip
    manifest = {"case": case.id, "title": case.title, "created": created, "claims": claims,
                "records": [{"record_id": rid, "role": role} for rid, role in
                            sorted(chosen.role.items())]}  # fmt: skip
    return json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")


def _custody_excerpt(
    custody: CustodyLog | None, store: Store, chosen: _Selection, warc_keys: list[str]
) -> bytes:
    if custody is None:
        return b""
    objects = set(chosen.rows) | {store.object_uri(k) for k in warc_keys}
    lines = [e.json_line() for e in custody.entries() if e.object in objects]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _write_wacz(output: Path, files: dict[str, bytes | Path], case: Case, created: str) -> str:
    resources = []
    for name, content in files.items():
        if isinstance(content, Path):
            digest, size = _sha256(content), content.stat().st_size
        else:
            digest, size = hashlib.sha256(content).hexdigest(), len(content)
        resources.append({"name": Path(name).name.lower(), "path": name,
                          "hash": f"sha256:{digest}", "bytes": size})  # fmt: skip
    package = {
        "profile": "data-package",
        "resources": resources,
        "wacz_version": WACZ_VERSION,
        "software": "attest",
        "title": case.title,
        "description": f"Evidence for case {case.id}",
        "created": created,
        "modified": created,
    }
    package_bytes = json.dumps(package, indent=2).encode("utf-8")
    package_sha = hashlib.sha256(package_bytes).hexdigest()
    digest_doc = json.dumps({"path": "datapackage.json", "hash": f"sha256:{package_sha}"}, indent=2)
    partial = output.with_name(f".{output.name}.part")
    try:
        with zipfile.ZipFile(partial, "x") as archive:
            for name, content in files.items():
                compress = (
                    zipfile.ZIP_STORED if name.startswith("archive/") else zipfile.ZIP_DEFLATED
                )
                if isinstance(content, Path):
                    archive.write(content, name, compress_type=compress)
                else:
                    archive.writestr(name, content, compress_type=compress)
            archive.writestr("datapackage.json", package_bytes, compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr(
                "datapackage-digest.json", digest_doc, compress_type=zipfile.ZIP_DEFLATED
            )
        partial.rename(output)
    except FileExistsError:
        raise ConfigError(f"{partial}: a partial bundle is in the way; remove it") from None
    finally:
        partial.unlink(missing_ok=True)
    return _sha256(output)
