"""The processor against moto: idempotent state, late data, defects, alerts, failures."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pyarrow.parquet as pq
import pytest
from energy_runtime import contract, processor, queries
from energy_runtime.contract import INTERVAL_COLUMNS
from runtime_fixtures import (
    T0,
    Cloud,
    RealClient,
    archive_rows,
    assert_archive_agrees_with_table,
    intervals_using,
    records_of,
    series,
    sqs_record,
)

START = T0 - T0 % 900  # an interval boundary (15 minutes)


def count_writes(cloud: Cloud) -> list[str]:
    calls: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["Item"]["sk"]["S"])

    cloud.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", record)
    return calls


def energies(cloud: Cloud, device: str) -> list[tuple[str, float, int]]:
    return [
        (r["interval_start"], r["energy_wh"], r["reading_count"])
        for r in queries.device_intervals(cloud.table, device)
    ]


def test_energy_per_interval_comes_from_register_deltas(cloud: Cloud) -> None:
    cloud.pipeline(series("m-1", START, 200))  # 200 readings, 2 Wh apart, 33 minutes
    rows = energies(cloud, "m-1")
    assert rows == [
        (queries.iso_utc(START * 1000), 178.0, 90),
        (queries.iso_utc((START + 900) * 1000), 180.0, 90),
        (queries.iso_utc((START + 1800) * 1000), 40.0, 20),
    ]
    assert sum(e for _, e, _ in rows) == 2.0 * 199  # the register delta, exactly
    latest = queries.device_latest(cloud.table, "m-1")
    assert latest is not None and latest["energy_wh"] == 5000.0 + 2.0 * 199
    assert latest["ts"] == queries.iso_utc((START + 1990) * 1000)


def test_replaying_any_batch_writes_nothing_and_leaves_the_table_identical(cloud: Cloud) -> None:
    records = series("m-1", START, 200) + series("m-2", START, 150, seq=100)
    first = cloud.pipeline(records[:30])
    second = cloud.pipeline(records[30:])
    table, objects = cloud.table_items(), cloud.keys("processed/")
    writes = count_writes(cloud)
    for handoff in (first, second, first + second):
        assert cloud.run_processor(handoff) == {"batchItemFailures": []}
    cloud.pipeline(records)  # the whole stream again, re-batched by the batching function
    assert writes == []
    assert cloud.table_items() == table
    assert cloud.keys("processed/") == objects


def test_late_readings_merge_into_closed_intervals_and_days(cloud: Cloud) -> None:
    # Two devices get the same readings; m-late gets 5 of them an hour late.
    readings = [
        {"ts": START - 1800 + 10 * i, "energy_wh": 100.0 + 3 * i, "power_w": 1080.0}
        for i in range(400)
    ]
    held_back = {20, 21, 95, 180, 181}  # in three different, by then closed, intervals
    cloud.pipeline(records_of("m-ref", readings))
    cloud.pipeline(records_of("m-late", [r for i, r in enumerate(readings) if i not in held_back]))
    before = energies(cloud, "m-late")
    cloud.pipeline(records_of("m-late", [readings[i] for i in sorted(held_back)], seq=1000))
    assert energies(cloud, "m-late") == energies(cloud, "m-ref") != before
    assert queries.device_daily_energy(cloud.table, "m-late") == queries.device_daily_energy(
        cloud.table, "m-ref"
    )


def test_a_day_item_is_written_when_the_day_closes_and_fixed_by_late_data(cloud: Cloud) -> None:
    midnight = (T0 // 86_400 + 1) * 86_400
    readings = [
        {"ts": midnight - 600 + 10 * i, "energy_wh": 10.0 + i, "power_w": 360.0} for i in range(120)
    ]
    late = readings.pop(59)  # 23:59:50, the last reading of the day
    cloud.pipeline(records_of("m-1", readings))
    day = queries.iso_utc((midnight - 600) * 1000)[:10]
    day_item = cloud.dynamodb.get_item(
        TableName="energy", Key={"pk": {"S": "m-1"}, "sk": {"S": f"LDAY#{day}"}}
    )["Item"]
    assert float(day_item["energy_wh"]["N"]) == 58.0  # up to 23:59:40
    cloud.pipeline(records_of("m-1", [late], seq=500))
    daily = queries.device_daily_energy(cloud.table, "m-1")
    assert daily[day] == 59.0 and sum(daily.values()) == 119.0


def test_a_meter_swap_loses_at_most_the_lookback_and_never_goes_negative(cloud: Cloud) -> None:
    before = [
        {"ts": START + 10 * i, "energy_wh": 90_000.0 + 2 * i, "power_w": 720.0} for i in range(60)
    ]
    after = [
        {"ts": START + 600 + 10 * i, "energy_wh": 3.0 + 2 * i, "power_w": 720.0} for i in range(60)
    ]
    cloud.pipeline(records_of("m-1", before + after))
    rows = energies(cloud, "m-1")
    assert all(e >= 0 for _, e, _ in rows)
    total = sum(e for _, e, _ in rows)
    assert 2 * 59 + 2 * 59 - 2 * 3 <= total <= 2 * 59 + 2 * 59  # at most 3 readings lost


def test_spurious_backward_values_count_nothing_and_do_not_rebase(cloud: Cloud) -> None:
    readings = [{"ts": START + 10 * i, "energy_wh": 500.0 + i, "power_w": 360.0} for i in range(60)]
    glitched = [dict(r) for r in readings]
    glitched[20]["energy_wh"] = 12.0
    glitched[40]["energy_wh"] = 0.0
    glitched[41]["energy_wh"] = 0.0
    cloud.pipeline(records_of("m-ref", readings))
    cloud.pipeline(records_of("m-glitch", glitched))
    assert sum(e for _, e, _ in energies(cloud, "m-glitch")) == 59.0
    assert energies(cloud, "m-glitch") == energies(cloud, "m-ref")


def test_power_spikes_show_in_the_maximum_and_implausible_ones_are_quarantined(
    cloud: Cloud,
) -> None:
    readings = [{"ts": START + 10 * i, "energy_wh": 500.0 + i, "power_w": 360.0} for i in range(30)]
    readings[10]["power_w"] = 9_000.0
    readings[11]["power_w"] = 900_000.0
    cloud.pipeline(records_of("m-1", readings))
    [row] = queries.device_intervals(cloud.table, "m-1")
    assert row["power_max_w"] == 9000.0 and row["reading_count"] == 29
    assert row["energy_wh"] == 29.0  # the quarantined reading's energy is in the next delta
    [key] = cloud.keys("quarantine/")
    line = json.loads(cloud.s3.get_object(Bucket=cloud.bucket, Key=key)["Body"].read())
    assert line["reason"] == "implausible_power"


def test_parquet_rows_match_the_glue_columns_and_the_table(cloud: Cloud) -> None:
    records = series("m-1", START, 200) + series("m-2", START + 300, 100, seq=100)
    cloud.pipeline(records[:10])
    cloud.pipeline(records[10:25])
    cloud.pipeline(records[25:])
    rows: list[dict[str, Any]] = []
    for key in cloud.keys("processed/intervals/"):
        assert "/year=2026/month=11/day=18/hour=" in key
        body = io.BytesIO(cloud.s3.get_object(Bucket=cloud.bucket, Key=key)["Body"].read())
        # A codec the managed SDK for pandas layer's pyarrow is built with (no zstd there).
        metadata = pq.ParquetFile(body).metadata
        codecs = {
            metadata.row_group(g).column(c).compression
            for g in range(metadata.num_row_groups)
            for c in range(metadata.num_columns)
        }
        assert codecs == {"SNAPPY"}
        table = pq.read_table(body)
        glue_types = {
            "string": "string",
            "timestamp": "timestamp[ms, tz=UTC]",
            "int": "int32",
            "bigint": "int64",
            "double": "double",
        }
        assert [(f.name, str(f.type)) for f in table.schema] == [
            (name, glue_types[kind]) for name, kind in INTERVAL_COLUMNS
        ]
        rows.extend(table.to_pylist())
    best: dict[tuple[str, Any], dict[str, Any]] = {}
    for row in rows:  # what Athena's max_by(..., revision) picks
        key = (row["device_id"], row["interval_start"])
        if key not in best or row["revision"] > best[key]["revision"]:
            best[key] = row
    for device in ("m-1", "m-2"):
        expected = [(e, n) for _, e, n in energies(cloud, device)]
        got = [
            (r["energy_wh"], r["reading_count"])
            for k, r in sorted(best.items(), key=lambda kv: kv[0][1])
            if k[0] == device
        ]
        assert got == expected


def _published(cloud: Cloud) -> list[dict[str, Any]]:
    return [json.loads(json.loads(m["Body"])["Message"]) for m in cloud.drain_alert_queue()]


def _alert_messages(cloud: Cloud) -> list[dict[str, Any]]:
    """The alerts published (not their resolutions)."""
    return [m for m in _published(cloud) if m["status"] == "alert"]


def _alerts_and_resolutions(cloud: Cloud, kind: str) -> tuple[list[str], list[str]]:
    """The interval starts the alerts of `kind` name, and the ones their resolutions do."""
    published = [m for m in _published(cloud) if m["kind"] == kind]
    return (
        [m["interval_start"] for m in published if m["status"] == "alert"],
        [m["interval_start"] for m in published if m["status"] == "resolved"],
    )


@pytest.fixture
def alert_queue(cloud: Cloud) -> Cloud:
    url = cloud.sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = cloud.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    cloud.sns.subscribe(TopicArn=cloud.processor.alert_topic_arn, Protocol="sqs", Endpoint=arn)

    def drain() -> list[dict[str, Any]]:
        got = cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return got

    cloud.drain_alert_queue = drain  # type: ignore[attr-defined]
    return cloud


def test_high_usage_alerts_once_per_device_and_period_whatever_the_replays(
    alert_queue: Cloud,
) -> None:
    cloud = alert_queue
    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    records = series("m-1", START, 360, step_wh=4.0)  # 360 Wh per interval, 4 intervals
    handoffs = cloud.pipeline(records[:20]) + cloud.pipeline(records[20:])
    cloud.run_processor(handoffs)
    messages = _alert_messages(cloud)
    assert [(m["device_id"], m["kind"]) for m in messages] == [("m-1", "high_usage")]


def test_an_interval_above_the_threshold_claims_its_alert_once_not_every_batch(
    alert_queue: Cloud,
) -> None:
    """A failed conditional put costs a write unit: once the open interval is above the
    threshold, later batches of it do not try to claim its alert again."""
    cloud = alert_queue
    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    writes = count_writes(cloud)
    records = series("m-1", START, 90, step_wh=4.0)  # 356 Wh in one interval
    for i in range(0, len(records), 3):  # five batches of 18 readings
        cloud.pipeline(records[i : i + 3])
    assert [m["kind"] for m in _alert_messages(cloud)] == ["high_usage"]
    assert [sk for sk in writes if sk.startswith("ALERT#")] == [
        f"ALERT#high_usage#{queries.iso_utc(START * 1000)}"
    ] * 2  # claimed, then sent


EARLIER_WEEKDAYS = [7, 6, 5, 2, 1]  # START is a Wednesday: the weekdays before, not Sat/Sun
DAY_S = 86_400


def earlier(slot_s: int, wh: float, days: list[int] = EARLIER_WEEKDAYS) -> list[tuple[int, float]]:
    return [(slot_s - back * DAY_S, wh) for back in days]


def test_unusual_usage_compares_with_the_same_interval_on_earlier_days(
    alert_queue: Cloud,
) -> None:
    """Ten times the device's usual 90 Wh at 11:00 is unusual; its daily 800 Wh peak at
    12:00 (cooking, every day) is not, though it is far above the hours before it. (With
    no tolerance in time: an hour from the daily peak, 11:00 is otherwise usual.)"""
    cloud = alert_queue
    cloud.processor = replace(cloud.processor, unusual_tolerance_minutes=0)
    weekend = [(START - back * DAY_S, 900.0) for back in (3, 4)]  # not a weekday's normal
    usual = earlier(START, 90.0) + earlier(START + 3600, 800.0) + weekend
    today = [(START, 900.0), (START + 3600, 850.0)]
    cloud.pipeline(records_of("m-1", intervals_using(usual + today)))
    # (The weekend's 900 Wh, the meter's first weekend, is judged against the weekdays
    # before it, no weekend being stored yet: unusual too. Today is what this is about.)
    messages = [m for m in _alert_messages(cloud)
                if m["interval_start"] >= queries.iso_utc(START * 1000)]  # fmt: skip
    assert [(m["kind"], m["interval_start"]) for m in messages] == [
        ("unusual_usage", queries.iso_utc(START * 1000))
    ]
    assert messages[0]["expected_wh"] == pytest.approx(89.0, abs=1)
    assert messages[0]["robust_z"] > 4


def night(start_s: int, wh: float, intervals: int) -> list[tuple[int, float]]:
    return [(start_s + k * 900, wh) for k in range(intervals)]


@pytest.mark.parametrize(("hours", "alerts_sent"), [(1.75, 0), (2.0, 1), (5.0, 1)])
def test_unusual_usage_alerts_once_when_it_has_lasted_the_sustained_length(
    alert_queue: Cloud, hours: float, alerts_sent: int
) -> None:
    """A heater left on (500 Wh every 15 minutes where the device uses 40): one alert once
    it has lasted two hours (8 intervals), naming its start, however long it goes on, and
    one resolution when it is off; 1 h 45 min of it (a long meal, a wash) raises nothing."""
    cloud = alert_queue
    cloud.processor = replace(cloud.processor, unusual_sustain_intervals=8)
    calm = [item for back in EARLIER_WEEKDAYS
            for item in night(START - back * DAY_S, 40.0, 24)]  # fmt: skip
    heater = night(START, 500.0, int(hours * 4))
    after = night(START + len(heater) * 900, 40.0, 24 - len(heater))
    cloud.pipeline(records_of("m-1", intervals_using(calm + heater + after)))
    published = [m for m in _published(cloud) if m["kind"] == "unusual_usage"]
    messages = [m for m in published if m["status"] == "alert"]
    assert len(messages) == alerts_sent
    # The first calm interval after it clears it, naming the alert's start.
    cleared = [m["interval_start"] for m in published if m["status"] == "resolved"]
    assert cleared == [queries.iso_utc(START * 1000)] * alerts_sent
    if messages:
        assert messages[0]["interval_start"] == queries.iso_utc(START * 1000)
        assert messages[0]["energy_wh"] == pytest.approx(8 * 500.0, rel=0.01)
        assert messages[0]["expected_wh"] == pytest.approx(8 * 40.0, rel=0.05)
        assert "in 2 h against a usual 0.32 kWh" in messages[0]["text"]


def test_no_device_is_unusual_before_its_warm_up(alert_queue: Cloud) -> None:
    cloud = alert_queue
    two_days = earlier(START, 90.0, EARLIER_WEEKDAYS[-2:])  # the warm-up is three
    cloud.pipeline(records_of("m-1", intervals_using([*two_days, (START, 900.0)])))
    assert _alert_messages(cloud) == []


def test_an_interval_closed_short_of_readings_is_judged_again_when_they_arrive(
    alert_queue: Cloud,
) -> None:
    """A fault held the spike's readings back (a dead letter re-driven later): the interval
    closed without them and was judged calm; their late arrival raises the alert."""
    cloud = alert_queue
    readings = intervals_using([*earlier(START, 90.0), (START, 900.0)])
    spike = [r for r in readings if START <= r["ts"] < START + 900]
    held_back = spike[1:]
    cloud.pipeline(records_of("m-1", [r for r in readings if r not in held_back]))
    assert _alert_messages(cloud) == []  # closed with one of its readings: calm
    cloud.pipeline(records_of("m-1", held_back, seq=5000))
    messages = _alert_messages(cloud)
    assert [m["kind"] for m in messages] == ["unusual_usage"]
    assert messages[0]["interval_start"] == queries.iso_utc(START * 1000)


def test_the_energy_of_a_gap_does_not_make_the_interval_after_it_high_usage(
    alert_queue: Cloud,
) -> None:
    """Readings held back for an hour: the first reading after them counts the hour's rise
    (conserved in the table), but the interval's own use is what is judged."""
    cloud = alert_queue
    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    readings = [  # 45 Wh per 15-minute interval, for two hours
        {"ts": START + 10 * i, "energy_wh": 1000.0 + 0.5 * i, "power_w": 180.0}
        for i in range(90 * 8)
    ]
    held_back = readings[90 : 90 * 5]  # the second to fifth intervals
    cloud.pipeline(records_of("m-1", [r for r in readings if r not in held_back]))
    after_gap = queries.device_intervals(cloud.table, "m-1")[1]
    assert float(after_gap["energy_wh"]) > 100  # the gap's rise, counted after it
    cloud.pipeline(records_of("m-1", held_back, seq=5000))
    assert _alert_messages(cloud) == []


