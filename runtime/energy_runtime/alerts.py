"""Alerts (high usage, unusual usage, a baseload change, a silent or stuck meter) and their
resolutions: at least once, and in the normal case exactly once, per device, kind and
period.

Unusual usage is judged against the device's own normal for the time of day: the energy
of the same interval on earlier days of the same kind (weekdays or weekend days), as
stored, summarized by their median and median absolute deviation (robust statistics: a
day with a party or an outage in the history moves neither). Earlier days are final by
the time an interval is judged, so the judgement is a function of the data, whatever the
order or the faults that delivered it.

An alert is an outbox entry: a marker item (`ALERT#<kind>#<period>`) that records the
alert's content and a state, `pending` until SNS has accepted it, then `sent`. The
processor claims the marker (a conditional put) *before* writing the aggregates that
raise the alert, because once those are written a retried message merges nothing new and
would never raise the alert again: the pending marker is what survives. It then publishes
and marks the marker sent (conditionally). A publish that fails after the SDK's retries
fails the device's messages; when SQS redelivers them the processor finds the pending
marker and publishes it. A replay after a successful publish finds `sent` and publishes
nothing. An alert can be published twice only if two invocations hold a pending marker at
once, or if marking it sent fails after SNS accepted it.

A resolution is a message of the same kind with `status` "resolved", kept by a marker of
its own beside the alert's, the same way. A silent meter's clears when it reports again
(the sweep's mark on its hot item says it was silent); every other kind's alert is kept
open on the hot item (`state.OpenAlert`) until a later interval is back to normal
(`resolution`): under the threshold again, usual for its time of day again, a night whose
minimum is back near the usual, a register that counts and power readings that move.
While a judged kind's alert is open the device raises no other of that kind: one alert
and one resolution an episode, however it flickers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from energy_runtime import contract
from energy_runtime.aggregate import IntervalSummary, contributions
from energy_runtime.codec import Point
from energy_runtime.contract import iso_utc
from energy_runtime.local_time import UTC, Calendar
from energy_runtime.state import OpenAlert

HIGH_USAGE = "high_usage"
UNUSUAL_USAGE = "unusual_usage"
METER_SILENT = "meter_silent"
METER_STUCK = "meter_stuck"
BASELOAD_CHANGE = "baseload_change"
MAD_TO_SIGMA = 1.4826  # the median absolute deviation of a normal distribution, in sigmas
IQR_TO_SIGMA = 1.349  # its interquartile range, in sigmas
# The smallest spread a slot is given: a device whose use at that time never varied still
# needs a real excess (UNUSUAL_MIN_EXCESS_WH says how much) to be unusual.
MIN_SPREAD_WH = 10.0
MARKER_TTL_S = 7 * 86_400
# Power readings at one value over at least this many readings of an interval are frozen (a
# real apartment's load always moves by a tenth of a watt), and stuck when the register
# disagrees with them by at least this fraction of the larger (and the minimum energy).
MIN_FROZEN_READINGS = 10
POWER_MISMATCH = 0.25
# Or when the load the register counted over runs of readings this long disagrees with them
# by this much and this fraction of the larger (more than a register that counts whole Wh
# or power readings rounded to 0.1 kW can be off by).
POWER_MOVE_W = 50.0
POWER_MOVE_FRACTION = 0.1
RATE_SPAN_MS = 5 * 60_000
MAX_POWER_W = int(contract.MAX_POWER_W.default or 0)  # the readings' bound (settings)
# A night's level: the intervals within this factor of its lowest (give or take a fridge).
FLAT_NIGHT = 1.2
# How urgent each kind is (the `severity` message attribute subscribers filter on).
SEVERITY = {HIGH_USAGE: "warning", UNUSUAL_USAGE: "notice", METER_SILENT: "warning",
            METER_STUCK: "warning", BASELOAD_CHANGE: "notice"}  # fmt: skip
# The night whose lowest interval is a device's base load (local time): after the late
# evening, before the early risers.
NIGHT_START_H, NIGHT_END_H = 1, 5
PENDING = "pending"  # claimed, SNS has not accepted it yet
SENT = "sent"
# What a message is (the `status` message attribute): an alert, or the all-clear after one.
ALERTING = "alert"
RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Marker:
    """An alert as its marker item records it: enough to publish it again, as it was."""

    device_id: str
    kind: str
    period_ms: int
    subject: str
    message: str
    status: str = ALERTING


@dataclass(frozen=True, slots=True)
class Baseline:
    """The device's normal energy for one interval of the day, from earlier days."""

    median_wh: float
    spread_wh: float  # the larger robust sigma (MAD's, IQR's), at least MIN_SPREAD_WH
    days: int  # how many earlier days it is made of

    @classmethod
    def of(cls, energies_wh: list[float]) -> Baseline | None:
        """The median and a robust spread. The MAD alone sees only the majority: a device
        that charges a car on six nights of fourteen has a MAD of its eight quiet nights,
        and would page on every charge; the interquartile range sees both habits."""
        if not energies_wh:
            return None
        median = _median(energies_wh)
        mad = _median([abs(e - median) for e in energies_wh])
        iqr = _quantile(energies_wh, 0.75) - _quantile(energies_wh, 0.25)
        spread = max(mad * MAD_TO_SIGMA, iqr / IQR_TO_SIGMA, MIN_SPREAD_WH)
        return cls(median, spread, len(energies_wh))

    def robust_z(self, energy_wh: float) -> float:
        return (energy_wh - self.median_wh) / self.spread_wh


