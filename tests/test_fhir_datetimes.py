from datetime import date, datetime, timedelta, timezone

import pytest

from fhir_assist.fhir.datetimes import (
    is_fhir_date, is_fhir_datetime, is_fhir_instant, parse_fhir_date, parse_fhir_datetime, parse_timestamp,
    read_fhir_datetime,
)

UTC = timezone.utc


@pytest.mark.parametrize("value, expected", [
    ("2021-03-04T05:06:07Z", datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
    ("2021-03-04T05:06:07+02:00", datetime(2021, 3, 4, 3, 6, 7, tzinfo=UTC)),
    ("2021-03-04T23:30:00-05:00", datetime(2021, 3, 5, 4, 30, tzinfo=UTC)),
    ("2021-03-04T05:06:07.123456Z", datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)),
    ("2021-03-04T05:06:07.1234567891+01:00", datetime(2021, 3, 4, 4, 6, 7, 123456, tzinfo=UTC)),
    ("2021-03-04T05:06:07.5Z", datetime(2021, 3, 4, 5, 6, 7, 500000, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),   # leap second
    ("2021-03-04", datetime(2021, 3, 4, tzinfo=UTC)),
    ("2021-03", datetime(2021, 3, 1, tzinfo=UTC)),
    ("2021", datetime(2021, 1, 1, tzinfo=UTC)),
    ("2021-03-04T05:06:07", datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),      # no zone: UTC
])
def test_parse_fhir_datetime_gives_utc(value, expected):
    moment = parse_fhir_datetime(value)
    assert moment == expected and moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["yesterday", "2021-13-01", "2021-02-30", "2021-03-04T25:00:00Z",
                                   "", None, 20210304, "04/03/2021",
                                   # valid FHIR, but before year 1 in UTC: no date, not a crash
                                   "0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00.5+05:00",
                                   "0001-01-01T00:00+14:00"])
def test_unreadable_values_give_none(value):
    assert parse_fhir_datetime(value) is None


def test_precision_and_assumed_zone_are_reported():
    assert read_fhir_datetime("2021-03-04")[1:] == (True, False)
    assert read_fhir_datetime("2021-03")[1:] == (True, False)
    assert read_fhir_datetime("2021-03-04T05:06:07")[1:] == (False, True)
    assert read_fhir_datetime("2021-03-04T05:06:07+01:00")[1:] == (False, False)
    assert read_fhir_datetime("2016-12-31T23:59:60+01:00")[1:] == (False, False)


def test_keep_offset_keeps_the_calendar_day_the_source_meant():
    late = parse_fhir_datetime("2021-03-04T23:30:00-05:00", keep_offset=True)
    assert late.date() == date(2021, 3, 4) and late.utcoffset() == timedelta(hours=-5)
    assert late == parse_fhir_datetime("2021-03-04T23:30:00-05:00")       # the same instant
    slow = parse_fhir_datetime("2016-12-31T23:59:60+09:00", keep_offset=True)
    assert slow.utcoffset() == timedelta(hours=9) and slow.second == 59


def test_parse_fhir_date_reads_the_written_day():
    assert parse_fhir_date("1950-07-14") == date(1950, 7, 14)
    assert parse_fhir_date("2021-03-04T23:30:00-05:00") == date(2021, 3, 4)
    assert parse_fhir_date("1950") == date(1950, 1, 1)
    assert parse_fhir_date("not a date") is None and parse_fhir_date(None) is None


@pytest.mark.parametrize("value", ["2021", "2021-03", "2021-03-04", "2021-03-04T05:06:07Z",
                                   "2021-03-04T05:06:07.123+02:00", "2016-12-31T23:59:60Z",
                                   "2021-03-04T05:06:07"])
def test_is_fhir_datetime_accepts(value):
    assert is_fhir_datetime(value)


@pytest.mark.parametrize("value", ["2021-3-4", "2021-02-30", "2021-13", "21-03-04", "2021-03-04T05:06Z",
                                   "2021-03-04 05:06:07", "2021-03-04T05:06:07.Z", "2021-03-04T05:06:07+0200",
                                   "yesterday"])
def test_is_fhir_datetime_refuses(value):
    assert not is_fhir_datetime(value)


def test_is_fhir_date_refuses_times():
    assert is_fhir_date("2020-02-29") and not is_fhir_date("2021-02-29")
    assert not is_fhir_date("2021-03-04T05:06:07Z") and not is_fhir_date("2021-00")


@pytest.mark.parametrize("value", ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123+14:00", "2016-12-31T23:59:60Z",
                                   "2024-02-29T00:00:00-05:30"])
def test_is_fhir_instant_accepts(value):
    assert is_fhir_instant(value)


@pytest.mark.parametrize("value", ["2026-01-02", "2026-01-02T03:04Z", "2026-01-02T03:04:05",
                                   "2026-02-31T00:00:00Z",          # the pattern alone let this day through
                                   "2025-02-29T00:00:00Z", "2026-01-02T03:04:05+14:30", " 2026-01-02T03:04:05Z",
                                   None, 20260102])
def test_is_fhir_instant_refuses(value):
    assert not is_fhir_instant(value)


def test_one_parser_for_caller_timestamps():
    assert parse_timestamp("2026-01-02") == datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert parse_timestamp("2026-01-02T03:04:05+01:00") == datetime(2026, 1, 2, 2, 4, 5, tzinfo=timezone.utc)
    assert parse_timestamp("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    for bad in ("2026-02-30", "yesterday", "2026-01-02 03:04:05", "20260102", "", None):
        assert parse_timestamp(bad) is None


def test_since_and_feedback_timestamps_use_the_one_parser():
    from fhir_assist.cds.errors import CdsError
    from fhir_assist.cds.feedback import parse_feedback
    from fhir_assist.store import MemoryStore

    store = MemoryStore()
    with pytest.raises(ValueError, match="since"):
        store.list_feedback(since="2026-02-30")
    assert store.list_feedback(since="2026-01-02") == []
    with pytest.raises(CdsError):
        parse_feedback({"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-02-30T00:00:00Z"}]})
