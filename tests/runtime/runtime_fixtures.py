"""Helpers for the runtime tests: moto in-process AWS and events in the exact AWS shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from energy_runtime import aws, contract, places, queries, silence
from energy_runtime.batching import process_kinesis_event
from energy_runtime.processor import process_sqs_event
from energy_runtime.settings import (
    BatchingSettings,
    ProcessorSettings,
    load_batching_settings,
    load_processor_settings,
)
from moto import mock_aws

REGION = "eu-west-1"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/energy-readings"
SEQUENCE_BASE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
T0 = 1_795_000_000  # 2026-11-18T11:06:40Z, epoch seconds


def kinesis_record(
    device_id: str, payload: bytes | dict[str, Any] | list[Any], received_at_ms: int, seq: int
) -> dict[str, Any]:
    """One record of a Lambda Kinesis event, as the topic rule would have put it."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    data = {
        "payload": base64.b64encode(raw).decode(),
        "device_id": device_id,
        "received_at": received_at_ms,
    }
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": device_id,
            "sequenceNumber": str(SEQUENCE_BASE + seq),
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "approximateArrivalTimestamp": received_at_ms / 1000,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/batching",
        "awsRegion": REGION,
        "eventSourceARN": STREAM_ARN,
    }


def series(
    device: str,
    start_s: int,
    count: int,
    *,
    energy_wh: float = 5000.0,
    step_wh: float = 2.0,
    seq: int = 0,
    per_record: int = 6,
) -> list[dict[str, Any]]:
    """Kinesis records of a device sending a reading every 10 s, `per_record` per message."""
    readings = [
        {"ts": start_s + 10 * i, "energy_wh": energy_wh + step_wh * i, "power_w": 720.0 + i % 7}
        for i in range(count)
    ]
    return records_of(device, readings, seq)


def intervals_using(
    intervals: list[tuple[int, float]], *, register_wh: float = 1000.0
) -> list[dict[str, Any]]:
    """A reading every 10 s through each 15-minute interval (its start, the Wh used in
    it), in time order, and one at its end that closes it; the register holds still
    between them, so nothing else is used."""
    readings: dict[int, dict[str, Any]] = {}
    for start, wh in sorted(intervals):
        for i in range(91):  # the 91st reading, at the end, closes the interval
            energy = round(register_wh + wh * i / 90, 3)
            readings[start + 10 * i] = {"ts": start + 10 * i, "energy_wh": energy,
                                        "power_w": round(wh * 4, 1)}  # fmt: skip
        register_wh += wh
    return [readings[ts] for ts in sorted(readings)]


def records_of(
    device: str, readings: list[dict[str, Any]], seq: int = 0, per_record: int = 6
) -> list[dict[str, Any]]:
    out = []
    for n, i in enumerate(range(0, len(readings), per_record)):
        chunk = readings[i : i + per_record]
        received = int(max(r["ts"] for r in chunk) * 1000) + 500
        out.append(kinesis_record(device, {"readings": chunk}, received, seq + n))
    return out


def kinesis_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


