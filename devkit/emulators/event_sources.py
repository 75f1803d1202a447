"""Lambda's event source mappings, locally: one process per function, real handler in-process.

The process gets the function's resolved environment (plus AWS_ENDPOINT_URL pointing at
the moto server) before the handler module is imported, as Lambda would give it.

Kinesis (batching): per shard, records are read from TRIM_HORIZON into a pending list;
a batch is invoked when BatchSize records or 6 MB are pending, or the batching window has
passed since the first pending record. Only past successes are checkpointed: with
ReportBatchItemFailures the batch restarts at the lowest failed sequence number; a
raised error retries the batch, bisected when BisectBatchOnFunctionError is set; after
MaximumRetryAttempts retries, or once a record is older than MaximumRecordAgeInSeconds,
the batch's description goes to the on-failure destination and the shard moves on.

SQS (processor): messages are received into a batch until BatchSize, 6 MB or the window;
successes are deleted; failed messages become visible again after a short retry delay and
the queue's own redrive policy moves them to the DLQ after maxReceiveCount receives.

A restarted trigger (after a crash or a timeout, devkit/faults.py) goes on where Lambda's
event source mapping would: each shard's checkpoint is kept in a file beside the status,
so the batch in flight is read again and nothing before it; the SQS batch in flight is
kept in a lease file and made visible again at once (Lambda waits out the visibility
timeout, which the compressed clock has no room for).

Windows are in simulated time: they are divided by --time-scale.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit.faults import FaultInjector, FaultLog, FaultRates, install
from devkit.runner.provision import FunctionSpec, MappingSpec
from devkit.runner.worker import Worker, read_status

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
POLL_INTERVAL_S = 0.2  # idle polling; Lambda itself polls an idle shard once a second
Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _deadline: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline + self.timeout_s - time.monotonic()) * 1000))


@dataclass
class Stats:
    invocations: int = 0
    records: int = 0
    errors: int = 0  # invocations that raised
    partial_failures: int = 0  # invocations that reported batchItemFailures
    retries: int = 0
    bisections: int = 0
    sent_to_on_failure: int = 0  # batches (Kinesis) given up on
    busy_s: float = 0.0
    # Hand-off events (SQS): the distinct devices of each invocation, summed. The compressed
    # clock sets how they fall into invocations; the cost model takes them as given.
    device_invocations: int = 0
    restarts: int = 0  # times this trigger started again after its process died
    redelivered: int = 0  # records (Kinesis) or messages (SQS) delivered again after one


def _handoff_devices(records: list[dict[str, Any]]) -> int:
    """How many distinct devices the hand-off messages of an SQS event carry (0 for a
    Kinesis event, and for bodies that are not hand-off messages)."""
    devices: set[str] = set()
    for record in records:
        try:
            body = json.loads(record["body"])
            devices.update(str(entry["device_id"]) for entry in body.get("devices", []))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return len(devices)


class Invoker:
    def __init__(
        self,
        spec: FunctionSpec,
        handler: Handler,
        stats: Stats,
        faults: FaultInjector | None = None,
    ) -> None:
        self.spec, self.handler, self.stats, self.faults = spec, handler, stats, faults
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{spec.logical_id}"

    def __call__(self, event: dict[str, Any]) -> tuple[bool, list[str] | None]:
        """(raised, failed item identifiers or None for "all succeeded")."""
        context = LambdaContext(
            function_name=self.spec.logical_id,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            invoked_function_arn=self.function_arn,
        )
        self.stats.invocations += 1
        self.stats.records += len(event["Records"])
        self.stats.device_invocations += _handoff_devices(event["Records"])
        started = time.monotonic()
        if self.faults is not None:
            self.faults.begin_invocation()
        try:
            result = self.handler(event, context)
        except Exception as error:  # a function error, as Lambda sees it
            self.stats.errors += 1
            print(f"invocation failed: {type(error).__name__}: {error}", flush=True)
            return True, None
        finally:
            if self.faults is not None:
                self.faults.end_invocation()
            self.stats.busy_s += time.monotonic() - started
        failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
        if not failures:
            return False, None
        self.stats.partial_failures += 1
        return False, [str(f.get("itemIdentifier") or "") for f in failures]


def kinesis_event_record(
    record: dict[str, Any], shard_id: str, mapping: MappingSpec
) -> dict[str, Any]:
    arrival = record["ApproximateArrivalTimestamp"]
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": arrival.timestamp()
            if isinstance(arrival, datetime)
            else arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/local-batching",
        "awsRegion": "us-east-1",
        "eventSourceARN": mapping.source_arn,
    }


def _size(event_record: dict[str, Any]) -> int:
    return len(event_record["kinesis"]["data"]) + 400


class KinesisBatcher:
    """Runs one shard's pending records through the function with Lambda's semantics."""

    def __init__(
        self, mapping: MappingSpec, invoke: Invoker, on_failure: Callable[[dict[str, Any]], None]
    ) -> None:
        self.mapping, self.invoke, self.on_failure = mapping, invoke, on_failure

    def process(self, shard_id: str, batch: list[dict[str, Any]], now: float | None = None) -> int:
        """Handle one batch to the end (success or given up); returns records checkpointed."""
        stats = self.invoke.stats
        work: list[tuple[list[dict[str, Any]], int]] = [(batch, 0)]
        while work:
            records, attempts = work.pop(0)
            oldest = min(r["kinesis"]["approximateArrivalTimestamp"] for r in records)
            age = (now if now is not None else time.time()) - oldest
            if self.mapping.max_record_age_s >= 0 and age > self.mapping.max_record_age_s:
                self._give_up(shard_id, records, "RecordAgeExceeded", attempts)
                continue
            raised, failed = self.invoke({"Records": records})
            if not raised and failed is None:
                continue
            remaining = records
            if not raised and self.mapping.report_item_failures and failed is not None:
                sequences = [r["kinesis"]["sequenceNumber"] for r in records]
                if all(f in sequences for f in failed):
                    remaining = records[min(sequences.index(f) for f in failed) :]
            attempts += 1
            if self.mapping.max_retry_attempts >= 0 and attempts > self.mapping.max_retry_attempts:
                self._give_up(shard_id, remaining, "RetryAttemptsExhausted", attempts)
                continue
            stats.retries += 1
            if raised and self.mapping.bisect and len(remaining) > 1:
                stats.bisections += 1
                half = len(remaining) // 2
                work[:0] = [(remaining[:half], attempts), (remaining[half:], attempts)]
            else:
                work.insert(0, (remaining, attempts))
        return len(batch)

    def _give_up(
        self, shard_id: str, records: list[dict[str, Any]], condition: str, attempts: int
    ) -> None:
        self.invoke.stats.sent_to_on_failure += 1
        first, last = records[0]["kinesis"], records[-1]["kinesis"]
        self.on_failure(
            {
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": self.invoke.function_arn,
                    "condition": condition,
                    "approximateInvokeCount": attempts + 1,
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat(),
                "KinesisBatchInfo": {
                    "shardId": shard_id,
                    "startSequenceNumber": first["sequenceNumber"],
                    "endSequenceNumber": last["sequenceNumber"],
                    "approximateArrivalOfFirstRecord": datetime.fromtimestamp(
                        first["approximateArrivalTimestamp"], UTC
                    ).isoformat(),
                    "approximateArrivalOfLastRecord": datetime.fromtimestamp(
                        last["approximateArrivalTimestamp"], UTC
                    ).isoformat(),
                    "batchSize": len(records),
                    "streamArn": self.mapping.source_arn,
                },
            }
        )


def run_kinesis(worker: Worker, mapping: MappingSpec, invoke: Invoker) -> None:
    kinesis = worker.deployment.client("kinesis")
    sqs = worker.deployment.client("sqs")

    def on_failure(body: dict[str, Any]) -> None:
        if mapping.on_failure_url:
            sqs.send_message(QueueUrl=mapping.on_failure_url, MessageBody=json.dumps(body))

    batcher = KinesisBatcher(mapping, invoke, on_failure)
    shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=mapping.source_name)["Shards"]]
    checkpoint_file = _beside(worker, "checkpoints")
    checkpoints: dict[str, str] = read_status(checkpoint_file)

    def iterator(shard: str) -> str:
        where: dict[str, str] = {"ShardIteratorType": mapping.starting_position}
        if shard in checkpoints:
            where = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": checkpoints[shard],
            }
        response = kinesis.get_shard_iterator(
            StreamName=mapping.source_name, ShardId=shard, **where
        )
        return str(response["ShardIterator"])

    iterators = {s: iterator(s) for s in shards}
    resumed = invoke.stats.restarts > 0
    pending: dict[str, list[dict[str, Any]]] = {s: [] for s in shards}
    pending_bytes = dict.fromkeys(shards, 0)
    first_wall = dict.fromkeys(shards, 0.0)
    behind = dict.fromkeys(shards, 1)
    window = worker.scaled(mapping.window_s)
    last_status = 0.0
    while True:
        polled_at = time.time()
        stopping = worker.stopping.is_set()
        for shard in shards:
            room = mapping.batch_size - len(pending[shard])
            if room > 0 and not stopping:
                response = kinesis.get_records(
                    ShardIterator=iterators[shard], Limit=min(10000, room)
                )
                iterators[shard] = response["NextShardIterator"]
                behind[shard] = response.get("MillisBehindLatest", 0) if response["Records"] else 0
                for record in response["Records"]:
                    event_record = kinesis_event_record(record, shard, mapping)
                    if not pending[shard]:
                        first_wall[shard] = time.monotonic()
                    pending[shard].append(event_record)
                    pending_bytes[shard] += _size(event_record)
            while pending[shard]:
                due = time.monotonic() - first_wall[shard] >= window
                full = (
                    len(pending[shard]) >= mapping.batch_size
                    or pending_bytes[shard] >= MAX_PAYLOAD_BYTES
                )
                if not (due or full or stopping):
                    break
                batch: list[dict[str, Any]] = []
                size = 0
                for record in pending[shard]:
                    if len(batch) >= mapping.batch_size or size + _size(record) > MAX_PAYLOAD_BYTES:
                        break
                    batch.append(record)
                    size += _size(record)
                if resumed:
                    # What the dead process was working on comes first after a restart.
                    invoke.stats.redelivered += len(batch)
                    resumed = False
                batcher.process(shard, batch)
                checkpoints[shard] = batch[-1]["kinesis"]["sequenceNumber"]
                _write_json(checkpoint_file, checkpoints)
                pending[shard] = pending[shard][len(batch) :]
                pending_bytes[shard] -= size
                first_wall[shard] = time.monotonic()
        idle = not any(pending.values()) and not any(behind.values())
        if time.monotonic() - last_status > 0.2 or stopping:
            worker.write_status(
                stats=invoke.stats.__dict__,
                caught_up=idle,
                checkpoints=checkpoints,
                polled_at=polled_at,
            )
            last_status = time.monotonic()
        if stopping:
            return
        if idle:
            time.sleep(POLL_INTERVAL_S)


def run_sqs(worker: Worker, mapping: MappingSpec, invoke: Invoker, *, retry_delay_s: int) -> None:
    sqs = worker.deployment.client("sqs")
    url = mapping.source_name
    lease = _beside(worker, "inflight")
    in_flight: list[str] = read_status(lease).get("receipt_handles", [])
    for start in range(0, len(in_flight), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(in_flight[start : start + 10])
            ],
        )
    invoke.stats.redelivered += len(in_flight)
    lease.unlink(missing_ok=True)
    window = worker.scaled(mapping.window_s)
    batch: list[dict[str, Any]] = []
    size = 0
    first_wall = 0.0
    last_status = 0.0
    while True:
        stopping = worker.stopping.is_set()
        received = []
        if len(batch) < mapping.batch_size and not stopping:
            received = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, mapping.batch_size - len(batch)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in received:
                if not batch:
                    first_wall = time.monotonic()
                batch.append(
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                        "attributes": message.get("Attributes", {}),
                        "messageAttributes": message.get("MessageAttributes", {}),
                        "md5OfBody": message["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": mapping.source_arn,
                        "awsRegion": "us-east-1",
                    }
                )
                size += len(message["Body"]) + 500
        full = len(batch) >= mapping.batch_size or size >= MAX_PAYLOAD_BYTES
        if batch and (full or stopping or time.monotonic() - first_wall >= window):
            _write_json(lease, {"receipt_handles": [m["receiptHandle"] for m in batch]})
            _deliver(sqs, url, batch, invoke, mapping, retry_delay_s)
            lease.unlink(missing_ok=True)
            batch = []
            size = 0
        if time.monotonic() - last_status > 0.2 or stopping:
            queue_checked_at = time.time()
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            in_queue = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
            worker.write_status(
                stats=invoke.stats.__dict__,
                caught_up=not batch and in_queue == 0,
                in_queue=in_queue,
                polled_at=queue_checked_at,
            )
            last_status = time.monotonic()
        if stopping and not batch:
            return
        if not received and not batch:
            time.sleep(POLL_INTERVAL_S)


def _deliver(
    sqs: Any,
    url: str,
    batch: list[dict[str, Any]],
    invoke: Invoker,
    mapping: MappingSpec,
    retry_delay_s: int,
) -> None:
    raised, failed = invoke({"Records": batch})
    ids = {m["messageId"] for m in batch}
    if raised:
        failed_ids = ids
    elif failed is None:
        failed_ids = set()
    elif mapping.report_item_failures and all(f in ids for f in failed):
        failed_ids = set(failed)
    else:
        failed_ids = ids  # an unknown identifier fails the whole batch, as in Lambda
    done = [m for m in batch if m["messageId"] not in failed_ids]
    for start in range(0, len(done), 10):
        chunk = done[start : start + 10]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["receiptHandle"]} for i, m in enumerate(chunk)
            ],
        )
    retry = [m for m in batch if m["messageId"] in failed_ids]
    if retry:
        invoke.stats.retries += 1
    for start in range(0, len(retry), 10):
        chunk = retry[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(i),
                    "ReceiptHandle": m["receiptHandle"],
                    "VisibilityTimeout": retry_delay_s,
                }
                for i, m in enumerate(chunk)
            ],
        )


def _beside(worker: Worker, what: str) -> Path:
    """`<name>.<what>.json` beside the worker's `<name>.status.json`."""
    status: Path = worker.args.status
    return status.with_name(status.name.replace(".status.", f".{what}."))


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)