def same_interval_earlier_days(start_ms: int, days: int, calendar: Calendar = UTC) -> list[int]:
    """The same interval (local time of day) on each of the `days` days before, of the same
    kind (weekdays for a weekday, weekend days for a weekend day, locally)."""
    weekend = calendar.is_weekend(start_ms)
    return [
        start
        for start in earlier_days(start_ms, days, calendar)
        if calendar.is_weekend(start) == weekend
    ]


def period_start_ms(start_ms: int, period_minutes: int) -> int:
    """The alert period an interval falls in: at most one alert per device and kind."""
    width = period_minutes * 60_000
    return start_ms - start_ms % width


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _quantile(values: list[float], q: float) -> float:
    """The `q` quantile, interpolated linearly between the two nearest values."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Alert:
    device_id: str
    kind: str
    start_ms: int  # the interval's start; for a silent meter, its last reading's time
    detail: str
    energy_wh: float | None = None  # the interval's energy (usage kinds)
    # The device's normal for the interval; for a stuck meter, what its power readings say.
    expected_wh: float | None = None
    robust_z: float | None = None
    status: str = ALERTING

    def period_ms(self, period_minutes: int) -> int:
        return period_start_ms(self.start_ms, period_minutes)

    def message(self, place: Mapping[str, str]) -> str:
        """The alert as people and filters read it; fields are only ever added (an older
        reader ignores the new ones)."""
        what = self.kind.replace("_", " ")
        when = iso_utc(self.start_ms)
        body: dict[str, Any] = {
            "device_id": self.device_id,
            "kind": self.kind,
            "severity": SEVERITY[self.kind],
            "status": self.status,
            "interval_start": when,
            "detail": self.detail,
            "text": f"{self._where(place)}: {what} from {when}, {self.detail}"
            if self.status == ALERTING
            else f"{self._where(place)}: {what} since {when} resolved, {self.detail}",
            **{name: place[name] for name in contract.PLACE_ATTRIBUTES if place.get(name)},
        }
        if self.energy_wh is not None:
            body["energy_wh"] = self.energy_wh
        if self.expected_wh is not None:
            body["expected_wh"] = round(self.expected_wh, 1)
        if self.robust_z is not None:
            body["robust_z"] = round(self.robust_z, 1)
        return json.dumps(body, sort_keys=True)

    def _where(self, place: Mapping[str, str]) -> str:
        if place.get("building") and place.get("apartment"):
            return (
                f"building {place['building']}, apartment {place['apartment']} ({self.device_id})"
            )
        return f"meter {self.device_id}"

    def subject(self, place: Mapping[str, str]) -> str:
        resolved = "Resolved: " if self.status == RESOLVED else ""
        return f"{resolved}Energy {self.kind.replace('_', ' ')}: {self._where(place)}"[:100]

    def marker(self, period_minutes: int, place: Mapping[str, str] | None = None) -> Marker:
        """`place`: the meter's thing attributes (`contract.PLACE_ATTRIBUTES`)."""
        place = place or {}
        return Marker(
            self.device_id,
            self.kind,
            self.period_ms(period_minutes),
            self.subject(place),
            self.message(place),
            self.status,
        )


def high_usage(device_id: str, summary: IntervalSummary, threshold_wh: float) -> Alert | None:
    used = summary.own_energy_wh
    if used <= threshold_wh:
        return None
    detail = f"{used} Wh > {threshold_wh} Wh"
    return Alert(device_id, HIGH_USAGE, summary.start_ms, detail, summary.energy_wh)


