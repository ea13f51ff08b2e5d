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

**Politeness across workers.** A source's capture tasks run in an Airflow pool of
``concurrency_per_host`` slots: its own, ``attest-source-<id>``, or, when sources crawl the same
host, the one they share, ``attest-host-<name>``, named by each of them in ``politeness.pool``
(they must declare the same ``concurrency_per_host``). A batch of a source that is split
crawls with one request at a time per host and takes one slot, so the batches running at once,
wherever they run, never have more than ``concurrency_per_host`` requests in flight per host;
the source's delay still applies within each batch. A source in one batch takes all the slots
and crawls with its own per-host concurrency, so two runs of it, or of sources sharing its
pool, never overlap. Pools are fixed when the DAGs are parsed, which is done without the
sources' ``${VAR}`` values, so which sources share a host cannot be found then:
``attest airflow-pools`` plans the pools with the URLs resolved (:func:`plan_pools`) and
refuses a registry in which two pools crawl one host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive.errors import ConfigError
from crawlers.registry import SourceOutline, SourceSpec, outline_registry, resolve_each
from crawlers.scope import DEFAULT_PORTS, origin

SOURCE_POOL_PREFIX = "attest-source-"
HOST_POOL_PREFIX = "attest-host-"
POOL_PREFIXES = (SOURCE_POOL_PREFIX, HOST_POOL_PREFIX)


def pool_name(source: SourceSpec | SourceOutline) -> str:
    """The Airflow pool of a source's capture tasks: its host pool, else its own."""
    return HOST_POOL_PREFIX + source.pool if source.pool else SOURCE_POOL_PREFIX + source.id


def task_slots(source: SourceSpec | SourceOutline) -> int:
    """Pool slots one capture task of the source takes: also its per-host concurrency."""
    return 1 if source.independent_seeds else source.concurrency_per_host


def pool_specs(sources: Iterable[SourceSpec | SourceOutline]) -> dict[str, dict[str, Any]]:
    """The pools of these sources, in the form ``airflow pools import`` reads.

    Sources of one host pool declare the same ``concurrency_per_host`` (the registry checks).
    """
    members: dict[str, list[SourceSpec | SourceOutline]] = {}
    for s in sources:
        members.setdefault(pool_name(s), []).append(s)
    return {
        name: {
            "slots": group[0].concurrency_per_host,
            "description": "attest: requests in flight per host for "
            + ", ".join(f"source {s.id} ({s.path})" for s in group),
            "include_deferred": False,
        }
        for name, group in members.items()
    }


def source_hosts(source: SourceSpec) -> set[str]:
    """The hosts a source's crawl starts on or is scoped to (``host`` or ``host:port``)."""
    urls = [*source.seeds, *source.feeds, *source.prefixes, *(li.url for li in source.listings)]
    if isinstance(source.sitemaps, tuple):
        urls.extend(source.sitemaps)
    if source.api_base:
        urls.append(source.api_base)
    hosts = set(source.hosts)
    for url in urls:
        place = origin(url)
        if place is not None:
            scheme, host, port = place
            hosts.add(host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}")
    return hosts


def shared_hosts(sources: Iterable[SourceSpec]) -> dict[str, dict[str, list[str]]]:
    """Hosts crawled from more than one pool: host -> pool -> ids of its sources there.

    Such sources would together exceed the host's per-host concurrency; give them one
    ``politeness.pool``.
    """
    pools_of: dict[str, dict[str, list[str]]] = {}
    for s in sources:
        for host in source_hosts(s):
            pools_of.setdefault(host, {}).setdefault(pool_name(s), []).append(s.id)
    return {host: pools for host, pools in sorted(pools_of.items()) if len(pools) > 1}


@dataclass(frozen=True)
class PoolPlan:
    """The pools a registry needs, and the sources whose hosts could not be checked."""

    #: pool name -> its spec, in the form ``airflow pools import`` reads (:func:`pool_specs`)
    pools: dict[str, dict[str, Any]]
    #: ``id (field: reason)`` of each source whose ``${VAR}`` values are unset here
    unchecked: list[str]

    def stale(self, existing: Iterable[str | None]) -> list[str]:
        """attest's pools (by name prefix) among ``existing`` that no source uses any more."""
        return [
            name
            for name in existing
            if name and name.startswith(POOL_PREFIXES) and name not in self.pools
        ]


def plan_pools(paths: list[Path], env: Mapping[str, str]) -> PoolPlan:
    """The registry's pools, with its sources' URLs resolved from ``env`` to check them.

    :class:`ConfigError`, naming each host, the pools and their sources, when two pools would
    crawl one host: together they would exceed its per-host concurrency. A source whose
    variables are unset cannot be checked (its hosts are unknown): it is listed in
    :attr:`PoolPlan.unchecked`.
    """
    pools = pool_specs(outline_registry(paths))
    resolved, unresolved = resolve_each(paths, dict(env))
    unchecked = [f"{sid} ({exc.field}: {exc.reason})" for sid, exc in unresolved.items()]
    clashes = shared_hosts(resolved)
    if clashes:
        lines = [
            f"  {host}: " + "; ".join(f"{pool} ({', '.join(ids)})" for pool, ids in by_pool.items())
            for host, by_pool in clashes.items()
        ]
        raise ConfigError(
            "sources crawl the same host from different pools, so together they would exceed "
            "its per-host concurrency; give them one politeness.pool (and the same "
            "concurrency_per_host) in the registry:\n" + "\n".join(lines) + "\nno pool changed"
        )
    return PoolPlan(pools, unchecked)


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
