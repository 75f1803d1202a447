"""The detectors alone, replayed over a bench scenario in memory: for tuning and diagnosis.

    python -m tools.replay_detectors --apartments 30 --days 14 --seed 2 [--json]

`make bench-alerts` judges the alerts the real pipeline sends (the batching handler and
the processor on moto, tens of minutes a seed at 30 apartments). This replays the same
scenario's readings (tools.bench_alerts.scenario_of, the same rates) through the runtime's
own interval and detector functions (energy_runtime.aggregate and energy_runtime.alerts,
with the dev environment's settings) with every interval stored in a dict: no AWS, no
batches, a couple of minutes. Each interval is judged once, when it closes, on all its
readings, and an alert is taken as sent 5 minutes (one batch window) after that. What it
cannot see: a silent meter (the sweep's) and anything that late readings change.

It prints the judgement (as the bench's) and, for each missed incident and each false
alert, what the detector saw: the interval energies against the same time on earlier
days for usage, the night minima for a base load, the register against the power
readings for a stuck meter. The bench stays the measure; this says where to look.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from energy_runtime import aggregate, alerts, contract
from energy_runtime.codec import Point
from energy_runtime.local_time import Calendar
from energy_runtime.processor import detector_rules
from energy_runtime.settings import ProcessorSettings, load_processor_settings
from energy_runtime.state import OpenAlert

from devkit.settings import dev_config
from devkit.simulator import incidents as labelled
from devkit.simulator.meters import Simulation
from energy_monitoring.constructs.function_environment import function_environment
from tools.bench_alerts import RATES, scenario_of

SENT_AFTER_S = 300  # a closed interval's alert goes out with the next batch window


def processor_settings() -> ProcessorSettings:
    """The dev environment's processor settings (the resource names do not matter here)."""
    names = {contract.ARCHIVE_BUCKET: "archive", contract.TABLE_NAME: "energy",
             contract.ALERT_TOPIC_ARN: "arn:aws:sns:eu-west-1:000000000000:alerts",
             contract.METER_GROUP_NAME: "meters"}  # fmt: skip
    return load_processor_settings(function_environment(contract.PROCESSOR, dev_config(), names))


@dataclass
class Device:
    """One meter's readings by interval, as the table would hold them once all arrived."""

    points: list[Point] = field(default_factory=list)

    def intervals(
        self, minutes: int, max_power_w: int
    ) -> Iterator[tuple[aggregate.IntervalSummary, list[Point]]]:
        groups = aggregate.split_by_interval(sorted(self.points), minutes)
        for _, group, summary in aggregate.summarize_each(groups, [], max_power_w):
            yield summary, group


def _points(payload: bytes) -> list[Point]:
    body = json.loads(payload)
    readings = body.get("readings", [body])
    return [Point(int(r["ts"]) * 1000, round(r["energy_wh"] * 1000), round(r["power_w"] * 10))
            for r in readings]  # fmt: skip


@dataclass
class Replayed:
    """What a replay sent, as the bench's tap would have received it."""

    raised: list[labelled.RaisedAlert] = field(default_factory=list)
    resolutions: list[labelled.RaisedAlert] = field(default_factory=list)


