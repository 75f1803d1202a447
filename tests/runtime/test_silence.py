"""The silence sweep: a meter that stops reporting while the others go on is alerted once,
and resolved once when it reports again (moto in-process, the processor's own paths)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from energy_runtime import aws, contract, processor, silence
from energy_runtime.store import ConcurrentUpdate, Store, parse_hot
from hypothesis import given
from hypothesis import strategies as st
from runtime_fixtures import T0, Cloud, Inbox, RealClient, series

START = T0 - T0 % 3600
MINUTE = 60_000
GROUP = "energy-meters"


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=200))
def test_the_fleet_time_is_a_time_most_meters_have_reached(newest: list[int]) -> None:
    fleet = silence.fleet_time_ms(newest)
    assert fleet in newest
    assert sum(ts >= fleet for ts in newest) >= max(1, len(newest) // 10)
    assert sum(ts <= fleet for ts in newest) >= 0.9 * len(newest)


@given(
    st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 10**9), min_size=1),
    st.integers(1, 10**8),
)
def test_a_meter_is_silent_only_well_behind_the_fleet(newest: dict[str, int], after: int) -> None:
    fleet, silent = silence.silent_meters(newest, after)
    assert fleet is not None
    assert all(fleet - newest[device] >= after for device in silent)
    assert all(fleet - ts < after for device, ts in newest.items() if device not in silent)


def test_a_few_fast_clocks_or_a_stopped_pipeline_make_no_meter_silent() -> None:
    healthy = {f"m-{i}": 1_000 * MINUTE + i for i in range(19)}
    # One clock an hour ahead (5% of the fleet): the fleet's time is the others'.
    assert silence.silent_meters({**healthy, "fast": 1_060 * MINUTE}, 15 * MINUTE)[1] == []
    # Nothing advances (the pipeline stopped): nobody is behind anybody.
    assert silence.silent_meters(dict.fromkeys(healthy, 5 * MINUTE), 15 * MINUTE)[1] == []
    assert silence.silent_meters({}, 15 * MINUTE) == (None, [])


def register(devices: list[str]) -> None:
    iot = aws.client("iot")
    iot.create_thing_group(thingGroupName=GROUP)
    for n, device in enumerate(devices):
        iot.create_thing(thingName=device, attributePayload={
            "attributes": {"building": "b-01", "apartment": str(n + 1)}})  # fmt: skip
        iot.add_thing_to_thing_group(thingGroupName=GROUP, thingName=device)


def report(cloud: Cloud, device: str, start_s: int, count: int, seq: int) -> None:
    cloud.pipeline(series(device, start_s, count, seq=seq, energy_wh=5000.0 + start_s / 100))


def sweep(cloud: Cloud) -> silence.SweepReport:
    return silence.sweep(config=cloud.processor, dynamodb=cloud.dynamodb, sns=cloud.sns,
                         iot=aws.client("iot"), telemetry=processor.telemetry)  # fmt: skip


@pytest.fixture
def fleet(cloud: Cloud) -> tuple[Cloud, Inbox]:
    cloud.processor = replace(cloud.processor, meter_group_name=GROUP, silent_after_minutes=15)
    register(["m-1", "m-2", "m-3"])
    inbox = Inbox(cloud)
    inbox.subscribe(cloud.processor.alert_topic_arn)
    return cloud, inbox


def test_a_silent_meter_is_alerted_once_and_resolved_once(fleet: tuple[Cloud, Inbox]) -> None:
    cloud, inbox = fleet
    # All three report for 10 minutes; then m-3 stops and the others go on for 20 more.
    for n, device in enumerate(("m-1", "m-2", "m-3")):
        report(cloud, device, START, 60, seq=1000 * n)
    assert sweep(cloud).silent == []
    for n, device in enumerate(("m-1", "m-2")):
        report(cloud, device, START + 600, 120, seq=1000 * n + 100)
    first = sweep(cloud)
    assert (first.meters, first.reporting, first.silent, first.alerts_sent) == (
        3, 3, ["m-3"], 1)  # fmt: skip
    [alert] = inbox.drain_notifications()
    body = json.loads(alert["Message"])
    last_ts = (START + 590) * 1000
    assert (body["kind"], body["status"], body["building"], body["apartment"]) == (
        "meter_silent", "alert", "b-01", "3")  # fmt: skip
    assert body["interval_start"] == contract.iso_utc(last_ts)
    assert "no reading for 20 minutes" in body["text"]
    attributes = {k: v["Value"] for k, v in alert["MessageAttributes"].items()}
    assert (attributes["kind"], attributes["status"], attributes["severity"]) == (
        "meter_silent", "alert", "warning")  # fmt: skip
    # Still silent at the next sweeps: nothing more.
    assert sweep(cloud).alerts_sent == 0
    assert sweep(cloud).alerts_sent == 0
    assert inbox.drain_notifications() == []
    hot = cloud.dynamodb.get_item(TableName=cloud.processor.table_name, Key={
        "pk": {"S": "m-3"}, "sk": {"S": contract.LATEST_SK}})["Item"]  # fmt: skip
    assert parse_hot(hot).silent_since_ms == last_ts

    # m-3 is back: its readings resolve the alert, once, even when they are replayed.
    back = series("m-3", START + 1800, 30, seq=2900, energy_wh=5200.0)
    cloud.pipeline(back)
    cloud.pipeline(back)
    [resolved] = inbox.drain_notifications()
    body = json.loads(resolved["Message"])
    assert (body["kind"], body["status"]) == ("meter_silent", "resolved")
    assert resolved["Subject"].startswith("Resolved: Energy meter silent: building b-01")
    assert f"readings again from {contract.iso_utc((START + 1800) * 1000)}" in body["text"]
    assert {k: v["Value"] for k, v in resolved["MessageAttributes"].items()}["status"] == (
        "resolved"
    )
    hot = cloud.dynamodb.get_item(TableName=cloud.processor.table_name, Key={
        "pk": {"S": "m-3"}, "sk": {"S": contract.LATEST_SK}})["Item"]  # fmt: skip
    assert parse_hot(hot).silent_since_ms is None
    assert sweep(cloud).silent == []
    assert inbox.drain_notifications() == []


def test_the_mark_makes_a_processor_that_read_before_it_merge_again(cloud: Cloud) -> None:
    report(cloud, "m-1", START, 60, seq=0)
    store = Store(cloud.dynamodb, cloud.processor.table_name, ttl_days=30)
    before = store.read_hot(["m-1"])["m-1"]
    assert not store.mark_silent("m-1", before.latest.ts_ms - 10_000)  # not its newest
    assert store.mark_silent("m-1", before.latest.ts_ms)
    assert not store.mark_silent("m-1", before.latest.ts_ms)  # marked already
    after = store.read_hot(["m-1"])["m-1"]
    assert after.version == before.version + 1
    assert replace(after, version=before.version, silent_since_ms=None) == before
    # A plan made from the item as it was before the mark is refused: merge again.
    records = series("m-1", START + 600, 6, seq=100)
    cloud.run_batching(records)
    handoffs = cloud.drain_handoff()

    class Stale(RealClient):
        """The table as the processor saw it before the mark: the old hot item."""

        def batch_get_item(self, **kwargs: Any) -> Any:
            response = self.client.batch_get_item(**kwargs)
            for item in response["Responses"].get(cloud.processor.table_name, []):
                if item["sk"]["S"] == contract.LATEST_SK:
                    item.pop("silent_since_ms", None)
                    item["version"] = {"N": str(before.version)}
            return response

    from energy_runtime.processor import _collect, _plan

    devices, _ = _collect(handoffs)
    stale = Store(Stale(cloud.dynamodb), cloud.processor.table_name, ttl_days=30)
    plan = _plan(stale, "m-1", stale.read_hot(["m-1"])["m-1"], devices["m-1"], cloud.processor)
    assert plan.silence_ended is None  # it cannot know
    with pytest.raises(ConcurrentUpdate):
        store.write(plan)
    # The processor itself plans again on the fresh item and resolves the silence.
    assert cloud.run_processor(handoffs) == {"batchItemFailures": []}
    assert store.read_hot(["m-1"])["m-1"].silent_since_ms is None


def test_the_schedule_s_event_runs_the_sweep(
    fleet: tuple[Cloud, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, _inbox = fleet
    env = contract.default_environment(
        contract.PROCESSOR,
        TABLE_NAME=cloud.processor.table_name,
        ARCHIVE_BUCKET=cloud.bucket,
        ALERT_TOPIC_ARN=cloud.processor.alert_topic_arn,
        METER_GROUP_NAME=GROUP,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    processor.settings.cache_clear()
    report(cloud, "m-1", START, 12, seq=0)
    try:
        result = processor.handler(dict(contract.SILENCE_SWEEP_EVENT), None)
    finally:
        processor.settings.cache_clear()
    assert result == {"meters": 3, "reporting": 1, "silent": [], "alerts_sent": 0}
