"""Rejected readings to S3 as JSON lines, partitioned by the hour they were received.

Object keys are derived from the records they hold (sequence number and position), so a
Lambda retry of the same batch rewrites the same object instead of adding a copy. A retry
with different batch boundaries can put a rejected reading in a second object; each line
carries (sequence_number, index), which identifies it, for de-duplication in queries.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from energy_runtime.contract import MAX_RECEIVED_AT_AHEAD_MS as MAX_AHEAD_MS
from energy_runtime.contract import (
    MIN_RECEIVED_AT_MS,
    QUARANTINE_COUNT,
    QUARANTINE_RAW_ENCODING,
    partition_path,
)
from energy_runtime.readings import Rejection, reading_excerpt


def _hour_prefix(prefix: str, received_at_ms: int) -> str:
    return prefix + partition_path(received_at_ms)


def _raw_text(raw: Any) -> str:
    """The rejected input as text: a record's excerpt or payload, a rejected reading's
    text (readings.reading_excerpt), or the readings a rate limit refused."""
    return raw if isinstance(raw, str) else reading_excerpt(raw)


def _line(rejection: Rejection, event_source_arn: str) -> str:
    line = {
        "device_id": rejection.device_id,
        "received_at": rejection.received_at,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "event_source_arn": event_source_arn,
        "sequence_number": rejection.sequence_number,
        "index": rejection.index,
        "raw": _raw_text(rejection.raw),
    }
    if rejection.raw_encoding:  # only then: every other line reads as it always has
        line[QUARANTINE_RAW_ENCODING] = rejection.raw_encoding
    if rejection.count > 1:
        line[QUARANTINE_COUNT] = rejection.count
    return json.dumps(line, separators=(",", ":"), sort_keys=True)


def quarantine_objects(
    rejections: list[Rejection], *, prefix: str, event_source_arn: str, fallback_ms: int
) -> dict[str, tuple[bytes, list[Rejection]]]:
    """Object key -> (JSON-lines body, the rejections in it)."""
    by_hour: dict[str, list[Rejection]] = defaultdict(list)
    for rejection in rejections:
        received = rejection.received_at
        if received is None or not MIN_RECEIVED_AT_MS <= received <= fallback_ms + MAX_AHEAD_MS:
            received = fallback_ms  # no trusted receive time: filed under the batch's clock
        by_hour[_hour_prefix(prefix, received)].append(rejection)
    objects: dict[str, tuple[bytes, list[Rejection]]] = {}
    for hour_prefix, group in by_hour.items():
        body = "\n".join(_line(r, event_source_arn) for r in group).encode() + b"\n"
        identity = "\n".join(f"{r.sequence_number}:{r.index}" for r in group)
        digest = hashlib.sha256(f"{event_source_arn}\n{identity}".encode()).hexdigest()[:32]
        objects[f"{hour_prefix}{digest}.jsonl"] = (body, group)
    return objects


def put_objects(
    s3: Any, bucket: str, objects: dict[str, tuple[bytes, list[Rejection]]]
) -> list[Rejection]:
    """Write the objects; returns the rejections whose object could not be written."""
    from energy_runtime.aws import transient_errors

    failed: list[Rejection] = []
    for key, (body, group) in objects.items():
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")
        except transient_errors():
            failed.extend(group)
    return failed
