"""Processor function: hand-off messages (SQS) -> DynamoDB state, Parquet, alerts.

Per invocation: merge the readings of all messages per device, read the devices' hot
items in bulk, plan each device's writes (state.py), then per device: claim the alerts the
plan raises (pending markers), write the items (conditional), publish the alerts and mark
them sent (alerts.py). Then the Parquet rows of what was committed (named by content, so a
retry rewrites the same objects; a redelivered message writes the rows of every interval
its readings touch again), and the quarantine of readings the table will not hold
(beyond an interval's cap, or refused by DynamoDB with an error no retry cures).

A device whose writes or alerts fail transiently fails only the messages that carried
it; a redelivered message republishes the device's pending alerts. A message that is not
a hand-off at all is quarantined, never retried forever: nothing a meter sends can put a
message in the dead-letter queue.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from energy_runtime import alerts, aws, contract, local_time, places, processed_archive, silence
from energy_runtime.aggregate import interval_start_ms, merge_points
from energy_runtime.codec import Point, decode_points
from energy_runtime.contract import QuarantineReason as Reason
from energy_runtime.local_time import Calendar
from energy_runtime.settings import ProcessorSettings, load_processor_settings
from energy_runtime.state import (
    HotState,
    Latest,
    Plan,
    StoredInterval,
    closing_starts,
    plan_device,
    split_late,
)
from energy_runtime.store import ConcurrentUpdate, Store
from energy_runtime.telemetry import Telemetry

telemetry = Telemetry(contract.PROCESSOR_SERVICE)
logger = telemetry.logger
metrics = telemetry.metrics
MAX_ATTEMPTS_PER_DEVICE = 3
DEVICE_WORKERS = 16  # concurrent devices per invocation (boto3 clients are thread-safe)


@cache
def settings() -> ProcessorSettings:
    return load_processor_settings()


@dataclass(slots=True)
class DeviceInput:
    points: list[Point] = field(default_factory=list)
    latest: Latest | None = None
    message_ids: set[str] = field(default_factory=set)
    reading_count: int = 0
    redelivered: bool = False  # a message of the device was received before


@dataclass(frozen=True, slots=True)
class Outcome:
    # "done" | "retry" (concurrent update: plan again) | "failed" (transient: SQS again)
    # | "unwritable" (an error no retry cures: the readings go to the quarantine)
    status: str
    written: int = 0
    alerts_sent: int = 0
    detail: str = ""


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _collect(records: list[dict[str, Any]]) -> tuple[dict[str, DeviceInput], list[dict[str, Any]]]:
    """Per-device inputs, and the records that are not valid hand-off messages."""
    # pydantic is imported on first use, not at cold start (import time budget)
    from pydantic import ValidationError

    from energy_runtime.models import HandoffMessage

    devices: dict[str, DeviceInput] = defaultdict(DeviceInput)
    poison: list[dict[str, Any]] = []
    for record in records:
        try:
            message = HandoffMessage.model_validate_json(record["body"])
            decoded = [
                (
                    device,
                    [
                        decode_points(base64.b64decode(i.points, validate=True))
                        for i in device.intervals
                    ],
                )
                for device in message.devices
            ]
        except (ValidationError, ValueError, binascii.Error):
            poison.append(record)
            continue
        redelivered = _receive_count(record) > 1
        for device, groups in decoded:
            entry = devices[device.device_id]
            entry.message_ids.add(record["messageId"])
            entry.redelivered |= redelivered
            for group in groups:
                entry.points.extend(group)
                entry.reading_count += len(group)
            latest = device.latest
            candidate = Latest(
                latest.ts_ms,
                latest.energy_mwh,
                latest.power_dw,
                latest.received_at,
                tuple(sorted(latest.optional.items())),
            )
            entry.latest = candidate if entry.latest is None else max(entry.latest, candidate)
    return devices, poison


def _plan(
    store: Store, device_id: str, hot: HotState | None, entry: DeviceInput, cfg: ProcessorSettings
) -> Plan:
    points = merge_points(entry.points)
    late, current = split_late(hot, points)
    stored: dict[int, StoredInterval] = {}
    context: list[Point] = []
    if late and hot is not None:
        first = interval_start_ms(late[0].ts_ms, cfg.interval_minutes)
        stored, context = store.read_range(device_id, first, hot.open_start_ms)
    closing = [s for s in closing_starts(hot, current, cfg.interval_minutes) if s not in stored]
    stored.update(store.read_intervals(device_id, closing))
    assert entry.latest is not None
    return plan_device(
        device_id,
        hot,
        points,
        entry.latest,
        stored=stored,
        late_context=context,
        interval_minutes=cfg.interval_minutes,
        max_power_w=cfg.rules.max_power_w,
        max_per_interval=cfg.max_readings_per_interval,
    )


def _plan_or_none(
    store: Store, device_id: str, hot: HotState | None, entry: DeviceInput, cfg: ProcessorSettings
) -> Plan | None:
    try:
        return _plan(store, device_id, hot, entry, cfg)
    except aws.transient_errors():
        logger.exception("reading stored intervals failed", extra={"device_id": device_id})
        return None


@dataclass(frozen=True, slots=True)
class Alerting:
    """Where alerts go (SNS) and how they learn where a meter is (its thing, or nothing)."""

    sns: Any
    locate: Callable[[str], dict[str, str]]


def _apply_device(
    store: Store, alerting: Alerting, cfg: ProcessorSettings, plan: Plan, redelivered: bool
) -> Outcome:
    """Claim the plan's alerts, write its items, then publish what is pending."""
    try:
        place = cache(lambda: alerting.locate(plan.device_id))  # looked up when first asked
        # The building's clock (its thing's zone) decides a closed interval's day and how
        # it is judged; only a closed interval needs it, so only then is the place looked up.
        calendar = _calendar(plan.device_id, place(), cfg) if plan.closed_starts else None
        # Claimed before the aggregates are written: a retry after that merges nothing new
        # and would not raise these alerts again, but it finds their pending markers.
        outbox = _claim_alerts(store, cfg, plan, place, calendar or Calendar(cfg.time_zone))
        written = store.write(plan, calendar)
    except ConcurrentUpdate:
        return Outcome("retry")
    except aws.transient_errors() as error:
        if aws.is_data_error(error):
            # The same write would fail on every delivery: set the readings aside.
            logger.exception("device write refused", extra={"device_id": plan.device_id})
            return Outcome("unwritable", detail=str(error)[:300])
        logger.exception("device write failed", extra={"device_id": plan.device_id})
        return Outcome("failed")
    replay = plan.hot is None and not plan.changed
    try:
        if redelivered or replay:
            # An earlier attempt may have claimed alerts it could not publish.
            claimed = {(m.kind, m.period_ms, m.status) for m in outbox}
            outbox += [
                m
                for m in store.pending_alerts(plan.device_id)
                if (m.kind, m.period_ms, m.status) not in claimed
            ]
    except aws.transient_errors():
        logger.exception("reading pending alerts failed", extra={"device_id": plan.device_id})
        return Outcome("failed", written)
    sent = 0
    for marker in outbox:
        extra = {"device_id": marker.device_id, "kind": marker.kind}
        try:
            alerts.publish(alerting.sns, cfg.alert_topic_arn, marker)
        except aws.transient_errors():
            # The marker stays pending; SQS redelivers the device's messages.
            logger.exception("alert publish failed (kept pending)", extra=extra)
            return Outcome("failed", written, sent)
        sent += 1
        try:
            store.mark_alert_sent(marker)
        except aws.transient_errors():
            # Published; left pending, a later redelivery may publish it once more.
            logger.exception("marking an alert sent failed", extra=extra)
    return Outcome("done", written, sent)


