"""The demo's verification counts what full offline buffers dropped at the meters, so that
whatever is dropped, a pipeline that loses nothing verifies, and one that loses a reading
does not."""

from __future__ import annotations

import copy
import json
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.demo.verify import Results, alert_differences, meter_drops, verify
from devkit.simulator.meters import Faults, Message, Scenario, Simulation

SIMULATION = Simulation(
    Scenario(
        apartments=2, days=0.05, readings_per_message=3, start_epoch_s=1_794_700_800,
        faults=Faults(duplicate_rate=0.3, late_rate=0, reset_rate=0, garbage_rate=0.1),
    )
)  # fmt: skip
MESSAGES = list(SIMULATION.messages())


def stored_as_the_pipeline_would(arrived: list[Message]) -> Results:
    """Readings merged by event time, garbage quarantined, energy from the registers."""
    readings: dict[str, dict[int, float]] = defaultdict(dict)
    results = Results()
    for message in arrived:
        if not message.last_ts:
            results.quarantined += message.readings
            continue
        body = json.loads(message.text)
        for reading in body.get("readings", [body]):
            readings[message.device_id][reading["ts"]] = reading["energy_wh"]
    for device, registers in readings.items():
        results.stored += len(registers)
        energy = max(registers.values()) - min(registers.values())
        results.per_device[device] = {"energy_wh": energy}
    return results


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, len(MESSAGES) - 1), max_size=len(MESSAGES) // 2))
def test_whatever_the_meters_drop_a_lossless_pipeline_verifies(dropped_at: set[int]) -> None:
    dropped = [m for i, m in enumerate(MESSAGES) if i in dropped_at]
    arrived = [m for i, m in enumerate(MESSAGES) if i not in dropped_at]
    published = sum(m.readings for m in MESSAGES)
    truth = copy.deepcopy(SIMULATION.truth)
    drops = meter_drops(dropped, SIMULATION.duplicated)
    verdict = verify(published, truth, stored_as_the_pipeline_would(arrived), drops)
    assert verdict.lost == 0
    assert verdict.energy_mismatches == []
    assert verdict.dropped_at_meter == sum(m.readings for m in dropped)
    assert (
        verdict.published
        == verdict.dropped_at_meter + verdict.duplicates + verdict.stored + verdict.quarantined
    )


def test_a_reading_lost_in_the_pipeline_is_not_mistaken_for_a_dropped_one() -> None:
    first_genuine = next(i for i, m in enumerate(MESSAGES) if m.kind == "readings")
    dropped = [MESSAGES[first_genuine]]
    arrived = [m for i, m in enumerate(MESSAGES) if i != first_genuine]
    results = stored_as_the_pipeline_would(arrived)
    results.stored -= 1  # one more reading went missing after the meter
    verdict = verify(
        sum(m.readings for m in MESSAGES), copy.deepcopy(SIMULATION.truth), results,
        meter_drops(dropped, SIMULATION.duplicated),
    )  # fmt: skip
    assert verdict.lost == 1


def test_alerts_compare_by_device_kind_and_period() -> None:
    def alert(device: str, kind: str, start: str) -> dict[str, str]:
        return {"device_id": device, "kind": kind, "interval_start": start}

    reference = [alert("a", "high_usage", "2026-11-30T08:15:00+00:00"),
                 alert("b", "anomaly", "2026-11-30T19:00:00+00:00")]  # fmt: skip
    cleared = {**alert("a", "high_usage", "2026-11-30T08:15:00+00:00"), "status": "resolved"}
    reference.append(cleared)
    ours = [
        alert("a", "high_usage", "2026-11-30T08:45:00+00:00"),  # the same hour: the same one
        alert("c", "anomaly", "2026-11-30T10:00:00+00:00"),
        alert("c", "anomaly", "2026-11-30T10:30:00+00:00"),
    ]
    found = alert_differences(ours, reference, period_minutes=60)
    assert found == {
        "missing": [["b", "anomaly", "2026-11-30T19:00:00+00:00"]],
        "missing_resolutions": [["a", "high_usage/resolved", "2026-11-30T08:00:00+00:00"]],
        "extra": [["c", "anomaly", "2026-11-30T10:00:00+00:00"]],
        "duplicated": [["c", "anomaly", "2026-11-30T10:00:00+00:00"]],
    }
    assert alert_differences(reference, reference, period_minutes=60) == {
        "missing": [], "missing_resolutions": [], "extra": [], "duplicated": []
    }  # fmt: skip
