"""The recorder process: ``python -m crawlers.recorder CONFIG.json``.

Prints one JSON line ``{"event": "ready", "port": N, ...}`` when it listens, and one
``{"event": "closed", ...}`` line after SIGTERM/SIGINT, once every in-flight exchange has been
written and every WARC file closed (fsynced and renamed from ``.open``). If its parent dies it
gets SIGTERM (PR_SET_PDEATHSIG) and closes the same way.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import warcprox

from archive.ingest.spool import RotatingWarcWriter
from archive.logs import configure_logging
from crawlers.recorder import fastheaders
from crawlers.recorder.config import RecorderConfig
from crawlers.recorder.egress import EgressPolicy, GuardedConnector, StaticResolver, system_resolver
from crawlers.recorder.proxy import RecorderState, RecordingProxy
from crawlers.recorder.tlschain import TlsChainRecorder, load_trust_store
from crawlers.recorder.warcinfo import recorder_fields

log = logging.getLogger("attest.recorder")
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int | None) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _current_cpu() -> int | None:
    """The CPU this thread runs on (Linux: field 39 of ``/proc/thread-self/stat``)."""
    try:
        stat = Path("/proc/thread-self/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def _stay_on_one_cpu() -> None:
    """Keep all the recorder's threads on the CPU it started on.

    The handler threads take turns holding the GIL; spread over CPUs, each turn was a wake-up
    on another CPU, and those cost more than the recording itself: on the 2-core bench the
    recorder used 5.9 s of CPU unpinned and 4.0 s pinned, and the crawl ran 17% faster. The
    GIL lets only one thread run Python at a time anyway.
    """
    try:
        allowed = os.sched_getaffinity(0)
        cpu = _current_cpu()
        if len(allowed) > 1:
            os.sched_setaffinity(0, {cpu if cpu in allowed else min(allowed)})
    except (OSError, AttributeError) as exc:  # AttributeError: no affinity calls (not Linux)
        log.info("recorder not kept on one CPU: %s", exc)


def _constant(fields: list[tuple[str, str]]) -> Callable[[str], list[tuple[str, str]]]:
    """The warcinfo fields of a source: the same for each of its files."""
    return lambda _filename: fields


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m crawlers.recorder CONFIG.json\n")
        return 2
    config = RecorderConfig.load(Path(argv[0]))
    if config.one_cpu:
        _stay_on_one_cpu()  # first, so that every thread started later inherits it
    configure_logging(json_lines=True)
    fastheaders.install()
    logging.getLogger("warcprox").setLevel(logging.WARNING)
    _die_with_parent(config.parent_pid)

    spool = Path(config.spool)
    writers: dict[str, RotatingWarcWriter] = {}
    writers_lock = threading.Lock()
    common = list(config.warcinfo_common) + recorder_fields()

    def writer_for(source: str) -> RotatingWarcWriter:
        with writers_lock:
            writer = writers.get(source)
            if writer is None:
                fields = common + list(config.warcinfo_sources.get(source, [("source-id", source)]))
                writer = RotatingWarcWriter(
                    spool,
                    source,
                    config.run_id,
                    _constant(fields),
                    max_size=config.max_warc_size,
                    gzip_level=config.gzip_level,
                )
                writers[source] = writer
            return writer

    resolver = StaticResolver(config.hosts) if config.hosts is not None else system_resolver
    state = RecorderState(
        writer_for=writer_for,
        connector=GuardedConnector(EgressPolicy.from_setting(config.allow_networks), resolver),
        tls_chains=TlsChainRecorder(load_trust_store([Path(p) for p in config.ca_bundles])),
        default_source=config.default_source,
        require_source=config.require_source,
        secret=config.secret,
        websocket_part_bytes=config.websocket_part_bytes,
        websocket_part_seconds=config.websocket_part_seconds,
    )
    ca_dir = Path(config.ca_dir)
    ca_dir.mkdir(parents=True, exist_ok=True)
    options = warcprox.Options(
        address=config.listen,
        port=config.port,
        max_threads=config.threads,
        socket_timeout=config.socket_timeout,
        max_resource_size=config.max_resource_size,
        tmp_file_max_memory_size=1024 * 1024,
        digest_algorithm="sha256",
        cacert=str(ca_dir / "attest-recorder-ca.pem"),
        certs_dir=str(ca_dir / "certs"),
    )
    proxy = RecordingProxy(state, options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = threading.Thread(
        target=proxy.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    server.start()
    _emit(
        {
            "event": "ready",
            "port": proxy.server_address[1],
            "pid": os.getpid(),
            "ca": options.cacert,
        }
    )
    while not stop.wait(0.5):
        pass
    proxy.shutdown()
    state.close_idle_connections()
    # Open WebSockets end now, each writing its transcript before the files are closed.
    state.stop_websockets()
    deadline = time.monotonic() + 30
    while proxy.active_requests and time.monotonic() < deadline:
        time.sleep(0.05)
        state.close_idle_connections()
        state.stop_websockets()
    with writers_lock:
        files = []
        for writer in writers.values():
            writer.close()
            files.append(
                {
                    "source": writer.source_id,
                    "records": writer.records_written,
                    "bytes": writer.bytes_written,
                }
            )
    proxy.socket.close()
    _emit(
        {
            "event": "closed",
            "exchanges": state.exchanges,
            "failures": state.failures,
            "disk_full": state.disk_full,
            "writers": files,
            "unfinished": len(proxy.active_requests),
            "cpu_s": round(time.process_time(), 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
