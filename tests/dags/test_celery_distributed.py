"""The distributed mode: CeleryExecutor, Redis as broker, PostgreSQL as metadata DB and index,
S3 (SeaweedFS) as store, two Celery workers, all on this machine.

The test starts what an operator would start on several machines: ``airflow api-server``,
``scheduler``, ``dag-processor`` and two ``airflow celery worker`` processes (distinct
``--celery-hostname``, ``--skip-serve-logs``: both would bind 8793 otherwise), every one bound to
127.0.0.1. It triggers a source's DAG over the fixture web through the REST API, waits for the
run to succeed, then checks from the outside that

- the capture tasks ran under two distinct worker identities (``task_instance.hostname``, which
  each worker reports as its Celery node name, see :data:`WORKER_IDENTITY`), and
- the WARC records in the S3 bucket and the index rows of those WARCs match one for one
  (WARC key, record id, offset), every WARC having its row in the ``warcs`` table.

It uses PostgreSQL databases of its own (created and dropped here), a Redis database number
that was empty and a key prefix of its own (only those keys are deleted at the end), and a
fresh bucket. Each worker has an ``ATTEST_HOME`` of its own: its spool, as on another machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import redis
from support.airflow_home import BIN, ROOT, airflow_env, migrate, run
from support.seaweed import SeaweedServer, s3_records

from demoweb import FixtureWeb

pytestmark = pytest.mark.e2e

ADMIN_DSN = os.environ.get("ATTEST_TEST_PG", "postgresql://root@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
SOURCE = "fixture-spread"
DAG_ID = f"source_{SOURCE}"
WORKERS = ("attest-w1", "attest-w2")
# Three seeds, one per batch: three capture tasks for two workers, two at a time (the pool).
REGISTRY = f"""
sources:
  - id: {SOURCE}
    kind: news
    title: Three articles, one capture task each, spread over two Celery workers
    seeds:
      - "${{FIXTURE_NEWS}}/article/1.html"
      - "${{FIXTURE_NEWS}}/article/2.html"
      - "${{FIXTURE_NEWS}}/article/3.html"
    scope: {{max_depth: 0}}
    politeness: {{concurrency_per_host: 2}}
"""
# [core] hostname_callable of the workers: the Celery node name the task is running under (the
# supervisor of a task runs inside the Celery task), so task_instance.hostname tells the two
# workers apart although they share this machine's name.
WORKER_IDENTITY = """
import os


def hostname() -> str:
    try:
        from celery import current_task

        name = current_task.request.hostname if current_task else None
    except Exception:
        name = None
    return name or os.uname().nodename
