"""Case files: validated with errors naming file, claim and field; claims resolved to captures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.indexwarcs import GZIP_URL, POST_URL, START, sample_warc

from archive.cases import find_case, link_capture, load_case, parse_case, resolve
from archive.errors import CaseError, ConfigError, NotFound
from archive.indexdb import IndexDB
from archive.indexer import index_keys, rebuild
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
                           "selector": {"quote": "smelled diesel"}, "annotator": "ana"}]},
            {"id": "C2", "text": "A statement", "source": "a social post",
             "evidence": [{"capture": post_row.record_id[10:-1]}]},
            {"id": "C3", "text": "The source's pages", "source": "registry",
             "evidence": [{"query": {"source": "src", "from": day, "to": day}}]},
            {"id": "C4", "text": "Not captured yet", "source": "a rumour",
             "evidence": [{"url": "http://example.com/never.html"}]},
            {"id": "C5", "text": "Out of range", "source": "x",
             "evidence": [{"url": GZIP_URL, "from": "2030", "to": "2031"},
                          {"url": GZIP_URL, "selector": {"quote": "not on the page"}}]},
        ],
    )  # fmt: skip
    case = find_case("demo-case", [path.parent])
    results = {c.id: resolve(db, case, c) for c in case.claims}
    assert [f.row.url for f in results["C1"].found] == [GZIP_URL]
    assert results["C1"].found[0].quote_found is True
    assert [f.row.record_id for f in results["C2"].found] == [post_row.record_id]
    assert {f.row.url for f in results["C3"].found} >= {GZIP_URL}
    assert all(f.row.mime == "text/html" for f in results["C3"].found)
    assert results["C4"].is_gap
    assert results["C4"].unmatched == ["exact http://example.com/never.html"]
    assert results["C5"].found[0].quote_found is False
    assert results["C5"].unmatched == [f"exact {GZIP_URL}"]


def test_run_time_links_count_and_survive_a_rebuild(
    indexed: tuple[IndexDB, FileStore], tmp_path: Path
) -> None:
    db, store = indexed
    path = write_case(tmp_path, [{"id": "C1", "text": "t", "source": "s"}])
    case = load_case(path)
    assert resolve(db, case, case.claims[0]).is_gap
    page = next(
        r
        for r in db.select(low="", high="\U0010ffff", exact=False, record_types=("response",))
        if r.url == GZIP_URL
    )
    row, new = link_capture(db, case, "C1", page.record_id[10:-1], annotator="ana")
    assert new
    assert row.record_id == page.record_id
    assert link_capture(db, case, "C1", page.record_id, annotator="ana")[1] is False
    found = resolve(db, case, case.claims[0]).found
    assert [(f.row.record_id, f.via) for f in found] == [(page.record_id, "linked by ana")]
    rebuild(db, store)
    assert [f.row.record_id for f in resolve(db, case, case.claims[0]).found] == [page.record_id]
    with pytest.raises(CaseError, match="no such claim"):
        link_capture(db, case, "C9", page.record_id, annotator="ana")
    with pytest.raises(NotFound):
        link_capture(db, case, "C1", "0" * 8 + "-0000-4000-8000-" + "0" * 12, annotator="ana")
    with pytest.raises(ConfigError, match="not a capture id"):
        link_capture(db, case, "C1", "../../etc/passwd", annotator="ana")
