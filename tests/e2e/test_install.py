"""``pip install .`` in a fresh venv gives an ``attest`` command that can crawl, from anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archive.warc.read import verify_warc
from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_pip_install_gives_a_working_attest(fixture_web: FixtureWeb, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    # Run from an unrelated directory, so nothing can come from the checkout.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTEST_", "PYTHON"))}
    env.update(ATTEST_HOME=str(tmp_path / "home"), ATTEST_ALLOW_NETWORKS="127.0.0.0/8")
    result = subprocess.run(
        [
            str(venv / "bin" / "attest"),
            "crawl",
            fixture_web.url("ngo", "/"),
            "--max-pages",
            "4",
            "--json",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["pages"] >= 4
    (warc,) = summary["warcs"]
    assert verify_warc(Path(warc["uri"].removeprefix("file://"))).ok
    # The installed package is what ran: the recorder too.
    assert str(ROOT) not in result.stderr
