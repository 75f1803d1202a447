"""The batching handler against moto: hand-off, quarantine, partial failures, handler."""

from __future__ import annotations

import base64
import gzip
import json
import random
import string
import tracemalloc
from dataclasses import replace
from typing import Any

import pytest
from energy_runtime import batching, contract
from energy_runtime.codec import decode_points
from energy_runtime.handoff import rate_limited
from energy_runtime.readings import Decoded, decode_record
from energy_runtime.settings import ReadingRules
from runtime_fixtures import T0, Cloud, kinesis_record

GOOD = {"ts": T0, "energy_wh": 1000.0, "power_w": 500.0}
RULES = ReadingRules()


def readings(start_s: int, count: int, energy_wh: float = 1000.0) -> list[dict[str, Any]]:
    return [
        {"ts": start_s + 10 * i, "energy_wh": energy_wh + 1.5 * i, "power_w": 540.0}
        for i in range(count)
    ]


def quarantined_lines(cloud: Cloud) -> list[dict[str, Any]]:
    lines = []
    for key in cloud.keys("quarantine/"):
        body = cloud.s3.get_object(Bucket=cloud.bucket, Key=key)["Body"].read().decode()
        lines.extend(json.loads(line) for line in body.splitlines())
    return lines


def test_readings_are_handed_off_per_device_and_interval(cloud: Cloud) -> None:
    records = [
        kinesis_record("m-1", {"readings": readings(T0, 6)}, (T0 + 60) * 1000, 1),
        kinesis_record("m-2", {"readings": readings(T0, 3, 50.0)}, (T0 + 60) * 1000, 2),
        kinesis_record("m-1", {"readings": readings(T0 + 60, 6, 1009.0)}, (T0 + 120) * 1000, 3),
    ]
    assert cloud.run_batching(records) == {"batchItemFailures": []}
    [message] = cloud.drain_handoff()
    body = json.loads(message["body"])
    assert body["first_sequence_number"] == records[0]["kinesis"]["sequenceNumber"]
    devices = {d["device_id"]: d for d in body["devices"]}
    m1 = devices["m-1"]
    points = [p for i in m1["intervals"] for p in decode_points(base64.b64decode(i["points"]))]
    assert len(points) == 12 and [p.ts_ms for p in points] == sorted(p.ts_ms for p in points)
    assert m1["latest"]["ts_ms"] == (T0 + 110) * 1000
    # 12 readings 1.5 Wh apart: the partials carry 11 deltas in total (the first has no base).
    assert sum(i["energy_wh"] for i in m1["intervals"]) == pytest.approx(16.5)
    assert sum(i["reading_count"] for i in devices["m-2"]["intervals"]) == 3


def test_duplicates_within_a_batch_collapse_to_one_reading(cloud: Cloud) -> None:
    batch = readings(T0, 6)
    records = [
        kinesis_record("m-1", {"readings": batch}, (T0 + 60) * 1000, 1),
        kinesis_record("m-1", {"readings": batch}, (T0 + 61) * 1000, 2),
    ]
    cloud.run_batching(records)
    [message] = cloud.drain_handoff()
    [device] = json.loads(message["body"])["devices"]
    assert sum(i["reading_count"] for i in device["intervals"]) == 6


def test_bad_data_is_quarantined_with_its_reason_and_never_fails_the_batch(cloud: Cloud) -> None:
    received = (T0 + 60) * 1000
    records = [
        kinesis_record("m-1", {"readings": [GOOD, {**GOOD, "energy_wh": -5}]}, received, 1),
        kinesis_record("m-1", b"{oops", received, 2),
        kinesis_record("m-1", b"y" * (cloud.batching.max_payload_bytes + 1), received, 3),
    ]
    assert cloud.run_batching(records) == {"batchItemFailures": []}
    lines = quarantined_lines(cloud)
    assert sorted(line["reason"] for line in lines) == [
        "malformed_json",
        "negative_value",
        "oversized_payload",
    ]
    negative = next(line for line in lines if line["reason"] == "negative_value")
    assert negative["device_id"] == "m-1" and negative["index"] == 1
    assert json.loads(negative["raw"]) == {**GOOD, "energy_wh": -5}
    assert negative["received_at"] == received
    [key] = cloud.keys("quarantine/")
    assert key.startswith("quarantine/year=2026/month=11/day=18/hour=11/")


def test_a_replayed_batch_rewrites_the_same_quarantine_object(cloud: Cloud) -> None:
    records = [kinesis_record("m-1", b"[[[", (T0 + 60) * 1000, 1)]
    cloud.run_batching(records)
    first = cloud.keys("quarantine/")
    cloud.run_batching(records)
    assert cloud.keys("quarantine/") == first and len(first) == 1


