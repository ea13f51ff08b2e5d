"""The ``attest`` command: thin wiring over ``crawlers/`` and ``archive/``.

    attest demo                                   capture the bundled demo web into ./data
    attest crawl URL... [--max-pages N] [--depth N] [--store URI]
    attest crawl --sources FILE [--only ID]...    capture sources from the registry
    attest capture URL [--browser]                capture one page now: its capture id, hashes
    attest recover [--store URI]                  seal and upload what dead runs left in the spool
    attest verify FILE.warc.gz...                 check every record's digests, offline
    attest index [WARC_URI...] [--rebuild]        index stored WARCs (all not yet indexed)
    attest find URL [--at DATE | --from D --to D] list captures of a URL
    attest find --run RUN_ID                      what a run produced (DAG_ID/AIRFLOW_RUN_ID too)
    attest get URL --at DATE [-o FILE] [--record] write an archived payload or its record
    attest search WORDS...                        full-text search over captured pages
    attest serve [--host H] [--port N]            CDX API, Memento, replay, search, web page
    attest custody verify|seal                    check or seal the custody log
    attest claims CASE                            a case's claims, their captures and gaps
    attest claim link CASE CLAIM CAPTURE_ID       link a page's capture to a claim
    attest claim unlink CASE CLAIM CAPTURE_ID --reason TEXT   withdraw such a link (logged)
    attest export CASE [--claim ID]... -o B.wacz  a case's evidence as a signed WACZ bundle
    attest verify B.wacz [--trust FILE]...        check a bundle offline: files, records,
                                                  signature, timestamps, custody, claims
    attest keygen [-o KEY.pem]                    make an organisation signing key
    attest hold CAPTURE_ID... [--release]         S3 legal hold on the WARCs behind captures
    attest hold --case CASE [CLAIM_ID]...         ... behind a case's claims (all if none named)
    attest audit [WARC_URI...]                    re-verify stored WARCs (all indexed ones), logged
    attest airflow-pools [--sources PATH]...      create the registry's Airflow pools (politeness)

Exit status: 0 when everything worked, 1 when a capture or check failed (the summary says
what), 2 for bad input (nothing was changed); `attest verify` exits with 3 for a bundle that is
intact and signed but carries no timestamp ("signed, not timestamped").

One module per group of commands: :mod:`cli.capture` (demo, crawl, capture, recover),
:mod:`cli.records` (verify, index, find, get, search), :mod:`cli.serve`, :mod:`cli.evidence`
(claims, claim, export, keygen, hold), :mod:`cli.checks` (custody, audit) and
:mod:`cli.airflow` (airflow-pools); each command is a class with ``add_parser(sub)`` and
``run(args)`` (:class:`cli.base.Command`). A command parses, calls the library and prints
(:mod:`cli.output` for what several print); the logic is in ``archive/`` and ``crawlers/``,
which never import this package.
"""

from __future__ import annotations

import argparse
import os
import sys

from archive.errors import AttestError, ConfigError
from archive.logs import configure_logging
from cli import airflow, capture, checks, evidence, records, serve
from cli.base import Command

#: Every command, in the order ``attest --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    capture.Demo(),
    capture.Crawl(),
    capture.Capture(),
    capture.Recover(),
    records.Verify(),
    records.Index(),
    records.Find(),
    records.Get(),
    records.Search(),
    serve.Serve(),
    evidence.Claims(),
    evidence.Claim(),
    evidence.Export(),
    evidence.Keygen(),
    evidence.Hold(),
    checks.Audit(),
    airflow.AirflowPools(),
    checks.Custody(),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attest", description="Capture web evidence as verifiable WARCs."
    )
    parser.add_argument("--log-json", action="store_true", help="JSON log lines even on a terminal")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json_lines=True if args.log_json else None)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"attest: error: {exc}\n")
        return 2
    except AttestError as exc:
        sys.stderr.write(f"attest: failed: {exc}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (`attest claims X | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code
