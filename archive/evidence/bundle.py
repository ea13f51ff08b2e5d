"""Evidence bundles: the records a case's claims need, as a WACZ 1.1.1 file.

``export_bundle`` collects, for each selected claim, its captures and what they depend on: the
request and ``metadata`` records written with each response, its derivatives (``urn:view:``,
``urn:dom:``, ``urn:text:``, ``urn:pdf:``), the page's subresources captured in the same run,
the original of a revisit, the origin's TLS-chain record, and the ``warcinfo`` record of each
WARC they come from. The records are copied as stored (each WARC record is its own gzip member,
so the bytes, and every digest in them, stay what the store holds) into
``archive/data.warc.gz``; then come ``indexes/index.cdxj``, ``pages/pages.jsonl``,
``evidence/manifest.json`` (per claim: its links, each found or a gap, and withdrawn links;
per capture: when, how this page was captured, with which hashes, the quotes checked),
``evidence/custody.jsonl`` (the custody entries of those records and WARCs, and of withdrawn
links), ``evidence/verify.sh`` (the checks anyone can run with ``sha256sum`` and ``openssl``),
``evidence/report.html`` and ``evidence/report.pdf``,
``datapackage.json`` (SHA-256 of every file) and ``datapackage-digest.json``.

Every file sits one folder below the root and is listed in ``datapackage.json``, as ``wacz
validate`` requires; WARCs are stored uncompressed in the ZIP (they are gzip already), so
replay tools can read records by range. ``datapackage-digest.json`` is signed
(:mod:`archive.trust.signing`) and stamped by every configured timestamp authority
(:mod:`archive.trust.timestamps`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import queue
import shutil
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

from archive.custody.log import CustodyLog
from archive.dates import iso
from archive.errors import AttestError, ConfigError, IntegrityError
from archive.evidence.cases import Case, Claim, ClaimEvidence, Found, RunTimeLink, resolve
from archive.evidence.report import SCRIPT_PATH, bundle_script, print_pdf, render_report
from archive.evidence.select import Selection, select
from archive.index.cdxj import IndexRow, WarcIndex, index_bytes, surt_key
from archive.index.db import IndexDB
from archive.index.links import capture_links
from archive.index.pagemeta import PageMetadata
from archive.index.retrieve import check_stored, load_payload, verify_record
from archive.store import Store, file_sha256
from archive.trust.signing import Signer, fingerprint, sign
from archive.trust.timestamps import Authority
from archive.trust.timestamps import request as request_timestamp
from archive.warc.read import Problem, iter_records

WACZ_VERSION = "1.1.1"
SOFTWARE = f"attest {version('attest')}"
BUNDLE_WARC = "data.warc.gz"


@dataclass
class BundleReport:
    path: Path
    sha256: str
    claims: list[str]
    records: int
    warc_bytes: int
    #: each gap, named: ``<claim>: <link>: <why>`` (as the manifest lists them)
    gaps: list[str] = field(default_factory=list)


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


#: Bytes read from the store at once while copying: neighbouring records are read together.
_COPY_CHUNK = 4 * 1024 * 1024


class _Sha256Thread:
    """SHA-256 of the bytes given, in order, computed in a second thread while this one reads
    and writes (hashlib releases the GIL on large buffers). At most 8 pieces wait."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="bundle-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self.hash.update(data)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def __enter__(self) -> _Sha256Thread:
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()


def _pieces(rows: list[IndexRow]) -> Iterator[tuple[str, int, int, list[IndexRow]]]:
    """``(key, offset, length, rows starting there)``: records that follow each other in a WARC
    read as one range of at most ``_COPY_CHUNK`` bytes; a larger record in pieces of that size."""
    group: list[IndexRow] = []

    def flush() -> Iterator[tuple[str, int, int, list[IndexRow]]]:
        key, start = group[0].warc_key, group[0].offset
        end = group[-1].offset + group[-1].length
        for at in range(start, end, _COPY_CHUNK):
            yield key, at, min(_COPY_CHUNK, end - at), list(group) if at == start else []

    for row in rows:
        if group and (
            row.warc_key != group[0].warc_key
            or row.offset != group[-1].offset + group[-1].length
            or row.offset + row.length - group[0].offset > _COPY_CHUNK
        ):
            yield from flush()
            group = []
        group.append(row)
    if group:
        yield from flush()


