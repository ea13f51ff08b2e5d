#!/usr/bin/env python3
"""Airflow on this machine, embedded mode: ``make airflow`` / ``make airflow-stop``.

    python scripts/airflow_local.py start [--data DIR] [--port 8790] [--random-demo-ports]
    python scripts/airflow_local.py stop  [--data DIR]
    python scripts/airflow_local.py status [--data DIR]

``start`` runs Airflow 3 with SQLite and the LocalExecutor, its home in ``<data>/airflow``
(``<data>`` is ``ATTEST_HOME``, else the checkout's ``data/``), the checkout's ``dags/`` as its
DAG folder and the demo sources (``sources/demo.yaml``) as the registry. It serves the demo web
(``python -m demoweb --case``, on 127.0.0.1:8781-8783 like ``attest demo``, or free ports),
migrates the database, creates the pools (``attest airflow-pools``), then starts
``airflow api-server -H 127.0.0.1``, ``scheduler --skip-serve-logs``, ``dag-processor`` and
``triggerer --skip-serve-logs``, each in a session of its own, and waits for the API's health
before printing the URL and the login. ``airflow standalone`` is not used: its log servers
listen on all interfaces; here only 127.0.0.1 does. Process ids go to
``<data>/airflow/local/pids.json``, output to ``<data>/airflow/local/<service>.log``.

``stop`` sends SIGINT to each process, SIGTERM to its process group after a grace period, and
SIGKILL after another. Only the standard library is used; the venv is the one this Python runs
in if it has ``airflow``, else the checkout's ``.venv``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_PORTS = {"news": 8781, "ngo": 8782, "social": 8783}
USER = "admin"
SERVICES = {
    "api-server": ["api-server", "-H", "127.0.0.1", "-p", "{port}"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


def venv_bin() -> Path:
    here = Path(sys.executable).parent
    return here if (here / "airflow").exists() else ROOT / ".venv" / "bin"


def data_home(arg: str | None) -> Path:
    return Path(arg or os.environ.get("ATTEST_HOME") or ROOT / "data").expanduser().resolve()


def paths(data: Path) -> tuple[Path, Path, Path]:
    """(AIRFLOW_HOME, the launcher's directory, its pid file)."""
    home = data / "airflow"
    local = home / "local"
    return home, local, local / "pids.json"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def airflow_env(data: Path, port: int, demo: dict[str, str]) -> dict[str, str]:
    home, _, _ = paths(data)
    bin_dir = venv_bin()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CTX_"))}
    env.update(
        # Airflow starts `airflow ...` commands by name.
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        # Task workers call the API server's execution API: it moves with the port.
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USER}:admin",
        ATTEST_HOME=str(data),
        ATTEST_SOURCES=str(ROOT / "sources" / "demo.yaml"),
        DEMO_NEWS=demo["news"],
        DEMO_NGO=demo["ngo"],
        DEMO_SOCIAL=demo["social"],
    )
    # The demo web is on loopback, which the egress guard refuses unless allowed.
    allowed = [x for x in env.get("ATTEST_ALLOW_NETWORKS", "").split(",") if x]
    if "127.0.0.0/8" not in allowed:
        env["ATTEST_ALLOW_NETWORKS"] = ",".join([*allowed, "127.0.0.0/8"])
    return env


def spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            args, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def start_demo_web(local: Path, random_ports: bool) -> tuple[int, dict[str, str]]:
    log = local / "demo-web.log"
    log.write_text("")
    ports = [] if random_ports else [f"--port={s}={p}" for s, p in DEMO_PORTS.items()]
    proc = spawn(
        [str(venv_bin() / "python"), "-m", "demoweb", "--case", *ports], log,
        dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = log.read_text().partition("\n")
        if first[1]:
            origins = json.loads(first[0])
            if "error" in origins:
                raise SystemExit(
                    f"airflow-local: the demo web cannot start: {origins['error']}; stop what "
                    "uses that port, or use --random-demo-ports"
                )
            return proc.pid, origins
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"airflow-local: the demo web did not start (see {log})")


def check(args: list[str], env: dict[str, str], log: Path) -> None:
    with open(log, "ab") as out:
        code = subprocess.call(args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"airflow-local: {' '.join(args)} failed ({code}); see {log}")


