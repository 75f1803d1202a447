"""Alerts reach SNS at least once, and once per device, kind and period, whatever Lambda
retries, redelivers or replays (moto in-process; SQS redelivery as Lambda's event source
mapping does it: failed messages come back with a higher ApproximateReceiveCount)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from energy_runtime import alerts, aws, processor
from energy_runtime.aggregate import IntervalSummary
from energy_runtime.codec import Point
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from runtime_fixtures import (
    REGION,
    T0,
    Cloud,
    Inbox,
    RealClient,
    intervals_using,
    kinesis_record,
)

START = T0 - T0 % 3600  # an hour boundary: alert periods are 60 minutes
LATER_TOPIC = f"arn:aws:sns:{REGION}:123456789012:energy-alerts-later"


def readings_of(
    start_s: int, count: int, *, step_wh: float, energy_wh: float = 5000.0
) -> list[dict[str, Any]]:
    """A reading every 10 s; `step_wh` per reading (x 90 per 15-minute interval), at the
    power that uses it, with a tenth of a watt of noise (a real meter's power moves)."""
    return [
        {"ts": start_s + 10 * i, "energy_wh": energy_wh + step_wh * i,
         "power_w": step_wh * 360 + 0.1 * (i % 2)}
        for i in range(count)
    ]  # fmt: skip


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
        clients = {"dynamodb": self.cloud.dynamodb, "s3": self.cloud.s3, "sns": self.cloud.sns,
                   "iot": aws.client("iot")}  # fmt: skip
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


def unusual(energy_wh: float, history: list[float], **settings: float) -> alerts.Alert | None:
    options = {"min_z": 4.0, "min_excess_wh": 300.0, "warmup_days": 3, **settings}
    return alerts.unusual_usage(
        "m", summary(energy_wh), alerts.Baseline.of(history),
        min_z=options["min_z"], min_excess_wh=options["min_excess_wh"],
        warmup_days=int(options["warmup_days"]),
    )  # fmt: skip


def test_unusual_usage_needs_the_warm_up_the_excess_and_the_z_score() -> None:
    usual = [100.0, 110.0, 90.0, 105.0, 95.0]  # median 100, MAD 5: spread 7.4, at least 10
    assert unusual(500.0, usual[:2]) is None  # two earlier days: still warming up
    assert unusual(399.0, usual) is None  # 299 Wh above the usual: below the excess
    alert = unusual(401.0, usual)
    assert alert is not None and alert.kind == alerts.UNUSUAL_USAGE
    assert alert.expected_wh == 100.0 and alert.robust_z == pytest.approx(301 / 10)
    # A device whose use at that time varies a lot needs more to be unusual.
    varied = [100.0, 400.0, 700.0, 250.0, 550.0]  # median 400, MAD 150: spread 222 Wh
    assert unusual(1200.0, varied) is None  # z 3.6
    assert unusual(1300.0, varied) is not None  # z 4.05
    # One odd day in the history (a party) moves the median and the spread by nothing.
    assert alerts.Baseline.of([*usual, 5000.0]) == alerts.Baseline.of([*usual, 112.0])


def test_the_baseline_is_the_same_interval_on_earlier_days_of_the_same_kind() -> None:
    day = 86_400_000
    wednesday = (1_795_000_000 - 1_795_000_000 % 900) * 1000  # 2026-11-18 11:00 UTC
    saturday = wednesday + 3 * day
    assert alerts.same_interval_earlier_days(wednesday, 7) == [
        wednesday - back * day
        for back in (1, 2, 5, 6, 7)  # Tue, Mon, Fri, Thu, Wed
    ]
    assert alerts.same_interval_earlier_days(saturday, 7) == [
        saturday - 6 * day,
        saturday - 7 * day,
    ]
    assert alerts.same_interval_earlier_days(saturday + day, 14) == [
        saturday, saturday - 6 * day, saturday - 7 * day, saturday - 13 * day
    ]  # fmt: skip


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


def test_an_unusual_use_whose_publish_failed_is_raised_by_the_redelivery(cloud: Cloud) -> None:
    cloud.processor = replace(cloud.processor, alert_topic_arn=LATER_TOPIC)
    earlier_weekdays = [START - back * 86_400 for back in (7, 6, 5, 2, 1)]  # START: a Wednesday
    readings = intervals_using([*((day, 90.0) for day in earlier_weekdays), (START, 900.0)])
    usual = [r for r in readings if r["ts"] < START]
    mapping = EventSourceMapping(cloud)
    assert cloud.run_batching(records_of("m-1", usual, seq=0)) == {"batchItemFailures": []}
    assert mapping.poll()[1] == set()  # nothing unusual: no publish, nothing fails
    spike = [r for r in readings if r["ts"] >= START]
    assert cloud.run_batching(records_of("m-1", spike, seq=1000)) == {"batchItemFailures": []}
    records, failed = mapping.poll()
    assert failed == {r["messageId"] for r in records}
    inbox = Inbox(cloud)
    inbox.subscribe(cloud.sns.create_topic(Name="energy-alerts-later")["TopicArn"])
    assert mapping.poll()[1] == set()
    [alert] = inbox.drain()
    assert alert["kind"] == "unusual_usage" and alert["interval_start"] == _iso(START)
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


class ThrottledMarker(RealClient):
    """The real moto client, except that the first alert marker put is throttled."""

    throttled = False

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


def test_an_alert_names_its_building_and_apartment_and_routes_by_them(cloud: Cloud) -> None:
    """A building manager subscribes with a filter policy on `building`: they get their
    building's alerts only, each saying where, what and how bad."""
    cloud.processor = replace(cloud.processor, high_usage_threshold_wh=100.0)
    iot = aws.client("iot")
    iot.create_thing(thingName="m-north", attributePayload={
        "attributes": {"building": "north", "apartment": "3.2"}})  # fmt: skip
    iot.create_thing(thingName="m-south", attributePayload={
        "attributes": {"building": "south", "apartment": "1.1"}})  # fmt: skip
    topic = cloud.processor.alert_topic_arn
    north, everything = Inbox(cloud, "north-manager"), Inbox(cloud, "operations")
    north.subscribe(topic, {"building": ["north"]})
    everything.subscribe(topic)
    for device, seq in (("m-north", 0), ("m-south", 100), ("m-unregistered", 200)):
        cloud.run_batching(records_of(device, readings_of(START, 91, step_wh=4.0), seq=seq))
    assert EventSourceMapping(cloud).poll()[1] == set()
    [only] = north.drain_notifications()
    assert only["Subject"] == "Energy high usage: building north, apartment 3.2 (m-north)"
    attributes = {k: v["Value"] for k, v in only["MessageAttributes"].items()}
    assert attributes == {"building": "north", "apartment": "3.2", "kind": "high_usage",
                          "severity": "warning", "status": "alert",
                          "device_id": "m-north"}  # fmt: skip
    body = json.loads(only["Message"])
    assert body["text"].startswith("building north, apartment 3.2 (m-north): high usage from")
    seen = {json.loads(n["Message"])["device_id"]: n for n in everything.drain_notifications()}
    assert set(seen) == {"m-north", "m-south", "m-unregistered"}
    unplaced = seen["m-unregistered"]
    assert "building" not in unplaced["MessageAttributes"]  # no thing: the meter alone
    assert unplaced["Subject"] == "Energy high usage: meter m-unregistered"


def _summary(start_ms: int, own_wh: float) -> IntervalSummary:
    return IntervalSummary(start_ms=start_ms, energy_mwh=round(own_wh * 1000), reading_count=90,
                           power_min_dw=0, power_max_dw=0, power_sum_dw=0,
                           first_ts_ms=start_ms, last_ts_ms=start_ms + 890_000)  # fmt: skip


def lookup(stored: dict[int, float]) -> alerts.EnergiesAt:
    """The stored energies as the processor reads them: only the keys asked for."""
    return lambda keys: {k: stored[k] for k in keys if k in stored}


RULES = alerts.UnusualRules(min_z=4, min_excess_wh=300, warmup_days=3, baseline_days=14,
                            sustain_intervals=3, interval_minutes=15)  # fmt: skip
QUARTER = 900_000
DAY_MS = 86_400_000


def test_a_run_alerts_once_when_it_reaches_the_sustained_length() -> None:
    saturday = 1_795_392_000_000 + 2 * 3_600_000  # 2026-11-21T02:00Z, a Saturday
    stored: dict[int, float] = {}
    for back in range(1, 15):  # fourteen calm nights before, weekdays and weekends
        for k in range(8):
            stored[saturday - back * DAY_MS + k * QUARTER] = 40.0
    heater = [saturday + k * QUARTER for k in range(5)]
    judged = []
    for n, start in enumerate(heater):
        alert = alerts.sustained_unusual_usage("m", _summary(start, 500.0), lookup(stored), RULES)
        judged.append(alert)
        stored[start] = 500.0
        assert (alert is not None) == (n == 2), n  # the third: once, however long it lasts
    first = judged[2]
    assert first is not None and first.start_ms == heater[0]  # it names the run's start
    assert first.energy_wh == 1500.0 and first.expected_wh == 120.0


def test_a_new_meter_s_first_weekend_is_judged_against_its_weekdays() -> None:
    saturday = 1_795_392_000_000 + 2 * 3_600_000
    weekdays = {saturday - back * DAY_MS: 40.0 for back in (1, 2, 3, 4, 5)}  # Fri..Mon
    rules = replace(RULES, sustain_intervals=1)

    def judge(stored: dict[int, float]) -> alerts.Alert | None:
        return alerts.sustained_unusual_usage("m", _summary(saturday, 500.0), lookup(stored), rules)

    assert judge(weekdays) is not None  # no weekend stored yet: every earlier day
    weekends = {saturday - back * DAY_MS: 520.0 for back in (6, 7, 13)}  # three: warmed up
    assert judge({**weekdays, **weekends}) is None  # its weekends are like this


def test_two_habits_make_a_wide_baseline_one_habit_a_narrow_one() -> None:
    """A car charged on six nights of fourteen: the MAD sees only the eight quiet nights
    (and would call every charge unusual), the interquartile range sees both."""
    charging = alerts.Baseline.of([40.0] * 8 + [1850.0] * 6)
    assert charging is not None and charging.robust_z(1850.0) < 4
    quiet = alerts.Baseline.of([40.0, 42.0, 38.0, 41.0, 39.0, 40.0, 43.0])
    assert quiet is not None and quiet.robust_z(540.0) > 4


NIGHTLY = replace(RULES, sustain_intervals=8, tolerance_intervals=8)  # two hours either side


def _charge(stored: dict[int, float], start_ms: int, hours: float, wh: float) -> None:
    for k in range(int(hours * 4)):
        stored[start_ms + k * QUARTER] = wh


def _alerts_over(stored: dict[int, float], night_ms: int, rules: alerts.UnusualRules) -> list[int]:
    """The starts of the alerts raised while one night's intervals close, in order."""
    raised, history = [], dict(stored)
    for k in range(32):  # 22:00 to 06:00
        start = night_ms + k * QUARTER
        history.setdefault(start, 40.0)
        alert = alerts.sustained_unusual_usage(
            "m", _summary(start, history[start]), lookup(history), rules
        )
        if alert:
            raised.append(alert.start_ms)
    return raised


def _nights_before(night_ms: int, charge_from_h: float | None) -> dict[int, float]:
    """Fourteen earlier nights of 40 Wh intervals from 22:00 and, unless `charge_from_h` is
    None, a car charge of 1850 Wh per interval for three hours from that many hours later."""
    stored: dict[int, float] = {}
    for back in range(1, 15):
        day = night_ms - back * DAY_MS
        _charge(stored, day, 8, 40.0)
        if charge_from_h is not None:
            _charge(stored, day + int(charge_from_h * 3_600_000), 3, 1850.0)
    return stored


def test_a_nightly_charge_at_another_hour_is_usual_a_heater_on_a_quiet_night_is_not() -> None:
    night = 1_795_132_800_000 + 22 * 3_600_000  # 2026-11-18T22:00Z, a Wednesday
    stored = _nights_before(night, 1)  # every night from 23:00 to 02:00
    _charge(stored, night + 3 * 3_600_000, 3, 1850.0)  # tonight two hours later: 01:00-04:00
    assert _alerts_over(stored, night, NIGHTLY) == []
    # Against the same quarter-hour only, 02:00 to 04:00 is two hours of unusual use.
    exact = replace(NIGHTLY, tolerance_intervals=0)
    assert _alerts_over(stored, night, exact) == [night + 4 * 3_600_000]
    calm = _nights_before(night, None)
    _charge(calm, night + 3_600_000, 7, 540.0)  # a 2 kW heater from 23:00
    assert _alerts_over(calm, night, NIGHTLY) == [night + 3_600_000]  # once, at its start


def _nights_left_on(
    stored: dict[int, float], day_ms: int, rules: alerts.UnusualRules
) -> list[alerts.Alert]:
    """What `night_left_on` raises as the intervals of the day's night (01:00-05:00) close."""
    raised = []
    for k in range(16):
        start = day_ms + HOUR_MS + k * QUARTER
        stored.setdefault(start, 40.0)
        alert = alerts.night_left_on("m", _summary(start, stored[start]), lookup(stored), rules)
        if alert:
            raised.append(alert)
    return raised


def _busy_nights(day_ms: int, nights: int = 14) -> dict[int, float]:
    """Earlier nights of 40 Wh intervals (22:00 to 06:00) with a car charged for three hours
    from a different hour each night (22:00 to 02:00): every hour of the night is usual."""
    stored: dict[int, float] = {}
    for back in range(1, nights + 1):
        evening = day_ms - back * DAY_MS - 2 * HOUR_MS
        _charge(stored, evening, 8, 40.0)
        _charge(stored, evening + (back % 5) * HOUR_MS, 3, 1850.0)
    return stored


def test_a_heater_left_on_all_night_is_unusual_even_where_the_nights_are_busy() -> None:
    day = 1_795_132_800_000  # 2026-11-18T00:00Z
    stored = _busy_nights(day)
    _charge(stored, day - HOUR_MS, 7, 540.0)  # a 2 kW heater from 23:00 to 06:00
    # Hour by hour it is within what the car uses near that time on earlier nights...
    assert _alerts_over(stored, day - 2 * HOUR_MS, NIGHTLY) == []
    # ...but no earlier night lacked a quiet interval.
    (alert,) = _nights_left_on(stored, day, RULES)
    assert alert.kind == alerts.UNUSUAL_USAGE and alert.start_ms == day + HOUR_MS
    assert (alert.energy_wh, alert.expected_wh) == (540.0, 40.0)
    assert "stayed on all night" in alert.detail


@pytest.mark.parametrize(
    ("tonight", "earlier_nights", "dusk_to_dawn_before"),
    [
        ([(1, 3.5, 1850.0), (4.5, 0.5, 925.0)], 14, False),  # a charge's tail: not an hour
        ([(1, 4, 925.0)], 14, True),  # the car all night, as on an earlier night
        ([(1, 4, 540.0)], 2, False),  # a heater, but two earlier nights are not the warm-up
        ([(1, 4, 250.0)], 14, False),  # held, but less than the minimum excess above usual
    ],
)
def test_a_night_of_charges_or_before_the_warm_up_is_not_a_night_left_on(
    tonight: list[tuple[float, float, float]], earlier_nights: int, dusk_to_dawn_before: bool
) -> None:
    day = 1_795_132_800_000
    stored = _busy_nights(day, earlier_nights)
    if dusk_to_dawn_before:
        _charge(stored, day - 5 * DAY_MS - 2 * HOUR_MS, 8, 925.0)
    for from_h, hours, wh in tonight:
        _charge(stored, day + int(from_h * HOUR_MS), hours, wh)
    assert _nights_left_on(stored, day, RULES) == []
    if dusk_to_dawn_before:  # without that earlier night it would be one left on
        _charge(stored, day - 5 * DAY_MS - 2 * HOUR_MS, 8, 40.0)
        assert len(_nights_left_on(stored, day, RULES)) == 1


def _interval(points: list[tuple[int, int, int]], lead_mwh: int) -> IntervalSummary:
    """An interval of (ts, register mWh, power dW) readings, with the rise into it."""
    own = points[-1][1] - points[0][1]
    return IntervalSummary(start_ms=points[0][0], energy_mwh=own + lead_mwh,
                           reading_count=len(points), power_min_dw=min(p[2] for p in points),
                           power_max_dw=max(p[2] for p in points),
                           power_sum_dw=sum(p[2] for p in points), first_ts_ms=points[0][0],
                           last_ts_ms=points[-1][0], lead_mwh=lead_mwh)  # fmt: skip


@pytest.mark.parametrize(
    ("power_dw", "register_step", "lead", "before", "alerts_"),
    [
        (4000, 0, 0, None, True),  # 400 W, never counted, nothing stored before: stuck
        (4000, 0, 0, [5, 6], True),  # the interval before counted: the freeze begins here
        (4000, 0, 0, [5, 5], False),  # frozen since before: alerted then
        (4000, 0, 1, [5, 5], True),  # it rose into this interval, then froze
        (4000, 1_111, 0, None, False),  # counting what 400 W uses in 10 s
        (4000, 1, 0, None, False),  # counting, if less: power readings that move are real
        (50, 0, 0, None, False),  # 5 W: 1.2 Wh in 15 minutes is below the minimum
    ],
)
def test_a_stuck_register_is_one_that_does_not_count_what_its_power_says(
    power_dw: int, register_step: int, lead: int, before: list[int] | None, alerts_: bool
) -> None:
    # Power to a tenth of a watt, as a real meter's moves.
    points = [(1_000 * 10 * i, 7_000 + register_step * i, power_dw + i % 2) for i in range(90)]
    summary = _interval(points, lead)
    read = [] if before is None else [Point(0, e, 0) for e in before]
    alert = alerts.meter_stuck("m", summary, lambda _ts: None if before is None else read, 25.0)
    assert (alert is not None) == alerts_


BASELOAD = alerts.BaseloadRules(min_step_w=100, nights=2, min_z=4, warmup_days=3,
                                baseline_days=14, interval_minutes=15)  # fmt: skip
HOUR_MS = 3_600_000


def _nights_with_minimum(stored: dict[int, float], day_ms: int, minimum_wh: float) -> None:
    """01:00-05:00 of the day: the fridge's on phases above a base of `minimum_wh`."""
    for k in range(16):
        stored[day_ms + HOUR_MS + k * QUARTER] = minimum_wh + (30.0 if k % 3 == 0 else 0.0)


def _baseload_alerts(night_minima_wh: list[float], rules: alerts.BaseloadRules) -> list[int]:
    """The nights (index into `night_minima_wh`) whose last interval raises an alert."""
    first_day = 1_795_132_800_000  # 2026-11-18T00:00Z
    stored: dict[int, float] = {}
    raised = []
    for n, minimum in enumerate(night_minima_wh):
        day = first_day + n * DAY_MS
        _nights_with_minimum(stored, day, minimum)
        last = day + 5 * HOUR_MS - QUARTER
        alert = alerts.baseload_change("m", _summary(last, stored[last]), lookup(stored), rules)
        if alert:
            assert alert.start_ms == day - (rules.nights - 1) * DAY_MS + HOUR_MS  # the step's
            raised.append(n)
    return raised


@pytest.mark.parametrize(
    ("after", "raised"),
    [
        ([95.0] * 4, [15]),  # +220 W from night 14 on: alerted on its second night, once
        ([95.0, 40.0, 95.0, 40.0], []),  # a heater left on for single nights: no step
        ([95.0, 160.0, 40.0, 40.0], []),  # two raised nights at two levels: not one step
        ([52.0] * 4, []),  # +48 W: below the minimum step
        ([75.0] * 4, []),  # +140 W: above it, but within four spreads (10 Wh at least)
    ],
)
def test_a_base_load_that_steps_up_and_stays_up_alerts_once(
    after: list[float], raised: list[int]
) -> None:
    calm = [40.0 + (n % 3) for n in range(14)]  # 160-170 W overnight
    assert _baseload_alerts(calm + after, BASELOAD) == raised


def test_no_baseload_change_before_the_warm_up() -> None:
    """Three nights make the usual (the warm-up), before the night before the step."""
    assert _baseload_alerts([40.0] * 3 + [95.0, 95.0], BASELOAD) == []
    assert _baseload_alerts([40.0] * 4 + [95.0, 95.0], BASELOAD) == [5]


@pytest.mark.parametrize(
    ("register_step", "alerts_"),
    [
        (1_111, False),  # counting what the constant 400 W uses: a steady load, not stuck
        (1_400, False),  # 26% more: within a quarter of the larger energy
        (2_222, True),  # counting what 800 W uses while the power reads 400 W: stuck
        (0, True),  # the register frozen too: stuck (as a register)
    ],
)
def test_power_readings_stuck_at_one_value_are_a_stuck_meter(
    register_step: int, alerts_: bool
) -> None:
    points = [(1_000 * 10 * i, 7_000 + register_step * i, 4000) for i in range(90)]
    alert = alerts.meter_stuck("m", _interval(points, 0), lambda _ts: None, 25.0)
    assert (alert is not None) == alerts_
    if alert and register_step:
        assert "power readings have stayed at 400.0 W" in alert.detail


@pytest.mark.parametrize(
    ("later_w", "whole_wh", "alerts_"),
    [
        (520, False, True),  # a 120 W fridge starts for the last five minutes: stuck
        (430, False, False),  # 30 W more: within the 50 W a register or a reading is off by
        (400, True, False),  # a steady 400 W, counted in whole watt-hours: not stuck
    ],
)
def test_power_readings_that_hold_while_the_load_moves_within_the_interval_are_stuck(
    later_w: int, whole_wh: bool, alerts_: bool
) -> None:
    """The power reads 400.0 W throughout; the register counts 400 W for ten minutes and
    `later_w` for the last five (10 Wh more at 520 W: less than the interval's 25 Wh)."""
    points, register = [], 7_000_000.0
    for i in range(90):
        if i:
            register += (400 if i < 60 else later_w) * 10 / 3.6  # mWh in 10 s
        counted = int(register // 1000 * 1000) if whole_wh else round(register)
        points.append((1_000 * 10 * i, counted, 4000))
    summary = _interval(points, 0)
    stored = [Point(*p) for p in points]
    alert = alerts.meter_stuck("m", summary, lambda _ts: stored, 25.0)
    assert (alert is not None) == alerts_


def _frozen_interval(
    load_w: Callable[[int], float], every_s: int, frozen_w: float, *, whole_wh: bool
) -> tuple[IntervalSummary, list[Point]]:
    """A 15-minute interval of readings every `every_s` whose register counts `load_w`
    (seconds into the interval -> W; mWh, or whole Wh as many registers do) while the power
    reads `frozen_w` throughout."""
    points, register = [], 5_000_000.0
    for t in range(0, 900, every_s):
        if t:
            register += load_w(t) * every_s / 3.6
        counted = int(register // 1000 * 1000) if whole_wh else round(register)
        points.append((t * 1000, counted, round(frozen_w * 10)))
    return _interval(points, 0), [Point(*p) for p in points]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=5, max_value=20_000), st.sampled_from([10, 30, 60]), st.booleans())
def test_a_steady_load_the_power_readings_agree_with_is_never_stuck(
    load_w: float, every_s: int, whole_wh: bool
) -> None:
    """Power readings at one value (a meter that reports to 0.1 W while a heater or a
    standby load holds still) and a register that counts that load, to the mWh or to the
    whole Wh: not stuck, at any load and reading interval."""
    summary, points = _frozen_interval(lambda _t: load_w, every_s, round(load_w, 1),
                                       whole_wh=whole_wh)  # fmt: skip
    assert not alerts.stuck_power(summary, 25.0, lambda: points)


@pytest.mark.parametrize(
    "glitch",
    [
        lambda e, i: e - 50_000 if i == 45 else e,  # one spurious backward value
        lambda e, i: e - 5_000_000 if i >= 45 else e,  # a swap to a meter counting lower
        lambda e, i: e + 9_000_000 if i >= 45 else e,  # a jump no load could make
    ],
)
def test_a_register_step_the_aggregates_do_not_count_is_not_a_stuck_meter(
    glitch: Callable[[int, int], int],
) -> None:
    """A steady 400 W the frozen readings agree with (a load held still, as at the
    morning's peak), and a register step that the aggregates do not count
    (docs/data-quality.md): the runs of readings across it say nothing, so not stuck."""
    summary, points = _frozen_interval(lambda _t: 400.0, 10, 400.0, whole_wh=False)
    points = [p._replace(energy_mwh=glitch(p.energy_mwh, i)) for i, p in enumerate(points)]
    assert not alerts.stuck_power(summary, 25.0, lambda: points, max_power_w=20_000)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=5, max_value=20_000),
    st.floats(min_value=0.2, max_value=3.0),
    st.integers(min_value=0, max_value=540),
    st.sampled_from([10, 30, 60]),
    st.booleans(),
)
def test_a_load_that_moves_while_the_power_readings_hold_is_stuck(
    frozen_w: float, factor: float, moved_at_s: int, every_s: int, whole_wh: bool
) -> None:
    """The power readings hold at `frozen_w` while the load the register counts changes
    to `factor` times it, by at least 100 W and 20%, for the last six minutes or more of
    the interval: stuck, wherever in the interval it moves."""
    moved_w = frozen_w * factor
    assume(abs(moved_w - frozen_w) >= max(100.0, 0.2 * max(moved_w, frozen_w)))
    summary, points = _frozen_interval(
        lambda t: moved_w if t > moved_at_s else frozen_w, every_s, frozen_w, whole_wh=whole_wh
    )
    assert alerts.stuck_power(summary, 25.0, lambda: points)


