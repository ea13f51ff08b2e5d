"""Case files: validated with errors naming file, claim and field; claims resolved to captures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.indexwarcs import (
    BR_URL,
    GZIP_URL,
    IMAGE_URL,
    POST_URL,
    START,
    WarcBuilder,
    sample_warc,
)  # fmt: skip

from archive.errors import CaseError, ConfigError, IndexDatabaseError, NotFound
from archive.evidence.cases import (
    case_by_id,
    case_folders,
    find_case,
    link_capture,
    load_case,
    parse_case,
    resolve,
    run_time_links,
    unlink_capture,
)  # fmt: skip
from archive.index.cdxj import IndexRow
from archive.index.db import IndexDB
from archive.index.pagemeta import PageMetadata
from archive.ingest.indexer import index_keys, rebuild
from archive.store import FileStore, file_sha256

KEY = "warcs/src/2026/11/28/sample-00000.warc.gz"


def case_doc(**claim: Any) -> dict[str, Any]:
    base = {"id": "C1", "text": "A claim.", "source": "An article"}
    base.update(claim)
    return {"id": "demo-case", "title": "Demo", "claims": [base]}


@pytest.mark.parametrize(
    ("doc", "claim", "field", "words"),
    [
        ({"id": "Bad Id", "title": "x", "claims": [{"id": "C1", "text": "t", "source": "s"}]},
         None, "id", "does not match"),
        ({"id": "x", "title": "x", "claims": []}, None, "claims", "should be non-empty"),
        (case_doc(text=None), "C1", "text", "is not of type"),
        ({"id": "x", "title": "x", "claims": [{"id": "C1", "source": "s"}]}, "C1", "text",
         "required"),
        (case_doc(evidence=[{"url": "ftp://x/"}]), "C1", "evidence[0].url", "does not match"),
        (case_doc(evidence=[{"url": "http://x/", "capture": "0" * 36}]), "C1", "evidence[0]",
         "exactly one of url"),
        (case_doc(evidence=[{"capture": "0" * 36, "from": "2026"}]), "C1", "evidence[0]",
         "exactly one of url"),
        (case_doc(evidence=[{"query": {"from": "2026"}}]), "C1", "evidence[0].query.source",
         "required"),
        (case_doc(evidence=[{"url": "http://x/", "from": "2026-13-01"}]), "C1",
         "evidence[0].from", "2026-13-01"),
        (case_doc(evidence=[{"url": "http://x/", "from": "2026-06", "to": "2026-05"}]), "C1",
         "evidence[0].from", "after"),
        (case_doc(evidence=[{"url": "http://x/", "colour": "red"}]), "C1", "evidence[0].colour",
         "colour"),
    ],
)  # fmt: skip
def test_errors_name_the_file_the_claim_and_the_field(
    doc: dict[str, Any], claim: str | None, field: str, words: str
) -> None:
    with pytest.raises(CaseError) as caught:
        parse_case(doc, "cases/demo.yaml")
    error = caught.value
    assert error.path == "cases/demo.yaml"
    assert error.claim == claim
    assert error.field == field
    assert words in str(error)


def test_duplicate_claims_and_unreadable_files(tmp_path: Path) -> None:
    doc = case_doc()
    doc["claims"].append(dict(doc["claims"][0]))
    with pytest.raises(CaseError, match="claim 'C1', field 'id': duplicate claim id"):
        parse_case(doc, "x.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed")
    with pytest.raises(CaseError, match=r"broken\.yaml: not valid YAML"):
        load_case(broken)
    with pytest.raises(ConfigError, match="no such case file"):
        find_case(str(tmp_path / "absent.yaml"), [])


@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[tuple[IndexDB, FileStore]]:
    sample = sample_warc(tmp_path)
    store = FileStore(tmp_path / "store")
    store.put_file(KEY, sample.path, file_sha256(sample.path))
    db = IndexDB(str(tmp_path / "index.sqlite"))
    index_keys(db, store, [KEY])
    yield db, store
    db.close()


def write_case(directory: Path, claims: list[dict[str, Any]]) -> Path:
    path = directory / "cases" / "demo.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"id": "demo-case", "title": "Demo", "claims": claims}))
    return path


def test_claims_resolve_to_captures_and_gaps(
    indexed: tuple[IndexDB, FileStore], tmp_path: Path
) -> None:
    db, _ = indexed
    day = START.strftime("%Y-%m-%d")
    post = db.select(low="", high="\U0010ffff", exact=False, record_types=("response",))
    post_row = next(r for r in post if r.url == POST_URL)
    path = write_case(
        tmp_path,
        [
            {"id": "C1", "text": "Oil reached the harbour", "source": "a news article",
             "evidence": [{"url": GZIP_URL, "from": day, "to": day,
                           "selector": {"quote": "smelled  DIESEL"}, "annotator": "ana"}]},
            {"id": "C2", "text": "A statement", "source": "a social post",
             "evidence": [{"capture": post_row.record_id[10:-1],
                           "selector": {"quote": "statement on the referendum results"}}]},
            {"id": "C3", "text": "The source's pages", "source": "registry",
             "evidence": [{"query": {"source": "src", "from": day, "to": day}}]},
            {"id": "C4", "text": "Not captured yet", "source": "a rumour",
             "evidence": [{"url": "http://example.com/never.html"}]},
            {"id": "C5", "text": "Out of range", "source": "x",
             "evidence": [{"url": GZIP_URL, "from": "2030", "to": "2031"},
                          {"url": GZIP_URL, "selector": {"quote": "not on the page"}},
                          {"url": GZIP_URL}]},
            {"id": "C6", "text": "Nothing linked", "source": "x"},
        ],
    )  # fmt: skip
    case = find_case("demo-case", [path.parent])
    results = {c.id: resolve(db, case, c) for c in case.claims}
    assert [f.row.url for f in results["C1"].found] == [GZIP_URL]
    quote = results["C1"].found[0].quotes[0]
    # Where it was found: which capture, which text, the words as shown and around them.
    assert (quote.found, quote.capture, quote.text) == (True, results["C1"].found[0].row.record_id,
                                                       "html")  # fmt: skip
    assert quote.text_record == quote.capture
    assert quote.shown == "smelled diesel"
    assert quote.before is not None
    assert quote.before.endswith("harbour Residents")
    assert quote.after == "on Thursday."
    c2 = results["C2"].found[0]
    assert c2.row.record_id == post_row.record_id
    assert (c2.quotes[0].text, c2.quotes[0].shown) == ("rendered", "Statement on the referendum results")
    assert c2.quotes[0].text_record != post_row.record_id  # the urn:text: record
    assert {f.row.url for f in results["C3"].found} >= {GZIP_URL}
    assert all(f.row.mime == "text/html" for f in results["C3"].found)
    assert [r.covered for r in results.values()] == [True, True, True, False, False, False]
    assert results["C4"].found == []
    assert results["C4"].gaps == ["exact http://example.com/never.html: no capture"]
    c5 = results["C5"]
    assert [link.status for link in c5.links] == ["gap", "gap", "found"]
    assert c5.gaps == [
        f"exact {GZIP_URL}: no capture from 2030-01-01T00:00:00.000000Z to "
        "2031-12-31T23:59:59.999999Z",
        f"exact {GZIP_URL}: the quote is not shown by its 1 capture(s)",
    ]
    # The capture the third link found is evidence; the quote it does not show is flagged.
    assert [(f.row.url, f.quote_found) for f in c5.found] == [(GZIP_URL, False)]
    assert results["C6"].gaps == ["no evidence is linked to this claim"]
    assert sum(len(r.gap_links) for r in results.values()) == 3


def rows_by_url(db: IndexDB) -> dict[tuple[str, str], IndexRow]:
    everything = db.select(low="", high="\U0010ffff", exact=False)
    return {(r.record_type, r.url): r for r in everything}


def test_run_time_links_count_and_survive_a_rebuild(
    indexed: tuple[IndexDB, FileStore], tmp_path: Path
) -> None:
    db, store = indexed
    path = write_case(tmp_path, [{"id": "C1", "text": "t", "source": "s"}])
    case = load_case(path)
    assert not resolve(db, case, case.claims[0]).found
    page = rows_by_url(db)["response", GZIP_URL]
    row, new = link_capture(db, case, "C1", page.record_id[10:-1], annotator="ana")
    assert new
    assert row.record_id == page.record_id
    assert link_capture(db, case, "C1", page.record_id, annotator="ana")[1] is False
    found = resolve(db, case, case.claims[0])
    assert [(f.row.record_id, f.via) for f in found.found] == [
        (page.record_id, f"linked capture {page.record_id} (by ana)")
    ]
    assert found.covered
    rebuild(db, store)
    assert [f.row.record_id for f in resolve(db, case, case.claims[0]).found] == [page.record_id]
    with pytest.raises(CaseError, match="no such claim"):
        link_capture(db, case, "C9", page.record_id, annotator="ana")
    with pytest.raises(NotFound):
        link_capture(db, case, "C1", "0" * 8 + "-0000-4000-8000-" + "0" * 12, annotator="ana")
    with pytest.raises(ConfigError, match="not a capture id"):
        link_capture(db, case, "C1", "../../etc/passwd", annotator="ana")


def test_only_pages_are_linked_unless_a_reason_is_given(
    indexed: tuple[IndexDB, FileStore], tmp_path: Path
) -> None:
    db, _ = indexed
    case = load_case(write_case(tmp_path, [{"id": "C1", "text": "t", "source": "s"}]))
    rows = rows_by_url(db)
    refused = {
        "a request record, not a page": rows["request", GZIP_URL],
        f"a response of image/png ({IMAGE_URL}), not a page": rows["response", IMAGE_URL],
        "a metadata record, not a page": rows["metadata", POST_URL],
    }
    for why, row in refused.items():
        with pytest.raises(ConfigError, match="--any-record --reason") as caught:
            link_capture(db, case, "C1", row.record_id, annotator="ana")
        assert f"{row.record_id} is {why}" in str(caught.value)
    assert resolve(db, case, case.claims[0]).links == []
    # Pages: an HTML response, a browser page's derivative (its visible text).
    for row in (rows["response", GZIP_URL], rows["resource", f"urn:text:{POST_URL}"]):
        assert link_capture(db, case, "C1", row.record_id, annotator="ana")[1]
    # Anything else only with a reason, which the link keeps.
    image = rows["response", IMAGE_URL]
    with pytest.raises(ConfigError, match="needs --reason"):
        link_capture(db, case, "C1", image.record_id, annotator="ana", any_record_reason=" ")
    link_capture(db, case, "C1", image.record_id, annotator="ana",
                 any_record_reason="the logo is the claim")  # fmt: skip
    links = resolve(db, case, case.claims[0]).links
    assert [link.link.any_record_reason for link in links if link.link] == [
        None, None, "the logo is the claim"
    ]


def test_unlink_withdraws_a_link_and_keeps_its_history(
    indexed: tuple[IndexDB, FileStore], tmp_path: Path
) -> None:
    db, _ = indexed
    case = load_case(write_case(tmp_path, [
        {"id": "C1", "text": "t", "source": "s", "evidence": [{"url": BR_URL}]},
    ]))  # fmt: skip
    rows = rows_by_url(db)
    page, other = rows["response", GZIP_URL], rows["response", BR_URL]
    link_capture(db, case, "C1", page.record_id, annotator="ana", note="first look")
    link_capture(db, case, "C1", other.record_id, annotator="ana")
    with pytest.raises(ConfigError, match="give --reason"):
        unlink_capture(db, case, "C1", page.record_id, actor="bo", reason="")
    before = unlink_capture(db, case, "C1", page.record_id, actor="bo", reason="wrong page")
    assert (before.annotator, before.note, before.active) == ("ana", "first look", True)
    result = resolve(db, case, case.claims[0])
    # The withdrawn capture is no longer evidence; the other, selected by the case file's
    # link and by a run-time link, stays (once).
    assert [f.row.record_id for f in result.found] == [other.record_id]
    assert [w.record_id for w in result.withdrawn] == [page.record_id]
    withdrawn = result.withdrawn[0]
    assert (withdrawn.withdrawn_by, withdrawn.withdrawn_reason) == ("bo", "wrong page")
    assert withdrawn.withdrawn_at is not None
    assert withdrawn.withdrawn_at >= withdrawn.linked_at
    with pytest.raises(ConfigError, match="no active link"):
        unlink_capture(db, case, "C1", page.record_id, actor="bo", reason="again")
    # Linked again: a new link; the withdrawn one stays in the table.
    assert link_capture(db, case, "C1", page.record_id, annotator="cy")[1]
    history = run_time_links(db, case, "C1")
    assert [(h.record_id, h.annotator, h.active) for h in history] == [
        (page.record_id, "ana", False), (other.record_id, "ana", True),
        (page.record_id, "cy", True),
    ]  # fmt: skip
    assert db.rows("SELECT count(*) FROM claim_links")[0][0] == 3


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexDB]:
    """An index database with nothing in it, on SQLite and on PostgreSQL (which runs here:
    ``ATTEST_TEST_PG``, as tests/archive/test_index_postgres.py uses it)."""
    if request.param == "sqlite":
        with IndexDB(str(tmp_path / "index.sqlite")) as db:
            yield db
        return
    import psycopg

    admin = os.environ.get("ATTEST_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
    name = f"attest_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        with IndexDB(admin.rsplit("/", 1)[0] + f"/{name}") as db:
            yield db
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_links_of_the_first_table_form_are_kept(empty_index: IndexDB, tmp_path: Path) -> None:
    db = empty_index
    db.execute(
        "CREATE TABLE claim_links (case_id TEXT NOT NULL, claim_id TEXT NOT NULL, "
        "record_id TEXT NOT NULL, annotator TEXT NOT NULL, note TEXT, linked_at TEXT NOT NULL, "
        "PRIMARY KEY (case_id, claim_id, record_id))"
    )
    rid = "<urn:uuid:00000000-0000-4000-8000-000000000001>"
    db.execute("INSERT INTO claim_links VALUES ('demo-case', 'C1', ?, 'ana', 'n', "
               "'2026-01-01T00:00:00Z')", (rid,))  # fmt: skip
    case = load_case(write_case(tmp_path, [{"id": "C1", "text": "t", "source": "s"}]))
    links = run_time_links(db, case, "C1")
    assert [(x.record_id, x.annotator, x.note, x.active) for x in links] == [(rid, "ana", "n", True)]
    result = resolve(db, case, case.claims[0])
    assert result.gaps == [f"linked capture {rid} (by ana): not in the index"]
    # Converted, the table keeps history: a withdrawn link, and the same capture linked again.
    unlink_capture(db, case, "C1", rid, actor="bo", reason="not this one")
    db.execute("INSERT INTO claim_links (case_id, claim_id, record_id, annotator, linked_at) "
               "VALUES ('demo-case', 'C1', ?, 'cy', '2026-01-02T00:00:00Z')", (rid,))  # fmt: skip
    assert [(x.annotator, x.active) for x in run_time_links(db, case, "C1")] == [
        ("ana", False), ("cy", True)
    ]
    with pytest.raises(IndexDatabaseError):  # one active link per claim and capture, at most
        db.execute("INSERT INTO claim_links (case_id, claim_id, record_id, annotator, "
                   "linked_at) VALUES ('demo-case', 'C1', ?, 'dee', 'x')", (rid,))  # fmt: skip


def test_a_link_whose_only_captures_are_incomplete_is_a_gap(tmp_path: Path) -> None:
    """A browser page that never finished loading (outcome ``incomplete`` in its page metadata)
    is never counted as evidence; a link with nothing else is a gap that says so."""
    builder = WarcBuilder(tmp_path / "inc.warc.gz", "inc.warc.gz")
    flaky, fine = "https://social.example/@bo/1", "https://social.example/@bo/2"
    pages = [(flaky, "incomplete"), (fine, "incomplete"), (fine, "captured"), (GZIP_URL, None)]
    ids = []
    for url, outcome in pages:
        got = builder.exchange(url, b"<html><body>Loading...</body></html>")
        ids.append(got.response.record_id)
        if outcome is not None:
            builder.page_metadata(url, got.response.record_id, {"url": url, "outcome": outcome})
    store = FileStore(tmp_path / "store")
    key = "warcs/src/2026/11/28/inc.warc.gz"
    path = builder.close()
    store.put_file(key, path, file_sha256(path))
    with IndexDB(str(tmp_path / "index.sqlite")) as db:
        index_keys(db, store, [key])
        case = load_case(write_case(tmp_path, [
            {"id": "C1", "text": "t", "source": "s",
             "evidence": [{"url": flaky}, {"url": fine}, {"url": GZIP_URL}]},
        ]))  # fmt: skip
        result = resolve(db, case, case.claims[0], PageMetadata(db, store))
        assert [(link.status, link.captures, link.incomplete) for link in result.links] == [
            ("gap", [], [ids[0]]), ("found", [ids[2]], [ids[1]]), ("found", [ids[3]], []),
        ]  # fmt: skip
        assert result.gaps == [f"exact {flaky}: only incomplete captures (1): the page never "
                               "finished loading, so they do not count as evidence"]  # fmt: skip
        assert [f.row.record_id for f in result.found] == [ids[2], ids[3]]
        # The index carries each page's outcome: no record needs reading for it.
        assert resolve(db, case, case.claims[0]).gaps == result.gaps


def test_unquoted_yaml_dates_and_times_are_read_as_written(tmp_path: Path) -> None:
    """``from: 2024-05-13`` is a YAML date, ``2024-05-13T10:00:00Z`` a datetime: both count as
    the dates they spell (a date's ``to`` is its last microsecond), as their quoted forms do."""
    path = tmp_path / "dates.yaml"
    path.write_text(
        "id: dates\ntitle: Dates\nclaims:\n"
        "  - id: C1\n    text: t\n    source: s\n    evidence:\n"
        "      - {url: 'http://x/', from: 2024-05-13, to: 2024-05-14}\n"
        "      - {url: 'http://x/', from: 2024-05-13T10:00:00Z, to: 2024-05-13 12:30:00}\n"
        "      - {url: 'http://x/', from: 2024-05-13T10:00:00+02:00}\n"
        "      - {query: {source: s, from: 2024-05-13, to: 2024-05-13}}\n"
        "      - {url: 'http://x/', from: '2024-05-13', to: '2024-05-14'}\n"
    )
    links = load_case(path).claims[0].evidence
    day = 1715558400 * 1_000_000  # 2024-05-13T00:00:00Z
    hour = 3600 * 1_000_000
    assert (links[0].ts_from, links[0].ts_to) == (day, day + 48 * hour - 1)
    assert (links[1].ts_from, links[1].ts_to) == (day + 10 * hour, day + 12 * hour + hour // 2)
    assert links[2].ts_from == day + 8 * hour
    assert (links[3].ts_from, links[3].ts_to) == (day, day + 24 * hour - 1)
    assert (links[4].ts_from, links[4].ts_to) == (links[0].ts_from, links[0].ts_to)
    path.write_text(path.read_text().replace("to: 2024-05-14}", "to: 2024-05-12}", 1))
    with pytest.raises(CaseError, match=r"evidence\[0\]\.from.*after 'to'"):
        load_case(path)


def test_cases_are_found_by_id_in_the_case_folders_of_each_place(tmp_path: Path) -> None:
    here, checkout, bare = tmp_path / "here", tmp_path / "checkout", tmp_path / "bare"
    for place, case_id in ((here, "mine"), (checkout, "shared")):
        (place / "cases").mkdir(parents=True)
        (place / "cases" / f"{case_id}.yaml").write_text(
            yaml.safe_dump({"id": case_id, "title": "t", "claims": [case_doc()["claims"][0]]})
        )
    bare.mkdir()
    folders = case_folders([here, bare, checkout, here / "cases" / ".."])
    assert folders == [(here / "cases").resolve(), (checkout / "cases").resolve()]
    found = case_by_id("shared", folders)
    assert found is not None
    assert found.path == str(checkout / "cases" / "shared.yaml")
    assert case_by_id("nobody", folders) is None
    assert find_case("mine", folders).id == "mine"
    with pytest.raises(ConfigError, match="no case with id 'nobody'"):
        find_case("nobody", folders)
