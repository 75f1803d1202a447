"""Properties of the batching -> hand-off -> processor path on moto, for any input.

Valid meters' readings are mixed with what a hostile or broken meter might send (random
bytes, arbitrary JSON, extreme numbers, deep nests, odd timestamps and receive times).
Whatever the mix: no exception escapes a handler and no batch item fails; every reading
is accepted or quarantined with a reason and the counts add up; the valid meters' stored
energy is exactly their registers' rise; a replay changes nothing; and nothing stored is
NaN, infinite or beyond what DynamoDB and the contract allow.

Seeded and small in `make test` (FUZZ_EXAMPLES, default 12); `make fuzz` runs thousands
of fresh examples.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

from energy_runtime import batching, contract, processor, queries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_fixtures import (
    T0,
    Cloud,
    assert_archive_agrees_with_table,
    create_table,
    kinesis_record,
    records_of,
)

START = T0 - T0 % 900
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
VALID = ("m-1", "m-2", "m-3")


@st.composite
def meter(draw: st.DrawFn, device: str) -> tuple[str, list[dict[str, Any]], int]:
    """A healthy meter: (device, readings 10 s apart, readings per message)."""
    count = draw(st.integers(1, 40))
    register = draw(st.floats(0, 1e6, allow_nan=False))
    steps = draw(st.lists(st.floats(0, 5, allow_nan=False), min_size=count, max_size=count))
    offset = draw(st.integers(0, 3000))
    readings, value = [], register
    for i, step in enumerate(steps):
        value = round(value + step, 3)
        readings.append({"ts": START + offset + 10 * i, "energy_wh": value, "power_w": 500.0})
    return device, readings, draw(st.integers(1, 10))


numbers = st.one_of(
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e-300, 5e-324, 2**63, 2**64, -0.0, 1e126, 1e-130]),
)
KEYS = ["ts", "energy_wh", "power_w", "readings", *contract.OPTIONAL_FIELDS, "x"]
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    max_leaves=20,
)
odd_readings = st.fixed_dictionaries(
    {"ts": st.one_of(numbers, st.text(max_size=25), st.just("2026-11-18T11:06:40")),
     "energy_wh": numbers, "power_w": numbers},
    optional={name: numbers for name in contract.OPTIONAL_FIELDS},
)  # fmt: skip
plain_hostile_payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(odd_readings, min_size=1, max_size=5).map(
        lambda items: json.dumps({"readings": items}).encode()
    ),
    st.integers(5, 2000).map(lambda depth: b"[" * depth + b"]" * depth),
)
# The same, gzip-compressed as a meter may send them, whole or cut short.
hostile_payloads = st.one_of(
    plain_hostile_payloads,
    plain_hostile_payloads.map(lambda raw: gzip.compress(raw, mtime=0)),
    st.tuples(plain_hostile_payloads, st.integers(1, 30)).map(
        lambda cut: gzip.compress(cut[0], mtime=0)[: -cut[1]]
    ),
)
received_times = st.one_of(
    st.just((START + 3600) * 1000),
    st.integers(-(10**16), 10**16),
)


def fresh(cloud: Cloud) -> Cloud:
    """New queue, bucket and table in the same moto backend: one example's world."""
    tag = uuid.uuid4().hex[:12]
    queue_url = cloud.sqs.create_queue(QueueName=f"h-{tag}")["QueueUrl"]
    bucket = f"a-{tag}"
    cloud.s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    create_table(cloud.dynamodb, f"t-{tag}")
    import boto3

    return replace(
        cloud,
        queue_url=queue_url,
        bucket=bucket,
        table=boto3.resource("dynamodb", region_name="eu-west-1").Table(f"t-{tag}"),
        batching=replace(cloud.batching, handoff_queue_url=queue_url, archive_bucket=bucket),
        processor=replace(cloud.processor, table_name=f"t-{tag}", archive_bucket=bucket),
    )


def metric(module: Any, name: str) -> float:
    found = module.metrics.metric_set.get(name)
    return sum(found["Value"]) if found else 0


