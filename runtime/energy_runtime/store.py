"""DynamoDB side of the processor: read state, write what a Plan says, conditionally.

Items are written with PutItem under a condition on their version (hot item) or revision
(interval item), so two invocations racing on one device cannot lose each other's
readings: the loser re-reads and merges again. Nothing is written when a merge changes
nothing, which is what makes replays free and the table byte-for-byte stable.
"""

from __future__ import annotations

from typing import Any

from energy_runtime import alerts, contract
from energy_runtime.aggregate import LOOKBACK
from energy_runtime.alerts import Marker
from energy_runtime.aws import backoff
from energy_runtime.codec import Point, decode_points, encode_points
from energy_runtime.contract import PARTITION_KEY as PK
from energy_runtime.contract import SORT_KEY as SK
from energy_runtime.contract import TTL_ATTRIBUTE, iso_utc
from energy_runtime.local_time import Calendar, Day
from energy_runtime.state import (
    HotState,
    IntervalWrite,
    Latest,
    OpenAlert,
    Plan,
    StoredInterval,
    closed_days,
)

SILENT_SINCE = "silent_since_ms"  # on the hot item, while the sweep holds the meter silent
OPEN_ALERTS = "open_alerts"  # on the hot item: kind -> the alert that has not cleared


_DAY_NUMBERS = ("start_ms", "end_ms", "energy_wh", "interval_count")


def _day_values(item: dict[str, Any]) -> tuple[object, ...]:
    numbers = (float(item.get(name, {}).get("N", "nan")) for name in _DAY_NUMBERS)
    return (item.get("time_zone", {}).get("S"), *numbers)


class ConcurrentUpdate(Exception):
    """Another invocation changed the device's items first; re-read and merge again."""