CLEARING = alerts.DetectorRules(high_usage_threshold_wh=1000.0, unusual=RULES,
                                baseload=BASELOAD, stuck_min_wh=25.0)  # fmt: skip


def _stuck_alert(start_ms: int) -> alerts.Alert:
    return alerts.Alert("m", alerts.METER_STUCK, start_ms, "stuck")


def test_an_open_alert_holds_back_its_kind_until_an_interval_clears_it() -> None:
    """A stuck meter's alert stays open while its register is frozen (a second alert of
    the freeze is held back), and the first interval that counts clears it, once."""
    frozen = [(k * 10_000, 7_000, 4000 + k % 2) for k in range(90)]
    counting = [(k * 10_000, 7_000 + 1_111 * k, 4000 + k % 2) for k in range(90)]

    def at(start_ms: int, points: list[tuple[int, int, int]]) -> IntervalSummary:
        return replace(_interval(points, 0), start_ms=start_ms)

    raised = [(0, _stuck_alert(0)), (2 * QUARTER, _stuck_alert(2 * QUARTER))]
    closed = [at(QUARTER, frozen), at(2 * QUARTER, frozen)]
    send, still = alerts.follow_open("m", (), raised, closed, lookup({}), CLEARING)
    assert [(a.start_ms, a.status) for a in send] == [(0, alerts.ALERTING)]
    assert [(a.kind, a.start_ms, a.raised_ms) for a in still] == [(alerts.METER_STUCK, 0, 0)]
    send, still = alerts.follow_open("m", still, [], [at(3 * QUARTER, counting)], lookup({}),
                                     CLEARING)  # fmt: skip
    assert [(a.kind, a.start_ms, a.status) for a in send] == [(alerts.METER_STUCK, 0, "resolved")]
    assert still == ()
    # The interval that raised it does not clear it, though it is as normal as any.
    assert alerts.follow_open("m", (alerts.OpenAlert(alerts.METER_STUCK, 0, QUARTER),), [],
                              [at(QUARTER, counting)], lookup({}), CLEARING)[0] == []  # fmt: skip