def test_only_transient_failures_are_reported_from_each_devices_first_record(cloud: Cloud) -> None:
    records = [
        kinesis_record("m-1", b"not json", (T0 + 60) * 1000, 1),
        kinesis_record("m-1", GOOD, (T0 + 60) * 1000, 2),
        kinesis_record("m-2", GOOD, (T0 + 60) * 1000, 3),
    ]
    gone = cloud.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    config = replace(cloud.batching, handoff_queue_url=gone)
    response = batching.process_kinesis_event(
        {"Records": records}, config=config, sqs=cloud.sqs, s3=cloud.s3
    )
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    # m-1's first record is the poison one: Lambda retries from there, the poison is
    # quarantined again under the same key, and the good reading is handed off.
    assert failed == {
        records[0]["kinesis"]["sequenceNumber"],
        records[2]["kinesis"]["sequenceNumber"],
    }
    assert len(quarantined_lines(cloud)) == 1


def test_a_quarantine_write_failure_fails_only_the_records_it_held(cloud: Cloud) -> None:
    records = [
        kinesis_record("m-1", GOOD, (T0 + 60) * 1000, 1),
        kinesis_record("m-2", b"not json", (T0 + 60) * 1000, 2),
    ]
    config = replace(cloud.batching, archive_bucket="no-such-bucket")
    response = batching.process_kinesis_event(
        {"Records": records}, config=config, sqs=cloud.sqs, s3=cloud.s3
    )
    assert response == {
        "batchItemFailures": [{"itemIdentifier": records[1]["kinesis"]["sequenceNumber"]}]
    }
    assert len(cloud.drain_handoff()) == 1


