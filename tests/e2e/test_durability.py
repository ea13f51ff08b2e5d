"""Nothing lost: kill -9 at the worst moments, a full spool disk, then recovery.

Each test runs a real ``attest crawl`` in its own process group and kills the whole group
(crawler and recorder) at a named crash point (``archive.failpoints``) or at a random moment.
Whatever was complete in the spool at the moment of death must end up in the store, each
record exactly once, every digest intact; nothing truncated may be uploaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from archive.custody.log import CustodyLog
from archive.index.db import IndexDB
from archive.ingest.spool import CLOSED_SUFFIX, OPEN_SUFFIX
from archive.store import file_sha256
from archive.warc.read import verify_warc
from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def attest_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        ATTEST_HOME=str(home),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_WARC_MAX_SIZE="1000000",
        ATTEST_RETRIES="0",
    )
    env.pop("ATTEST_STORE", None)
    env.pop("ATTEST_FAILPOINT", None)
    env.update(extra)
    return env


def start_crawl(web: FixtureWeb, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "crawl",
            web.url("news", "/"),
            "--max-pages",
            "80",
            "--depth",
            "3",
            "--json",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def complete_records(spool: Path) -> tuple[list[str], bool]:
    """Ids of every complete record in a spool's WARCs, and whether any file was cut short."""
    ids: list[str] = []
    truncated = False
    for path in sorted(spool.rglob("*" + OPEN_SUFFIX)) + sorted(spool.rglob("*" + CLOSED_SUFFIX)):
        verdict = verify_warc(path)
        assert all(p.check == "truncated" for p in verdict.problems), verdict.problems
        truncated |= verdict.truncated
        ids.extend(r.record_id or "" for r in verdict.records)
    return ids, truncated


def stored_records(store: Path) -> list[str]:
    ids: list[str] = []
    for path in sorted(store.rglob("*.warc.gz")):
        verdict = verify_warc(path)
        assert verdict.ok, verdict.problems
        ids.extend(r.record_id or "" for r in verdict.records)
    return ids


def recover(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "recover"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_logged_and_indexed(home: Path) -> dict[str, str]:
    """Every stored WARC has one ``capture`` custody entry with its SHA-256, and is indexed.
    Returns each WARC's key -> the run id its capture entry names."""
    store = home / "store"
    runs: dict[str, str] = {}
    with IndexDB(str(home / "index.sqlite")) as db:
        custody = CustodyLog(db)
        for path in sorted(store.rglob("*.warc.gz")):
            key = path.relative_to(store).as_posix()
            captures = [e for e in custody.for_object(path.as_uri()) if e.action == "capture"]
            assert len(captures) == 1, (key, captures)
            assert captures[0].details["sha256"] == file_sha256(path)
            assert db.is_indexed(key), key
            runs[key] = captures[0].details["run_id"]
        assert custody.verify() == []
    return runs


def assert_recovered_exactly(home: Path, env: dict[str, str]) -> int:
    """Recover; every record complete at the kill is in the store exactly once. Returns the count."""
    before_store = Counter(stored_records(home / "store"))
    spool_ids, _ = complete_records(home / "spool")
    result = recover(env)
    assert result.returncode == 0, result.stdout + result.stderr
    after = Counter(stored_records(home / "store"))
    duplicated = [rid for rid, n in after.items() if n > 1]
    assert not duplicated, f"records stored twice: {duplicated[:3]}"
    assert set(after) == set(before_store) | set(spool_ids)
    assert not list((home / "spool").rglob("*.warc.gz*")), "the spool still holds WARCs"
    # Recovered WARCs are logged (capture) and indexed like any other, under the dead run.
    runs = assert_logged_and_indexed(home)
    assert len(set(runs.values())) == 1
    assert f"logged (capture) and indexed {len(runs)} WARC(s)" in result.stdout
    return len(after)


@pytest.mark.parametrize(
    "failpoint",
    [
        "warc.mid-record@3",
        "warc.mid-record@60",
        "warc.after-record@25",
        "spool.rotate-before-rename@1",
        "spool.rotate-after-rename@1",
        "ship.before-put@1",
        "ship.after-put@1",
        "store.file-before-link@1",
    ],
)
def test_kill_at_crash_point_then_recover(
    failpoint: str, fixture_web: FixtureWeb, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = attest_env(home)
    proc = start_crawl(fixture_web, dict(env, ATTEST_FAILPOINT=failpoint))
    proc.communicate(timeout=180)
    assert proc.returncode == -signal.SIGKILL, (
        f"{failpoint} was never reached (exit {proc.returncode})"
    )
    _ids, truncated = complete_records(home / "spool")
    if failpoint.startswith("warc.mid-record"):
        assert truncated, "the kill should have cut a record in half"
    count = assert_recovered_exactly(home, env)
    assert count > 0


@pytest.mark.parametrize("delay", [0.6, 1.5, 3.0])
def test_kill_at_random_moment_then_next_run_recovers(
    delay: float, fixture_web: FixtureWeb, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = attest_env(home)
    proc = start_crawl(fixture_web, env)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    spool_ids, _ = complete_records(home / "spool")
    had_run = (home / "spool").exists() and any((home / "spool").iterdir())
    # The next run ships the dead run's spool before it starts its own crawl.
    nxt = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli",
            "crawl",
            fixture_web.url("ngo", "/"),
            "--max-pages",
            "3",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    summary = json.loads(nxt.stdout)
    assert len(summary["recovered_runs"]) == (1 if had_run else 0)
    stored = Counter(stored_records(home / "store"))
    assert not [r for r, n in stored.items() if n > 1]
    assert set(spool_ids) <= set(stored)
    assert not list((home / "spool").rglob("*.warc.gz*"))
    runs = assert_logged_and_indexed(home)
    if had_run:
        # the dead run's WARCs are logged under its own run id, not the run that shipped them
        dead = summary["recovered_runs"][0]["run_id"]
        assert {k for k, r in runs.items() if r == dead} == {
            w["key"] for w in summary["recovered_runs"][0]["shipped"]
        }


def test_full_spool_disk_stops_cleanly_with_what_was_written_intact(
    fixture_web: FixtureWeb, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    spool_fs = home / "spool"
    spool_fs.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(spool_fs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a size-capped tmpfs for the spool: {mounted.stderr}")
    try:
        store = tmp_path / "store"
        env = attest_env(home, ATTEST_STORE=store.as_uri())
        proc = start_crawl(fixture_web, env)
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, err[-3000:]
        summary = json.loads(out)
        assert summary["stopped"] == "disk_full"
        assert summary["warcs"], "what was written before the disk filled is uploaded"
        ids = stored_records(store)
        assert len(ids) == len(set(ids))
        assert len(ids) > 1
        assert not list(spool_fs.rglob("*.warc.gz*")), "nothing half-written stays behind"
    finally:
        subprocess.run(["umount", str(spool_fs)], check=False)
