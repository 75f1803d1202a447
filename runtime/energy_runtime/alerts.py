"""High-usage and anomaly alerts: at least once, and in the normal case exactly once, per
device, kind and period.

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
from dataclasses import dataclass
from typing import Any

from energy_runtime.aggregate import IntervalSummary
from energy_runtime.contract import iso_utc

HIGH_USAGE = "high_usage"
ANOMALY = "anomaly"
BASELINE_INTERVALS = 16  # the device's own recent intervals (4 h at 15 min)
BASELINE_MIN_INTERVALS = 8
MARKER_TTL_S = 7 * 86_400
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
class Alert:
    device_id: str
    kind: str
    summary: IntervalSummary
    detail: str

    def period_ms(self, period_minutes: int) -> int:
        width = period_minutes * 60_000
        return self.summary.start_ms - self.summary.start_ms % width

    def message(self) -> str:
        return json.dumps(
            {
                "device_id": self.device_id,
                "kind": self.kind,
                "interval_start": iso_utc(self.summary.start_ms),
                "energy_wh": self.summary.energy_wh,
                "detail": self.detail,
            },
            sort_keys=True,
        )

    def subject(self) -> str:
        return f"Energy {self.kind.replace('_', ' ')}: {self.device_id}"[:100]

    def marker(self, period_minutes: int) -> Marker:
        return Marker(
            self.device_id,
            self.kind,
            self.period_ms(period_minutes),
            self.subject(),
            self.message(),
        )


def high_usage(device_id: str, summary: IntervalSummary, threshold_wh: float) -> Alert | None:
    used = summary.own_energy_wh
    if used <= threshold_wh:
        return None
    return Alert(device_id, HIGH_USAGE, summary, f"{used} Wh > {threshold_wh} Wh")


def anomaly(
    device_id: str,
    summary: IntervalSummary,
    baseline_wh: list[float],
    factor: float,
    min_wh: float,
) -> Alert | None:
    used = summary.own_energy_wh
    if len(baseline_wh) < BASELINE_MIN_INTERVALS or used < min_wh:
        return None
    mean = sum(baseline_wh) / len(baseline_wh)
    if used <= factor * mean:
        return None
    detail = f"{used} Wh > {factor} x recent mean {mean:.1f} Wh"
    return Alert(device_id, ANOMALY, summary, detail)


def publish(sns: Any, topic_arn: str, marker: Marker) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject=marker.subject,
        Message=marker.message,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": marker.kind},
            "device_id": {"DataType": "String", "StringValue": marker.device_id},
        },
    )
