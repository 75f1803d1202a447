"""The batching hot path's validation: every defect has a reason; nothing is lost."""

from __future__ import annotations

import base64
import gzip
import json
import math
from typing import Any

import pytest
from energy_runtime import contract, quarantine
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
    expected = (1 + len(CORPUS)) + 4 + 1 + 0 + 2
    assert received == out.accepted_count + out.quarantined_count == expected
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
    assert received == out.accepted_count + out.quarantined_count
    for rejection in out.rejected:
        json.dumps(rejection.raw)  # what the quarantine writes must serialise


# --- gzip-compressed messages (fleet.payload_encoding) ------------------------------------


def _decode(payload: bytes, limit: int = 131_072) -> Decoded:
    out = Decoded()
    received = decode_record(kinesis_record("m-1", payload, RECEIVED_MS, 1), limit, RULES, out)
    assert received == out.accepted_count + out.quarantined_count
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


@pytest.mark.parametrize(
    ("inflated", "detail"),
    [
        (50_000_000, "inflate beyond 131072 bytes"),  # 49 KB: the payload limit binds first
        (131_000, f"inflate more than {contract.MAX_INFLATION_RATIO} times"),  # 160 B
    ],
)
def test_a_gzip_bomb_inflates_only_to_the_first_bound_it_crosses(
    inflated: int, detail: str
) -> None:
    bomb = gzip.compress(b" " * inflated, compresslevel=9)
    assert len(bomb) < 131_072
    out = _decode(bomb)
    assert [r.reason for r in out.rejected] == [Reason.OVERSIZED]
    assert detail in out.rejected[0].detail
    assert len(out.rejected[0].raw) < 5_000  # an excerpt of what was sent, not the inflation
    assert out.spent == 0  # refused before parsing: it spends none of the batch's text


def _varied(count: int) -> list[dict[str, Any]]:
    """Readings of a meter whose register and power move (they compress as real ones do)."""
    return [
        {"ts": T0 - 10 * i, "energy_wh": 1234.5 + 0.37 * i, "power_w": 100 + (i * 37) % 900}
        for i in range(count)
    ]


def test_a_gzip_message_at_the_limit_once_inflated_is_read() -> None:
    body = json.dumps({"readings": _varied(2000)}, separators=(",", ":")).encode()
    assert len(body) <= contract.MAX_INFLATION_RATIO * len(gzip.compress(body))
    assert _decode(gzip.compress(body), limit=len(body)).accepted_count == 2000
    assert _decode(gzip.compress(body), limit=len(body) - 1).rejected[0].reason == (
        Reason.OVERSIZED
    )


@pytest.mark.parametrize("per_message", [30, 90, 300])
def test_the_most_compressible_honest_messages_inflate_well_within_the_ratio(
    per_message: int,
) -> None:
    """A meter whose register stands still, every optional field constant: the best case for
    compression an honest meter can make. It must stay far from the ratio a bomb reaches."""
    still = {**GOOD, "voltage_v": 230.0, "current_a": 0.0, "power_factor": 1, "seq": 1}
    body = json.dumps(
        {"readings": [{**still, "ts": T0 - 10 * i, "seq": i} for i in range(per_message)]},
        separators=(",", ":"),
    ).encode()
    payload = gzip.compress(body, mtime=0)
    assert len(body) / len(payload) < contract.MAX_INFLATION_RATIO / 2
    assert _decode(payload).accepted_count == per_message


def _batch(payloads: list[tuple[str, bytes]], text_budget: int) -> tuple[Decoded, int]:
    out = Decoded(now_ms=RECEIVED_MS, text_budget=text_budget)
    received = 0
    for seq, (device, payload) in enumerate(payloads):
        record = kinesis_record(device, payload, RECEIVED_MS, seq)
        received += decode_record(record, 131_072, RULES, out)
    assert received == out.accepted_count + out.quarantined_count  # nothing lost
    return out, received


def test_a_device_past_its_share_of_the_batchs_text_is_quarantined_unread() -> None:
    """One meter sending many messages that inflate far: its records past a quarter of the
    batch's text are refused before they are inflated; the other meters are read whole."""
    message = gzip.compress(
        json.dumps({"readings": _varied(600)}, separators=(",", ":")).encode(), mtime=0
    )
    assert len(message) > contract.RAW_EXCERPT_BYTES  # kept whole all the same
    text = len(gzip.decompress(message))
    budget = 40 * text  # a device may read 10 of these
    payloads = [("m-hog", message)] * 30 + [(f"m-{i}", message) for i in range(20)]
    out, _ = _batch(payloads, budget)
    refused = [r for r in out.rejected if r.reason == Reason.TEXT_BUDGET]
    assert {r.device_id for r in refused} == {"m-hog"} and len(refused) == 20
    assert out.device_spent["m-hog"] <= budget // contract.DEVICE_SHARE_OF_BATCH_TEXT
    assert out.accepted_count == 10 * 600 + 20 * 600
    assert all(r.raw_encoding == contract.QUARANTINE_RAW_BASE64 for r in refused)
    assert base64.b64decode(refused[0].raw) == message  # a replay can send it again


