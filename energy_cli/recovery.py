"""Re-driving what the pipeline could not process, through the handlers' own code.

Each replay runs the runtime's event processing (`process_sqs_event`,
`process_kinesis_event`) in this process, with the function's own settings (its Lambda
configuration, or the local pipeline's record of it), on events shaped as Lambda delivers
them. Everything in those paths is idempotent, so a replay run twice changes nothing the
second time:

- dead letters: hand-off messages in the processor's dead-letter queue. Applied ones are
  deleted from it; the ones that fail again stay there.
- stream failures: the batching function's on-failure records (Lambda's
  `KinesisBatchInfo`): the shard range is read back from the stream while the stream still
  retains it, and the batch handed off again. A range past the retention is reported as
  expired and its record kept (the raw archive still has those records).
- quarantine: quarantined readings of a time range, after a decoder fix. They are decoded
  again; what passes is handed off, what fails stays where it is (a replay writes no
  second copy into the quarantine).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from energy_runtime import contract

from energy_cli.aws import Clients, error_code
from energy_cli.environment import Environment
from energy_cli.functions import function_environment

SQS_BATCH = 10  # ReceiveMessage's limit
KINESIS_EVENT_RECORDS = 1000  # records per replayed batching event
VISIBILITY_S = 120  # a message being replayed is hidden this long from other consumers


@dataclass
class Outcome:
    source: str
    found: int = 0  # messages, batches or quarantined readings found
    replayed: int = 0  # handed to the handler
    applied: int = 0  # processed without failure
    still_failing: int = 0
    expired: int = 0  # stream ranges past the stream's retention
    skipped: int = 0  # not replayable (excerpts of oversized input)
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _runtime_logs_to_stderr() -> None:
    """The handlers log JSON lines to stdout (Lambda's way); here stdout is the command's
    result, so their lines go to stderr."""
    import logging

    for name, logger in logging.Logger.manager.loggerDict.items():
        if name.startswith("energy-") and isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(_STDERR)


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (a test or a pager may swap it)."""

    def write(self, text: str) -> int:
        import sys

        return sys.stderr.write(text)

    def flush(self) -> None:
        import sys

        sys.stderr.flush()


_STDERR: Any = _CurrentStderr()


def _metrics_to_stderr() -> contextlib.AbstractContextManager[Any]:
    """The handlers print their metrics (EMF JSON) to stdout too, for the same reason."""
    return contextlib.redirect_stdout(_STDERR)


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def messages_waiting(sqs: Any, url: str) -> int:
    """Messages visible in the queue (SQS's approximate count)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _messages(sqs: Any, url: str, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of the queue's messages, at most `limit` in all (what was waiting when the
    replay began: a message that fails again is not picked up twice in one run)."""
    seen: set[str] = set()
    while len(seen) < limit:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(SQS_BATCH, limit - len(seen)),
            VisibilityTimeout=VISIBILITY_S,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        )
        batch = [m for m in response.get("Messages", []) if m["MessageId"] not in seen]
        if not batch:
            return
        seen.update(m["MessageId"] for m in batch)
        yield batch


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    if messages:
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
            ],
        )


