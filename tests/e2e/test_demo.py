"""The README's main job (``attest demo``) and what a user sees while a crawl runs."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive.warc.read import verify_warc
from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_demo_captures_the_bundled_web_into_the_data_home(tmp_path: Path) -> None:
    """On free ports here (``--random-ports``); test_demo_case.py runs it on its fixed ones."""
    home = tmp_path / "data"
    env = dict(os.environ, ATTEST_HOME=str(home))
    for name in ("ATTEST_STORE", "ATTEST_ALLOW_NETWORKS"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--articles", "12", "--random-ports"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "sources: demo-news, demo-ngo, demo-social" in out
    assert "serving the demo web: http://127.0.0.1:" in result.stderr
    assert ":8781 (news)" not in result.stderr
    for words in ("pages ", "records ", "WARC bytes ", "outcomes: captured "):
        assert words in out
    stored = [line for line in out.splitlines() if line.strip().startswith("stored file://")]
    assert len(stored) == 3
    warcs = sorted((home / "store" / "warcs").rglob("*.warc.gz"))
    assert {w.parts[-5] for w in warcs} == {"demo-news", "demo-ngo", "demo-social"}
    for warc in warcs:
        assert str(warc) in out
        assert verify_warc(warc).ok
    # Not on a terminal: progress arrives as structured log lines.
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    progress = [e for e in events if e.get("message") == "progress"]
    assert {e["source"] for e in progress} == {"demo-news", "demo-ngo", "demo-social"}
    assert all({"pages", "fetches", "errors", "pages_per_s"} <= set(e) for e in progress)
    assert any(e["finished"] for e in progress)


def test_a_terminal_shows_live_progress(fixture_web: FixtureWeb, tmp_path: Path) -> None:
    env = dict(
        os.environ,
        ATTEST_HOME=str(tmp_path / "home"),
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        COLUMNS="100",
        TERM="xterm",
    )
    env.pop("ATTEST_STORE", None)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "crawl", fixture_web.url("ngo", "/"), "--max-pages", "20"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(controller)
    assert proc.wait(60) == 0
    screen = seen.decode("utf-8", "replace")
    assert "pages/s" in screen
    assert "adhoc" in screen
    assert "done" in screen
    assert '{"time"' not in screen, "a terminal gets a progress display, not JSON lines"