class _RecordChecks:
    """Every copied record checked against its own digests and its index row
    (:func:`archive.index.retrieve.check_record`) in a second thread while the copy goes on
    (zlib and hashlib release the GIL on large buffers); :meth:`__exit__` raises the first
    failure, so a bundle is never finished around a record that does not verify. Records are
    handed over as views of the piece read from the store, a piece at a time (at most 8 wait)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.failure: BaseException | None = None
        self._queue: queue.Queue[list[tuple[IndexRow, memoryview | None]] | None] = queue.Queue(
            maxsize=8
        )
        self._thread = threading.Thread(target=self._run, name="bundle-checks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (records := self._queue.get()) is not None:
            for row, data in records:
                if self.failure is not None:
                    break
                try:
                    if data is None:  # larger than a piece: read again, as a stream
                        verify_record(self.store, row)
                    else:
                        check_stored(row, data)
                except AttestError as exc:
                    self.failure = exc

    def check(self, records: list[tuple[IndexRow, memoryview | None]]) -> None:
        """Check ``(row, its stored bytes)`` pairs (None: read them again from the store)."""
        if self.failure is not None:
            raise self.failure
        if records:
            self._queue.put(records)

    def __enter__(self) -> _RecordChecks:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        if kind is None and self.failure is not None:
            raise self.failure


def _check_first(member: bytes, key: str) -> None:
    """A WARC's first record (its warcinfo), as copied: whole, and its digests hold."""
    for item in iter_records(Path(key), handle=io.BytesIO(member)):
        if isinstance(item, Problem):
            raise IntegrityError(f"{key}: its first record does not verify: {item}")


def _copy_records(
    store: Store, firsts: list[tuple[str, bytes]], rows: list[IndexRow], warc: BinaryIO
) -> tuple[list[IndexRow], str]:
    """Write the bundle's WARC: the first record (warcinfo) of each WARC, then ``rows`` (in
    store order), each as stored and each checked. Returns index rows for what was written,
    pointing into the bundle's WARC (its CDXJ is made from them, not by reading the WARC
    again), and the WARC's SHA-256, computed while writing."""
    written: list[IndexRow] = []
    position = 0
    with _Sha256Thread() as digest, _RecordChecks(store) as checks:
        for key, member in firsts:
            _check_first(member, key)
            # A warcinfo record has no index row; any other first record is indexed as stored.
            for row in index_bytes(member, BUNDLE_WARC, texts=False).rows:
                written.append(replace(row, offset=position + row.offset))
            warc.write(member)
            digest.update(member)
            position += len(member)
        for key, offset, length, starting in _pieces(rows):
            data = store.read_range(key, offset, length)
            view = memoryview(data)  # records checked as views of what was read, not copies
            records: list[tuple[IndexRow, memoryview | None]] = []
            for row in starting:
                at = row.offset - offset
                if data[at : at + 2] != b"\x1f\x8b":
                    raise IntegrityError(f"{key}: no gzip member at offset {row.offset}")
                whole = at + row.length <= len(data)
                records.append((row, view[at : at + row.length] if whole else None))
                written.append(
                    replace(
                        row,
                        surt=surt_key(row.url),
                        warc_key=BUNDLE_WARC,
                        offset=position + row.offset - offset,
                    )
                )
            checks.check(records)
            warc.write(data)
            digest.update(data)
            position += len(data)
    return written, digest.hash.hexdigest()


@dataclass
class _Written:
    """A file already written into the bundle (its WARC), with its SHA-256 and size."""

    sha256: str
    size: int


