"""Alerts (high usage, unusual usage, a silent meter) and their resolutions: at least once,
and in the normal case exactly once, per device, kind and period.

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

A resolution (the meter reports again after a silence) is a message of the same kind with
`status` "resolved", kept by a marker of its own beside the alert's, the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from energy_runtime import contract
from energy_runtime.aggregate import MS_PER_DAY, IntervalSummary, is_weekend
from energy_runtime.contract import iso_utc

HIGH_USAGE = "high_usage"
UNUSUAL_USAGE = "unusual_usage"
METER_SILENT = "meter_silent"
MAD_TO_SIGMA = 1.4826  # the median absolute deviation of a normal distribution, in sigmas
# The smallest spread a slot is given: a device whose use at that time never varied still
# needs a real excess (UNUSUAL_MIN_EXCESS_WH says how much) to be unusual.
MIN_SPREAD_WH = 10.0
MARKER_TTL_S = 7 * 86_400
# How urgent each kind is (the `severity` message attribute subscribers filter on).
SEVERITY = {HIGH_USAGE: "warning", UNUSUAL_USAGE: "notice", METER_SILENT: "warning"}
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
    spread_wh: float  # MAD x MAD_TO_SIGMA, at least MIN_SPREAD_WH
    days: int  # how many earlier days it is made of

    @classmethod
    def of(cls, energies_wh: list[float]) -> Baseline | None:
        if not energies_wh:
            return None
        median = _median(energies_wh)
        mad = _median([abs(e - median) for e in energies_wh])
        return cls(median, max(mad * MAD_TO_SIGMA, MIN_SPREAD_WH), len(energies_wh))

    def robust_z(self, energy_wh: float) -> float:
        return (energy_wh - self.median_wh) / self.spread_wh


def same_interval_earlier_days(start_ms: int, days: int) -> list[int]:
    """The same interval on each of the `days` days before, of the same kind (weekdays
    for a weekday, weekend days for a weekend day). Days are UTC days for now."""
    weekend = is_weekend(start_ms)
    return [start for start in earlier_days(start_ms, days) if is_weekend(start) == weekend]


def period_start_ms(start_ms: int, period_minutes: int) -> int:
    """The alert period an interval falls in: at most one alert per device and kind."""
    width = period_minutes * 60_000
    return start_ms - start_ms % width


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, slots=True)
class Alert:
    device_id: str
    kind: str
    start_ms: int  # the interval's start; for a silent meter, its last reading's time
    detail: str
    energy_wh: float | None = None  # the interval's energy (usage kinds)
    expected_wh: float | None = None  # the device's normal for this interval
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
            body["robust_z"] = round(self.robust_z or 0.0, 1)
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


EnergiesAt = Callable[[list[int]], Mapping[int, float]]  # stored energy (Wh) by interval start


def earlier_days(start_ms: int, days: int) -> list[int]:
    """The same interval on each of the `days` days before, of any kind."""
    return [start_ms - k * MS_PER_DAY for k in range(1, days + 1)]


def _baseline_at(
    start_ms: int, energies: Mapping[int, float], days: int, warmup_days: int
) -> Baseline | None:
    """The same kind of day's baseline once `warmup_days` of them are stored; until then
    (a new meter's first weekends) every earlier day's: a sustained run (a night, hours)
    is as unusual against weekdays as against weekends."""
    same = [energies[s] for s in same_interval_earlier_days(start_ms, days) if s in energies]
    if len(same) >= warmup_days:
        return Baseline.of(same)
    return Baseline.of([energies[s] for s in earlier_days(start_ms, days) if s in energies])


def sustained_unusual_usage(
    device_id: str, summary: IntervalSummary, energies_at: EnergiesAt, rules: UnusualRules
) -> Alert | None:
    """Unusual usage once it has lasted `sustain_intervals` intervals: this interval and
    the ones before it each unusual for their time of day, and the one before the run
    not (so a run alerts once, when it reaches the length, however long it goes on). A
    function of the stored data, read lazily: the run's own energies only if this
    interval is unusual, their baselines only if every one has the minimum excess."""
    first = unusual_usage(
        device_id, summary,
        _baseline_at(summary.start_ms, energies_at(
            earlier_days(summary.start_ms, rules.baseline_days)),
            rules.baseline_days, rules.warmup_days),
        min_z=rules.min_z, min_excess_wh=rules.min_excess_wh, warmup_days=rules.warmup_days,
    )  # fmt: skip
    if first is None:
        return None
    width = rules.interval_minutes * 60_000
    run = [summary.start_ms - k * width for k in range(1, rules.sustain_intervals)]
    stored = energies_at(run) if run else {}
    if any(stored.get(start, 0.0) < rules.min_excess_wh for start in run):
        return None
    days = rules.baseline_days
    history = energies_at([s for start in run for s in earlier_days(start, days)])
    medians, zs = [first.expected_wh or 0.0], [first.robust_z or 0.0]
    for start in run:
        baseline = _baseline_at(start, history, days, rules.warmup_days)
        z = _unusual_z(stored[start], baseline, rules)  # stored energy: lead included
        if baseline is None or z is None:
            return None
        medians.append(baseline.median_wh)
        zs.append(z)
    if _before_run_unusual(summary.start_ms, rules.sustain_intervals, energies_at, rules):
        return None  # the run reached its length earlier and alerted then
    if not run:
        return first
    used = summary.own_energy_wh + sum(stored[start] for start in run)
    expected = sum(medians)
    hours = rules.sustain_intervals * rules.interval_minutes / 60
    detail = (
        f"{used / 1000:.2f} kWh in {hours:g} h against a usual {expected / 1000:.2f} kWh for "
        f"that time of day (every interval at least robust z {min(zs):.1f})"
    )
    return Alert(device_id, UNUSUAL_USAGE, run[-1], detail, round(used, 3), expected, min(zs))


def _before_run_unusual(
    start_ms: int, length: int, energies_at: EnergiesAt, rules: UnusualRules
) -> bool:
    """Whether the interval just before a run of `length` ending at `start_ms` is unusual."""
    before = start_ms - length * rules.interval_minutes * 60_000
    stored = energies_at([before]).get(before)
    if stored is None or stored < rules.min_excess_wh:
        return False
    earlier = earlier_days(before, rules.baseline_days)
    baseline = _baseline_at(before, energies_at(earlier), rules.baseline_days, rules.warmup_days)
    return _unusual_z(stored, baseline, rules) is not None


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


def meter_silent(device_id: str, last_ts_ms: int, fleet_ms: int) -> Alert:
    """No reading since `last_ts_ms` while the fleet's readings have reached `fleet_ms`."""
    minutes = (fleet_ms - last_ts_ms) // 60_000
    detail = f"no reading for {minutes} minutes while the other meters report"
    return Alert(device_id, METER_SILENT, last_ts_ms, detail)


def silence_resolved(device_id: str, silent_since_ms: int, back_ms: int) -> Alert:
    """The meter silent since `silent_since_ms` has a reading again, of `back_ms`."""
    detail = f"readings again from {iso_utc(back_ms)}"
    return Alert(device_id, METER_SILENT, silent_since_ms, detail, status=RESOLVED)


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