@dataclass(slots=True)
class _Tally:
    """What one invocation did, for its metrics and its reply to SQS."""

    failed: set[str] = field(default_factory=set)  # devices whose messages go back
    committed: dict[str, Plan] = field(default_factory=dict)  # devices whose items are stored
    unwritable: dict[str, str] = field(default_factory=dict)  # device -> the refusal
    written: int = 0
    alerts_sent: int = 0
    accepted: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)  # reason -> readings


def process_sqs_event(
    event: dict[str, Any],
    *,
    config: ProcessorSettings,
    dynamodb: Any,
    s3: Any,
    sns: Any,
    iot: Any = None,
) -> dict[str, Any]:
    """`iot`: where alerts find the meter's building and apartment (None: they name the
    meter alone)."""
    records = event.get("Records", [])
    alerting = Alerting(
        sns, (lambda device: places.place_of(iot, device)) if iot is not None else _nowhere
    )
    devices, poison = _collect(records)
    if poison:
        _quarantine_messages(s3, config, poison)
    store = Store(dynamodb, config.table_name, ttl_days=config.interval_ttl_days)
    tally = _Tally()
    # Devices are independent: their reads and conditional writes run side by side, so an
    # invocation's latency is not the sum of thousands of round trips.
    with ThreadPoolExecutor(max_workers=DEVICE_WORKERS) as pool:
        pending = sorted(devices)
        for attempt in range(MAX_ATTEMPTS_PER_DEVICE):
            if not pending:
                break
            plans = _plan_devices(pool, store, config, devices, pending, tally)
            if plans is None:
                break
            retry = _apply_devices(pool, store, alerting, config, devices, plans, tally)
            if retry and attempt == MAX_ATTEMPTS_PER_DEVICE - 1:
                tally.failed.update(retry)  # still contended after every attempt
            pending = retry
    # The archive holds what the table holds: rows of committed items only, after them.
    _archive_rows(s3, config, devices, tally)
    _quarantine_refused(s3, config, devices, tally)
    failed_messages = {m for d in tally.failed for m in devices[d].message_ids}
    _report(records, devices, poison, tally, failed_messages)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed_messages)]}


