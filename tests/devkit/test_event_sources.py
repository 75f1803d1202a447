"""Lambda's event-source-mapping semantics, driven by small handlers that fail on purpose."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devkit.emulators.event_sources import (
    Invoker,
    KinesisBatcher,
    Stats,
    _deliver,
    kinesis_event_record,
)
from devkit.runner.provision import FunctionSpec, MappingSpec

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/readings"
SPEC = FunctionSpec("Batching", "test.handler", 60, 128, {})


def mapping(**overrides: Any) -> MappingSpec:
    settings: dict[str, Any] = {
        "function": "batching",
        "source": "kinesis",
        "source_arn": STREAM_ARN,
        "source_name": "readings",
        "batch_size": 100,
        "window_s": 0,
        "bisect": True,
        "max_retry_attempts": 2,
        "max_record_age_s": 3600,
        "report_item_failures": True,
    }
    settings.update(overrides)
    return MappingSpec(**settings)


def records(count: int, *, arrived: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if arrived is None else arrived
    return [
        kinesis_event_record(
            {
                "SequenceNumber": str(1000 + i),
                "PartitionKey": f"apt-{i % 3}",
                "Data": json.dumps({"n": i}).encode(),
                "ApproximateArrivalTimestamp": now,
            },
            "shardId-000000000000",
            mapping(),
        )
        for i in range(count)
    ]


class Recorder:
    """A handler that records what it saw and fails as told."""

    def __init__(self, fail: Any = None) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, event: dict[str, Any], _context: Any) -> Any:
        sequences = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        self.calls.append(sequences)
        return self.fail(sequences, len(self.calls)) if self.fail else {"batchItemFailures": []}


def run(
    handler: Recorder, batch: list[dict[str, Any]], **settings: Any
) -> tuple[Stats, list[dict[str, Any]]]:
    stats = Stats()
    failures: list[dict[str, Any]] = []
    KinesisBatcher(mapping(**settings), Invoker(SPEC, handler, stats), failures.append).process(
        "shardId-000000000000", batch
    )
    return stats, failures


def test_event_has_the_lambda_kinesis_shape() -> None:
    record = records(1)[0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventSourceARN"] == STREAM_ARN
    assert record["eventID"] == "shardId-000000000000:1000"
    assert json.loads(base64.b64decode(record["kinesis"]["data"])) == {"n": 0}
    assert record["kinesis"]["partitionKey"] == "apt-0"


def test_success_is_one_invocation() -> None:
    handler = Recorder()
    stats, failures = run(handler, records(5))
    assert handler.calls == [["1000", "1001", "1002", "1003", "1004"]]
    assert (stats.invocations, stats.retries, failures) == (1, 0, [])


def test_partial_failure_retries_from_the_lowest_failed_sequence_number() -> None:
    def fail_once(sequences: list[str], call: int) -> dict[str, Any]:
        failed = ["1003", "1002"] if call == 1 else []
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}

    handler = Recorder(fail_once)
    stats, failures = run(handler, records(5))
    assert handler.calls == [["1000", "1001", "1002", "1003", "1004"], ["1002", "1003", "1004"]]
    assert stats.partial_failures == 1 and stats.retries == 1 and failures == []


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    def bogus(sequences: list[str], call: int) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": "nope"}] if call == 1 else []}

    handler = Recorder(bogus)
    run(handler, records(3))
    assert handler.calls == [["1000", "1001", "1002"], ["1000", "1001", "1002"]]


def test_errors_bisect_and_give_up_after_the_retry_limit() -> None:
    def poison(sequences: list[str], call: int) -> dict[str, Any]:
        if "1002" in sequences:
            raise RuntimeError("poison record")
        return {"batchItemFailures": []}

    handler = Recorder(poison)
    stats, failures = run(handler, records(4), max_retry_attempts=2)
    # The good half goes through; the half holding the poison record is split until it is
    # alone, then given up on once its retries are spent, and the shard moves on.
    succeeded = [c for c in handler.calls if "1002" not in c]
    assert sorted(s for c in succeeded for s in c) == ["1000", "1001", "1003"]
    assert stats.bisections >= 2
    assert len(failures) == 1
    info = failures[0]["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        "1002",
        "1002",
        1,
    )
    assert failures[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert stats.invocations == len(handler.calls) <= 10


def test_without_bisect_the_whole_batch_is_retried_then_sent_to_the_destination() -> None:
    handler = Recorder(lambda s, c: (_ for _ in ()).throw(RuntimeError("down")))
    _, failures = run(handler, records(3), bisect=False, max_retry_attempts=3)
    assert len(handler.calls) == 4  # the first attempt and three retries
    assert all(c == ["1000", "1001", "1002"] for c in handler.calls)
    assert failures[0]["KinesisBatchInfo"]["batchSize"] == 3


def test_records_older_than_the_maximum_age_are_not_invoked() -> None:
    handler = Recorder()
    _, failures = run(handler, records(2, arrived=time.time() - 7200), max_record_age_s=3600)
    assert handler.calls == []
    assert failures[0]["requestContext"]["condition"] == "RecordAgeExceeded"


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])[
        "Messages"
    ]
    return [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
        for m in messages
    ]


def sqs_mapping() -> MappingSpec:
    return mapping(function="processor", source="sqs", bisect=False, max_retry_attempts=-1)


def test_sqs_deletes_successes_and_returns_failures_to_the_queue(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="handoff", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for i in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    batch = receive_all(sqs, url)
    failed_id = next(m["messageId"] for m in batch if m["body"] == "m2")

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": failed_id}]}

    stats = Stats()
    _deliver(sqs, url, batch, Invoker(SPEC, handler, stats), sqs_mapping(), retry_delay_s=0)
    again = receive_all(sqs, url)
    assert [m["body"] for m in again] == ["m2"]
    assert stats.retries == 1


def test_sqs_handler_error_keeps_every_message(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="handoff")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    batch = receive_all(sqs, url)

    def handler(event: dict[str, Any], _context: Any) -> None:
        raise RuntimeError("table unavailable")

    stats = Stats()
    _deliver(sqs, url, batch, Invoker(SPEC, handler, stats), sqs_mapping(), retry_delay_s=0)
    assert sorted(m["body"] for m in receive_all(sqs, url)) == ["m0", "m1", "m2"]
    assert stats.errors == 1
