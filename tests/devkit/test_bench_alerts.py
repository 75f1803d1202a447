"""`make bench-alerts`: the processor's own code path judged against labelled incidents."""

from __future__ import annotations

from devkit.simulator.incidents import IncidentRates
from tools.bench_alerts import run_seed

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


def test_power_readings_that_freeze_are_alerted_once_a_freeze_and_cleared_after_it() -> None:
    """Power readings held at one value for three hours while the register counts on:
    the load moves away from the frozen value, the processor alerts, and clears once the
    readings move again; never while they are frozen."""
    result = run_seed(5, 6, 1, 900, 60, rates=IncidentRates(stuck_powers=1.0))
    stuck = result["kinds"]["meter_stuck"]
    assert set(result["incidents_by_kind"]) == {"power_stuck"}
    assert stuck["alerts"] == stuck["incidents"] > 0  # one alert a freeze
    assert (stuck["precision"], stuck["recall"]) == (1.0, 1.0)
    assert (stuck["cleared"], stuck["cleared_early"]) == (stuck["incidents"], 0)
    assert result["false_alerts"] == 0
