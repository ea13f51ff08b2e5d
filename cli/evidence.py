"""Evidence: ``attest claims``, ``claim link|unlink``, ``export``, ``keygen`` and ``hold``.

A case is named by its file's path or by its id (looked for in ``cases/`` of the working
directory, then of the checkout: :func:`archive.evidence.cases.case_folders`). Links are made
and withdrawn with their custody entries by :mod:`archive.evidence.claimlinks`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archive.errors import ConfigError
from cli.base import CHECKOUT, Subcommands, load_config, open_custody, open_index


def _case(name: str) -> Any:
    """A case by its file's path, or by its id in ``cases/`` here or beside the package."""
    from archive.evidence.cases import case_folders, find_case

    return find_case(name, case_folders([Path.cwd(), CHECKOUT]))


def _claims_summary(results: list[Any]) -> dict[str, int]:
    """Claims fully covered (every link found), claims with gaps, and gap links."""
    covered = sum(1 for r in results if r.covered)
    return {
        "claims": len(results),
        "covered": covered,
        "with_gaps": len(results) - covered,
        "gap_links": sum(len(r.gap_links) for r in results),
    }


def _quote_words(check: Any) -> str:
    """Where a quote was found, for a terminal: ``quote shown (rendered text): "..."``."""
    if not check.found:
        where = f" ({check.text} text)" if check.text else " (no text indexed for it)"
        return f"QUOTE NOT SHOWN{where}: {check.quote!r}"
    return (
        f"quote shown ({check.text} text {check.text_record}): "
        f"…{check.before} [{check.shown}] {check.after}…"
    )


class Claims:
    """``attest claims CASE``: a case's claims, their captures and gaps."""

    def add_parser(self, sub: Subcommands) -> None:
        claims = sub.add_parser("claims", help="a case's claims with their captures, and the gaps")
        claims.add_argument("case", metavar="CASE", help="case file path or case id")
        claims.add_argument("--json", action="store_true")
        claims.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.dates import iso
        from archive.evidence.cases import resolve
        from archive.index.pagemeta import PageMetadata
        from archive.index.retrieve import pinned_store
        from archive.store import open_store

        case = _case(args.case)
        config = load_config()
        with open_index(config) as db:
            pages = PageMetadata(db, pinned_store(open_store(config.store_uri), db))
            results = [resolve(db, case, claim, pages) for claim in case.claims]
        summary = _claims_summary(results)
        if not args.json:
            _print_claims(case, results, summary)
            return 0
        print(
            json.dumps(
                {
                    "case": case.id,
                    "title": case.title,
                    "summary": summary,
                    "claims": [
                        {
                            "id": r.claim.id,
                            "kind": r.claim.kind,
                            "text": r.claim.text,
                            "source": r.claim.source,
                            "covered": r.covered,
                            "gap": not r.covered,
                            "gaps": r.gaps,
                            "links": [link.as_dict() for link in r.links],
                            "withdrawn": [vars(w) for w in r.withdrawn],
                            "captures": [
                                {
                                    "capture": f.row.record_id,
                                    "url": f.row.url,
                                    "datetime": iso(f.row.ts),
                                    "status": f.row.status,
                                    "record_type": f.row.record_type,
                                    "via": f.via,
                                    "quote_found": f.quote_found,
                                    "quotes": [q.as_dict() for q in f.quotes],
                                }
                                for f in r.found
                            ],
                        }
                        for r in results
                    ],
                },
                indent=1,
                ensure_ascii=False,
            )
        )
        return 0


