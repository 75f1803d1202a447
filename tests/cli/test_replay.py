"""`energy-monitoring replay` against the moto server: the processor's dead letters, the
batching function's stream failures, quarantined readings; each twice."""

from __future__ import annotations

import base64
import gzip
import json
import time
from pathlib import Path
from typing import Any

from conftest import DEVICE, T0, Pipeline, Server, envelope, event, readings, table_items, waiting
from energy_runtime import contract
from energy_runtime.batching import process_kinesis_event
from energy_runtime.settings import load_batching_settings


def replay(cli: Any, pipeline: Pipeline, *args: str) -> Any:
    return cli("replay", "--env", "dev", "--outputs", pipeline.outputs, *args, "--json")


def test_dead_letters_are_applied_once_however_often_they_are_replayed(
    cli: Any, aws: Server, pipeline: Pipeline
) -> None:
    # Hand-off messages as the batching function wrote them, in the dead-letter queue (as
    # if the processor had failed on them five times), one of them delivered twice.
    into_dlq = load_batching_settings(
        {**pipeline.environment, "HANDOFF_QUEUE_URL": pipeline.dead_letters}
    )
    records = [
        envelope(DEVICE, readings(T0 + 60 * n, 6), (T0 + 60 * n + 55) * 1000) for n in range(20)
    ]
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    for _ in range(2):
        process_kinesis_event(event(records), config=into_dlq, sqs=sqs, s3=s3)
    found = waiting(aws, pipeline.dead_letters)
    assert found >= 2

    dry = replay(cli, pipeline, "--dead-letters", "--dry-run")
    assert dry.code == 0, dry.err
    assert (dry.json()["found"], dry.json()["replayed"]) == (found, 0)
    assert table_items(aws, pipeline.table) == []

    first = replay(cli, pipeline, "--dead-letters")
    assert first.code == 0, first.err
    assert first.json()["applied"] == found and first.json()["still_failing"] == 0
    assert waiting(aws, pipeline.dead_letters) == 0
    after_first = table_items(aws, pipeline.table)
    # The closed interval 11:00-11:15 holds its 50 readings once, the copy merged.
    (closed,) = [
        i for i in after_first if i["sk"]["S"] == contract.interval_sk(T0 // 900 * 900_000)
    ]
    assert int(closed["reading_count"]["N"]) == 50
    latest = next(i for i in after_first if i["sk"]["S"] == contract.LATEST_SK)
    assert float(latest["energy_wh"]["N"]) == 5000.0 + (T0 + 60 * 19 + 50 - T0) / 5

    # The same messages again (a second redrive of the same failure): nothing changes.
    process_kinesis_event(event(records), config=into_dlq, sqs=sqs, s3=s3)
    second = replay(cli, pipeline, "--dead-letters")
    assert second.code == 0, second.err
    assert table_items(aws, pipeline.table) == after_first  # byte for byte
    assert replay(cli, pipeline, "--dead-letters").json()["found"] == 0


def test_a_stream_failure_is_read_back_from_the_stream_and_handed_off(
    cli: Any, aws: Server, pipeline: Pipeline
) -> None:
    kinesis = aws.client("kinesis")
    now_s = int(time.time()) - 600
    sequences = []
    for n in range(3):
        data = envelope(DEVICE, readings(now_s + 60 * n, 6), (now_s + 60 * n + 55) * 1000)
        put = kinesis.put_record(StreamARN=pipeline.stream_arn, PartitionKey=DEVICE, Data=data)
        sequences.append(put)
    shard = sequences[0]["ShardId"]
    info = {
        "shardId": shard,
        "startSequenceNumber": sequences[0]["SequenceNumber"],
        "endSequenceNumber": sequences[-1]["SequenceNumber"],
        "approximateArrivalOfFirstRecord": "2026-12-01T10:00:00Z",
        "batchSize": 3,
        "streamArn": pipeline.stream_arn,
    }
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=pipeline.failures, MessageBody=json.dumps({"KinesisBatchInfo": info}))

    result = replay(cli, pipeline, "--stream-failures")
    assert result.code == 0, result.err
    outcome = result.json()
    assert (outcome["found"], outcome["replayed"], outcome["applied"]) == (1, 3, 1)
    assert waiting(aws, pipeline.failures) == 0
    handed = sqs.receive_message(QueueUrl=pipeline.handoff, MaxNumberOfMessages=10)["Messages"]
    assert handed and DEVICE in handed[0]["Body"]


