"""A building's local time (an IANA time zone): its days, times of day and weekdays.

The detectors compare an interval with the same time of day on earlier days, tell weekdays
from weekend days and find the night a base load is measured in; people live by the
clock on their wall, so all three follow the building's zone. Across a daylight-saving
change the same time of day is 23 or 25 hours from the day before, and a night is an hour
shorter or longer: every step here goes by the local calendar and wall clock, never by
24-hour multiples. Times are UTC epoch milliseconds in and out, as everywhere else.

The zone database comes from the system or, where it has none (a slim Lambda image), from
the `tzdata` package (the processor's SDK for pandas layer carries it: pandas needs it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_ZONE = "UTC"


class UnknownZone(ValueError):
    """A name that is not an IANA time zone the database knows."""


@cache
def zone(name: str) -> ZoneInfo:
    """The zone called `name`; raises UnknownZone for a name the database does not hold."""
    if not name or name != name.strip() or len(name) > 64:
        raise UnknownZone(f"not an IANA time zone name: {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:  # ValueError: a path, not a key
        raise UnknownZone(f"not an IANA time zone name: {name!r}") from error


def is_zone(name: str) -> bool:
    try:
        zone(name)
    except UnknownZone:
        return False
    return True


@dataclass(frozen=True, slots=True, order=True)
class Day:
    """One local calendar day: its date and the instants it begins and ends (23, 24 or 25
    hours apart)."""

    start_ms: int
    end_ms: int  # the next day's start
    name: str  # YYYY-MM-DD, local


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local days and times of one zone."""

    zone_name: str = UTC_ZONE

    def _local(self, ts_ms: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts_ms / 1000, zone(self.zone_name))

    def _epoch_ms(self, wall: dt.datetime) -> int:
        """The instant of a local wall-clock time (in a gap, as if the clock had not moved
        yet; twice in an overlap, the first)."""
        return round(wall.replace(tzinfo=zone(self.zone_name)).timestamp() * 1000)

    def day_start_ms(self, ts_ms: int) -> int:
        """The start (local midnight) of the local day `ts_ms` falls in."""
        local = self._local(ts_ms)
        return self._epoch_ms(dt.datetime(local.year, local.month, local.day))

    def day(self, ts_ms: int) -> Day:
        """The local day `ts_ms` falls in."""
        local = self._local(ts_ms).date()
        following = dt.datetime.combine(local + dt.timedelta(days=1), dt.time())
        return Day(self.day_start_ms(ts_ms), self._epoch_ms(following), local.isoformat())

    def shift_days(self, ts_ms: int, days: int) -> int:
        """The same local time of day `days` days later (earlier if negative)."""
        wall = self._local(ts_ms).replace(tzinfo=None) + dt.timedelta(days=days)
        return self._epoch_ms(wall)

    def at_hour_ms(self, day_ms: int, hour: int) -> int:
        """`hour`:00 local on the local day that begins at (or contains) `day_ms`."""
        local = self._local(day_ms)
        return self._epoch_ms(dt.datetime(local.year, local.month, local.day, hour))

    def days_between(self, first_ms: int, last_ms: int) -> int:
        """Local calendar days from the day of `first_ms` to the day of `last_ms`."""
        return (self._local(last_ms).date() - self._local(first_ms).date()).days

    def is_weekend(self, ts_ms: int) -> bool:
        return self._local(ts_ms).weekday() >= 5


UTC = Calendar()
