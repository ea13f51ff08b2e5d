"""Checks: ``attest custody verify|seal`` and ``attest audit``.

The custody log checked against the segments sealed in the store (or sealed now), and stored
WARCs re-read and checked (:func:`archive.custody.audit.audit_warcs`), one custody entry each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cli.base import Subcommands, load_config, open_custody, open_index


class Custody:
    """``attest custody verify``: the log against the segments sealed in the store;
    ``attest custody seal``: seal what is not sealed yet (and sign and timestamp segments
    sealed without the organisation key)."""

    def add_parser(self, sub: Subcommands) -> None:
        cus = sub.add_parser("custody", help="verify or seal the custody log")
        cus.add_argument("action", choices=("verify", "seal"))
        cus.add_argument("--store", help="store URI")
        cus.add_argument(
            "--trust",
            action="append",
            metavar="FILE",
            help="PEM trust anchors for the segments' signatures and timestamps "
            "(default ATTEST_TRUST, else the configured signing key)",
        )
        cus.add_argument("--json", action="store_true")
        cus.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.store import open_store
        from archive.trust.signing import Trust, fingerprint, load_trust

        config = load_config(args.store)
        with open_index(config) as db:
            custody = open_custody(db, open_store(config.store_uri), config)
            attestor = custody.attestor
            if args.action == "seal":
                key = custody.seal()
                print(f"sealed {key}" if key else "nothing to seal")
                for late in custody.attest_sealed():
                    print(f"signed and timestamped {late} (sealed earlier without them)")
                return 0
            trust_files = [Path(t) for t in args.trust] if args.trust else list(config.trust)
            trust = load_trust(trust_files) if trust_files else Trust()
            if trust.empty and attestor.signer is not None:
                # No anchors given: the organisation's own key, which detects an outsider's
                # rewrite.
                trust.public_keys[fingerprint(attestor.signer.public_der())] = "the signing key"
            verdict = custody.check(trust, require_seals=attestor.signer is not None)
        if args.json:
            print(
                json.dumps(
                    {
                        "ok": verdict.ok,
                        "entries": verdict.entries,
                        "sealed_through": verdict.sealed_through,
                        "unsealed": list(verdict.unsealed) if verdict.unsealed else None,
                        "segments": [vars(s) for s in verdict.segments],
                        "problems": verdict.problems,
                        "notes": verdict.notes,
                    },
                    indent=1,
                )
            )
            return 0 if verdict.ok else 1
        for segment in verdict.segments:
            signed = f"signed by {segment.signer}" if segment.signer else "not signed"
            if segment.signer and not segment.trusted:
                signed += " (not a trusted key)"
            stamps = (
                f"timestamped by {', '.join(segment.timestamps)}"
                if segment.timestamps
                else "not timestamped"
            )
            print(f"  {segment.key}: entries {segment.first}-{segment.last}, {signed}, {stamps}")
        for note in verdict.notes:
            print(f"  NOTE {note}")
        for problem in verdict.problems:
            print(f"BROKEN {problem}")
        sealed = f"sealed in the store through entry {verdict.sealed_through}"
        status = "matches the sealed segments" if verdict.ok else "DOES NOT VERIFY"
        print(f"custody log: {verdict.entries} entries, {sealed}; the database {status}")
        return 0 if verdict.ok else 1


class Audit:
    """``attest audit [WARC_URI...]``: the pipeline's own check of stored WARCs (the DAG's
    verify task; all indexed ones by default), logged per WARC."""

    def add_parser(self, sub: Subcommands) -> None:
        aud = sub.add_parser(
            "audit", help="re-read stored WARCs, check them, record the result in the custody log"
        )
        aud.add_argument(
            "warcs", nargs="*", metavar="WARC_URI", help="WARC URIs or keys (default: all indexed)"
        )
        aud.add_argument("--actor", help="who checks (default: ATTEST_ACTOR or user@host)")
        aud.add_argument("--store", help="store URI")
        aud.add_argument("--json", action="store_true")
        aud.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.custody.audit import audit_warcs
        from archive.custody.log import default_actor
        from archive.ingest.indexer import resolve_warc_key
        from archive.store import open_store

        config = load_config(args.store)
        store = open_store(config.store_uri)
        keys = [resolve_warc_key(store, w) for w in args.warcs] or None
        with open_index(config) as db:
            results = audit_warcs(
                store,
                db,
                open_custody(db, store, config),
                keys,
                actor=args.actor or default_actor(),
                context={"via": "attest audit"},
                progress=None if args.json else _audit_progress,
            )
        failed = [r for r in results if not r.ok]
        if args.json:
            print(json.dumps([r.as_dict() for r in results], indent=1))
        else:
            print(
                f"verified {len(results)} WARC(s): {len(results) - len(failed)} ok, "
                f"{len(failed)} FAILED; custody log: one 'verify' entry each"
            )
        return 1 if failed else 0


def _audit_progress(result: Any) -> None:
    status = "OK" if result.ok else "FAILED"
    print(
        f"{status} {result.uri}: {result.records} records, sha256 {result.sha256 or '-'}"
        + (f" (as recorded at {result.expected_from})" if result.ok else "")
    )
    for problem in result.problems:
        print(f"  {problem}")
