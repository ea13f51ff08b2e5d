"""Airflow for the tests: a home and database of its own, used from processes of their own.

Airflow configures itself (logging, ORM, settings) from the environment when first imported,
so the tests never import it: they run ``airflow db migrate``, ``attest airflow-pools`` and
``tests/dags/airflow_probe.py`` as subprocesses with ``AIRFLOW_HOME`` in a temporary
directory, the DAG folder being the checkout's ``dags/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
PROBE = ROOT / "tests" / "dags" / "airflow_probe.py"
BIN = Path(sys.executable).parent


def airflow_env(home: Path, base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of an Airflow on SQLite in ``home``, with the checkout's DAGs."""
    env = {
        k: v
        for k, v in (os.environ if base is None else base).items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CTX_", "AIRFLOW_HOME"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        # Airflow starts `airflow ...` commands by name (STACK-NOTES §4c).
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run(
    args: list[str], env: Mapping[str, str], *, stdin: str = "", timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=dict(env), input=stdin, capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, check=False,
    )  # fmt: skip


def migrate(env: Mapping[str, str]) -> None:
    """``airflow db migrate``: the metadata database dag.test() needs."""
    proc = run([str(BIN / "airflow"), "db", "migrate"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def probe(args: list[str], env: Mapping[str, str], *, stdin: str = "") -> dict[str, Any]:
    """Run ``airflow_probe.py ARGS`` and return its answer; its output is kept for failures."""
    proc = run([sys.executable, str(PROBE), *args], env, stdin=stdin, timeout=400)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"probe {args} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n"
            f"--- stderr\n{proc.stderr[-6000:]}"
        )
    answer: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    answer["_output"] = proc.stdout + proc.stderr
    return answer