def unusual_usage(
    device_id: str,
    summary: IntervalSummary,
    baseline: Baseline | None,
    *,
    min_z: float,
    min_excess_wh: float,
    warmup_days: int,
) -> Alert | None:
    """Far above the device's normal for this time of day: a robust z-score of at least
    `min_z` and at least `min_excess_wh` above the median, once `warmup_days` earlier days
    make the baseline."""
    used = summary.own_energy_wh
    z = unusual_z(used, baseline, min_z=min_z, min_excess_wh=min_excess_wh,
                  warmup_days=warmup_days)  # fmt: skip
    if baseline is None or z is None:
        return None
    detail = (
        f"{used / 1000:.2f} kWh against a usual {baseline.median_wh / 1000:.2f} kWh "
        f"for this time of day (robust z {z:.1f}, {baseline.days} earlier days)"
    )
    return Alert(
        device_id, UNUSUAL_USAGE, summary.start_ms, detail, summary.energy_wh,
        baseline.median_wh, z,
    )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class UnusualRules:
    """What makes usage unusual (the processor's settings)."""

    min_z: float
    min_excess_wh: float
    warmup_days: int
    baseline_days: int
    sustain_intervals: int
    interval_minutes: int
    # How many intervals either side of the same time an earlier day's use still counts
    # as usual for it (0: the same interval only).
    tolerance_intervals: int = 0
    calendar: Calendar = UTC  # the building's local time


EnergiesAt = Callable[[list[int]], Mapping[int, float]]  # stored energy (Wh) by interval start


def earlier_days(start_ms: int, days: int, calendar: Calendar = UTC) -> list[int]:
    """The same interval (local time of day) on each of the `days` days before, of any
    kind."""
    return [calendar.shift_days(start_ms, -k) for k in range(1, days + 1)]


def _baseline_at(
    start_ms: int,
    energies: Mapping[int, float],
    rules: UnusualRules,
    *,
    tolerance: int = 0,
) -> Baseline | None:
    """The baseline of an interval from earlier days: per day, its energy at the same time
    or, with a `tolerance`, the most it used within that many intervals either side (a
    nightly charge that starts at a different hour each night is usual at each of them).
    The same kind of day's once `warmup_days` of them are stored; until then (a new
    meter's first weekends) every earlier day's: a sustained run (a night, hours) is as
    unusual against weekdays as against weekends."""
    width = rules.interval_minutes * 60_000
    shifts = range(-tolerance, tolerance + 1)

    def on(day_start: int) -> float | None:
        near = [energies[s] for k in shifts if (s := day_start + k * width) in energies]
        return max(near) if near else None

    days = rules.baseline_days
    calendar = rules.calendar
    same = [
        e for d in same_interval_earlier_days(start_ms, days, calendar) if (e := on(d)) is not None
    ]
    if len(same) >= rules.warmup_days:
        return Baseline.of(same)
    return Baseline.of(
        [e for d in earlier_days(start_ms, days, calendar) if (e := on(d)) is not None]
    )


def _same_time_baseline(
    start_ms: int, energies_at: EnergiesAt, rules: UnusualRules
) -> Baseline | None:
    """The interval's baseline from the same time on earlier days (one read)."""
    keys = earlier_days(start_ms, rules.baseline_days, rules.calendar)
    return _baseline_at(start_ms, energies_at(keys), rules)


def _history_keys(first_ms: int, last_ms: int, rules: UnusualRules) -> list[int]:
    """The earlier days' intervals that judging the intervals `first_ms`..`last_ms` reads."""
    width = rules.interval_minutes * 60_000
    span = range(first_ms - rules.tolerance_intervals * width,
                 last_ms + (rules.tolerance_intervals + 1) * width, width)  # fmt: skip
    return [s for start in span for s in earlier_days(start, rules.baseline_days, rules.calendar)]


def _judged_z(
    start_ms: int, energy_wh: float, history: Mapping[int, float], rules: UnusualRules
) -> tuple[float, float] | None:
    """(usual energy, robust z) if the interval is unusual both against the same time on
    earlier days and against what they used near that time; None if it is not."""
    exact = _baseline_at(start_ms, history, rules)
    z = _unusual_z(energy_wh, exact, rules)
    if exact is None or z is None:
        return None
    if rules.tolerance_intervals:
        near = _baseline_at(start_ms, history, rules, tolerance=rules.tolerance_intervals)
        z_near = _unusual_z(energy_wh, near, rules)
        if z_near is None:
            return None
        z = min(z, z_near)
    return exact.median_wh, z


