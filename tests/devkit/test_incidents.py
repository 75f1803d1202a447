"""Labelled incidents: what the simulator injects, and how alerts are judged against them."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.simulator import incidents as labelled
from devkit.simulator.incidents import Incident, IncidentRates, RaisedAlert, judge
from devkit.simulator.meters import TIME_ZONE, Faults, Scenario, Simulation

START = 1_794_700_800  # a Monday, 00:00 UTC
NO_FAULTS = Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0)
DAY = 86_400


def local(epoch_s: int) -> dt.datetime:
    """The time on the scenario's buildings' clocks (the environment's zone)."""
    return dt.datetime.fromtimestamp(epoch_s, ZoneInfo(TIME_ZONE))


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(0, 5), st.integers(0, 10**6))
def test_incidents_are_reproducible_one_at_a_time_and_after_the_warm_up(
    heater: float, vacation: float, silence: float, after: int, seed: int
) -> None:
    rates = IncidentRates(heater_nights=heater, vacations=vacation, silences=silence,
                          after_days=after)  # fmt: skip
    devices = ["a", "b", "c"]
    planned = labelled.plan(rates, devices, start_s=START, duration_s=14 * DAY, seed=seed)
    assert planned == labelled.plan(rates, devices, start_s=START, duration_s=14 * DAY, seed=seed)
    for device in devices:
        own = [i for i in planned if i.device_id == device]
        for before, after_ in itertools.pairwise(own):
            assert after_.start_s >= before.end_s  # never two at once
    assert all(i.start_s >= START + after * DAY for i in planned)
    assert all(i.end_s <= START + 14 * DAY for i in planned)


def test_rates_out_of_range_are_named() -> None:
    with pytest.raises(ValueError, match="heater_nights"):
        IncidentRates(heater_nights=1.5)
    with pytest.raises(ValueError, match="silence_minutes"):
        IncidentRates(silence_minutes=0)


def test_a_heater_night_a_week_away_a_silent_hour_and_a_stuck_meter_happen_as_labelled() -> None:
    rates = IncidentRates(heater_nights=0.5, vacations=0.2, silences=0.5, stuck_registers=0.3,
                          stuck_powers=0.3, after_days=1)  # fmt: skip
    scenario = Scenario(apartments=6, days=9, interval_s=60, readings_per_message=5,
                        start_epoch_s=START, seed=3, faults=NO_FAULTS, incidents=rates)  # fmt: skip
    simulation = Simulation(scenario)
    kinds = {i.kind for i in simulation.incidents}
    assert kinds == {labelled.HEATER_NIGHT, labelled.VACATION, labelled.METER_SILENT,
                     labelled.METER_STUCK, labelled.POWER_STUCK}  # fmt: skip
    messages = list(simulation.messages())
    registers: dict[str, list[tuple[int, float, float]]] = {}  # (ts, register, power) by device
    for message in messages:
        body = json.loads(message.text)
        readings = body.get("readings", [body])
        registers.setdefault(message.device_id, []).extend(
            (r["ts"], r["energy_wh"], r["power_w"]) for r in readings
        )
    for incident in simulation.incidents:
        profile = simulation.profiles[incident.device_id]
        middle = (incident.start_s + incident.end_s) // 2 - START
        if incident.kind == labelled.HEATER_NIGHT:
            assert local(incident.start_s).hour == 23  # by the building's clock
            wall = simulation.wall_s(incident.device_id, middle + START)
            assert any(e.power_w == 2000.0 and e.start_s <= wall < e.end_s
                       for e in profile.events)  # fmt: skip
        elif incident.kind == labelled.VACATION:
            # Nobody home: the base load and the fridge, nothing else.
            assert profile.power_w(simulation.wall_s(incident.device_id, middle + START)) <= (
                profile.base_w + 110.0
            )
        elif incident.kind == labelled.METER_STUCK:
            # The register holds still while the power readings go on; it counts after.
            readings = sorted(registers[incident.device_id])
            during = [r for r in readings if incident.start_s <= r[0] <= incident.end_s]
            assert len({r[1] for r in during}) == 1 and min(r[2] for r in during) > 0
            after = [r for r in readings if r[0] > incident.end_s][:2]
            assert after[-1][1] > during[-1][1]
        elif incident.kind == labelled.POWER_STUCK:
            # The power readings hold one value while the register counts what is used.
            readings = sorted(registers[incident.device_id])
            during = [r for r in readings if incident.start_s <= r[0] <= incident.end_s]
            assert len({r[2] for r in during}) == 1 and during[-1][1] > during[0][1]
            # It froze at what the load was when it began; the load moved on.
            device = incident.device_id
            frozen_at = profile.power_w(simulation.wall_s(device, incident.start_s))
            assert during[0][2] == round(frozen_at, 1)
            assert any(profile.power_w(simulation.wall_s(device, r[0])) != during[0][2]
                       for r in during)  # fmt: skip
            after = [r for r in readings if r[0] > incident.end_s]
            assert len({r[2] for r in after[:60]}) > 1
        else:
            # Nothing is sent while it is silent; what it read then comes when it can send.
            sent_during = [m for m in messages if m.device_id == incident.device_id
                           and incident.start_s <= m.publish_at < incident.end_s]  # fmt: skip
            assert sent_during == []
            kept = [m for m in messages if m.device_id == incident.device_id
                    and m.kind == "silenced" and m.publish_at == incident.end_s]  # fmt: skip
            assert kept
            assert all(incident.start_s <= m.last_ts < incident.end_s for m in kept)
    # Every reading still reaches the pipeline once: the truth is unchanged by silences.
    sent = sum(m.readings for m in messages)
    assert sent == sum(t.readings for t in simulation.truth.values())
    per_device: dict[str, list[int]] = {}
    for message in messages:
        body = json.loads(message.text)
        per_device.setdefault(message.device_id, []).extend(
            r["ts"] for r in body.get("readings", [body]))  # fmt: skip
    assert all(len(stamps) == len(set(stamps)) for stamps in per_device.values())