def _print_claims(case: Any, results: list[Any], summary: dict[str, int]) -> None:
    from archive.dates import iso

    print(f"case {case.id}: {case.title}")
    for r in results:
        if r.covered:
            label = f"{len(r.found)} capture(s), every link found"
        elif not r.found:
            label = "GAP: no capture"
        else:
            label = f"{len(r.found)} capture(s); GAP: {len(r.gap_links)} link(s) not found"
        kind = " (counter-statement)" if r.claim.kind == "counter-statement" else ""
        print(f"\n{r.claim.id}{kind}  {label}\n  {r.claim.text}")
        for link in r.links:
            if link.gap:
                print(f"  GAP    {link.describe}: {link.gap}")
            else:
                extra = (
                    f"; {len(link.incomplete)} incomplete not counted" if link.incomplete else ""
                )
                print(f"  found  {link.describe} ({len(link.captures)} capture(s){extra})")
        if not r.links:
            print("  GAP    no evidence is linked to this claim")
        for f in r.found:
            print(f"    {iso(f.row.ts)}  {f.row.status or '-'}  {f.row.url}")
            print(f"      {f.row.record_id}  via {f.via}")
            for check in f.quotes:
                print(f"      {_quote_words(check)}")
        for w in r.withdrawn:
            print(
                f"  withdrawn: capture {w.record_id}, linked by {w.annotator} at {w.linked_at}, "
                f"withdrawn by {w.withdrawn_by} at {w.withdrawn_at}: {w.withdrawn_reason}"
            )
    print(
        f"\n{summary['covered']} of {summary['claims']} claims fully covered; "
        f"{summary['with_gaps']} with gaps; {summary['gap_links']} gap link(s)"
    )


class Claim:
    """``attest claim link CASE CLAIM CAPTURE_ID``: link a page's capture to a claim;
    ``attest claim unlink CASE CLAIM CAPTURE_ID --reason TEXT``: withdraw such a link (kept in
    the index database and the custody log as withdrawn)."""

    def add_parser(self, sub: Subcommands) -> None:
        claim = sub.add_parser("claim", help="link a capture to a claim, or withdraw a link")
        claim_sub = claim.add_subparsers(dest="claim_command", required=True)
        link = claim_sub.add_parser("link", help="record that a capture is evidence of a claim")
        link.add_argument("case", metavar="CASE", help="case file path or case id")
        link.add_argument("claim", metavar="CLAIM", help="claim id")
        link.add_argument("capture", metavar="CAPTURE_ID", help="capture id (UUID or record id)")
        link.add_argument("--annotator", help="who links it (default: ATTEST_ACTOR or user@host)")
        link.add_argument("--note")
        link.add_argument(
            "--any-record",
            action="store_true",
            help="link a record that is not a page (a request, a stylesheet, an "
            "image...); needs --reason, which is kept with the link",
        )
        link.add_argument("--reason", help="why, with --any-record")
        unlink = claim_sub.add_parser(
            "unlink", help="withdraw a link made with `claim link` (kept, and logged, as withdrawn)"
        )
        unlink.add_argument("case", metavar="CASE", help="case file path or case id")
        unlink.add_argument("claim", metavar="CLAIM", help="claim id")
        unlink.add_argument("capture", metavar="CAPTURE_ID", help="capture id (UUID or record id)")
        unlink.add_argument("--reason", required=True, help="why it is no longer evidence (logged)")
        unlink.add_argument("--actor", help="who withdraws it (default: ATTEST_ACTOR or user@host)")
        claim.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        if args.claim_command == "link":
            return self._link(args)
        return self._unlink(args)

    def _link(self, args: argparse.Namespace) -> int:
        from archive.custody.log import default_actor
        from archive.evidence.claimlinks import record_link
        from archive.store import open_store

        if args.reason is not None and not args.any_record:
            raise ConfigError("--reason goes with --any-record (why a record that is not a page)")
        if args.any_record and args.reason is None:
            raise ConfigError("--any-record needs --reason: say why this record is evidence")
        case = _case(args.case)
        config = load_config()
        annotator = args.annotator or default_actor()
        with open_index(config) as db:
            row, new = record_link(
                db,
                open_custody(db, open_store(config.store_uri), config),
                case,
                args.claim,
                args.capture,
                annotator=annotator,
                note=args.note,
                any_record_reason=args.reason,
            )
        state = "linked" if new else "already linked"
        print(f"{state}: {row.record_id} ({row.url}) -> {case.id} claim {args.claim}")
        return 0

    def _unlink(self, args: argparse.Namespace) -> int:
        from archive.custody.log import default_actor
        from archive.evidence.cases import capture_record_id
        from archive.evidence.claimlinks import withdraw_link
        from archive.store import open_store

        case = _case(args.case)
        config = load_config()
        actor = args.actor or default_actor()
        record_id = capture_record_id(args.capture)
        with open_index(config) as db:
            _, was = withdraw_link(
                db,
                open_custody(db, open_store(config.store_uri), config),
                case,
                args.claim,
                record_id,
                actor=actor,
                reason=args.reason,
            )
        print(
            f"withdrawn: {record_id} -> {case.id} claim {args.claim} (linked by {was.annotator} "
            f"at {was.linked_at}); later exports list it as withdrawn"
        )
        return 0