def test_a_stream_range_past_retention_says_so_and_keeps_the_record(
    cli: Any, aws: Server, pipeline: Pipeline
) -> None:
    kinesis = aws.client("kinesis")
    kept = kinesis.put_record(StreamARN=pipeline.stream_arn, PartitionKey=DEVICE, Data=b"{}")
    # A range that begins before the oldest record the stream still holds.
    info = {
        "shardId": kept["ShardId"],
        "startSequenceNumber": str(int(kept["SequenceNumber"]) - 10**20),
        "endSequenceNumber": str(int(kept["SequenceNumber"]) - 10**19),
        "approximateArrivalOfFirstRecord": "2026-11-01T10:00:00Z",
        "batchSize": 10,
        "streamArn": pipeline.stream_arn,
    }
    aws.client("sqs").send_message(
        QueueUrl=pipeline.failures, MessageBody=json.dumps({"KinesisBatchInfo": info})
    )
    result = replay(cli, pipeline, "--stream-failures")
    assert result.code == 1
    outcome = result.json()
    assert outcome["expired"] == 1 and outcome["applied"] == 0
    (note,) = outcome["notes"]
    assert "past the stream's retention" in note and "raw archive" in note
    time.sleep(0.1)
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=pipeline.failures, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 1  # kept, not deleted


def test_quarantined_readings_pass_after_a_fix_and_nothing_is_quarantined_twice(
    cli: Any, aws: Server, pipeline: Pipeline
) -> None:
    # A decoder that refused 900 W as implausible: the fix is the function's setting now.
    strict = load_batching_settings({**pipeline.environment, "MAX_POWER_W": "500"})
    records = [envelope(DEVICE, readings(T0 + 60 * n, 6, power_w=900.0), (T0 + 60 * n + 55) * 1000)
               for n in range(5)]  # fmt: skip
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    process_kinesis_event(event(records), config=strict, sqs=sqs, s3=s3)
    quarantined = s3.list_objects_v2(Bucket=pipeline.bucket, Prefix=contract.QUARANTINE_PREFIX)
    objects = sorted(o["Key"] for o in quarantined.get("Contents", []))
    assert objects

    window = ("--from", "2026-11-18T11:00Z", "--to", "2026-11-18T12:00Z")
    dry = replay(cli, pipeline, "--quarantine", *window, "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.json()["found"] == dry.json()["replayed"] == 30
    result = replay(cli, pipeline, "--quarantine", *window)
    assert result.code == 0, result.err
    assert (result.json()["applied"], result.json()["still_failing"]) == (30, 0)
    handed = sqs.receive_message(QueueUrl=pipeline.handoff, MaxNumberOfMessages=10)["Messages"]
    assert handed and DEVICE in handed[0]["Body"]
    after = s3.list_objects_v2(Bucket=pipeline.bucket, Prefix=contract.QUARANTINE_PREFIX)
    assert sorted(o["Key"] for o in after["Contents"]) == objects  # no second copy


def test_replay_wants_one_source_and_a_range_for_the_quarantine(cli: Any, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text("{}")
    both = cli(
        "replay", "--env", "dev", "--outputs", outputs, "--dead-letters", "--stream-failures"
    )
    assert both.code == 1 and "give one of" in both.err
    open_ended = cli("replay", "--env", "dev", "--outputs", outputs, "--quarantine", "--from", "x")
    assert open_ended.code == 1 and "--from and --to" in open_ended.err


def test_a_gzip_message_refused_before_it_inflated_replays_as_the_meter_sent_it(
    cli: Any, aws: Server, pipeline: Pipeline
) -> None:
    """Over a batch's text budget (here, a function with 1 MB: a 32 KiB share per device)
    a meter's gzip messages are quarantined as sent, in base64; a replay with the budget
    back sends those bytes. A message that does not inflate stays in the quarantine."""
    tiny = load_batching_settings({**pipeline.environment, contract.LAMBDA_MEMORY_VARIABLE: "1"})
    texts = [json.dumps({"readings": readings(T0 + 60 * n, 6)}).encode() for n in range(100)]
    payloads = [gzip.compress(text, mtime=0) for text in texts] + [gzip.compress(texts[0])[:-5]]
    records = [
        json.dumps(
            {"device_id": DEVICE, "received_at": (T0 + 60 * n + 55) * 1000,
             "payload": base64.b64encode(payload).decode()}
        ).encode()
        for n, payload in enumerate(payloads)
    ]  # fmt: skip
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    process_kinesis_event(event(records), config=tiny, sqs=sqs, s3=s3)
    share = tiny.max_batch_text_bytes // contract.DEVICE_SHARE_OF_BATCH_TEXT
    read = share // len(texts[0])  # the messages that fit the device's share
    assert 0 < read < 100

    window = ("--from", "2026-11-18T11:00Z", "--to", "2026-11-18T14:00Z")
    result = replay(cli, pipeline, "--quarantine", *window)
    assert result.code == 1, result.err  # one line still fails
    outcome = result.json()  # stdout is the result alone: the handlers' metrics go to stderr
    assert outcome["found"] == outcome["replayed"] == 100 - read + 1
    assert (outcome["applied"], outcome["still_failing"]) == (100 - read, 1)  # the cut one
