"""``attest airflow-pools``: the registry's Airflow pools, planned by
:func:`crawlers.orchestration.plan.plan_pools`, created or updated in Airflow, or written as
JSON for ``airflow pools import``.

The Airflow calls (``airflow.models.pool.Pool``, not part of Airflow 3's public interface) are
here only; ``tests/test_third_party_canaries.py`` checks them (docs/adr/0005).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from archive.errors import ConfigError
from cli.base import Subcommands


class AirflowPools:
    """``attest airflow-pools [--sources PATH]... [--write FILE]``: one pool per source, or one
    per host pool that sources share (slots: the per-host concurrency), created or updated in
    Airflow's metadata database (``AIRFLOW_HOME``), or written as JSON. Refused, changing
    nothing, when two pools would crawl one host (the sources' URLs are resolved from the
    environment for this check)."""

    def add_parser(self, sub: Subcommands) -> None:
        pools = sub.add_parser(
            "airflow-pools",
            help="create or update the Airflow pools that keep each source polite across workers",
        )
        pools.add_argument(
            "--sources",
            action="append",
            metavar="PATH",
            help="registry file or directory (repeatable; default ATTEST_SOURCES, else sources/)",
        )
        pools.add_argument(
            "--write",
            metavar="FILE",
            help="write the pools as JSON for `airflow pools import` instead",
        )
        pools.set_defaults(func=self.run)

    def run(self, args: argparse.Namespace) -> int:
        import settings
        from crawlers.orchestration.plan import plan_pools

        paths = (
            [Path(p) for p in args.sources] if args.sources else settings.registry_paths(os.environ)
        )
        plan = plan_pools(paths, os.environ)
        for note in plan.unchecked:
            print(f"  not checked for shared hosts: {note}", file=sys.stderr)
        if args.write:
            Path(args.write).write_text(json.dumps(plan.pools, indent=1, sort_keys=True) + "\n")
            print(
                f"wrote {len(plan.pools)} pool(s) to {args.write} "
                "(load them: airflow pools import FILE)"
            )
            return 0
        try:
            from airflow.models.pool import Pool
        except ImportError:
            raise ConfigError(
                "Airflow is not installed here: install attest[airflow], or use --write FILE"
            ) from None
        for name, spec in sorted(plan.pools.items()):
            Pool.create_or_update_pool(
                name, spec["slots"], spec["description"], spec["include_deferred"]
            )
            print(f"pool {name}: {spec['slots']} slot(s)")
        for name in plan.stale(pool.pool for pool in Pool.get_pools()):
            print(f"  pool {name} has no source any more (airflow pools delete {name})")
        return 0
