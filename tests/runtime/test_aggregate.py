"""Interval arithmetic: energy conservation and a merge that is a semilattice."""

from __future__ import annotations

from energy_runtime.aggregate import (
    LOOKBACK,
    contributions,
    interval_start_ms,
    merge_points,
    split_by_interval,
    summarize,
)
from energy_runtime.codec import Point
from hypothesis import given, settings
from hypothesis import strategies as st

MAX_POWER_W = 50_000


@st.composite
def monotone_series(draw: st.DrawFn) -> list[Point]:
    count = draw(st.integers(min_value=1, max_value=300))
    ts, energy, out = 1_795_000_000_000, draw(st.integers(0, 10**12)), []
    for _ in range(count):
        step_ms = draw(st.integers(min_value=1_000, max_value=120_000))
        ts += step_ms
        # at most what 45 kW counts in that time: a plausible meter (see the cap below)
        energy += draw(st.integers(min_value=0, max_value=step_ms * 45_000 // 3_600_000 * 1000))
        out.append(Point(ts, energy, draw(st.integers(0, 100_000))))
    return out


@settings(max_examples=200)
@given(monotone_series(), st.sampled_from([1, 5, 15, 30, 60]))
def test_interval_energies_sum_to_the_register_delta(series: list[Point], minutes: int) -> None:
    context: list[Point] = []
    total = 0
    for start, group in split_by_interval(series, minutes).items():
        assert all(interval_start_ms(p.ts_ms, minutes) == start for p in group)
        total += summarize(start, context, group, MAX_POWER_W).energy_mwh
        context = (context + group)[-LOOKBACK:]
    assert total == series[-1].energy_mwh - series[0].energy_mwh


@settings(max_examples=100)
@given(monotone_series(), st.data())
def test_an_interval_judged_on_part_of_its_readings_is_never_judged_higher(
    series: list[Point], data: st.DataObject
) -> None:
    """What alerts judge (own_energy_wh) only grows as the rest of the readings arrive,
    whichever arrive first: a gap's energy is the first reading's lead, not its own."""
    minutes = 15
    groups = split_by_interval(series, minutes)
    starts = list(groups)
    start = data.draw(st.sampled_from(starts))
    before = [p for s in starts if s < start for p in groups[s]]
    points = groups[start]
    full = summarize(start, before[-LOOKBACK:], points, MAX_POWER_W)
    assert full.own_energy_wh == (points[-1].energy_mwh - points[0].energy_mwh) / 1000
    arrived = sorted(data.draw(st.sets(st.sampled_from(points), min_size=1)))
    held_back = set(data.draw(st.sets(st.sampled_from(before)))) if before else set()
    context = [p for p in before if p not in held_back][-LOOKBACK:]
    partial = summarize(start, context, arrived, MAX_POWER_W)
    assert partial.own_energy_wh <= full.own_energy_wh


some_points = st.lists(
    st.builds(Point, st.integers(0, 50), st.integers(0, 5), st.integers(0, 5)), max_size=20
)


@settings(max_examples=200)
@given(some_points, some_points, some_points)
def test_merging_is_commutative_associative_and_idempotent(
    a: list[Point], b: list[Point], c: list[Point]
) -> None:
    assert merge_points(a, b) == merge_points(b, a)
    assert merge_points(merge_points(a, b), c) == merge_points(a, merge_points(b, c))
    assert merge_points(a, a) == merge_points(a)
    merged = merge_points(a, b)
    assert [p.ts_ms for p in merged] == sorted({p.ts_ms for p in [*a, *b]})


def test_a_spurious_backward_run_shorter_than_the_lookback_counts_nothing() -> None:
    values = [100, 101, 50, 0, 102, 103]
    series = [Point(10_000 * i, v * 1000, 0) for i, v in enumerate(values)]
    assert contributions([], series, MAX_POWER_W) == [0, 1000, 0, 0, 1000, 1000]


def test_a_register_jump_beyond_what_the_meter_could_count_is_not_energy() -> None:
    # 10 s at 50 kW is at most ~139 Wh; a jump of 10 MWh is a swapped or broken meter.
    series = [Point(0, 1_000, 0), Point(10_000, 10**10, 0), Point(20_000, 10**10 + 500, 0)]
    # The jump counts nothing; what the new register counts after it does.
    assert contributions([], series, MAX_POWER_W) == [0, 0, 500]
