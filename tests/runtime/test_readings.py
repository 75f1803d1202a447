"""The batching hot path's validation: every defect has a reason; nothing is lost."""

from __future__ import annotations

import gzip
import json
import math
from typing import Any

import pytest
from energy_runtime.codec import Point
from energy_runtime.models import Reading
from energy_runtime.readings import Decoded, Reason, check_reading, decode_record
from energy_runtime.settings import ReadingRules
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from runtime_fixtures import T0, kinesis_record

RULES = ReadingRules()
RECEIVED_MS = (T0 + 60) * 1000
GOOD = {"ts": T0, "energy_wh": 1234.5, "power_w": 800}


def test_a_good_reading_becomes_integer_point_with_its_optional_fields() -> None:
    reading = {**GOOD, "voltage_v": 230.1, "power_factor": 0.97, "seq": 7}
    point, optional = check_reading(reading, RECEIVED_MS, RULES)
    assert point == Point(T0 * 1000, 1_234_500, 8000)
    assert optional == {"voltage_v": 230.1, "power_factor": 0.97, "seq": 7}


def test_iso_timestamps_with_offset_are_accepted_and_naive_ones_are_not() -> None:
    point, _ = check_reading({**GOOD, "ts": "2026-11-18T12:06:40+01:00"}, RECEIVED_MS, RULES)
    assert isinstance(point, Point) and point.ts_ms == T0 * 1000
    reason, detail = check_reading({**GOOD, "ts": "2026-11-18T11:06:40"}, RECEIVED_MS, RULES)
    assert reason == Reason.BAD_TIMESTAMP and "2026-11-18T11:06:40" in detail


CORPUS: list[tuple[str, Any]] = [
    (Reason.MISSING_FIELD, {"ts": T0, "power_w": 1}),
    (Reason.MISSING_FIELD, {"energy_wh": 1, "power_w": 1}),
    (Reason.WRONG_TYPE, {**GOOD, "energy_wh": "1234"}),
    (Reason.WRONG_TYPE, {**GOOD, "power_w": True}),
    (Reason.WRONG_TYPE, {**GOOD, "ts": [T0]}),
    (Reason.WRONG_TYPE, {**GOOD, "seq": 1.5}),
    (Reason.WRONG_TYPE, {**GOOD, "voltage_v": "230"}),
    (Reason.NON_FINITE, {**GOOD, "energy_wh": math.nan}),
    (Reason.NON_FINITE, {**GOOD, "ts": math.inf}),
    (Reason.NEGATIVE_VALUE, {**GOOD, "energy_wh": -1}),
    (Reason.NEGATIVE_VALUE, {**GOOD, "power_w": -0.5}),
    (Reason.OUT_OF_RANGE, {**GOOD, "power_factor": 1.2}),
    (Reason.OUT_OF_RANGE, {**GOOD, "current_a": -3}),
    (Reason.IMPLAUSIBLE_POWER, {**GOOD, "power_w": 2_000_000}),
    (Reason.OUT_OF_RANGE, {**GOOD, "energy_wh": 1.7e308}),  # would overflow as mWh
    (Reason.BAD_TIMESTAMP, {**GOOD, "ts": 1.7e305}),
    (Reason.BAD_TIMESTAMP, {**GOOD, "ts": "yesterday"}),
    (Reason.FUTURE_TIMESTAMP, {**GOOD, "ts": T0 + 86_400}),
    (Reason.FUTURE_TIMESTAMP, {**GOOD, "ts": T0 * 1000}),  # milliseconds sent as seconds
    (Reason.ANCIENT_TIMESTAMP, {**GOOD, "ts": T0 - 30 * 86_400}),
    (Reason.ANCIENT_TIMESTAMP, {**GOOD, "ts": 0}),
    (Reason.NOT_A_READING, [1, 2, 3]),
    (Reason.NOT_A_READING, "reading"),
]