def healthy(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def password(home: Path) -> str:
    passwords = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
    return str(passwords[USER])


def cmd_start(args: argparse.Namespace) -> int:
    data = data_home(args.data)
    home, local, pidfile = paths(data)
    if pidfile.exists():
        running = {k: v for k, v in json.loads(pidfile.read_text())["pids"].items() if alive(v)}
        if running:
            raise SystemExit(
                f"airflow-local: already running ({', '.join(running)}); `make airflow-stop` first"
            )
    local.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {}
    state = {"port": args.port, "data": str(data), "pids": pids}

    def save() -> None:
        pidfile.write_text(json.dumps(state, indent=1) + "\n")

    try:
        pids["demo-web"], demo = start_demo_web(local, args.random_demo_ports)
        save()
        env = airflow_env(data, args.port, demo)
        bin_dir = venv_bin()
        setup_log = local / "setup.log"
        print(f"airflow-local: migrating {home}/airflow.db ...", flush=True)
        check([str(bin_dir / "airflow"), "db", "migrate"], env, setup_log)
        check([str(bin_dir / "attest"), "airflow-pools"], env, setup_log)
        for name, argv in SERVICES.items():
            cmd = [str(bin_dir / "airflow"), *(a.format(port=args.port) for a in argv)]
            pids[name] = spawn(cmd, local / f"{name}.log", env).pid
            save()
        print("airflow-local: starting api-server, scheduler, dag-processor, triggerer ...",
              flush=True)  # fmt: skip
        deadline = time.monotonic() + args.timeout
        while not healthy(args.port):
            dead = [n for n, p in pids.items() if not alive(p)]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not healthy in {args.timeout}s"
                raise SystemExit(f"airflow-local: {why}; see {local}/*.log")
            time.sleep(1)
    except BaseException:
        stop(pidfile)
        raise
    login = {"url": f"http://127.0.0.1:{args.port}/", "username": USER,
             "password": password(home)}  # fmt: skip
    state.update(login=login, demo=demo)
    save()
    if args.json:
        print(json.dumps(state), flush=True)
        return 0
    print(
        f"\nAirflow is up: {login['url']}\n"
        f"  login:     {USER} / {login['password']}\n"
        f"  demo web:  {demo['news']} (news), {demo['ngo']} (NGO), {demo['social']} (social)\n"
        f"  data home: {data} (AIRFLOW_HOME {home}; logs {local}/)\n"
        "  DAGs start paused: unpause capture_url (or a source_demo-* DAG), then Trigger.\n"
        f"  stop: make airflow-stop{f' DATA={data}' if args.data else ''}",
        flush=True,
    )
    return 0


def stop(pidfile: Path, grace: float = 30) -> list[str]:
    """SIGINT each process, then SIGTERM, then SIGKILL its process group; the names stopped."""
    if not pidfile.exists():
        return []
    pids: dict[str, int] = json.loads(pidfile.read_text())["pids"]
    running = {n: p for n, p in pids.items() if alive(p) or group_alive(p)}
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(group_alive(p) for p in running.values()):
            time.sleep(0.2)
        # Then the group: a service's workers too (each service leads a session of its own).
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
    pidfile.unlink()
    return list(running)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmd_stop(args: argparse.Namespace) -> int:
    _, _, pidfile = paths(data_home(args.data))
    stopped = stop(pidfile, args.grace)
    print(
        f"airflow-local: stopped {', '.join(stopped)}" if stopped else "airflow-local: not running"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _, _, pidfile = paths(data_home(args.data))
    if not pidfile.exists():
        print("airflow-local: not running")
        return 1
    state = json.loads(pidfile.read_text())
    for name, pid in state["pids"].items():
        print(f"{name}: pid {pid} {'running' if alive(pid) else 'EXITED'}")
    if "login" in state:
        print(f"{state['login']['url']}  login: {USER} / {state['login']['password']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airflow_local.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start Airflow and the demo web; print URL and login")
    start.add_argument("--port", type=int, default=8790, help="the API server's (default 8790)")
    start.add_argument(
        "--random-demo-ports", action="store_true", help="serve the demo web on free ports"
    )
    start.add_argument("--timeout", type=float, default=180, help="seconds to wait for health")
    start.add_argument("--json", action="store_true", help="print the state as one JSON line")
    stop_ = sub.add_parser("stop", help="stop what start started (SIGINT, then SIGTERM)")
    stop_.add_argument("--grace", type=float, default=30, help="seconds before SIGTERM")
    status = sub.add_parser("status", help="which processes run; the URL and login")
    for p in (start, stop_, status):
        p.add_argument("--data", help="the data home (default: ATTEST_HOME, else ./data)")
    args = parser.parse_args(argv)
    return {"start": cmd_start, "stop": cmd_stop, "status": cmd_status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
