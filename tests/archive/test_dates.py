"""archive.dates: what people type (ISO 8601, 4 to 14 digits) and what WARCs hold, in microseconds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archive.dates import (
    from_micros,
    http_date,
    iso,
    parse_http_date,
    parse_when,
    timestamp14,
    to_micros,
    warc_date_micros,
)
from archive.errors import ConfigError


def micros(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> int:
    """Microseconds since the epoch for a UTC time, computed by datetime alone."""
    delta = datetime(year, month, day, hour, minute, second, us, tzinfo=UTC) - datetime(
        1970, 1, 1, tzinfo=UTC
    )
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- ISO 8601 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28", micros(2026, 11, 28)),
        ("2026-11-28T02:45:22Z", micros(2026, 11, 28, 2, 45, 22)),
        ("2026-11-28T02:45:22z", micros(2026, 11, 28, 2, 45, 22)),
        ("2026-11-28T02:45:22+00:00", micros(2026, 11, 28, 2, 45, 22)),
        ("2026-11-28T04:45:22+02:00", micros(2026, 11, 28, 2, 45, 22)),
        ("2026-11-27T21:45:22-05:00", micros(2026, 11, 28, 2, 45, 22)),
        ("2026-11-28T04:45:22.5+02:00", micros(2026, 11, 28, 2, 45, 22, 500_000)),
        ("2026-11-28T02:45:22.123456Z", micros(2026, 11, 28, 2, 45, 22, 123_456)),
        ("2026-11-28T02:45:22.123Z", micros(2026, 11, 28, 2, 45, 22, 123_000)),
        # No zone given: UTC, as everywhere in attest.
        ("2026-11-28T02:45:22", micros(2026, 11, 28, 2, 45, 22)),
        ("2026-11-28T02:45", micros(2026, 11, 28, 2, 45)),
        ("  2026-11-28T02:45:22Z\n", micros(2026, 11, 28, 2, 45, 22)),
    ],
)
def test_iso_8601_forms(text: str, expected: int) -> None:
    assert parse_when(text) == expected


def test_an_offset_moves_the_instant_not_the_wall_clock() -> None:
    paris = parse_when("2026-11-28T10:00:00+01:00")
    utc = parse_when("2026-11-28T09:00:00Z")
    assert paris == utc
    assert iso(paris) == "2026-11-28T09:00:00.000000Z"


def test_a_date_alone_spans_the_whole_day_by_bound() -> None:
    low = parse_when("2026-11-28", bound="low")
    high = parse_when("2026-11-28", bound="high")
    assert low == parse_when("2026-11-28", bound="exact") == micros(2026, 11, 28)
    assert high == micros(2026, 11, 28, 23, 59, 59, 999_999)
    assert high - low == 86_400_000_000 - 1


def test_a_full_iso_time_is_the_same_whatever_the_bound() -> None:
    text = "2026-11-28T02:45:22Z"
    assert parse_when(text, bound="low") == parse_when(text, bound="high") == parse_when(text)


# --- digit forms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2026", micros(2026, 1, 1), micros(2026, 12, 31, 23, 59, 59, 999_999)),
        ("202611", micros(2026, 11, 1), micros(2026, 11, 30, 23, 59, 59, 999_999)),
        ("202602", micros(2026, 2, 1), micros(2026, 2, 28, 23, 59, 59, 999_999)),
        ("202402", micros(2024, 2, 1), micros(2024, 2, 29, 23, 59, 59, 999_999)),  # leap year
        ("20261128", micros(2026, 11, 28), micros(2026, 11, 28, 23, 59, 59, 999_999)),
        ("2026112802", micros(2026, 11, 28, 2), micros(2026, 11, 28, 2, 59, 59, 999_999)),
        ("202611280245", micros(2026, 11, 28, 2, 45), micros(2026, 11, 28, 2, 45, 59, 999_999)),
        (
            "20261128024522",
            micros(2026, 11, 28, 2, 45, 22),
            micros(2026, 11, 28, 2, 45, 22, 999_999),
        ),
    ],
)
def test_digit_forms_pad_down_and_up(text: str, low: int, high: int) -> None:
    assert parse_when(text, bound="low") == low
    assert parse_when(text, bound="high") == high
    # "exact" means the start of the period, as "low".
    assert parse_when(text) == low


def test_the_year_2026_high_is_its_last_microsecond() -> None:
    assert iso(parse_when("2026", bound="high")) == "2026-12-31T23:59:59.999999Z"
    assert iso(parse_when("2026", bound="low")) == "2026-01-01T00:00:00.000000Z"


def test_fourteen_digits_round_trip_through_timestamp14() -> None:
    value = parse_when("20261128024522")
    assert timestamp14(value) == "20261128024522"
    # A high bound is still inside the same second.
    assert timestamp14(parse_when("20261128024522", bound="high")) == "20261128024522"


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "20261",  # odd number of digits
        "2026112",
        "2026112802452",
        "202613",  # month 13
        "202600",  # month 0
        "20260230",  # February 30
        "20250229",  # not a leap year
        "20261100",  # day 0
        "2026112824",  # hour 24
        "202611282460",  # minute 60
        "20261128235960",  # second 60
        "1800",  # year before the web
        "18000101",
        "3000",  # after MAX_YEAR
        "0000",
        "1800-01-01",
        "1800-01-01T00:00:00Z",
        "3000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # would overflow datetime when converted to UTC
        "9999-12-31T23:59:59-01:00",
        "9999-12-31",
        "2026-13-01",
        "2026-02-30",
        "2026-11-28T25:00:00Z",
        "yesterday",
        "",
        "   ",
        "2026-11-28T02:45:22Q",
        "123",  # too few digits
        "202611280245221",  # 15 digits
        "' OR 1=1 --",
        "../../etc/passwd",
        "2026\x0011",
    ],
)
def test_bad_dates_raise_a_config_error_naming_the_value(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_when(text, what="from")
    message = str(caught.value)
    assert repr(text) in message
    assert message.startswith("from: ")


@pytest.mark.parametrize("bound", ["low", "high", "exact"])
def test_bounds_do_not_change_what_is_rejected(bound: str) -> None:
    for text in ("20260230", "1800", "9999-12-31", "20261"):
        with pytest.raises(ConfigError, match=repr(text).replace("\\", "\\\\")):
            parse_when(text, bound=bound)  # type: ignore[arg-type]


def test_year_range_edges() -> None:
    assert iso(parse_when("1991")) == "1991-01-01T00:00:00.000000Z"
    assert iso(parse_when("2999", bound="high")) == "2999-12-31T23:59:59.999999Z"
    with pytest.raises(ConfigError, match="1990"):
        parse_when("1990")
    # An offset that crosses into an out-of-range UTC year is refused too.
    with pytest.raises(ConfigError, match="out of range"):
        parse_when("2999-12-31T23:30:00-01:00")


# --- WARC-Date -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-28T02:45:22.123456Z",
        "2026-11-28T02:45:22.000000Z",
        "1991-01-01T00:00:00.000001Z",
        "2024-02-29T23:59:59.999999Z",
        "2999-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00.000000Z",
    ],
)
def test_warc_date_round_trips_through_iso(value: str) -> None:
    parsed = warc_date_micros(value)
    assert iso(parsed) == value
    assert parsed == to_micros(datetime.fromisoformat(value.replace("Z", "+00:00")))
    assert to_micros(from_micros(parsed)) == parsed


def test_warc_date_fractions_are_optional_and_cut_to_microseconds() -> None:
    assert warc_date_micros("2026-11-28T02:45:22Z") == micros(2026, 11, 28, 2, 45, 22)
    assert warc_date_micros("2026-11-28T02:45:22.5Z") == micros(2026, 11, 28, 2, 45, 22, 500_000)
    assert warc_date_micros("2026-11-28T02:45:22.123456789Z") == micros(
        2026, 11, 28, 2, 45, 22, 123_456
    )


def test_warc_date_agrees_with_parse_when_on_many_instants() -> None:
    for seconds in range(0, 4 * 366 * 86_400, 86_400 * 7 + 3_607):
        value = micros(2023, 1, 1) + seconds * 1_000_000 + seconds % 1_000_000
        text = iso(value)
        assert warc_date_micros(text) == value
        assert parse_when(text) == value


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-28 02:45:22Z",
        "2026-11-28T02:45:22",
        "2026-11-28T02:45:22+00:00",
        "20261128024522",
        "",
        "2026-02-30T00:00:00Z",  # no such day: never indexed as March 2nd
        "2026-13-01T00:00:00Z",
        "2026-11-28T24:00:00Z",
    ],
)
def test_warc_date_refuses_other_forms(value: str) -> None:
    with pytest.raises(ValueError, match="WARC-Date"):
        warc_date_micros(value)


def test_http_dates_for_memento() -> None:
    value = parse_when("2026-11-26T10:00:00Z")
    assert http_date(value) == "Thu, 26 Nov 2026 10:00:00 GMT"
    assert parse_http_date("Thu, 26 Nov 2026 10:00:00 GMT") == value
    with pytest.raises(ConfigError, match="'26/11/2026'"):
        parse_http_date("26/11/2026")


def test_timestamp14_matches_strftime_across_the_calendar() -> None:
    import random

    from archive.dates import from_micros, timestamp14

    rnd = random.Random(14)
    for micros in [0, 951_782_400_000_000, 4_107_542_399_999_999] + [
        rnd.randint(0, 32_503_680_000_000_000) for _ in range(20_000)
    ]:
        assert timestamp14(micros) == from_micros(micros).strftime("%Y%m%d%H%M%S")


def test_an_iso_month_is_the_whole_month() -> None:
    from archive.dates import iso, parse_when

    assert iso(parse_when("2026-05", bound="low")) == "2026-05-01T00:00:00.000000Z"
    assert iso(parse_when("2026-02", bound="high")) == "2026-02-28T23:59:59.999999Z"
