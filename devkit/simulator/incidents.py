"""Labelled incidents the simulator injects into apartments, and the alert each should raise.

An incident has a device, a kind and a time span; `EXPECTED_ALERT` says which alert kind
must follow it (None: it must raise nothing, like a week away that leaves only the fridge
running). They are drawn per apartment and day from the scenario's seed, never two at once
in one apartment, and only after `after_days` (the detector needs earlier days to learn
what is normal), so a run's ground truth is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from devkit.simulator.profiles import DAY_S

HEATER_NIGHT = "heater_night"  # a 2 kW heater left on from 23:00 to 06:00
VACATION = "vacation"  # a week away: base load and fridge only
METER_SILENT = "meter_silent"  # the meter cannot reach the broker; it buffers and resends
METER_STUCK = "meter_stuck"  # the register stops counting; power readings go on
POWER_STUCK = "power_stuck"  # the power readings freeze at one value; the register counts on
BASELOAD_STEP = "baseload_step"  # something left on for good from noon: the base load steps up
EXPECTED_ALERT: dict[str, str | None] = {
    HEATER_NIGHT: "unusual_usage",
    VACATION: None,
    METER_SILENT: "meter_silent",
    METER_STUCK: "meter_stuck",
    POWER_STUCK: "meter_stuck",
    BASELOAD_STEP: "baseload_change",
}
# What people do, by their wall clock (the rest, a meter's faults, come at any time).
WALL_CLOCK_KINDS = (HEATER_NIGHT, VACATION, BASELOAD_STEP)
HEATER_START_H, HEATER_END_H = 23, 30  # 23:00 to 06:00 the next day
VACATION_DAYS = 7
SETTLE_S = 10 * 60  # no incident starts sooner in a day, or ends later in the scenario


@dataclass(frozen=True)
class Incident:
    device_id: str
    kind: str
    start_s: int  # epoch seconds
    end_s: int
    power_w: float = 0.0  # what it adds (a heater), if anything

    @property
    def expects(self) -> str | None:
        return EXPECTED_ALERT[self.kind]

    def public(self) -> dict[str, object]:
        return {"device_id": self.device_id, "kind": self.kind, "start_s": self.start_s,
                "end_s": self.end_s, "expects": self.expects}  # fmt: skip


RATE_NAMES = ("heater_nights", "vacations", "silences", "stuck_registers", "baseload_steps",
              "stuck_powers")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class IncidentRates:
    heater_nights: float = 0.0  # per apartment and day
    vacations: float = 0.0  # weeks away begun, per apartment and day
    silences: float = 0.0  # per apartment and day
    silence_minutes: int = 60
    stuck_registers: float = 0.0  # per apartment and day
    stuck_minutes: int = 180  # a stuck register's, or stuck power readings'
    stuck_powers: float = 0.0  # per apartment and day
    baseload_steps: float = 0.0  # per apartment and day; it lasts to the scenario's end
    baseload_step_w: float = 250.0
    heater_w: float = 2000.0
    after_days: int = 0  # none before the end of this day of the scenario

    def __post_init__(self) -> None:
        for name in RATE_NAMES:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"incident rate {name} must be within 0..1 per day, got {value}")
        for name in ("silence_minutes", "stuck_minutes"):
            if not 1 <= getattr(self, name) <= 24 * 60:
                raise ValueError(f"{name} must be within 1..1440, got {getattr(self, name)}")
        if self.after_days < 0:
            raise ValueError(f"after_days must be >= 0, got {self.after_days}")

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in RATE_NAMES)


def plan(
    rates: IncidentRates, devices: list[str], *, start_s: int, duration_s: int, seed: int
) -> list[Incident]:
    """Every incident of a scenario, in start order; each ends inside it, with room after
    for what it should raise."""
    incidents: list[Incident] = []
    if not rates.any:
        return incidents
    days = -(-duration_s // DAY_S)
    end_s = start_s + duration_s - SETTLE_S
    for index, device in enumerate(devices):
        rng = random.Random(seed * 1_000_003 + index)
        busy_until = start_s + rates.after_days * DAY_S
        for day in range(rates.after_days, days):
            day0 = start_s + day * DAY_S
            drawn = []
            if rng.random() < rates.vacations and day + VACATION_DAYS <= days:
                drawn.append(Incident(device, VACATION, day0, day0 + VACATION_DAYS * DAY_S))
            if rng.random() < rates.heater_nights and day + 1 < days:
                drawn.append(Incident(device, HEATER_NIGHT, day0 + HEATER_START_H * 3600,
                                      day0 + HEATER_END_H * 3600, rates.heater_w))  # fmt: skip
            latest = min(day0 + DAY_S, end_s) - rates.silence_minutes * 60
            if rng.random() < rates.silences and latest > day0 + SETTLE_S:
                begin = rng.randint(day0 + SETTLE_S, latest) // 60 * 60
                drawn.append(Incident(device, METER_SILENT, begin,
                                      begin + rates.silence_minutes * 60))  # fmt: skip
            latest = min(day0 + DAY_S, end_s) - rates.stuck_minutes * 60
            if rng.random() < rates.stuck_registers and latest > day0 + SETTLE_S:
                begin = rng.randint(day0 + SETTLE_S, latest) // 60 * 60
                drawn.append(Incident(device, METER_STUCK, begin,
                                      begin + rates.stuck_minutes * 60))  # fmt: skip
            # Two whole nights after it begins at noon, and nothing after it (it stays).
            if rng.random() < rates.baseload_steps and day + 3 <= days:
                drawn.append(Incident(device, BASELOAD_STEP, day0 + DAY_S // 2, end_s,
                                      rates.baseload_step_w))  # fmt: skip
            # Drawn last, and only when asked for: scenarios without it stay as they were.
            if rates.stuck_powers and rng.random() < rates.stuck_powers:
                latest = min(day0 + DAY_S, end_s) - rates.stuck_minutes * 60
                if latest > day0 + SETTLE_S:
                    begin = rng.randint(day0 + SETTLE_S, latest) // 60 * 60
                    drawn.append(Incident(device, POWER_STUCK, begin,
                                          begin + rates.stuck_minutes * 60))  # fmt: skip
            for incident in drawn:
                if incident.start_s >= busy_until and incident.end_s <= end_s + SETTLE_S:
                    incidents.append(incident)
                    busy_until = incident.end_s + DAY_S  # one at a time, and a day apart
    return sorted(incidents, key=lambda i: (i.start_s, i.device_id))


# --- judging alerts against them ----------------------------------------------------------

# Alerts of a configured rule (a threshold), true by definition when it is crossed: they are
# reported, not judged against incidents.
RULE_KINDS = ("high_usage",)
# How far before an incident an alert may name its start and still be its: the interval the
# incident began in, or the last reading a silent meter sent before it went quiet.
MATCH_SLACK_S = 15 * 60


@dataclass(frozen=True)
class RaisedAlert:
    device_id: str
    kind: str
    start_s: int  # the interval (or silence) it names
    raised_s: float | None = None  # simulated time it was sent, if known

    @classmethod
    def of(cls, message: dict[str, object], raised_s: float | None = None) -> RaisedAlert | None:
        """From an alert message as SNS carried it; None for a resolution or not an alert."""
        from datetime import datetime

        if message.get("status", "alert") != "alert" or "interval_start" not in message:
            return None
        start = datetime.fromisoformat(str(message["interval_start"]).replace("Z", "+00:00"))
        return cls(str(message["device_id"]), str(message["kind"]), int(start.timestamp()),
                   raised_s)  # fmt: skip

    @classmethod
    def resolution_of(
        cls, message: dict[str, object], raised_s: float | None = None
    ) -> RaisedAlert | None:
        """From a resolution as SNS carried it (its start is the alert's); None otherwise."""
        if message.get("status") != "resolved" or "interval_start" not in message:
            return None
        return cls.of({**message, "status": "alert"}, raised_s)


def _matches(alert: RaisedAlert, incident: Incident) -> bool:
    return (
        alert.device_id == incident.device_id
        and alert.kind == incident.expects
        and incident.start_s - MATCH_SLACK_S <= alert.start_s < incident.end_s
    )


def matching(alert: RaisedAlert, incidents: list[Incident]) -> Incident | None:
    """The incident the alert is the expected alert of, if any."""
    return next((i for i in incidents if _matches(alert, i)), None)


def _clearing(
    incidents: list[Incident], alerts: list[RaisedAlert], resolutions: list[RaisedAlert]
) -> dict[str, object]:
    """How the alerts of detected incidents cleared: `cleared` (incidents one of whose
    alerts got a resolution), `cleared_early` (resolutions sent before the incident
    ended), the median minutes from its end to its first resolution after, and the
    incidents still going on at the scenario's end (nothing to clear)."""
    cleared = early = 0
    delays: list[float] = []
    for incident in incidents:
        starts = {a.start_s for a in alerts if _matches(a, incident)}
        mine = [r for r in resolutions if r.device_id == incident.device_id
                and r.kind == incident.expects and r.start_s in starts]  # fmt: skip
        if not mine:
            continue
        cleared += 1
        times = sorted(r.raised_s for r in mine if r.raised_s is not None)
        early += sum(t < incident.end_s for t in times)
        after = [t for t in times if t >= incident.end_s]
        if after:
            delays.append((after[0] - incident.end_s) / 60)
    return {
        "cleared": cleared,
        "cleared_early": early,
        "median_minutes_to_clear": round(_median(delays), 1) if delays else None,
    }


def judge(
    incidents: list[Incident],
    alerts: list[RaisedAlert],
    *,
    apartment_days: float,
    resolutions: list[RaisedAlert] | None = None,
) -> dict[str, object]:
    """Per alert kind: precision (alerts that belong to an incident that expects them),
    recall (incidents that got their alert) and the median minutes from an incident's start
    to its first alert; and the false alerts (of any judged kind, per 100 apartment-days).
    With the `resolutions` sent, also how the detected incidents' alerts cleared."""
    judged = [a for a in alerts if a.kind not in RULE_KINDS]
    kinds = sorted({i.expects for i in incidents if i.expects} | {a.kind for a in judged})
    report: dict[str, dict[str, object]] = {}
    false_alerts = 0
    for kind in kinds:
        raised = [a for a in judged if a.kind == kind]
        expected = [i for i in incidents if i.expects == kind]
        true = [a for a in raised if any(_matches(a, i) for i in expected)]
        false_alerts += len(raised) - len(true)
        delays = []
        detected = 0
        for incident in expected:
            times = [a.raised_s for a in raised if _matches(a, incident)]
            if times:
                detected += 1
                known = [t for t in times if t is not None]
                if known:
                    delays.append((min(known) - incident.start_s) / 60)
        report[kind] = {
            "alerts": len(raised),
            "true_alerts": len(true),
            "incidents": len(expected),
            "detected": detected,
            "precision": round(len(true) / len(raised), 4) if raised else None,
            "recall": round(detected / len(expected), 4) if expected else None,
            "median_minutes_to_alert": round(_median(delays), 1) if delays else None,
        }
        if resolutions is not None:
            report[kind].update(_clearing(expected, raised, resolutions))
    quiet = [i for i in incidents if i.expects is None]
    false = [a for a in judged if not any(_matches(a, i) for i in incidents)]
    return {
        "apartment_days": round(apartment_days, 2),
        "kinds": report,
        "false_alerts": false_alerts,
        "false_alerts_per_100_apartment_days": round(100 * false_alerts / apartment_days, 3)
        if apartment_days
        else None,
        # Incidents that must raise nothing (a week away) and what was raised during them.
        "quiet_incidents": len(quiet),
        "alerts_during_quiet_incidents": sum(
            1
            for i in quiet
            for a in judged
            if a.device_id == i.device_id and i.start_s <= a.start_s < i.end_s
        ),
        "rule_alerts": {k: sum(a.kind == k for a in alerts) for k in RULE_KINDS},
        # What the false alerts named (the first 50): where to look when tuning.
        "false_alert_list": [
            {"device_id": a.device_id, "kind": a.kind, "start_s": a.start_s} for a in false[:50]
        ],
        "incidents_by_kind": {
            k: sum(i.kind == k for i in incidents) for k in sorted({i.kind for i in incidents})
        },
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
