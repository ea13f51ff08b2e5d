"""Sealed custody segments: signed and timestamped when sealed, and the anchor of verification.

The custody log's database can be rewritten by whoever controls it, seal table included; what
was sealed into the store cannot be changed unnoticed: keys are written once (and S3 keeps every
version, so a later PUT under a segment's key shows as a second version), each segment is
signed with the organisation key when one is configured (``attest keygen``; the signature
covers the segment's SHA-256) and stamped by the configured timestamp authorities (RFC 3161
tokens over the segment's bytes), both kept beside it as ``<segment>.seal.json``.

:func:`check_log` therefore verifies the database against the store, never against itself: it
lists the segments in the store, checks each one (its own chain, its seal file, that it has a
single version), requires the database's entries to be exactly those sealed (an entry sealed in
the store but missing from the database, or different there, is a failure), and names the
entries not sealed yet, which nothing outside the database vouches for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from archive.errors import AttestError, TimestampError

if TYPE_CHECKING:
    from archive.custody.log import CustodyLog, Entry
    from archive.store import Store
    from archive.trust.signing import Signer, Trust
    from archive.trust.timestamps import Authority

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "custody/segments/"
SEAL_SUFFIX = ".seal.json"
_SEGMENT = re.compile(r"(\d{12})-(\d{12})\.jsonl")


@dataclass
class SegmentAttestor:
    """Signs (organisation key) and timestamps (TSAs) each segment as it is sealed."""

    signer: Signer | None = None
    tsas: Sequence[Authority] = ()

    @property
    def active(self) -> bool:
        return self.signer is not None or bool(self.tsas)

    def attest(self, key: str, data: bytes, created: str) -> dict[str, Any]:
        """The seal file's content for segment ``key`` holding ``data``. A TSA that fails is
        named in ``timestamp_errors``: the segment is kept, and verification says it lacks
        that authority's time."""
        from archive.trust.signing import sign
        from archive.trust.timestamps import request

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        software = f"attest {version('attest')}"
        seal: dict[str, Any] = {"segment": key, "hash": digest, "created": created}
        if self.signer is not None:
            seal["signedData"] = sign(self.signer, digest, created, software)
        stamps, errors = [], []
        for authority in self.tsas:
            try:
                stamps.append(request(authority, data))
            except TimestampError as exc:
                log.error("custody segment %s not timestamped: %s", key, exc)
                errors.append(str(exc))
        seal["timestamps"] = stamps
        if errors:
            seal["timestamp_errors"] = errors
        return seal


@dataclass
class SegmentCheck:
    key: str
    first: int
    last: int
    signer: str | None = None  # "key <fingerprint>", when signed
    trusted: bool = False
    timestamps: list[str] = field(default_factory=list)  # "<tsa> <time>" of valid tokens


