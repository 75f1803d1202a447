"""Read the table the way analysts, the local pipeline and the tests need it.

All functions take a boto3 DynamoDB `Table` resource and one device id, and return plain
Python values (floats, ISO-8601 UTC strings), oldest first where there is an order.
The open interval lives in the device's LATEST item until newer data closes it; the
functions below merge it in, so callers see every interval and every day with data.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from energy_runtime import contract
from energy_runtime.codec import decode_points
from energy_runtime.contract import PARTITION_KEY, SORT_KEY, iso_utc
from energy_runtime.local_time import UTC_ZONE, Calendar


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return value


def _blob(value: Any) -> bytes:
    # The resource layer returns Binary wrappers for B attributes.
    return bytes(getattr(value, "value", value))


def _query_all(table: Any, device_id: str, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": (
            Key(PARTITION_KEY).eq(device_id) & Key(SORT_KEY).begins_with(prefix)
        ),
        "ConsistentRead": True,
    }
    while True:
        page = table.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _latest_item(table: Any, device_id: str) -> dict[str, Any] | None:
    key = {PARTITION_KEY: device_id, SORT_KEY: contract.LATEST_SK}
    response = table.get_item(Key=key, ConsistentRead=True)
    item: dict[str, Any] | None = response.get("Item")
    return item


def device_latest(table: Any, device_id: str) -> dict[str, Any] | None:
    """The newest accepted reading of the device (by event time), or None."""
    item = _latest_item(table, device_id)
    if item is None:
        return None
    latest = {
        "device_id": device_id,
        "ts": iso_utc(int(item["ts_ms"])),
        "energy_wh": float(item["energy_wh"]),
        "power_w": float(item["power_w"]),
        "received_at": int(item["received_at"]),
    }
    for name in contract.OPTIONAL_FIELDS:
        if name in item:
            latest[name] = _plain(item[name])
    return latest


def _interval_row(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "interval_start": str(item[SORT_KEY])[len(contract.INTERVAL_SK_PREFIX) :],
        "energy_wh": float(item["energy_wh"]),
        "reading_count": int(item["reading_count"]),
        "power_min_w": float(item["power_min_w"]),
        "power_max_w": float(item["power_max_w"]),
        "power_mean_w": float(item["power_mean_w"]),
    }


def _open_interval_row(latest: dict[str, Any]) -> dict[str, Any] | None:
    if "open_points" not in latest:
        return None
    points = decode_points(_blob(latest["open_points"]))
    powers = [p.power_dw for p in points]
    return {
        "interval_start": iso_utc(int(latest["open_start_ms"])),
        "energy_wh": int(latest["open_energy_mwh"]) / 1000,
        "reading_count": len(points),
        "power_min_w": min(powers) / 10,
        "power_max_w": max(powers) / 10,
        "power_mean_w": sum(powers) / len(powers) / 10,
    }


def device_intervals(table: Any, device_id: str) -> list[dict[str, Any]]:
    """Every interval with data (closed ones and the open one), oldest first."""
    items = _query_all(table, device_id, contract.INTERVAL_SK_PREFIX)
    rows = [_interval_row(item) for item in items]
    latest = _latest_item(table, device_id)
    open_row = _open_interval_row(latest) if latest else None
    closed_starts = {row["interval_start"] for row in rows}
    if open_row is not None and open_row["interval_start"] not in closed_starts:
        rows.append(open_row)
    rows.sort(key=lambda row: row["interval_start"])
    return rows


def device_daily_energy(
    table: Any, device_id: str, time_zone: str | None = None
) -> dict[str, float]:
    """Energy per local day of the meter's building (YYYY-MM-DD -> Wh): closed days from
    their day item, the days still open summed from their intervals by `time_zone` (None:
    the zone the newest day item was totalled in, else UTC). A day only a version before
    local days totalled keeps its UTC total (its legacy item) if it is older than every
    local day and interval here."""
    day_items = _query_all(table, device_id, contract.DAY_SK_PREFIX)
    closed = {str(item["day"]): float(item["energy_wh"]) for item in day_items}
    zone = time_zone or (str(day_items[-1]["time_zone"]) if day_items else UTC_ZONE)
    calendar = Calendar(zone)
    open_days: dict[str, int] = defaultdict(int)
    for row in device_intervals(table, device_id):
        day = calendar.day(contract.epoch_ms(row["interval_start"])).name
        if day not in closed:
            open_days[day] += round(row["energy_wh"] * 1000)
    daily = dict(closed)
    daily.update({day: mwh / 1000 for day, mwh in open_days.items()})
    first = min(daily, default="9999-12-31")
    for item in _query_all(table, device_id, contract.UTC_DAY_SK_PREFIX):
        if str(item["day"]) < first:
            daily[str(item["day"])] = float(item["energy_wh"])
    return dict(sorted(daily.items()))


def device_intervals_between(
    table: Any, device_id: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """The intervals with data that start in [start_ms, end_ms), the open one included,
    oldest first (one Query on the sort key's range, not the device's whole history)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key(PARTITION_KEY).eq(device_id)
        & Key(SORT_KEY).between(
            contract.interval_sk(start_ms), contract.interval_sk(max(start_ms, end_ms - 1))
        ),
        "ConsistentRead": True,
    }
    while True:
        page = table.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    rows = [_interval_row(item) for item in items]
    latest = _latest_item(table, device_id)
    open_row = _open_interval_row(latest) if latest else None
    if (
        open_row is not None
        and start_ms <= int(latest["open_start_ms"]) < end_ms  # type: ignore[index]
        and open_row["interval_start"] not in {row["interval_start"] for row in rows}
    ):
        rows.append(open_row)
    rows.sort(key=lambda row: row["interval_start"])
    return rows