def test_a_message_that_is_not_a_handoff_is_quarantined_not_retried(cloud: Cloud) -> None:
    good = cloud.pipeline(series("m-1", START, 12))
    assert cloud.run_processor([sqs_record("poison-1", "{}"), *good]) == {"batchItemFailures": []}
    [key] = cloud.keys("quarantine/")
    assert "handoff-" in key
    assert queries.device_latest(cloud.table, "m-1") is not None


class FailingFor(RealClient):
    """The real moto client, except that writes for one device throttle."""

    def __init__(self, client: Any, device: str) -> None:
        super().__init__(client)
        self.device = device

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["Item"]["pk"]["S"] == self.device:
            from botocore.exceptions import ClientError

            raise ClientError(
                {
                    "Error": {
                        "Code": "ProvisionedThroughputExceededException",
                        "Message": "slow down",
                    }
                },
                "PutItem",
            )
        return self.client.put_item(**kwargs)


def test_transient_write_failures_fail_only_the_messages_of_that_device(cloud: Cloud) -> None:
    cloud.run_batching(series("m-ok", START, 12))
    cloud.run_batching(series("m-slow", START, 12, seq=50))
    handoffs = cloud.drain_handoff()
    response = processor.process_sqs_event(
        {"Records": handoffs},
        config=cloud.processor,
        dynamodb=FailingFor(cloud.dynamodb, "m-slow"),
        s3=cloud.s3,
        sns=cloud.sns,
    )
    slow = [h["messageId"] for h in handoffs if '"m-slow"' in h["body"]]
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in slow]}
    assert queries.device_latest(cloud.table, "m-ok") is not None
    assert queries.device_latest(cloud.table, "m-slow") is None
    assert cloud.run_processor(handoffs) == {"batchItemFailures": []}  # the retry
    assert queries.device_latest(cloud.table, "m-slow") is not None