def sustained_unusual_usage(
    device_id: str, summary: IntervalSummary, energies_at: EnergiesAt, rules: UnusualRules
) -> Alert | None:
    """Unusual usage once it has lasted `sustain_intervals` intervals: this interval and
    the ones before it each unusual for their time of day (against the same time on
    earlier days and against what they used near it), and the one before the run not (so a
    run alerts once, when it reaches the length, however long it goes on). A function of
    the stored data, read lazily: the same interval on earlier days first (the cheapest
    test that can say no), then the run's own energies if it is unusual against them, then
    the earlier days around the run if every one has the minimum excess."""
    start = summary.start_ms
    first = unusual_usage(
        device_id, summary,
        _same_time_baseline(start, energies_at, rules),
        min_z=rules.min_z, min_excess_wh=rules.min_excess_wh, warmup_days=rules.warmup_days,
    )  # fmt: skip
    if first is None:
        return None
    width = rules.interval_minutes * 60_000
    length = rules.sustain_intervals
    before = start - length * width
    stored = dict(energies_at([start - k * width for k in range(1, length + 1)]))
    run = [start - k * width for k in range(1, length)]
    if any(stored.get(s, 0.0) < rules.min_excess_wh for s in run):
        return None
    history = energies_at(_history_keys(before, start, rules))
    judged = [_judged_z(start, summary.own_energy_wh, history, rules)]
    judged += [_judged_z(s, stored[s], history, rules) for s in run]  # stored: lead included
    if any(j is None for j in judged):
        return None
    prior = stored.get(before)
    if (
        prior is not None
        and prior >= rules.min_excess_wh
        and _judged_z(before, prior, history, rules)
    ):
        return None  # the run reached its length earlier and alerted then
    medians = [j[0] for j in judged if j]
    z = min(j[1] for j in judged if j)
    if not run:
        return replace(first, robust_z=z)
    used = summary.own_energy_wh + sum(stored[s] for s in run)
    expected = sum(medians)
    hours = length * rules.interval_minutes / 60
    detail = (
        f"{used / 1000:.2f} kWh in {hours:g} h against a usual {expected / 1000:.2f} kWh for "
        f"that time of day (every interval at least robust z {z:.1f})"
    )
    return Alert(device_id, UNUSUAL_USAGE, run[-1], detail, round(used, 3), expected, z)


def _unusual_z(energy_wh: float, baseline: Baseline | None, rules: UnusualRules) -> float | None:
    return unusual_z(energy_wh, baseline, min_z=rules.min_z,
                     min_excess_wh=rules.min_excess_wh, warmup_days=rules.warmup_days)  # fmt: skip


def unusual_z(
    energy_wh: float,
    baseline: Baseline | None,
    *,
    min_z: float,
    min_excess_wh: float,
    warmup_days: int,
) -> float | None:
    """The robust z of `energy_wh` if it is unusual against `baseline` (warmed up, at
    least the minimum excess above the median and the minimum z), else None: the one
    judgement of a single interval."""
    if baseline is None or baseline.days < warmup_days:
        return None
    z = baseline.robust_z(energy_wh)
    if energy_wh - baseline.median_wh < min_excess_wh or z < min_z:
        return None
    return z


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseloadRules:
    """What makes a step in base load (the processor's settings)."""

    min_step_w: float
    nights: int  # raised nights in a row before it alerts
    min_z: float
    warmup_days: int
    baseline_days: int
    interval_minutes: int
    calendar: Calendar = UTC  # the building's local time


def night_end_start_ms(
    start_ms: int, interval_minutes: int, calendar: Calendar = UTC
) -> int | None:
    """The night the interval starting at `start_ms` ends (its local day's start), if it is
    that night's last interval."""
    day = calendar.day_start_ms(start_ms)
    last = calendar.at_hour_ms(day, NIGHT_END_H) - interval_minutes * 60_000
    return day if start_ms == last else None


def night_starts(day_ms: int, width_ms: int, calendar: Calendar = UTC) -> range:
    """The intervals of the local day's night (an hour more or less on a night the clocks
    change)."""
    return range(
        calendar.at_hour_ms(day_ms, NIGHT_START_H), calendar.at_hour_ms(day_ms, NIGHT_END_H),
        width_ms,
    )  # fmt: skip


def _night_minimum(
    day_ms: int, energies: Mapping[int, float], width_ms: int, calendar: Calendar
) -> float | None:
    """The night's lowest stored interval energy; None if a quarter of it is not stored."""
    starts = night_starts(day_ms, width_ms, calendar)
    stored = [energies[s] for s in starts if s in energies]
    return min(stored) if len(stored) * 4 >= len(starts) * 3 else None


def _night_minima(
    night: int,
    first: int,
    count: int,
    summary: IntervalSummary,
    energies_at: EnergiesAt,
    rules: BaseloadRules | UnusualRules,
) -> list[float | None]:
    """The minima of `count` nights from the `first`-th before `night` back (0: `night`
    itself, whose last interval is `summary`, as planned)."""
    calendar, width = rules.calendar, rules.interval_minutes * 60_000
    days = [calendar.shift_days(night, -k) for k in range(first, first + count)]
    keys = [s for d in days for s in night_starts(d, width, calendar)]
    energies = dict(energies_at(keys))
    if first == 0:
        energies[summary.start_ms] = summary.energy_wh
    return [_night_minimum(d, energies, width, calendar) for d in days]


