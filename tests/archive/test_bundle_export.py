"""Evidence bundles (archive/evidence/bundle.py): ``export_bundle`` called in-process.

The archive is the small stored one of support/storedarchive (two WARCs in a file store,
indexed into SQLite, each logged in custody); the case (support/bundles) links a page captured
in both WARCs, a post whose later capture is a revisit of the first, and a page never captured.
The bundle is signed with an organisation key and stamped by a local ``openssl ts`` authority;
its report is printed by Chromium. What the WACZ holds is read back with zipfile and
attest's own WARC reader, and compared with the store byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.bundles import ACTOR, NEVER_URL, SigningSetup, export, signing_setup, spill_case
from support.indexwarcs import GZIP_URL, POST_URL, WarcBuilder
from support.storedarchive import (
    LATER_KEY,
    SAMPLE_KEY,
    StoredArchive,
    store_and_index,
    stored_archive,
)

from archive.errors import ConfigError, IntegrityError
from archive.evidence.bundle import (
    _COPY_CHUNK,
    BUNDLE_WARC,
    WACZ_VERSION,
    BundleReport,
    _first_member,
    _pieces,
    export_bundle,
)
from archive.evidence.cases import Case, load_case
from archive.index.cdxj import IndexRow, read_warc_index
from archive.store import FileStore, file_sha256
from archive.trust.signing import fingerprint, load_signer, verify_signed_data
from archive.trust.timestamps import check_token
from archive.warc.read import RecordInfo, verify_warc

WARC_MEMBER = f"archive/{BUNDLE_WARC}"


@dataclass
class Exported:
    archive: StoredArchive
    case: Case
    signing: SigningSetup
    report: BundleReport
    path: Path
    tsa_requests: int  # answered by the TSA for this export


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    base = tmp_path_factory.mktemp("bundle")
    archive = stored_archive(base)
    case = spill_case(base / "cases")
    (base / "out").mkdir()
    with signing_setup(base / "signing") as signing:
        before = signing.tsa.requests
        report = export(archive, case, base / "out" / "spill.wacz", signing)
        yield Exported(archive, case, signing, report, report.path, signing.tsa.requests - before)
    archive.db.close()


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def bundle_warc(bundle: Path, tmp_path: Path) -> Path:
    path = tmp_path / BUNDLE_WARC
    path.write_bytes(members(bundle)[WARC_MEMBER])
    return path


def records_by_id(path: Path) -> dict[str, RecordInfo]:
    verdict = verify_warc(path)
    assert verdict.ok, verdict.problems
    return {r.record_id or "": r for r in verdict.records}


def stored_records(archive: StoredArchive) -> dict[str, tuple[str, RecordInfo]]:
    """Every record of the archive's WARCs: (store key, where it lies)."""
    return {
        rid: (key, info)
        for key in archive.keys
        for rid, info in records_by_id(archive.path(key)).items()
    }


def request_of(archive: StoredArchive, key: str, response_id: str) -> str:
    (rid,) = [
        i.record_id
        for i in verify_warc(archive.path(key)).records
        if i.record_type == "request" and i.header("WARC-Concurrent-To") == response_id
    ]
    assert rid is not None
    return rid


# --- what the WACZ holds -------------------------------------------------------------------


