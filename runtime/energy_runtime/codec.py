"""Compact binary form of an interval's readings (stored in DynamoDB, sent in hand-offs).

A reading is kept as three integers: event time in ms, register in mWh and power in dW
(tenths of a watt). Integers make every sum exact and every merge deterministic, whatever
the order the readings arrived in. Sorted by time and delta-encoded as varints, 90
readings of a 15-minute interval at 10-second cadence take ~550 bytes, so an item stays
under the 1 KB DynamoDB write unit.
"""

from __future__ import annotations

from typing import NamedTuple


class Point(NamedTuple):
    """One accepted reading, reduced to what the aggregates need."""

    ts_ms: int
    energy_mwh: int
    power_dw: int


def _zigzag(value: int) -> int:
    return (value << 1) if value >= 0 else ((-value << 1) - 1)


def _unzigzag(value: int) -> int:
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


def _put_varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_points(points: list[Point]) -> bytes:
    """Encode points sorted by time, times >= 0 (the caller guarantees both)."""
    out = bytearray()
    _put_varint(out, len(points))
    prev_ts = prev_energy = prev_power = 0
    append = out.append
    for ts_ms, energy_mwh, power_dw in points:
        # Unrolled (hot path). Time deltas are never negative (sorted): no zigzag.
        value = ts_ms - prev_ts
        while value > 0x7F:
            append((value & 0x7F) | 0x80)
            value >>= 7
        append(value)
        delta = energy_mwh - prev_energy
        value = delta << 1 if delta >= 0 else ((-delta) << 1) - 1
        while value > 0x7F:
            append((value & 0x7F) | 0x80)
            value >>= 7
        append(value)
        delta = power_dw - prev_power
        value = delta << 1 if delta >= 0 else ((-delta) << 1) - 1
        while value > 0x7F:
            append((value & 0x7F) | 0x80)
            value >>= 7
        append(value)
        prev_ts, prev_energy, prev_power = ts_ms, energy_mwh, power_dw
    return bytes(out)


def decode_points(data: bytes) -> list[Point]:
    """Inverse of encode_points; raises ValueError on truncated input."""
    values: list[int] = []
    shift = current = 0
    for byte in data:
        current |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            values.append(current)
            shift = current = 0
    if shift or not values:
        raise ValueError("truncated readings blob")
    count = values[0]
    if len(values) != 1 + 3 * count:
        raise ValueError(f"readings blob holds {len(values) - 1} values, expected {3 * count}")
    points: list[Point] = []
    ts = energy = power = 0
    for i in range(1, len(values), 3):
        ts += values[i]
        energy += _unzigzag(values[i + 1])
        power += _unzigzag(values[i + 2])
        points.append(Point(ts, energy, power))
    return points
