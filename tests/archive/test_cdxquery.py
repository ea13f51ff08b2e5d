"""The CDX server API's parameters (pywb's, plus OutbackCDX's collapse) and their execution."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.indexwarcs import SERIES_KEYS, SERIES_RUN_IDS, series_warcs

from archive.dates import parse_when, timestamp14
from archive.errors import ConfigError
from archive.index.cdxj import IndexRow, read_warc_index
from archive.index.db import IndexDB
from archive.index.query import (
    MAX_LIMIT,
    PARAMS,
    CdxQuery,
    QueryError,
    attest_run_ids,
    find_captures,
    formatter,
    parse_query,
    run_query,
    search_range,
)


def q(**params: str | list[str]) -> CdxQuery:
    return parse_query({k: v if isinstance(v, list) else [v] for k, v in params.items()})


def refused(**params: str | list[str]) -> str:
    """The QueryError message for these parameters."""
    with pytest.raises(QueryError) as caught:
        q(**params)
    assert isinstance(caught.value, ConfigError)
    return str(caught.value)


# --- url and matchType -----------------------------------------------------------------------


def test_exact_is_the_default() -> None:
    query = q(url="http://example.com/news/a.html")
    assert (query.match_type, query.low, query.high) == ("exact", "com,example)/news/a.html", None)
    assert query.limit == MAX_LIMIT
    assert (query.ts_from, query.ts_to, query.closest, query.reverse) == (None, None, None, False)
    assert query.output == "cdxj"
    assert query.fields is None
    assert query.collapse is None


def test_star_dot_means_domain() -> None:
    query = q(url="*.example.com")
    assert (query.url, query.match_type) == ("example.com", "domain")
    assert (query.low, query.high) == ("com,example)/", "com,example-")


def test_trailing_star_means_prefix() -> None:
    query = q(url="example.com/path/*")
    assert (query.url, query.match_type) == ("example.com/path/", "prefix")
    assert (query.low, query.high) == ("com,example)/path/", "com,example)/path0")


def test_an_explicit_match_type_wins_over_the_url_form() -> None:
    assert q(url="example.com/path/*", matchType="exact").match_type == "exact"


@pytest.mark.parametrize(
    ("url", "match_type", "expected"),
    [
        # pywb's calc_search_range, case by case.
        ("example.com/path/", "exact", ("com,example)/path", None)),
        ("example.com/path/", "prefix", ("com,example)/path/", "com,example)/path0")),
        ("example.com/path", "prefix", ("com,example)/path", "com,example)/pati")),
        ("http://www.example.com/some/page", "host", ("com,example)/", "com,example*")),
        ("example.com", "host", ("com,example)/", "com,example*")),
        ("sub.example.com/x", "host", ("com,example,sub)/", "com,example,sub*")),
        ("example.com", "domain", ("com,example)/", "com,example-")),
        ("https://example.com/deep/page?q=1", "domain", ("com,example)/", "com,example-")),
        ("com", "domain", ("com,", "com-")),  # a TLD: every host under it
    ],
)
def test_search_ranges_follow_pywb(
    url: str, match_type: str, expected: tuple[str, str | None]
) -> None:
    assert search_range(url, match_type) == expected
    query = q(url=url, matchType=match_type)
    assert (query.low, query.high) == expected


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({}, "url"),
        ({"url": ""}, "url"),
        ({"url": "   "}, "url"),
        ({"url": ["a.com", "b.com"]}, "url"),
        ({"url": "example.com/" + "a" * 5000}, "url"),
        ({"url": "example.com/\x00"}, "url"),
        ({"url": "example.com/\r\nX-Injected: 1"}, "url"),
        ({"url": "*"}, "url"),
        ({"url": "*./"}, "url"),
        ({"url": "example.com", "matchType": "regex"}, "matchType"),
        ({"url": "example.com", "matchType": "' OR 1=1 --"}, "matchType"),
        ({"url": "example.com", "matchType": ["exact", "prefix"]}, "matchType"),
    ],
)
def test_bad_url_and_match_type(params: dict[str, str | list[str]], names: str) -> None:
    assert refused(**params).startswith(names)


def test_unknown_parameters_are_named() -> None:
    message = refused(url="example.com", showResumeKey="true")
    assert "'showResumeKey'" in message
    assert "unknown parameter" in message
    assert parse_query({"url": ["example.com"], "x": ["1"]}, allow_extra=True).url == "example.com"


# --- limit, sort, dates ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "100001", "1e9", "-5", "", "ten", "1.5", "9" * 20, "0x10"])
def test_bad_limits(value: str) -> None:
    message = refused(url="example.com", limit=value)
    assert message.startswith("limit: ")


@pytest.mark.parametrize(("value", "limit"), [("1", 1), (" 7 ", 7), ("100000", MAX_LIMIT)])
def test_good_limits(value: str, limit: int) -> None:
    assert q(url="example.com", limit=value).limit == limit


def test_from_and_to_are_padded_like_pywb() -> None:
    query = q(url="example.com", **{"from": "2026", "to": "202611"})
    assert query.ts_from == parse_when("2026-01-01T00:00:00Z")
    assert query.ts_to == parse_when("2026-11-30T23:59:59.999999Z")
    same = q(url="example.com", **{"from": "2026", "to": "2026"})
    assert same.ts_from is not None
    assert same.ts_to is not None
    assert same.ts_from < same.ts_to


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "20261"}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "18000101"}, "to"),
        ({"to": "../../etc/passwd"}, "to"),
        ({"from": "2027", "to": "2026"}, "from"),
        ({"closest": "tomorrow"}, "closest"),
        ({"closest": "99999999999999"}, "closest"),
        ({"sort": "random"}, "sort"),
        ({"sort": "closest"}, "sort"),  # needs closest=
        ({"reverse": "maybe"}, "reverse"),
    ],
)
def test_bad_dates_and_sorts_are_query_errors(params: dict[str, str], name: str) -> None:
    message = refused(url="example.com", **params)
    assert message.startswith(name)


def test_closest_implies_closest_sort_and_reverse_forms() -> None:
    assert q(url="example.com", closest="20261115").closest == parse_when("20261115")
    assert q(url="example.com", sort="reverse").reverse
    assert q(url="example.com", reverse="true").reverse
    assert q(url="example.com", reverse="1").reverse
    assert not q(url="example.com", reverse="false").reverse


# --- filter, fl, output, collapse ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "mode", "invert", "value"),
    [
        ("mime:html", "mime", "contains", False, "html"),
        ("=status:200", "status", "exact", False, "200"),
        ("~url:https?://www\\.", "url", "regex", False, "https?://www\\."),
        ("!mime:image", "mime", "contains", True, "image"),
        ("!=statuscode:404", "status", "exact", True, "404"),
        ("!~original:.*\\.png$", "url", "regex", True, ".*\\.png$"),
        ("mimetype:text/html:x", "mime", "contains", False, "text/html:x"),
    ],
)
def test_filter_syntax(text: str, field: str, mode: str, invert: bool, value: str) -> None:
    (flt,) = q(url="example.com", filter=text).filters
    assert (flt.field, flt.mode, flt.invert, flt.value) == (field, mode, invert, value)
    assert (flt.regex is not None) == (mode == "regex")


def test_filter_matching() -> None:
    values = {"mime": "text/html", "status": "200", "url": "https://www.example.com/a.png"}
    cases = {
        "mime:html": True,
        "mime:image": False,
        "!mime:image": True,
        "=status:200": True,
        "=status:20": False,
        "status:20": True,
        "~url:https?://www\\.": True,
        "~url:www": False,  # a regex matches at the start, as pywb's
        "!~url:.*\\.png$": False,
    }
    for text, expected in cases.items():
        (flt,) = q(url="example.com", filter=text).filters
        assert flt(values) is expected, text


@pytest.mark.parametrize(
    "text",
    ["mime", "=status", "nosuchfield:1", "~url:(unclosed", "~url:*", "x" * 600],
)
def test_bad_filters_are_named(text: str) -> None:
    assert refused(url="example.com", filter=text).startswith("filter")


def test_too_many_filters() -> None:
    assert refused(url="example.com", filter=["mime:a"] * 17).startswith("filter")
    assert len(q(url="example.com", filter=["mime:a"] * 16).filters) == 16


def test_fl_names_fields_with_pywb_aliases() -> None:
    query = q(url="example.com", fl="urlkey,timestamp,original,statuscode,mimetype, digest")
    assert query.fields == ["urlkey", "timestamp", "url", "status", "mime", "digest"]
    assert refused(url="example.com", fl="urlkey,password").startswith("fl: unknown field")
    assert refused(url="example.com", fl=" , ").startswith("fl")


def test_output() -> None:
    assert q(url="example.com", output="json").output == "json"
    assert q(url="example.com", output="text").output == "text"
    assert refused(url="example.com", output="xml").startswith("output")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("digest", ("digest", None)),
        ("timestamp:10", ("timestamp", 10)),
        ("urlkey", ("urlkey", None)),
        ("original:64", ("url", 64)),
    ],
)
def test_collapse(value: str, expected: tuple[str, int | None]) -> None:
    assert q(url="example.com", collapse=value).collapse == expected


@pytest.mark.parametrize(
    "value", ["timestamp:0", "timestamp:65", "timestamp:x", "timestamp:-1", "timestamp:²", "nope"]
)
def test_bad_collapse(value: str) -> None:
    assert refused(url="example.com", collapse=value).startswith("collapse")


# --- a small index ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexDB]:
    directory = tmp_path_factory.mktemp("cdx")
    db = IndexDB(str(directory / "index.sqlite"))
    for path, key in series_warcs(directory):
        db.load(read_warc_index(path, key), sha256=None, size=None, cdxj_key=None, indexed_at="x")
    yield db
    db.close()


def run(db: IndexDB, **params: str | list[str]) -> list[IndexRow]:
    return list(run_query(db, q(**params)))


def times(rows: list[IndexRow]) -> list[str]:
    return [timestamp14(r.ts) for r in rows]


def test_exact_lists_captures_oldest_first(index_db: IndexDB) -> None:
    rows = run(index_db, url="http://example.com/")
    assert times(rows) == [
        "20261101100000",
        "20261101103000",
        "20261115120000",
        "20261128024522",
    ]
    assert {r.record_type for r in rows} == {"response"}  # requests never listed
    assert {r.warc_key for r in rows} == set(SERIES_KEYS)
    assert run(index_db, url="https://www.example.com")[0].url == "http://example.com/"


def test_closest_orders_by_distance(index_db: IndexDB) -> None:
    rows = run(index_db, url="example.com/", closest="20261114")
    assert times(rows) == [
        "20261115120000",  # 1.5 days after
        "20261101103000",  # 12.6 days before
        "20261101100000",
        "20261128024522",  # 14.1 days after
    ]
    assert times(run(index_db, url="example.com/", closest="20261114", limit="1")) == [
        "20261115120000"
    ]
    assert run(index_db, url="example.com/", closest="20261114", sort="closest") == rows


def test_closest_over_a_prefix(index_db: IndexDB) -> None:
    rows = run(index_db, url="example.com/path/*", closest="20261103")
    assert [r.url for r in rows] == ["http://example.com/path/b", "http://example.com/path/a"]


def test_reverse(index_db: IndexDB) -> None:
    forward = run(index_db, url="example.com/")
    assert run(index_db, url="example.com/", sort="reverse") == forward[::-1]
    assert run(index_db, url="example.com/", reverse="true") == forward[::-1]
    assert times(run(index_db, url="example.com/", reverse="1", limit="1")) == ["20261128024522"]


def test_from_and_to_bounds_are_inclusive(index_db: IndexDB) -> None:
    within = run(index_db, url="example.com/", **{"from": "20261101100000", "to": "20261101103000"})
    # "to" pads to the second's last microsecond: the 10:30:00.25 capture is inside.
    assert times(within) == ["20261101100000", "20261101103000"]
    after = run(index_db, url="example.com/", **{"from": "20261101103001"})
    assert times(after) == ["20261115120000", "20261128024522"]
    day = run(index_db, url="example.com/", **{"from": "20261128", "to": "20261128"})
    assert times(day) == ["20261128024522"]
    iso = run(index_db, url="example.com/", **{"from": "2026-11-15", "to": "2026-11-15"})
    assert times(iso) == ["20261115120000"]
    assert run(index_db, url="example.com/", **{"from": "2027"}) == []


def test_match_types_over_the_index(index_db: IndexDB) -> None:
    def urls(**params: str) -> set[str]:
        return {r.url for r in run(index_db, **params)}

    assert urls(url="example.com/path/*") == {
        "http://example.com/path/a",
        "http://example.com/path/b",
    }
    assert urls(url="example.com/path*") == {
        "http://example.com/path/a",
        "http://example.com/path/b",
        "http://example.com/pathology",
    }
    host = urls(url="example.com", matchType="host")
    assert "https://www.example.com/logo.png" in host  # www. is the same host key
    assert "http://sub.example.com/y" not in host
    domain = urls(url="*.example.com")
    assert domain == host | {"http://sub.example.com/y"}
    assert "http://example-foo.com/" not in domain
    assert "http://example.org/" not in domain


def test_filters_on_mime_and_status(index_db: IndexDB) -> None:
    def urls(*filters: str) -> list[str]:
        return sorted({r.url for r in run(index_db, url="*.example.com", filter=list(filters))})

    assert urls("mime:image") == ["https://www.example.com/logo.png"]
    assert urls("=status:404") == ["http://example.com/gone"]
    assert "http://example.com/gone" not in urls("!=status:404")
    assert urls("~url:http://example\\.com/path/", "!url:/b") == ["http://example.com/path/a"]
    assert urls("=mime:text/html", "=status:200", "url:sub.") == ["http://sub.example.com/y"]
    limited = run(index_db, url="*.example.com", filter="mime:html", limit="2")
    assert len(limited) == 2


def test_collapse_by_timestamp_prefix(index_db: IndexDB) -> None:
    hourly = run(index_db, url="example.com/", collapse="timestamp:10")
    assert times(hourly) == ["20261101100000", "20261115120000", "20261128024522"]
    daily = run(index_db, url="example.com/", collapse="timestamp:8")
    assert times(daily) == ["20261101100000", "20261115120000", "20261128024522"]
    monthly = run(index_db, url="example.com/", collapse="timestamp:6")
    assert times(monthly) == ["20261101100000"]


def test_collapse_by_digest_keeps_each_run_once(index_db: IndexDB) -> None:
    rows = run(index_db, url="example.com/", collapse="digest")
    assert times(rows) == ["20261101100000", "20261115120000", "20261128024522"]
    assert rows[0].digest == rows[2].digest != rows[1].digest
    assert len(run(index_db, url="example.com/", collapse="digest", limit="2")) == 2


def test_output_formats(index_db: IndexDB) -> None:
    query = q(url="example.com/", limit="1", output="json", fl="urlkey,timestamp,url,status")
    content_type, line = formatter(query)
    (row,) = run_query(index_db, query)
    assert content_type == "text/x-ndjson"
    assert json.loads(line(row)) == {
        "urlkey": "com,example)/",
        "timestamp": "20261101100000",
        "url": "http://example.com/",
        "status": "200",
    }
    query = q(url="example.com/", limit="1")
    content_type, line = formatter(query)
    (row,) = run_query(index_db, query)
    assert content_type == "text/x-cdxj"
    urlkey, timestamp, body = line(row).rstrip("\n").split(" ", 2)
    assert (urlkey, timestamp) == ("com,example)/", "20261101100000")
    assert json.loads(body)["filename"] == SERIES_KEYS[0]
    content_type, line = formatter(q(url="example.com/", output="text", fl="timestamp,status"))
    assert content_type == "text/plain"
    assert line(row) == "20261101100000 200\n"


# --- fuzzing ---------------------------------------------------------------------------------

NASTY = [
    "' OR 1=1 --",
    "'; DROP TABLE captures; --",
    '" OR ""="',
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "\x00",
    "a\x00b",
    "%00",
    "*",
    "*.",
    "*.*",
    "\U0010ffff",
    "\ufeff",
    "x" * 5000,
    "9" * 40,
    "-1",
    "0",
    "1e9",
    "",
    " ",
    ":",
    "~:",
    "!~url:(",
    "~url:[",
    "timestamp:99",
    "http://[::1]:99999/",
    "http://user:pass@example.com:notaport/",
    "javascript:alert(1)",
    "file:///etc/passwd",
]
VALUES = {
    "url": [
        "example.com/",
        "*.example.com",
        "example.com/path/*",
        "http://example.com/gone",
        "example.com/' OR 1=1 --",
        "example.com/../../etc/passwd*",
        "../../etc/passwd",
        "example.com/%00",
        "*.example.com/\U0010ffff",
        "\U0010ffff*",
        "com",
        "http://[::1]/x",
    ],
    "matchType": ["exact", "prefix", "host", "domain"],
    "from": ["2026", "20261101", "2026-11-15", "20261101103001"],
    "to": ["2026", "202611", "2026-11-28T00:00:00Z", "20261101103000"],
    "closest": ["20261114", "2026-11-01T10:15:00Z"],
    "sort": ["closest", "reverse", "asc"],
    "reverse": ["true", "false", "1", "0"],
    "limit": ["1", "2", "3", "100000"],
    "filter": [
        "mime:html",
        "=status:200",
        "!mime:image",
        "~url:http",
        "=status:404",
        "url:' OR 1=1 --",
        "!=digest:'; DROP TABLE captures; --",
        "~url:.*(a|b)*",
    ],
    "fl": ["urlkey,timestamp", "url,mime,status", "digest", "recordid,platform,datetime"],
    "output": ["cdxj", "json", "text"],
    "collapse": ["digest", "timestamp:10", "timestamp:6", "urlkey"],
}
value_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.from_regex(r"[0-9]{0,16}", fullmatch=True),
)


@st.composite
def params(draw: st.DrawFn) -> dict[str, list[str]]:
    """Mostly well-formed parameters holding hostile values, sometimes anything at all."""
    names = draw(st.lists(st.sampled_from(sorted(PARAMS - {"url"})), max_size=4, unique=True))
    if draw(st.integers(0, 5)) > 0:
        names.append("url")
    if draw(st.integers(0, 5)) == 0:
        names.append(draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=8))))
    out: dict[str, list[str]] = {}
    for name in names:
        good = st.sampled_from(VALUES.get(name, NASTY))
        if draw(st.integers(0, 4)) > 0:
            out[name] = draw(st.lists(good, min_size=1, max_size=3 if name == "filter" else 1))
        else:
            out[name] = draw(st.lists(st.one_of(good, value_text), max_size=3))
    return out


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(params())
def test_parse_query_either_parses_or_says_which_parameter(params: dict[str, list[str]]) -> None:
    try:
        query = parse_query(params)
    except QueryError as exc:
        message = str(exc)
        assert message
        assert any(message.startswith(name) for name in PARAMS) or "parameter" in message
        return
    assert isinstance(query, CdxQuery)
    assert query.match_type in ("exact", "prefix", "host", "domain")
    assert 1 <= query.limit <= MAX_LIMIT


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(params())
def test_any_parsed_query_runs_within_its_limit(
    index_db: IndexDB, params: dict[str, list[str]]
) -> None:
    try:
        query = parse_query(params)
    except QueryError:
        return
    rows = list(run_query(index_db, query))
    assert len(rows) <= query.limit
    _, line = formatter(query)
    for row in rows:
        assert line(row).endswith("\n")
        if query.ts_from is not None:
            assert row.ts >= query.ts_from
        if query.ts_to is not None:
            assert row.ts <= query.ts_to
    # Nothing the query said changed the index.
    assert index_db.counts() == {"warcs": 2, "records": 24, "texts": 10}


def test_hostile_regex_filters_cannot_hold_the_service() -> None:
    """Classic catastrophic-backtracking patterns finish at once, and a query whose regular
    expressions run past the time budget stops with a QueryError, not a busy server."""
    import time

    from archive.index.query import Filter

    started = time.monotonic()
    for pattern in ("(x+x+)+y", "(.*a){25}", "(a|a?)+b", r"(\w+\s?)*$!"):
        flt = Filter.parse(f"~url:{pattern}")
        flt.deadline = time.monotonic() + 5
        assert flt({"url": "a" * 60 + "!"}) in (True, False)
        assert flt({"url": "x" * 60}) is False
    assert time.monotonic() - started < 2
    expired = Filter.parse("~url:http")
    expired.deadline = time.monotonic() - 1
    with pytest.raises(QueryError, match="takes too long"):
        expired({"url": "http://example.com/"})


def test_find_captures_as_the_command_line_asks(index_db: IndexDB) -> None:
    assert find_captures(index_db, "http://example.com/") == run(index_db, url="example.com/")
    every = find_captures(index_db, "http://example.com/", all_records=True)
    assert {r.record_type for r in every} == {"request", "response"}
    after = find_captures(index_db, "example.com/", ts_from=parse_when("20261101103001"))
    assert times(after) == ["20261115120000", "20261128024522"]
    closest = parse_when("20261114", bound="low")
    assert times(find_captures(index_db, "example.com/", closest=closest, limit=1)) == [
        "20261115120000"
    ]
    second = find_captures(index_db, "example.com/", run=SERIES_RUN_IDS[1])
    assert times(second) == ["20261115120000", "20261128024522"]
    assert attest_run_ids(index_db, SERIES_RUN_IDS[1]) == [SERIES_RUN_IDS[1]]
    # DAG_ID/AIRFLOW_RUN_ID: the attest runs of a DAG run; these WARCs name none.
    assert attest_run_ids(index_db, "source_x/manual__2026") == []
    assert find_captures(index_db, "example.com/", run="source_x/manual__2026") == []