def _plan_devices(
    pool: ThreadPoolExecutor,
    store: Store,
    config: ProcessorSettings,
    devices: dict[str, DeviceInput],
    pending: list[str],
    tally: _Tally,
) -> dict[str, Plan] | None:
    """Each pending device's plan; None if their state could not be read at all."""
    try:
        hot_states = store.read_hot(pending)
    except aws.transient_errors():
        logger.exception("reading device state failed")
        tally.failed.update(pending)
        return None
    planned = pool.map(
        lambda device_id: _plan_or_none(
            store, device_id, hot_states.get(device_id), devices[device_id], config
        ),
        pending,
    )
    plans: dict[str, Plan] = {}
    for device_id, plan in zip(pending, planned, strict=True):
        if plan is None:
            tally.failed.add(device_id)
        else:
            plans[device_id] = plan
    return plans


def _archive_rows(
    s3: Any, config: ProcessorSettings, devices: dict[str, DeviceInput], tally: _Tally
) -> None:
    """Parquet rows of the committed intervals, written after the items: so every row of
    the archive is a stored (device, interval, revision). Objects are named by content, so
    a retry rewrites the same ones; a redelivered message archives every interval its
    readings touch (its first attempt may have stopped between the items and the rows)."""
    rows = []
    for device_id, plan in tally.committed.items():
        rows_of = plan.touched if devices[device_id].redelivered else plan.changed
        seen: set[int] = set()
        for summary, revision in rows_of:
            if summary.start_ms not in seen:
                seen.add(summary.start_ms)
                rows.append(
                    processed_archive.make_row(
                        device_id, summary, revision, config.interval_minutes
                    )
                )
    if not rows:
        return
    try:
        objects = processed_archive.parquet_objects(rows, config.processed_prefix)
        processed_archive.put_objects(s3, config.archive_bucket, objects)
    except aws.transient_errors():
        logger.exception("processed archive write failed")
        tally.failed.update(tally.committed)  # SQS again: the rows come from `touched`


