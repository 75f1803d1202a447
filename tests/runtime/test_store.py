"""The store's items weigh what the cost model says: its sizes set DynamoDB's write units
and storage in `energy-monitoring cost`, so they are measured here on what the processor
writes for the simulator's meters (all eight reading fields, a reading every 10 s)."""

from __future__ import annotations

import statistics
from typing import Any

from runtime_fixtures import Cloud, kinesis_record

from devkit.metering import item_size
from devkit.simulator.meters import Scenario, Simulation
from energy_monitoring.costs import model

DAY_S = 86_400


def test_items_weigh_what_the_cost_model_assumes(cloud: Cloud) -> None:
    # Four meters from an hour before a midnight to 90 minutes after: full intervals and
    # a closed day; one processor run per round of messages (a window each).
    start = 1_795_000_000 // DAY_S * DAY_S - 3_600
    simulation = Simulation(Scenario(apartments=4, days=2.5 / 24, start_epoch_s=start, seed=3))
    messages = sorted(
        (m for m in simulation.messages() if m.kind == "readings"), key=lambda m: m.publish_at
    )
    latest: list[int] = []
    versions: dict[str, Any] = {}
    for i in range(0, len(messages), 4):
        cloud.pipeline([
            kinesis_record(m.device_id, m.payload, int(m.publish_at * 1000), i + n)
            for n, m in enumerate(messages[i : i + 4])
        ])  # fmt: skip
        for item in cloud.table_items():
            if item["sk"]["S"] == "LATEST" and versions.get(item["pk"]["S"]) != item["version"]:
                versions[item["pk"]["S"]] = item["version"]  # written this round
                latest.append(item_size(item))
    by_kind: dict[str, list[int]] = {}
    for item in cloud.table_items():
        by_kind.setdefault(item["sk"]["S"].split("#")[0], []).append(item_size(item))
    intervals, days = by_kind["INT"], by_kind["LDAY"]
    assert len(intervals) >= 4 * 9 and len(days) == 4
    # Within 10%: the model's storage and write units follow these.
    assert abs(statistics.mean(intervals) / model.INTERVAL_ITEM_BYTES - 1) < 0.1
    # "UTC" here; a zone like "Europe/Berlin" adds 10 bytes.
    assert abs(statistics.mean(days) / model.DAILY_ITEM_BYTES - 1) < 0.15
    # LATEST grows with its open interval: the mean of what was written, and every write
    # one unit (under 1 KB), as the model counts it.
    assert abs(statistics.mean(latest) / model.LATEST_ITEM_BYTES - 1) < 0.1
    assert max(latest + intervals + days) <= 1024
