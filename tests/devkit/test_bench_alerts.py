"""`make bench-alerts`: the processor's own code path judged against labelled incidents."""

from __future__ import annotations

from typing import Any

import pytest

from devkit.simulator.incidents import IncidentRates
from devkit.simulator.meters import Simulation
from tools.bench_alerts import run_seed, scenario_of
from tools.replay_detectors import replay

SILENCES = IncidentRates(silences=1.0, silence_minutes=60)


def test_silent_meters_are_alerted_and_resolved_and_moto_s_encoding_changes_nothing() -> None:
    fast = run_seed(5, 3, 1, 900, 60, rates=SILENCES)
    silent = fast["kinds"]["meter_silent"]
    assert fast["incidents_by_kind"] == {"meter_silent": 3}
    assert (silent["alerts"], silent["precision"], silent["recall"]) == (3, 1.0, 1.0)
    assert silent["median_minutes_to_alert"] <= 30  # the target
    assert fast["resolutions"] == 3
    assert fast["false_alerts"] == 0
    # The same run with moto encoding its DynamoDB responses itself: the same judgement.
    slow = run_seed(5, 3, 1, 900, 60, rates=SILENCES, fast_responses=False)
    assert {k: v for k, v in slow.items() if k != "seconds"} == {
        k: v for k, v in fast.items() if k != "seconds"
    }


def _largest_mismatches(rates: IncidentRates) -> list[tuple[float, float]]:
    """Per frozen-power incident of `run_seed(5, 6, 1, 900, 60)`'s scenario, over the
    five-minute stretches of its whole 15-minute intervals, the largest difference between
    the true mean load and the frozen reading: (watts, as a fraction of the larger). The
    simulator's load profile: ground truth, not the detector."""
    simulation = Simulation(scenario_of(5, 6, 1, 60, rates))
    largest = []
    for incident in simulation.incidents:
        profile, device = simulation.profiles[incident.device_id], incident.device_id
        frozen = profile.power_w(simulation.wall_s(device, incident.start_s))
        first = incident.start_s - incident.start_s % 900 + 900
        stretches = []
        for q in range(first, incident.end_s - 900, 300):
            true = sum(profile.power_w(simulation.wall_s(device, t))
                       for t in range(q + 60, q + 360, 60)) / 5  # fmt: skip
            stretches.append((abs(true - frozen), abs(true - frozen) / max(true, frozen)))
        largest.append(max(stretches, default=(0.0, 0.0)))
    return largest


FROZEN = IncidentRates(stuck_powers=1.0)


@pytest.fixture(scope="module")
def frozen_run() -> dict[str, Any]:
    return run_seed(5, 6, 1, 900, 60, rates=FROZEN)


def test_power_readings_that_freeze_are_alerted_once_a_freeze_and_cleared_after_it(
    frozen_run: dict[str, Any],
) -> None:
    """Power readings held at one value for three hours while the register counts on: a
    freeze is alerted once the load moves away from the frozen value (by twice the 50 W and
    10% of the detector in five minutes, surely; by less than half of them, never: the
    readings were right), once a freeze, and cleared once the readings move again, never
    while they are frozen."""
    result = frozen_run
    stuck = result["kinds"]["meter_stuck"]
    assert set(result["incidents_by_kind"]) == {"power_stuck"}
    largest = _largest_mismatches(FROZEN)
    assert len(largest) == stuck["incidents"]
    surely = sum(w >= 100 and f >= 0.2 for w, f in largest)
    possibly = sum(w >= 25 and f >= 0.05 for w, f in largest)
    assert surely >= 1 and surely <= stuck["detected"] <= possibly
    assert stuck["alerts"] == stuck["detected"]  # one alert a freeze
    assert stuck["precision"] == 1.0 and result["false_alerts"] == 0
    assert (stuck["cleared"], stuck["cleared_early"]) == (stuck["detected"], 0)


def test_the_detector_replay_judges_as_the_pipeline_does(frozen_run: dict[str, Any]) -> None:
    """tools/replay_detectors.py (the detectors alone, in memory) against the bench (the
    handlers on moto) on the same scenario: the same alerts, incidents and detections."""
    replayed = replay(5, 6, 1, 60, rates=FROZEN)
    counts = ("alerts", "true_alerts", "incidents", "detected", "cleared")
    for kind, figures in frozen_run["kinds"].items():
        assert {k: replayed["kinds"][kind][k] for k in counts} == {k: figures[k] for k in counts}, (
            kind
        )
    assert replayed["false_alerts"] == frozen_run["false_alerts"] == 0
    assert replayed["diagnosis"] == []  # nothing missed, nothing false
