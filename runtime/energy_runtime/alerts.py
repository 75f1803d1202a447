"""High-usage and anomaly alerts, at most one per device, kind and period.

A conditional put of a marker item claims the (device, kind, period) before publishing,
so retries and replays cannot alert twice. If publishing then fails the alert is lost,
not repeated: at-most-once is the promise (the aggregates themselves are unaffected).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from energy_runtime.aggregate import IntervalSummary, iso_utc

HIGH_USAGE = "high_usage"
ANOMALY = "anomaly"
BASELINE_INTERVALS = 16  # the device's own recent intervals (4 h at 15 min)
BASELINE_MIN_INTERVALS = 8
ANOMALY_MIN_WH = 50.0  # below this nothing is unusual enough to page anyone
MARKER_TTL_S = 7 * 86_400


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


def high_usage(device_id: str, summary: IntervalSummary, threshold_wh: float) -> Alert | None:
    if summary.energy_wh <= threshold_wh:
        return None
    return Alert(device_id, HIGH_USAGE, summary, f"{summary.energy_wh} Wh > {threshold_wh} Wh")


def anomaly(
    device_id: str, summary: IntervalSummary, baseline_wh: list[float], factor: float
) -> Alert | None:
    if len(baseline_wh) < BASELINE_MIN_INTERVALS or summary.energy_wh < ANOMALY_MIN_WH:
        return None
    mean = sum(baseline_wh) / len(baseline_wh)
    if summary.energy_wh <= factor * mean:
        return None
    detail = f"{summary.energy_wh} Wh > {factor} x recent mean {mean:.1f} Wh"
    return Alert(device_id, ANOMALY, summary, detail)


def publish(sns: Any, topic_arn: str, alert: Alert) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject=f"Energy {alert.kind.replace('_', ' ')}: {alert.device_id}"[:100],
        Message=alert.message(),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": alert.kind},
            "device_id": {"DataType": "String", "StringValue": alert.device_id},
        },
    )
