"""Properties of the per-device state machine, end to end through both handlers (moto).

Whatever the arrival order, the batch boundaries, the device-side batching and the
duplicates, a device ends with the same intervals and days as a reference device that got
the same readings in one ordered batch; energies sum to the register delta; and replaying
every hand-off leaves the table byte-for-byte as it was.
"""

from __future__ import annotations

import itertools
from typing import Any

from energy_runtime import queries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_fixtures import T0, Cloud, kinesis_record

MIDNIGHT = (T0 // 86_400 + 1) * 86_400
names = itertools.count()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=2, max_value=120))
    ts = MIDNIGHT - draw(st.integers(min_value=0, max_value=1800))
    energy_mwh = draw(st.integers(min_value=0, max_value=10**10))
    readings = []
    for _ in range(count):
        ts += draw(st.sampled_from([10, 10, 10, 10, 20, 7, 300, 1000]))
        energy_mwh += draw(st.integers(min_value=0, max_value=12_000))
        power = draw(st.integers(min_value=0, max_value=40_000)) / 10
        readings.append({"ts": ts, "energy_wh": energy_mwh / 1000, "power_w": power})
    # Sometimes the meter misbehaves: spurious low values, or a swap to a fresh register.
    defects = draw(st.lists(st.integers(0, count - 1), max_size=3))
    for index in defects:
        readings[index]["energy_wh"] = draw(st.sampled_from([0.0, 1.5, 12.0]))
    if draw(st.booleans()) and count > 10:
        swap = draw(st.integers(1, count - 1))
        for i, reading in enumerate(readings[swap:]):
            reading["energy_wh"] = 5.0 + i * 2.0
        defects.append(swap)
    duplicates = draw(st.lists(st.sampled_from(readings), max_size=10))
    arrival = draw(st.permutations(readings + duplicates))
    cuts = sorted(draw(st.lists(st.integers(0, len(arrival)), max_size=4)))
    per_record = draw(st.integers(min_value=1, max_value=8))
    return {
        "readings": readings,
        "arrival": arrival,
        "cuts": cuts,
        "per_record": per_record,
        "monotone": not defects,
    }


def records(device: str, readings: list[dict[str, Any]], per_record: int) -> list[dict[str, Any]]:
    out = []
    for i in range(0, len(readings), per_record):
        chunk = readings[i : i + per_record]
        received = int(max(r["ts"] for r in chunk) * 1000) + 100
        out.append(kinesis_record(device, {"readings": chunk}, received, i))
    return out


def device_items(cloud: Cloud, device: str) -> list[dict[str, Any]]:
    return cloud.dynamodb.query(
        TableName="energy",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": device}},
        ConsistentRead=True,
    )["Items"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_order_batches_and_duplicates_do_not_change_the_result(
    cloud: Cloud, scenario: dict[str, Any]
) -> None:
    n = next(names)
    reference, device = f"ref-{n}", f"dev-{n}"
    readings, arrival = scenario["readings"], scenario["arrival"]
    cloud.pipeline(records(reference, readings, 6))

    handoffs = []
    bounds = [0, *scenario["cuts"], len(arrival)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            handoffs += cloud.pipeline(records(device, arrival[lo:hi], scenario["per_record"]))

    got = queries.device_intervals(cloud.table, device)
    assert got == queries.device_intervals(cloud.table, reference)
    daily = queries.device_daily_energy(cloud.table, device)
    assert daily == queries.device_daily_energy(cloud.table, reference)
    latest, expected = (queries.device_latest(cloud.table, name) for name in (device, reference))
    assert latest is not None and expected is not None
    for key in ("ts", "energy_wh", "power_w"):
        assert latest[key] == expected[key]

    assert sum(row["reading_count"] for row in got) == len({r["ts"] for r in readings})
    assert all(row["energy_wh"] >= 0 for row in got)
    total_mwh = sum(round(row["energy_wh"] * 1000) for row in got)
    assert sum(round(wh * 1000) for wh in daily.values()) == total_mwh
    if scenario["monotone"]:
        # Energy is conserved: the intervals add up to the register delta, to the mWh.
        first, last = readings[0]["energy_wh"], readings[-1]["energy_wh"]
        assert total_mwh == round(last * 1000) - round(first * 1000)

    # Replaying every hand-off, in any grouping, changes nothing at all.
    before = device_items(cloud, device)
    assert cloud.run_processor(handoffs) == {"batchItemFailures": []}
    assert cloud.run_processor(handoffs[::-1][:1]) == {"batchItemFailures": []}
    assert device_items(cloud, device) == before