class _PrefixHash:
    """SHA-256 of a file being written: its first ``end`` bytes, final already, are hashed in a
    second thread while the rest is written; :meth:`finish` adds the rest once it is."""

    def __init__(self, path: Path, end: int) -> None:
        self.path, self.end = path, end
        self.hash = hashlib.sha256()
        self._done = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bundle-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                while self._done < self.end:
                    chunk = handle.read(min(1024 * 1024, self.end - self._done))
                    if not chunk:
                        break
                    self.hash.update(chunk)
                    self._done += len(chunk)
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish()
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def finish(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._done != self.end:  # the file was shorter than said: hash it all again
            return file_sha256(self.path)
        with open(self.path, "rb") as handle:
            handle.seek(self.end)
            while chunk := handle.read(1024 * 1024):
                self.hash.update(chunk)
        return self.hash.hexdigest()


class _PartialBundle:
    """The bundle being written, as ``.<name>.part`` beside ``output``: renamed into place
    when complete, removed otherwise. The WARC goes in first, straight from the store (no
    temporary copy); that part of the file is then hashed while the rest is made."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = output.with_name(f".{output.name}.part")
        try:
            self.archive = zipfile.ZipFile(self.path, "x")
        except FileExistsError:
            raise ConfigError(f"{self.path}: a partial bundle is in the way; remove it") from None
        self.prefix: _PrefixHash | None = None

    def add_warc(
        self, name: str, store: Store, warc_keys: list[str], rows: list[IndexRow]
    ) -> tuple[list[IndexRow], _Written]:
        firsts = [(key, _first_member(store, key)) for key in warc_keys]
        # As ZipFile.write would store a file of that size just written (ZIP64 if it is large).
        info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o100644 << 16
        info.file_size = sum(len(m) for _, m in firsts) + sum(r.length for r in rows)
        with self.archive.open(info, "w") as dest:
            written, digest = _copy_records(store, firsts, rows, dest)  # type: ignore[arg-type]
        assert self.archive.fp is not None
        self.archive.fp.flush()
        self.prefix = _PrefixHash(self.path, self.archive.fp.tell())
        return written, _Written(digest, info.file_size)

    def discard(self) -> None:
        """Remove the partial file (after a failure; a no-op once renamed into place)."""
        with contextlib.suppress(OSError):  # the failure that brought us here is the one to see
            self.archive.close()
        if self.prefix is not None:
            self.prefix.join()
        self.path.unlink(missing_ok=True)


def export_bundle(
    db: IndexDB,
    store: Store,
    case: Case,
    output: Path,
    *,
    claim_ids: Iterable[str] = (),
    custody: CustodyLog | None = None,
    actor: str | None = None,
    signer: Signer | None = None,
    tsas: list[Authority] | None = None,
    chromium: str | None = None,
) -> BundleReport:
    wanted = list(claim_ids)
    claims: list[Claim] = [case.claim(c) for c in wanted] if wanted else list(case.claims)
    facts = PageMetadata(db, store)
    evidence: list[ClaimEvidence] = [resolve(db, case, claim, facts) for claim in claims]
    gaps = [e.claim.id for e in evidence if not e.covered]
    if not any(e.found for e in evidence):
        raise ConfigError(
            f"{case.path}: no capture for the selected claims ({', '.join(gaps)}): nothing to export"
        )
    chosen = select(db, store, (found.row for item in evidence for found in item.found), facts)
    warc_keys = sorted({row.warc_key for row in chosen.rows.values()})
    if output.exists():
        raise ConfigError(f"{output}: exists; bundles are never overwritten")
    if not output.parent.is_dir():
        raise ConfigError(f"{output.parent}: no such folder to write the bundle into")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with tempfile.TemporaryDirectory(prefix="attest-bundle-") as tmp:
        work = Path(tmp)
        warc_name, cdxj_name = f"archive/{BUNDLE_WARC}", "indexes/index.cdxj"
        pages = _pages(evidence, case)
        manifest = _manifest(db, store, case, evidence, chosen, created)
        listed = [
            warc_name,
            cdxj_name,
            "pages/pages.jsonl",
            "evidence/manifest.json",
            "evidence/custody.jsonl",
            SCRIPT_PATH,
            "evidence/report.html",
            "evidence/report.pdf",
        ]
        signing, tsa_urls = _signing_view(signer), [t.url for t in tsas or []]
        view = json.loads(manifest)
        script = bundle_script(view, files=listed, signing=signing, tsas=tsa_urls)
        html = render_report(
            view,
            files=listed,
            screenshots=_screenshots(store, chosen),
            signing=signing,
            tsas=tsa_urls,
            script=script,
        )
        del view
        bundle = _PartialBundle(output)
        try:
            # Chromium prints the report (it needs nothing of the WARC) while the WARC is copied.
            with ThreadPoolExecutor(1, thread_name_prefix="bundle-report") as pool:
                printing = pool.submit(print_pdf, html, work / "report.pdf", chromium=chromium)
                rows = sorted(chosen.rows.values(), key=lambda r: (r.warc_key, r.offset))
                written, warc = bundle.add_warc(warc_name, store, warc_keys, rows)
                files: dict[str, bytes | Path | _Written] = {warc_name: warc}
                files[cdxj_name] = WarcIndex(BUNDLE_WARC, rows=written).cdxj()
                files["pages/pages.jsonl"] = pages
                files["evidence/manifest.json"] = manifest
                files["evidence/custody.jsonl"] = _custody_excerpt(
                    custody,
                    store,
                    chosen,
                    warc_keys,
                    [w.record_id for e in evidence for w in e.withdrawn],
                )
                files[SCRIPT_PATH] = script.encode("utf-8")
                files["evidence/report.html"] = html.encode("utf-8")
                printing.result()
            files["evidence/report.pdf"] = work / "report.pdf"
            report = _write_wacz(bundle, files, case, created, signer, list(tsas or []))
        finally:
            bundle.discard()
        if custody is not None:
            custody.append(
                "export",
                f"{case.id}:{','.join(e.claim.id for e in evidence)}",
                {
                    "bundle": output.name,
                    "sha256": report,
                    "records": len(chosen.rows) + len(warc_keys),
                    "claims": [e.claim.id for e in evidence],
                    "gaps": gaps,
                    "signer": _signer_name(signer),
                    "timestamps": [t.url for t in tsas or []],
                },
                actor=actor,
            )
    return BundleReport(
        output,
        report,
        [e.claim.id for e in evidence],
        len(chosen.rows) + len(warc_keys),
        warc.size,
        [f"{e.claim.id}: {gap}" for e in evidence for gap in e.gaps],
    )


def _screenshots(store: Store, chosen: Selection) -> dict[str, bytes]:
    """The full-page screenshots (``urn:view:`` records) in the bundle, for the report."""
    shots = {}
    for row in chosen.rows.values():
        if row.url.startswith("urn:view:") and row.record_type == "resource":
            shots[row.record_id] = load_payload(store, row).body
    return shots


def _signing_view(signer: Signer | None) -> dict[str, Any]:
    if signer is None:
        return {"mode": "none"}
    view: dict[str, Any] = {
        "mode": signer.mode,
        "public_key_sha256": fingerprint(signer.public_der()),
    }
    if signer.mode == "domain":
        view["domain"] = signer.domain
    return view


def _signer_name(signer: Signer | None) -> str | None:
    if signer is None:
        return None
    if signer.mode == "domain":
        return f"domain {signer.domain}"
    return f"key {fingerprint(signer.public_der())}"


def _pages(evidence: list[ClaimEvidence], case: Case) -> bytes:
    lines = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": case.title})]
    seen: set[str] = set()
    for item in evidence:
        for found in item.found:
            row = found.row
            if row.record_type != "response" or row.record_id in seen:
                continue
            seen.add(row.record_id)
            lines.append(
                json.dumps(
                    {
                        "id": row.record_id.removeprefix("<urn:uuid:").rstrip(">"),
                        "url": row.url,
                        "ts": iso(row.ts),
                        "title": f"{item.claim.id}: {row.url}",
                    }
                )
            )
    return ("\n".join(lines) + "\n").encode("utf-8")


def _tls(
    db: IndexDB,
    store: Store,
    chosen: Selection,
    row: IndexRow,
    cache: dict[str, dict[str, Any] | None],
) -> dict[str, Any] | None:
    """The origin's TLS chain as the recorder saw it in that run: fingerprints, not PEM."""
    if not row.url.startswith("https://"):
        return None
    chain = chosen.chain(db, row.run_id, row.surt.split(")/")[0] + ")/")
    if chain is None:
        return None
    if chain.record_id not in cache:
        try:
            info = json.loads(load_payload(store, chain).body)
            cache[chain.record_id] = {
                "record_id": chain.record_id,
                "host": info.get("host"),
                "tls_version": info.get("tls_version"),
                "verified": info.get("verified"),
                "verify_error": info.get("verify_error"),
                "chain_sha256": [c.get("sha256") for c in info.get("chain") or []],
                "subjects": [c.get("subject") for c in info.get("chain") or []],
            }
        except (ValueError, IntegrityError):
            cache[chain.record_id] = {"record_id": chain.record_id, "error": "unreadable"}
    return cache[chain.record_id]


def _user_agent(
    store: Store, chosen: Selection, db: IndexDB, row: IndexRow, method: dict[str, Any]
) -> str | None:
    """The User-Agent this page was fetched with: the browser's, as its page record says, else
    the header of the page's own request record (what was sent, byte for byte)."""
    if method.get("user_agent"):
        return str(method["user_agent"])
    request = next(
        (r for r in chosen.linked(db, row.record_id) if r.record_type == "request"), None
    )
    if request is None:
        return None
    try:
        head = load_payload(store, request).http
    except (IntegrityError, ValueError):
        return None
    return head.headers.get("user-agent") if head is not None else None


def _capture_entry(
    db: IndexDB,
    store: Store,
    chosen: Selection,
    found: Found,
    info: dict[str, Any],
    tls_cache: dict[str, dict[str, Any] | None],
) -> dict[str, Any]:
    row = found.row
    pages = chosen.pages
    method = pages.method(row)
    linked = [
        {
            "record_id": r.record_id,
            "type": r.record_type,
            "url": r.url,
            "block_sha256": r.block_digest,
            "role": chosen.role.get(r.record_id, ""),
        }
        for r in chosen.linked(db, row.record_id)
    ]
    return {
        # The capture id: the stable reference to this capture (replay links are per second).
        "capture_id": row.record_id.removeprefix("<urn:uuid:").rstrip(">"),
        # This one capture's paths in the archive's service (`attest serve`): exact, unlike a
        # per-second Memento URI. In the bundle itself, the CDXJ and pages.jsonl replay it.
        "archive_links": capture_links(row.record_id),
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
        "outcome": pages.outcome(row),
        # How this page was captured, from its own metadata record, never from the run.
        "method": method,
        "user_agent": _user_agent(store, chosen, db, row, method),
        # The WARC file's warcinfo: the software that wrote the file (the whole run's).
        "warc_software": {k: info[k] for k in ("software", "recorder") if k in info},
        "post": pages.post(row),
        "role": chosen.role.get(row.record_id, "original"),
        "tls": _tls(db, store, chosen, row, tls_cache),
        "linked_records": linked,
        "found_by": found.via,
        "quote_shown": found.quote_found,
        "quotes": [q.as_dict() for q in found.quotes],
    }


def _withdrawn_entry(link: RunTimeLink, item: ClaimEvidence) -> dict[str, Any]:
    still = any(link.record_id in result.captures for result in item.links)
    return {
        "capture_id": link.record_id.removeprefix("<urn:uuid:").rstrip(">"),
        "record_id": link.record_id,
        "linked_by": link.annotator,
        "linked_at": link.linked_at,
        "note": link.note,
        "withdrawn_by": link.withdrawn_by,
        "withdrawn_at": link.withdrawn_at,
        "reason": link.withdrawn_reason,
        "still_evidence": still,
    }


def _manifest(
    db: IndexDB,
    store: Store,
    case: Case,
    evidence: list[ClaimEvidence],
    chosen: Selection,
    created: str,
) -> bytes:
    tls_cache: dict[str, dict[str, Any] | None] = {}
    warcinfo: dict[str, dict[str, Any]] = {}
    for row in chosen.rows.values():
        if row.warc_key not in warcinfo:
            info = db.warc(row.warc_key) or {}
            warcinfo[row.warc_key] = json.loads(info.get("warcinfo") or "{}")
    claims = []
    gaps: list[dict[str, str]] = []
    for item in evidence:
        captures = [
            _capture_entry(
                db, store, chosen, found, warcinfo.get(found.row.warc_key, {}), tls_cache
            )
            for found in item.found
        ]
        gaps.extend({"claim": item.claim.id, "gap": gap} for gap in item.gaps)
        claims.append(
            {
                "id": item.claim.id,
                "kind": item.claim.kind,
                "text": item.claim.text,
                "source": item.claim.source,
                "notes": item.claim.notes,
                "covered": item.covered,
                "gap": not item.covered,
                "gaps": item.gaps,
                "links": [link.as_dict() for link in item.links],
                "withdrawn": [_withdrawn_entry(w, item) for w in item.withdrawn],
                "captures": captures,
            }
        )
    covered = sum(1 for e in evidence if e.covered)
    summary = {
        "claims": len(evidence),
        "covered": covered,
        "with_gaps": len(evidence) - covered,
        "gap_links": sum(len(e.gap_links) for e in evidence),
    }
    manifest = {
        "case": case.id,
        "title": case.title,
        "created": created,
        "summary": summary,
        "gaps": gaps,
        "claims": claims,
        "records": [{"record_id": rid, "role": role} for rid, role in sorted(chosen.role.items())],
    }
    return json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")


def _custody_excerpt(
    custody: CustodyLog | None,
    store: Store,
    chosen: Selection,
    warc_keys: list[str],
    withdrawn: list[str],
) -> bytes:
    """The custody entries of the bundle's records and WARCs, and of the captures whose links
    were withdrawn (their ``link`` and ``unlink`` entries show who did it, when and why)."""
    if custody is None:
        return b""
    objects = set(chosen.rows) | {store.object_uri(k) for k in warc_keys} | set(withdrawn)
    lines = [e.json_line() for e in custody.entries() if e.object in objects]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _package_json(resources: list[dict[str, Any]], fields: dict[str, Any]) -> bytes:
    """``datapackage.json`` with one resource per line (``"path": P, "hash": H`` adjacent), so
    the report's shell steps can find a file's stated hash with plain pattern matching."""
    lines = ["{", ' "profile": "data-package",', ' "resources": [']
    lines.append(",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in resources))
    lines.append(" ],")
    lines.append(
        ",\n".join(
            f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()
        )
    )
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _digest_doc(
    package_bytes: bytes, created: str, signer: Signer | None, tsas: list[Authority]
) -> bytes:
    """``datapackage-digest.json``: the hash, its signature and the TSAs' tokens over it."""
    digest = f"sha256:{hashlib.sha256(package_bytes).hexdigest()}"
    doc: dict[str, Any] = {"path": "datapackage.json", "hash": digest}
    if signer is not None:
        signed = sign(signer, digest, created, SOFTWARE)
        if signer.mode == "domain":
            if not tsas:
                raise ConfigError(
                    "a domain-certificate signature needs a timestamp authority (ATTEST_TSA_URLS)"
                )
            stamp = request_timestamp(tsas[0], signed["signature"].encode("ascii"))
            signed["timeSignature"] = stamp["token"]
            signed["timestampCert"] = stamp["chain"]
        doc["signedData"] = signed
    doc["timestamps"] = [request_timestamp(tsa, package_bytes) for tsa in tsas]
    return (json.dumps(doc, indent=1) + "\n").encode("ascii")


def _write_wacz(
    bundle: _PartialBundle,
    files: dict[str, bytes | Path | _Written],
    case: Case,
    created: str,
    signer: Signer | None,
    tsas: list[Authority],
) -> str:
    """Complete the bundle (``_Written`` files are in it already) and put it in place; returns
    its SHA-256."""
    resources = []
    for name, content in files.items():
        if isinstance(content, _Written):
            digest, size = content.sha256, content.size
        elif isinstance(content, Path):
            digest, size = file_sha256(content), content.stat().st_size
        else:
            digest, size = hashlib.sha256(content).hexdigest(), len(content)
        resources.append(
            {
                "path": name,
                "hash": f"sha256:{digest}",
                "bytes": size,
                "name": Path(name).name.lower(),
            }
        )
    package_bytes = _package_json(
        resources,
        {
            "wacz_version": WACZ_VERSION,
            "software": SOFTWARE,
            "title": case.title,
            "description": f"Evidence for case {case.id}",
            "created": created,
            "modified": created,
        },
    )
    digest_doc = _digest_doc(package_bytes, created, signer, tsas)
    with bundle.archive as archive:
        for name, content in files.items():
            compress = zipfile.ZIP_STORED if name.startswith("archive/") else zipfile.ZIP_DEFLATED
            if isinstance(content, _Written):
                continue
            if isinstance(content, Path):
                # As ZipFile.write does, in 1 MB pieces instead of its 8 KB ones.
                info = zipfile.ZipInfo.from_file(content, name)
                info.compress_type = compress
                with open(content, "rb") as src, archive.open(info, "w") as dest:
                    shutil.copyfileobj(src, dest, 1024 * 1024)
            else:
                archive.writestr(name, content, compress_type=compress)
        archive.writestr("datapackage.json", package_bytes, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("datapackage-digest.json", digest_doc, compress_type=zipfile.ZIP_DEFLATED)
    digest = bundle.prefix.finish() if bundle.prefix is not None else file_sha256(bundle.path)
    bundle.path.rename(bundle.output)
    return digest
