"""Reads what the pipeline stored and checks it against the simulator's ground truth.

Conservation: every reading-equivalent published is stored or quarantined, except the
extra copies a duplicated message carries, which the runtime merges by event time (its
documented treatment), and what a meter dropped from its full offline buffer (never
published, so never the pipeline's to lose): lost = published - dropped at the meter -
duplicate copies that arrived - stored - quarantined = 0.

Energy: per apartment, the sum of its stored interval energies must equal the ground
truth's expected energy (register rises between its first and last reading, minus what
the documented meter-swap treatment does not count) within ENERGY_TOLERANCE_WH: the
registers travel with mWh resolution and the runtime sums integer mWh, so any difference
beyond rounding is a real defect.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from energy_runtime import contract, queries

from devkit.runner.provision import Deployment
from devkit.simulator.meters import DeviceTruth, Message
from energy_cli.recovery import messages_waiting

ENERGY_TOLERANCE_WH = 0.01


@dataclass
class Results:
    stored: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    per_device: dict[str, dict[str, Any]] = field(default_factory=dict)
    intervals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    alert_sent_ms: list[int | None] = field(default_factory=list)  # when SNS delivered each
    raw_archive_rows: int = 0
    raw_archive_objects: int = 0
    processed_objects: int = 0
    on_failure_messages: int = 0
    dead_letters: int = 0


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


def collect(deployment: Deployment, devices: list[str]) -> Results:
    results = Results()
    table = (
        deployment.session()
        .resource("dynamodb", endpoint_url=deployment.endpoint, verify=deployment.ca_bundle)
        .Table(deployment.table_name)
    )
    for device in devices:
        rows = queries.device_intervals(table, device)
        results.intervals[device] = rows
        stored = sum(int(r["reading_count"]) for r in rows)
        results.stored += stored
        results.per_device[device] = {
            "stored": stored,
            "energy_wh": sum(float(r["energy_wh"]) for r in rows),
            "daily_wh": queries.device_daily_energy(table, device),
            "latest": queries.device_latest(table, device),
        }
    s3 = deployment.client("s3")
    reasons: Counter[str] = Counter()
    for key in _objects(s3, deployment.archive_bucket, contract.QUARANTINE_PREFIX):
        body = s3.get_object(Bucket=deployment.archive_bucket, Key=key)["Body"].read().decode()
        for line in body.splitlines():
            if line.strip():
                record = json.loads(line)
                # The processor keeps a device's refused readings on one line.
                reasons[record.get("reason", "unknown")] += len(record.get("readings", [0]))
    results.quarantined = sum(reasons.values())
    results.quarantined_by_reason = dict(reasons)
    raw_keys = _objects(s3, deployment.archive_bucket, contract.RAW_PREFIX)
    results.raw_archive_objects = len(raw_keys)
    import io

    import pyarrow.parquet as pq

    for key in raw_keys:
        data = s3.get_object(Bucket=deployment.archive_bucket, Key=key)["Body"].read()
        results.raw_archive_rows += pq.read_metadata(io.BytesIO(data)).num_rows
    processed = _objects(s3, deployment.archive_bucket, contract.PROCESSED_PREFIX)
    results.processed_objects = len(processed)
    sqs = deployment.client("sqs")
    if deployment.alert_tap_url:
        while True:
            messages = sqs.receive_message(
                QueueUrl=deployment.alert_tap_url,
                MaxNumberOfMessages=10,
                AttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    body = json.loads(message["Body"])
                except json.JSONDecodeError:
                    body = {"message": message["Body"]}
                results.alerts.append(body if isinstance(body, dict) else {"message": body})
                sent = message.get("Attributes", {}).get("SentTimestamp")
                results.alert_sent_ms.append(int(sent) if sent else None)
            sqs.delete_message_batch(
                QueueUrl=deployment.alert_tap_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
    for logical, url in deployment.queues.items():
        depth = messages_waiting(sqs, url)
        if url == deployment.mappings["batching"].on_failure_url:
            results.on_failure_messages += depth
        elif "Dead" in logical or "DLQ" in logical.upper():
            results.dead_letters += depth
    return results


@dataclass
class Verdict:
    published: int
    duplicates: int
    stored: int
    quarantined: int
    lost: int
    energy_mismatches: list[dict[str, Any]]
    dropped_at_meter: int = 0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and not self.energy_mismatches


@dataclass(frozen=True)
class MeterDrops:
    """What the meters' full offline buffers dropped, as the verification counts it."""

    readings: int = 0  # reading-equivalents of the dropped messages
    duplicate_copies: int = 0  # extra copies that `truth` counts but that did not arrive
    missing: dict[str, frozenset[int]] = field(default_factory=dict)  # event times, per device