def test_high_usage_alerts_each_period_and_clears_under_the_threshold() -> None:
    high = [(k * QUARTER, alerts.Alert("m", alerts.HIGH_USAGE, k * QUARTER, "high"))
            for k in (0, 4)]  # fmt: skip
    closed = [_summary(0, 1500.0), _summary(4 * QUARTER, 1500.0), _summary(5 * QUARTER, 900.0)]
    send, still = alerts.follow_open("m", (), high, closed, lookup({}), CLEARING)
    assert [(a.start_ms, a.status) for a in send] == [
        (0, "alert"),
        (4 * QUARTER, "alert"),
        (4 * QUARTER, "resolved"),  # the episode's latest alert: the period it follows
    ]
    assert still == ()


@pytest.mark.parametrize(
    ("minimum_after_wh", "clears_on_night"),
    # Back down the night after the alert; or up for good: the usual on its 14th night.
    [(42.0, 2), (95.0, 13)],
)
def test_a_base_load_alert_clears_when_the_night_minimum_is_back_or_is_the_new_usual(
    minimum_after_wh: float, clears_on_night: int
) -> None:
    first_night = 1_795_132_800_000  # 2026-11-18T00:00Z: its night is the step's first
    alert = alerts.Alert("m", alerts.BASELOAD_CHANGE, first_night + HOUR_MS, "step",
                         95.0, 40.0)  # fmt: skip
    raised_at = first_night + DAY_MS + 5 * HOUR_MS - QUARTER  # the second night's end
    still = (alerts.opened(alert, raised_at),)
    stored: dict[int, float] = {}
    for n in range(2, 16):
        day = first_night + n * DAY_MS
        _nights_with_minimum(stored, day, minimum_after_wh)
        last = day + 5 * HOUR_MS - QUARTER
        send, still = alerts.follow_open("m", still, [], [_summary(last, stored[last])],
                                         lookup(stored), CLEARING)  # fmt: skip
        if send:
            assert n == clears_on_night
            assert [(a.start_ms, a.status) for a in send] == [(alert.start_ms, "resolved")]
            return
    raise AssertionError("never cleared")


