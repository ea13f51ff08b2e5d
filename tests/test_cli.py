"""The ``attest`` command's contract: bad input gets a clear error, exit 2, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"


def attest(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, ATTEST_HOME=str(home), **env)
    environ.pop("ATTEST_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["crawl"], {}, "give at least one URL"),
        (["crawl", "ftp://example.org/"], {}, "URL[0]"),
        (["crawl", "https://example.org/", "--store", "relative/dir"], {}, "relative/dir"),
        (["crawl", "https://example.org/", "--store", "s3://"], {}, "s3://"),
        (
            ["crawl", "https://example.org/", "--store", "gopher://x/y"],
            {},
            "file:///abs/path or s3://",
        ),
        (["crawl", "--sources", "nowhere.yaml"], {}, "nowhere.yaml: cannot read"),
        (["crawl", "--sources", "sources/demo.yaml"], {}, "DEMO_NEWS is not set"),
        (
            ["crawl", "https://example.org/"],
            {"ATTEST_ALLOW_NETWORKS": "10.0.0.0/33"},
            "ATTEST_ALLOW_NETWORKS",
        ),
        (["crawl", "https://example.org/"], {"ATTEST_GZIP_LEVEL": "11"}, "ATTEST_GZIP_LEVEL='11'"),
        (
            ["crawl", "https://example.org/"],
            {"ATTEST_DOWNLOAD_TIMEOUT": "soon"},
            "ATTEST_DOWNLOAD_TIMEOUT",
        ),
        (
            ["crawl", "https://example.org/"],
            {"ATTEST_CA_BUNDLE": "/no/such.pem"},
            "ATTEST_CA_BUNDLE",
        ),
        (
            ["crawl", "https://example.org/"],
            {"ATTEST_S3_OBJECT_LOCK_DAYS": "0"},
            "ATTEST_S3_OBJECT_LOCK_DAYS",
        ),
        (["verify", "no-such.warc.gz"], {}, "no-such.warc.gz: no such file"),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result = attest(args, home, **env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("attest: error: ")
    assert "Traceback" not in result.stderr
    assert not home.exists(), "a refused command must not create the data home"


def test_only_names_an_unknown_source(tmp_path: Path) -> None:
    registry = tmp_path / "s.yaml"
    registry.write_text('sources:\n  - {id: one, kind: news, seeds: ["https://example.org/"]}\n')
    result = attest(["crawl", "--sources", str(registry), "--only", "two"], tmp_path / "home")
    assert result.returncode == 2
    assert "--only: no source 'two'" in result.stderr


def test_verify_reaches_the_golden_verdicts(tmp_path: Path) -> None:
    good = attest(["verify", str(GOLDEN / "good.warc.gz")], tmp_path)
    assert good.returncode == 0
    assert good.stdout.startswith("OK ")
    truncated = attest(["verify", str(GOLDEN / "truncated.warc.gz")], tmp_path)
    assert truncated.returncode == 1
    assert "truncated:" in truncated.stdout
    tampered = attest(["verify", "--json", str(GOLDEN / "tampered.warc.gz")], tmp_path)
    assert tampered.returncode == 1
    assert '"check": "block-digest"' in tampered.stdout
    assert '"check": "payload-digest"' in tampered.stdout


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = attest(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("demo", "crawl", "recover", "verify"):
        assert command in result.stdout
