"""The CDX server API: pywb's parameters and outputs, plus OutbackCDX's ``collapse``.

Parameters (as pywb 2.x's CDX server API): ``url`` (required; ``*.example.com`` means
``matchType=domain``, a trailing ``*`` means ``prefix``), ``matchType`` (exact, prefix, host,
domain), ``from``/``to`` (1 to 14 digits, padded down/up), ``closest`` (14 digits; implies
``sort=closest``), ``sort`` (``reverse`` or ``closest``), ``reverse``, ``limit``, ``filter``
(repeatable: ``[!][=|~]field:value``; plain means "contains", ``=`` exact, ``~`` regex match
at the start, ``!`` inverts), ``fl`` (fields to output), ``output`` (``cdxj`` default, ``json``:
one object per line, ``text``: space-separated). ``collapse`` (OutbackCDX) keeps the first row
of each run of rows whose field (or its first N characters, ``field:N``) repeats.

Every problem with a parameter raises :class:`QueryError` (a ConfigError) naming it: the
service answers 400 with that message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from archive.dates import Bound, parse_when, timestamp14
from archive.errors import ConfigError
from archive.index.cdxj import REPLAYABLE, IndexRow, surt_key
from archive.index.db import IndexDB

MAX_LIMIT = 100_000
MAX_URL = 4096
MAX_FILTERS = 16
MAX_FILTER_LEN = 512
#: Time all regular-expression filters of one query may take together (a hostile pattern
#: backtracks without end; the ``regex`` module can stop it, ``re`` cannot).
REGEX_BUDGET_S = 2.0
MATCH_TYPES = ("exact", "prefix", "host", "domain")
OUTPUTS = ("cdxj", "json", "text")
PARAMS = frozenset(
    {
        "url",
        "matchType",
        "from",
        "from_ts",
        "to",
        "closest",
        "sort",
        "reverse",
        "limit",
        "filter",
        "fl",
        "output",
        "collapse",
        "page",
        "pageSize",
        "showNumPages",
    }
)

#: Output field names (pywb's CDXJ names), with attest's extras after them.
FIELDS = (
    "urlkey",
    "timestamp",
    "url",
    "mime",
    "status",
    "digest",
    "length",
    "offset",
    "filename",
    "recordtype",
    "recordid",
    "source",
    "run",
    "ip",
    "platform",
    "account",
    "postid",
    "datetime",
)
DEFAULT_FIELDS = FIELDS[:9]
ALIASES = {
    "original": "url",
    "u": "url",
    "statuscode": "status",
    "s": "status",
    "mimetype": "mime",
    "m": "mime",
    "l": "length",
    "k": "urlkey",
    "t": "timestamp",
    "d": "digest",
}


class QueryError(ConfigError):
    """A bad CDX query parameter; the message names it."""


def field_values(row: IndexRow) -> dict[str, Any]:
    return {
        "urlkey": row.surt,
        "timestamp": timestamp14(row.ts),
        "url": row.url,
        "mime": row.mime,
        "status": "-" if row.status is None else str(row.status),
        "digest": row.digest or "-",
        "length": str(row.length),
        "offset": str(row.offset),
        "filename": row.warc_key,
        "recordtype": row.record_type,
        "recordid": row.record_id,
        "source": row.source,
        "run": row.run_id,
        "ip": row.ip,
        "platform": row.platform,
        "account": row.account,
        "postid": row.post_id,
        "datetime": row.ts,
    }


def _field(name: str, param: str) -> str:
    canonical = ALIASES.get(name, name)
    if canonical not in FIELDS:
        raise QueryError(f"{param}: unknown field {name!r} (fields: {', '.join(FIELDS)})")
    return canonical


@dataclass
class Filter:
    field: str
    value: str
    mode: str  # contains | exact | regex
    invert: bool
    regex: Any = None  # a compiled ``regex`` pattern (it can time out; ``re`` cannot)
    #: monotonic time by which every match of this query must be done (set per query).
    deadline: float | None = None

    @classmethod
    def parse(cls, text: str) -> Filter:
        if len(text) > MAX_FILTER_LEN:
            raise QueryError(f"filter: longer than {MAX_FILTER_LEN} characters")
        invert = text.startswith("!")
        body = text[1:] if invert else text
        mode = "contains"
        if body.startswith("="):
            mode, body = "exact", body[1:]
        elif body.startswith("~"):
            mode, body = "regex", body[1:]
        name, sep, value = body.partition(":")
        if not sep:
            raise QueryError(f"filter {text!r}: use [!][=|~]field:value")
        flt = cls(_field(name, f"filter {text!r}"), value, mode, invert)
        if mode == "regex":
            import regex

            try:
                flt.regex = regex.compile(value, regex.VERSION0)
            except (regex.error, ValueError, OverflowError) as exc:
                raise QueryError(f"filter {text!r}: bad regular expression: {exc}") from None
        return flt

    def __call__(self, values: Mapping[str, Any]) -> bool:
        value = values.get(self.field)
        text = "" if value is None else str(value)
        if self.mode == "exact":
            hit = text == self.value
        elif self.mode == "regex":
            assert self.regex is not None
            left = None if self.deadline is None else self.deadline - time.monotonic()
            try:
                if left is not None and left <= 0:
                    raise TimeoutError
                hit = self.regex.match(text, timeout=left) is not None
            except TimeoutError:
                raise QueryError(
                    f"filter ~{self.field}:{self.value[:60]}: the regular expression takes too "
                    f"long (over {REGEX_BUDGET_S:g} s for this query); simplify it"
                ) from None
        else:
            hit = self.value in text
        return hit != self.invert


@dataclass
class CdxQuery:
    url: str
    match_type: str
    low: str
    high: str | None
    ts_from: int | None = None
    ts_to: int | None = None
    closest: int | None = None
    reverse: bool = False
    limit: int = MAX_LIMIT
    filters: list[Filter] = field(default_factory=list)
    fields: list[str] | None = None
    output: str = "cdxj"
    collapse: tuple[str, int | None] | None = None
    record_types: Sequence[str] = REPLAYABLE
    run_ids: Sequence[str] | None = None
    #: pywb's paging: rows [page * page_size, (page + 1) * page_size) of the result.
    page: int = 0
    page_size: int | None = None
    show_num_pages: bool = False

    @property
    def offset(self) -> int:
        return self.page * self.page_size if self.page_size else 0


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise QueryError(f"{name}: given {len(values)} times (once only)")
    return values[0]


def search_range(url: str, match_type: str) -> tuple[str, str | None]:
    key = surt_key(url)
    if match_type == "exact":
        return key, None
    if match_type == "prefix":
        if url.endswith("/") and not key.endswith("/"):
            key += "/"
        return key, key[:-1] + chr(ord(key[-1]) + 1)
    host = key.split(")/")[0]
    if match_type == "host":
        return host + ")/", host + "*"
    start = host + "," if "," not in host else host + ")/"
    return start, host + "-"


def _when(value: str, bound: Bound, name: str) -> int:
    try:
        return parse_when(value, bound=bound, what=name)
    except QueryError:
        raise
    except ConfigError as exc:  # a bad date is a bad parameter: 400, naming it
        raise QueryError(str(exc)) from None


def parse_query(params: Mapping[str, Sequence[str]], *, allow_extra: bool = False) -> CdxQuery:
    """A CdxQuery from request parameters (name -> values), or QueryError naming the problem."""
    unknown = sorted(set(params) - PARAMS)
    if unknown and not allow_extra:
        raise QueryError(f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(PARAMS))})")
    url = _one(params, "url")
    if not url or not url.strip():
        raise QueryError("url: required (the URL to look up, e.g. url=example.com/page)")
    url = url.strip()
    if len(url) > MAX_URL:
        raise QueryError(f"url: longer than {MAX_URL} characters")
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise QueryError("url: contains control characters")
    match_type = _one(params, "matchType")
    if match_type is None:
        if url.startswith("*."):
            url, match_type = url[2:], "domain"
        elif url.endswith("*"):
            url, match_type = url[:-1], "prefix"
        else:
            match_type = "exact"
    if match_type not in MATCH_TYPES:
        raise QueryError(f"matchType: {match_type!r} is not one of {', '.join(MATCH_TYPES)}")
    if not url.strip("*./:"):
        raise QueryError("url: names no host or path")
    low, high = search_range(url, match_type)
    query = CdxQuery(url=url, match_type=match_type, low=low, high=high)
    if (value := _one(params, "from")) is not None:
        query.ts_from = _when(value, "low", "from")
    if (value := _one(params, "to")) is not None:
        query.ts_to = _when(value, "high", "to")
    if query.ts_from is not None and query.ts_to is not None and query.ts_from > query.ts_to:
        raise QueryError("from: is after to")
    sort = _one(params, "sort")
    if sort not in (None, "closest", "reverse", "asc", "default"):
        raise QueryError(f"sort: {sort!r} is not closest or reverse")
    closest = _one(params, "closest")
    if sort == "closest" and closest is None:
        raise QueryError("sort=closest needs closest=<timestamp>")
    if closest is not None:
        query.closest = _when(closest, "low", "closest")
    reverse = _one(params, "reverse")
    if reverse not in (None, "", "0", "1", "true", "false"):
        raise QueryError(f"reverse: {reverse!r} is not true or false")
    query.reverse = sort == "reverse" or reverse in ("1", "true")
    if (value := _one(params, "limit")) is not None:
        if not re.fullmatch(r"-?\d{1,9}", value.strip()):
            raise QueryError(f"limit: {value[:40]!r} is not a whole number")
        limit = int(value)
        if limit < 1 or limit > MAX_LIMIT:
            raise QueryError(f"limit: {limit} is out of range (1-{MAX_LIMIT})")
        query.limit = limit
    filters = params.get("filter", [])
    if len(filters) > MAX_FILTERS:
        raise QueryError(f"filter: at most {MAX_FILTERS} filters")
    query.filters = [Filter.parse(f) for f in filters]
    if (value := _one(params, "fl")) is not None:
        names = [n.strip() for n in value.split(",") if n.strip()]
        if not names:
            raise QueryError("fl: names no field")
        query.fields = [_field(n, "fl") for n in names]
    for name in ("page", "pageSize"):
        if (value := _one(params, name)) is not None:
            if not re.fullmatch(r"\d{1,6}", value.strip()):
                raise QueryError(f"{name}: {value[:40]!r} is not a whole number (0-999999)")
            if name == "page":
                query.page = int(value)
            else:
                query.page_size = int(value)
                if not 1 <= query.page_size <= MAX_LIMIT:
                    raise QueryError(f"pageSize: {value!r} is out of range (1-{MAX_LIMIT})")
    if query.page and not query.page_size:
        query.page_size = MAX_LIMIT
    show = _one(params, "showNumPages")
    if show not in (None, "", "0", "1", "true", "false"):
        raise QueryError(f"showNumPages: {show!r} is not true or false")
    query.show_num_pages = show in ("1", "true")
    output = _one(params, "output") or "cdxj"
    if output not in OUTPUTS:
        raise QueryError(f"output: {output!r} is not one of {', '.join(OUTPUTS)}")
    query.output = output
    if (value := _one(params, "collapse")) is not None:
        name, _, digits = value.partition(":")
        width = None
        if digits:
            if not (digits.isascii() and digits.isdigit()) or not 0 < int(digits) <= 64:
                raise QueryError(f"collapse: {value!r}: use field or field:N (N 1-64)")
            width = int(digits)
        query.collapse = (_field(name, "collapse"), width)
    return query


#: Every record type in the index: what ``attest find --all-records`` lists (lookups otherwise
#: list what replays, :data:`archive.index.cdxj.REPLAYABLE`).
ALL_RECORD_TYPES = ("response", "revisit", "resource", "metadata", "request")


def attest_run_ids(db: IndexDB, run: str) -> list[str]:
    """The attest runs ``run`` names: itself, or for ``DAG_ID/AIRFLOW_RUN_ID`` the attest runs
    of that DAG run that wrote indexed WARCs (none when it wrote none)."""
    if "/" in run:
        return sorted({str(w["run_id"]) for w in db.run_warcs(run)})
    return [run]


def find_captures(
    db: IndexDB,
    url: str,
    match_type: str = "exact",
    *,
    ts_from: int | None = None,
    ts_to: int | None = None,
    closest: int | None = None,
    limit: int = MAX_LIMIT,
    all_records: bool = False,
    run: str | None = None,
) -> list[IndexRow]:
    """The captures of a URL (``attest find`` and ``attest get``): those made from ``ts_from``
    to ``ts_to``, closest to ``closest`` first, of every record type with ``all_records``, of
    the run ``run`` names (:func:`attest_run_ids`) when given."""
    low, high = search_range(url, match_type)
    query = CdxQuery(
        url=url,
        match_type=match_type,
        low=low,
        high=high,
        ts_from=ts_from,
        ts_to=ts_to,
        closest=closest,
        limit=limit,
    )
    if all_records:
        query.record_types = ALL_RECORD_TYPES
    if run:
        query.run_ids = attest_run_ids(db, run)
        if not query.run_ids:
            return []
    return list(run_query(db, query))


def run_query(db: IndexDB, query: CdxQuery) -> Iterator[IndexRow]:
    """The rows a query selects, in its order, filtered, collapsed and limited."""
    exact = query.match_type == "exact"
    pushdown = not query.filters and query.collapse is None and not query.offset
    rows = db.select(
        low=query.low,
        high=query.high,
        exact=exact,
        ts_from=query.ts_from,
        ts_to=query.ts_to,
        record_types=query.record_types,
        order="desc" if query.reverse and query.closest is None else "asc",
        closest=query.closest if exact else None,
        limit=query.limit if pushdown and (exact or query.closest is None) else None,
        run_ids=query.run_ids,
    )
    selected: Iterable[IndexRow] = rows
    if query.closest is not None and not exact:
        target = query.closest
        selected = sorted(rows, key=lambda r: (abs(r.ts - target), r.ts))
    if query.filters:
        deadline = time.monotonic() + REGEX_BUDGET_S
        for flt in query.filters:
            flt.deadline = deadline
        selected = (r for r in selected if all(f(field_values(r)) for f in query.filters))
    if query.collapse is not None:
        selected = _collapse(selected, *query.collapse)
    skip = query.offset
    limit = min(query.limit, query.page_size) if query.page_size else query.limit
    count = 0
    for row in selected:
        if skip:
            skip -= 1
            continue
        yield row
        count += 1
        if count >= limit:
            return


def _collapse(rows: Iterable[IndexRow], name: str, width: int | None) -> Iterator[IndexRow]:
    last: object = object()
    for row in rows:
        value = field_values(row).get(name)
        token = str(value)[:width] if width else value
        if token != last:
            last = token
            yield row


def formatter(query: CdxQuery) -> tuple[str, Callable[[IndexRow], str]]:
    """The content type and a function turning a row into one output line (with newline)."""
    names = query.fields
    if query.output == "json":
        chosen = names or list(DEFAULT_FIELDS)

        def as_json(row: IndexRow) -> str:
            values = field_values(row)
            return json.dumps({n: values[n] for n in chosen}, ensure_ascii=False) + "\n"

        return "text/x-ndjson", as_json
    if query.output == "text":
        chosen = names or list(DEFAULT_FIELDS)

        def as_text(row: IndexRow) -> str:
            values = field_values(row)
            return " ".join("-" if values[n] is None else str(values[n]) for n in chosen) + "\n"

        return "text/plain", as_text
    rest = [n for n in (names or DEFAULT_FIELDS) if n not in ("urlkey", "timestamp")]
    if names is None:
        return "text/x-cdxj", lambda row: row.cdxj_line() + "\n"

    def as_cdxj(row: IndexRow) -> str:
        values = field_values(row)
        body = {n: values[n] for n in rest if values[n] is not None}
        return f"{row.surt} {values['timestamp']} {json.dumps(body, ensure_ascii=False)}\n"

    return "text/x-cdxj", as_cdxj