def replay_device(
    device_id: str, device: Device, config: ProcessorSettings, calendar: Calendar, out: Replayed
) -> dict[int, float]:
    """Judges each closed interval of the meter as the processor does (its rules, its
    detectors, its open alerts); returns the stored energies by interval start."""
    rules = detector_rules(config, calendar)
    width = config.interval_minutes * 60_000
    stored: dict[int, float] = {}
    by_start: dict[int, list[Point]] = {}
    open_alerts: tuple[OpenAlert, ...] = ()

    def energies_at(starts: list[int]) -> dict[int, float]:
        return {s: stored[s] for s in starts if s in stored}

    def readings_at(ts_ms: int) -> list[Point] | None:
        return by_start.get(ts_ms - ts_ms % width)

    summaries = list(device.intervals(config.interval_minutes, config.rules.max_power_w))
    for summary, group in summaries[:-1]:  # the last one never closes
        stored[summary.start_ms] = summary.energy_wh
        by_start[summary.start_ms] = group
        found = alerts.closed_interval_alerts(device_id, summary, energies_at, readings_at, rules)
        rule = alerts.high_usage(device_id, summary, config.high_usage_threshold_wh)
        pending = [(summary.start_ms, a) for a in [*found, rule] if a]
        sent, open_alerts = alerts.follow_open(
            device_id, open_alerts, pending, [summary], energies_at, rules
        )
        at_s = (summary.start_ms + width) / 1000 + SENT_AFTER_S
        for alert in sent:
            item = labelled.RaisedAlert(device_id, alert.kind, alert.start_ms // 1000, at_s)
            (out.resolutions if alert.status == alerts.RESOLVED else out.raised).append(item)
    return stored


def replay(
    seed: int, apartments: int, days: int, interval_s: int, rates: labelled.IncidentRates = RATES
) -> dict[str, Any]:
    """The bench's judgement of one seed's scenario, from the detectors alone, and what
    they saw of each miss and false alert (`diagnosis`)."""
    config = processor_settings()
    scenario = scenario_of(seed, apartments, days, interval_s, rates)
    simulation = Simulation(scenario)
    devices: dict[str, Device] = {}
    for message in simulation.messages():
        devices.setdefault(message.device_id, Device()).points.extend(_points(message.text))
    places = scenario.places()
    out = Replayed()
    energies = {
        device_id: replay_device(device_id, device, config, _calendar(places, device_id), out)
        for device_id, device in devices.items()
    }
    judged = labelled.judge(simulation.incidents, out.raised, apartment_days=apartments * days,
                            resolutions=out.resolutions)  # fmt: skip
    return {"seed": seed, **judged,
            "diagnosis": diagnose(simulation, out.raised, energies, config)}  # fmt: skip


def _calendar(places: dict[str, dict[str, str]], device_id: str) -> Calendar:
    return Calendar(places[device_id][contract.TIME_ZONE_ATTRIBUTE])


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")


def diagnose(
    simulation: Simulation,
    raised: list[labelled.RaisedAlert],
    energies: dict[str, dict[int, float]],
    config: ProcessorSettings,
) -> list[dict[str, Any]]:
    """What the detector saw for each missed incident and each false alert."""
    width = config.interval_minutes * 60_000
    incidents = [i for i in simulation.incidents if i.expects and i.expects != alerts.METER_SILENT]
    out: list[dict[str, Any]] = []
    places = simulation.scenario.places()
    for incident in incidents:
        if any(labelled.matching(a, [incident]) for a in raised):
            continue
        stored = energies[incident.device_id]
        first = incident.start_s * 1000 - incident.start_s * 1000 % width
        span = [s for s in range(first, incident.end_s * 1000, width) if s in stored]
        calendar = _calendar(places, incident.device_id)
        rows = []
        for start in span[:48]:
            days = alerts.earlier_days(start, config.baseline_days, calendar)
            known = [e for d in days if (e := stored.get(d)) is not None]
            baseline = alerts.Baseline.of(known)
            rows.append({
                "start": _utc(start / 1000), "wh": round(stored[start], 1),
                "median": round(baseline.median_wh, 1) if baseline else None,
                "z": round(baseline.robust_z(stored[start]), 1) if baseline else None,
                "max_earlier": round(max(known), 1) if known else None,
            })  # fmt: skip
        out.append({"missed": incident.public() | {"start": _utc(incident.start_s),
                                                   "power_w": incident.power_w},
                    "intervals": rows})  # fmt: skip
    for alert in raised:
        if alert.kind in labelled.RULE_KINDS or labelled.matching(alert, simulation.incidents):
            continue
        near = [i.public() for i in simulation.incidents if i.device_id == alert.device_id]
        false = {"device_id": alert.device_id, "kind": alert.kind, "start": _utc(alert.start_s)}
        out.append({"false": false, "incidents_of_device": near})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--apartments", type=int, default=30)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--reading-interval", type=int, default=60)
    parser.add_argument("--json", action="store_true", help="the whole report as JSON")
    args = parser.parse_args(argv)
    result = replay(args.seed, args.apartments, args.days, args.reading_interval)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for kind, figures in result["kinds"].items():
        print(f"{kind:16} {figures['detected']}/{figures['incidents']} detected, "
              f"{figures['true_alerts']}/{figures['alerts']} alerts true, "
              f"median {figures['median_minutes_to_alert']} min")  # fmt: skip
    print(f"false alerts: {result['false_alerts']} "
          f"({result['false_alerts_per_100_apartment_days']}/100 apartment-days)")  # fmt: skip
    for entry in result["diagnosis"]:
        print(json.dumps(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
