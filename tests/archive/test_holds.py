"""Legal holds (archive/evidence/holds.py, ``attest hold``): which WARCs, what is recorded, what is refused.

Which WARCs a capture or a claim needs is worked out on a file store archive; the holds
themselves need S3 Object Lock, so here a file store must refuse them clearly and record
nothing, and a store stand-in that keeps holds in memory shows what the custody log gets. The
real thing, against SeaweedFS, is tests/e2e/test_holds_s3.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.cli import run_attest
from support.indexwarcs import GZIP_URL, POST_URL
from support.storedarchive import LATER_KEY, SAMPLE_KEY, StoredArchive, stored_archive

from archive.custody.log import Entry
from archive.errors import CaseError, ConfigError, HoldUnsupported, NotFound
from archive.evidence.cases import Case, load_case
from archive.evidence.holds import apply_holds, holders, plan_for_captures, plan_for_claims
from archive.store import FileStore, LegalHold

UNKNOWN = "0b5e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4"


class HoldingStore(FileStore):
    """A file store that keeps legal holds in memory, as a stand-in for S3 Object Lock."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.holds: dict[str, str] = {}

    def require_legal_holds(self) -> None:  # type: ignore[override]
        return None

    def set_legal_hold(self, key: str, *, on: bool = True, version: str | None = None) -> LegalHold:
        previous = self.holds.get(key, "OFF")
        self.holds[key] = "ON" if on else "OFF"
        return LegalHold(key, self.object_uri(key), "v1", self.holds[key], previous)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[StoredArchive]:
    stored = stored_archive(tmp_path)
    yield stored
    stored.db.close()


@pytest.fixture
def case(tmp_path: Path) -> Case:
    path = tmp_path / "cases" / "spill.yaml"
    path.parent.mkdir()
    path.write_text(
        yaml.safe_dump(
            {
                "id": "spill",
                "title": "The spill",
                "claims": [
                    {"id": "C1", "text": "The harbour page said so.", "source": "news",
                     "evidence": [{"url": GZIP_URL}]},
                    {"id": "C2", "text": "Alice posted it.", "source": "social",
                     "evidence": [{"url": POST_URL}]},
                    {"id": "C3", "text": "Denied.", "source": "statement",
                     "evidence": [{"url": "http://example.com/never.html"}]},
                ],
            }
        )
    )  # fmt: skip
    return load_case(path)


def entries(archive: StoredArchive, action: str) -> list[Entry]:
    return [e for e in archive.custody.entries() if e.action == action]


# --- which WARCs ----------------------------------------------------------------------------


def test_a_capture_holds_its_warc_and_the_warcs_of_what_it_needs(archive: StoredArchive) -> None:
    fresh = plan_for_captures(archive.db, archive.store, [archive.fresh_id])
    assert fresh.warc_keys == [LATER_KEY]
    assert fresh.details(LATER_KEY) == {"captures": [archive.fresh_id]}

    # A revisit's original lives in another WARC: both are held.
    revisit = plan_for_captures(archive.db, archive.store, [archive.revisit_id.strip("<>")[9:]])
    assert revisit.warc_keys == [SAMPLE_KEY, LATER_KEY]
    assert revisit.details(SAMPLE_KEY) == {"captures": [archive.revisit_id]}


def test_an_original_holds_only_its_own_warc_not_those_of_later_revisits(
    archive: StoredArchive,
) -> None:
    original = archive.sample.post.response.record_id  # revisited a day later, in LATER_KEY
    linked = archive.db.concurrent_with(original)
    assert archive.revisit_id not in {r.record_id for r in linked}
    assert {r.record_type for r in linked} <= {"request", "metadata", "resource"}
    plan = plan_for_captures(archive.db, archive.store, [original])
    assert plan.warc_keys == [SAMPLE_KEY]


def test_an_unknown_capture_is_named_and_nothing_is_planned(archive: StoredArchive) -> None:
    with pytest.raises(NotFound, match=f"no capture {UNKNOWN} in the index"):
        plan_for_captures(archive.db, archive.store, [archive.fresh_id, UNKNOWN])
    with pytest.raises(ConfigError, match="'not-a-uuid' is not a capture id"):
        plan_for_captures(archive.db, archive.store, ["not-a-uuid"])
    with pytest.raises(ConfigError, match="at least one capture id"):
        plan_for_captures(archive.db, archive.store, [])


def test_claims_hold_their_captures_warcs_and_name_the_gaps(
    archive: StoredArchive, case: Case
) -> None:
    plan = plan_for_claims(archive.db, archive.store, case, ["C1", "C3"])
    # C1's URL was captured in both WARCs (the harbour page, then changed a day later).
    assert plan.warc_keys == [SAMPLE_KEY, LATER_KEY]
    assert plan.gaps == ["C3"]
    assert plan.details(LATER_KEY)["case"] == "spill"
    assert plan.details(LATER_KEY)["claims"] == ["C1"]
    assert archive.fresh_id in plan.details(LATER_KEY)["captures"]

    every = plan_for_claims(archive.db, archive.store, case)
    assert set(every.details(SAMPLE_KEY)["claims"]) == {"C1", "C2"}

    with pytest.raises(ConfigError, match=r"no capture for the selected claims \(C3\)"):
        plan_for_claims(archive.db, archive.store, case, ["C3"])
    with pytest.raises(CaseError, match="no such claim"):
        plan_for_claims(archive.db, archive.store, case, ["C9"])


