"""What every command shares: the form of a command (:class:`Command`), and the configuration,
index database and custody log it works with, opened as settings.py and its options say.

Heavy imports stay inside the functions: ``attest --help`` loads none of them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Protocol, TypeAlias

#: The ``sub`` a command adds its parser to: ``parser.add_subparsers()``.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

#: The folder that holds this package (the checkout, when it runs from one): its ``sources/``
#: and ``cases/`` are found from any working directory.
CHECKOUT = Path(__file__).resolve().parents[1]


class Command(Protocol):
    """One ``attest`` command: its parser (with ``func`` set to :meth:`run`), and its run."""

    def add_parser(self, sub: Subcommands) -> None:
        """Add the command's parser, its arguments and ``func=self.run`` to ``sub``."""

    def run(self, args: argparse.Namespace) -> int:
        """Do what ``args`` ask; the exit status (0 done, 1 a capture or check failed)."""


def load_config(store: str | None = None) -> Any:
    """attest's settings from the environment (``--store``, when given, names the store)."""
    import settings

    return settings.load_config(store=store)


def run_options(config: Any) -> Any:
    """A capture run's options: the settings, with the Airflow ids of the environment."""
    from crawlers.orchestration.run import options_from_config
    from crawlers.orchestration.warcinfo import airflow_context

    return options_from_config(config, airflow=airflow_context(dict(os.environ)))


def open_index(config: Any) -> Any:
    """The index database of the settings (a context manager that closes it)."""
    from archive.index.db import IndexDB

    return IndexDB(config.index_url)


def open_custody(db: Any, store: Any, config: Any = None) -> Any:
    """The custody log, signing and timestamping the segments it seals as configured."""
    from archive.custody.log import CustodyLog

    return CustodyLog(db, store, attestor=(config or load_config()).custody_attestor())
