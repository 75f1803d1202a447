"""Partial aggregates from the batching function to the processor (SQS message bodies).

A message holds, per device, its latest reading and one partial aggregate per interval:
the interval's readings (compact, see codec.py) with their summary. The processor merges
the readings into the stored state, so the summary is informative (logs, debugging) and a
replayed or re-split message changes nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from energy_runtime.aggregate import merge_points, split_by_interval, summarize
from energy_runtime.codec import Point, encode_points
from energy_runtime.readings import Decoded

# SQS takes 256 KiB per message; stay well below with the envelope and JSON escaping.
MAX_MESSAGE_BYTES = 200_000


@dataclass(slots=True)
class Message:
    body: str
    device_ids: list[str]


def device_entry(
    device_id: str, decoded: Decoded, interval_minutes: int, max_power_w: int
) -> dict[str, Any]:
    points = merge_points(decoded.points[device_id])
    newest, received_at, optional = decoded.latest[device_id]
    latest: dict[str, Any] = {
        "ts_ms": newest.ts_ms,
        "energy_mwh": newest.energy_mwh,
        "power_dw": newest.power_dw,
        "received_at": received_at,
    }
    if optional:
        latest["optional"] = optional
    intervals = []
    earlier: list[Point] = []
    for start_ms, group in split_by_interval(points, interval_minutes).items():
        summary = summarize(start_ms, earlier, group, max_power_w)
        intervals.append(
            {
                "start_ms": start_ms,
                "points": base64.b64encode(encode_points(group)).decode(),
                "reading_count": summary.reading_count,
                "energy_wh": summary.energy_wh,
                "power_min_w": summary.power_min_dw / 10,
                "power_max_w": summary.power_max_dw / 10,
                "power_mean_w": summary.power_mean_w,
                "first_ts_ms": summary.first_ts_ms,
                "last_ts_ms": summary.last_ts_ms,
            }
        )
        earlier = group
    return {"device_id": device_id, "latest": latest, "intervals": intervals}


def pack_messages(
    entries: list[dict[str, Any]],
    *,
    interval_minutes: int,
    event_source_arn: str,
    first_sequence_number: str,
    last_sequence_number: str,
) -> list[Message]:
    head = {
        "version": 1,
        "interval_minutes": interval_minutes,
        "event_source_arn": event_source_arn,
        "first_sequence_number": first_sequence_number,
        "last_sequence_number": last_sequence_number,
    }
    overhead = len(json.dumps(head)) + 20
    messages: list[Message] = []
    chunk: list[str] = []
    devices: list[str] = []
    size = overhead

    def flush() -> None:
        prefix = json.dumps(head, separators=(",", ":"))[:-1]
        messages.append(Message(prefix + ',"devices":[' + ",".join(chunk) + "]}", list(devices)))

    for entry in _split_large(entries):
        text = json.dumps(entry, separators=(",", ":"))
        if chunk and size + len(text) + 1 > MAX_MESSAGE_BYTES:
            flush()
            chunk, devices, size = [], [], overhead
        chunk.append(text)
        devices.append(entry["device_id"])
        size += len(text) + 1
    if chunk:
        flush()
    return messages


def _split_large(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A device with very many readings travels in several entries (each merges alone)."""
    out: list[dict[str, Any]] = []
    pending = list(entries)
    while pending:
        entry = pending.pop(0)
        intervals = entry["intervals"]
        if len(intervals) > 1 and len(json.dumps(entry)) > MAX_MESSAGE_BYTES // 2:
            half = len(intervals) // 2
            pending[:0] = [
                {**entry, "intervals": intervals[:half]},
                {**entry, "intervals": intervals[half:]},
            ]
        else:
            out.append(entry)
    return out
