"""Batching function: Kinesis batch -> validated partial aggregates on the hand-off queue.

Bad data is quarantined and never fails the batch; only a hand-off or quarantine write
that still fails after botocore's retries is reported in batchItemFailures (the earliest
record of each affected device), so Lambda retries from there. Everything downstream is
idempotent, so the records that get re-read on that retry change nothing twice.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from functools import cache
from typing import Any

from energy_runtime import aws, contract, handoff, quarantine
from energy_runtime.readings import Decoded, Rejection, decode_record
from energy_runtime.settings import BatchingSettings, load_batching_settings
from energy_runtime.telemetry import Telemetry

telemetry = Telemetry(contract.BATCHING_SERVICE)
logger = telemetry.logger
metrics = telemetry.metrics


@cache
def settings() -> BatchingSettings:
    return load_batching_settings()


def process_kinesis_event(
    event: dict[str, Any], *, config: BatchingSettings, sqs: Any, s3: Any
) -> dict[str, Any]:
    records = event.get("Records", [])
    if not records:
        return {"batchItemFailures": []}
    event_source_arn = records[0].get("eventSourceARN", "")
    decoded = Decoded(text_budget=config.max_batch_text_bytes)
    received = 0
    rules, max_bytes = config.rules, config.max_payload_bytes
    # The decode loop allocates ~10 objects per reading and creates no reference cycles:
    # pausing the cyclic collector spares it rescanning the heap dozens of times per batch
    # (reference counting still frees everything).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for record in records:
            received += decode_record(record, max_bytes, rules, decoded)
    finally:
        if collecting:
            gc.enable()

    by_device = [device_id for device_id, points in decoded.points.items() if points]
    # Bounded work per device: no hand-off, no item grows with what one meter sends.
    for device_id in by_device:
        decoded.rejected.extend(
            handoff.rate_limited(
                device_id, decoded, config.interval_minutes, config.max_readings_per_interval
            )
        )
    entries = [
        handoff.device_entry(device_id, decoded, config.interval_minutes, config.rules.max_power_w)
        for device_id in by_device
    ]
    messages = handoff.pack_messages(
        entries,
        interval_minutes=config.interval_minutes,
        event_source_arn=event_source_arn,
        first_sequence_number=records[0]["kinesis"]["sequenceNumber"],
        last_sequence_number=records[-1]["kinesis"]["sequenceNumber"],
    )
    failed_sequences: set[str] = set()
    for message in messages:
        try:
            sqs.send_message(QueueUrl=config.handoff_queue_url, MessageBody=message.body)
        except aws.transient_errors():
            logger.exception("hand-off failed", extra={"devices": len(message.device_ids)})
            failed_sequences.update(decoded.first_sequence[d] for d in message.device_ids)

    failed_rejections: list[Rejection] = []
    if decoded.rejected:
        objects = quarantine.quarantine_objects(
            decoded.rejected,
            prefix=config.quarantine_prefix,
            event_source_arn=event_source_arn,
            fallback_ms=int(time.time() * 1000),
        )
        failed_rejections = quarantine.put_objects(s3, config.archive_bucket, objects)
        failed_sequences.update(r.sequence_number for r in failed_rejections)

    reasons: Counter[str] = Counter()
    for rejection in decoded.rejected:
        reasons[rejection.reason] += rejection.count
    quarantined = decoded.quarantined_count
    telemetry.count(contract.READINGS_RECEIVED, received)
    telemetry.count(contract.READINGS_ACCEPTED, decoded.accepted_count)
    telemetry.count(contract.READINGS_QUARANTINED, quarantined)
    telemetry.count_by_reason(reasons)
    logger.info(
        "batch handed off",
        extra={
            "records": len(records),
            "readings_received": received,
            "readings_accepted": decoded.accepted_count,
            "readings_quarantined": quarantined,
            "quarantined_by_reason": dict(reasons),
            "devices": len(by_device),
            "messages": len(messages),
            "failed_records": len(failed_sequences),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in sorted(failed_sequences)]}


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or [{}]
    first = records[0]
    logger.set_correlation_id(
        f"{first.get('eventSourceARN', '')}/{first.get('kinesis', {}).get('sequenceNumber', '')}"
    )
    if context is not None:
        logger.append_keys(request_id=getattr(context, "aws_request_id", None))
    tracer = telemetry.tracer()
    with tracer.provider.in_subsegment("## batching") as subsegment:
        subsegment.put_annotation(key="records", value=len(records))
        return process_kinesis_event(
            event, config=settings(), sqs=aws.client("sqs"), s3=aws.client("s3")
        )