def _quarantine_refused(
    s3: Any, config: ProcessorSettings, devices: dict[str, DeviceInput], tally: _Tally
) -> None:
    """Readings the table will not hold: beyond an interval's cap (rate_limited), or of a
    device whose write no retry can cure (unwritable). Kept, with why, and counted."""
    lines: list[str] = []
    refused: set[str] = set()
    for device_id, plan in tally.committed.items():
        if plan.rate_limited:
            lines.append(_refused_line(device_id, Reason.RATE_LIMITED, plan.rate_limited,
                                       f"beyond {config.max_readings_per_interval} readings "
                                       "in their interval", devices[device_id]))  # fmt: skip
            tally.quarantined[Reason.RATE_LIMITED] += len(plan.rate_limited)
            refused.add(device_id)
    for device_id, detail in tally.unwritable.items():
        entry = devices[device_id]
        points = merge_points(entry.points)
        lines.append(_refused_line(device_id, Reason.UNWRITABLE, points, detail, entry))
        tally.quarantined[Reason.UNWRITABLE] += entry.reading_count
        refused.add(device_id)
    if not lines:
        return
    body = ("\n".join(sorted(lines)) + "\n").encode()
    digest = hashlib.sha256(body).hexdigest()[:32]
    key = f"{config.quarantine_prefix}{contract.partition_path(time.time() * 1000)}" + (
        f"processor-{digest}.jsonl"
    )
    try:
        s3.put_object(Bucket=config.archive_bucket, Key=key, Body=body)
    except aws.transient_errors():
        logger.exception("quarantine write failed")
        tally.failed.update(refused)  # kept nowhere yet: SQS again
        for reason in (Reason.RATE_LIMITED, Reason.UNWRITABLE):
            tally.quarantined.pop(reason, None)
        return
    tally.failed.difference_update(tally.unwritable)  # set aside: acknowledged


