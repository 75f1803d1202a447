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

from energy_runtime.aggregate import merge_points, split_by_interval, summarize_each
from energy_runtime.codec import Point, encode_points
from energy_runtime.contract import REJECTION_TEXT_BYTES
from energy_runtime.readings import Decoded, Reason, Rejection, folded

# SQS takes 256 KiB per message; stay well below with the envelope and JSON escaping.
MAX_MESSAGE_BYTES = 200_000
# An interval's readings travel in pieces of at most this many (each merges alone): with
# MAX_POINT_BYTES per reading, base64 and the envelope, a piece stays far below a message.
POINTS_PER_PIECE = 4_000


@dataclass(slots=True)
class Message:
    body: str
    device_ids: list[str]


def rate_limited(
    device_id: str, decoded: Decoded, interval_minutes: int, max_per_interval: int
) -> list[Rejection]:
    """Keep at most `max_per_interval` of the device's readings per interval (the earliest:
    a function of the batch's set of readings, whatever their order); the rest come back
    as rejections and leave `decoded`, one by one while the batch's budget has room for
    them, then one rejection per interval that counts the rest."""
    if len(decoded.points[device_id]) <= max_per_interval:
        return []  # no interval can hold more (the usual case: nothing to sort)
    points = merge_points(decoded.points[device_id])
    rejected: list[Rejection] = []
    refused = 0
    kept: list[Point] = []
    _, received_at, _ = decoded.latest[device_id]
    for start_ms, group in split_by_interval(points, interval_minutes).items():
        kept.extend(group[:max_per_interval])
        first_unkept: Rejection | None = None
        unkept = 0
        for point in group[max_per_interval:]:
            refused += 1
            if unkept:  # past the room already: only counted
                unkept += 1
                continue
            rejection = Rejection(
                Reason.RATE_LIMITED,
                f"more than {max_per_interval} readings in the interval from {start_ms}",
                device_id,
                received_at,
                decoded.first_sequence[device_id],
                None,
                {"ts_ms": point.ts_ms, "energy_mwh": point.energy_mwh,
                 "power_dw": point.power_dw},
            )  # fmt: skip
            if decoded.spend(device_id, REJECTION_TEXT_BYTES):
                rejected.append(rejection)
            else:
                first_unkept, unkept = rejection, 1
        if first_unkept is not None:
            rejected.append(folded(first_unkept, unkept, decoded, "more rate-limited readings"))
    if refused:
        decoded.points[device_id] = kept
        decoded.accepted_count -= refused
        newest, received_at, _ = decoded.latest[device_id]
        if newest not in kept:  # the newest kept reading stands for the device now
            decoded.latest[device_id] = (kept[-1], received_at, None)
    return rejected


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
    groups = split_by_interval(points, interval_minutes)
    for start_ms, group, summary in summarize_each(groups, [], max_power_w):
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
    """A device with very many readings travels in several entries (each merges alone),
    down to one piece of one interval each, so no entry outgrows a message."""
    out: list[dict[str, Any]] = []
    pending = [piece for entry in entries for piece in _pieces(entry)]
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


def _pieces(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry with every interval of more than POINTS_PER_PIECE readings cut into
    pieces of the same interval (the processor merges the pieces like any readings)."""
    intervals: list[dict[str, Any]] = []
    for interval in entry["intervals"]:
        if interval["reading_count"] <= POINTS_PER_PIECE:
            intervals.append(interval)
            continue
        from energy_runtime.codec import decode_points

        points = decode_points(base64.b64decode(interval["points"]))
        for first in range(0, len(points), POINTS_PER_PIECE):
            piece = points[first : first + POINTS_PER_PIECE]
            intervals.append(
                {**interval, "points": base64.b64encode(encode_points(piece)).decode(),
                 "reading_count": len(piece), "first_ts_ms": piece[0].ts_ms,
                 "last_ts_ms": piece[-1].ts_ms}
            )  # fmt: skip
    if len(intervals) == len(entry["intervals"]):
        return [entry]
    return [{**entry, "intervals": [interval]} for interval in intervals]