def baseload_change(
    device_id: str, summary: IntervalSummary, energies_at: EnergiesAt, rules: BaseloadRules
) -> Alert | None:
    """The device's overnight minimum (its base load: standby, a fridge's off phase) stepped
    up and stayed up: judged when a night's last interval closes. The last `nights`
    nights' minima are each at least `min_step_w` above the night before them, and at
    least that and `min_z` robust sigmas above the median of the `baseline_days` nights
    before that, which itself was not (so a step alerts once, on the night it has lasted
    `nights` nights), and within the step of each other (one new level). A heater left on
    for one night raises one night only. Read lazily:
    the run's nights and the one before (one read a night), the history only if they
    stepped."""
    calendar = rules.calendar
    night = night_end_start_ms(summary.start_ms, rules.interval_minutes, calendar)
    if night is None:
        return None
    step_wh = rules.min_step_w * rules.interval_minutes / 60

    def minima(first: int, count: int) -> list[float | None]:
        return _night_minima(night, first, count, summary, energies_at, rules)

    *run, before = minima(0, rules.nights + 1)
    if before is None or any(m is None or m - before < step_wh for m in run):
        return None
    levels = [m for m in run if m is not None]
    if max(levels) - min(levels) >= step_wh:
        return None  # not one new level: a heater's night, then a car's
    history = [m for m in minima(rules.nights + 1, rules.baseline_days) if m is not None]
    baseline = Baseline.of(history)
    if baseline is None or baseline.days < rules.warmup_days:
        return None

    def raised(minimum: float) -> bool:
        return minimum - baseline.median_wh >= step_wh and baseline.robust_z(minimum) >= rules.min_z

    low = min(m for m in run if m is not None)
    if not raised(low) or raised(before):
        return None
    hours = rules.interval_minutes / 60
    detail = (
        f"the overnight minimum has been {low / hours / 1000:.2f} kW or more for "
        f"{rules.nights} nights against a usual {baseline.median_wh / hours / 1000:.2f} kW "
        "(something left on, or an appliance failing)"
    )
    first = calendar.at_hour_ms(calendar.shift_days(night, 1 - rules.nights), NIGHT_START_H)
    return Alert(device_id, BASELOAD_CHANGE, first, detail, round(low, 3), baseline.median_wh,
                 baseline.robust_z(low))  # fmt: skip


def night_left_on(
    device_id: str, summary: IntervalSummary, energies_at: EnergiesAt, rules: UnusualRules
) -> Alert | None:
    """Unusual usage over a whole night, judged when the night's last interval closes: a
    load on all night. The night's lowest interval is at least the minimum excess and
    `min_z` robust sigmas above the median of the earlier nights' lowest; the night held
    that level for an hour at least (a load left on, not the tail of a charge); and no
    earlier night held it for an hour (not the car this meter charges some nights from
    dusk to dawn). A heater left on shows here even at a meter whose nights are busy: a car
    that charges at a different hour each night makes every hour usual, but does not draw
    a heater's power. One read of the nights, and only when the night's last interval has
    the excess in it."""
    calendar = rules.calendar
    night = night_end_start_ms(summary.start_ms, rules.interval_minutes, calendar)
    if night is None or summary.own_energy_wh < rules.min_excess_wh:
        return None
    width = rules.interval_minutes * 60_000
    nights = [calendar.shift_days(night, -k) for k in range(rules.baseline_days + 1)]
    energies = dict(energies_at([s for d in nights for s in night_starts(d, width, calendar)]))
    energies[summary.start_ms] = summary.energy_wh
    low = _night_minimum(night, energies, width, calendar)
    if low is None or low < rules.min_excess_wh:
        return None

    def held(day: int) -> bool:  # the night used about `low` for an hour or more
        near = [s for s in night_starts(day, width, calendar)
                if low / FLAT_NIGHT <= energies.get(s, -1.0) <= low * FLAT_NIGHT]  # fmt: skip
        return len(near) * rules.interval_minutes >= 60

    if not held(night) or any(held(day) for day in nights[1:]):
        return None
    minima = [_night_minimum(day, energies, width, calendar) for day in nights[1:]]
    baseline = Baseline.of([m for m in minima if m is not None])
    z = _unusual_z(low, baseline, rules)
    if baseline is None or z is None:
        return None
    hours = rules.interval_minutes / 60
    first = calendar.at_hour_ms(night, NIGHT_START_H)
    detail = (
        f"something stayed on all night: at least {low / hours / 1000:.2f} kW from "
        f"{NIGHT_START_H:02d}:00 to {NIGHT_END_H:02d}:00 against a usual overnight minimum "
        f"of {baseline.median_wh / hours / 1000:.2f} kW (robust z {z:.1f}, "
        f"{baseline.days} earlier nights)"
    )
    return Alert(device_id, UNUSUAL_USAGE, first, detail, round(low, 3), baseline.median_wh, z)