def dead_letters(
    environment: Environment, clients: Clients, *, dry_run: bool, progress: Callable[[int], None]
) -> Outcome:
    from energy_runtime.processor import process_sqs_event
    from energy_runtime.settings import load_processor_settings

    _runtime_logs_to_stderr()

    sqs = clients.client("sqs")
    url = environment.output(contract.Output.HANDOFF_DEAD_LETTER_QUEUE_URL)
    outcome = Outcome("dead-letters", found=messages_waiting(sqs, url), dry_run=dry_run)
    if dry_run or not outcome.found:
        return outcome
    config = load_processor_settings(
        function_environment(environment, clients, contract.Output.PROCESSOR_FUNCTION_NAME)
    )
    arn, region = _queue_arn(sqs, url), clients.region
    names = ("dynamodb", "s3", "sns", "iot")
    dynamodb, s3, sns, iot = (clients.client(name) for name in names)
    for batch in _messages(sqs, url, outcome.found):
        event = {"Records": [_sqs_record(m, arn, region) for m in batch]}
        with _metrics_to_stderr():
            result = process_sqs_event(
                event, config=config, dynamodb=dynamodb, s3=s3, sns=sns, iot=iot
            )
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        _delete(sqs, url, [m for m in batch if m["MessageId"] not in failed])
        outcome.replayed += len(batch)
        outcome.applied += len(batch) - len(failed)
        outcome.still_failing += len(failed)
        progress(len(batch))
    return outcome


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A message as Lambda's SQS event source delivers it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _kinesis_record(
    *, data: bytes, partition_key: str, sequence: str, arrival_s: float, stream_arn: str,
    region: str,
) -> dict[str, Any]:  # fmt: skip
    """A stream record as Lambda's Kinesis event source delivers it."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival_s,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"replay:{sequence}",
        "eventName": "aws:kinesis:record",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


class StreamRangeExpired(Exception):
    pass


def _read_range(kinesis: Any, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of a KinesisBatchInfo range, or StreamRangeExpired."""
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    try:
        # By name (from the ARN), which every Kinesis API version and emulator takes.
        iterator = kinesis.get_shard_iterator(
            StreamName=str(info["streamArn"]).rsplit("/", 1)[-1],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
    except Exception as error:
        if error_code(error) in ("ResourceNotFoundException", "InvalidArgumentException"):
            raise StreamRangeExpired(str(error)) from None
        raise
    records: list[dict[str, Any]] = []
    past_end = False
    while iterator and not past_end:
        try:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        except Exception as error:
            if error_code(error) in ("TrimmedDataAccessException", "ExpiredIteratorException"):
                raise StreamRangeExpired(str(error)) from None
            raise
        for record in page["Records"]:
            if int(record["SequenceNumber"]) > end:
                past_end = True
                break
            records.append(record)
        if not page["Records"] and not page.get("MillisBehindLatest"):
            break
        iterator = page.get("NextShardIterator")
    # The range's first record must still be there: a trimmed shard starts later.
    if not records or int(records[0]["SequenceNumber"]) != start:
        raise StreamRangeExpired(f"the records from {start} are no longer in the stream")
    return records


def stream_failures(
    environment: Environment, clients: Clients, *, dry_run: bool, progress: Callable[[int], None]
) -> Outcome:
    from energy_runtime.batching import process_kinesis_event
    from energy_runtime.settings import load_batching_settings

    _runtime_logs_to_stderr()

    sqs, kinesis, s3 = clients.client("sqs"), clients.client("kinesis"), clients.client("s3")
    url = environment.output(contract.Output.STREAM_FAILURE_QUEUE_URL)
    outcome = Outcome("stream-failures", found=messages_waiting(sqs, url), dry_run=dry_run)
    if not outcome.found:
        return outcome
    config = None
    for batch in _messages(sqs, url, outcome.found):
        done: list[dict[str, Any]] = []
        for message in batch:
            info = json.loads(message["Body"]).get("KinesisBatchInfo")
            if not isinstance(info, dict):
                outcome.skipped += 1
                outcome.notes.append(f"message {message['MessageId']}: no KinesisBatchInfo")
                continue
            try:
                records = _read_range(kinesis, info)
            except StreamRangeExpired as expired:
                outcome.expired += 1
                outcome.notes.append(
                    f"shard {info.get('shardId')} {info.get('startSequenceNumber')}.."
                    f"{info.get('endSequenceNumber')} (first record "
                    f"{info.get('approximateArrivalOfFirstRecord')}) is past the stream's "
                    f"retention ({expired}): its records are in the raw archive only"
                )
                continue
            if dry_run:
                outcome.replayed += len(records)
                continue
            if config is None:
                config = load_batching_settings(
                    function_environment(
                        environment, clients, contract.Output.BATCHING_FUNCTION_NAME
                    )
                )
            events = [
                _kinesis_record(
                    data=r["Data"], partition_key=r["PartitionKey"], sequence=r["SequenceNumber"],
                    arrival_s=r["ApproximateArrivalTimestamp"].timestamp(),
                    stream_arn=info["streamArn"], region=clients.region,
                )
                for r in records
            ]  # fmt: skip
            failures = 0
            for start in range(0, len(events), KINESIS_EVENT_RECORDS):
                chunk = {"Records": events[start : start + KINESIS_EVENT_RECORDS]}
                with _metrics_to_stderr():
                    result = process_kinesis_event(chunk, config=config, sqs=sqs, s3=s3)
                failures += len(result.get("batchItemFailures", []))
            outcome.replayed += len(events)
            if failures:
                outcome.still_failing += 1
            else:
                outcome.applied += 1
                done.append(message)
        if not dry_run:
            _delete(sqs, url, done)
        progress(len(batch))
    return outcome


class _QuarantineCounter:
    """Stands in for S3 under the batching handler during a quarantine replay: what it
    would quarantine again is already in the quarantine, so it is counted, not written."""

    def __init__(self) -> None:
        self.lines = 0

    def put_object(self, *, Body: bytes, **_: Any) -> dict[str, Any]:
        self.lines += Body.count(b"\n")
        return {}


def _hours(start: dt.datetime, end: dt.datetime) -> Iterator[int]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        yield int(hour.timestamp() * 1000)
        hour += dt.timedelta(hours=1)


def _quarantined(
    s3: Any, bucket: str, prefix: str, start: dt.datetime, end: dt.datetime
) -> Iterator[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()  # a retried batch can file a line twice
    paginator = s3.get_paginator("list_objects_v2")
    for hour_ms in _hours(start, end):
        for page in paginator.paginate(
            Bucket=bucket, Prefix=prefix + contract.partition_path(hour_ms)
        ):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                for text in body.decode("utf-8", errors="replace").splitlines():
                    try:
                        line = json.loads(text)
                    except ValueError:
                        continue
                    identity = (
                        line.get("event_source_arn"),
                        line.get("sequence_number"),
                        line.get("index"),
                        line.get("device_id"),
                    )
                    if identity not in seen:
                        seen.add(identity)
                        yield line


def quarantine(
    environment: Environment,
    clients: Clients,
    *,
    start: dt.datetime,
    end: dt.datetime,
    dry_run: bool,
    progress: Callable[[int], None],
) -> Outcome:
    from energy_runtime.batching import process_kinesis_event
    from energy_runtime.settings import load_batching_settings

    _runtime_logs_to_stderr()

    config = load_batching_settings(
        function_environment(environment, clients, contract.Output.BATCHING_FUNCTION_NAME)
    )
    bucket = environment.output(contract.Output.ARCHIVE_BUCKET_NAME)
    s3 = clients.client("s3")
    outcome = Outcome("quarantine", dry_run=dry_run)
    events: list[dict[str, Any]] = []
    for line in _quarantined(s3, bucket, config.quarantine_prefix, start, end):
        outcome.found += 1
        raw, device, received = line.get("raw"), line.get("device_id"), line.get("received_at")
        if (
            not isinstance(raw, str)
            or raw.endswith(contract.EXCERPT_MARK)
            or line.get(contract.QUARANTINE_COUNT, 1) != 1  # stands for readings not kept
            or not isinstance(device, str)
            or not isinstance(received, int)
        ):
            outcome.skipped += 1  # an excerpt, or no trusted device and receive time
            continue
        if line.get(contract.QUARANTINE_RAW_ENCODING) == contract.QUARANTINE_RAW_BASE64:
            payload = raw  # the bytes as the meter sent them (a gzip payload)
        else:
            payload = base64.b64encode(raw.encode()).decode()
        envelope = {"device_id": device, "received_at": received, "payload": payload}
        events.append(
            _kinesis_record(
                data=json.dumps(envelope).encode(), partition_key=device,
                sequence=str(line.get("sequence_number") or "0"),
                arrival_s=received / 1000, stream_arn=str(line.get("event_source_arn") or ""),
                region=clients.region,
            )
        )  # fmt: skip
    if dry_run:
        outcome.replayed = len(events)
        return outcome
    sqs = clients.client("sqs")
    for first in range(0, len(events), KINESIS_EVENT_RECORDS):
        chunk = events[first : first + KINESIS_EVENT_RECORDS]
        counter = _QuarantineCounter()
        with _metrics_to_stderr():
            process_kinesis_event({"Records": chunk}, config=config, sqs=sqs, s3=counter)
        outcome.replayed += len(chunk)
        outcome.still_failing += counter.lines
        outcome.applied += len(chunk) - counter.lines
        progress(len(chunk))
    return outcome
