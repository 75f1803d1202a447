"""The per-device state machine of the processor: pure functions, no AWS.

Given the device's hot item, the readings of this invocation and the stored intervals the
readings touch, `plan_device` says what to write. Every output is a function of the set of
readings seen so far (plus revision counters), so replaying, reordering or re-splitting
batches converges on the same aggregates, and a merge that changes nothing writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from energy_runtime.aggregate import (
    LOOKBACK,
    IntervalSummary,
    interval_start_ms,
    merge_points,
    split_by_interval,
    summarize,
    summarize_each,
)
from energy_runtime.codec import Point
from energy_runtime.local_time import Calendar, Day


@dataclass(frozen=True, slots=True, order=True)
class Latest:
    """The newest reading (max by time, ties by value: a semilattice like the rest)."""

    ts_ms: int
    energy_mwh: int
    power_dw: int
    received_at: int
    optional: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class StoredInterval:
    start_ms: int
    points: list[Point]
    energy_mwh: int
    rev: int


@dataclass(frozen=True, slots=True, order=True)
class OpenAlert:
    """An alert that has not cleared yet: the processor sends its resolution when a later
    interval is back to normal (alerts.resolution)."""

    kind: str
    start_ms: int  # the start the alert names: its resolution is of the same period
    raised_ms: int  # the interval that raised it: only later intervals can clear it
    # What normal was when it was raised, where a resolution needs it (a base load's usual
    # night minimum, Wh per interval).
    expected_wh: float | None = None


@dataclass(frozen=True, slots=True)
class HotState:
    version: int
    latest: Latest
    open_start_ms: int
    open_points: list[Point]
    open_energy_mwh: int
    open_rev: int
    tail: list[Point]  # the last LOOKBACK readings before the open interval
    # Set by the silence sweep (energy_runtime.silence) when it alerts: the newest reading's
    # time then. A newer reading ends the silence, and the plan resolves the alert.
    silent_since_ms: int | None = None
    # The device's alerts that have not cleared, one per kind, by kind order.
    open_alerts: tuple[OpenAlert, ...] = ()


@dataclass(slots=True)
class IntervalWrite:
    summary: IntervalSummary
    points: list[Point]
    rev: int
    expected_rev: int | None  # None: the item must not exist yet


@dataclass(slots=True)
class Plan:
    device_id: str
    intervals: list[IntervalWrite] = field(default_factory=list)
    hot: HotState | None = None  # None: the hot item is unchanged
    # The hot item the plan would write even if unchanged: the processor writes it when
    # only the open alerts change.
    next_hot: HotState | None = None
    expected_version: int | None = None
    changed: list[tuple[IntervalSummary, int]] = field(default_factory=list)  # rows, rev
    # Every interval the readings fall in, changed or not, as it stands after the plan:
    # a redelivered message archives these again (its first attempt may have stopped
    # between committing the items and writing the Parquet rows).
    touched: list[tuple[IntervalSummary, int]] = field(default_factory=list)
    # Closed intervals the readings fall in, changed or not: their local days are totalled
    # again (closed_days), so a replay repairs a total an earlier attempt did not write.
    closed_starts: set[int] = field(default_factory=set)
    newly_closed: list[IntervalSummary] = field(default_factory=list)
    # Closed before, changed by late readings now: judged again, on what it now holds.
    revised: list[IntervalSummary] = field(default_factory=list)
    # The open interval as the hot item held it before this plan (None: no hot item, or
    # no reading in it): what was already judged of it.
    previous_open: IntervalSummary | None = None
    # Readings beyond the interval's cap (MAX_READINGS_PER_INTERVAL): not stored.
    rate_limited: list[Point] = field(default_factory=list)
    # (silent since, the first newer reading's time): a silence alerted by the sweep ended.
    silence_ended: tuple[int, int] | None = None


def split_late(hot: HotState | None, points: list[Point]) -> tuple[list[Point], list[Point]]:
    """(readings before the open interval, the rest)."""
    if hot is None:
        return [], points
    cut = hot.open_start_ms
    return [p for p in points if p.ts_ms < cut], [p for p in points if p.ts_ms >= cut]


def closing_starts(hot: HotState | None, current: list[Point], interval_minutes: int) -> list[int]:
    """Intervals this batch closes (they become INT items): all but the newest with data."""
    starts = {interval_start_ms(p.ts_ms, interval_minutes) for p in current}
    if hot is not None:
        starts.add(hot.open_start_ms)
    return sorted(starts)[:-1]


def bounded_merge(
    kept: list[Point], arriving: list[Point], cap: int
) -> tuple[list[Point], list[Point]]:
    """(the interval's readings, the arriving ones beyond `cap`). Readings already kept are
    never evicted; new ones enter earliest first while there is room. A replay brings
    nothing new, so it is rejected nothing twice and changes nothing."""
    known = {p.ts_ms for p in kept}
    new = [p for p in arriving if p.ts_ms not in known]
    room = max(0, cap - len(kept))
    if len(new) <= room:
        return merge_points(kept, arriving), []
    new.sort()
    refused = new[room:]
    refused_ts = {p.ts_ms for p in refused}
    return merge_points(kept, [p for p in arriving if p.ts_ms not in refused_ts]), refused


def plan_device(
    device_id: str,
    hot: HotState | None,
    points: list[Point],
    latest: Latest,
    *,
    stored: dict[int, StoredInterval],
    late_context: list[Point],
    interval_minutes: int,
    max_power_w: int,
    max_per_interval: int,
) -> Plan:
    """`stored` holds every stored interval from the earliest late reading up to the open
    interval, and any stored item of an interval being closed; `late_context` the
    LOOKBACK readings before the earliest late reading."""
    plan = Plan(device_id=device_id, expected_version=hot.version if hot else None)
    if hot is not None and hot.open_points:
        plan.previous_open = summarize(hot.open_start_ms, hot.tail, hot.open_points, max_power_w)
    late, current = split_late(hot, points)
    touched_starts: set[int] = set()

    def admit(kept: list[Point], arriving: list[Point], start: int) -> list[Point]:
        touched_starts.add(start)
        merged, refused = bounded_merge(kept, arriving, max_per_interval)
        plan.rate_limited.extend(refused)
        return merged

    closed: dict[int, list[Point]] = {start: s.points for start, s in stored.items()}
    for start, group in split_by_interval(late, interval_minutes).items():
        closed[start] = admit(list(closed.get(start, ())), group, start)

    arriving = split_by_interval(current, interval_minutes)
    starts = sorted(set(arriving) | ({hot.open_start_ms} if hot is not None else set()))
    open_start = starts[-1]
    open_points: list[Point] = []
    for start in starts:
        kept = hot.open_points if hot is not None and start == hot.open_start_ms else []
        if start != open_start:  # being closed: it joins what is stored of it, if anything
            kept = merge_points(closed.get(start, ()), kept)
        merged = admit(kept, arriving[start], start) if start in arriving else list(kept)
        if start == open_start:
            open_points = merged
        else:
            closed[start] = merged

    context = late_context if late else (hot.tail if hot else [])
    for start, readings, summary in summarize_each(closed, context, max_power_w):
        before = stored.get(start)
        plan.closed_starts.add(start)
        is_old_open = hot is not None and start == hot.open_start_ms
        closing = hot is None or start >= hot.open_start_ms  # closed now, not a revision
        if closing:
            plan.newly_closed.append(summary)
        if before and before.points == readings and before.energy_mwh == summary.energy_mwh:
            if start in touched_starts:
                plan.touched.append((summary, before.rev))
            continue
        if not closing:
            plan.revised.append(summary)
        base_rev = max(before.rev if before else 0, hot.open_rev if hot and is_old_open else 0)
        plan.intervals.append(
            IntervalWrite(summary, readings, base_rev + 1, before.rev if before else None)
        )
        plan.changed.append((summary, base_rev + 1))
        plan.touched.append((summary, base_rev + 1))
    tail = (context + [p for start in sorted(closed) for p in closed[start]])[-LOOKBACK:]

    open_summary = summarize(open_start, tail, open_points, max_power_w)
    new_latest = max(latest, hot.latest) if hot else latest
    silent_since = hot.silent_since_ms if hot is not None else None
    if silent_since is not None and new_latest.ts_ms > silent_since:
        back = min((p.ts_ms for p in points if p.ts_ms > silent_since), default=new_latest.ts_ms)
        plan.silence_ended = (silent_since, back)
        silent_since = None
    if hot is not None and open_start == hot.open_start_ms:
        same_open = (
            hot.open_points == open_points and hot.open_energy_mwh == open_summary.energy_mwh
        )
        open_rev = hot.open_rev if same_open else hot.open_rev + 1
    else:
        same_open = False
        open_rev = 1
    if not same_open:
        plan.changed.append((open_summary, open_rev))
    if not same_open or open_start in touched_starts:
        plan.touched.append((open_summary, open_rev))
    new_hot = HotState(
        version=(hot.version + 1) if hot else 1,
        latest=new_latest,
        open_start_ms=open_start,
        open_points=open_points,
        open_energy_mwh=open_summary.energy_mwh,
        open_rev=open_rev,
        tail=tail,
        silent_since_ms=silent_since,
        open_alerts=hot.open_alerts if hot is not None else (),
    )
    plan.next_hot = new_hot
    unchanged = (
        hot is not None
        and same_open
        and hot.tail == tail
        and hot.latest == new_latest
        and hot.silent_since_ms == silent_since
    )
    plan.hot = None if unchanged else new_hot
    return plan


def closed_days(plan: Plan, calendar: Calendar) -> list[Day]:
    """The building's local days that the plan's closed intervals fall in, but for the open
    interval's day (still open: the queries total it from its intervals). An interval
    counts in the day it starts in."""
    if plan.next_hot is None:
        return []
    open_day = calendar.day(plan.next_hot.open_start_ms)
    return sorted({d for start in plan.closed_starts if (d := calendar.day(start)) < open_day})