@pytest.mark.parametrize(
    ("reason", "reading"), CORPUS, ids=[f"{r}-{i}" for i, (r, _) in enumerate(CORPUS)]
)
def test_each_defect_is_rejected_with_its_reason(reason: str, reading: Any) -> None:
    assert check_reading(reading, RECEIVED_MS, RULES)[0] == reason


def test_a_corpus_of_bad_records_loses_nothing() -> None:
    """accepted + quarantined == received, record by record and in total."""
    records = [
        kinesis_record("m-1", {"readings": [GOOD, *[r for _, r in CORPUS]]}, RECEIVED_MS, 1),
        kinesis_record("m-1", b"{not json", RECEIVED_MS, 2),
        kinesis_record("m-1", b"\xff\xfe\x00garbage", RECEIVED_MS, 3),
        kinesis_record("m-1", b"x" * 200_000, RECEIVED_MS, 4),
        kinesis_record("m-1", {"readings": "all of them"}, RECEIVED_MS, 5),
        kinesis_record("m-1", GOOD, RECEIVED_MS, 6),
        kinesis_record("m-1", {"readings": []}, RECEIVED_MS, 7),
    ]
    broken = kinesis_record("m-2", GOOD, RECEIVED_MS, 8)
    broken["kinesis"]["data"] = "bm90IGpzb24="  # base64 of "not json"
    bad_device = kinesis_record("m/../x", GOOD, RECEIVED_MS, 9)
    out = Decoded()
    received = sum(decode_record(r, 131_072, RULES, out) for r in [*records, broken, bad_device])
    reasons = [r.reason for r in out.rejected]
    assert received == out.accepted_count + len(out.rejected) == (1 + len(CORPUS)) + 4 + 1 + 0 + 2
    assert out.accepted_count == 2 == len(out.points["m-1"])
    assert reasons.count(Reason.BAD_ENVELOPE) == 2
    for reason in (Reason.MALFORMED_JSON, Reason.NOT_UTF8, Reason.OVERSIZED):
        assert reason in reasons
    oversized = next(r for r in out.rejected if r.reason == Reason.OVERSIZED)
    assert oversized.raw.endswith("...[200000 bytes]")  # an excerpt, with the true size
    indexed = [
        r for r in out.rejected if r.sequence_number == records[0]["kinesis"]["sequenceNumber"]
    ]
    assert [r.index for r in indexed] == list(range(1, len(CORPUS) + 1))


def test_the_device_comes_from_the_topic_never_from_the_payload() -> None:
    out = Decoded()
    decode_record(
        kinesis_record("m-7", {**GOOD, "device_id": "m-8"}, RECEIVED_MS, 1), 131_072, RULES, out
    )
    assert list(out.points) == ["m-7"] and out.accepted_count == 1


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**7), max_value=10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from(["2026-11-18T11:06:40Z", "2026-11-18T11:06:40", "2026-11-18T11:06:40+02:00"]),
)
readings = st.dictionaries(
    st.sampled_from(["ts", "energy_wh", "power_w", "voltage_v", "power_factor", "seq"]),
    values,
)


@settings(max_examples=300, deadline=None)
@given(readings)
# The window must hold every generated number (up to 10**13): a reading 10**11 s ahead of
# receipt, or of 10**9 W, is outside a narrower window the model does not state.
@example({"ts": 101795000061, "energy_wh": 0, "power_w": 0})
@example({"ts": 0, "energy_wh": 0, "power_w": 1000000001})
def test_the_fast_path_agrees_with_the_typed_model(reading: dict[str, Any]) -> None:
    """Hand-written checks accept exactly what models.Reading accepts (the rules it states)
    within the plausibility window; null optional fields count as absent in both."""
    fast = check_reading(
        reading,
        RECEIVED_MS,
        ReadingRules(max_power_w=10**14, max_age_s=10**14, max_future_skew_s=10**14),
    )
    try:
        Reading.model_validate_json(json.dumps(reading))
        model_ok = True
    except (ValidationError, ValueError):
        model_ok = False
    assert isinstance(fast[0], Point) == model_ok, fast


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["ts", "energy_wh", "power_w", "readings", "seq", "power_factor", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)))
def test_no_payload_can_crash_the_decoder_or_lose_a_reading(payload: bytes) -> None:
    out = Decoded()
    received = decode_record(kinesis_record("m-1", payload, RECEIVED_MS, 1), 131_072, RULES, out)
    assert received == out.accepted_count + len(out.rejected)
    for rejection in out.rejected:
        json.dumps(rejection.raw)  # what the quarantine writes must serialise


