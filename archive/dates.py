"""Capture times: WARC dates, 14-digit web-archive timestamps and what people type.

The index keeps times as integer microseconds since the Unix epoch (UTC), so captures made
within the same second keep their order. Users and the CDX API may give a date as ISO 8601
(``2026-11-28``, ``2026-11-28T02:45:22Z``, ``2026-11-28T04:45:22.5+02:00``) or in the web
archive's digit form (``2026``, ``202611``, ... ``20261128024522``): a partial digit form means
the earliest moment of that period (``bound="low"``) or its last microsecond (``bound="high"``),
as pywb pads ``from`` and ``to``.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from archive.errors import ConfigError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Earliest and latest capture times accepted anywhere (the web did not exist before 1991).
MIN_YEAR = 1991
MAX_YEAR = 2999

_DIGITS = re.compile(r"\d{4,14}")
_WARC_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z\Z")

_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

Bound = Literal["low", "high", "exact"]


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch for an aware datetime."""
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def warc_date_micros(value: str) -> int:
    """A ``WARC-Date`` (``2026-11-28T02:45:22.123456Z``, fraction optional) in microseconds."""
    match = _WARC_DATE.match(value)
    if not match:
        raise ValueError(f"not a WARC-Date: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (
        1 <= month <= 12
        and 1 <= day <= _MONTH_DAYS[month]
        and (day < 29 or month != 2 or calendar.isleap(year))
        and hour < 24
        and minute < 60
        and second < 61  # a leap second
    ):
        raise ValueError(f"not a WARC-Date: {value!r}")
    frac = match.group(7) or ""
    micros = int((frac + "000000")[:6])
    days = _days_from_civil(year, month, day)
    return ((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's algorithm: no datetime object per record when indexing.
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def timestamp14(micros: int) -> str:
    """The 14-digit form (``YYYYMMDDhhmmss``) of a time, as CDX lines and replay URLs use."""
    days, rest = divmod(micros // 1_000_000, 86_400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    # The inverse of _days_from_civil (Howard Hinnant's algorithm).
    days += 719468
    era = (days if days >= 0 else days - 146096) // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    year = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return year + (month <= 2), month, day


def iso(micros: int) -> str:
    """ISO 8601 UTC with microseconds (the form WARC-Date uses)."""
    return from_micros(micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def http_date(micros: int) -> str:
    """RFC 7231 IMF-fixdate, as Memento-Datetime wants."""
    return from_micros(micros).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_http_date(value: str, *, what: str = "Accept-Datetime") -> int:
    try:
        moment = datetime.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT")
    except ValueError:
        raise ConfigError(
            f"{what}: {value!r} is not an HTTP date (e.g. 'Thu, 26 Nov 2026 10:00:00 GMT')"
        ) from None
    return _checked(moment.replace(tzinfo=UTC), value, what)


def parse_when(value: str, *, bound: Bound = "exact", what: str = "date") -> int:
    """Microseconds for a date given as ISO 8601 or 4 to 14 digits; ConfigError names the value."""
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}", text):  # a month, ISO style: 2026-05
        text = text.replace("-", "")
    if _DIGITS.fullmatch(text):
        return _parse_digits(text, bound, value, what)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{what}: {value!r} is not a date (use ISO 8601 such as 2026-11-28T10:00:00Z, "
            "or 4 to 14 digits such as 20261128100000)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    date_only = len(text) == 10
    if date_only and bound == "high":
        try:
            moment = moment + timedelta(days=1) - timedelta(microseconds=1)
        except OverflowError:  # 9999-12-31: out of range anyway
            raise ConfigError(
                f"{what}: {value!r} is out of range ({MIN_YEAR}-{MAX_YEAR})"
            ) from None
    return _checked(moment, value, what)


def _parse_digits(text: str, bound: Bound, value: str, what: str) -> int:
    if len(text) % 2:
        raise ConfigError(
            f"{what}: {value!r} has an odd number of digits (use YYYY[MM[DD[hh[mm[ss]]]]])"
        )
    parts = [int(text[0:4])] + [int(text[i : i + 2]) for i in range(4, len(text), 2)]
    year = parts[0]
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ConfigError(f"{what}: {value!r}: year {year} is out of range ({MIN_YEAR}-{MAX_YEAR})")
    high = bound == "high"
    month = parts[1] if len(parts) > 1 else (12 if high else 1)
    if not 1 <= month <= 12:
        raise ConfigError(f"{what}: {value!r}: month {month:02d} is out of range")
    last_day = calendar.monthrange(year, month)[1]
    day = parts[2] if len(parts) > 2 else (last_day if high else 1)
    hour = parts[3] if len(parts) > 3 else (23 if high else 0)
    minute = parts[4] if len(parts) > 4 else (59 if high else 0)
    second = parts[5] if len(parts) > 5 else (59 if high else 0)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ConfigError(f"{what}: {value!r}: {exc}") from None
    micros = to_micros(moment)
    return micros + 999_999 if high else micros


def _checked(moment: datetime, value: str, what: str) -> int:
    try:
        year = moment.astimezone(UTC).year
    except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:00-02:00
        year = moment.year
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ConfigError(f"{what}: {value!r} is out of range ({MIN_YEAR}-{MAX_YEAR})")
    return to_micros(moment)
