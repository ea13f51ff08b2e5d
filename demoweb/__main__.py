"""Serve the fixture web in the foreground: ``python -m demoweb [--articles N] ...``.

Prints one JSON line with each site's origin, then serves until interrupted. Benchmarks run it
as a separate process so its CPU is not counted as the crawler's; ``attest demo`` runs it as
``python -m demoweb --case --port news=8781 --port ngo=8782 --port social=8783``.

``--port SITE=PORT`` serves a site on a fixed port (the others get free ones). When a site
cannot listen (its port is taken), the JSON line is ``{"error": "..."}`` naming the site and
the port, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from demoweb.web import SITES, FixtureWeb


def site_port(value: str) -> tuple[str, int]:
    """``news=8781`` -> ("news", 8781)."""
    name, sep, port = value.partition("=")
    if not sep or name not in SITES or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give SITE=PORT, SITE one of {', '.join(SITES)}, PORT 0-65535"
        )
    return name, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demoweb")
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--releases", type=int, default=25)
    parser.add_argument("--photos", type=int, default=0, help="extra photos per article")
    parser.add_argument("--markup-kb", type=int, default=0, help="inline markup per article")
    parser.add_argument(
        "--social-posts", type=int, default=0, help="posts of the social profile @bench"
    )
    parser.add_argument(
        "--case", action="store_true", help="serve the demo case's pages too (demoweb.case)"
    )
    parser.add_argument(
        "--port",
        type=site_port,
        action="append",
        default=[],
        metavar="SITE=PORT",
        help="serve SITE on a fixed port (repeatable; default: a free port per site)",
    )
    args = parser.parse_args(argv)
    web = FixtureWeb(
        articles=args.articles,
        releases=args.releases,
        photos=args.photos,
        markup_kb=args.markup_kb,
        social_posts=args.social_posts,
        case=args.case,
        ports=dict(args.port),
    )
    try:
        web.start()
    except OSError as exc:
        print(json.dumps({"error": exc.strerror or str(exc)}), flush=True)
        return 2
    print(json.dumps({name: server.origin for name, server in web.servers.items()}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    web.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
