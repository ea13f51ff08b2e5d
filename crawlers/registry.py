"""The source registry: ``sources/*.yaml`` read, validated and turned into :class:`SourceSpec`.

Each file holds ``sources:``, a list of sources (schema: ``crawlers/registry_schema.yaml``).
Every error names the file, the source (by id, or by position when the id itself is wrong) and
the field, e.g. ``sources/demo.yaml: source 'demo-news', field 'politeness.delay': -1 is less
than the minimum of 0``. URLs may use ``${VAR}`` to take a value from the environment (the demo
fills in the ports it serves on); an unset variable is an error naming it.

The DAGs read :func:`outline_registry` at parse time (no variable needed) and resolve one
source at run time with :func:`load_source`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from archive.errors import ConfigError, RegistryError
from archive.schemaerrors import first_error
from crawlers.urls import invalid_url_reason

_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_CRON_ALIASES = {
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    "@once",
}
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


@dataclass(frozen=True)
class Listing:
    url: str
    next: str = "a[rel~=next]"
    items: str | None = None
    max_pages: int = 100


@dataclass(frozen=True)
class SourceSpec:
    """One source, validated, with defaults filled in and variables expanded."""

    id: str
    kind: str
    seeds: tuple[str, ...]
    path: str = "<ad hoc>"
    title: str = ""
    browser: bool = False
    #: Seeds marked ``browser: true`` in a source that is not rendered as a whole.
    browser_seeds: frozenset[str] = frozenset()
    hosts: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    max_depth: int = 3
    max_pages: int = 1000
    sitemaps: bool | tuple[str, ...] = False
    feeds: tuple[str, ...] = ()
    listings: tuple[Listing, ...] = ()
    attachments: tuple[str, ...] = ("pdf",)
    delay: float = 0.0
    concurrency_per_host: int = 4
    obey_robots: bool = True
    robots_override_reason: str | None = None
    autothrottle: bool = False
    #: The host pool this source shares with others on the same host (``politeness.pool``).
    pool: str | None = None
    schedule: str | None = None
    #: Profile sources (and browser capture): which platform adapter, and its bounds.
    platform: str = "generic"
    permalink_pattern: str | None = None
    #: A CSS selector a post page shows once its content is there (``profile.content_ready``);
    #: None: the platform adapter's own.
    content_ready: str | None = None
    api_base: str | None = None
    max_posts: int = 200
    max_feed_pages: int = 20
    screenshot: bool = True
    pdf: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def independent_seeds(self) -> bool:
        """Whether each seed is captured on its own, sharing nothing with the others.

        True for profiles (each seed is a profile or a post, walked by itself) and for lists of
        pages (depth 0, no sitemaps, feeds or listings). Any other crawl keeps one frontier
        for all its seeds: one set of URLs seen, one page budget, discovery from every seed.
        """
        discovers = bool(self.sitemaps or self.feeds or self.listings)
        return self.kind == "profile" or (self.max_depth == 0 and not discovers)


@dataclass(frozen=True)
class SourceOutline:
    """What scheduling needs to know of a source, read without the environment.

    :func:`outline_registry` gives these to the DAG processor, which may not have the
    crawl's ``${VAR}`` values: no URL is resolved, so none is carried here. The seeds are
    resolved at run time, by the run's plan (:func:`load_source`).
    """

    id: str
    kind: str
    path: str
    title: str
    schedule: str | None
    concurrency_per_host: int
    independent_seeds: bool
    seed_count: int
    pool: str | None = None


def _schema() -> dict[str, Any]:
    text = resources.files("crawlers").joinpath("registry_schema.yaml").read_text()
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@functools.cache
def _validator() -> Any:
    # jsonschema is imported only when a registry file is read: ad-hoc crawls never need it.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema())


def _check_cron(expr: str) -> str | None:
    expr = expr.strip()
    if expr in _CRON_ALIASES:
        return None
    fields = expr.split()
    if len(fields) != 5:
        return f"{expr!r} is not a cron expression (5 fields or @daily/@hourly/...)"
    for i, part in enumerate(fields):
        low, high = _CRON_RANGES[i]
        names = _CRON_NAMES.get(i, [])
        for item in part.split(","):
            base, _, step = item.partition("/")
            if step and not step.isdigit():
                return f"{expr!r}: bad step {step!r}"
            if base == "*":
                continue
            for bound in base.split("-", 1):
                if bound.lower() in names:
                    continue
                if not bound.isdigit() or not low <= int(bound) <= high:
                    return f"{expr!r}: {bound!r} is outside {low}-{high} in field {i + 1}"
    return None


def _expand(value: str, path: str, entry: str | None, field_name: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise RegistryError(path, entry, field_name, f"environment variable {name} is not set")
        return env[name]

    expanded = _VAR.sub(sub, value)
    reason = invalid_url_reason(expanded)
    if reason is not None:
        raise RegistryError(path, entry, field_name, f"{_shown(expanded)} {reason}")
    return expanded


def _shown(url: str, limit: int = 120) -> str:
    """A URL as an error message shows it: quoted, and cut short when long."""
    return repr(url) if len(url) <= limit else repr(url[:limit]) + f"... ({len(url)} characters)"


def parse_registry(doc: Any, path: str, env: dict[str, str] | None = None) -> list[SourceSpec]:
    """Validate one parsed registry document and build its sources."""
    env = dict(os.environ) if env is None else env
    if not isinstance(doc, dict):
        raise RegistryError(path, None, None, "expected a mapping with a 'sources' list")
    found = first_error(_validator(), doc, "sources")
    if found is not None:
        entry, field_name, error = found
        raise RegistryError(path, entry, field_name, error.message)
    specs: list[SourceSpec] = []
    seen: set[str] = set()
    for raw in doc["sources"]:
        sid = raw["id"]
        if sid in seen:
            raise RegistryError(path, sid, "id", "duplicate source id")
        seen.add(sid)
        scope = raw.get("scope", {})
        disc = raw.get("discovery", {})
        pol = raw.get("politeness", {})
        seeds = tuple(
            _expand(u if isinstance(u, str) else u["url"], path, sid, f"seeds[{i}]", env)
            for i, u in enumerate(raw["seeds"])
        )
        browser_seeds = frozenset(
            seed
            for seed, u in zip(seeds, raw["seeds"], strict=True)
            if isinstance(u, dict) and u["browser"]
        )
        robots = pol.get("robots", "obey")
        reason = pol.get("robots_override_reason")
        if robots == "ignore" and not reason:
            raise RegistryError(
                path,
                sid,
                "politeness.robots_override_reason",
                "ignoring robots.txt needs a recorded reason (robots_override_reason)",
            )
        if raw.get("schedule"):
            problem = _check_cron(raw["schedule"])
            if problem:
                raise RegistryError(path, sid, "schedule", problem)
        prof = raw.get("profile", {})
        if prof and raw["kind"] != "profile":
            raise RegistryError(path, sid, "profile", "only sources of kind 'profile' take it")
        pattern = prof.get("permalink_pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise RegistryError(
                    path, sid, "profile.permalink_pattern", f"not a valid regex: {exc}"
                ) from exc
        sitemaps = disc.get("sitemaps", False)
        if isinstance(sitemaps, list):
            sitemaps = tuple(
                _expand(u, path, sid, f"discovery.sitemaps[{i}]", env)
                for i, u in enumerate(sitemaps)
            )
        listings = tuple(
            Listing(
                url=_expand(item["url"], path, sid, f"discovery.listings[{i}].url", env),
                next=item.get("next", "a[rel~=next]"),
                items=item.get("items"),
                max_pages=item.get("max_pages", 100),
            )
            for i, item in enumerate(disc.get("listings", []))
        )
        hosts = tuple(
            _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), h).lower()
            for h in scope.get("hosts", [])
        )
        specs.append(
            SourceSpec(
                id=sid,
                kind=raw["kind"],
                seeds=seeds,
                path=path,
                title=raw.get("title", ""),
                browser=raw.get("browser", raw["kind"] == "profile"),
                browser_seeds=browser_seeds,
                hosts=hosts,
                prefixes=tuple(
                    _expand(u, path, sid, f"scope.prefixes[{i}]", env)
                    for i, u in enumerate(scope.get("prefixes", []))
                ),
                max_depth=scope.get("max_depth", 3),
                max_pages=scope.get("max_pages", 1000),
                sitemaps=sitemaps,
                feeds=tuple(
                    _expand(u, path, sid, f"discovery.feeds[{i}]", env)
                    for i, u in enumerate(disc.get("feeds", []))
                ),
                listings=listings,
                attachments=tuple(disc.get("attachments", ["pdf"])),
                delay=float(pol.get("delay", 0.0)),
                concurrency_per_host=pol.get("concurrency_per_host", 4),
                obey_robots=robots == "obey",
                robots_override_reason=reason,
                autothrottle=pol.get("autothrottle", False),
                pool=pol.get("pool"),
                schedule=raw.get("schedule"),
                platform=prof.get("platform", "generic"),
                permalink_pattern=pattern,
                content_ready=prof.get("content_ready"),
                api_base=_expand(prof["api_base"], path, sid, "profile.api_base", env)
                if prof.get("api_base")
                else None,
                max_posts=prof.get("max_posts", 200),
                max_feed_pages=prof.get("max_feed_pages", 20),
                screenshot=prof.get("screenshot", True),
                pdf=prof.get("pdf", False),
                raw=raw,
            )
        )
    return specs


def registry_files(paths: list[Path]) -> list[Path]:
    """The registry files named: files as given, and every ``*.yaml`` in a directory."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.yaml") if p.is_file()))
        else:
            files.append(path)
    return files