class RacingClient:
    """The real moto client; just before the first LATEST write, another invocation
    applies other readings of the same device (a concurrent processor)."""

    def __init__(self, cloud: Cloud, rival: list[dict[str, Any]]) -> None:
        self.cloud, self.rival = cloud, rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cloud.dynamodb, name)

    def put_item(self, **kwargs: Any) -> Any:
        if self.rival and kwargs["Item"]["sk"]["S"] == "LATEST":
            rival, self.rival = self.rival, []
            assert self.cloud.run_processor(rival) == {"batchItemFailures": []}
        return self.cloud.dynamodb.put_item(**kwargs)


def test_concurrent_invocations_on_one_device_lose_nothing(cloud: Cloud) -> None:
    readings = [{"ts": START + 10 * i, "energy_wh": 100.0 + i, "power_w": 360.0} for i in range(60)]
    cloud.pipeline(records_of("m-1", readings[:6]))
    cloud.run_batching(records_of("m-1", readings[6:30], seq=100))
    mine = cloud.drain_handoff()
    cloud.run_batching(records_of("m-1", readings[30:], seq=200))
    rival = cloud.drain_handoff()
    response = processor.process_sqs_event(
        {"Records": mine},
        config=cloud.processor,
        dynamodb=RacingClient(cloud, rival),
        s3=cloud.s3,
        sns=cloud.sns,
    )
    assert response == {"batchItemFailures": []}
    assert [(e, n) for _, e, n in energies(cloud, "m-1")] == [(59.0, 60)]