@dataclass
class Cloud:
    sqs: Any
    s3: Any
    sns: Any
    dynamodb: Any
    table: Any  # boto3 Table resource, for queries.py
    queue_url: str
    bucket: str
    batching: BatchingSettings
    processor: ProcessorSettings

    def run_batching(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return process_kinesis_event(
            kinesis_event(records), config=self.batching, sqs=self.sqs, s3=self.s3
        )

    def drain_handoff(self) -> list[dict[str, Any]]:
        """Receive every hand-off message as SQS event records (and delete them)."""
        records: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return records
            for message in got:
                records.append(sqs_record(message["MessageId"], message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def run_processor(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return process_sqs_event(
            {"Records": records},
            config=self.processor,
            dynamodb=self.dynamodb,
            s3=self.s3,
            sns=self.sns,
            iot=aws.client("iot"),
        )

    def pipeline(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batching, then processor over everything it handed off; returns the hand-offs."""
        assert self.run_batching(records) == {"batchItemFailures": []}
        handoffs = self.drain_handoff()
        if handoffs:
            assert self.run_processor(handoffs) == {"batchItemFailures": []}
        return handoffs

    def table_items(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=self.processor.table_name)["Items"]
        return sorted(
            items,
            key=lambda i: (i[contract.PARTITION_KEY]["S"], i[contract.SORT_KEY]["S"]),
        )

    def keys(self, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


class RealClient:
    """A real (moto) client of which a test replaces a call or two."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


class Inbox:
    """An SQS queue subscribed to an alert topic: what SNS delivered."""

    def __init__(self, cloud: Cloud, name: str = "alerts-inbox") -> None:
        self.cloud = cloud
        self.url = cloud.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.arn = cloud.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def subscribe(self, topic_arn: str, filter_policy: dict[str, list[str]] | None = None) -> None:
        attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
        self.cloud.sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=self.arn, Attributes=attributes
        )

    def drain_notifications(self) -> list[dict[str, Any]]:
        """The SNS envelopes themselves (subject, message attributes)."""
        out: list[dict[str, Any]] = []
        while got := self.cloud.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for m in got:
                out.append(json.loads(m["Body"]))
                self.cloud.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return out

    def drain(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while got := self.cloud.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for m in got:
                out.append(json.loads(json.loads(m["Body"])["Message"]))
                self.cloud.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return out


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    """One record of a Lambda SQS event."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1795000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1795000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:energy-handoff",
        "awsRegion": REGION,
    }


def create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=list(contract.KEY_SCHEMA),
        AttributeDefinitions=list(contract.KEY_ATTRIBUTES),
        BillingMode="PAY_PER_REQUEST",
    )


def function_environments(**names: str) -> dict[str, str]:
    """Both functions' complete environments, as the stacks set them (the runtime has no
    defaults of its own): the contract's defaults plus `names` (by variable name)."""
    return {
        **contract.default_environment(contract.BATCHING),
        **contract.default_environment(contract.PROCESSOR),
        **names,
    }


def cloud_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "EnergyMonitoring",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws.reset_clients()
        places.forget()
        silence.forget()
        sqs = boto3.client("sqs", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        sns = boto3.client("sns", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="energy-handoff")["QueueUrl"]
        bucket = "energy-archive"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        topic_arn = sns.create_topic(Name="energy-alerts")["TopicArn"]
        create_table(dynamodb, "energy")
        env = function_environments(
            HANDOFF_QUEUE_URL=queue_url,
            ARCHIVE_BUCKET=bucket,
            TABLE_NAME="energy",
            ALERT_TOPIC_ARN=topic_arn,
            METER_GROUP_NAME="energy-meters",
            HIGH_USAGE_THRESHOLD_WH="1000",
            # One unusual interval is enough here; test_processor.py tests sustained runs.
            UNUSUAL_SUSTAIN_INTERVALS="1",
        )
        yield Cloud(
            sqs=sqs,
            s3=s3,
            sns=sns,
            dynamodb=dynamodb,
            table=boto3.resource("dynamodb", region_name=REGION).Table("energy"),
            queue_url=queue_url,
            bucket=bucket,
            batching=load_batching_settings(env),
            processor=load_processor_settings(env),
        )
        aws.reset_clients()
        places.forget()
        silence.forget()


def archive_rows(cloud: Cloud) -> list[dict[str, Any]]:
    import io

    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for key in cloud.keys(contract.INTERVALS_PREFIX):
        body = cloud.s3.get_object(Bucket=cloud.bucket, Key=key)["Body"].read()
        rows += pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def assert_archive_agrees_with_table(cloud: Cloud, devices: list[str]) -> None:
    """(device, interval, revision) names one content, and the highest revision of every
    interval is what the table holds."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in archive_rows(cloud):
        key = (row["device_id"], row["interval_start"], row["revision"])
        assert by_key.setdefault(key, row) == row, key
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for (device, start, revision), row in by_key.items():
        if (device, start) not in best or revision > best[(device, start)]["revision"]:
            best[(device, start)] = row
    for device in devices:
        table = {r["interval_start"]: r for r in queries.device_intervals(cloud.table, device)}
        archived = {
            contract.iso_utc(int(start.timestamp() * 1000)): row
            for (d, start), row in best.items() if d == device
        }  # fmt: skip
        assert set(archived) == set(table), device
        for start, row in table.items():
            assert (archived[start]["energy_wh"], archived[start]["reading_count"]) == (
                row["energy_wh"], row["reading_count"]
            ), (device, start)  # fmt: skip