def meter_drops(dropped: list[Message], duplicated: set[tuple[str, bytes]]) -> MeterDrops:
    """A dropped duplicate is an extra copy less; a dropped original whose duplicate
    arrived is one too (the duplicate brought the readings); any other dropped original
    is readings that never left the meter."""
    dropped_copies = {(m.device_id, m.payload) for m in dropped if m.kind == "duplicate"}
    copies = 0
    missing: dict[str, set[int]] = {}
    for message in dropped:
        key = (message.device_id, message.payload)
        if message.kind == "duplicate" or (key in duplicated and key not in dropped_copies):
            copies += message.readings
        elif message.last_ts:  # readings, not garbage
            body = json.loads(message.text)
            for reading in body.get("readings", [body]):
                missing.setdefault(message.device_id, set()).add(int(reading["ts"]))
    return MeterDrops(
        readings=sum(m.readings for m in dropped),
        duplicate_copies=copies,
        missing={device: frozenset(times) for device, times in missing.items()},
    )


def verify(
    published: int,
    truth: dict[str, DeviceTruth],
    results: Results,
    drops: MeterDrops | None = None,
) -> Verdict:
    drops = drops or MeterDrops()
    for device, times in drops.missing.items():
        truth[device].finish(missing=times)
    duplicates = sum(t.duplicate_readings for t in truth.values()) - drops.duplicate_copies
    lost = published - drops.readings - duplicates - results.stored - results.quarantined
    mismatches = []
    for device, expected in truth.items():
        stored = results.per_device.get(device, {}).get("energy_wh", 0.0)
        if abs(stored - expected.expected_energy_wh) > ENERGY_TOLERANCE_WH:
            mismatches.append(
                {
                    "device_id": device,
                    "stored_wh": round(stored, 3),
                    "expected_wh": round(expected.expected_energy_wh, 3),
                    "difference_wh": round(stored - expected.expected_energy_wh, 3),
                    "resets": expected.resets,
                    "late_readings": expected.late_readings,
                }
            )
    return Verdict(
        published, duplicates, results.stored, results.quarantined, lost, mismatches,
        dropped_at_meter=drops.readings,
    )  # fmt: skip


# What two runs of the same scenario must agree on, item by item: everything an interval
# or day item holds except its revision counter (how many writes it took differs when a
# fault makes the pipeline write a batch twice; what the item says must not).
REVISION_ATTRIBUTES = frozenset({"rev"})


def table_content(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The table's interval and day items by `pk|sk`, as comparable JSON values."""
    dynamodb = deployment.client("dynamodb")
    content: dict[str, dict[str, Any]] = {}
    prefixes = (contract.INTERVAL_SK_PREFIX, contract.DAY_SK_PREFIX)
    for page in dynamodb.get_paginator("scan").paginate(TableName=deployment.table_name):
        for item in page["Items"]:
            sort_key = item[contract.SORT_KEY]["S"]
            if not sort_key.startswith(prefixes):
                continue
            key = f"{item[contract.PARTITION_KEY]['S']}|{sort_key}"
            content[key] = {
                name: _comparable(value)
                for name, value in sorted(item.items())
                if name not in REVISION_ATTRIBUTES
            }
    return dict(sorted(content.items()))


def _comparable(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    if kind == "B":
        return {"B": bytes(raw).hex()}
    if kind == "M":
        return {"M": {k: _comparable(v) for k, v in sorted(raw.items())}}
    if kind == "L":
        return {"L": [_comparable(v) for v in raw]}
    return {kind: sorted(raw) if kind in ("SS", "NS") else raw}


def differences(ours: dict[str, Any], reference: dict[str, Any]) -> list[dict[str, Any]]:
    """Items that one run has and the other lacks, or that say something else."""
    found = []
    for key in sorted(set(ours) | set(reference)):
        if ours.get(key) != reference.get(key):
            found.append({"item": key, "this_run": ours.get(key), "reference": reference.get(key)})
    return found


def alert_keys(alerts: list[dict[str, Any]], period_minutes: int) -> Counter[tuple[str, str, str]]:
    """Alerts by what makes one alert: device, kind and period (its content may differ
    with the interval of the period that raised it)."""
    width = period_minutes * 60
    keys: Counter[tuple[str, str, str]] = Counter()
    for alert in alerts:
        start = datetime.fromisoformat(str(alert.get("interval_start", ""))).timestamp()
        period = datetime.fromtimestamp(start - start % width, UTC).isoformat()
        kind = str(alert.get("kind"))
        if alert.get("status", "alert") != "alert":  # a resolution is a message of its own
            kind = f"{kind}/{alert['status']}"
        keys[(str(alert.get("device_id")), kind, period)] += 1
    return keys


def alert_differences(
    ours: list[dict[str, Any]], reference: list[dict[str, Any]], period_minutes: int
) -> dict[str, list[list[str]]]:
    """The reference's alerts this run did not send, the ones it sent besides, and the
    ones it sent more than once. Resolutions missing are listed apart: an all-clear follows
    the data as it arrived (late readings that raise an alert after the intervals after it
    closed leave it open until a later interval is normal, at the end of a run not yet),
    while an alert is sent at least once whatever the faults."""
    mine, theirs = alert_keys(ours, period_minutes), alert_keys(reference, period_minutes)
    missing = sorted(set(theirs) - set(mine))
    return {
        "missing": [list(k) for k in missing if "/" not in k[1]],
        "missing_resolutions": [list(k) for k in missing if "/" in k[1]],
        "extra": [list(k) for k in sorted(set(mine) - set(theirs))],
        "duplicated": [list(k) for k, n in sorted(mine.items()) if n > 1],
    }
