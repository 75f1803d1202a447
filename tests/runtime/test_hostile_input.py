"""What a meter (or an attacker with one valid certificate) can send: every input ends
accepted or quarantined with its reason, and no handler fails a batch because of it.

One regression test per case a fuzzing run found, with its minimal input.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from energy_runtime import aggregate, contract, handoff, queries
from energy_runtime.codec import Point, encode_points
from energy_runtime.quarantine import _raw_text
from energy_runtime.readings import Reason, too_deep
from runtime_fixtures import T0, Cloud, kinesis_record, records_of, series

START = T0 - T0 % 900
GOOD = {"ts": START + 5, "energy_wh": 100.0, "power_w": 500.0}


def quarantined(cloud: Cloud) -> list[dict[str, Any]]:
    lines = []
    for key in cloud.keys(contract.QUARANTINE_PREFIX):
        body = cloud.s3.get_object(Bucket=cloud.bucket, Key=key)["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines() if line]
    return lines


def reasons(cloud: Cloud) -> list[str]:
    return sorted(line["reason"] for line in quarantined(cloud))


def stored_energy(cloud: Cloud, device: str) -> float:
    return sum(row["energy_wh"] for row in queries.device_intervals(cloud.table, device))


# --- 1. nesting ---------------------------------------------------------------------------


def test_a_deep_nest_is_quarantined_unparsed_and_the_batch_goes_on(cloud: Cloud) -> None:
    deep = b"[" * 1000 + b"]" * 1000  # 2,000 bytes, ~1,000 deep: json.loads would recurse out
    records = [kinesis_record("m-1", deep, (START + 60) * 1000, 1), *series("m-2", START, 12)]

    cloud.pipeline(records)

    assert reasons(cloud) == [Reason.TOO_DEEP]
    assert stored_energy(cloud, "m-2") == 22.0  # the valid readings beside it got through


def test_a_shallower_nest_inside_a_rejected_reading_is_refused_too(cloud: Cloud) -> None:
    # ~300 deep: json.loads copes, json.dumps of the rejected reading would not.
    nest = "[" * 300 + "]" * 300
    payload = ('{"ts": "not a time", "energy_wh": 1, "power_w": 1, "x": ' + nest + "}").encode()
    cloud.pipeline([kinesis_record("m-1", payload, (START + 60) * 1000, 1)])
    assert reasons(cloud) == [Reason.TOO_DEEP]


def test_nesting_is_measured_outside_strings() -> None:
    brackets_in_a_string = {"readings": [{**GOOD, "note": "[[[[[[[[{{{{"}] * 40}
    assert not too_deep(json.dumps(brackets_in_a_string).encode())
    assert not too_deep(json.dumps({"readings": [{**GOOD, "n": 'a\\"[[[[[['}]}).encode())
    assert too_deep(json.dumps({"a": {"b": {"c": {"d": {"e": 1}}}}}).encode())


def test_the_quarantine_writes_even_what_json_cannot_encode() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    assert _raw_text(deep).startswith("<not serializable")


# --- 2. optional fields beyond what DynamoDB can store --------------------------------------


@pytest.mark.parametrize(
    "extra", [{"voltage_v": 1e200}, {"current_a": 1e-200}, {"frequency_hz": 1.7e308}]
)
def test_an_implausible_optional_field_costs_only_its_reading(
    cloud: Cloud, extra: dict[str, float]
) -> None:
    readings = [
        {"ts": START + 10 * i, "energy_wh": 1000.0 + 2 * i, "power_w": 720.0} for i in range(12)
    ]
    readings[5] = {**readings[5], **extra}
    assert cloud.pipeline(records_of("m-1", readings))  # handed off, processed, no failure

    assert reasons(cloud) == [Reason.OUT_OF_RANGE]
    # The device's other readings reached the table; the one reading's rise is in the next.
    assert stored_energy(cloud, "m-1") == 22.0
    assert cloud.sqs.get_queue_attributes(
        QueueUrl=cloud.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"] == "0"


# --- 3. a huge sequence number -----------------------------------------------------------


def test_a_sequence_number_beyond_64_bits_is_quarantined(cloud: Cloud) -> None:
    readings = [{**GOOD, "seq": 10**40}, {**GOOD, "ts": START + 15, "seq": 2**63 - 1}]
    cloud.pipeline(records_of("m-1", readings))

    assert reasons(cloud) == [Reason.OUT_OF_RANGE]
    latest = queries.device_latest(cloud.table, "m-1")  # raised decimal.Rounded before
    assert latest is not None and latest["seq"] == 2**63 - 1


# --- 4. a receive time the rule could not have stamped ------------------------------------


@pytest.mark.parametrize("received_at", [0, 10**15, -1])
def test_an_implausible_receive_time_quarantines_its_record(
    cloud: Cloud, received_at: int
) -> None:
    odd = kinesis_record("m-1", {"readings": [GOOD]}, received_at, 1)
    records = [odd, *series("m-2", START, 6)]
    cloud.pipeline(records)

    (line,) = quarantined(cloud)
    assert line["reason"] == Reason.BAD_RECEIVED_AT and line["received_at"] is None
    assert stored_energy(cloud, "m-2") == 10.0


# --- 5. very many readings in one interval -------------------------------------------------


def test_readings_beyond_the_interval_cap_are_quarantined_and_nothing_outgrows_an_item(
    cloud: Cloud,
) -> None:
    cap = 50
    cloud.batching = replace(cloud.batching, max_readings_per_interval=cap)
    cloud.processor = replace(cloud.processor, max_readings_per_interval=cap)
    readings = [
        {"ts": START + i * 0.1, "energy_wh": 1000 + i * 0.01, "power_w": 360.0} for i in range(300)
    ]
    cloud.pipeline(records_of("m-1", readings, per_record=100))

    assert reasons(cloud) == [Reason.RATE_LIMITED] * (300 - cap)
    (row,) = queries.device_intervals(cloud.table, "m-1")
    assert row["reading_count"] == cap  # the earliest `cap` readings of the interval
    # A second batch into the same interval: the processor holds the cap across batches.
    more = [{"ts": START + 60 + i, "energy_wh": 1003 + i * 0.01, "power_w": 360.0}
            for i in range(10)]  # fmt: skip
    default = int(contract.MAX_READINGS_PER_INTERVAL.default or 0)
    cloud.batching = replace(cloud.batching, max_readings_per_interval=default)
    cloud.pipeline(records_of("m-1", more))
    (row,) = queries.device_intervals(cloud.table, "m-1")
    assert row["reading_count"] == cap
    processor_lines = [line for line in quarantined(cloud) if "readings" in line]
    assert [len(line["readings"]) for line in processor_lines] == [10]


def test_an_interval_at_the_cap_fits_an_item_by_construction() -> None:
    cap = int(contract.MAX_READINGS_PER_INTERVAL.maximum or 0)
    # The widest reading there is: the largest register and power changes, a full interval.
    worst = [
        Point(1_795_000_000_000 + i * 180, int(contract.MAX_ENERGY_WH * 1000) * (i % 2),
              100_000_000 * (i % 2))
        for i in range(cap)
    ]  # fmt: skip
    size = len(encode_points(worst))
    assert size <= cap * contract.MAX_POINT_BYTES < contract.DYNAMODB_ITEM_LIMIT_BYTES - 16_384


def test_a_huge_interval_travels_in_messages_below_the_queue_limit() -> None:
    # Wide readings (register and power swinging by their maxima): ~13 bytes each encoded.
    points = [
        Point(1_795_000_000_000 + i, (i % 2) * 10**15, (i % 2) * 10**8) for i in range(30_000)
    ]
    interval = {"start_ms": 1_795_000_000_000, "reading_count": len(points),
                "points": base64.b64encode(encode_points(points)).decode()}  # fmt: skip
    entry = {"device_id": "m-1", "latest": {}, "intervals": [interval]}

    messages = handoff.pack_messages(
        [entry], interval_minutes=15, event_source_arn="arn", first_sequence_number="1",
        last_sequence_number="2",
    )  # fmt: skip

    assert len(messages) > 1
    assert all(len(message.body.encode()) < 256 * 1024 for message in messages)
    carried = []
    for message in messages:
        for device in json.loads(message.body)["devices"]:
            for piece in device["intervals"]:
                from energy_runtime.codec import decode_points

                carried += decode_points(base64.b64decode(piece["points"]))
    assert carried == points


# --- 6. a lone spike of the register -----------------------------------------------------


def test_a_lone_register_spike_costs_exactly_the_readings_it_hides() -> None:
    # The documented treatment (docs/data-quality.md): the spike and the LOOKBACK readings
    # after it count nothing; the register's rise over them is not recovered.
    step = 2_000  # mWh per reading
    points = [Point(i * 10_000, 1_000_000 + i * step, 7200) for i in range(20)]
    spiked = list(points)
    spiked[8] = Point(80_000, 900_000_000, 7200)  # one garbage value, far above the trend
    healthy = sum(aggregate.contributions(points[:1], points[1:], 50_000))
    glitched = sum(aggregate.contributions(spiked[:1], spiked[1:], 50_000))
    assert healthy - glitched == (aggregate.LOOKBACK + 1) * step


# --- errors no retry cures -----------------------------------------------------------------


def test_a_write_dynamodb_refuses_sets_the_device_aside_and_finishes_the_batch(
    cloud: Cloud,
) -> None:
    # Beyond the cap's bound an item outgrows 400 KB: moto refuses it as DynamoDB does.
    # (Readings swinging between the extremes of register and power: ~12 bytes each.)
    huge = 40_000
    cloud.batching = replace(cloud.batching, max_readings_per_interval=huge)
    cloud.processor = replace(cloud.processor, max_readings_per_interval=huge)
    readings = [
        {"ts": START + i * 0.02, "energy_wh": (i % 2) * 9e11, "power_w": (i % 2) * 49_999.0}
        for i in range(huge)
    ]
    records = [*records_of("m-big", readings, per_record=1_000), *series("m-ok", START, 12)]

    handoffs = cloud.pipeline(records)  # no batch item failure: nothing goes to a DLQ

    assert handoffs
    assert stored_energy(cloud, "m-ok") == 22.0
    assert queries.device_intervals(cloud.table, "m-big") == []
    (line,) = [line for line in quarantined(cloud) if line["reason"] == Reason.UNWRITABLE]
    assert line["device_id"] == "m-big" and len(line["readings"]) == huge
    assert "ValidationException" in line["detail"]