def at(day: int, hour: float) -> int:
    return START + day * DAY + int(hour * 3600)


def test_alerts_are_judged_per_kind_against_the_incidents() -> None:
    incidents = [
        Incident("a", labelled.HEATER_NIGHT, at(3, 23), at(4, 6), 2000.0),
        Incident("b", labelled.HEATER_NIGHT, at(5, 23), at(6, 6), 2000.0),  # missed
        Incident("c", labelled.METER_SILENT, at(4, 10), at(4, 11)),
        Incident("d", labelled.VACATION, at(3, 0), at(10, 0)),
    ]
    alerts = [
        RaisedAlert("a", "unusual_usage", at(3, 23.25), at(3, 23.6)),  # 21 minutes after
        RaisedAlert("a", "unusual_usage", at(4, 1), at(4, 1.3)),  # the same night again
        RaisedAlert("c", "meter_silent", at(4, 9.95), at(4, 10.4)),  # its last reading
        RaisedAlert("e", "unusual_usage", at(4, 19), at(4, 19.3)),  # a meal: false
        RaisedAlert("d", "unusual_usage", at(5, 3), at(5, 3.3)),  # away: false
        RaisedAlert("a", "high_usage", at(3, 23.25), at(3, 23.6)),  # a rule: not judged
    ]
    resolutions = [
        RaisedAlert("a", "unusual_usage", at(3, 23.25), at(4, 6.25)),  # 15 minutes after
        RaisedAlert("c", "meter_silent", at(4, 9.95), at(4, 10.5)),  # while still silent
        RaisedAlert("e", "unusual_usage", at(4, 19), at(4, 20)),  # a false alert's
    ]
    report = judge(incidents, alerts, apartment_days=50, resolutions=resolutions)
    unusual = report["kinds"]["unusual_usage"]
    assert (unusual["cleared"], unusual["cleared_early"], unusual["median_minutes_to_clear"]) == (
        1, 0, 15.0)  # fmt: skip
    assert (report["kinds"]["meter_silent"]["cleared"],
            report["kinds"]["meter_silent"]["cleared_early"]) == (1, 1)  # fmt: skip
    assert (unusual["alerts"], unusual["true_alerts"], unusual["precision"]) == (4, 2, 0.5)
    assert (unusual["incidents"], unusual["detected"], unusual["recall"]) == (2, 1, 0.5)
    assert unusual["median_minutes_to_alert"] == 36.0
    silent = report["kinds"]["meter_silent"]
    assert (silent["precision"], silent["recall"], silent["median_minutes_to_alert"]) == (
        1.0, 1.0, 24.0)  # fmt: skip
    assert report["false_alerts"] == 2
    assert report["false_alerts_per_100_apartment_days"] == 4.0
    assert report["alerts_during_quiet_incidents"] == 1
    assert report["rule_alerts"] == {"high_usage": 1}