def test_the_bundle_copies_exactly_the_records_the_claims_need_byte_for_byte(
    exported: Exported, tmp_path: Path
) -> None:
    archive, sample = exported.archive, exported.archive.sample
    copied = records_by_id(bundle_warc(exported.path, tmp_path))
    stored = stored_records(archive)
    needed = {
        # C1: the harbour page in both WARCs, each with its request
        sample.html_gzip.response.record_id,
        sample.html_gzip.request.record_id,
        archive.fresh_id,
        request_of(archive, LATER_KEY, archive.fresh_id),
        # C2: the post with its request, page record and rendered text; its later revisit
        sample.post.response.record_id,
        sample.post.request.record_id,
        sample.metadata.record_id,
        sample.text.record_id,
        archive.revisit_id,
    }
    warcinfos = {rid for rid, info in copied.items() if info.record_type == "warcinfo"}
    assert set(copied) == needed | warcinfos
    assert len(warcinfos) == 2  # one per WARC the records come from
    # Nothing else: the br page, the image and the 404 are no claim's evidence.
    for left_out in (sample.html_br, sample.image, sample.missing):
        assert left_out.response.record_id not in copied
    data = members(exported.path)[WARC_MEMBER]
    for rid, info in copied.items():
        key, where = stored[rid]
        original = archive.path(key).read_bytes()[where.offset : where.offset + where.length]
        assert data[info.offset : info.offset + info.length] == original, rid
    # Each WARC's warcinfo comes first, in key order, then the records in store order.
    order = [stored[rid] for rid in sorted(copied, key=lambda r: copied[r].offset)]
    assert [key for key, info in order[:2]] == [SAMPLE_KEY, LATER_KEY]
    assert all(info.record_type == "warcinfo" for _, info in order[:2])
    rest = [(key, info.offset) for key, info in order[2:]]
    assert rest == sorted(rest)


def test_the_report_says_what_was_written(exported: Exported) -> None:
    report, path = exported.report, exported.path
    assert report.path == path
    assert report.sha256 == file_sha256(path)
    assert report.claims == ["C1", "C2", "C3"]
    assert report.records == 11  # nine records and two warcinfo records
    assert report.warc_bytes == len(members(path)[WARC_MEMBER])
    assert report.gaps == [f"C3: exact {NEVER_URL}: no capture"]
    assert not list(path.parent.glob(".*.part")), "the partial file was renamed into place"


def test_every_file_is_listed_with_its_hash_and_the_warc_is_stored_uncompressed(
    exported: Exported,
) -> None:
    files = members(exported.path)
    package = json.loads(files["datapackage.json"])
    listed = {r["path"]: r for r in package["resources"]}
    assert set(listed) == set(files) - {"datapackage.json", "datapackage-digest.json"}
    assert set(listed) == {
        WARC_MEMBER,
        "indexes/index.cdxj",
        "pages/pages.jsonl",
        "evidence/manifest.json",
        "evidence/custody.jsonl",
        "evidence/verify.sh",
        "evidence/report.html",
        "evidence/report.pdf",
    }
    for name, resource in listed.items():
        assert resource["hash"] == "sha256:" + hashlib.sha256(files[name]).hexdigest(), name
        assert resource["bytes"] == len(files[name]), name
        assert resource["name"] == Path(name).name
    assert (package["profile"], package["wacz_version"]) == ("data-package", WACZ_VERSION)
    assert package["title"] == "The spill"
    assert package["created"] == package["modified"]
    # One resource per line, so that shell steps can find a file's stated hash.
    for name in listed:
        (line,) = [x for x in files["datapackage.json"].decode().splitlines() if f'"{name}"' in x]
        assert listed[name]["hash"] in line
    assert files["evidence/report.pdf"].startswith(b"%PDF-")
    with zipfile.ZipFile(exported.path) as archive:
        assert archive.getinfo(WARC_MEMBER).compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("evidence/manifest.json").compress_type == zipfile.ZIP_DEFLATED