def powered_energy_wh(summary: IntervalSummary) -> float:
    """The energy the interval's own power readings say it used between its first and last
    reading (their mean power over that span)."""
    if summary.reading_count < 2:
        return 0.0
    return summary.power_mean_w * (summary.last_ts_ms - summary.first_ts_ms) / 3_600_000


def stuck_register(summary: IntervalSummary, min_wh: float) -> bool:
    """Whether the register did not advance at all over the interval's readings while
    their power says at least `min_wh` was used: a counter that froze."""
    return summary.own_energy_wh == 0 and powered_energy_wh(summary) >= min_wh


def meter_stuck(
    device_id: str,
    summary: IntervalSummary,
    readings_at: Callable[[int], Sequence[Point] | None],
    min_wh: float,
    max_power_w: int = MAX_POWER_W,
) -> Alert | None:
    """The first whole interval of a frozen register: stuck over its readings, and not
    frozen since the interval before began. It is the first when the register rose into it
    (its lead) or within the interval before (`readings_at` a time: the stored readings of
    the interval that holds it, None if it is not stored; asked only for a stuck
    interval). Later intervals of the same freeze raise nothing, so a freeze alerts once
    however long it lasts. Or an interval whose power readings froze (`stuck_power`, its
    own readings asked for only when they did): the alert it opens keeps that to one a
    freeze."""
    if not stuck_register(summary, min_wh):
        if stuck_power(summary, min_wh, lambda: readings_at(summary.start_ms), max_power_w):
            return _stuck_power_alert(device_id, summary)
        return None
    if summary.lead_mwh == 0:
        before = readings_at(summary.start_ms - 1)
        if before is not None and len({p.energy_mwh for p in before}) <= 1:
            return None  # frozen since the interval before began: alerted then
    powered = powered_energy_wh(summary)
    detail = (
        f"the register has not advanced from {iso_utc(summary.first_ts_ms)} to "
        f"{iso_utc(summary.last_ts_ms)} while the meter's power readings say {powered:.0f} Wh "
        "were used"
    )
    return Alert(device_id, METER_STUCK, summary.start_ms, detail, summary.energy_wh,
                 round(powered, 1))  # fmt: skip


def frozen_power(summary: IntervalSummary) -> bool:
    """Whether every power reading of the interval has one value."""
    return (
        summary.reading_count >= MIN_FROZEN_READINGS
        and summary.power_min_dw == summary.power_max_dw
    )


def register_rates_w(
    points: Sequence[Point], max_power_w: int = MAX_POWER_W, span_ms: int = RATE_SPAN_MS
) -> list[float]:
    """The load the register counted (W) over each run of readings that ends at a reading
    and is the shortest to span at least `span_ms`: long enough that a register counting
    whole watt-hours still says it within a few watts, sliding so that no part of the
    interval goes unjudged. A run across a step that the aggregates count otherwise than
    as the register's rise (`aggregate.contributions`: the register going back, a swapped
    meter's, the step after a spurious value, a jump beyond what `max_power_w` could use)
    says nothing."""
    counted = contributions([], list(points), max_power_w)  # what the aggregates count
    uncounted = [0]
    for (before, point), energy in zip(pairwise(points), counted[1:], strict=True):
        uncounted.append(uncounted[-1] + (energy != point.energy_mwh - before.energy_mwh))
    rates: list[float] = []
    first = 0
    for last, point in enumerate(points):
        while first + 1 < last and point.ts_ms - points[first + 1].ts_ms >= span_ms:
            first += 1
        elapsed = point.ts_ms - points[first].ts_ms
        if elapsed >= span_ms and uncounted[last] == uncounted[first]:
            rates.append((point.energy_mwh - points[first].energy_mwh) * 3600 / elapsed)
    return rates


def _none() -> None:
    return None


def stuck_power(
    summary: IntervalSummary,
    min_wh: float,
    readings: Callable[[], Sequence[Point] | None] = _none,
    max_power_w: int = MAX_POWER_W,
) -> bool:
    """Whether the power readings stayed at one value while the register counted something
    else: a power sensor that froze (or one that reports a constant). Something else over
    the interval (by the minimum energy and a quarter of the larger), or, with its
    `readings` (asked for only when that did not decide it), over a part of it: a fridge
    that started while they held still shows in the register by at least POWER_MOVE_W
    (and a tenth of the larger) within minutes."""
    if not frozen_power(summary):
        return False
    counted, powered = summary.own_energy_wh, powered_energy_wh(summary)
    if abs(counted - powered) >= max(min_wh, POWER_MISMATCH * max(counted, powered)):
        return True
    frozen_w = summary.power_min_dw / 10
    return any(
        abs(rate - frozen_w) >= max(POWER_MOVE_W, POWER_MOVE_FRACTION * max(rate, frozen_w))
        for rate in register_rates_w(readings() or (), max_power_w)
    )