# --- gzip-compressed messages (fleet.payload_encoding) ------------------------------------


def _decode(payload: bytes, limit: int = 131_072) -> Decoded:
    out = Decoded()
    received = decode_record(kinesis_record("m-1", payload, RECEIVED_MS, 1), limit, RULES, out)
    assert received == out.accepted_count + len(out.rejected)
    return out


def _outcome(out: Decoded) -> tuple[Any, ...]:
    return (
        out.points,
        out.latest,
        [(r.reason, r.index, r.raw if r.index is not None else None) for r in out.rejected],
    )


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_gzip_message_reads_exactly_as_its_json_text(value: Any) -> None:
    """Old meters (JSON) and new ones (gzip) share a fleet: the same readings, the same
    rejections, whichever encoding carried them."""
    text = json.dumps(value).encode()
    assert _outcome(_decode(gzip.compress(text, mtime=0))) == _outcome(_decode(text))


def test_a_whole_gzip_message_quarantined_keeps_its_text_for_a_replay() -> None:
    out = _decode(gzip.compress(b'{"readings": [{"ts": 1,'))
    assert [r.reason for r in out.rejected] == [Reason.MALFORMED_JSON]
    assert out.rejected[0].raw == '{"readings": [{"ts": 1,'


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (gzip.compress(json.dumps(GOOD).encode())[:-4], Reason.BAD_COMPRESSION),  # truncated
        (gzip.compress(json.dumps(GOOD).encode()) + b"\x00", Reason.BAD_COMPRESSION),
        (gzip.compress(json.dumps(GOOD).encode()) * 2, Reason.BAD_COMPRESSION),  # two members
        (b"\x1f\x8b\x08\x00" + b"\xff" * 40, Reason.BAD_COMPRESSION),  # not deflate inside
        (gzip.compress(b"[" * 500 + b"]" * 500), Reason.TOO_DEEP),
        (gzip.compress(b"\xff\xfe garbage"), Reason.NOT_UTF8),
        (gzip.compress(gzip.compress(json.dumps(GOOD).encode())), Reason.NOT_UTF8),  # one layer
    ],
)
def test_each_gzip_defect_is_quarantined_with_its_reason(payload: bytes, reason: str) -> None:
    out = _decode(payload)
    assert [r.reason for r in out.rejected] == [reason] and out.accepted_count == 0


def test_a_gzip_bomb_inflates_only_to_the_payload_limit() -> None:
    bomb = gzip.compress(b" " * 50_000_000, compresslevel=9)  # 49 KB that inflate to 50 MB
    assert len(bomb) < 131_072
    out = _decode(bomb)
    assert [r.reason for r in out.rejected] == [Reason.OVERSIZED]
    assert "inflate beyond 131072" in out.rejected[0].detail
    assert len(out.rejected[0].raw) < 5_000  # an excerpt of what was sent, not the inflation


def test_a_gzip_message_at_the_limit_once_inflated_is_read() -> None:
    body = json.dumps({"readings": [GOOD] * 2000}, separators=(",", ":")).encode()
    assert _decode(gzip.compress(body), limit=len(body)).accepted_count == 2000
    assert _decode(gzip.compress(body), limit=len(body) - 1).rejected[0].reason == (
        Reason.OVERSIZED
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=96))
def test_no_bytes_after_the_gzip_magic_can_crash_the_decoder(tail: bytes) -> None:
    out = _decode(b"\x1f\x8b" + tail)
    for rejection in out.rejected:
        json.dumps(rejection.raw)