def test_a_batch_past_its_text_budget_quarantines_the_rest_and_reads_no_further() -> None:
    body = json.dumps({"readings": _varied(30)}, separators=(",", ":")).encode()
    budget = 25 * len(body)
    out, _ = _batch([(f"m-{i}", body) for i in range(40)], budget)
    assert out.accepted_count == 25 * 30 and out.spent == budget
    refused = [r for r in out.rejected if r.reason == Reason.TEXT_BUDGET]
    assert len(refused) == 15 and all(r.raw == body.decode() for r in refused)
    assert f"of the batch's {budget}" in refused[0].detail


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["m-1", "m-2", "m-3"]),
            st.integers(min_value=0, max_value=400),  # readings in the message
            st.booleans(),  # gzip
            st.booleans(),  # constant readings (they compress far)
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=200_000),
)
def test_no_batch_parses_more_text_than_its_budget_and_every_record_is_accounted(
    messages: list[tuple[str, int, bool, bool]], budget: int
) -> None:
    payloads = []
    for device, count, compressed, constant in messages:
        readings = [GOOD] * count if constant else _varied(count)
        body = json.dumps({"readings": readings}, separators=(",", ":")).encode()
        payloads.append((device, gzip.compress(body, mtime=0) if compressed else body))
    out, _ = _batch(payloads, budget)
    share = budget // contract.DEVICE_SHARE_OF_BATCH_TEXT
    assert out.spent <= budget
    assert all(used <= share for used in out.device_spent.values())
    assert out.spent == sum(out.device_spent.values())
    for rejection in out.rejected:
        json.dumps(rejection.raw)
        if rejection.raw_encoding == contract.QUARANTINE_RAW_BASE64:
            assert base64.b64decode(rejection.raw.split("...[")[0])[:2] == contract.GZIP_MAGIC


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=96))
def test_no_bytes_after_the_gzip_magic_can_crash_the_decoder(tail: bytes) -> None:
    out = _decode(b"\x1f\x8b" + tail)
    for rejection in out.rejected:
        json.dumps(rejection.raw)


def test_objects_beyond_an_entrys_own_are_charged_as_what_they_take_parsed() -> None:
    """`{}` is 3 bytes of text and 72 parsed: a reading holding thousands of them, kept by
    its rejection until its line is written, costs the budget what it takes in memory."""
    empties = ",".join(["{}"] * 10_000)
    nested = f'{{"ts": "x", "energy_wh": 1, "power_w": 1, "x": [{empties}]}}'.encode()
    flat = f'{{"ts": "x", "energy_wh": 1, "power_w": 1, "x": "{"." * len(empties)}"}}'.encode()
    budget = 2 * 10_000 * contract.CONTAINER_TEXT_BYTES * contract.DEVICE_SHARE_OF_BATCH_TEXT
    out, _ = _batch([("m-1", nested), ("m-1", nested)], budget)  # the share holds one
    assert [r.reason for r in out.rejected] == [Reason.BAD_TIMESTAMP, Reason.TEXT_BUDGET]
    out, _ = _batch([("m-1", flat)] * 20, budget)
    assert [r.reason for r in out.rejected] == [Reason.BAD_TIMESTAMP] * 20  # text alone


def test_a_rejected_readings_line_is_bounded_whatever_it_held() -> None:
    """A reading whose `ts` is 60,000 characters JSON escapes six times over: its detail
    and its text in the quarantine line are cut, with the excerpt mark."""
    body = json.dumps({"ts": "é" * 60_000, "energy_wh": 1, "power_w": 1, "x": ["Ā"] * 9}).encode()
    out = _decode(body)
    [rejection] = out.rejected
    assert len(rejection.detail) <= contract.MAX_DETAIL_CHARS
    # The rejection keeps that text, never the parsed object (which a list of one-character
    # strings makes 17 times its text): what it holds is bounded too.
    assert isinstance(rejection.raw, str)
    assert len(rejection.raw) < contract.RAW_EXCERPT_BYTES + 20
    objects = quarantine.quarantine_objects(
        out.rejected, prefix="quarantine/", event_source_arn="arn", fallback_ms=RECEIVED_MS
    )
    [(line_bytes, _)] = objects.values()
    line = json.loads(line_bytes)
    assert len(line_bytes) < 3 * contract.RAW_EXCERPT_BYTES
    assert line["raw"].endswith(contract.EXCERPT_MARK)