def _stuck_power_alert(device_id: str, summary: IntervalSummary) -> Alert:
    powered = powered_energy_wh(summary)
    detail = (
        f"the power readings have stayed at {summary.power_min_dw / 10:.1f} W from "
        f"{iso_utc(summary.first_ts_ms)} to {iso_utc(summary.last_ts_ms)} while the register "
        f"counted {summary.own_energy_wh:.0f} Wh (they say {powered:.0f} Wh)"
    )
    return Alert(device_id, METER_STUCK, summary.start_ms, detail, summary.energy_wh,
                 round(powered, 1))  # fmt: skip


def meter_silent(device_id: str, last_ts_ms: int, fleet_ms: int) -> Alert:
    """No reading since `last_ts_ms` while the fleet's readings have reached `fleet_ms`."""
    minutes = (fleet_ms - last_ts_ms) // 60_000
    detail = f"no reading for {minutes} minutes while the other meters report"
    return Alert(device_id, METER_SILENT, last_ts_ms, detail)


def silence_resolved(device_id: str, silent_since_ms: int, back_ms: int) -> Alert:
    """The meter silent since `silent_since_ms` has a reading again, of `back_ms`."""
    detail = f"readings again from {iso_utc(back_ms)}"
    return Alert(device_id, METER_SILENT, silent_since_ms, detail, status=RESOLVED)


# Kinds whose alert the processor keeps open until an interval clears it (a silent meter's
# is the sweep's), and of those the ones judged against the device's normal: while one is
# open, no other of its kind is raised (high usage is a rule, crossed each period or not).
CLEARING_KINDS = (HIGH_USAGE, UNUSUAL_USAGE, BASELOAD_CHANGE, METER_STUCK)
JUDGED_KINDS = (UNUSUAL_USAGE, BASELOAD_CHANGE, METER_STUCK)


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorRules:
    """What raises an alert and when an open one is back to normal (the processor's
    settings)."""

    high_usage_threshold_wh: float
    unusual: UnusualRules
    baseload: BaseloadRules
    stuck_min_wh: float
    max_power_w: int = MAX_POWER_W  # the readings' bound: a register step beyond it is not counted


def opened(alert: Alert, raised_ms: int) -> OpenAlert:
    """What the hot item keeps of an alert until it clears."""
    # A base load's resolution compares nights with what was usual before the step.
    expected = alert.expected_wh if alert.kind == BASELOAD_CHANGE else None
    return OpenAlert(alert.kind, alert.start_ms, raised_ms, expected)


def resolution(
    device_id: str,
    open_alert: OpenAlert,
    summary: IntervalSummary,
    energies_at: EnergiesAt,
    rules: DetectorRules,
) -> Alert | None:
    """The all-clear of an open alert if `summary`, a closed interval after the one that
    raised it, is back to normal for the alert's kind; None if it is not (yet). Reads only
    for a kind judged against earlier days, and only when the interval itself could still
    be abnormal."""
    if summary.start_ms <= open_alert.raised_ms:
        return None
    kind, used = open_alert.kind, summary.own_energy_wh
    when = iso_utc(summary.start_ms)
    detail: str | None = None
    if kind == HIGH_USAGE:
        threshold = rules.high_usage_threshold_wh
        if used <= threshold:
            detail = f"{used} Wh in the interval from {when}, at most {threshold} Wh"
    elif kind == UNUSUAL_USAGE:
        if not _unusual_now(summary, energies_at, rules.unusual):
            detail = f"{used / 1000:.2f} kWh from {when} is usual for that time of day again"
    elif kind == BASELOAD_CHANGE:
        detail = _baseload_cleared(open_alert, summary, energies_at, rules.baseload)
    # Power readings that still hold one value may only agree with the register by chance
    # (a load that happens to be where they froze): not cleared until they move.
    elif kind == METER_STUCK and used > 0 and not frozen_power(summary):
        detail = f"the register counts and the power readings move again from {when}"
    if detail is None:
        return None
    return Alert(device_id, kind, open_alert.start_ms, detail, summary.energy_wh,
                 status=RESOLVED)  # fmt: skip


