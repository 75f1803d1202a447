"""The queries module: what analysts and the local pipeline read from the table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from energy_runtime import aws, contract, queries
from runtime_fixtures import T0, Cloud, kinesis_record, records_of

MIDNIGHT = (T0 // 86_400 + 1) * 86_400


def test_an_unknown_device_has_nothing(cloud: Cloud) -> None:
    assert queries.device_latest(cloud.table, "nobody") is None
    assert queries.device_intervals(cloud.table, "nobody") == []
    assert queries.device_daily_energy(cloud.table, "nobody") == {}


def test_intervals_days_and_latest_include_the_open_interval(cloud: Cloud) -> None:
    # 23:45 to 00:20: two intervals and a day close, 00:15 stays open.
    readings = [
        {
            "ts": MIDNIGHT - 900 + 30 * i,
            "energy_wh": 200.0 + 5 * i,
            "power_w": 600.0 + i,
            "voltage_v": 231.5,
            "seq": i,
        }
        for i in range(71)
    ]
    records = [
        kinesis_record("apt-9", {"readings": readings[i : i + 10]}, (MIDNIGHT + 2400) * 1000, i)
        for i in range(0, len(readings), 10)
    ]
    cloud.pipeline(records)
    rows = queries.device_intervals(cloud.table, "apt-9")
    assert [r["interval_start"] for r in rows] == [
        queries.iso_utc((MIDNIGHT - 900) * 1000),
        queries.iso_utc(MIDNIGHT * 1000),
        queries.iso_utc((MIDNIGHT + 900) * 1000),
    ]
    assert [r["reading_count"] for r in rows] == [30, 30, 11]
    assert [r["energy_wh"] for r in rows] == [145.0, 150.0, 55.0]
    assert rows[0]["power_min_w"] == 600.0 and rows[0]["power_max_w"] == 629.0
    assert rows[0]["power_mean_w"] == 614.5
    daily = queries.device_daily_energy(cloud.table, "apt-9")
    assert (
        daily
        == {
            queries.iso_utc((MIDNIGHT - 1) * 1000)[:10]: 145.0,  # closed: from its DAY item
            queries.iso_utc(MIDNIGHT * 1000)[:10]: 205.0,  # open: summed from its intervals
        }
    )
    latest = queries.device_latest(cloud.table, "apt-9")
    assert latest == {
        "device_id": "apt-9",
        "ts": queries.iso_utc((MIDNIGHT + 1200) * 1000),
        "energy_wh": 550.0,
        "power_w": 670.0,
        "received_at": (MIDNIGHT + 2400) * 1000,
        "voltage_v": 231.5,
        "seq": 70,
    }


def _berlin_midnight_crossing(midnight_iso: str, first_wh: float) -> list[dict[str, Any]]:
    """30 minutes before to 20 after a Berlin midnight, 1 Wh every 10 s."""
    midnight = round(datetime.fromisoformat(midnight_iso).timestamp())
    return [
        {"ts": midnight - 1800 + 10 * i, "energy_wh": first_wh + i, "power_w": 360.0}
        for i in range(300)
    ]


def _day_item(cloud: Cloud, device: str, day: str) -> dict[str, Any] | None:
    key = {"pk": {"S": device}, "sk": {"S": contract.day_sk(day)}}
    item: dict[str, Any] | None = cloud.dynamodb.get_item(TableName="energy", Key=key).get("Item")
    return item


def test_days_are_the_buildings_local_days_and_a_day_an_older_version_closed_is_totalled(
    cloud: Cloud,
) -> None:
    aws.client("iot").create_thing(thingName="apt-b", attributePayload={
        "attributes": {"time_zone": "Europe/Berlin"}})  # fmt: skip
    # 2026-10-25 has 25 hours in Berlin; its last 30 minutes are 22:30-23:00 UTC, so a UTC
    # day would not have closed at all.
    cloud.pipeline(records_of("apt-b", _berlin_midnight_crossing("2026-10-26T00:00+01:00", 0)))
    item = _day_item(cloud, "apt-b", "2026-10-25")
    assert item is not None and item["time_zone"] == {"S": "Europe/Berlin"}
    assert float(item["energy_wh"]["N"]) == 179.0  # the first reading has no context
    assert int(item["end_ms"]["N"]) - int(item["start_ms"]["N"]) == 25 * 3_600_000
    assert queries.device_daily_energy(cloud.table, "apt-b") == {
        "2026-10-25": 179.0, "2026-10-26": 120.0}  # fmt: skip
    # A canary's older version closed that day: it wrote a UTC day, no local one.
    key = {"pk": {"S": "apt-b"}, "sk": {"S": contract.day_sk("2026-10-25")}}
    cloud.dynamodb.delete_item(TableName="energy", Key=key)
    for day, wh in (("2026-10-25", 400.0), ("2026-10-20", 7.0)):
        legacy = {"pk": {"S": "apt-b"}, "sk": {"S": contract.UTC_DAY_SK_PREFIX + day},
                  "day": {"S": day}, "energy_wh": {"N": str(wh)}}  # fmt: skip
        cloud.dynamodb.put_item(TableName="energy", Item=legacy)
    cloud.pipeline(
        records_of("apt-b", _berlin_midnight_crossing("2026-10-27T00:00+01:00", 300), seq=100)
    )
    repaired = _day_item(cloud, "apt-b", "2026-10-25")
    assert repaired is not None and float(repaired["energy_wh"]["N"]) == 179.0
    daily = queries.device_daily_energy(cloud.table, "apt-b")
    assert set(daily) == {"2026-10-20", "2026-10-25", "2026-10-26", "2026-10-27"}
    assert daily["2026-10-20"] == 7.0  # older than every local day: its UTC total is kept
    assert daily["2026-10-25"] == 179.0  # the local total, not the legacy UTC item's 400
    assert daily["2026-10-26"] == 120.0 + 180.0  # after midnight, then from 23:30 on
    assert daily["2026-10-27"] == 120.0