def _refused_line(
    device_id: str, reason: str, points: list[Point], detail: str, entry: DeviceInput
) -> str:
    return json.dumps(
        {
            "reason": reason,
            "detail": detail,
            "device_id": device_id,
            "message_ids": sorted(entry.message_ids),
            "readings": [
                {"ts_ms": p.ts_ms, "energy_mwh": p.energy_mwh, "power_dw": p.power_dw}
                for p in sorted(points)
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _apply_devices(
    pool: ThreadPoolExecutor,
    store: Store,
    alerting: Alerting,
    config: ProcessorSettings,
    devices: dict[str, DeviceInput],
    plans: dict[str, Plan],
    tally: _Tally,
) -> list[str]:
    """Write every plan; returns the devices to plan again (a concurrent update won)."""
    outcomes = pool.map(
        lambda plan: (
            plan.device_id,
            _apply_device(store, alerting, config, plan, devices[plan.device_id].redelivered),
        ),
        plans.values(),
    )
    retry: list[str] = []
    for device_id, outcome in outcomes:
        tally.written += outcome.written
        tally.alerts_sent += outcome.alerts_sent
        if outcome.status == "retry":
            retry.append(device_id)
        elif outcome.status == "failed":
            tally.failed.add(device_id)
        elif outcome.status == "unwritable":
            tally.unwritable[device_id] = outcome.detail
        else:
            tally.committed[device_id] = plans[device_id]
            tally.accepted += devices[device_id].reading_count - len(plans[device_id].rate_limited)
    return retry


def _report(
    records: list[dict[str, Any]],
    devices: dict[str, DeviceInput],
    poison: list[dict[str, Any]],
    tally: _Tally,
    failed_messages: set[str],
) -> None:
    telemetry.count(contract.AGGREGATES_WRITTEN, tally.written)
    telemetry.count(contract.ALERTS_SENT, tally.alerts_sent)
    if tally.quarantined:
        telemetry.count(contract.READINGS_QUARANTINED, sum(tally.quarantined.values()))
        telemetry.count_by_reason(tally.quarantined)
    logger.info(
        "hand-off applied",
        extra={
            "messages": len(records),
            "devices": len(devices),
            "readings": tally.accepted,
            "items_written": tally.written,
            "alerts_sent": tally.alerts_sent,
            "poison_messages": len(poison),
            "quarantined_by_reason": dict(tally.quarantined),
            "failed_messages": len(failed_messages),
        },
    )


def _nowhere(_device_id: str) -> dict[str, str]:
    return {}


def _claim_alerts(
    store: Store,
    config: ProcessorSettings,
    plan: Plan,
    place: Callable[[], dict[str, str]],
    calendar: Calendar,
) -> list[alerts.Marker]:
    """Evaluate the plan's alerts and claim their markers; returns the ones to publish."""
    raised: list[tuple[int, alerts.Alert]] = []  # (the interval that raised it, the alert)
    threshold = config.high_usage_threshold_wh
    # The open interval before this plan, if above the threshold, claimed its period's
    # alert then: a claim of it again (for it, or a later interval of the same period)
    # would be a failed conditional put, a write unit each batch.
    judged, minutes = plan.previous_open, config.alert_period_minutes
    claimed_period = (
        alerts.period_start_ms(judged.start_ms, minutes)
        if judged and judged.own_energy_wh > threshold
        else None
    )
    for summary, _rev in plan.changed:
        if alerts.period_start_ms(summary.start_ms, minutes) == claimed_period:
            continue
        alert = alerts.high_usage(plan.device_id, summary, threshold)
        if alert:
            raised.append((summary.start_ms, alert))
    # Judged when it closes and again whenever late readings change it, each time on what
    # it holds then: an interval that closed short of readings a fault held back is judged
    # again once they arrive (at least once), and its marker keeps it to one alert. Only
    # an interval with the minimum excess in it is compared with earlier days (a read).
    # The plan's interval items are not written yet: the baseline sees them as planned.
    # Reads are kept for the plan: a resolution asks for what a judgement read.
    known: dict[int, float | None] = {w.summary.start_ms: w.summary.energy_wh
                                      for w in plan.intervals}  # fmt: skip

    def energies_at(starts: list[int]) -> dict[int, float]:
        missing = [s for s in starts if s not in known]
        if missing:
            found = store.energies_at(plan.device_id, missing)
            known.update((s, found.get(s)) for s in missing)
        return {s: e for s in starts if (e := known[s]) is not None}

    rules = detector_rules(config, calendar)
    planned_points = {w.summary.start_ms: w.points for w in plan.intervals}

    def readings_at(ts_ms: int) -> list[Point] | None:
        start = interval_start_ms(ts_ms, config.interval_minutes)
        if start in planned_points:
            return planned_points[start]
        return store.interval_points(plan.device_id, start)

    for summary in [*plan.newly_closed, *plan.revised]:
        found = alerts.closed_interval_alerts(
            plan.device_id, summary, energies_at, readings_at, rules
        )
        raised.extend((summary.start_ms, alert) for alert in found)
    # What is still open goes on the hot item (the plan's, or the one it would write).
    hot = plan.hot or plan.next_hot
    candidates, still_open = alerts.follow_open(
        plan.device_id, hot.open_alerts if hot else (), raised, plan.newly_closed,
        energies_at, rules,
    )  # fmt: skip
    if hot is not None and still_open != hot.open_alerts:
        plan.hot = replace(hot, open_alerts=still_open)
    if plan.silence_ended is not None:
        candidates.append(alerts.silence_resolved(plan.device_id, *plan.silence_ended))
    if not candidates:
        return []
    outbox: list[alerts.Marker] = []
    seen: set[tuple[str, int, str]] = set()
    for alert in candidates:
        marker = alert.marker(config.alert_period_minutes, place())
        if (marker.kind, marker.period_ms, marker.status) in seen:
            continue  # one per device, kind and period: the first interval raises it
        seen.add((marker.kind, marker.period_ms, marker.status))
        claimed = store.claim_alert(marker)
        if claimed is not None:
            outbox.append(claimed)
    return outbox


def detector_rules(config: ProcessorSettings, calendar: Calendar) -> alerts.DetectorRules:
    """What the detectors judge a meter's closed intervals by: the settings, in its
    building's clock."""
    unusual = alerts.UnusualRules(
        min_z=config.unusual_min_z, min_excess_wh=config.unusual_min_excess_wh,
        warmup_days=config.warmup_days, baseline_days=config.baseline_days,
        sustain_intervals=config.unusual_sustain_intervals,
        interval_minutes=config.interval_minutes,
        tolerance_intervals=config.unusual_tolerance_minutes // config.interval_minutes,
        calendar=calendar,
    )  # fmt: skip
    baseload = alerts.BaseloadRules(
        min_step_w=config.baseload_min_step_w, nights=config.baseload_nights,
        min_z=config.unusual_min_z, warmup_days=config.warmup_days,
        baseline_days=config.baseline_days, interval_minutes=config.interval_minutes,
        calendar=calendar,
    )  # fmt: skip
    return alerts.DetectorRules(
        high_usage_threshold_wh=config.high_usage_threshold_wh, unusual=unusual,
        baseload=baseload, stuck_min_wh=config.meter_stuck_min_wh,
        max_power_w=config.rules.max_power_w,
    )  # fmt: skip


_unknown_zones: set[tuple[str, str]] = set()  # (device, zone) warned about, per container


def _calendar(device_id: str, place: dict[str, str], config: ProcessorSettings) -> Calendar:
    """The meter's building's clock: its thing's zone if it names one the database knows,
    else the environment's (a bad attribute is logged once, and judged by the default)."""
    name = place.get(contract.TIME_ZONE_ATTRIBUTE)
    if name and local_time.is_zone(name):
        return Calendar(name)
    if name and (device_id, name) not in _unknown_zones:
        _unknown_zones.add((device_id, name))
        logger.warning(
            "the meter's thing names an unknown time zone: the environment's is used",
            extra={"device_id": device_id, "time_zone": name[:64], "default": config.time_zone},
        )
    return Calendar(config.time_zone)


def _quarantine_messages(s3: Any, config: ProcessorSettings, records: list[dict[str, Any]]) -> None:
    """Messages that are not hand-offs: keep them (with why) instead of retrying forever."""
    lines = [
        json.dumps(
            {
                "reason": Reason.BAD_HANDOFF_MESSAGE,
                "message_id": r.get("messageId"),
                "raw": r.get("body"),
            }
        )
        for r in records
    ]
    body = ("\n".join(lines) + "\n").encode()
    digest = hashlib.sha256(body).hexdigest()[:32]
    hour = contract.partition_path(time.time() * 1000)
    key = f"{config.quarantine_prefix}{hour}handoff-{digest}.jsonl"
    s3.put_object(Bucket=config.archive_bucket, Key=key, Body=body)
    telemetry.count(contract.READINGS_QUARANTINED, len(records))
    telemetry.count_by_reason(Counter({Reason.BAD_HANDOFF_MESSAGE: len(records)}))
    logger.error("quarantined messages that are not hand-offs", extra={"count": len(records)})


def sweep_silent_meters(
    *, config: ProcessorSettings, dynamodb: Any, sns: Any, iot: Any
) -> dict[str, Any]:
    """The scheduled silence sweep (energy_runtime.silence); raises if a meter's alert
    could not be sent, so the failure shows in the function's errors (the next sweep
    tries it again)."""
    report = silence.sweep(config=config, dynamodb=dynamodb, sns=sns, iot=iot, telemetry=telemetry)
    if report.failed:
        raise RuntimeError(f"silent meter alerts failed for {len(report.failed)} meters")
    return {
        "meters": report.meters,
        "reporting": report.reporting,
        "silent": report.silent,
        "alerts_sent": report.alerts_sent,
    }


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event == contract.SILENCE_SWEEP_EVENT:
        return sweep_silent_meters(
            config=settings(),
            dynamodb=aws.client("dynamodb"),
            sns=aws.client("sns"),
            iot=aws.client("iot"),
        )
    records = event.get("Records") or [{}]
    logger.set_correlation_id(records[0].get("messageId"))
    if context is not None:
        logger.append_keys(request_id=getattr(context, "aws_request_id", None))
    tracer = telemetry.tracer()
    with tracer.provider.in_subsegment("## processor") as subsegment:
        subsegment.put_annotation(key="messages", value=len(records))
        return process_sqs_event(
            event,
            config=settings(),
            dynamodb=aws.client("dynamodb"),
            s3=aws.client("s3"),
            sns=aws.client("sns"),
            iot=aws.client("iot"),
        )