def follow_open(
    device_id: str,
    open_alerts: tuple[OpenAlert, ...],
    raised: list[tuple[int, Alert]],
    closed: list[IntervalSummary],
    energies_at: EnergiesAt,
    rules: DetectorRules,
) -> tuple[list[Alert], tuple[OpenAlert, ...]]:
    """(the alerts to send, the alerts open after them), in time order: the `raised` alerts
    (each with the start of the interval that raised it) that no open alert of a judged
    kind holds back, and the resolutions of the open alerts that the `closed` intervals
    (newly closed, in any order) clear."""
    still = {a.kind: a for a in open_alerts}
    send: list[Alert] = []
    pending = sorted(raised, key=lambda r: r[0])

    def open_until(end_ms: int) -> None:
        while pending and pending[0][0] < end_ms:
            raised_ms, alert = pending.pop(0)
            if alert.kind in still and alert.kind in JUDGED_KINDS:
                continue  # the episode alerted already
            send.append(alert)
            # A rule's episode is named by its latest alert (the period the all-clear
            # follows, whichever order late readings raised them in); a judged kind's by
            # its one alert.
            held = still.get(alert.kind)
            if held is None or (alert.kind not in JUDGED_KINDS and alert.start_ms > held.start_ms):
                still[alert.kind] = opened(alert, max(raised_ms, held.raised_ms if held else 0))

    for summary in sorted(closed, key=lambda s: s.start_ms):
        open_until(summary.start_ms)
        for kind in [k for k in CLEARING_KINDS if k in still]:
            cleared = resolution(device_id, still[kind], summary, energies_at, rules)
            if cleared:
                send.append(cleared)
                del still[kind]
        open_until(summary.start_ms + 1)
    open_until(2**63)
    return send, tuple(sorted(still.values()))


def closed_interval_alerts(
    device_id: str,
    summary: IntervalSummary,
    energies_at: EnergiesAt,
    readings_at: Callable[[int], Sequence[Point] | None],
    rules: DetectorRules,
) -> list[Alert]:
    """What a closed interval raises against the device's normal (the rule, high usage, is
    the processor's per period): a base load stepped up, a stuck meter, and, only for an
    interval with the minimum excess in it (the rest cannot be unusual, and read nothing),
    sustained unusual usage or a night something stayed on."""
    found = [
        baseload_change(device_id, summary, energies_at, rules.baseload),
        meter_stuck(device_id, summary, readings_at, rules.stuck_min_wh, rules.max_power_w),
    ]
    if summary.own_energy_wh >= rules.unusual.min_excess_wh:
        found += [
            sustained_unusual_usage(device_id, summary, energies_at, rules.unusual),
            night_left_on(device_id, summary, energies_at, rules.unusual),
        ]
    return [alert for alert in found if alert]


def _unusual_now(summary: IntervalSummary, energies_at: EnergiesAt, rules: UnusualRules) -> bool:
    """Whether the interval is still unusual against the same time of day on earlier days.
    Stricter than raising it (which also asks what they used near that time): a heater's
    last hours sit within the tolerance of the breakfast peak, and an all-clear while it
    is still on would be a false one."""
    start, used = summary.start_ms, summary.own_energy_wh
    if used < rules.min_excess_wh:
        return False
    return _unusual_z(used, _same_time_baseline(start, energies_at, rules), rules) is not None


def _baseload_cleared(
    open_alert: OpenAlert, summary: IntervalSummary, energies_at: EnergiesAt, rules: BaseloadRules
) -> str | None:
    """At a night's end: its minimum is back within the step of the usual before the step,
    or the raised level has lasted `baseline_days` nights and is the device's usual now
    (a further step is judged against it)."""
    calendar = rules.calendar
    night = night_end_start_ms(summary.start_ms, rules.interval_minutes, calendar)
    if night is None or open_alert.expected_wh is None:
        return None
    (minimum,) = _night_minima(night, 0, 1, summary, energies_at, rules)
    hours = rules.interval_minutes / 60
    step_wh = rules.min_step_w * hours
    nights = calendar.days_between(open_alert.start_ms, night) + 1
    if minimum is not None and minimum - open_alert.expected_wh < step_wh:
        return (
            f"the overnight minimum is {minimum / hours / 1000:.2f} kW again, within "
            f"{rules.min_step_w:g} W of the usual {open_alert.expected_wh / hours / 1000:.2f} kW"
        )
    if nights >= rules.baseline_days:
        return (
            f"the raised base load has lasted {nights} nights: it is this meter's usual now, "
            "and a further step is judged against it"
        )
    return None


def message_attributes(marker: Marker) -> dict[str, dict[str, str]]:
    """What a subscription's filter policy can select on: building, apartment, kind,
    severity, status, device (a marker recorded before buildings were known has kind, status
    and device)."""
    try:
        body = json.loads(marker.message)
    except json.JSONDecodeError:
        body = {}
    values = {**(body if isinstance(body, dict) else {}), "kind": marker.kind,
              "device_id": marker.device_id, "status": marker.status}  # fmt: skip
    return {
        name: {"DataType": "String", "StringValue": str(values[name])}
        for name in contract.ALERT_MESSAGE_ATTRIBUTES
        if values.get(name)
    }


def publish(sns: Any, topic_arn: str, marker: Marker) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject=marker.subject,
        Message=marker.message,
        MessageAttributes=message_attributes(marker),
    )
