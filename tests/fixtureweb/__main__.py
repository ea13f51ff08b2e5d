"""Serve the fixture web in the foreground: ``python -m fixtureweb [--articles N]``.

Prints one JSON line with each site's origin, then serves until interrupted. Benchmarks run it
as a separate process so its CPU is not counted as the crawler's.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from fixtureweb.web import FixtureWeb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fixtureweb")
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--releases", type=int, default=25)
    parser.add_argument("--photos", type=int, default=0, help="extra photos per article")
    parser.add_argument("--markup-kb", type=int, default=0, help="inline markup per article")
    parser.add_argument(
        "--social-posts", type=int, default=0, help="posts of the social profile @bench"
    )
    args = parser.parse_args(argv)
    web = FixtureWeb(
        articles=args.articles,
        releases=args.releases,
        photos=args.photos,
        markup_kb=args.markup_kb,
        social_posts=args.social_posts,
    ).start()
    print(json.dumps({name: server.origin for name, server in web.servers.items()}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    web.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
