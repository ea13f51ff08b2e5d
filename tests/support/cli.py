"""Running ``attest`` as a user would: the CLI in a subprocess of its own."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_attest(
    args: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m cli ARGS`` from the checkout, with ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


@contextmanager
def demo_ports() -> Iterator[None]:
    """Hold the demo web's fixed ports (127.0.0.1:8781-8783) for one ``attest demo`` at a time.

    Test sessions running side by side on one machine take turns (a lock file in the temporary
    directory); anything else holding a port makes ``attest demo`` fail with its name.
    """
    with open(Path(tempfile.gettempdir()) / "attest-demo-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