def test_the_lambda_handler_reads_its_settings_and_counts_what_it_wrote(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = contract.default_environment(
        contract.PROCESSOR,
        TABLE_NAME="energy",
        ARCHIVE_BUCKET=cloud.bucket,
        ALERT_TOPIC_ARN=cloud.processor.alert_topic_arn,
        METER_GROUP_NAME=cloud.processor.meter_group_name,
        HIGH_USAGE_THRESHOLD_WH="1000",
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cloud.run_batching(series("m-1", START, 100))
    handoffs = cloud.drain_handoff()
    processor.settings.cache_clear()
    processor.metrics.clear_metrics()
    try:
        assert processor.handler({"Records": handoffs}, None) == {"batchItemFailures": []}
    finally:
        processor.settings.cache_clear()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [blob] = emf
    assert blob["service"] == "energy-processor"
    assert blob["AggregatesWritten"] == [2.0]  # one closed interval and LATEST
    assert [(e, n) for _, e, n in energies(cloud, "m-1")] == [(178.0, 90), (20.0, 10)]


class NeverProcessed(RealClient):
    """The real moto client, except that BatchGetItem never processes any key."""

    def batch_get_item(self, **kwargs: Any) -> Any:
        return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}


def test_unprocessed_keys_are_retried_then_reported_as_item_failures(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda _seconds: None)
    handoffs = cloud.pipeline(series("m-1", START, 12))
    response = processor.process_sqs_event(
        {"Records": handoffs},
        config=cloud.processor,
        dynamodb=NeverProcessed(cloud.dynamodb),
        s3=cloud.s3,
        sns=cloud.sns,
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": h["messageId"]} for h in handoffs]}


class FailingArchive:
    """The real (moto) S3 client, whose first Parquet write fails as S3 can (HTTP 500)."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.failed = s3, False

    def put_object(self, **params: Any) -> Any:
        from botocore.exceptions import ClientError

        if params["Key"].startswith(contract.INTERVALS_PREFIX) and not self.failed:
            self.failed = True
            error = {"Error": {"Code": "InternalError", "Message": "injected"}}
            raise ClientError(error, "PutObject")
        return self.s3.put_object(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


def test_rows_follow_the_commit_and_a_redelivery_completes_the_archive(cloud: Cloud) -> None:
    assert cloud.run_batching(series("m-1", START, 120)) == {"batchItemFailures": []}
    handoffs = cloud.drain_handoff()
    flaky = FailingArchive(cloud.s3)
    response = processor.process_sqs_event(
        {"Records": handoffs}, config=cloud.processor, dynamodb=cloud.dynamodb, s3=flaky,
        sns=cloud.sns,
    )  # fmt: skip
    # The items are committed, the rows are not: the messages go back to the queue.
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {
        r["messageId"] for r in handoffs
    }
    assert queries.device_intervals(cloud.table, "m-1") and archive_rows(cloud) == []
    redelivered = [
        {**r, "attributes": {**r["attributes"], "ApproximateReceiveCount": "2"}} for r in handoffs
    ]
    assert cloud.run_processor(redelivered) == {"batchItemFailures": []}
    assert_archive_agrees_with_table(cloud, ["m-1"])


def test_a_batch_that_closes_more_than_a_hundred_intervals_is_stored_whole(cloud: Cloud) -> None:
    """A meter back after a day and a half offline sends its buffer at once: the intervals
    it closes are read 100 keys at a time (BatchGetItem's limit), none refused."""
    readings = intervals_using([(START + k * 900, 50.0) for k in range(130)])
    cloud.pipeline(records_of("m-1", readings))
    rows = queries.device_intervals(cloud.table, "m-1")
    assert len(rows) == 131  # 130 closed, and the open one its closing reading began
    assert sum(int(r["reading_count"]) for r in rows) == len(readings)
    assert sum(float(r["energy_wh"]) for r in rows) == pytest.approx(130 * 50.0, abs=0.01)


def frozen_register(start_s: int, intervals: int, frozen: range) -> list[dict[str, Any]]:
    """400 W throughout (to a tenth of a watt), a reading every 10 s; the register stops
    counting for the readings
    whose index is in `frozen`."""
    readings, register = [], 2000.0
    for i in range(intervals * 90 + 1):
        if i and i not in frozen:
            register += 400 * 10 / 3600
        readings.append({"ts": start_s + 10 * i, "energy_wh": round(register, 3),
                         "power_w": 400.0 + 0.1 * (i % 2)})  # fmt: skip
    return readings


# Mid-interval; from an interval's first reading; from its second (the first still rose).
@pytest.mark.parametrize("frozen_from", [135, 180, 181])
@pytest.mark.parametrize("batches", [1, 6])
def test_a_register_that_stops_counting_alerts_once_naming_its_first_whole_interval(
    alert_queue: Cloud, frozen_from: int, batches: int
) -> None:
    """Stuck from reading `frozen_from` for 45 minutes while power reads 400 W: one alert,
    for the first interval stuck through, however many batches deliver it and when one is
    replayed; the intervals that only begin or end the freeze raise nothing."""
    cloud = alert_queue
    readings = frozen_register(START, 6, range(frozen_from, frozen_from + 270))
    records = records_of("m-1", readings)
    size = -(-len(records) // batches)
    for i in range(0, len(records), size):
        handoffs = cloud.pipeline(records[i : i + size])
    cloud.run_processor(handoffs)  # the last batch again
    published = _published(cloud)
    stuck = [m for m in published if m["kind"] == "meter_stuck" and m["status"] == "alert"]
    # The first interval whose readings after its first never counted (the first may rise).
    first_whole = START + 900 * -(-(frozen_from - 1) // 90)
    assert [m["interval_start"] for m in stuck] == [queries.iso_utc(first_whole * 1000)]
    assert stuck[0]["expected_wh"] == pytest.approx(400 * 890 / 3600, rel=0.02)
    assert stuck[0]["severity"] == "warning" and "robust_z" not in stuck[0]
    # Counting again (the first interval it counts in): cleared once, naming the alert.
    cleared = [m for m in published if m["kind"] == "meter_stuck" and m["status"] == "resolved"]
    assert [m["interval_start"] for m in cleared] == [queries.iso_utc(first_whole * 1000)]
    assert cleared[0]["text"].startswith("meter m-1: meter stuck since")
