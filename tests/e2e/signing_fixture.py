"""A signing setup for bundle tests: a throwaway PKI, an organisation key, a local RFC 3161
timestamp authority (``openssl ts`` behind HTTP), and the environment that makes ``attest
export`` sign and stamp bundles with them and ``attest verify`` trust them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from archive_fixture import Archive
from support.pki import TestPKI, make_pki
from support.tsa import LocalTSA, local_tsa


@dataclass
class Signing:
    pki: TestPKI
    tsa: LocalTSA
    env: dict[str, str]  # the archive's env + signing key, TSA and trust anchors


@pytest.fixture(scope="session")
def signing(retrieval: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signing]:
    root = tmp_path_factory.mktemp("pki")
    pki = make_pki(root)
    trust = root / "trust.pem"
    trust.write_bytes(pki.org_public.read_bytes() + pki.root.read_bytes())
    with local_tsa(pki, root / "tsa") as tsa:
        env = dict(
            retrieval.env,
            ATTEST_SIGNING_KEY=str(pki.org_key),
            ATTEST_TSA_URLS=tsa.url,
            ATTEST_TRUST=str(trust),
        )
        yield Signing(pki, tsa, env)
