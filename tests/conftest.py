"""Shared fixtures: the fixture web, a data home per test, and real services started for real.

Nothing here touches the internet: every server binds 127.0.0.1 and the recorder's egress
guard allows only 127.0.0.0/8.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from demoweb import FixtureWeb

pytest_plugins = ["support.seaweed"]


@pytest.fixture(scope="session")
def fixture_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FixtureWeb]:
    """News, NGO and HTTPS sites with a test CA; shared by the tests of a session."""
    web = FixtureWeb(
        articles=40,
        releases=25,
        tls=True,
        slow=True,
        keep_log=True,
        workdir=tmp_path_factory.mktemp("fixture-ca"),
    )
    web.start()
    yield web
    web.stop()


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ATTEST_HOME for one test; loopback allowed as the tests need it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ATTEST_HOME", str(home))
    monkeypatch.setenv("ATTEST_ALLOW_NETWORKS", "127.0.0.0/8")
    monkeypatch.delenv("ATTEST_STORE", raising=False)
    return home
