"""``attest serve``: the retrieval service (:mod:`archive.serve`) as the settings configure it:
CDX API, Memento, replay, search and a web page, with the actions of its signed-in users."""

from __future__ import annotations

import argparse
import os

from cli.base import Subcommands, load_config


class Serve:
    """``attest serve [--host H] [--port N]``: serve until stopped."""

    def add_parser(self, sub: Subcommands) -> None:
        srv = sub.add_parser("serve", help="CDX API, Memento, replay (pywb), search and a web page")
        srv.add_argument("--host", default="127.0.0.1")
        srv.add_argument("--port", type=int, default=8700)
        srv.add_argument("--no-replay", action="store_true", help="do not start pywb")
        srv.add_argument("--store", help="store URI")
        srv.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        import settings
        from archive.serve.actions import ActionSettings
        from archive.serve.app import ServeOptions, serve

        config = load_config(args.store)
        key = config.signing_key_path
        return serve(
            ServeOptions(
                host=args.host,
                port=args.port,
                index_url=config.index_url,
                store_uri=config.store_uri,
                tokens_file=config.tokens_file,
                replay=not args.no_replay,
                replay_venv=config.replay_venv,
                home=config.home,
                actions=ActionSettings(
                    case_dirs=tuple(settings.case_dirs(os.environ)),
                    exports=config.home / "exports",
                    signing_key=key if key.is_file() else None,
                    signing_cert=config.signing_cert,
                    tsa_urls=tuple(config.tsa_urls),
                    tsa_chains=tuple(config.tsa_chains),
                    chromium=config.chromium,
                ),
                custody_attestor=config.custody_attestor(),
            )
        )