def stored_numbers_are_sane(cloud: Cloud) -> None:
    items = cloud.dynamodb.scan(TableName=cloud.processor.table_name)["Items"]
    for item in items:
        for name, value in item.items():
            if "N" not in value:
                continue
            number = Decimal(value["N"])
            assert number.is_finite(), (name, value)
            assert number == 0 or Decimal("1e-130") <= abs(number) < Decimal("1e126"), value
            if name in contract.OPTIONAL_FIELD_RANGES:
                low, high = contract.OPTIONAL_FIELD_RANGES[name]
                assert low <= number <= high, (name, number)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    meters=st.tuples(*(meter(device) for device in VALID)),
    hostile=st.lists(
        st.tuples(st.sampled_from(["evil-1", "evil-2", *VALID]), hostile_payloads, received_times),
        max_size=8,
    ),
    order=st.randoms(use_true_random=False),
)
def test_any_mix_of_input_ends_stored_or_quarantined(
    cloud: Cloud, meters: tuple[Any, ...], hostile: list[Any], order: Any
) -> None:
    world = fresh(cloud)
    records = []
    seq = 0
    for device, readings, per_record in meters:
        records += records_of(device, readings, seq=seq, per_record=per_record)
        seq += 1000
    for i, (device, payload, received_at) in enumerate(hostile):
        # A valid meter's topic may carry garbage too; a payload it shares must not parse
        # as a reading of its series, so the valid meters' energy stays checkable.
        if device in VALID and (
            payload.lstrip()[:1] in (b"{", b"[") or payload[:2] == contract.GZIP_MAGIC
        ):
            device = f"evil-{i}"
        records.append(kinesis_record(device, payload, received_at, 900_000 + i))
    order.shuffle(records)

    for module in (batching, processor):
        module.metrics.clear_metrics()
    handoffs = world.pipeline(records)  # asserts: no batch item failure anywhere

    received = metric(batching, contract.READINGS_RECEIVED)
    accepted = metric(batching, contract.READINGS_ACCEPTED)
    rejected = metric(batching, contract.READINGS_QUARANTINED)
    assert received == accepted + rejected
    lines = []
    for key in world.keys(contract.QUARANTINE_PREFIX):
        body = world.s3.get_object(Bucket=world.bucket, Key=key)["Body"].read().decode()
        lines += [json.loads(line) for line in body.splitlines() if line]
    # every rejection kept with its reason (a line may stand for several: `count`)
    assert sum(line.get(contract.QUARANTINE_COUNT, 1) for line in lines) == rejected
    assert all(line["reason"] and line["raw"] is not None for line in lines)

    for device, readings, _ in meters:
        rows = queries.device_intervals(world.table, device)
        assert sum(int(r["reading_count"]) for r in rows) == len(readings)
        expected = readings[-1]["energy_wh"] - readings[0]["energy_wh"]
        assert math.isclose(sum(r["energy_wh"] for r in rows), expected, abs_tol=1e-6)
    stored_numbers_are_sane(world)

    # A replay of the whole batch changes nothing.
    before = world.dynamodb.scan(TableName=world.processor.table_name)["Items"]
    processed = world.keys(contract.PROCESSED_PREFIX)
    world.pipeline(records)
    after = world.dynamodb.scan(TableName=world.processor.table_name)["Items"]
    assert sorted(map(str, after)) == sorted(map(str, before))
    assert world.keys(contract.PROCESSED_PREFIX) == processed
    assert handoffs or not any(readings for _, readings, _ in meters)


@settings(
    max_examples=max(3, EXAMPLES // 3),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(meters=st.tuples(*(meter(device) for device in VALID)), splits=st.integers(1, 4))
def test_the_archive_agrees_with_the_table(
    cloud: Cloud, meters: tuple[Any, ...], splits: int
) -> None:
    world = fresh(cloud)
    records = []
    for n, (device, readings, per_record) in enumerate(meters):
        records += records_of(device, readings, seq=1000 * n, per_record=per_record)
    records.sort(key=lambda r: r["kinesis"]["sequenceNumber"])
    size = max(1, len(records) // splits)
    for first in range(0, len(records), size):  # revisions rise batch by batch
        world.pipeline(records[first : first + size])
    assert_archive_agrees_with_table(world, list(VALID))
