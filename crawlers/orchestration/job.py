"""One capture job in a process of its own: a batch of a registry source, or URLs now.

The DAGs' capture tasks capture through ``python -m crawlers.orchestration.job``: Twisted's reactor cannot be
restarted in a process, and one Airflow process may run several tasks (``dag.test()`` runs them
all in one). A job is ``attest crawl`` without its command line: the same settings (the
``ATTEST_*`` environment, read by :func:`settings.load_config`), the same
:func:`crawlers.orchestration.run.run_capture`, except that indexing is left to the DAG's index task.

The parent sends the job as JSON on stdin and reads the result, ids and small stats only, from
the file named by ``--result``; the job logs JSON lines on stderr, which the parent relays to
its own log line by line. Exit status 0 when a result was written (a capture that failed in
part is a result too: it says so), 2 for a job that cannot run as asked, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archive.errors import AttestError, ConfigError, CrawlFailed
from crawlers.orchestration.plan import Batch

if TYPE_CHECKING:
    from crawlers.extensions import ProgressSnapshot
    from crawlers.orchestration.run import RunSummary
    from crawlers.registry import SourceSpec
    from settings import AttestConfig

# Named, not __name__: the job runs as __main__ (python -m crawlers.orchestration.job).
log = logging.getLogger("crawlers.orchestration.job")

PAGE_ROLES = ("page", "attachment")
MAX_REDIRECTS = 10
#: Seconds the job gets to close its WARCs and ship them once asked to stop.
STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class CaptureJob:
    """What to capture: a ``batch`` of a source of the ``registry``, or ``urls`` now."""

    registry: tuple[str, ...] = ()
    batch: Batch | None = None
    urls: tuple[str, ...] = ()
    browser: bool = False
    #: The attest run id to use (a UUID); None: a new one.
    run_id: str | None = None
    #: The Airflow task's ids, written into every WARC's ``warcinfo``.
    airflow: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "registry": list(self.registry),
            "batch": self.batch.as_dict() if self.batch else None,
            "urls": list(self.urls),
            "browser": self.browser,
            "run_id": self.run_id,
            "airflow": self.airflow,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaptureJob:
        batch = data.get("batch")
        return cls(
            registry=tuple(str(p) for p in data.get("registry", ())),
            batch=Batch.from_dict(batch) if batch else None,
            urls=tuple(str(u) for u in data.get("urls", ())),
            browser=bool(data.get("browser", False)),
            run_id=data.get("run_id"),
            airflow={str(k): str(v) for k, v in (data.get("airflow") or {}).items()},
        )

    @property
    def seeds(self) -> tuple[str, ...]:
        return self.batch.seeds if self.batch else self.urls

    def sources(self, env: dict[str, str] | None = None) -> list[SourceSpec]:
        from crawlers.orchestration.plan import batch_source
        from crawlers.registry import load_source, snapshot_source

        if self.batch is not None and self.urls:
            raise ConfigError("a capture job takes a batch of a source or URLs, not both")
        if self.batch is not None:
            source = load_source([Path(p) for p in self.registry], self.batch.source, env)
            return [batch_source(source, self.batch)]
        if self.urls:
            return [snapshot_source(list(self.urls), browser=self.browser)]
        raise ConfigError("a capture job needs a batch of a source, or URLs")


def run_job(job: CaptureJob, config: AttestConfig) -> dict[str, Any]:
    """Capture in this process (see the module docstring); the result as :func:`job_result`."""
    from archive.store import open_store
    from crawlers.orchestration.run import options_from_config, run_capture

    options = options_from_config(config, airflow=job.airflow)
    options.index_url = None  # the DAG's index task indexes (crawlers.orchestration.run.index_runs)
    summary = run_capture(
        job.sources(),
        options,
        open_store(config.store_uri),
        progress=_progress_log(),
        run_id=job.run_id,
        keep_captures=True,
    )
    return job_result(summary, job.seeds)


def job_result(summary: RunSummary, seeds: tuple[str, ...]) -> dict[str, Any]:
    """What a capture run returns to its DAG: ids, URIs and counts, never captured data."""
    pages = [c for c in summary.captures if c.get("role") in PAGE_ROLES]
    return {
        "run_id": summary.run_id,
        "ok": summary.ok,
        "pages": summary.pages,
        "fetches": summary.fetches,
        "records": summary.records,
        "warc_bytes": summary.warc_bytes,
        "outcomes": summary.outcomes,
        "page_outcomes": dict(sorted(Counter(str(c["outcome"]) for c in pages).items())),
        "seeds": seed_results(pages, seeds),
        "warcs": [vars(w) for w in summary.shipped],
        "pending": [{"file": f, "reason": r} for f, r in summary.pending],
        "recovered": [
            {
                "run_id": r.run_id,
                "warcs": [vars(w) for w in r.shipped],
                "pending": [{"file": f, "reason": why} for f, why in r.pending],
            }
            for r in summary.recovered
        ],
        "stopped": summary.stopped,
    }


def seed_results(pages: list[dict[str, Any]], seeds: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Where each seed ended: the outcome, URL and capture id at the end of its redirects."""
    by_url: dict[str, dict[str, Any]] = {}
    for page in pages:
        by_url.setdefault(str(page["url"]), page)
    results: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        entry = by_url.get(seed)
        hops = 0
        while (
            entry is not None
            and entry.get("outcome") == "redirect"
            and entry.get("redirect_to") in by_url
            and hops < MAX_REDIRECTS
        ):
            entry = by_url[entry["redirect_to"]]
            hops += 1
        if entry is None:
            results[seed] = {"outcome": "not_fetched", "url": seed, "capture_id": None}
        else:
            results[seed] = {
                "outcome": entry.get("outcome"),
                "url": entry.get("url"),
                "capture_id": entry.get("capture_id"),
            }
    return results


