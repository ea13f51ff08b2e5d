"""Evidence bundles exported in-process from the small stored archive (support/storedarchive).

:func:`spill_case` writes a case over that archive: ``C1`` the harbour page by URL (captured in
both WARCs), ``C2`` the post by URL (its response in the first WARC, a revisit of it in the
second), ``C3`` a page never captured (a gap). :func:`signing_setup` is a throwaway PKI with a
local RFC 3161 authority; :func:`export` calls :func:`archive.evidence.bundle.export_bundle`
as ``attest export`` does, with the archive's custody log.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archive.evidence.bundle import BundleReport, export_bundle
from archive.evidence.cases import Case, load_case
from archive.trust.signing import Signer, Trust, load_signer, load_trust
from archive.trust.timestamps import Authority
from support.indexwarcs import GZIP_URL, POST_URL
from support.pki import TestPKI, make_pki
from support.storedarchive import StoredArchive
from support.tsa import LocalTSA, local_tsa

NEVER_URL = "http://example.com/never.html"
ACTOR = "examiner-1"


def spill_case(directory: Path) -> Case:
    path = directory / "spill.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "id": "spill",
                "title": "The spill",
                "claims": [
                    {
                        "id": "C1",
                        "text": "The harbour page said so.",
                        "source": "news",
                        "evidence": [{"url": GZIP_URL}],
                    },
                    {
                        "id": "C2",
                        "text": "Alice posted it.",
                        "source": "social",
                        "evidence": [{"url": POST_URL}],
                    },
                    {
                        "id": "C3",
                        "text": "Denied.",
                        "source": "statement",
                        "evidence": [{"url": NEVER_URL}],
                    },
                ],
            }
        )
    )
    return load_case(path)


@dataclass
class SigningSetup:
    pki: TestPKI
    tsa: LocalTSA
    signer: Signer  # the organisation key
    trust: Trust  # its public key and the PKI's root (for the TSA)

    @property
    def authorities(self) -> list[Authority]:
        return [Authority(self.tsa.url)]


@contextmanager
def signing_setup(directory: Path) -> Iterator[SigningSetup]:
    pki = make_pki(directory / "pki")
    trust_file = directory / "trust.pem"
    trust_file.write_bytes(pki.org_public.read_bytes() + pki.root.read_bytes())
    with local_tsa(pki, directory / "tsa") as tsa:
        yield SigningSetup(pki, tsa, load_signer(pki.org_key), load_trust([trust_file]))


def export(
    archive: StoredArchive,
    case: Case,
    output: Path,
    signing: SigningSetup | None,
    *,
    timestamped: bool = True,
    **kwargs: Any,
) -> BundleReport:
    """Export ``case`` from ``archive`` into ``output``, signed and timestamped by ``signing``
    (``timestamped=False``: signed only; ``signing`` None: neither)."""
    return export_bundle(
        archive.db,
        archive.store,
        case,
        output,
        custody=archive.custody,
        actor=ACTOR,
        signer=signing.signer if signing else None,
        tsas=signing.authorities if signing and timestamped else [],
        **kwargs,
    )


def rewrite(bundle: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of ``bundle`` with some members replaced (None: left out), each stored as in the
    original (the WARC uncompressed)."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in change:
                data = change[info.filename]
                if data is None:
                    continue
            else:
                data = src.read(info.filename)
            dst.writestr(info, data)
    return target
