"""What the commands print beyond their own lines: a capture run's progress and summary, and
the indexing progress bar. On a terminal, live displays on stderr; elsewhere, JSON log lines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("attest")


@contextmanager
def progress_display(json_lines: bool) -> Iterator[Callable[[Any], None]]:
    """A live progress bar on a terminal; otherwise a JSON log line every few seconds."""
    if not json_lines:
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        rows: dict[str, Any] = {}

        def render() -> Table:
            table = Table(box=None, pad_edge=False)
            for col in ("source", "pages", "fetches", "errors", "pages/s", ""):
                table.add_column(col, justify="right" if col not in ("source", "") else "left")
            for snap in rows.values():
                table.add_row(
                    snap.source,
                    str(snap.pages),
                    str(snap.fetches),
                    str(snap.errors),
                    f"{snap.pages_per_second:.1f}",
                    "done" if snap.finished else "…",
                )
            return table

        with Live(
            render(), console=Console(stderr=True), refresh_per_second=4, transient=False
        ) as live:

            def update(snap: Any) -> None:
                rows[snap.source] = snap
                live.update(render())

            yield update
        return

    last: dict[str, float] = {}

    def report(snap: Any) -> None:
        now = time.monotonic()
        if snap.finished or now - last.get(snap.source, 0) >= 5:
            last[snap.source] = now
            log.info(
                "progress",
                extra={
                    "source": snap.source,
                    "pages": snap.pages,
                    "fetches": snap.fetches,
                    "errors": snap.errors,
                    "pages_per_s": round(snap.pages_per_second, 2),
                    "finished": snap.finished,
                },
            )

    yield report


def print_summary(summary: Any, *, as_json: bool) -> None:
    """A capture run's summary on stdout: its WARCs, outcomes and what is pending."""
    if as_json:
        print(json.dumps(summary.as_dict(), indent=1, sort_keys=True))
        return
    out = sys.stdout
    out.write(f"run {summary.run_id}  sources: {', '.join(summary.sources)}\n")
    out.write(
        f"  pages {summary.pages}, fetches {summary.fetches}, records {summary.records}, "
        f"WARC bytes {summary.warc_bytes:,}\n"
    )
    out.write("  outcomes: " + ", ".join(f"{k} {v}" for k, v in summary.outcomes.items()) + "\n")
    for warc in summary.shipped:
        out.write(
            f"  stored {warc.uri}  ({warc.records} records, {warc.size:,} bytes, sha256 {warc.sha256})\n"
        )
    for file, why in summary.pending:
        out.write(f"  PENDING {file}: {why}\n")
    for rec in summary.recovered:
        out.write(
            f"  recovered run {rec.run_id}: {len(rec.shipped)} WARC(s) uploaded, {len(rec.pending)} pending\n"
        )
    if summary.stopped:
        out.write(f"  STOPPED: {summary.stopped}\n")
    if summary.indexed:
        out.write(f"  indexed {summary.indexed} WARC(s)\n")
    for key, why in summary.index_pending:
        out.write(f"  INDEX PENDING {key}: {why} (the WARC is stored; run `attest index`)\n")


@contextmanager
def index_progress(total: int) -> Iterator[Callable[[Any], None]]:
    """A progress bar over the WARCs on a terminal; elsewhere each WARC is logged as it is done."""
    if not sys.stderr.isatty() or total < 2:
        yield lambda result: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("indexing WARCs", total=total)
        yield lambda result: bar.advance(task)