def _read(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(str(file), None, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        # libyaml's safe loader when PyYAML has it: the same documents, ~10x faster to read
        # (a DAG processor reads the registry on every parse; bench/dag_parse.py).
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise RegistryError(str(file), None, None, f"not valid YAML: {exc}") from exc


def load_registry(paths: list[Path], env: dict[str, str] | None = None) -> list[SourceSpec]:
    """Load registry files (or every ``*.yaml`` in a directory); ids must be unique overall."""
    specs: list[SourceSpec] = []
    where: dict[str, str] = {}
    pools: dict[str, SourceSpec] = {}
    for file in registry_files(paths):
        for spec in parse_registry(_read(file), str(file), env):
            if spec.id in where:
                raise RegistryError(
                    str(file), spec.id, "id", f"duplicate source id (also in {where[spec.id]})"
                )
            where[spec.id] = str(file)
            first = pools.setdefault(spec.pool, spec) if spec.pool else spec
            if first.concurrency_per_host != spec.concurrency_per_host:
                raise RegistryError(
                    str(file),
                    spec.id,
                    "politeness.concurrency_per_host",
                    f"{spec.concurrency_per_host}, but source {first.id} ({first.path}) of the "
                    f"same pool {spec.pool!r} has {first.concurrency_per_host}: sources sharing a "
                    "host pool must declare the same per-host concurrency",
                )
            specs.append(spec)
    return specs


def select_sources(
    sources: list[SourceSpec], ids: Collection[str], *, what: str, where: str
) -> list[SourceSpec]:
    """The sources with these ids, in registry order; :class:`ConfigError` naming the first id
    that is not there (``what``: the option that gave the ids; ``where``: the registry)."""
    known = {s.id for s in sources}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ConfigError(f"{what}: no source {unknown[0]!r} in {where}")
    return [s for s in sources if s.id in ids]


def load_source(paths: list[Path], source_id: str, env: dict[str, str] | None = None) -> SourceSpec:
    """One source, its URLs resolved from ``env``; the rest of the registry is only validated.

    A DAG run needs its own source's variables, not those of every source beside it.
    """
    for outline in outline_registry(paths):
        if outline.id == source_id:
            doc = _read(Path(outline.path))
            mine = [raw for raw in doc["sources"] if raw["id"] == source_id]
            return parse_registry({"sources": mine}, outline.path, env)[0]
    raise RegistryError(
        ", ".join(str(p) for p in paths), source_id, None, "no such source in the registry"
    )


def resolve_each(
    paths: list[Path], env: dict[str, str]
) -> tuple[list[SourceSpec], dict[str, RegistryError]]:
    """Every source with its URLs resolved from ``env``, each file read once; a source whose
    variables are unset is returned as its error instead. Validate the registry first
    (:func:`outline_registry`): this only resolves."""
    resolved: list[SourceSpec] = []
    unresolved: dict[str, RegistryError] = {}
    for file in registry_files(paths):
        for raw in _read(file)["sources"]:
            try:
                resolved.extend(parse_registry({"sources": [raw]}, str(file), env))
            except RegistryError as exc:
                unresolved[raw["id"]] = exc
    return resolved, unresolved


class _Unresolved(dict[str, str]):
    """An environment where every variable is set, to a URL that is never fetched."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "http://unresolved.invalid"


def outline_registry(paths: list[Path]) -> list[SourceOutline]:
    """The sources' outlines: validated exactly as :func:`load_registry` does, ``${VAR}`` aside.

    Reads the registry files and nothing else (no environment, no network), so DAG files can
    call it at parse time; an invalid file raises the same :class:`RegistryError`.
    """
    return [
        SourceOutline(
            id=spec.id,
            kind=spec.kind,
            path=spec.path,
            title=spec.title,
            schedule=spec.schedule,
            concurrency_per_host=spec.concurrency_per_host,
            independent_seeds=spec.independent_seeds,
            seed_count=len(spec.seeds),
            pool=spec.pool,
        )
        for spec in load_registry(paths, _Unresolved())
    ]


def adhoc_source(
    seeds: list[str], *, max_pages: int, max_depth: int, browser: bool = False
) -> SourceSpec:
    """A source for ``attest crawl URL...``: the seeds' own origins are the scope.

    With ``browser``, the seeds are profiles or posts captured by the browser with the profile
    behaviors (one capture per post), as a ``profile`` source of the generic platform. Seeds
    that cannot be fetched (:func:`crawlers.urls.invalid_url_reason`) are kept: each gets the
    outcome ``invalid_url``; when no seed can be fetched, this raises.
    """
    reasons = [invalid_url_reason(seed) for seed in seeds]
    if seeds and all(reasons):
        # Nothing could be fetched: bad input, and nothing is changed. With some valid seeds,
        # the run goes on and each invalid one gets the outcome invalid_url.
        raise RegistryError(
            "<command line>",
            None,
            None,
            "; ".join(
                f"URL[{i}] {_shown(s)} {r}"
                for i, (s, r) in enumerate(zip(seeds, reasons, strict=True))
            ),
        )
    return SourceSpec(
        id="adhoc",
        kind="profile" if browser else "news",
        seeds=tuple(seeds),
        max_pages=max_pages,
        max_depth=max_depth,
        browser=browser,
        sitemaps=False,
    )


def snapshot_source(urls: list[str], *, browser: bool = False) -> SourceSpec:
    """The pages at these URLs, now, and nothing else (``attest capture``, the ``capture_url`` DAG).

    In the browser each URL is rendered as a single post, without following anything.
    """
    source = adhoc_source(urls, max_pages=len(urls), max_depth=0, browser=browser)
    return replace(source, permalink_pattern=".*", max_posts=len(urls))