def _n(value: int | float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _num(attribute: dict[str, str]) -> int | float:
    text = attribute["N"]
    return float(text) if any(c in text for c in ".eE") else int(text)


# --- hot item -------------------------------------------------------------------------


def hot_item(device_id: str, hot: HotState) -> dict[str, Any]:
    latest = hot.latest
    item: dict[str, Any] = {
        PK: {"S": device_id},
        SK: {"S": contract.LATEST_SK},
        "version": _n(hot.version),
        "ts_ms": _n(latest.ts_ms),
        "energy_wh": _n(latest.energy_mwh / 1000),
        "power_w": _n(latest.power_dw / 10),
        "received_at": _n(latest.received_at),
        "open_start_ms": _n(hot.open_start_ms),
        "open_points": {"B": encode_points(hot.open_points)},
        "open_energy_mwh": _n(hot.open_energy_mwh),
        "open_rev": _n(hot.open_rev),
        "tail_points": {"B": encode_points(hot.tail)},
    }
    for name, value in latest.optional:
        item[name] = _n(value)
    if hot.silent_since_ms is not None:
        item[SILENT_SINCE] = _n(hot.silent_since_ms)
    if hot.open_alerts:
        item[OPEN_ALERTS] = {"M": {a.kind: _open_alert_value(a) for a in hot.open_alerts}}
    return item


def _open_alert_value(alert: OpenAlert) -> dict[str, Any]:
    fields = {"start_ms": _n(alert.start_ms), "raised_ms": _n(alert.raised_ms)}
    if alert.expected_wh is not None:
        fields["expected_wh"] = _n(float(alert.expected_wh))
    return {"M": fields}


def _open_alerts(item: dict[str, Any]) -> tuple[OpenAlert, ...]:
    """The hot item's open alerts; none on an item written before they were kept."""
    found = []
    for kind, value in item.get(OPEN_ALERTS, {}).get("M", {}).items():
        fields = value["M"]
        expected = fields.get("expected_wh")
        found.append(OpenAlert(kind, int(fields["start_ms"]["N"]), int(fields["raised_ms"]["N"]),
                               float(expected["N"]) if expected else None))  # fmt: skip
    return tuple(sorted(found))


def parse_hot(item: dict[str, Any]) -> HotState:
    optional = tuple((name, _num(item[name])) for name in contract.OPTIONAL_FIELDS if name in item)
    return HotState(
        version=int(item["version"]["N"]),
        latest=Latest(
            ts_ms=int(item["ts_ms"]["N"]),
            energy_mwh=round(float(item["energy_wh"]["N"]) * 1000),
            power_dw=round(float(item["power_w"]["N"]) * 10),
            received_at=int(item["received_at"]["N"]),
            optional=optional,
        ),
        open_start_ms=int(item["open_start_ms"]["N"]),
        open_points=decode_points(bytes(item["open_points"]["B"])),
        open_energy_mwh=int(item["open_energy_mwh"]["N"]),
        open_rev=int(item["open_rev"]["N"]),
        tail=decode_points(bytes(item["tail_points"]["B"])) if item["tail_points"]["B"] else [],
        silent_since_ms=int(item[SILENT_SINCE]["N"]) if SILENT_SINCE in item else None,
        open_alerts=_open_alerts(item),
    )


# --- interval and day items ----------------------------------------------------------


def interval_item(device_id: str, write: IntervalWrite, ttl_days: int) -> dict[str, Any]:
    summary = write.summary
    return {
        PK: {"S": device_id},
        SK: {"S": contract.interval_sk(summary.start_ms)},
        "points": {"B": encode_points(write.points)},
        "energy_wh": _n(summary.energy_mwh / 1000),
        "reading_count": _n(summary.reading_count),
        "power_min_w": _n(summary.power_min_dw / 10),
        "power_max_w": _n(summary.power_max_dw / 10),
        "power_mean_w": _n(summary.power_mean_w),
        "rev": _n(write.rev),
        TTL_ATTRIBUTE: _n(summary.start_ms // 1000 + ttl_days * 86_400),
    }


def _interval_start_ms(sk: str) -> int:
    return contract.epoch_ms(sk[len(contract.INTERVAL_SK_PREFIX) :])


def parse_interval(item: dict[str, Any]) -> StoredInterval:
    return StoredInterval(
        start_ms=_interval_start_ms(item[SK]["S"]),
        points=decode_points(bytes(item["points"]["B"])),
        energy_mwh=round(float(item["energy_wh"]["N"]) * 1000),
        rev=int(item["rev"]["N"]),
    )


class Store:
    def __init__(self, dynamodb: Any, table_name: str, *, ttl_days: int) -> None:
        self.db = dynamodb
        self.table = table_name
        self.ttl_days = ttl_days

    def _batch_get(self, keys: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
        """Every item of `keys` that exists, 100 keys a request (BatchGetItem's limit: a
        meter's offline buffer can close more intervals than that at once), retrying
        unprocessed ones."""
        items: list[dict[str, Any]] = []
        for first in range(0, len(keys), 100):
            request: dict[str, Any] = {self.table: {"Keys": keys[first : first + 100], **options}}
            attempt = 0
            while request:
                response = self.db.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
                if request:
                    attempt += 1
                    backoff(attempt)
        return items

    def read_hot(self, device_ids: list[str]) -> dict[str, HotState]:
        items = self._batch_get(_hot_keys(device_ids), ConsistentRead=True)
        return {item[PK]["S"]: parse_hot(item) for item in items}

    def newest_readings(self, device_ids: list[str]) -> dict[str, tuple[int, int | None]]:
        """Each device's newest reading time and the silence the sweep marked (or None),
        for the devices that have a hot item: eventually consistent (the sweep's view)."""
        projection = f"{PK}, ts_ms, {SILENT_SINCE}"
        found: dict[str, tuple[int, int | None]] = {}
        for item in self._batch_get(_hot_keys(device_ids), ProjectionExpression=projection):
            since = item.get(SILENT_SINCE)
            found[item[PK]["S"]] = (int(item["ts_ms"]["N"]), int(since["N"]) if since else None)
        return found

    def mark_silent(self, device_id: str, newest_ms: int) -> bool:
        """Record on the hot item that the device is silent since its reading of
        `newest_ms`, if that is still its newest. The version rises, so a processor that
        read the item before this merges again and sees the mark. False if a newer reading
        is in (no longer silent) or the mark is there already."""
        from botocore.exceptions import ClientError

        try:
            self.db.update_item(
                TableName=self.table,
                Key={PK: {"S": device_id}, SK: {"S": contract.LATEST_SK}},
                UpdateExpression="SET #since = :ts, version = version + :one",
                ConditionExpression="ts_ms = :ts AND attribute_not_exists(#since)",
                ExpressionAttributeNames={"#since": SILENT_SINCE},
                ExpressionAttributeValues={":ts": _n(newest_ms), ":one": _n(1)},
            )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def read_intervals(self, device_id: str, starts: list[int]) -> dict[int, StoredInterval]:
        if not starts:
            return {}
        keys = _interval_keys(device_id, starts)
        stored = (parse_interval(item) for item in self._batch_get(keys, ConsistentRead=True))
        return {interval.start_ms: interval for interval in stored}

    def energies_at(self, device_id: str, starts: list[int]) -> dict[int, float]:
        """Energy (Wh) of the stored intervals among `starts`, by start: eventually
        consistent (earlier intervals, written before)."""
        keys = _interval_keys(device_id, sorted(set(starts)))
        items = self._batch_get(keys, ProjectionExpression="sk, energy_wh")
        return {_interval_start_ms(i[SK]["S"]): float(i["energy_wh"]["N"]) for i in items}

    def interval_points(self, device_id: str, start_ms: int) -> list[Point] | None:
        """The readings of a stored interval (None: not stored); eventually consistent."""
        item = self.db.get_item(
            TableName=self.table,
            Key=_interval_keys(device_id, [start_ms])[0],
            ProjectionExpression="points",
        ).get("Item")
        return decode_points(bytes(item["points"]["B"])) if item else None

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.db.query(TableName=self.table, ConsistentRead=True, **kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page or "Limit" in kwargs:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def read_range(
        self, device_id: str, first_ms: int, end_ms: int
    ) -> tuple[dict[int, StoredInterval], list[Point]]:
        """Stored intervals in [first_ms, end_ms) and the LOOKBACK readings before them."""
        key = {":pk": {"S": device_id}}
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                **key,
                ":lo": {"S": contract.interval_sk(first_ms)},
                ":hi": {"S": contract.interval_sk(end_ms - 1)},
            },
        )
        stored = {s.start_ms: s for s in map(parse_interval, items)}
        before = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                **key,
                ":lo": {"S": contract.INTERVAL_SK_PREFIX},
                ":hi": {"S": contract.interval_sk(first_ms - 1)},
            },
            ScanIndexForward=False,
            Limit=LOOKBACK,
        )
        context: list[Point] = []
        for item in reversed(before):
            context.extend(parse_interval(item).points)
        return stored, context[-LOOKBACK:]

    def write(self, plan: Plan, calendar: Calendar | None = None) -> int:
        """Apply a plan; returns the number of items written. Raises ConcurrentUpdate.
        `calendar`: the building's clock its closed days are totalled by (None: the plan
        closes no interval)."""
        from botocore.exceptions import ClientError

        written = 0
        try:
            for interval in plan.intervals:
                condition: dict[str, Any]
                if interval.expected_rev is None:
                    condition = {"ConditionExpression": "attribute_not_exists(pk)"}
                else:
                    condition = {
                        "ConditionExpression": "rev = :rev",
                        "ExpressionAttributeValues": {":rev": _n(interval.expected_rev)},
                    }
                self.db.put_item(
                    TableName=self.table,
                    Item=interval_item(plan.device_id, interval, self.ttl_days),
                    **condition,
                )
                written += 1
            if calendar is not None and (days := closed_days(plan, calendar)):
                written += self._total_days(plan.device_id, days, calendar)
            if plan.hot is not None:
                if plan.expected_version is None:
                    condition = {"ConditionExpression": "attribute_not_exists(pk)"}
                else:
                    condition = {
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": _n(plan.expected_version)},
                    }
                self.db.put_item(
                    TableName=self.table, Item=hot_item(plan.device_id, plan.hot), **condition
                )
                written += 1
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(plan.device_id) from error
            raise
        return written

    def _total_days(self, device_id: str, days: list[Day], calendar: Calendar) -> int:
        """Total each day again from its interval items and write its day item where it
        differs. The day before the first is totalled too if it has no item: a version
        that kept UTC days (a canary runs both), or a day no batch closed, leaves none."""
        before = calendar.day(days[0].start_ms - 1)
        stored = {
            item["day"]["S"]: item
            for item in self._query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={
                    ":pk": {"S": device_id},
                    ":lo": {"S": contract.day_sk(before.name)},
                    ":hi": {"S": contract.day_sk(days[-1].name)},
                },
            )
        }
        wanted = ([] if before.name in stored else [before]) + days
        return sum(
            self._total_day(device_id, day, calendar, stored.get(day.name)) for day in wanted
        )

    def _total_day(
        self, device_id: str, day: Day, calendar: Calendar, current: dict[str, Any] | None
    ) -> int:
        """Write the day's item if its total from the interval items differs from `current`
        (a day with no interval gets none)."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={
                ":pk": {"S": device_id},
                ":lo": {"S": contract.interval_sk(day.start_ms)},
                ":hi": {"S": contract.interval_sk(day.end_ms - 1)},
            },
            ProjectionExpression="energy_wh",
        )
        if not items:
            return 0
        total_mwh = sum(round(float(item["energy_wh"]["N"]) * 1000) for item in items)
        item = {
            PK: {"S": device_id},
            SK: {"S": contract.day_sk(day.name)},
            "day": {"S": day.name},
            "time_zone": {"S": calendar.zone_name},
            "start_ms": _n(day.start_ms),
            "end_ms": _n(day.end_ms),
            "energy_wh": _n(total_mwh / 1000),
            "interval_count": _n(len(items)),
        }
        # Compare values, not strings: DynamoDB normalises numbers ("58.0" reads as "58").
        if current is not None and _day_values(current) == _day_values(item):
            return 0
        self.db.put_item(TableName=self.table, Item=item)
        return 1

    # --- alert markers (see alerts.py) ---------------------------------------------------

    def claim_alert(self, marker: Marker) -> Marker | None:
        """Record the alert as pending unless its marker exists. Returns the marker to
        publish: this one if newly claimed, the stored one if an earlier attempt left it
        pending; None if it was sent already. Read first: a later interval of an alerted
        period asks again, and a read costs a fifth of the failed conditional put."""
        from botocore.exceptions import ClientError

        key = {PK: {"S": marker.device_id}, SK: {"S": _marker_sk(marker)}}
        found = self.db.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        if "Item" in found:
            return _claimed(found["Item"])
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_marker_item(marker, alerts.PENDING),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            existing = error.response.get("Item")  # claimed meanwhile by another attempt
            if existing is None:  # not returned: read it
                existing = self.db.get_item(TableName=self.table, Key=key, ConsistentRead=True)
                existing = existing.get("Item")
            return None if existing is None else _claimed(existing)
        return marker

    def pending_alerts(self, device_id: str) -> list[Marker]:
        """The device's markers still pending (claimed, not yet accepted by SNS)."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :alert)",
            FilterExpression="#state = :pending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":pk": {"S": device_id},
                ":alert": {"S": contract.ALERT_SK_PREFIX},
                ":pending": {"S": alerts.PENDING},
            },
        )
        return [_parse_marker(item) for item in items]

    def mark_alert_sent(self, marker: Marker) -> None:
        """Pending -> sent. A marker already sent (a racing invocation) is left as it is."""
        from botocore.exceptions import ClientError

        try:
            self.db.put_item(
                TableName=self.table,
                Item=_marker_item(marker, alerts.SENT),
                ConditionExpression="#state = :pending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":pending": {"S": alerts.PENDING}},
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise


def _condition_failed(error: Any) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _marker_sk(marker: Marker) -> str:
    sk = contract.alert_sk(marker.kind, iso_utc(marker.period_ms))
    return sk if marker.status == alerts.ALERTING else f"{sk}#{marker.status}"


def _marker_item(marker: Marker, state: str) -> dict[str, Any]:
    return {
        PK: {"S": marker.device_id},
        SK: {"S": _marker_sk(marker)},
        "state": {"S": state},
        "kind": {"S": marker.kind},
        "period_ms": _n(marker.period_ms),
        "subject": {"S": marker.subject},
        "message": {"S": marker.message},
        "status": {"S": marker.status},
        TTL_ATTRIBUTE: _n(marker.period_ms // 1000 + alerts.MARKER_TTL_S),
    }


def _hot_keys(device_ids: list[str]) -> list[dict[str, Any]]:
    return [{PK: {"S": d}, SK: {"S": contract.LATEST_SK}} for d in device_ids]


def _interval_keys(device_id: str, starts: list[int]) -> list[dict[str, Any]]:
    return [{PK: {"S": device_id}, SK: {"S": contract.interval_sk(s)}} for s in starts]


def _claimed(item: dict[str, Any]) -> Marker | None:
    """An existing marker: to publish if still pending, else nothing (markers without a
    state predate pending: sent or lost)."""
    return _parse_marker(item) if item.get("state", {}).get("S") == alerts.PENDING else None


def _parse_marker(item: dict[str, Any]) -> Marker:
    return Marker(
        device_id=item[PK]["S"],
        kind=item["kind"]["S"],
        period_ms=int(item["period_ms"]["N"]),
        subject=item["subject"]["S"],
        message=item["message"]["S"],
        status=item.get("status", {}).get("S", alerts.ALERTING),
    )