def test_the_index_is_the_bundle_warcs_own_and_the_pages_are_the_claims_captures(
    exported: Exported, tmp_path: Path
) -> None:
    files = members(exported.path)
    warc = bundle_warc(exported.path, tmp_path)
    # Made from the rows while copying: what reading the copied WARC back gives.
    assert files["indexes/index.cdxj"] == read_warc_index(warc, BUNDLE_WARC, texts=False).cdxj()
    lines = files["indexes/index.cdxj"].decode().splitlines()
    assert {json.loads(line.split(" ", 2)[2])["url"] for line in lines} == {
        GZIP_URL,
        POST_URL,
        f"urn:text:{POST_URL}",
    }
    header, *pages = [json.loads(x) for x in files["pages/pages.jsonl"].splitlines()]
    assert header == {"format": "json-pages-1.0", "id": "pages", "title": "The spill"}
    sample = exported.archive.sample
    assert [(p["id"], p["url"], p["title"]) for p in pages] == [
        (sample.html_gzip.response.record_id[10:-1], GZIP_URL, f"C1: {GZIP_URL}"),
        (exported.archive.fresh_id[10:-1], GZIP_URL, f"C1: {GZIP_URL}"),
        (sample.post.response.record_id[10:-1], POST_URL, f"C2: {POST_URL}"),
    ]  # responses only, each once: the revisit is no page of its own


def test_the_manifest_lists_each_claims_captures_gaps_and_record_roles(
    exported: Exported,
) -> None:
    manifest = json.loads(members(exported.path)["evidence/manifest.json"])
    sample = exported.archive.sample
    assert (manifest["case"], manifest["title"]) == ("spill", "The spill")
    assert manifest["summary"] == {"claims": 3, "covered": 2, "with_gaps": 1, "gap_links": 1}
    assert manifest["gaps"] == [{"claim": "C3", "gap": f"exact {NEVER_URL}: no capture"}]
    claims = {c["id"]: c for c in manifest["claims"]}
    assert [c["record_id"] for c in claims["C1"]["captures"]] == [
        sample.html_gzip.response.record_id,
        exported.archive.fresh_id,
    ]
    (post,) = [c for c in claims["C2"]["captures"] if c["record_type"] == "response"]
    assert post["record_id"] == sample.post.response.record_id
    assert post["block_sha256"] == sample.post.response.block_digest
    assert post["payload_sha256"] == sample.post.response.payload_digest
    assert post["post"] == {"platform": "mastodon", "account": "alice", "post_id": "42"}
    assert {r["record_id"] for r in post["linked_records"]} == {
        sample.post.request.record_id,
        sample.metadata.record_id,
        sample.text.record_id,
    }
    assert (claims["C3"]["covered"], claims["C3"]["captures"]) == (False, [])
    roles = {r["record_id"]: r["role"] for r in manifest["records"]}
    assert roles[sample.metadata.record_id] == "metadata"
    assert roles[sample.text.record_id] == "derivative"
    assert roles[exported.archive.revisit_id] == "original"


def test_the_digest_is_signed_by_the_key_and_stamped_by_each_authority(
    exported: Exported,
) -> None:
    files = members(exported.path)
    doc = json.loads(files["datapackage-digest.json"])
    package_hash = "sha256:" + hashlib.sha256(files["datapackage.json"]).hexdigest()
    assert (doc["path"], doc["hash"]) == ("datapackage.json", package_hash)
    created = json.loads(files["datapackage.json"])["created"]
    check = verify_signed_data(
        doc["signedData"],
        package_hash=package_hash,
        package_created=created,
        trust=exported.signing.trust,
    )
    assert (check.valid, check.trusted, check.problems) == (True, True, [])
    assert check.signer == f"key {fingerprint(exported.signing.signer.public_der())}"
    (token,) = doc["timestamps"]
    assert token["tsa"] == exported.signing.tsa.url
    stamp = check_token(token, files["datapackage.json"], exported.signing.trust)
    assert (stamp.valid, stamp.trusted, stamp.problems) == (True, True, [])
    assert exported.tsa_requests == 1


