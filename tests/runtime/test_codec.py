"""The compact readings encoding: lossless, small."""

from __future__ import annotations

import pytest
from energy_runtime.codec import Point, decode_points, encode_points
from hypothesis import given, settings
from hypothesis import strategies as st

points = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2**45),
        st.integers(min_value=-(2**50), max_value=2**50),
        st.integers(min_value=-(2**40), max_value=2**40),
    ),
    max_size=200,
    unique_by=lambda p: p[0],
).map(lambda raw: [Point(*p) for p in sorted(raw)])


@settings(max_examples=200)
@given(points)
def test_encoding_round_trips(values: list[Point]) -> None:
    assert decode_points(encode_points(values)) == values


def test_a_full_interval_fits_well_inside_one_write_unit() -> None:
    values = [
        Point(1_795_000_000_000 + 10_000 * i, 12_345_678_900 + 2_700 * i, 9_700 + i % 50)
        for i in range(90)
    ]
    assert len(encode_points(values)) < 600


@pytest.mark.parametrize("blob", [b"", b"\x80", b"\x02\x01\x01"])
def test_truncated_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode_points(blob)
