"""A source's run cut into batches for parallel capture, and the pool that keeps it polite.

The Airflow DAG of a source (``dags/attest_sources.py``) plans its run here, captures each
batch in a task of its own (dynamic task mapping), possibly on different workers, and holds
those tasks in the source's pool (docs/OPERATORS.md).

**What a batch is.** A batch is a part of the source's *seeds*, captured with the source's
scope, discovery and limits; URLs are never resolved in advance. The crawl engine keeps one
frontier per crawl (URLs seen, page budget, the links it follows), so only seeds that share
nothing are split: those of profiles (each seed a profile or a post) and of lists of pages
(depth 0, no sitemaps, feeds or listings) go into batches of at most ``seeds_per_batch``;
any other source is one batch, its whole crawl (:attr:`SourceSpec.independent_seeds`). A
batch keeps the source's limits (``max_pages``, ``max_posts``): they bound each batch.

**Politeness across workers.** Each source has an Airflow pool, ``attest-source-<id>``, of
``concurrency_per_host`` slots. A batch of a source that is split crawls with one request at
a time per host and takes one slot, so the batches running at once, wherever they run, never
have more than ``concurrency_per_host`` requests in flight per host; the source's delay still
applies within each batch. A source in one batch takes all the slots and crawls with its own
per-host concurrency, so two runs of it never overlap. Sources that share a host have a pool
each (a per-host pool needs the hosts resolved at parse time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from archive.errors import ConfigError
from crawlers.registry import SourceOutline, SourceSpec

POOL_PREFIX = "attest-source-"


def pool_name(source_id: str) -> str:
    """The Airflow pool of a source's capture tasks."""
    return POOL_PREFIX + source_id


def task_slots(source: SourceSpec | SourceOutline) -> int:
    """Pool slots one capture task of the source takes: also its per-host concurrency."""
    return 1 if source.independent_seeds else source.concurrency_per_host


def pool_specs(sources: Iterable[SourceOutline]) -> dict[str, dict[str, Any]]:
    """The pools of these sources, in the form ``airflow pools import`` reads."""
    return {
        pool_name(s.id): {
            "slots": s.concurrency_per_host,
            "description": f"attest: requests in flight per host for source {s.id} ({s.path})",
            "include_deferred": False,
        }
        for s in sources
    }


@dataclass(frozen=True)
class Batch:
    """Seeds of one source captured by one task; the plain dict form travels in XCom."""

    source: str
    index: int
    count: int
    seeds: tuple[str, ...]

    @property
    def label(self) -> str:
        """How the batch is shown (the mapped task's name in the UI)."""
        more = f" (+{len(self.seeds) - 1})" if len(self.seeds) > 1 else ""
        return f"{self.index + 1}/{self.count} {self.seeds[0]}{more}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "index": self.index,
            "count": self.count,
            "seeds": list(self.seeds),
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Batch:
        return cls(
            source=str(data["source"]),
            index=int(data["index"]),
            count=int(data["count"]),
            seeds=tuple(str(s) for s in data["seeds"]),
        )


def plan_batches(source: SourceSpec, seeds_per_batch: int) -> list[Batch]:
    """The source's batches, in seed order (see the module docstring)."""
    if seeds_per_batch < 1:
        raise ConfigError(f"seeds per batch must be at least 1, not {seeds_per_batch}")
    size = seeds_per_batch if source.independent_seeds else len(source.seeds)
    groups = [source.seeds[i : i + size] for i in range(0, len(source.seeds), size)]
    return [Batch(source.id, i, len(groups), tuple(g)) for i, g in enumerate(groups)]


def batch_source(source: SourceSpec, batch: Batch) -> SourceSpec:
    """The source as one batch crawls it: the batch's seeds, at the batch's per-host concurrency."""
    if batch.source != source.id:
        raise ConfigError(f"batch {batch.label!r} is of source {batch.source!r}, not {source.id!r}")
    unknown = [s for s in batch.seeds if s not in source.seeds]
    if unknown:
        raise ConfigError(
            f"source {source.id!r} has no seed {unknown[0]!r} any more (the registry changed "
            "since the run was planned): clear the run to plan it again"
        )
    return dataclasses.replace(source, seeds=batch.seeds, concurrency_per_host=task_slots(source))
