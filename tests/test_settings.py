"""Settings (settings.py): what reading them costs a long-running process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_without_a_key_or_a_tsa_the_custody_attestor_loads_no_signing_code(
    tmp_path: Path,
) -> None:
    """`attest serve` builds an attestor at start: with nothing to sign or stamp with, the
    signing and timestamping libraries (~15 MB of a service's memory) stay unloaded."""
    code = (
        "import sys, settings\n"
        "attestor = settings.load_config().custody_attestor()\n"
        "print(attestor.signer is None, not attestor.tsas, "
        "sorted(m for m in ('cryptography', 'asn1crypto') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env["ATTEST_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["True", "True", "[]"]


def test_tsa_chain_files_follow_the_tsa_urls_by_position(tmp_path: Path) -> None:
    """ATTEST_TSA_CHAINS pairs with ATTEST_TSA_URLS by position: an empty entry is a TSA
    without a chain file, and the next entry's chain stays with the next TSA (the custody
    attestor once dropped the empty entries and gave the second TSA's chain to the first)."""
    import certifi

    code = (
        "import settings\n"
        "tsas = settings.load_config().custody_attestor().tsas\n"
        "print([(t.url, len(t.chain) > 0) for t in tsas])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(
        ATTEST_HOME=str(tmp_path),
        ATTEST_TSA_URLS="http://127.0.0.1:1/a,http://127.0.0.1:1/b",
        ATTEST_TSA_CHAINS=f",{certifi.where()}",
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == (
        "[('http://127.0.0.1:1/a', False), ('http://127.0.0.1:1/b', True)]"
    )
