"""Records: ``attest verify``, ``index``, ``find``, ``get`` and ``search``.

Checking WARC files and bundles offline; indexing stored WARCs; looking captures up in the
index (:func:`archive.index.query.find_captures`), writing one out, searching page texts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from archive.errors import ConfigError
from cli.base import Subcommands, load_config, open_custody, open_index
from cli.output import index_progress

#: ``attest verify``'s exit status for a bundle that is intact and signed, with no timestamp.
EXIT_NOT_TIMESTAMPED = 3
NOT_TIMESTAMPED_MEANS = """\
  The files, the WARC records and the signature hold: the bundle is exactly what its signer
  signed. But no timestamp authority dated it, so nothing independent of the signer shows when
  it existed (the signer's own clock is in it, not proven). Export again with timestamp
  authorities configured (ATTEST_TSA_URLS; see docs/LEGAL.md) for a bundle that proves both.
  Exit status 3: signed, not timestamped (0: verified; 1: a check failed)."""

#: How far (microseconds) the capture ``attest get`` writes may be from ``--at`` before it warns.
FAR_FROM_ASKED = 86_400 * 1_000_000


class Verify:
    """``attest verify FILE...``: WARC files and WACZ bundles, offline; a bundle is checked
    whole (:mod:`archive.evidence.verify`)."""

    def add_parser(self, sub: Subcommands) -> None:
        ver = sub.add_parser("verify", help="verify WARC files and WACZ bundles offline")
        ver.add_argument("files", nargs="+", metavar="FILE")
        ver.add_argument(
            "--trust",
            action="append",
            metavar="FILE",
            help="PEM trust anchors: trusted public keys and root certificates "
            "(repeatable; default ATTEST_TRUST)",
        )
        ver.add_argument("--json", action="store_true")
        ver.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.evidence.verify import NOT_TIMESTAMPED, verify_bundle
        from archive.trust.signing import load_trust
        from archive.warc.read import verify_warc

        trust_files = [Path(t) for t in args.trust] if args.trust else list(load_config().trust)
        trust = load_trust(trust_files)
        failed = unstamped = 0
        out: list[dict[str, Any]] = []
        for name in args.files:
            path = Path(name)
            if not path.is_file():
                raise ConfigError(f"{name}: no such file")
            if path.suffix == ".wacz":
                bundle = verify_bundle(path, trust)
                failed += not bundle.ok
                unstamped += bundle.status == NOT_TIMESTAMPED
                out.append(
                    {
                        "file": str(path),
                        "ok": bundle.ok,
                        "verdict": bundle.status,
                        "checked": bundle.checked,
                        "notes": bundle.notes,
                        "problems": [vars(f) for f in bundle.failures],
                    }
                )
                continue
            verdict = verify_warc(path, keep_records=False)
            failed += not verdict.ok
            out.append(
                {
                    "file": verdict.file,
                    "ok": verdict.ok,
                    "records": verdict.record_count,
                    "problems": [vars(p) for p in verdict.problems],
                    "_text": [str(p) for p in verdict.problems],
                }
            )
        if args.json:
            shown = [{k: v for k, v in o.items() if not k.startswith("_")} for o in out]
            print(json.dumps(shown, indent=1))
        else:
            for o in out:
                status = "OK" if o["ok"] else "FAILED"
                if "checked" in o:
                    if o["verdict"] == NOT_TIMESTAMPED:
                        status = "SIGNED, NOT TIMESTAMPED"
                    summary = ", ".join(f"{k} {v}" for k, v in o["checked"].items())
                    print(f"{status} {o['file']}: {summary}")
                    for note in o["notes"]:
                        print(f"  {note}")
                    for f in o["problems"]:
                        rid = f" record {f['record_id']}" if f["record_id"] else ""
                        print(f"  {f['check']}: {f['file']}{rid}: {f['detail']}")
                    if o["verdict"] == NOT_TIMESTAMPED:
                        print(NOT_TIMESTAMPED_MEANS)
                else:
                    print(f"{status} {o['file']}: {o['records']} records")
                    for line in o["_text"]:
                        print(f"  {line}")
        if failed:
            return 1
        return EXIT_NOT_TIMESTAMPED if unstamped else 0


class Index:
    """``attest index [WARC_URI...] [--rebuild]``: index stored WARCs (all not yet indexed)."""

    def add_parser(self, sub: Subcommands) -> None:
        idx = sub.add_parser(
            "index", help="index stored WARCs (CDXJ beside each, rows in the index DB)"
        )
        idx.add_argument(
            "warcs",
            nargs="*",
            metavar="WARC_URI",
            help="WARC URIs or keys (default: all not yet indexed)",
        )
        idx.add_argument(
            "--rebuild", action="store_true", help="empty the index and rebuild it from the store"
        )
        idx.add_argument("--store", help="store URI")
        idx.add_argument(
            "--workers", type=int, help="processes reading WARCs (default: the CPUs, at most 8)"
        )
        idx.add_argument("--json", action="store_true")
        idx.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.ingest.indexer import index_keys, rebuild, resolve_warc_key, warc_keys
        from archive.store import open_store

        config = load_config(args.store)
        store = open_store(config.store_uri)
        if args.rebuild and args.warcs:
            raise ConfigError("--rebuild indexes the whole store: give no WARC with it")
        keys = [resolve_warc_key(store, w) for w in args.warcs]
        if args.workers is not None and not 1 <= args.workers <= 64:
            raise ConfigError(f"--workers {args.workers}: use 1 to 64")
        workers = args.workers or min(os.cpu_count() or 1, 8)
        with open_index(config) as db:
            custody = open_custody(db, store, config)
            todo = list(warc_keys(store)) if args.rebuild or not keys else keys
            with index_progress(len(todo)) as progress:
                if args.rebuild:
                    results = rebuild(
                        db, store, custody=custody, progress=progress, workers=workers
                    )
                else:
                    results = index_keys(
                        db, store, todo, custody=custody, progress=progress, workers=workers
                    )
            counts = db.counts()
        failed = [r for r in results if r.error]
        flawed = [r for r in results if r.problems]
        if args.json:
            print(
                json.dumps({"results": [r.as_dict() for r in results], "index": counts}, indent=1)
            )
        else:
            _print_indexed(results, failed, flawed, counts)
        return 1 if failed or flawed else 0


def _print_indexed(
    results: list[Any], failed: list[Any], flawed: list[Any], counts: dict[str, int]
) -> None:
    done = [r for r in results if not r.error and not r.skipped]
    skipped = [r for r in results if r.skipped]
    # A record can fail several checks: count records (offsets), list every check.
    left_out = sum(len({p["offset"] for p in r.problems}) for r in flawed)
    print(
        f"indexed {len(done)} WARC(s) ({sum(r.added for r in done)} rows added), "
        f"{len(skipped)} already indexed, {len(failed)} failed"
        + (f", {left_out} record(s) left out of {len(flawed)} WARC(s)" if flawed else "")
    )
    for r in failed:
        print(f"  FAILED {r.key}: {r.error}")
    for r in flawed:
        bad = len({p["offset"] for p in r.problems})
        print(f"  PROBLEMS {r.key}: {bad} record(s) failed their checks, not indexed")
        for p in r.problems[:10]:
            rid = f" record {p['record_id']}" if p.get("record_id") else ""
            print(f"    {p['check']} at offset {p['offset']}{rid}: {p['detail']}")
        if len(r.problems) > 10:
            print(f"    ... and {len(r.problems) - 10} more (attest index --json lists them all)")
    print(
        f"index: {counts['warcs']} WARCs, {counts['records']} records, {counts['texts']} page texts"
    )


def _lookup_arguments(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    """The URL and how to match it, shared by ``find`` and ``get``."""
    if optional:
        p.add_argument("url", metavar="URL", nargs="?", help="default: all of --run")
    else:
        p.add_argument("url", metavar="URL")
    p.add_argument("--match", choices=("exact", "prefix", "host", "domain"), default="exact")
    p.add_argument("--at", metavar="DATE", help="ISO 8601 or 14 digits: closest first")
    p.add_argument("--store", help="store URI")


def _when(value: str | None, what: str, bound: Any = "exact") -> int | None:
    from archive.dates import parse_when

    return None if value is None else parse_when(value, bound=bound, what=what)


def _find_rows(
    db: Any,
    url: str,
    match: str,
    *,
    at: str | None,
    date_from: str | None = None,
    date_to: str | None = None,
    limit: int,
    all_records: bool = False,
    run: str | None = None,
) -> list[Any]:
    """The captures of ``url`` the options ask for, their dates read as the options name them."""
    from archive.index.query import find_captures

    if at and (date_from or date_to):
        raise ConfigError("give either --at or --from/--to, not both")
    ts_from = _when(date_from, "--from", "low")
    ts_to = _when(date_to, "--to", "high")
    closest = _when(at, "--at", "exact")
    if ts_from is not None and ts_to is not None and ts_from > ts_to:
        raise ConfigError("--from is after --to")
    return find_captures(
        db,
        url,
        match,
        ts_from=ts_from,
        ts_to=ts_to,
        closest=closest,
        limit=limit,
        all_records=all_records,
        run=run,
    )


def _print_rows(rows: list[Any], *, as_json: bool) -> None:
    """Index rows: one JSON object each, or two lines each for people."""
    from archive.dates import iso
    from archive.index.query import field_values

    for row in rows:
        if as_json:
            values = field_values(row)
            values["datetime"] = iso(row.ts)
            print(json.dumps(values, ensure_ascii=False))
            continue
        status = row.status if row.status is not None else "-"
        print(f"{iso(row.ts)}  {status!s:>3}  {row.record_type:<8} {row.mime:<24} {row.url}")
        print(f"    {row.record_id}  {row.digest or '-'}  {row.warc_key}@{row.offset}")


class Find:
    """``attest find URL [--at DATE | --from D --to D]``: list captures of a URL;
    ``attest find --run RUN_ID``: what a run produced (``DAG_ID/AIRFLOW_RUN_ID`` too)."""

    def add_parser(self, sub: Subcommands) -> None:
        find = sub.add_parser("find", help="list captures of a URL, or what a run produced")
        _lookup_arguments(find, optional=True)
        find.add_argument("--from", dest="date_from", metavar="DATE")
        find.add_argument("--to", dest="date_to", metavar="DATE")
        find.add_argument("--limit", type=int, default=1000)
        find.add_argument(
            "--run",
            metavar="RUN_ID",
            help="only what this run captured: an attest run id, or DAG_ID/AIRFLOW_RUN_ID",
        )
        find.add_argument(
            "--all-records", action="store_true", help="also metadata and request records"
        )
        find.add_argument("--json", action="store_true", help="one JSON object per line")
        find.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        if args.url is None:
            if not args.run:
                raise ConfigError("find: give a URL, or --run RUN_ID for what a run produced")
            if args.at or args.date_from or args.date_to or args.match != "exact":
                raise ConfigError("find --run without a URL takes no --at, --from, --to or --match")
            return self._run_contents(args)
        config = load_config(args.store)
        with open_index(config) as db:
            rows = _find_rows(
                db,
                args.url,
                args.match,
                at=args.at,
                date_from=args.date_from,
                date_to=args.date_to,
                limit=args.limit,
                all_records=args.all_records,
                run=args.run,
            )
        _print_rows(rows, as_json=args.json)
        if not rows:
            sys.stderr.write(f"attest: no capture of {args.url} matches\n")
            return 1
        return 0

    def _run_contents(self, args: argparse.Namespace) -> int:
        """``attest find --run RUN`` with no URL: the WARCs and records a run produced."""
        from archive.index.query import ALL_RECORD_TYPES

        config = load_config(args.store)
        with open_index(config) as db:
            warcs = db.run_warcs(args.run)
            rows = db.run_records(
                [str(w["warc_key"]) for w in warcs],
                limit=args.limit,
                **({"record_types": ALL_RECORD_TYPES} if args.all_records else {}),
            )
        if not warcs:
            sys.stderr.write(f"attest: no indexed WARC of run {args.run}\n")
            return 1
        if args.json:
            for w in warcs:
                info = w["warcinfo"]
                print(
                    json.dumps(
                        {
                            "warc": w["warc_key"],
                            "sha256": w["sha256"],
                            "size": w["size"],
                            "records": w["records"],
                            "run_id": w["run_id"],
                            "source": w["source"],
                            "warcinfo": json.loads(info) if isinstance(info, str) else info,
                        },
                        ensure_ascii=False,
                    )
                )
            _print_rows(rows, as_json=True)
            return 0
        runs = sorted({str(w["run_id"]) for w in warcs})
        print(
            f"run {args.run}: {len(warcs)} WARC(s), {sum(int(w['records']) for w in warcs)} "
            f"record(s), attest run(s) {', '.join(runs)}"
        )
        for w in warcs:
            print(f"  WARC {w['warc_key']}  {w['records']} records  sha256 {w['sha256']}")
        _print_rows(rows, as_json=False)
        return 0


def _distance(micros: int) -> str:
    """``790 days 8 hours after``: a time difference in words, for people."""
    minutes = abs(micros) // 60_000_000
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour")] if days else [(hours, "hour"), (minutes, "minute")]
    text = " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n) or "0 minutes"
    return f"{text} {'after' if micros > 0 else 'before'}"


class Get:
    """``attest get URL --at DATE [-o FILE] [--record]``: write an archived payload (decoded)
    or its whole record, as stored; the read is logged in the custody log."""

    def add_parser(self, sub: Subcommands) -> None:
        get = sub.add_parser("get", help="write the archived payload (decoded) or the raw record")
        _lookup_arguments(get)
        get.add_argument("-o", "--output", metavar="FILE")
        get.add_argument("--force", action="store_true", help="replace FILE if it exists")
        get.add_argument("--record", action="store_true", help="the whole WARC record, as stored")
        get.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.dates import iso
        from archive.index.retrieve import load_payload, pinned_store, raw_record
        from archive.store import open_store

        config = load_config(args.store)
        if not args.at:
            raise ConfigError(
                "get: --at DATE is required (ISO 8601 or 14 digits; the closest capture is written)"
            )
        store = open_store(config.store_uri)
        with open_index(config) as db:
            store = pinned_store(store, db)
            rows = _find_rows(db, args.url, args.match, at=args.at, limit=1)
            if not rows:
                sys.stderr.write(f"attest: no capture of {args.url} (match {args.match})\n")
                return 1
            row = rows[0]
            if args.record:
                data = raw_record(store, row)
                if data[:2] == b"\x1f\x8b":
                    import gzip

                    data = gzip.decompress(data)
            else:
                data = load_payload(store, row).decoded()
            open_custody(db, store, config).append(
                "read",
                row.record_id,
                {
                    "url": row.url,
                    "warc": store.object_uri(row.warc_key),
                    "offset": row.offset,
                    "via": "attest get",
                    "as": "record" if args.record else "payload",
                },
            )
        asked = _when(args.at, "--at", "exact")
        assert asked is not None
        if abs(row.ts - asked) > FAR_FROM_ASKED:
            sys.stderr.write(
                f"warning: the closest capture was made {_distance(row.ts - asked)} the time "
                f"asked ({iso(asked)}): it shows the page as it was then, not at --at\n"
            )
        if args.output:
            out = Path(args.output)
            if out.exists() and not args.force:
                raise ConfigError(f"{out}: exists (use --force to replace it)")
            out.write_bytes(data)
            sys.stderr.write(
                f"wrote {len(data)} bytes of {row.url} captured {iso(row.ts)} "
                f"(capture {row.record_id})\n"
            )
        else:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        return 0


class Search:
    """``attest search WORDS...``: full-text search over the text of captured pages."""

    def add_parser(self, sub: Subcommands) -> None:
        search = sub.add_parser("search", help="full-text search over the text of captured pages")
        search.add_argument("words", nargs="+", metavar="WORD")
        search.add_argument("--limit", type=int, default=20)
        search.add_argument("--json", action="store_true")
        search.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        from archive.dates import iso

        config = load_config()
        query = " ".join(args.words)
        if not query.strip():
            raise ConfigError("search: give at least one word")
        with open_index(config) as db:
            hits = db.search(query, limit=args.limit)
        if args.json:
            for hit in hits:
                print(
                    json.dumps(
                        {
                            "url": hit.url,
                            "datetime": iso(hit.ts),
                            "snippet": hit.snippet,
                            "record_id": hit.record_id,
                        },
                        ensure_ascii=False,
                    )
                )
        else:
            for hit in hits:
                print(f"{iso(hit.ts)}  {hit.url}\n    {hit.snippet}")
        if not hits:
            sys.stderr.write(f"attest: no captured page matches {query!r}\n")
            return 1
        return 0