class Export:
    """``attest export CASE [--claim ID]... -o B.wacz``: a case's evidence as a signed WACZ
    bundle."""

    def add_parser(self, sub: Subcommands) -> None:
        exp = sub.add_parser("export", help="write a case's evidence as a WACZ bundle")
        exp.add_argument("case", metavar="CASE", help="case file path or case id")
        exp.add_argument(
            "--claim", action="append", metavar="ID", help="only this claim (repeatable)"
        )
        exp.add_argument("-o", "--output", required=True, metavar="BUNDLE.wacz")
        exp.add_argument(
            "--unsigned",
            action="store_true",
            help="write the bundle without a signature (verify will fail it)",
        )
        exp.add_argument("--store", help="store URI")
        exp.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.custody.log import default_actor
        from archive.evidence.bundle import export_bundle
        from archive.index.retrieve import pinned_store
        from archive.store import open_store

        case = _case(args.case)
        config = load_config(args.store)
        store = open_store(config.store_uri)
        output = Path(args.output)
        if output.suffix != ".wacz":
            raise ConfigError(f"-o {output}: a bundle's name ends in .wacz")
        signer, tsas = _signing(config, unsigned=args.unsigned)
        with open_index(config) as db:
            custody = open_custody(db, store, config)
            store = pinned_store(store, db)
            report = export_bundle(
                db,
                store,
                case,
                output,
                claim_ids=args.claim or (),
                custody=custody,
                actor=default_actor(),
                signer=signer,
                tsas=tsas,
                chromium=config.chromium,
            )
            custody.seal()
        print(f"wrote {report.path} ({report.records} records, WARC {report.warc_bytes:,} bytes)")
        print(f"  sha256 {report.sha256}")
        print(f"  claims: {', '.join(report.claims)}")
        for gap in report.gaps:
            print(f"  GAP: claim {gap} (listed in the manifest's gaps)")
        return 0


def _signing(config: Any, *, unsigned: bool) -> tuple[Any, list[Any]]:
    """The bundle signer and the timestamp authorities, from settings."""
    from archive.trust.signing import load_signer
    from archive.trust.timestamps import authorities

    # ATTEST_TSA_CHAINS follows ATTEST_TSA_URLS by position (authorities keeps them in place).
    tsas = authorities(list(config.tsa_urls), list(config.tsa_chains))
    if not tsas:
        sys.stderr.write(
            "warning: no timestamp authority configured (ATTEST_TSA_URLS): the bundle carries "
            "no independent time, and `attest verify` will report it\n"
        )
    if unsigned:
        sys.stderr.write("warning: --unsigned: `attest verify` will report the bundle unsigned\n")
        return None, tsas
    key = config.signing_key or config.home / "keys" / "signing.pem"
    if not key.is_file():
        raise ConfigError(
            f"no signing key ({key} does not exist): set ATTEST_SIGNING_KEY, or run "
            "`attest keygen` to make an organisation key, or pass --unsigned"
        )
    return load_signer(key, config.signing_cert), tsas