def test_a_raised_alert_is_read_from_the_message_sns_carried() -> None:
    message = {"device_id": "a", "kind": "meter_silent", "status": "alert",
               "interval_start": "2026-11-16T10:05:00Z"}  # fmt: skip
    alert = RaisedAlert.of(message, 123.0)
    assert alert == RaisedAlert("a", "meter_silent", 1_794_823_500, 123.0)
    assert RaisedAlert.of({**message, "status": "resolved"}) is None
    assert RaisedAlert.resolution_of({**message, "status": "resolved"}, 124.0) == RaisedAlert(
        "a", "meter_silent", 1_794_823_500, 124.0)  # fmt: skip
    assert RaisedAlert.resolution_of(message) is None


def test_a_base_load_step_begins_at_noon_and_lasts_to_the_end() -> None:
    rates = IncidentRates(baseload_steps=0.5, after_days=1)
    scenario = Scenario(apartments=4, days=6, interval_s=60, readings_per_message=5,
                        start_epoch_s=START, seed=4, faults=NO_FAULTS, incidents=rates)  # fmt: skip
    simulation = Simulation(scenario)
    steps = [i for i in simulation.incidents if i.kind == labelled.BASELOAD_STEP]
    assert steps and all(i.expects == "baseload_change" for i in steps)
    for step in steps:
        assert local(step.start_s).hour == 12
        assert step.end_s >= step.start_s + 2 * DAY  # two whole nights to be seen in
        assert not [i for i in simulation.incidents
                    if i.device_id == step.device_id and i.start_s > step.start_s]  # fmt: skip
        profile = simulation.profiles[step.device_id]
        night = simulation.wall_s(step.device_id, step.start_s) + DAY // 2 + 3 * 3600  # 03:00
        with_step = profile.power_w(night)
        assert any(e.power_w == 250.0 and e.start_s <= night < e.end_s for e in profile.events)
        assert with_step >= profile.base_w + 250.0


def test_the_buildings_live_by_their_own_clocks_across_the_autumn_change() -> None:
    """Heaters left on from 23:00 local in Berlin and in New York, either side of Berlin's
    clock change (2026-10-25): labelled at 23:00 on each building's clock, and the load
    profile (in wall-clock time) has them then."""
    rates = IncidentRates(heater_nights=0.6, after_days=1)
    start = int(dt.datetime(2026, 10, 19, tzinfo=dt.UTC).timestamp())  # a Monday
    scenario = Scenario(apartments=8, days=12, interval_s=60, readings_per_message=5,
                        start_epoch_s=start, seed=2, faults=NO_FAULTS, incidents=rates,
                        apartments_per_building=4,
                        time_zones=("Europe/Berlin", "America/New_York"))  # fmt: skip
    simulation = Simulation(scenario)
    places = scenario.places()
    assert {p["time_zone"] for p in places.values()} == {"Europe/Berlin", "America/New_York"}
    heaters = [i for i in simulation.incidents if i.kind == labelled.HEATER_NIGHT]
    offsets = set()
    for heater in heaters:
        zone = ZoneInfo(places[heater.device_id]["time_zone"])
        assert dt.datetime.fromtimestamp(heater.start_s, zone).hour == 23
        assert dt.datetime.fromtimestamp(heater.end_s, zone).hour == 6
        offsets.add(dt.datetime.fromtimestamp(heater.start_s, zone).utcoffset())
        wall = simulation.wall_s(heater.device_id, heater.start_s + 1800)
        assert simulation.profiles[heater.device_id].power_w(wall) >= 2000.0
    assert len(offsets) >= 3  # summer and winter time in Berlin, and New York's
    with pytest.raises(ValueError, match="time_zones"):
        Scenario(time_zones=("Mars/Olympus_Mons",))
