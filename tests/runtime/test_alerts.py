"""Alerts reach SNS at least once, and once per device, kind and period, whatever Lambda
retries, redelivers or replays (moto in-process; SQS redelivery as Lambda's event source
mapping does it: failed messages come back with a higher ApproximateReceiveCount)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from energy_runtime import alerts, aws, processor
from energy_runtime.aggregate import IntervalSummary
from runtime_fixtures import REGION, T0, Cloud, kinesis_record

START = T0 - T0 % 3600  # an hour boundary: alert periods are 60 minutes
LATER_TOPIC = f"arn:aws:sns:{REGION}:123456789012:energy-alerts-later"


def readings_of(
    start_s: int, count: int, *, step_wh: float, energy_wh: float = 5000.0
) -> list[dict[str, Any]]:
    """A reading every 10 s; `step_wh` per reading (x 90 per 15-minute interval)."""
    return [
        {"ts": start_s + 10 * i, "energy_wh": energy_wh + step_wh * i, "power_w": 720.0}
        for i in range(count)
    ]


def records_of(device: str, readings: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    out = []
    for n, i in enumerate(range(0, len(readings), 6)):
        chunk = readings[i : i + 6]
        received = int(chunk[-1]["ts"] * 1000) + 500
        out.append(kinesis_record(device, {"readings": chunk}, received, seq + n))
    return out


class EventSourceMapping:
    """Lambda's SQS poller over the real (moto) hand-off queue: receive, invoke the
    processor, delete what succeeded. A failed message becomes visible again when its
    visibility timeout ends: here at once, so the next poll redelivers it."""

    def __init__(self, cloud: Cloud, **clients: Any) -> None:
        self.cloud = cloud
        self.clients = clients

    def receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while got := self.cloud.sqs.receive_message(
            QueueUrl=self.cloud.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(got)
        return messages

    def poll(self) -> tuple[list[dict[str, Any]], set[str]]:
        """(the SQS event records delivered, the ids reported as item failures)."""
        messages = self.receive()
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:energy-handoff",
                "awsRegion": REGION,
            }
            for m in messages
        ]
        if not records:
            return [], set()
        clients = {"dynamodb": self.cloud.dynamodb, "s3": self.cloud.s3, "sns": self.cloud.sns}
        response = processor.process_sqs_event(
            {"Records": records}, config=self.cloud.processor, **{**clients, **self.clients}
        )
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] in failed:
                self.cloud.sqs.change_message_visibility(
                    QueueUrl=self.cloud.queue_url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                self.cloud.sqs.delete_message(
                    QueueUrl=self.cloud.queue_url, ReceiptHandle=m["ReceiptHandle"]
                )
        return records, failed


class Inbox:
    """An SQS queue subscribed to an alert topic: what SNS delivered."""

    def __init__(self, cloud: Cloud, name: str = "alerts-inbox") -> None:
        self.cloud = cloud
        self.url = cloud.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.arn = cloud.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def subscribe(self, topic_arn: str) -> None:
        self.cloud.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=self.arn)

    def drain(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while got := self.cloud.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for m in got:
                out.append(json.loads(json.loads(m["Body"])["Message"]))
                self.cloud.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return out


def markers(cloud: Cloud, device: str) -> dict[str, str]:
    items = cloud.dynamodb.query(
        TableName="energy",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": {"S": device}, ":a": {"S": "ALERT#"}},
        ConsistentRead=True,
    )["Items"]
    return {i["sk"]["S"]: i["state"]["S"] for i in items}


def table_without_markers(cloud: Cloud) -> list[dict[str, Any]]:
    return [i for i in cloud.table_items() if not i["sk"]["S"].startswith("ALERT#")]


def summary(energy_wh: float) -> IntervalSummary:
    return IntervalSummary(START * 1000, round(energy_wh * 1000), 90, 0, 0, 0, 0, 0)


def test_thresholds() -> None:
    assert alerts.high_usage("m", summary(100.0), 100.0) is None
    alert = alerts.high_usage("m", summary(100.5), 100.0)
    assert alert is not None and alert.period_ms(60) == START * 1000
    assert alerts.anomaly("m", summary(500.0), [10.0] * 7, 4.0, 50.0) is None  # too little history
    assert alerts.anomaly("m", summary(40.0), [1.0] * 8, 4.0, 50.0) is None  # below the floor
    assert alerts.anomaly("m", summary(80.0), [20.0] * 8, 4.0, 50.0) is None  # not above 4x
    assert alerts.anomaly("m", summary(81.0), [20.0] * 8, 4.0, 50.0) is not None
    # The floor is the operator's: the same interval pages only above it.
    assert alerts.anomaly("m", summary(399.0), [20.0] * 8, 4.0, 400.0) is None
    assert alerts.anomaly("m", summary(401.0), [20.0] * 8, 4.0, 400.0) is not None


def test_a_failed_publish_is_redelivered_and_reaches_sns_exactly_once(cloud: Cloud) -> None:
    # The alert topic does not exist yet: every publish fails (a real NotFound from SNS).
    cloud.processor = replace(
        cloud.processor, high_usage_threshold_wh=100.0, alert_topic_arn=LATER_TOPIC
    )
    hot = records_of("m-hot", readings_of(START, 60, step_wh=4.0), seq=0)  # 236 Wh
    calm = records_of("m-calm", readings_of(START, 60, step_wh=0.5), seq=100)
    assert cloud.run_batching(hot + calm) == {"batchItemFailures": []}
    mapping = EventSourceMapping(cloud)

    records, failed = mapping.poll()
    hot_ids = {r["messageId"] for r in records if '"m-hot"' in r["body"]}
    assert hot_ids and failed == hot_ids  # only the messages that raised the alert
    assert markers(cloud, "m-hot") == {f"ALERT#high_usage#{_iso(START)}": "pending"}
    aggregates = table_without_markers(cloud)  # written: the alert alone is pending

    records, failed = mapping.poll()  # redelivered; the topic is still missing
    assert {r["messageId"] for r in records} == failed == hot_ids
    assert {r["attributes"]["ApproximateReceiveCount"] for r in records} == {"2"}
    assert markers(cloud, "m-hot") == {f"ALERT#high_usage#{_iso(START)}": "pending"}

    topic = cloud.sns.create_topic(Name="energy-alerts-later")["TopicArn"]
    assert topic == LATER_TOPIC
    inbox = Inbox(cloud)
    inbox.subscribe(topic)
    records, failed = mapping.poll()
    assert {r["messageId"] for r in records} == hot_ids and failed == set()
    [alert] = inbox.drain()
    assert (alert["device_id"], alert["kind"], alert["energy_wh"]) == ("m-hot", "high_usage", 236)
    assert markers(cloud, "m-hot") == {f"ALERT#high_usage#{_iso(START)}": "sent"}
    assert table_without_markers(cloud) == aggregates  # the retries wrote no aggregate
    assert mapping.receive() == []

    # Replays after the publish: new hand-offs of the same readings, and a redelivery.
    table = cloud.table_items()
    assert cloud.run_batching(hot + calm) == {"batchItemFailures": []}
    replayed, failed = mapping.poll()
    assert replayed and failed == set()
    for record in replayed:
        record["attributes"]["ApproximateReceiveCount"] = "3"
    assert cloud.run_processor(replayed) == {"batchItemFailures": []}
    assert inbox.drain() == []
    assert cloud.table_items() == table


def _iso(epoch_s: int) -> str:
    return alerts.iso_utc(epoch_s * 1000)


def test_an_anomaly_whose_publish_failed_is_raised_by_the_redelivery(cloud: Cloud) -> None:
    cloud.processor = replace(cloud.processor, alert_topic_arn=LATER_TOPIC)
    usual = readings_of(START, 90 * 10, step_wh=1.0, energy_wh=1000.0)  # 10 intervals, 90 Wh
    mapping = EventSourceMapping(cloud)
    assert cloud.run_batching(records_of("m-1", usual, seq=0)) == {"batchItemFailures": []}
    assert mapping.poll()[1] == set()  # nothing unusual: no publish, nothing fails
    energy = usual[-1]["energy_wh"]
    spike = []
    for i in range(91):  # the 11th interval uses ten times the usual energy
        energy += 10.0
        spike.append({"ts": START + 9000 + 10 * i, "energy_wh": energy, "power_w": 3600.0})
    assert cloud.run_batching(records_of("m-1", spike, seq=1000)) == {"batchItemFailures": []}
    records, failed = mapping.poll()
    assert failed == {r["messageId"] for r in records}
    inbox = Inbox(cloud)
    inbox.subscribe(cloud.sns.create_topic(Name="energy-alerts-later")["TopicArn"])
    assert mapping.poll()[1] == set()
    [alert] = inbox.drain()
    assert alert["kind"] == "anomaly" and alert["interval_start"] == _iso(START + 9000)
    assert mapping.poll() == ([], set())
    assert inbox.drain() == []


def test_one_alert_per_device_and_period_across_batches_failures_and_replays(
    cloud: Cloud,
) -> None:
    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    topic = cloud.processor.alert_topic_arn
    inbox = Inbox(cloud)
    inbox.subscribe(topic)
    mapping = EventSourceMapping(cloud)
    devices = {"m-1": 2.0, "m-2": 4.0, "m-3": 0.5}  # 180, 360 and 45 Wh per interval
    streams = {
        d: records_of(d, readings_of(START, 3 * 360, step_wh=w), 0) for d, w in devices.items()
    }
    delivered: list[dict[str, Any]] = []
    failures = 0
    for batch in range(30):  # 3 hours in 6-minute batches
        records = [r for d in devices for r in streams[d][batch * 6 : batch * 6 + 6]]
        assert cloud.run_batching(records) == {"batchItemFailures": []}
        if batch == 9:  # SNS loses the topic for a while: publishes fail, then come back
            cloud.sns.delete_topic(TopicArn=topic)
        if batch == 13:
            cloud.sns.create_topic(Name="energy-alerts")
            inbox.subscribe(topic)
        got, failed = mapping.poll()
        delivered.extend(got)
        failures += len(failed)
        if batch % 4 == 3 and batch not in range(9, 13):  # replay all so far, redelivered
            for record in delivered:
                record["attributes"]["ApproximateReceiveCount"] = "2"
            assert cloud.run_processor(delivered) == {"batchItemFailures": []}
    assert failures and mapping.receive() == []  # some failed, all eventually succeeded
    sent = Counter((a["device_id"], a["kind"], a["interval_start"][:13]) for a in inbox.drain())
    hours = [_iso(START + 3600 * h)[:13] for h in range(3)]
    assert sent == Counter({(d, "high_usage", h): 1 for d in ("m-1", "m-2") for h in hours})
    assert set(markers(cloud, "m-1").values()) == {"sent"}


def test_a_publish_whose_connection_drops_is_retried_by_the_sdk(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda _seconds: None)
    from botocore.exceptions import ConnectionClosedError

    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    inbox = Inbox(cloud)
    inbox.subscribe(cloud.processor.alert_topic_arn)
    sns = aws.client("sns")  # the handler's own client, with its retry mode
    attempts: list[str] = []

    def drop_first(request: Any, **_: Any) -> None:
        # Runs before moto's own before-send handler: raising here means the request
        # never reached SNS, as when a connection drops.
        attempts.append(request.url)
        if len(attempts) == 1:
            raise ConnectionClosedError(endpoint_url=request.url)

    sns.meta.events.register_first("before-send.sns.Publish", drop_first)
    records = records_of("m-1", readings_of(START, 60, step_wh=4.0), 0)
    assert cloud.run_batching(records) == {"batchItemFailures": []}
    assert EventSourceMapping(cloud, sns=sns).poll()[1] == set()
    assert len(attempts) == 2
    assert [a["device_id"] for a in inbox.drain()] == ["m-1"]
    assert set(markers(cloud, "m-1").values()) == {"sent"}


class ThrottledMarker:
    """The real moto client, except that the first alert marker put is throttled."""

    def __init__(self, client: Any) -> None:
        self.client, self.throttled = client, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["Item"]["sk"]["S"].startswith("ALERT#") and not self.throttled:
            from botocore.exceptions import ClientError

            self.throttled = True
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem"
            )
        return self.client.put_item(**kwargs)


def test_an_alert_that_cannot_be_claimed_holds_back_the_aggregates_that_raise_it(
    cloud: Cloud,
) -> None:
    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    inbox = Inbox(cloud)
    inbox.subscribe(cloud.processor.alert_topic_arn)
    mapping = EventSourceMapping(cloud, dynamodb=ThrottledMarker(cloud.dynamodb))
    assert cloud.run_batching(records_of("m-1", readings_of(START, 60, step_wh=4.0), 0)) == {
        "batchItemFailures": []
    }
    records, failed = mapping.poll()
    assert failed == {r["messageId"] for r in records}
    assert cloud.table_items() == []  # nothing written that a retry would not raise again
    assert mapping.poll()[1] == set()
    assert [a["kind"] for a in inbox.drain()] == ["high_usage"]
    assert set(markers(cloud, "m-1").values()) == {"sent"}
