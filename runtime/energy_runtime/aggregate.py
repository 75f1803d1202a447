"""Interval arithmetic over accepted readings: pure functions, no AWS.

Energy comes from the cumulative register. Each reading contributes the rise of the
register since the highest of the LOOKBACK readings before it, clamped at zero and capped
by what the meter could physically have counted since then (max power x elapsed time).
For a healthy meter this telescopes: the contributions of an interval sum to the register
at its last reading minus the register at the reading just before it, so energy is
conserved across intervals by construction. The lookback makes a short run of spurious
backward values count nothing (no rebasing); the cap makes a register jump (meter swap to
a meter with a higher register, or a garbage value) count nothing; a swap to a lower
register costs at most LOOKBACK readings' energy (see docs/data-quality.md).

Sets of readings merge by union keyed on event time (ties keep the larger tuple), which
is commutative, associative and idempotent: every aggregate here is a function of the set
of readings only, never of the order or batches they arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from energy_runtime.codec import Point

LOOKBACK = 3
MS_PER_MINUTE = 60_000


def interval_start_ms(ts_ms: int, interval_minutes: int) -> int:
    width = interval_minutes * MS_PER_MINUTE
    return ts_ms - ts_ms % width


def merge_points(*groups: Iterable[Point]) -> list[Point]:
    """Union of readings by event time, sorted; equal times keep the larger tuple."""
    by_ts: dict[int, Point] = {}
    for group in groups:
        for point in group:
            kept = by_ts.get(point.ts_ms)
            if kept is None or point > kept:
                by_ts[point.ts_ms] = point
    return [by_ts[ts] for ts in sorted(by_ts)]


def contributions(context: list[Point], points: list[Point], max_power_w: int) -> list[int]:
    """Energy (mWh) each of `points` adds; `context` holds the readings before them."""
    # (energy, time) pairs: max() picks the highest register, the latest on ties
    history = [(p.energy_mwh, p.ts_ms) for p in context[-LOOKBACK:]]
    out: list[int] = []
    append = out.append
    for ts_ms, energy_mwh, _power in points:
        if history:
            base_energy, base_ts = max(history)
            rise = energy_mwh - base_energy
            # W x ms / 3600 = mWh: the most a meter can count in that time.
            append(rise if rise > 0 and rise * 3600 <= max_power_w * (ts_ms - base_ts) else 0)
        else:
            append(0)
        history.append((energy_mwh, ts_ms))
        if len(history) > LOOKBACK:
            del history[0]
    return out


@dataclass(frozen=True, slots=True)
class IntervalSummary:
    """What the table, the Parquet files and the queries report for one interval."""

    start_ms: int
    energy_mwh: int
    reading_count: int
    power_min_dw: int
    power_max_dw: int
    power_sum_dw: int
    first_ts_ms: int
    last_ts_ms: int
    # The first reading's share of energy_mwh: the rise since the reading before the
    # interval, which after a gap holds energy used before the interval began.
    lead_mwh: int = 0

    @property
    def energy_wh(self) -> float:
        return self.energy_mwh / 1000

    @property
    def own_energy_wh(self) -> float:
        """The rise between the interval's own first and last readings: what alerts judge.
        Readings that arrive later can only add to it (never take away, as a gap's energy
        counted by the reading after it would), so an interval judged on part of its
        readings is never judged higher than on all of them."""
        return (self.energy_mwh - self.lead_mwh) / 1000

    @property
    def power_mean_w(self) -> float:
        return self.power_sum_dw / self.reading_count / 10


def summarize(
    start_ms: int, context: list[Point], points: list[Point], max_power_w: int
) -> IntervalSummary:
    if not points:
        raise ValueError("an interval summary needs at least one reading")
    powers = [p.power_dw for p in points]
    energies = contributions(context, points, max_power_w)
    return IntervalSummary(
        start_ms=start_ms,
        energy_mwh=sum(energies),
        reading_count=len(points),
        power_min_dw=min(powers),
        power_max_dw=max(powers),
        power_sum_dw=sum(powers),
        first_ts_ms=points[0].ts_ms,
        last_ts_ms=points[-1].ts_ms,
        lead_mwh=energies[0],
    )


def summarize_each(
    groups: Mapping[int, list[Point]], context: list[Point], max_power_w: int
) -> Iterator[tuple[int, list[Point], IntervalSummary]]:
    """(start, readings, summary) of each interval in start order, each reading's energy
    counted from the LOOKBACK readings before it, across intervals: `context` for the
    first, then the intervals before."""
    for start in sorted(groups):
        group = groups[start]
        yield start, group, summarize(start, context, group, max_power_w)
        context = (context + group)[-LOOKBACK:]


def split_by_interval(points: list[Point], interval_minutes: int) -> dict[int, list[Point]]:
    """Sorted points grouped by interval start (keys in ascending order)."""
    groups: dict[int, list[Point]] = {}
    for point in points:
        groups.setdefault(interval_start_ms(point.ts_ms, interval_minutes), []).append(point)
    return groups