def test_custody_travels_with_the_bundle_and_the_export_is_logged(exported: Exported) -> None:
    archive = exported.archive
    excerpt = [json.loads(x) for x in members(exported.path)["evidence/custody.jsonl"].splitlines()]
    warcs = {archive.store.object_uri(k) for k in archive.keys}
    assert [(e["action"], e["object"]) for e in excerpt] == [
        (action, archive.store.object_uri(key))
        for key in (SAMPLE_KEY, LATER_KEY)
        for action in ("capture", "index")
    ]
    own = {e.seq: e for e in archive.custody.entries()}
    for entry in excerpt:
        assert entry["hash"] == own[entry["seq"]].hash  # as logged, not rewritten
    (logged,) = [e for e in archive.custody.entries() if e.action == "export"]
    assert logged.object == "spill:C1,C2,C3"
    assert logged.actor == ACTOR
    assert logged.details == {
        "bundle": "spill.wacz",
        "sha256": exported.report.sha256,
        "records": 11,
        "claims": ["C1", "C2", "C3"],
        "gaps": ["C3"],
        "signer": f"key {fingerprint(exported.signing.signer.public_der())}",
        "timestamps": [exported.signing.tsa.url],
    }
    assert warcs == {e["object"] for e in excerpt}


def test_only_the_claims_asked_for_are_exported(exported: Exported, tmp_path: Path) -> None:
    report = export(exported.archive, exported.case, tmp_path / "c2.wacz", None, claim_ids=["C2"])
    assert (report.claims, report.gaps) == (["C2"], [])
    manifest = json.loads(members(report.path)["evidence/manifest.json"])
    assert [c["id"] for c in manifest["claims"]] == ["C2"]
    copied = records_by_id(bundle_warc(report.path, tmp_path))
    sample = exported.archive.sample
    assert sample.html_gzip.response.record_id not in copied
    assert exported.archive.fresh_id not in copied
    assert {sample.post.response.record_id, exported.archive.revisit_id} <= set(copied)
    # Unsigned: no signature and no token, and the log says so.
    doc = json.loads(members(report.path)["datapackage-digest.json"])
    assert "signedData" not in doc
    assert doc["timestamps"] == []
    logged = [e for e in exported.archive.custody.entries() if e.action == "export"][-1]
    assert (logged.object, logged.details["signer"], logged.details["timestamps"]) == (
        "spill:C2",
        None,
        [],
    )


# --- what is refused -------------------------------------------------------------------------


def test_an_existing_file_is_never_overwritten(exported: Exported, tmp_path: Path) -> None:
    output = tmp_path / "taken.wacz"
    output.write_bytes(b"keep me")
    with pytest.raises(ConfigError, match="exists; bundles are never overwritten"):
        export(exported.archive, exported.case, output, None)
    assert output.read_bytes() == b"keep me"


def test_a_partial_bundle_in_the_way_is_named_and_left_alone(
    exported: Exported, tmp_path: Path
) -> None:
    partial = tmp_path / ".out.wacz.part"
    partial.write_bytes(b"someone else's")
    with pytest.raises(ConfigError, match="a partial bundle is in the way; remove it"):
        export(exported.archive, exported.case, tmp_path / "out.wacz", None)
    assert partial.read_bytes() == b"someone else's"
    assert not (tmp_path / "out.wacz").exists()


def test_an_output_folder_that_does_not_exist_is_named(exported: Exported, tmp_path: Path) -> None:
    output = tmp_path / "no-such-folder" / "out.wacz"
    with pytest.raises(ConfigError, match=re.escape(str(output.parent))):
        export(exported.archive, exported.case, output, None)


def test_claims_without_any_capture_export_nothing(exported: Exported, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no capture for the selected claims \(C3\)"):
        export(exported.archive, exported.case, tmp_path / "gap.wacz", None, claim_ids=["C3"])
    assert list(tmp_path.iterdir()) == []


def test_a_domain_signature_without_a_timestamp_authority_leaves_no_bundle(
    exported: Exported, tmp_path: Path
) -> None:
    pki = exported.signing.pki
    domain = load_signer(pki.domain_key, pki.domain_chain)
    with pytest.raises(ConfigError, match="a domain-certificate signature needs a timestamp"):
        export_bundle(
            exported.archive.db,
            exported.archive.store,
            exported.case,
            tmp_path / "domain.wacz",
            signer=domain,
            tsas=[],
        )
    assert list(tmp_path.iterdir()) == []


# --- every record copied is checked ----------------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[StoredArchive, Case]]:
    archive = stored_archive(tmp_path)
    yield archive, spill_case(tmp_path / "cases")
    archive.db.close()


def change_stored(archive: StoredArchive, key: str, at: int) -> None:
    """Flip one bit of the stored WARC (a new file: the store's is a link to the spool's)."""
    path = archive.path(key)
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.unlink()
    path.write_bytes(bytes(data))


def assert_nothing_written(archive: StoredArchive, output: Path) -> None:
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}*")), "no partial bundle is left"
    assert not [e for e in archive.custody.entries() if e.action == "export"]


