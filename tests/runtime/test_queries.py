"""The queries module: what analysts and the local pipeline read from the table."""

from __future__ import annotations

from energy_runtime import queries
from runtime_fixtures import T0, Cloud, kinesis_record

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