class Keygen:
    """``attest keygen [-o KEY.pem]``: a new organisation signing key; its public key is what
    verifiers are given."""

    def add_parser(self, sub: Subcommands) -> None:
        key = sub.add_parser("keygen", help="make an organisation key that signs bundles")
        key.add_argument(
            "-o",
            "--output",
            metavar="KEY.pem",
            help="where to write the private key (default <home>/keys/signing.pem)",
        )
        key.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from cryptography.hazmat.primitives import serialization

        from archive.trust.signing import fingerprint, generate_key

        config = load_config()
        path = Path(args.output) if args.output else config.home / "keys" / "signing.pem"
        public = generate_key(path)
        der = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        print(f"private key: {path} (keep it secret; never share it)")
        print(
            f"public key:  {public} (give it to whoever verifies your bundles: attest verify --trust)"
        )
        print(f"fingerprint: SHA-256 {fingerprint(der)}")
        return 0


class Hold:
    """``attest hold CAPTURE_ID... [--release]`` or ``attest hold --case CASE [CLAIM_ID]...``:
    S3 legal holds on the WARCs behind captures, or behind a case's claims; each one logged."""

    def add_parser(self, sub: Subcommands) -> None:
        hold = sub.add_parser(
            "hold",
            help="place (or --release) an S3 legal hold on the WARCs behind captures or claims",
        )
        hold.add_argument(
            "ids",
            nargs="*",
            metavar="ID",
            help="capture ids (UUID or record id); with --case, claim ids (default: all its claims)",
        )
        hold.add_argument(
            "--case", metavar="CASE", help="case file path or case id: IDs are claims"
        )
        hold.add_argument(
            "--release",
            action="store_true",
            help="lift what these captures or claims asked for; a WARC also held for something "
            "else keeps its hold (recorded too)",
        )
        hold.add_argument("--note", help="why (a court order, a matter number), kept in the log")
        hold.add_argument("--actor", help="who asks (default: ATTEST_ACTOR or user@host)")
        hold.add_argument("--store", help="store URI (s3://bucket/prefix with Object Lock)")
        hold.add_argument("--json", action="store_true")
        hold.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.custody.log import default_actor
        from archive.evidence.holds import apply_holds, plan_for_captures, plan_for_claims
        from archive.index.retrieve import pinned_store
        from archive.store import open_store

        if not args.ids and not args.case:
            raise ConfigError("hold: give capture ids, or --case CASE [CLAIM_ID]...")
        config = load_config(args.store)
        store = open_store(config.store_uri)
        store.require_legal_holds()  # before anything else: a store without holds changes nothing
        case = _case(args.case) if args.case else None
        with open_index(config) as db:
            store = pinned_store(store, db)
            if case is not None:
                plan = plan_for_claims(db, store, case, args.ids)
            else:
                plan = plan_for_captures(db, store, args.ids)
            holds = apply_holds(
                store,
                open_custody(db, store, config),
                plan,
                on=not args.release,
                actor=args.actor or default_actor(),
                note=args.note,
            )
        if args.json:
            print(
                json.dumps(
                    {
                        "holds": [
                            {
                                **vars(h),
                                **plan.details(h.key),
                                **({"kept_for": plan.kept[h.key]} if h.key in plan.kept else {}),
                            }
                            for h in holds
                        ],
                        "gaps": plan.gaps,
                    },
                    indent=1,
                )
            )
            return 0
        for hold in holds:
            asked = plan.details(hold.key)
            named = asked["claims"] if case is not None else asked["captures"]
            kind = "claim" if case is not None else "capture"
            why = f"{kind}{'s' if len(named) > 1 else ''} {', '.join(named)}"
            verb = "held" if not args.release else "kept" if hold.key in plan.kept else "released"
            print(
                f"{verb} {hold.uri}  version {hold.version_id or '-'} (was {hold.previous})  {why}"
            )
            if hold.key in plan.kept:
                print(f"  still held for {'; '.join(plan.kept[hold.key])}: legal hold stays ON")
        for gap in plan.gaps:
            print(f"  GAP: claim {gap} has no capture; nothing held for it")
        action = "release" if args.release else "hold"
        if args.release:
            lifted = len(holds) - len(plan.kept)
            print(
                f"legal hold OFF on {lifted} WARC(s), kept ON on {len(plan.kept)} held for "
                f"something else; custody log: one '{action}' entry each"
            )
        else:
            print(f"legal hold ON on {len(holds)} WARC(s); custody log: one '{action}' entry each")
        return 0