def _progress_log(every_s: float = 10.0) -> Callable[[ProgressSnapshot], None]:
    last: dict[str, float] = {}

    def report(snap: ProgressSnapshot) -> None:
        now = time.monotonic()
        if snap.finished or now - last.get(snap.source, 0.0) >= every_s:
            last[snap.source] = now
            log.info(
                "progress",
                extra={
                    "source": snap.source,
                    "pages": snap.pages,
                    "fetches": snap.fetches,
                    "errors": snap.errors,
                    "finished": snap.finished,
                },
            )

    return report


# --- the parent's side -------------------------------------------------------------------------


def run_in_subprocess(
    job: CaptureJob, *, logger: logging.Logger, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run the job in a new Python process, relaying its log lines to ``logger``.

    Raises :class:`ConfigError` when the job cannot run as asked (a registry or setting is
    wrong: retrying will not help) and :class:`CrawlFailed` when it failed otherwise. If this
    process is interrupted (a task killed or timed out), the job is asked to stop, which closes
    and ships what it recorded, and killed if it does not within :data:`STOP_GRACE_S`.
    """
    with tempfile.TemporaryDirectory(prefix="attest-job-") as tmp:
        result_file = Path(tmp) / "result.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawlers.orchestration.job", "--result", str(result_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=None if env is None else dict(env),
        )
        tail: list[str] = []
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(json.dumps(job.as_dict()))
            proc.stdin.close()
            for line in proc.stdout:
                line = line.rstrip("\n")
                logger.info("%s", line)
                tail = [*tail[-19:], line]
            code = proc.wait()
        finally:
            _stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        result: dict[str, Any] = (
            json.loads(result_file.read_text()) if result_file.is_file() else {}
        )
    if code == 0 and "error" not in result:
        return result
    why = result.get("error") or _last_message(tail) or f"exit status {code}"
    if code == 2:
        raise ConfigError(why)
    raise CrawlFailed(f"the capture job failed: {why}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    # Scrapy stops gracefully on SIGTERM: the crawl ends, the WARCs are closed and shipped.
    proc.terminate()
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _last_message(lines: list[str]) -> str | None:
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            return str(entry.get("message"))
    return lines[-1] if lines else None


def main(argv: list[str] | None = None) -> int:
    """``python -m crawlers.orchestration.job --result FILE`` with the job as JSON on stdin."""
    import settings
    from archive.logs import configure_logging

    parser = argparse.ArgumentParser(prog="python -m crawlers.orchestration.job")
    parser.add_argument("--result", required=True, metavar="FILE")
    args = parser.parse_args(argv)
    configure_logging(json_lines=True)
    result_file = Path(args.result)
    try:
        job = CaptureJob.from_dict(json.load(sys.stdin))
        result = run_job(job, settings.load_config())
    except ConfigError as exc:
        log.error("%s", exc)
        result_file.write_text(json.dumps({"error": str(exc)}))
        return 2
    except AttestError as exc:
        log.error("%s", exc)
        result_file.write_text(json.dumps({"error": str(exc)}))
        return 1
    result_file.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