"""
START_TIMEOUT = 150.0
RUN_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM if pytest dies without tearing down (Linux only)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """The Airflow processes, started and stopped (SIGINT, then SIGTERM) by the test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.components: list[Component] = []
        self.closing: list[Any] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Component:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [str(BIN / "airflow"), *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        component = Component(name, process, log)
        self.components.append(component)
        return component

    def check_alive(self) -> None:
        for c in self.components:
            if c.process.poll() is not None:
                raise AssertionError(
                    f"{c.name} exited with {c.process.returncode}:\n{c.tail()}\n{self.logs()}"
                )

    def listening(self) -> set[tuple[str, str, int]]:
        """(component, address, port) of every socket the processes listen on."""
        found = set()
        for c in self.components:
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(c.process.pid)
                for proc in [parent, *parent.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        for conn in proc.net_connections(kind="inet"):
                            if conn.status == psutil.CONN_LISTEN:
                                found.add((c.name, conn.laddr.ip, conn.laddr.port))
        return found

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {c.name}\n{c.tail(lines)}" for c in self.components)

    def stop(self) -> None:
        for close in self.closing:
            close()
        for c in self.components:
            if c.process.poll() is None:
                c.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        for c in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for c in self.components:
            if c.process.poll() is None:
                c.process.terminate()
                try:
                    c.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    # its own session: the process group holds only what it started
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(c.process.pid, signal.SIGKILL)
                    c.process.wait()
            # what a component left behind in its session (Celery pool children, ...)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(c.process.pid, signal.SIGTERM)


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Two new PostgreSQL databases: Airflow's metadata and attest's index (libpq URLs)."""
    tag = uuid.uuid4().hex[:12]
    names = {"metadata": f"airflow_test_{tag}", "index": f"attest_test_{tag}"}
    base = ADMIN_DSN.rsplit("/", 1)[0]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {role: f"{base}/{name}" for role, name in names.items()}
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_broker() -> Iterator[tuple[str, str]]:
    """(broker URL, key prefix): an empty Redis database number, and keys of our own in it."""
    prefix = f"attest-test-{uuid.uuid4().hex[:12]}:"
    chosen = None
    for db in range(15, 0, -1):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        try:
            if client.dbsize() == 0:
                chosen = db
                break
        except redis.ConnectionError as exc:
            pytest.fail(
                f"Redis is not running on {REDIS_HOST}:{REDIS_PORT} (.ci/run starts it): {exc}"
            )
        finally:
            client.close()
    if chosen is None:
        pytest.fail("no empty Redis database among 1-15 on 127.0.0.1:6379")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{chosen}", prefix
    finally:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=chosen)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def wait_for(what: str, check: Any, stack: Stack, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"{what}: not after {timeout:.0f} s\n{stack.logs()}")


def metadata_rows(dsn: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_source_runs_on_two_celery_workers_into_s3_and_postgresql(
    fixture_web: FixtureWeb,
    seaweedfs: SeaweedServer,
    s3_bucket: str,
    databases: dict[str, str],
    redis_broker: tuple[str, str],
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    broker, key_prefix = redis_broker
    home = tmp_path / "airflow"
    home.mkdir()
    identity = tmp_path / "identity"
    identity.mkdir()
    (identity / "attest_test_worker_identity.py").write_text(WORKER_IDENTITY)
    registry = tmp_path / "sources.yaml"
    registry.write_text(REGISTRY)
    port = free_port()
    meta = databases["metadata"]
    sql_meta = meta.replace("postgresql://", "postgresql+psycopg2://", 1)
    env = airflow_env(
        home,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sql_meta,
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=broker,
        AIRFLOW__CELERY__RESULT_BACKEND=f"db+{meta}",
        AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=key_prefix,
        AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT="3600",
        # One task at a time per worker, none reserved ahead: batches spread over both.
        AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
        AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER="1",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__PARALLELISM="8",
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="False",  # its server would bind 0.0.0.0
        ATTEST_SOURCES=str(registry),
        ATTEST_BATCH_SEEDS="1",
        ATTEST_STORE=f"s3://{s3_bucket}/evidence",
        ATTEST_INDEX=databases["index"],
        ATTEST_ALLOW_NETWORKS="127.0.0.0/8",
        ATTEST_ACTOR="celery-test",
        ATTEST_HOME=str(tmp_path / "home-control"),
        FIXTURE_NEWS=fixture_web.url("news", ""),
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-creds"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(seaweedfs.env())
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "ATTEST_S3_OBJECT_LOCK_DAYS", "ATTEST_TOKENS"):  # fmt: skip
        env.pop(name, None)

    migrate(env)
    pools = run([sys.executable, "-m", "cli", "airflow-pools"], env)
    assert pools.returncode == 0, pools.stderr[-3000:]
    setup_s = time.monotonic() - started

    stack = Stack(tmp_path)
    try:
        stack.start("api-server", ["api-server", "-H", "127.0.0.1", "-p", str(port)], env)
        stack.start("scheduler", ["scheduler", "--skip-serve-logs"], env)
        stack.start("dag-processor", ["dag-processor"], env)
        for name in WORKERS:
            worker_env = dict(
                env,
                ATTEST_HOME=str(tmp_path / f"home-{name}"),
                AIRFLOW__CORE__HOSTNAME_CALLABLE="attest_test_worker_identity.hostname",
                PYTHONPATH=os.pathsep.join(
                    p for p in (str(identity), env.get("PYTHONPATH", "")) if p
                ),
            )
            stack.start(name, [
                "celery", "worker", "--celery-hostname", f"{name}@127.0.0.1",
                "--skip-serve-logs", "--concurrency", "1", "--without-gossip", "--without-mingle",
            ], worker_env)  # fmt: skip

        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        stack.closing.append(api.close)

        def healthy() -> bool:
            try:
                return api.get("/api/v2/monitor/health").status_code == 200
            except httpx.HTTPError:
                return False

        def dag_known() -> bool:
            return bool(metadata_rows(meta, "SELECT 1 FROM dag WHERE dag_id = %s AND "
                                            "NOT is_paused", (DAG_ID,)))  # fmt: skip

        def workers_ready() -> bool:
            return all(f"{n}@127.0.0.1 ready" in c.tail(400)
                       for n, c in zip(WORKERS, stack.components[3:], strict=True))  # fmt: skip

        wait_for("the API server's health", healthy, stack, START_TIMEOUT)
        wait_for(f"{DAG_ID} parsed and unpaused", dag_known, stack, START_TIMEOUT)
        wait_for("both Celery workers ready", workers_ready, stack, START_TIMEOUT)
        ready_s = time.monotonic() - started
        listening = stack.listening()
        assert {(name, port) for name, _, port in listening} == {("api-server", port)}, listening
        assert {ip for _, ip, _ in listening} == {"127.0.0.1"}, listening

        answer = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json={"logical_date": None})
        assert answer.status_code in (200, 201), answer.text
        run_id = answer.json()["dag_run_id"]

        def finished() -> str | None:
            rows = metadata_rows(meta, "SELECT state FROM dag_run WHERE dag_id = %s AND "
                                       "run_id = %s", (DAG_ID, run_id))  # fmt: skip
            state = rows[0][0] if rows else None
            return state if state in ("success", "failed") else None

        state = wait_for(f"run {run_id} finished", finished, stack, RUN_TIMEOUT)
        run_s = time.monotonic() - started - ready_s
        tasks = metadata_rows(
            meta,
            "SELECT task_id, map_index, state, hostname FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            (DAG_ID, run_id),
        )
        assert state == "success", f"{tasks}\n{stack.logs()}"
    finally:
        stack.stop()
    print(f"setup {setup_s:.0f} s, ready at {ready_s:.0f} s, run {run_s:.0f} s")

    # Every task ran, each on one of the two workers; the capture tasks on both.
    assert {(t, s) for t, _, s, _ in tasks} == {
        ("plan", "success"), ("capture", "success"), ("finalize", "success"),
        ("index", "success"), ("verify", "success"), ("report", "success"),
    }  # fmt: skip
    identities = {f"{n}@127.0.0.1" for n in WORKERS}
    assert {h for *_, h in tasks} <= identities, tasks
    captures = [(m, h) for t, m, _, h in tasks if t == "capture"]
    assert [m for m, _ in captures] == [0, 1, 2]
    assert {h for _, h in captures} == identities, captures

    # The WARCs in S3 and the index rows of those WARCs: one for one.
    warcs = s3_records(seaweedfs, s3_bucket, "evidence/")
    assert len(warcs) == 3, sorted(warcs)
    with psycopg.connect(databases["index"]) as conn:
        indexed = conn.execute(
            "SELECT warc_key, record_id, warc_offset FROM captures WHERE warc_key = ANY(%s)",
            (list(warcs),),
        ).fetchall()
        warc_rows = conn.execute("SELECT warc_key, records, source FROM warcs").fetchall()
        total = conn.execute("SELECT count(*) FROM captures").fetchone()
    in_s3 = sorted(
        (key, rid, offset)
        for key, records in warcs.items()
        for rtype, rid, offset in records
        if rtype != "warcinfo"  # its fields are the WARC's row in `warcs`, not a capture row
    )
    assert sorted((k, r, int(o)) for k, r, o in indexed) == in_s3
    assert total == (len(in_s3),)  # no row of a WARC that is not in the bucket
    assert sorted(k for k, _, _ in warc_rows) == sorted(warcs)
    assert {s for _, _, s in warc_rows} == {SOURCE}
    assert all(records[0][0] == "warcinfo" for records in warcs.values())
    assert sum(1 for records in warcs.values() for r in records if r[0] == "response") >= 3
