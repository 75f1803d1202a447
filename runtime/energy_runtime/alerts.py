"""High-usage and unusual-usage alerts: at least once, and in the normal case exactly once,
per device, kind and period.

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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from energy_runtime import contract
from energy_runtime.aggregate import MS_PER_DAY, IntervalSummary, is_weekend
from energy_runtime.contract import iso_utc

HIGH_USAGE = "high_usage"
UNUSUAL_USAGE = "unusual_usage"
MAD_TO_SIGMA = 1.4826  # the median absolute deviation of a normal distribution, in sigmas
# The smallest spread a slot is given: a device whose use at that time never varied still
# needs a real excess (UNUSUAL_MIN_EXCESS_WH says how much) to be unusual.
MIN_SPREAD_WH = 10.0
MARKER_TTL_S = 7 * 86_400
# How urgent each kind is (the `severity` message attribute subscribers filter on).
SEVERITY = {HIGH_USAGE: "warning", UNUSUAL_USAGE: "notice"}
PENDING = "pending"  # claimed, SNS has not accepted it yet
SENT = "sent"


@dataclass(frozen=True, slots=True)
class Marker:
    """An alert as its marker item records it: enough to publish it again, as it was."""

    device_id: str
    kind: str
    period_ms: int
    subject: str
    message: str


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
    earlier = (start_ms - k * MS_PER_DAY for k in range(1, days + 1))
    return [start for start in earlier if is_weekend(start) == weekend]


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
    summary: IntervalSummary
    detail: str
    expected_wh: float | None = None  # the device's normal for this interval
    robust_z: float | None = None

    def period_ms(self, period_minutes: int) -> int:
        return period_start_ms(self.summary.start_ms, period_minutes)

    def message(self, place: Mapping[str, str]) -> str:
        """The alert as people and filters read it; fields are only ever added (an older
        reader ignores the new ones)."""
        body: dict[str, Any] = {
            "device_id": self.device_id,
            "kind": self.kind,
            "severity": SEVERITY[self.kind],
            "interval_start": iso_utc(self.summary.start_ms),
            "energy_wh": self.summary.energy_wh,
            "detail": self.detail,
            "text": f"{self._where(place)}: {self.kind.replace('_', ' ')} from "
            f"{iso_utc(self.summary.start_ms)}, {self.detail}",
            **{name: place[name] for name in contract.PLACE_ATTRIBUTES if place.get(name)},
        }
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
        return f"Energy {self.kind.replace('_', ' ')}: {self._where(place)}"[:100]

    def marker(self, period_minutes: int, place: Mapping[str, str] | None = None) -> Marker:
        """`place`: the meter's thing attributes (`contract.PLACE_ATTRIBUTES`)."""
        place = place or {}
        return Marker(
            self.device_id,
            self.kind,
            self.period_ms(period_minutes),
            self.subject(place),
            self.message(place),
        )


def high_usage(device_id: str, summary: IntervalSummary, threshold_wh: float) -> Alert | None:
    used = summary.own_energy_wh
    if used <= threshold_wh:
        return None
    return Alert(device_id, HIGH_USAGE, summary, f"{used} Wh > {threshold_wh} Wh")


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
    if baseline is None or baseline.days < warmup_days:
        return None
    excess, z = used - baseline.median_wh, baseline.robust_z(used)
    if excess < min_excess_wh or z < min_z:
        return None
    detail = (
        f"{used / 1000:.2f} kWh against a usual {baseline.median_wh / 1000:.2f} kWh "
        f"for this time of day (robust z {z:.1f}, {baseline.days} earlier days)"
    )
    return Alert(device_id, UNUSUAL_USAGE, summary, detail, baseline.median_wh, z)


def message_attributes(marker: Marker) -> dict[str, dict[str, str]]:
    """What a subscription's filter policy can select on: building, apartment, kind,
    severity, device (a marker recorded before buildings were known has kind and device)."""
    try:
        body = json.loads(marker.message)
    except json.JSONDecodeError:
        body = {}
    values = {**(body if isinstance(body, dict) else {}), "kind": marker.kind,
              "device_id": marker.device_id}  # fmt: skip
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