@dataclass
class CustodyVerdict:
    """What checking the custody log against the store found."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)
    segments: list[SegmentCheck] = field(default_factory=list)
    #: the last entry sealed in the store (0: none)
    sealed_through: int = 0
    #: (first, last) of the database's entries that are not sealed yet, if any
    unsealed: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def segment_range(key: str) -> tuple[int, int] | None:
    match = _SEGMENT.fullmatch(key.rsplit("/", 1)[-1])
    return (int(match.group(1)), int(match.group(2))) if match else None


def segment_keys(store: Store) -> list[str]:
    """The sealed segments in the store, in order of their first entry."""
    found = [k for k in store.keys(SEGMENT_PREFIX) if segment_range(k) is not None]
    return sorted(found, key=lambda k: segment_range(k) or (0, 0))


def parse_segment(data: bytes) -> Iterator[Entry]:
    from archive.custody.log import Entry

    for line in data.decode("utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            yield Entry(
                int(item["seq"]),
                item["at"],
                item["actor"],
                item["action"],
                item["object"],
                item["details"],
                item["prev_hash"],
                item["hash"],
            )


def read_first_version(store: Store, key: str, problems: list[str]) -> bytes:
    """The segment as first written; a second version of its key is a problem (an overwrite)."""
    versions = store.versions(key)
    if len(versions) > 1:
        problems.append(
            f"{key}: the store holds {len(versions)} versions of this sealed segment: it was "
            "written again after it was sealed (the first version is the one checked)"
        )
    first = versions[0].version_id if versions else None
    with store.open(key, version=first) as handle:
        data: bytes = handle.read()
    return data


def check_log(
    custody: CustodyLog, trust: Trust | None = None, *, require_seals: bool = False
) -> CustodyVerdict:
    """The database's chain, and its agreement with every sealed segment in the store.

    ``require_seals``: a segment without a seal file (signature, timestamps) is a failure, not
    a note: the organisation signs its segments, so one without a seal may have been replaced
    together with the database (``attest custody seal`` seals those sealed before the key)."""
    from archive.custody.log import GENESIS, check_chain

    verdict = CustodyVerdict()
    db_entries = list(custody.entries())
    verdict.entries = len(db_entries)
    verdict.problems.extend(check_chain(iter(db_entries)))
    store = custody.store
    if store is None:
        if db_entries:
            verdict.unsealed = (db_entries[0].seq, db_entries[-1].seq)
            verdict.notes.append("no store: nothing outside the database vouches for the log")
        return verdict
    by_seq = {e.seq: e.json_line() for e in db_entries}
    sealed: dict[int, str] = {}
    sealed_in: dict[int, str] = {}  # seq -> the segment that holds it
    prev_hash: str | None = None
    expected_first = 1
    keys = segment_keys(store)
    for key in keys:
        first, last = segment_range(key) or (0, 0)
        try:
            data = read_first_version(store, key, verdict.problems)
            entries = list(parse_segment(data))
        except (AttestError, ValueError, KeyError, TypeError) as exc:
            verdict.problems.append(f"{key}: sealed segment cannot be read: {exc}")
            continue
        check = SegmentCheck(key, first, last)
        verdict.segments.append(check)
        if [e.seq for e in entries] != list(range(first, last + 1)):
            verdict.problems.append(f"{key}: does not hold exactly entries {first}-{last}")
            continue
        if first > expected_first:
            verdict.problems.append(
                f"entries {expected_first}-{first - 1} are in no sealed segment of the store, "
                f"though later ones are ({key})"
            )
        # Chained from the segment before it when it follows it; else on its own.
        start = prev_hash if first == expected_first and prev_hash else entries[0].prev_hash
        verdict.problems.extend(
            f"{key}: {p}" for p in check_chain(iter(entries), prev=GENESIS if first == 1 else start)
        )
        _check_seal(store, key, data, check, trust, verdict, require_seals)
        for entry in entries:
            line = entry.json_line()
            sealed_in.setdefault(entry.seq, key)
            if sealed.setdefault(entry.seq, line) != line:
                verdict.problems.append(f"entry {entry.seq}: two sealed segments disagree on it")
        if last >= expected_first:
            expected_first = last + 1
            prev_hash = entries[-1].hash
    _compare(sealed, sealed_in, by_seq, verdict)
    _check_seal_table(custody, store, keys, verdict)
    return verdict


def _compare(
    sealed: dict[int, str],
    sealed_in: dict[int, str],
    by_seq: dict[int, str],
    verdict: CustodyVerdict,
) -> None:
    missing = sorted(s for s in sealed if s not in by_seq)
    if missing:
        verdict.problems.append(
            f"entries {_ranges(missing)} are sealed in the store but missing from the database"
        )
    differ = sorted(s for s in sealed if s in by_seq and by_seq[s] != sealed[s])
    for seq in differ[:20]:
        verdict.problems.append(
            f"entry {seq} in the database differs from the sealed segment {sealed_in[seq]}"
        )
    if len(differ) > 20:
        verdict.problems.append(f"... and {len(differ) - 20} more entries differ")
    verdict.sealed_through = max(sealed, default=0)
    unsealed = sorted(s for s in by_seq if s > verdict.sealed_through)
    if unsealed:
        verdict.unsealed = (unsealed[0], unsealed[-1])
        verdict.notes.append(
            f"entries {_ranges(unsealed)} are not sealed yet: only the database holds them "
            "(`attest custody seal` seals them)"
        )


def _check_seal_table(
    custody: CustodyLog, store: Store, keys: list[str], verdict: CustodyVerdict
) -> None:
    """The database's own record of what it sealed: a segment it names that the store lacks,
    or whose bytes are not those it recorded, is reported (the store's segments are what the
    log is checked against; this only says where they and the database part ways)."""
    present = set(keys)
    for key, sha256 in custody.db.rows(
        "SELECT segment_key, sha256 FROM custody_seals ORDER BY last_seq"
    ):
        if key not in present:
            verdict.problems.append(
                f"{key}: the database records this segment as sealed, but the store has no such "
                f"segment ({store.uri})"
            )
            continue
        stored = store.versions(key)
        if stored and stored[0].sha256 and stored[0].sha256 != sha256:
            verdict.problems.append(
                f"{key}: its SHA-256 in the store is {stored[0].sha256}, not the {sha256} the "
                "database recorded when it was sealed"
            )


def _check_seal(
    store: Store,
    key: str,
    data: bytes,
    check: SegmentCheck,
    trust: Trust | None,
    verdict: CustodyVerdict,
    required: bool,
) -> None:
    """The segment's signature and timestamps, from its seal file, if it has one."""
    from archive.trust.signing import Trust, verify_signed_data
    from archive.trust.timestamps import check_token

    seal_key = key + SEAL_SUFFIX
    if store.stat(seal_key) is None:
        what = f"{key}: not signed or timestamped (no {seal_key.rsplit('/', 1)[1]})"
        if required:
            verdict.problems.append(what + ", though segments are signed here")
        else:
            verdict.notes.append(what)
        return
    try:
        seal = json.loads(read_first_version(store, seal_key, verdict.problems))
    except (AttestError, ValueError) as exc:
        verdict.problems.append(f"{seal_key}: cannot be read: {exc}")
        return
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if not isinstance(seal, dict) or seal.get("hash") != digest:
        verdict.problems.append(
            f"{key}: its seal signs {seal.get('hash') if isinstance(seal, dict) else '?'}, but "
            f"the segment hashes to {digest}: the segment was changed after it was sealed"
        )
        return
    anchors = trust or Trust()
    if "signedData" in seal:
        signed = verify_signed_data(
            seal["signedData"],
            package_hash=digest,
            package_created=seal.get("created"),
            trust=anchors,
        )
        check.signer, check.trusted = signed.signer or "?", signed.trusted
        if not signed.valid:
            verdict.problems.extend(f"{key}: signature: {p}" for p in signed.problems)
        elif not signed.trusted and trust is not None and not trust.empty:
            verdict.problems.append(
                f"{key}: signed by {signed.signer}, which the trust anchors do not trust"
            )
    for entry in seal.get("timestamps", []):
        token = check_token(entry, data, anchors)
        if token.valid:
            check.timestamps.append(f"{token.tsa} {token.time.isoformat() if token.time else '?'}")
        else:
            verdict.problems.extend(f"{key}: timestamp {token.tsa}: {p}" for p in token.problems)
    for error in seal.get("timestamp_errors", []):
        verdict.notes.append(f"{key}: not timestamped by one authority when sealed: {error}")


def write_seal(store: Store, key: str, seal: dict[str, Any]) -> str:
    """Store a segment's seal file (immutable, like the segment); returns its key."""
    import tempfile
    from pathlib import Path

    from archive.store import file_sha256

    seal_key = key + SEAL_SUFFIX
    with tempfile.TemporaryDirectory(prefix="attest-seal-") as tmp:
        path = Path(tmp) / "seal.json"
        path.write_text(json.dumps(seal, indent=1, sort_keys=True), encoding="utf-8")
        store.put_file(seal_key, path, file_sha256(path))
    return seal_key


def _ranges(seqs: list[int]) -> str:
    """1, 2, 3, 7 -> "1-3, 7"."""
    parts: list[str] = []
    start = prev = seqs[0]
    for seq in seqs[1:]:
        if seq != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else str(start))
            start = seq
        prev = seq
    parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ", ".join(parts)
