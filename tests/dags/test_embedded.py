"""Embedded mode: ``scripts/airflow_local.py`` (``make airflow``) runs Airflow on this machine.

The launcher starts on free ports in a temporary data home; through the public REST API (a
JWT from ``/auth/token`` with the login it printed) the demo sources' DAGs and ``capture_url``
are listed without import errors, ``capture_url`` captures a page of the fixture web (on
loopback) and the capture is in the index (``attest find``); clearing its capture task (the
UI's "Clear", through the same API) captures anew under the next try number without touching
the first try's index rows. Every socket the launched
processes listen on is on 127.0.0.1; ``stop`` ends them all. Deselect with ``-m "not e2e"``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.index.db import IndexDB
from demoweb import FixtureWeb

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "scripts" / "airflow_local.py"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launcher_env() -> dict[str, str]:
    """The caller's environment without settings that would point elsewhere."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "ATTEST_")) and k not in ("DEMO_NEWS", "DEMO_NGO")
    }


def launch(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args], env=launcher_env(), cwd=ROOT,
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


class Api:
    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        token = self.call("POST", "/auth/token", {"username": username, "password": password})
        self.token = token["access_token"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {})},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")


def process_tree(roots: list[int]) -> set[int]:
    """The roots and every process descending from them, or in their process groups."""
    parents: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = (int(fields[1]), int(fields[2]))
    tree = {p for p in roots if p in parents}
    tree |= {p for p, (_, pgid) in parents.items() if pgid in roots}
    grown = True
    while grown:
        more = {p for p, (ppid, _) in parents.items() if ppid in tree} - tree
        tree |= more
        grown = bool(more)
    return tree


def listening(pids: set[int]) -> list[tuple[str, int]]:
    """(local address, pid) of each TCP socket in LISTEN held by one of ``pids`` (``ss``)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        for pid in map(int, re.findall(r"pid=(\d+)", line)):
            if pid in pids:
                found.append((fields[3], pid))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_run(
    api: Api, run_path: str, tree: set[int], sockets: list[tuple[str, int]], embedded: Any
) -> str:
    """The run's final state; meanwhile, the launched processes and their listening sockets."""
    deadline = time.monotonic() + 150
    while True:
        # Sample the processes while tasks run: the executor's workers are there now.
        tree |= process_tree(list(embedded["pids"].values()))
        sockets += listening(tree)
        state = str(api.call("GET", run_path)["state"])
        if state in ("success", "failed") or time.monotonic() > deadline:
            return state
        time.sleep(2)


def index_rows(index: Path) -> list[tuple[Any, ...]]:
    """(record id, WARC, URL, record type, row id) of every capture row, in row order."""
    with IndexDB(str(index)) as db:
        return [tuple(r) for r in db.rows(
            "SELECT record_id, warc_key, url, record_type, id FROM captures ORDER BY id")]  # fmt: skip


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("embedded-data")
    port = free_port()
    proc = launch(
        "start", "--data", str(data), "--port", str(port), "--random-demo-ports", "--json"
    )
    local = data / "airflow" / "local"
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(local.glob("*.log")))
    assert proc.returncode == 0, proc.stdout + proc.stderr + logs
    state = json.loads(proc.stdout.strip().splitlines()[-1])
    state["data_home"] = data
    try:
        yield state
    finally:
        launch("stop", "--data", str(data), "--grace", "20", timeout=120)


def test_embedded_airflow_captures_on_loopback_only(
    embedded: dict[str, Any], fixture_web: FixtureWeb
) -> None:
    login = embedded["login"]
    assert login["url"] == f"http://127.0.0.1:{embedded['port']}/"
    api = Api(login["url"], login["username"], login["password"])

    # The DAG processor parses dags/ after the API is up: wait for the four DAGs.
    wanted = {"capture_url", "source_demo-news", "source_demo-ngo", "source_demo-social"}
    deadline = time.monotonic() + 90
    while True:
        dags = {d["dag_id"] for d in api.call("GET", "/api/v2/dags?limit=100")["dags"]}
        if wanted <= dags or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert wanted <= dags, dags
    assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0

    url = fixture_web.url("news", "/article/3.html")
    api.call("PATCH", "/api/v2/dags/capture_url", {"is_paused": False})
    run = api.call(
        "POST", "/api/v2/dags/capture_url/dagRuns",
        {"logical_date": None, "conf": {"urls": [url], "note": "embedded test"}},
    )  # fmt: skip
    run_path = f"/api/v2/dags/capture_url/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"
    sockets: list[tuple[str, int]] = []
    tree: set[int] = set()
    state = wait_for_run(api, run_path, tree, sockets, embedded)
    tasks = api.call("GET", run_path + "/taskInstances")["task_instances"]
    assert state == "success", [(t["task_id"], t["state"]) for t in tasks]

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    found = subprocess.run(
        [str(BIN / "attest"), "find", url, "--json"], capture_output=True, text=True,
        env=dict(env, ATTEST_HOME=str(embedded["data_home"])), cwd=ROOT, check=False,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    captures = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    assert captures, found.stdout
    assert all(c["url"] == url for c in captures), captures

    # "Clear" in the UI (its REST call): the capture and everything after it run again under
    # try 2. That try captures anew, into a WARC and records of its own; the first try's rows
    # stay as they were and no record is indexed twice.
    index = embedded["data_home"] / "index.sqlite"
    before = index_rows(index)
    cleared = api.call(
        "POST", "/api/v2/dags/capture_url/clearTaskInstances",
        {"dry_run": False, "dag_run_id": run["dag_run_id"], "task_ids": ["capture_now"],
         "include_downstream": True, "only_failed": False, "reset_dag_runs": True},
    )  # fmt: skip
    assert {t["task_id"] for t in cleared["task_instances"]} >= {"capture_now", "index"}
    state = wait_for_run(api, run_path, tree, sockets, embedded)
    tasks = api.call("GET", run_path + "/taskInstances")["task_instances"]
    assert state == "success", [(t["task_id"], t["state"]) for t in tasks]
    tries = {t["task_id"]: t["try_number"] for t in tasks}
    assert tries["check_request"] == 1
    assert tries["capture_now"] == tries["index"] == 2
    after = index_rows(index)
    assert after[: len(before)] == before  # the first try's rows, unchanged
    new_rows = after[len(before) :]
    assert url in {r[2] for r in new_rows if r[3] == "response"}  # the page, captured again
    warcs = [str(r[1]) for r in after]
    assert set(warcs[len(before) :]).isdisjoint(warcs[: len(before)])  # a new WARC
    ids = [r[0] for r in after]
    assert len(ids) == len(set(ids)), "a record is indexed twice"

    # Only loopback: the API server and the demo web, nothing on all interfaces.
    assert sockets, "no listening socket found: is `ss -p` showing our processes?"
    ports = {addr.rsplit(":", 1)[1] for addr, _ in sockets}
    assert str(embedded["port"]) in ports
    assert all(addr.startswith("127.0.0.1:") for addr, _ in sockets), sockets

    stopped = launch("stop", "--data", str(embedded["data_home"]), "--grace", "20", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert "api-server" in stopped.stdout, stopped.stdout
    assert "scheduler" in stopped.stdout, stopped.stdout
    tree |= process_tree(list(embedded["pids"].values()))
    left = sorted(p for p in tree if alive(p))
    assert not left, [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]