# --- what is recorded -------------------------------------------------------------------------


def test_each_held_warc_gets_a_hold_entry_and_holding_again_is_recorded_again(
    archive: StoredArchive,
) -> None:
    store = HoldingStore(archive.store.root)
    plan = plan_for_captures(archive.db, store, [archive.revisit_id])

    first = apply_holds(store, archive.custody, plan, actor="counsel", note="order 12/2026")
    again = apply_holds(store, archive.custody, plan, actor="counsel")
    released = apply_holds(store, archive.custody, plan, on=False, actor="counsel")

    assert [h.status for h in first + again] == ["ON"] * 4
    assert [h.previous for h in first] == ["OFF", "OFF"]
    assert [h.previous for h in again] == ["ON", "ON"]
    assert [h.status for h in released] == ["OFF", "OFF"]
    holds = entries(archive, "hold")
    assert [e.object for e in holds] == [store.object_uri(k) for k in plan.warc_keys] * 2
    assert holds[0].actor == "counsel"
    assert holds[0].details == {
        "legal_hold": "ON", "previous": "OFF", "version_id": "v1",
        "captures": [archive.revisit_id], "note": "order 12/2026",
        "sha256": archive.db.warc(plan.warc_keys[0])["sha256"],
    }  # fmt: skip
    assert [e.details["legal_hold"] for e in entries(archive, "release")] == ["OFF", "OFF"]
    assert archive.custody.verify() == []
    assert (
        archive.custody.last_sealed()
        == archive.custody.db.rows("SELECT max(seq) FROM custody_log")[0][0]
    )


def test_a_release_lifts_a_hold_only_when_nothing_else_holds_the_warc(
    archive: StoredArchive, case: Case
) -> None:
    store = HoldingStore(archive.store.root)
    custody = archive.custody
    fresh = plan_for_captures(archive.db, store, [archive.fresh_id])  # LATER_KEY
    revisit = plan_for_captures(archive.db, store, [archive.revisit_id])  # both WARCs
    claim = plan_for_claims(archive.db, store, case, ["C2"])  # both WARCs too
    assert (fresh.warc_keys, claim.warc_keys) == ([LATER_KEY], [SAMPLE_KEY, LATER_KEY])
    for plan in (fresh, revisit, claim):
        apply_holds(store, custody, plan, actor="counsel")
    assert holders(custody, store.object_uri(SAMPLE_KEY)) == {
        f"capture {archive.revisit_id}", "case spill claim C2"
    }  # fmt: skip

    # Releasing the revisit: both its WARCs are still held for something else.
    again = plan_for_captures(archive.db, store, [archive.revisit_id])
    kept = apply_holds(store, custody, again, on=False, actor="counsel")
    assert [(h.key, h.status, h.previous) for h in kept] == [
        (SAMPLE_KEY, "ON", "ON"), (LATER_KEY, "ON", "ON")
    ]  # fmt: skip
    assert again.kept == {
        SAMPLE_KEY: ["case spill claim C2"],
        LATER_KEY: [f"capture {archive.fresh_id}", "case spill claim C2"],
    }
    assert store.holds == {SAMPLE_KEY: "ON", LATER_KEY: "ON"}
    release = entries(archive, "release")[0]
    assert release.details["kept_for"] == ["case spill claim C2"]
    assert release.details["legal_hold"] == "ON"

    # Releasing the claim lifts SAMPLE_KEY's hold; the fresh capture still holds LATER_KEY.
    lifted = plan_for_claims(archive.db, store, case, ["C2"])
    apply_holds(store, custody, lifted, on=False, actor="counsel")
    assert lifted.kept == {LATER_KEY: [f"capture {archive.fresh_id}"]}
    assert store.holds == {SAMPLE_KEY: "OFF", LATER_KEY: "ON"}
    assert holders(custody, store.object_uri(SAMPLE_KEY)) == set()
    apply_holds(store, custody, plan_for_captures(archive.db, store, [archive.fresh_id]),
                on=False)  # fmt: skip
    assert store.holds == {SAMPLE_KEY: "OFF", LATER_KEY: "OFF"}
    assert custody.verify() == []


def test_a_file_store_refuses_holds_and_nothing_is_recorded(archive: StoredArchive) -> None:
    before = list(archive.custody.entries())
    plan = plan_for_captures(archive.db, archive.store, [archive.fresh_id])
    with pytest.raises(HoldUnsupported, match="is a file store, which has no legal holds"):
        apply_holds(archive.store, archive.custody, plan)
    assert list(archive.custody.entries()) == before


def test_attest_hold_on_a_file_store_is_a_clear_error_exit_2(archive: StoredArchive) -> None:
    before = list(archive.custody.entries())
    env = dict(os.environ, ATTEST_HOME=str(archive.home))
    for name in ("ATTEST_STORE", "ATTEST_INDEX"):
        env.pop(name, None)
    for args in (["hold", archive.fresh_id], ["hold", UNKNOWN], ["hold", "--case", "x", "C1"]):
        proc = run_attest(args, env)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith("attest: error: ")
        assert f"{archive.store.uri} is a file store, which has no legal holds" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert list(archive.custody.entries()) == before