def test_a_record_changed_in_the_store_fails_the_export_and_leaves_no_bundle(
    fresh: tuple[StoredArchive, Case], tmp_path: Path
) -> None:
    archive, case = fresh
    response = archive.sample.html_gzip.response
    where = records_by_id(archive.path(SAMPLE_KEY))[response.record_id]
    change_stored(archive, SAMPLE_KEY, where.offset + where.length // 2)
    output = tmp_path / "out" / "bad.wacz"
    output.parent.mkdir()
    with pytest.raises(IntegrityError) as raised:
        export(archive, case, output, None)
    assert f"{SAMPLE_KEY} at offset {where.offset} (record {response.record_id})" in str(
        raised.value
    )
    assert_nothing_written(archive, output)
    # The other claims' records are sound: a bundle without the changed page is made.
    report = export(archive, case, output, None, claim_ids=["C2"])
    assert report.path.exists()


def test_a_changed_warcinfo_record_fails_the_export(
    fresh: tuple[StoredArchive, Case], tmp_path: Path
) -> None:
    archive, case = fresh
    first = verify_warc(archive.path(LATER_KEY)).records[0]
    assert first.record_type == "warcinfo"
    change_stored(archive, LATER_KEY, first.offset + first.length // 2)
    output = tmp_path / "bad.wacz"
    with pytest.raises(IntegrityError, match=re.escape(LATER_KEY)):
        export(archive, case, output, None)
    assert_nothing_written(archive, output)


# --- a record larger than a piece of the copy ------------------------------------------------

BIG_URL = "http://example.com/files/dataset.bin"


@pytest.fixture
def with_big_record(
    fresh: tuple[StoredArchive, Case], tmp_path: Path
) -> tuple[StoredArchive, Case, str]:
    """A third WARC whose one page is larger than the copy reads at once."""
    archive, _ = fresh
    builder = WarcBuilder(tmp_path / "big-00000.warc.gz", "big-00000.warc.gz")
    body = random.Random(15).randbytes(_COPY_CHUNK + 300_000)  # incompressible
    big = builder.exchange(BIG_URL, body, content_type="application/octet-stream")
    key = "warcs/src/2026/11/30/big-00000.warc.gz"
    store_and_index(archive.store, archive.db, archive.custody, key, builder.close())
    path = tmp_path / "cases" / "big.yaml"
    path.write_text(
        json.dumps(
            {
                "id": "big",
                "title": "A big file",
                "claims": [
                    {
                        "id": "B1",
                        "text": "The data set.",
                        "source": "files",
                        "evidence": [{"url": BIG_URL}],
                    }
                ],
            }
        )
    )
    return archive, load_case(path), big.response.record_id


def test_a_record_larger_than_a_piece_is_copied_whole_and_checked(
    with_big_record: tuple[StoredArchive, Case, str], tmp_path: Path
) -> None:
    archive, case, big_id = with_big_record
    key = "warcs/src/2026/11/30/big-00000.warc.gz"
    where = records_by_id(archive.path(key))[big_id]
    assert where.length > _COPY_CHUNK
    report = export(archive, case, tmp_path / "big.wacz", None)
    copied = records_by_id(bundle_warc(report.path, tmp_path))
    data = members(report.path)[WARC_MEMBER]
    stored = archive.path(key).read_bytes()
    info = copied[big_id]
    assert (
        data[info.offset : info.offset + info.length]
        == stored[where.offset : where.offset + where.length]
    )

    # One changed bit deep inside it (past the first piece) fails the export.
    change_stored(archive, key, where.offset + _COPY_CHUNK + 1000)
    output = tmp_path / "big-bad.wacz"
    with pytest.raises(IntegrityError, match=re.escape(f"record {big_id}")):
        export(archive, case, output, None)
    assert not output.exists()
    assert not list(tmp_path.glob(".big-bad.wacz*"))


# --- the copy's pieces and the first record --------------------------------------------------


def row(key: str, offset: int, length: int) -> IndexRow:
    return IndexRow(
        surt="com,example)/",
        url="http://example.com/",
        ts=0,
        status=200,
        mime="text/html",
        digest=None,
        record_type="response",
        record_id=f"<urn:x:{key}:{offset}>",
        warc_key=key,
        offset=offset,
        length=length,
    )


def pieces(rows: list[IndexRow]) -> list[tuple[str, int, int, list[int]]]:
    return [
        (key, at, size, [r.offset for r in starting]) for key, at, size, starting in _pieces(rows)
    ]


def test_records_that_follow_each_other_in_a_warc_are_read_as_one_piece() -> None:
    rows = [row("a", 0, 100), row("a", 100, 50), row("a", 150, 10)]
    assert pieces(rows) == [("a", 0, 160, [0, 100, 150])]


def test_a_gap_or_another_warc_starts_a_new_piece() -> None:
    rows = [row("a", 0, 100), row("a", 300, 50), row("b", 350, 10)]
    assert pieces(rows) == [("a", 0, 100, [0]), ("a", 300, 50, [300]), ("b", 350, 10, [350])]


def test_a_piece_never_grows_past_the_copy_chunk() -> None:
    half = _COPY_CHUNK // 2
    rows = [row("a", 0, half), row("a", half, half), row("a", 2 * half, 10)]
    assert pieces(rows) == [("a", 0, 2 * half, [0, half]), ("a", 2 * half, 10, [2 * half])]


def test_a_record_larger_than_the_chunk_is_read_in_chunks_named_once() -> None:
    rows = [row("a", 7, 2 * _COPY_CHUNK + 5), row("a", 7 + 2 * _COPY_CHUNK + 5, 20)]
    assert pieces(rows) == [
        ("a", 7, _COPY_CHUNK, [7]),
        ("a", 7 + _COPY_CHUNK, _COPY_CHUNK, []),
        ("a", 7 + 2 * _COPY_CHUNK, 5, []),
        ("a", 7 + 2 * _COPY_CHUNK + 5, 20, [7 + 2 * _COPY_CHUNK + 5]),
    ]
    assert list(_pieces([])) == []


def test_the_first_member_is_the_warcinfo_record_as_stored(exported: Exported) -> None:
    archive = exported.archive
    for key in archive.keys:
        first = verify_warc(archive.path(key)).records[0]
        stored = archive.path(key).read_bytes()
        assert _first_member(archive.store, key) == stored[: first.length]
        assert first.record_type == "warcinfo"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"WARC/1.1\r\nWARC-Type: warcinfo\r\n\r\n", "the first record is not a gzip member"),
        (gzip.compress(random.Random(3).randbytes(5000))[:2500], "the first record ends early"),
    ],
    ids=["plain", "truncated"],
)
def test_a_first_record_that_is_no_whole_gzip_member_is_refused(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    store = FileStore(tmp_path / "store")
    source = tmp_path / "odd.warc.gz"
    source.write_bytes(data)
    store.put_file("warcs/odd.warc.gz", source, file_sha256(source))
    with pytest.raises(IntegrityError, match=f"warcs/odd.warc.gz: {problem}"):
        _first_member(store, "warcs/odd.warc.gz")