def test_the_lambda_handler_reads_its_settings_and_emits_the_contract_metrics(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The environment the stack gives the function (every variable the contract declares).
    environment = contract.default_environment(
        contract.BATCHING, HANDOFF_QUEUE_URL=cloud.queue_url, ARCHIVE_BUCKET=cloud.bucket
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    batching.settings.cache_clear()
    batching.metrics.clear_metrics()
    event = {
        "Records": [
            kinesis_record("m-1", {"readings": [GOOD, {**GOOD, "ts": "soon"}]}, (T0 + 60) * 1000, 1)
        ]
    }
    try:
        assert batching.handler(event, None) == {"batchItemFailures": []}
    finally:
        batching.settings.cache_clear()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {
        k: sum(v) if isinstance(v, list) else v
        for blob in emf
        for k, v in blob.items()
        if k[0].isupper()
    }
    assert values["ReadingsReceived"] == 2
    assert values["ReadingsAccepted"] == 1
    assert values["ReadingsQuarantined"] == 1
    by_reason = next(blob for blob in emf if "QuarantinedByReason" in blob)
    assert by_reason["reason"] == "bad_timestamp" and by_reason["service"] == "energy-batching"
    assert all(
        blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "EnergyMonitoring" for blob in emf
    )
    assert len(cloud.drain_handoff()) == 1


def _compressible_attack(size: int) -> bytes:
    """JSON text of valid readings that inflates ~58 times (below MAX_INFLATION_RATIO): 100
    readings repeated to fill MAX_PAYLOAD_BYTES, as a meter with a valid certificate can send."""
    rng = random.Random(100)
    block = [
        {"ts": T0 - rng.randrange(6000) * 10, "energy_wh": 1000 + rng.randrange(10**6) / 1000,
         "power_w": rng.randrange(5000)}
        for _ in range(100)
    ]  # fmt: skip
    one = json.dumps(block, separators=(",", ":"))[1:-1]
    text = '{"readings":[' + ",".join([one] * ((size - 20) // (len(one) + 1))) + "]}"
    return gzip.compress(text.encode(), mtime=0)


def test_one_meter_cannot_make_a_batch_parse_more_than_its_share_of_text(cloud: Cloud) -> None:
    """300 messages of 2 KB that inflate to 128 KiB each: 36 MiB of text, ~120 MiB once
    parsed. At 128 MB (16 MiB of text per batch, 4 MiB per device) the meter's records past
    its share are quarantined unread; the batch's memory stays bounded, the other meter's
    reading passes, and every record is counted."""
    attack = _compressible_attack(cloud.batching.max_payload_bytes)
    text = len(gzip.decompress(attack))
    assert text / len(attack) < contract.MAX_INFLATION_RATIO
    budget = 128 * contract.BATCH_TEXT_BYTES_PER_MEMORY_MB
    config = replace(cloud.batching, max_batch_text_bytes=budget)
    received = (T0 + 60) * 1000
    records = [kinesis_record("m-hog", attack, received, n) for n in range(300)]
    records.append(kinesis_record("m-1", {"readings": [GOOD]}, received, 300))
    event = {"Records": records}
    tracemalloc.start()
    try:
        result = batching.process_kinesis_event(event, config=config, sqs=cloud.sqs, s3=cloud.s3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result == {"batchItemFailures": []}
    share = config.max_batch_text_bytes // contract.DEVICE_SHARE_OF_BATCH_TEXT
    assert peak < 8 * share  # unbounded, this batch peaks above 100 MiB
    lines = quarantined_lines(cloud)
    refused = [line for line in lines if line["reason"] == contract.QuarantineReason.TEXT_BUDGET]
    assert len(refused) == 300 - share // text
    assert {line["device_id"] for line in refused} == {"m-hog"}
    assert base64.b64decode(refused[0]["raw"]) == attack  # kept as sent, replayable
    assert refused[0][contract.QUARANTINE_RAW_ENCODING] == contract.QUARANTINE_RAW_BASE64
    handed = [json.loads(m["body"]) for m in cloud.drain_handoff()]
    assert {d["device_id"] for body in handed for d in body["devices"]} == {"m-hog", "m-1"}


def _tiny_entries_attack(size: int) -> bytes:
    """128 KiB of `0,` entries (each a reading refused as not_a_reading) and a random string
    that holds the inflation ratio under the cap: 65,000 rejections a message."""
    rng = random.Random(1)
    pad = "".join(rng.choice(string.ascii_letters) for _ in range(2400))
    head, tail = '{"readings":[', f',"{pad}"]}}'
    text = head + ",".join(["0"] * ((size - len(head) - len(tail)) // 2)) + tail
    return gzip.compress(text.encode(), mtime=0)


def test_tiny_defective_entries_cost_the_budget_what_readings_would(cloud: Cloud) -> None:
    """Rejections take memory whatever little text they were: each entry is charged as 32
    bytes of text and each rejection kept as 256, and past the device's room the record's
    further rejections are one counted line. 40 such messages: one is read, the rest are
    refused unread, memory stays bounded, and every entry is counted."""
    attack = _tiny_entries_attack(cloud.batching.max_payload_bytes)
    entries = len(json.loads(gzip.decompress(attack))["readings"])
    assert len(gzip.decompress(attack)) / len(attack) < contract.MAX_INFLATION_RATIO
    config = replace(
        cloud.batching, max_batch_text_bytes=128 * contract.BATCH_TEXT_BYTES_PER_MEMORY_MB
    )
    received = (T0 + 60) * 1000
    event = {"Records": [kinesis_record("m-hog", attack, received, n) for n in range(40)]}
    tracemalloc.start()
    try:
        batching.process_kinesis_event(event, config=config, sqs=cloud.sqs, s3=cloud.s3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    share = config.max_batch_text_bytes // contract.DEVICE_SHARE_OF_BATCH_TEXT
    assert peak < 8 * share  # unbounded, one message of these takes ~55 MB
    lines = quarantined_lines(cloud)
    counts = [line.get(contract.QUARANTINE_COUNT, 1) for line in lines]
    assert sum(counts) == entries + 39  # the read one's entries, and 39 records unread
    budget = contract.QuarantineReason.TEXT_BUDGET
    assert len([line for line in lines if line["reason"] == budget]) == 1 + 39
    assert len(lines) < 1 + 39 + share // contract.REJECTION_TEXT_BYTES


def test_rate_limited_readings_past_the_room_are_counted_on_one_line() -> None:
    readings = [{"ts": T0 - 900 + i / 10, "energy_wh": 1000 + i / 100, "power_w": 500}
                for i in range(2400)]  # fmt: skip
    body = json.dumps({"readings": readings}, separators=(",", ":")).encode()
    room_for = 100  # rate-limited rejections kept one by one
    budget = 4 * (len(body) + room_for * contract.REJECTION_TEXT_BYTES + 100)
    out = Decoded(now_ms=(T0 + 60) * 1000, text_budget=budget)
    decode_record(kinesis_record("m-1", body, (T0 + 60) * 1000, 1), 131_072, RULES, out)
    assert out.accepted_count == 2400
    refused = rate_limited("m-1", out, 15, 1800)
    assert len(body) <= 131_072 and out.accepted_count == 2400 - sum(r.count for r in refused)
    assert out.accepted_count <= 2 * 1800  # two intervals at most
    kept_one_by_one = [r for r in refused if r.count == 1]
    assert len(kept_one_by_one) == room_for
    assert {r.reason for r in refused} == {contract.QuarantineReason.RATE_LIMITED}
