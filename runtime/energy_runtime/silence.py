"""Silent meters: a scheduled sweep that alerts on a meter whose readings stopped while the
rest of the fleet's go on (docs/data-model.md says why a sweep and not lifecycle events).

A silent meter sends nothing, so nothing in the data path can notice it: a clock must.
An EventBridge schedule invokes the processor with `contract.SILENCE_SWEEP_EVENT`; the sweep
lists the meters (the members of the environment's thing group, kept an hour), reads every
meter's newest reading time from its hot item, and compares it with the fleet's: the 90th
percentile of those times, so that a few meters with fast clocks do not make the others
look late, and a pipeline that has stopped (no meter's time advances) makes no meter
silent. A meter whose newest reading is `SILENT_AFTER_MINUTES` older than the
fleet's is silent.

Alerting is at least once, the way the processor's alerts are (alerts.py): the sweep marks
the hot item (`silent_since_ms`, conditional on the newest reading being the one it saw),
then claims the alert's marker, publishes it and marks it sent; a sweep that finds the
mark claims the marker again (a no-op once it was sent), so a crash between the steps only
delays the alert by a sweep. The mark raises the item's version: a processor that read the
item before merges again, sees the mark and, with readings newer than it, sends the
resolution and clears the mark (state.py, processor.py).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from energy_runtime import alerts, aws, contract, places
from energy_runtime.settings import ProcessorSettings
from energy_runtime.store import Store
from energy_runtime.telemetry import Telemetry

FLEET_QUANTILE = 0.9
ROSTER_KEEP_S = 3600.0  # meters are listed at most hourly: a new one cannot be silent sooner
_roster_lock = threading.Lock()
_roster: tuple[float, str, list[str]] | None = None


def fleet_time_ms(newest: Iterable[int]) -> int | None:
    """The fleet's time: the FLEET_QUANTILE quantile (nearest rank) of the meters' newest
    reading times; None for no meter."""
    ordered = sorted(newest)
    if not ordered:
        return None
    return ordered[max(1, math.ceil(len(ordered) * FLEET_QUANTILE)) - 1]


def silent_meters(newest: Mapping[str, int], silent_after_ms: int) -> tuple[int | None, list[str]]:
    """(the fleet's time, the meters whose newest reading is `silent_after_ms` older)."""
    fleet = fleet_time_ms(newest.values())
    if fleet is None:
        return None, []
    return fleet, sorted(d for d, ts in newest.items() if fleet - ts >= silent_after_ms)


def meters(iot: Any, group: str) -> list[str]:
    """The meters: the things of the environment's group, listed at most hourly."""
    global _roster
    with _roster_lock:
        kept = _roster
    if kept is not None and kept[1] == group and time.monotonic() - kept[0] < ROSTER_KEEP_S:
        return kept[2]
    found: list[str] = []
    paginator = iot.get_paginator("list_things_in_thing_group")
    for page in paginator.paginate(thingGroupName=group):
        found.extend(page.get("things", []))
    roster = sorted(set(found))
    if roster:  # an environment deployed before its meters are registered: ask again
        with _roster_lock:
            _roster = (time.monotonic(), group, roster)
    return roster


def forget() -> None:
    """Drop the kept list of meters (tests, and a new environment in one process)."""
    global _roster
    with _roster_lock:
        _roster = None


@dataclass(slots=True)
class SweepReport:
    meters: int = 0
    reporting: int = 0  # meters with a newest reading
    fleet_time_ms: int | None = None
    silent: list[str] = field(default_factory=list)
    alerts_sent: int = 0
    failed: list[str] = field(default_factory=list)  # to try again at the next sweep


def sweep(
    *, config: ProcessorSettings, dynamodb: Any, sns: Any, iot: Any, telemetry: Telemetry
) -> SweepReport:
    roster = meters(iot, config.meter_group_name)
    store = Store(dynamodb, config.table_name, ttl_days=config.interval_ttl_days)
    newest = store.newest_readings(roster)
    fleet, silent = silent_meters(
        {d: ts for d, (ts, _since) in newest.items()}, config.silent_after_minutes * 60_000
    )
    report = SweepReport(len(roster), len(newest), fleet, silent)
    for device in silent:
        assert fleet is not None
        last_ts, marked = newest[device]
        try:
            if marked != last_ts and not store.mark_silent(device, last_ts):
                continue  # a newer reading came in since the read: not silent
            alert = alerts.meter_silent(device, last_ts, fleet)
            place = places.place_of(iot, device)
            marker = store.claim_alert(alert.marker(config.alert_period_minutes, place))
            if marker is None:
                continue  # alerted before
            alerts.publish(sns, config.alert_topic_arn, marker)
            report.alerts_sent += 1
            store.mark_alert_sent(marker)
        except aws.transient_errors():
            telemetry.logger.exception("silent meter alert failed", extra={"device_id": device})
            report.failed.append(device)
    telemetry.count(contract.ALERTS_SENT, report.alerts_sent)
    telemetry.count(contract.METERS_SILENT, len(report.silent))
    telemetry.logger.info(
        "silence sweep",
        extra={
            "meters": report.meters,
            "reporting": report.reporting,
            "silent": len(report.silent),
            "alerts_sent": report.alerts_sent,
            "failed": len(report.failed),
        },
    )
    return report
