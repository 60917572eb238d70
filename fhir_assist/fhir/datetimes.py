"""FHIR date, dateTime and instant values: checking them and reading them.

Real exports write offsets ("+02:00"), fractions of any length, partial dates
("2019", "2019-04") and, against the specification, times without a zone; all are
read. Checking follows FHIR except that a missing zone is tolerated (such times are
read as UTC, and the ingest report says so); full R4 validation applies FHIR's rules.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc

# A FHIR instant: a full date-time with seconds and a zone (the calendar is checked apart).
_INSTANT_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
                         r"(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))")
_DT_RE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
                    r"(Z|[+-]\d{2}:\d{2})?)?)?)?\Z")


# FHIR's own regular expressions cost several microseconds a date; a few string
# tests plus the C-coded ISO parser give the same verdict (calendar included) in a
# fraction of that.
def is_fhir_date(value: str) -> bool:
    """True for a FHIR date: "YYYY", "YYYY-MM" or "YYYY-MM-DD" (a real calendar day)."""
    n = len(value)
    if n == 4:
        return value.isdigit()
    if n == 7:
        return value[4] == "-" and value[:4].isdigit() and value[5:].isdigit() \
            and "01" <= value[5:] <= "12"
    if n != 10 or value[4] != "-" or value[7] != "-":
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_fhir_datetime(value: str) -> bool:
    """True for a FHIR dateTime (or date); the zone may be missing, a leap second is valid."""
    n = len(value)
    if n <= 10:
        return is_fhir_date(value)
    if n < 19 or value[10] != "T" or value[13] != ":" or value[16] != ":" \
            or not is_fhir_date(value[:10]):
        return False
    tail = value[19:]
    if tail.endswith("Z"):
        tail = tail[:-1]
    elif len(tail) >= 6 and tail[-6] in "+-" and tail[-3] == ":":
        tail = tail[:-6]
    if tail and (tail[0] != "." or not tail[1:].isdigit()):
        return False
    if value[17:19] == "60":       # a leap second is a valid FHIR time
        value = value[:17] + "59" + value[19:]
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_fhir_instant(value: Any) -> bool:
    """True for a FHIR instant: a real calendar day, a time with seconds, and a zone."""
    return isinstance(value, str) and _INSTANT_RE.fullmatch(value) is not None and is_fhir_datetime(value)


# The forms nearly every export writes: a full timestamp with a zone,
# YYYY-MM-DDThh:mm:ss[.f+](Z|+hh:mm|-hh:mm), or a bare date. `_zone_at` tests the shape by
# position (a regular expression call costs as much as the parse itself), and fromisoformat,
# which reads only ASCII digits where digits go, refuses the rest.


def _zone_at(value: str, n: int) -> int:
    """Where the zone starts in a timestamp of that shape (digits left to fromisoformat, a
    leap second left out); 0 when it is not one."""
    if n < 20 or value[10] != "T" or value[4] != "-" or value[7] != "-" or value[13] != ":" \
            or value[16] != ":" or not value.isascii() or value[17:19] == "60":
        return 0
    if value[-1] == "Z":
        zone = n - 1
    elif value[-3] == ":" and (value[-6] == "+" or value[-6] == "-"):
        zone = n - 6
    else:
        return 0
    if zone == 19 or (zone > 20 and value[19] == "." and value[20:zone].isdigit()):
        return zone
    return 0


def check_fhir_datetime(value: str) -> tuple[datetime | None, bool, bool] | None:
    """`read_fhir_datetime(value)` when `is_fhir_datetime(value)`, else None: both in one
    parse for the common forms (ingest checks and reads every date it keeps); anything
    else is left to the two functions themselves, so the answer is always theirs.

    The UTC moment is the time read as UTC less the zone's offset: the same datetime
    `astimezone(UTC)` gives, without its cost (nor that of `replace(tzinfo=...)`)."""
    n = len(value)
    at = _zone_at(value, n)
    if at:
        try:
            if at == n - 1:
                return datetime.fromisoformat(value), False, False
            zone = value[at:]
            offset = _OFFSETS.get(zone)
            if offset is None:
                offset = _offset(zone)
            if offset is not None:
                return datetime.fromisoformat(value[:-6] + "Z") - offset, False, False
        except (ValueError, OverflowError):
            pass
    elif n == 10 and value[4] == "-" and value[7] == "-" and value.isascii():
        try:
            return datetime.fromisoformat(value + "T00:00:00Z"), True, False
        except ValueError:
            pass
    return read_fhir_datetime(value) if is_fhir_datetime(value) else None


_OFFSETS: dict[str, timedelta] = {}


def _offset(zone: str) -> timedelta | None:
    """The offset fromisoformat reads from a zone ("+05:30"), kept once known."""
    try:
        offset = datetime.fromisoformat("2000-01-01T00:00:00" + zone).utcoffset()
    except ValueError:
        return None
    if len(_OFFSETS) < 2048:
        _OFFSETS[zone] = offset
    return offset


def parse_timestamp(value: Any) -> datetime | None:
    """A moment a caller gives (a `since` filter, a feedback `outcomeTimestamp`): a FHIR date,
    dateTime or instant as an aware UTC datetime, a time without zone read as UTC; None when
    the text is not one."""
    if not isinstance(value, str) or not is_fhir_datetime(value.strip()):
        return None
    return read_fhir_datetime(value.strip())[0]


def read_fhir_datetime(value: Any, *, keep_offset: bool = False) -> tuple[datetime | None, bool, bool]:
    """(aware datetime, date_only, zone_assumed) of a FHIR date/dateTime/instant.

    The moment is in UTC unless `keep_offset`, which keeps the offset as written (so
    the calendar day shown is the one the source meant). Partial dates take the first
    month/day; a time without zone is read as UTC (`zone_assumed`); a leap second
    becomes :59; fractions beyond microseconds are cut.
    """
    if not isinstance(value, str):
        return None, False, False
    n = len(value)
    dashed = n >= 10 and value[4] == "-" and value[7] == "-"
    if dashed and n >= 19 and value[10] == "T":
        # Fast path (C-coded) for complete timestamps; seconds=60 and odd forms fall through.
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                return moment.replace(tzinfo=UTC), False, True
            return _in_utc_unless(keep_offset, moment)
    elif dashed and n == 10:
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC), True, False
        except ValueError:
            pass
    return _read_slowly(value.strip(), keep_offset)


def _read_slowly(value: str, keep_offset: bool) -> tuple[datetime | None, bool, bool]:
    match = _DT_RE.match(value)
    if not match:
        return None, False, False
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                          int(minute or 0), min(int(second or 0), 59),  # leap second 60 → 59
                          int((frac or "0")[:6].ljust(6, "0")))
    except ValueError:
        return None, False, False
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        moment = moment.replace(tzinfo=timezone(sign * offset))
        return _in_utc_unless(keep_offset, moment)
    return moment.replace(tzinfo=UTC), hour is None, hour is not None and zone is None


def _in_utc_unless(keep_offset: bool, moment: datetime) -> tuple[datetime | None, bool, bool]:
    """The moment in UTC (or as written). A moment that UTC cannot hold, such as
    0001-01-01T00:00:00+05:00 (the year before year 1), reads as no date at all."""
    if keep_offset:
        return moment, False, False
    try:
        return moment.astimezone(UTC), False, False
    except OverflowError:
        return None, False, False


def parse_fhir_datetime(value: Any, *, keep_offset: bool = False) -> datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (None if unreadable).

    UTC unless `keep_offset`; partial dates take the first month/day; a time without
    zone is read as UTC.
    """
    return read_fhir_datetime(value, keep_offset=keep_offset)[0]


def parse_fhir_date(value: Any) -> date | None:
    """The calendar date written in a FHIR date or dateTime (partial dates: first day)."""
    if not isinstance(value, str):
        return None
    moment = read_fhir_datetime(value.strip()[:10])[0]
    return moment.date() if moment is not None else None