def _profiled(handler: Handler, output: Path) -> Handler:
    """Profile every invocation (LOCAL_PROFILE_DIR): where a handler spends its time here."""
    import atexit
    import cProfile

    profiler = cProfile.Profile()
    atexit.register(lambda: profiler.dump_stats(str(output)))

    def run(event: dict[str, Any], context: Any) -> Any:
        return profiler.runcall(handler, event, context)

    return run


def load_handler(path: str) -> Handler:
    module_name, _, attribute = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def main(argv: list[str] | None = None) -> None:
    worker = Worker(
        "Lambda event source mapping emulation",
        argv,
        function={"required": True, "choices": ["batching", "processor"]},
        handler={"help": "override the template's handler (tests of the trigger semantics)"},
        retry_delay={
            "type": int,
            "default": 1,
            "help": "seconds before a failed SQS message is retried",
        },
        faults={"help": "faults to inject, as FaultRates JSON (devkit/faults.py)"},
        fault_log={"type": Path, "help": "where injected faults are recorded"},
        restarted={"action": "store_true", "help": "a restart: go on with the last stats"},
    )
    args = worker.args
    spec = worker.deployment.functions[args.function]
    mapping = worker.deployment.mappings[args.function]
    stats = Stats()
    if args.restarted:
        stats = Stats(**read_status(args.status).get("stats", {}))
        stats.restarts += 1
    injector = None
    if args.faults:
        log = FaultLog(args.fault_log, worker=args.function)
        injector = install(FaultRates.from_json(args.faults), log, function=args.function)
    handler = load_handler(args.handler or spec.handler)
    profile_dir = os.environ.get("LOCAL_PROFILE_DIR")
    if profile_dir:
        handler = _profiled(handler, Path(profile_dir) / f"{args.function}.prof")
    invoke = Invoker(spec, handler, stats, injector)
    worker.write_status(stats=stats.__dict__, caught_up=False)
    if mapping.source == "kinesis":
        run_kinesis(worker, mapping, invoke)
    else:
        run_sqs(worker, mapping, invoke, retry_delay_s=args.retry_delay)


if __name__ == "__main__":
    main()