def test_an_unusual_night_clears_only_once_the_heater_is_off() -> None:
    """A heater's last hour (05:00) sits within two hours of the usual 07:00 breakfast, so
    it could not raise an alert on its own; it does not clear the open one either: the
    all-clear asks the same time of day alone."""
    night = 1_795_132_800_000  # 2026-11-18T00:00Z, a Wednesday
    stored: dict[int, float] = {}
    for back in range(1, 15):
        day = night - back * DAY_MS
        _charge(stored, day, 8, 40.0)  # a quiet night, then breakfast from 07:00
        _charge(stored, day + 7 * HOUR_MS, 1, 900.0)
    rules = replace(RULES, sustain_intervals=8, tolerance_intervals=8)
    heater = alerts.OpenAlert(alerts.UNUSUAL_USAGE, night - HOUR_MS, night + HOUR_MS)
    clearing = replace(CLEARING, unusual=rules)
    at_five = _summary(night + 5 * HOUR_MS, 540.0)
    assert alerts.sustained_unusual_usage("m", at_five, lookup(stored), replace(
        rules, sustain_intervals=1)) is None  # fmt: skip
    send, still = alerts.follow_open("m", (heater,), [], [at_five], lookup(stored), clearing)
    assert send == [] and still == (heater,)
    off = _summary(night + 6 * HOUR_MS + QUARTER, 40.0)
    send, still = alerts.follow_open("m", still, [], [off], lookup(stored), clearing)
    assert [(a.start_ms, a.status) for a in send] == [(night - HOUR_MS, "resolved")]
