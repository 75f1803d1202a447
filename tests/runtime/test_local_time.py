"""Local time: days, times of day, weekdays and nights by the building's clock, across the
daylight-saving changes (the real zone database; no mock)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from energy_runtime import alerts, contract, processor
from energy_runtime.aggregate import IntervalSummary
from energy_runtime.local_time import UTC, Calendar, UnknownZone, zone
from energy_runtime.settings import load_processor_settings
from hypothesis import given
from hypothesis import strategies as st

BERLIN = Calendar("Europe/Berlin")
HOUR = 3_600_000
QUARTER = 900_000


def ms(text: str) -> int:
    """An ISO time with its offset, as epoch milliseconds."""
    return round(dt.datetime.fromisoformat(text).timestamp() * 1000)


def test_days_follow_the_wall_clock_across_the_autumn_change() -> None:
    # Clocks go back from 03:00 to 02:00 on 2026-10-25: that day has 25 hours.
    evening = ms("2026-10-25T19:00:00+01:00")
    assert BERLIN.shift_days(evening, -1) == ms("2026-10-24T19:00:00+02:00")
    assert evening - BERLIN.shift_days(evening, -1) == 25 * HOUR
    assert BERLIN.day_start_ms(evening) == ms("2026-10-25T00:00:00+02:00")
    night = list(alerts.night_starts(BERLIN.day_start_ms(evening), QUARTER, BERLIN))
    assert len(night) == 20  # 01:00 to 05:00 local is five hours that night
    assert night[0] == ms("2026-10-25T01:00:00+02:00")
    assert BERLIN.days_between(ms("2026-10-24T01:00:00+02:00"), evening) == 1


def test_days_follow_the_wall_clock_across_the_spring_change() -> None:
    # Clocks go forward from 02:00 to 03:00 on 2026-03-29: that day has 23 hours.
    noon = ms("2026-03-29T12:00:00+02:00")
    assert noon - BERLIN.shift_days(noon, -1) == 23 * HOUR
    night = list(alerts.night_starts(BERLIN.day_start_ms(noon), QUARTER, BERLIN))
    assert len(night) == 12  # three hours


def test_weekdays_are_the_building_s_own() -> None:
    late_friday_utc = ms("2026-11-20T23:30:00+00:00")  # Saturday 00:30 in Berlin
    assert not UTC.is_weekend(late_friday_utc)
    assert BERLIN.is_weekend(late_friday_utc)
    assert Calendar("America/New_York").is_weekend(ms("2026-11-23T03:00:00+00:00"))  # Sun 22:00


@given(
    st.integers(
        min_value=ms("2026-01-01T00:00:00+00:00") // QUARTER,
        max_value=ms("2027-12-31T00:00:00+00:00") // QUARTER,
    ),
    st.integers(min_value=1, max_value=60),
    st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
    ),
)
def test_earlier_days_are_the_same_wall_clock_time_and_interval_aligned(
    quarter: int, days: int, name: str
) -> None:
    calendar = Calendar(name)
    start = quarter * QUARTER
    earlier = calendar.shift_days(start, -days)
    assert earlier % QUARTER == 0  # every zone's offsets are whole quarter hours
    here, there = (dt.datetime.fromtimestamp(t / 1000, zone(name)) for t in (start, earlier))
    assert (here.date() - there.date()).days == days
    if calendar.shift_days(earlier, days) == start:  # not a time the clocks skipped or repeated
        assert (here.hour, here.minute) == (there.hour, there.minute)


@pytest.mark.parametrize("name", ["", "Mars/Olympus_Mons", "/etc/localtime", "../UTC", " UTC"])
def test_a_name_the_database_does_not_hold_is_refused(name: str) -> None:
    with pytest.raises(UnknownZone):
        zone(name)


def _summary(start_ms: int, own_wh: float) -> IntervalSummary:
    return IntervalSummary(start_ms=start_ms, energy_mwh=round(own_wh * 1000), reading_count=90,
                           power_min_dw=0, power_max_dw=1, power_sum_dw=0,
                           first_ts_ms=start_ms, last_ts_ms=start_ms + 890_000)  # fmt: skip


RULES = alerts.UnusualRules(min_z=4, min_excess_wh=300, warmup_days=3, baseline_days=14,
                            sustain_intervals=1, interval_minutes=15)  # fmt: skip


def test_a_habit_at_the_same_local_time_stays_usual_across_the_change() -> None:
    """Dinner at 19:00 local every day: after the clocks go back it is an hour later in
    UTC. By the building's clock it is the usual; by UTC's it would be unusual."""
    stored: dict[int, float] = {}
    for back in range(1, 15):
        dinner = BERLIN.shift_days(ms("2026-10-26T19:00:00+01:00"), -back)
        stored[dinner] = 900.0
        stored[dinner + HOUR] = 40.0
        stored[dinner - HOUR] = 40.0
    today = ms("2026-10-26T19:00:00+01:00")  # a Monday, the day after the change

    def judged(calendar: Calendar) -> alerts.Alert | None:
        return alerts.sustained_unusual_usage(
            "m",
            _summary(today, 900.0),
            lambda keys: {k: stored[k] for k in keys if k in stored},
            replace(RULES, calendar=calendar),
        )

    assert judged(BERLIN) is None
    assert judged(UTC) is not None


def test_a_meter_s_zone_is_its_thing_s_or_the_environment_s() -> None:
    config = load_processor_settings(contract.default_environment(
        contract.PROCESSOR, TABLE_NAME="energy", ARCHIVE_BUCKET="archive",
        ALERT_TOPIC_ARN="arn:aws:sns:eu-west-1:123456789012:alerts",
        METER_GROUP_NAME="meters", TIME_ZONE="Europe/Lisbon",
    ))  # fmt: skip
    assert processor._calendar("m", {"time_zone": "Asia/Tokyo"}, config) == Calendar("Asia/Tokyo")
    assert processor._calendar("m", {}, config) == Calendar("Europe/Lisbon")
    # A bad attribute is judged by the default, never refused.
    assert processor._calendar("m", {"time_zone": "Nowhere/Else"}, config) == Calendar(
        "Europe/Lisbon"
    )


@given(
    st.integers(
        min_value=ms("2026-01-01T00:00:00+00:00") // QUARTER,
        max_value=ms("2027-12-31T00:00:00+00:00") // QUARTER,
    ),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
)
def test_a_day_holds_its_instant_and_ends_where_the_next_begins(quarter: int, name: str) -> None:
    calendar, instant = Calendar(name), quarter * QUARTER
    day = calendar.day(instant)
    assert day.start_ms <= instant < day.end_ms
    assert calendar.day(day.end_ms).start_ms == day.end_ms
    assert day.name == dt.datetime.fromtimestamp(instant / 1000, zone(name)).date().isoformat()
    assert (day.end_ms - day.start_ms) // HOUR in (23, 24, 25) or name == "Australia/Lord_Howe"


def test_the_autumn_change_day_has_25_hours() -> None:
    day = BERLIN.day(ms("2026-10-25T12:00:00+01:00"))
    assert (day.name, day.start_ms, day.end_ms) == (
        "2026-10-25", ms("2026-10-25T00:00:00+02:00"), ms("2026-10-26T00:00:00+01:00"))  # fmt: skip
    assert day.end_ms - day.start_ms == 25 * HOUR
