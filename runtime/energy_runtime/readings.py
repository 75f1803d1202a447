"""Fast decoding and validation of Kinesis records into accepted points or rejections.

This is the batching function's hot path (100,000+ readings/s on one core), so it checks
types by hand instead of building a model per reading; models.Reading states the same
rules and the tests hold the two to agreement. Every reading that enters comes out either
as an accepted Point or as a Rejection with a reason: nothing is dropped.
"""

from __future__ import annotations

import binascii
import json
import math
import re
import time
import zlib
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from energy_runtime.codec import Point
from energy_runtime.contract import (
    BATCH_TEXT_BYTES_PER_MEMORY_MB,
    CONTAINER_TEXT_BYTES,
    DEFAULT_LAMBDA_MEMORY_MB,
    DEVICE_SHARE_OF_BATCH_TEXT,
    EXCERPT_MARK,
    GZIP_MAGIC,
    MAX_ABS_EPOCH_S,
    MAX_DETAIL_CHARS,
    MAX_ENERGY_WH,
    MAX_INFLATION_RATIO,
    MAX_NESTING_DEPTH,
    MAX_RECEIVED_AT_AHEAD_MS,
    MIN_ENTRY_TEXT_BYTES,
    MIN_RECEIVED_AT_MS,
    OPTIONAL_FIELD_RANGES,
    OPTIONAL_FIELDS,
    OPTIONAL_MIN_MAGNITUDE,
    QUARANTINE_RAW_BASE64,
    QUARANTINE_REASONS,
    RAW_EXCERPT_BYTES,
    REJECTION_TEXT_BYTES,
    SHORT_EXCERPT_BYTES,
    THING_NAME_PATTERN,
    QuarantineReason,
)
from energy_runtime.settings import ReadingRules

_DEVICE_ID = re.compile(THING_NAME_PATTERN)


# The quarantine's vocabulary lives in the contract (alarms and docs name reasons too).
Reason = QuarantineReason
ALL_REASONS = QUARANTINE_REASONS


@dataclass(slots=True)
class Rejection:
    reason: str
    detail: str
    device_id: str
    received_at: int | None
    sequence_number: str
    index: int | None  # position in a device-side batch; None for the whole record
    raw: Any  # the reading as sent, or an excerpt of the raw payload
    raw_encoding: str | None = None  # QUARANTINE_RAW_BASE64: `raw` is base64 of the bytes
    count: int = 1  # readings this stands for (more: the first of them, the rest counted)


@dataclass(slots=True)
class Decoded:
    # device -> its accepted points, in arrival order (merged and sorted downstream)
    points: dict[str, list[Point]] = field(default_factory=dict)
    # device -> (newest point, its receive time, its optional fields)
    latest: dict[str, tuple[Point, int, dict[str, Any] | None]] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    accepted_count: int = 0
    # device -> sequence number of its first record (the retry point if its hand-off fails)
    first_sequence: dict[str, str] = field(default_factory=dict)
    # the batch's clock: the latest plausible receive time is a day ahead of it
    now_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    # The batch's budget (contract.BATCH_TEXT_BYTES_PER_MEMORY_MB), in bytes of text: the
    # text parsed, its entries and nested objects, each rejected reading kept and excerpts
    # of inflated text (contract.py says what each costs); what the batch has spent, and
    # what each device's records spent of that.
    text_budget: int = DEFAULT_LAMBDA_MEMORY_MB * BATCH_TEXT_BYTES_PER_MEMORY_MB
    spent: int = 0
    device_spent: dict[str, int] = field(default_factory=dict)

    def room(self, device_id: str) -> int:
        """What the batch may still spend for this device."""
        share = self.text_budget // DEVICE_SHARE_OF_BATCH_TEXT
        return min(self.text_budget - self.spent, share - self.device_spent.get(device_id, 0))

    def spend(self, device_id: str, cost: int) -> bool:
        """Charge `cost` to the batch and the device, if both have room for it."""
        if self.room(device_id) < cost:
            return False
        self.spent += cost
        self.device_spent[device_id] = self.device_spent.get(device_id, 0) + cost
        return True

    @property
    def quarantined_count(self) -> int:
        return sum(rejection.count for rejection in self.rejected)

    def budget_detail(self, device_id: str) -> str:
        share = self.text_budget // DEVICE_SHARE_OF_BATCH_TEXT
        return (
            f"the batch may spend {max(self.room(device_id), 0)} more bytes for {device_id} "
            f"({self.device_spent.get(device_id, 0)} of its {share} spent, "
            f"{self.spent} of the batch's {self.text_budget})"
        )


def folded(
    first: Rejection, count: int, decoded: Decoded, what: str, reason: str | None = None
) -> Rejection:
    """One rejection standing for `count` rejected readings the budget cannot keep one by
    one: the first of them, with its defect, and how many there were."""
    return Rejection(
        reason or first.reason,
        f"{count} {what} not kept one by one; the first: {first.detail}: "
        f"{decoded.budget_detail(first.device_id)}",
        first.device_id,
        first.received_at,
        first.sequence_number,
        first.index,
        first.raw,
        count=count,
    )


def reading_excerpt(item: Any) -> str:
    """A rejected reading as the JSON text its quarantine line keeps, cut to
    RAW_EXCERPT_BYTES (an honest reading is a few hundred bytes). The rejection keeps this,
    never the parsed object: a list of one-character strings or of integers takes 17 times
    its text once parsed, its text alone does not."""
    try:
        text = json.dumps(item)
    except (RecursionError, ValueError, TypeError) as error:
        return f"<not serializable: {type(error).__name__}>"
    return _marked(text[:RAW_EXCERPT_BYTES], len(text), len(text) > RAW_EXCERPT_BYTES)


def _marked(kept: str, whole: int, cut: bool) -> str:
    """What is kept of an input, marked with the size of the whole when it was cut (the
    one format of an excerpt: a replay skips what ends in EXCERPT_MARK)."""
    return f"{kept}...[{whole}{EXCERPT_MARK}" if cut else kept


def _excerpt(raw: bytes, size: int = RAW_EXCERPT_BYTES) -> str:
    text = raw[:size].decode("utf-8", errors="backslashreplace")
    return _marked(text, len(raw), len(raw) > size)


_BASE64_EXCERPT_BYTES = RAW_EXCERPT_BYTES * 3 // 4  # as many characters once encoded


def _base64_excerpt(raw: bytes) -> str:
    """A compressed payload as base64, which a replay can send again if it is whole."""
    text = b64encode(raw[:_BASE64_EXCERPT_BYTES]).decode()
    return _marked(text, len(raw), len(raw) > _BASE64_EXCERPT_BYTES)


_STRUCTURE = frozenset(b'[]{}"')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
_STRING = re.compile(rb'"[^"]*"')
_PARENS = bytes.maketrans(b"[{]}", b"(())")


def brackets(raw: bytes) -> int:
    """The opening brackets in a JSON text, strings included."""
    return raw.count(b"[") + raw.count(b"{")


def too_deep(raw: bytes, limit: int = MAX_NESTING_DEPTH, opening: int | None = None) -> bool:
    """Whether the JSON text nests deeper than `limit`, found without parsing it (a deep
    enough nest makes every recursive parser and encoder fail). Free for a payload with
    fewer brackets (`opening`, if the caller has counted them) than the limit; for a
    device-side batch, a fraction of a microsecond per reading (bytes methods, all in C)."""
    if (brackets(raw) if opening is None else opening) <= limit:
        return False
    if b"\\" in raw:  # escaped backslashes, then escaped quotes, cannot end a string
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Keep only quotes and brackets; drop whole strings: the brackets left are structure.
    skeleton = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # strings holding brackets
        skeleton = _STRING.sub(b"", skeleton)
    # One level per pass: `replace` removes every innermost pair, and never the pair the
    # removal leaves behind (it does not rescan what it produced).
    nest = skeleton.translate(_PARENS)
    for _ in range(limit):
        nest = nest.replace(b"()", b"")
        if not nest:
            return False
    return b"(" in nest


_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer, not zlib's or raw deflate


def inflate(raw: bytes, limit: int, room: int | None = None) -> bytes | tuple[str, str]:
    """A gzip payload's JSON text, or a (reason, detail) pair. Inflation stops one byte past
    the first bound it would cross: `limit` bytes, MAX_INFLATION_RATIO times the payload
    (both oversized_payload), or the `room` left in the batch's text budget (TEXT_BUDGET).
    So a small payload that would inflate to gigabytes costs little memory and time."""
    ratio_limit = MAX_INFLATION_RATIO * len(raw)
    cap = min(limit, ratio_limit) if room is None else min(limit, ratio_limit, room)
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        text = inflater.decompress(raw, cap + 1)
    except zlib.error as error:
        return Reason.BAD_COMPRESSION, f"gzip: {error}"
    if len(text) > cap:
        if cap == limit:
            return Reason.OVERSIZED, f"{len(raw)} gzip bytes inflate beyond {limit} bytes"
        if cap == ratio_limit:
            return (
                Reason.OVERSIZED,
                f"{len(raw)} gzip bytes inflate more than {MAX_INFLATION_RATIO} times",
            )
        return Reason.TEXT_BUDGET, f"{len(raw)} gzip bytes inflate beyond {cap} bytes"
    if not inflater.eof:
        return Reason.BAD_COMPRESSION, f"gzip stream ends early ({len(raw)} bytes)"
    if inflater.unused_data:
        return (
            Reason.BAD_COMPRESSION,
            f"{len(inflater.unused_data)} bytes after the gzip stream (one member only)",
        )
    return text


def _optional_problem(name: str, value: Any) -> str | None:
    """Why an optional field's value is refused (None: it is a plausible number)."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            return Reason.NON_FINITE
        if name == "seq":
            return Reason.WRONG_TYPE
    elif kind is not int:  # a bool is not a number here
        return Reason.WRONG_TYPE
    low, high = OPTIONAL_FIELD_RANGES[name]
    if not low <= value <= high or (value and abs(value) < OPTIONAL_MIN_MAGNITUDE):
        return Reason.OUT_OF_RANGE
    return None


def _number_problem(value: Any) -> str | None:
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else Reason.NON_FINITE
    return None if kind is int else Reason.WRONG_TYPE  # bool is not a number here


def _timestamp_ms(value: Any) -> int | str:
    """Epoch ms, or a reason string."""
    kind = type(value)
    if kind is int or kind is float:
        if not math.isfinite(value):
            return Reason.NON_FINITE
        if not -MAX_ABS_EPOCH_S < value < MAX_ABS_EPOCH_S:
            return Reason.BAD_TIMESTAMP
        return round(value * 1000)
    if kind is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return Reason.BAD_TIMESTAMP
        if parsed.tzinfo is None:
            return Reason.BAD_TIMESTAMP
        return round(parsed.timestamp() * 1000)
    return Reason.WRONG_TYPE


Checked = tuple[Point, dict[str, Any] | None] | tuple[str, str]


def check_reading(item: Any, received_at: int, rules: ReadingRules) -> Checked:
    """An accepted (point, optional fields) or a (reason, detail) pair."""
    if type(item) is not dict:
        return Reason.NOT_A_READING, f"expected an object, got {type(item).__name__}"
    try:
        ts, energy, power = item["ts"], item["energy_wh"], item["power_w"]
    except KeyError as missing:
        return Reason.MISSING_FIELD, f"{missing.args[0]} is required"
    ts_ms = _timestamp_ms(ts)
    if type(ts_ms) is str:
        return ts_ms, f"ts={ts!r}"
    for name, value in (("energy_wh", energy), ("power_w", power)):
        problem = _number_problem(value)
        if problem:
            return problem, f"{name}={value!r}"
        if value < 0:
            return Reason.NEGATIVE_VALUE, f"{name}={value!r}"
    if energy > MAX_ENERGY_WH:
        return Reason.OUT_OF_RANGE, f"energy_wh={energy!r} exceeds {MAX_ENERGY_WH:.0f}"
    if power > rules.max_power_w:
        return Reason.IMPLAUSIBLE_POWER, f"power_w={power!r} exceeds {rules.max_power_w}"
    assert isinstance(ts_ms, int)
    if ts_ms > received_at + rules.max_future_skew_s * 1000:
        return Reason.FUTURE_TIMESTAMP, f"ts={ts!r} is after receipt ({received_at} ms)"
    if ts_ms < received_at - rules.max_age_s * 1000:
        return Reason.ANCIENT_TIMESTAMP, f"ts={ts!r} is older than {rules.max_age_s} s"
    optional = None
    if len(item) > 3:
        optional = {}
        for name in OPTIONAL_FIELDS:
            value = item.get(name)
            if value is None:
                continue
            problem = _optional_problem(name, value)
            if problem:
                low, high = OPTIONAL_FIELD_RANGES[name]
                return problem, f"{name}={value!r} (plausible: {low}..{high})"
            optional[name] = value
    point = Point(ts_ms, round(energy * 1000), round(power * 10))
    return point, optional or None


def decode_record(
    record: dict[str, Any], max_payload_bytes: int, rules: ReadingRules, out: Decoded
) -> int:
    """Decode one Kinesis event record into `out`; returns how many readings it held
    (a record whose payload cannot be split into readings counts as one)."""
    kinesis = record["kinesis"]
    sequence_number = kinesis["sequenceNumber"]
    partition_key = kinesis.get("partitionKey", "")
    try:
        envelope = json.loads(b64decode(kinesis["data"]))
        device_id = envelope["device_id"]
        received_at = envelope["received_at"]
        raw = b64decode(envelope["payload"], validate=True)
        if device_id not in out.points and (
            type(device_id) is not str or not _DEVICE_ID.fullmatch(device_id)
        ):
            raise ValueError(f"device_id={device_id!r}")
        if type(received_at) is not int:
            raise ValueError(f"received_at={received_at!r}")
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as error:
        out.rejected.append(
            Rejection(
                Reason.BAD_ENVELOPE,
                str(error)[:200],
                partition_key,
                # no trusted receive time: Kinesis's arrival time stands in for it
                round(float(kinesis.get("approximateArrivalTimestamp", 0)) * 1000),
                sequence_number,
                None,
                str(kinesis.get("data", ""))[:RAW_EXCERPT_BYTES],
            )
        )
        return 1
    out.first_sequence.setdefault(device_id, sequence_number)
    compressed = raw[:2] == GZIP_MAGIC  # refused before inflation, it is kept as base64
    if not MIN_RECEIVED_AT_MS <= received_at <= out.now_ms + MAX_RECEIVED_AT_AHEAD_MS:
        # Not a time the rule could have stamped: no age rule can judge the readings, and
        # the quarantine files them under the batch's clock instead.
        return _reject_record(
            out,
            Reason.BAD_RECEIVED_AT,
            f"received_at={received_at} is outside {MIN_RECEIVED_AT_MS}..now + 1 day",
            device_id,
            None,
            sequence_number,
            raw,
            compressed,
        )
    if len(raw) > max_payload_bytes:
        return _reject_record(
            out,
            Reason.OVERSIZED,
            f"{len(raw)} bytes > {max_payload_bytes}",
            device_id,
            received_at,
            sequence_number,
            raw,
            compressed,
        )
    # Memory grows with the text parsed, not with the bytes received: the batch's budget of
    # text is charged before parsing (contract.BATCH_TEXT_BYTES_PER_MEMORY_MB).
    room = out.room(device_id)
    if compressed:
        inflated = (
            inflate(raw, max_payload_bytes, room)
            if room > 0
            else (Reason.TEXT_BUDGET, out.budget_detail(device_id))
        )
        if isinstance(inflated, tuple):
            reason, detail = inflated
            if reason == Reason.TEXT_BUDGET:
                detail = f"{detail}: {out.budget_detail(device_id)}" if room > 0 else detail
            return _reject_record(
                out, reason, detail, device_id, received_at, sequence_number, raw, True,
                whole=reason == Reason.TEXT_BUDGET,
            )  # fmt: skip
        # What follows judges (and quarantines) the JSON text: a quarantined line keeps
        # text a replay can send again, whichever encoding the meter used.
        raw = inflated
    elif len(raw) > room:
        return _reject_record(
            out,
            Reason.TEXT_BUDGET,
            f"{len(raw)} bytes: {out.budget_detail(device_id)}",
            device_id,
            received_at,
            sequence_number,
            raw,
            whole=True,
        )
    out.spend(device_id, len(raw))  # within the room, checked above
    opening = brackets(raw)  # for the depth check, and the charge for nested objects
    if too_deep(raw, opening=opening):
        return _reject_record(
            out,
            Reason.TOO_DEEP,
            f"JSON nested deeper than {MAX_NESTING_DEPTH} levels",
            device_id,
            received_at,
            sequence_number,
            raw,
            inflated=compressed,
        )
    try:
        body = json.loads(raw.decode())  # UTF-8 only: json.loads(bytes) would sniff UTF-16
    except UnicodeDecodeError as error:
        return _reject_record(
            out, Reason.NOT_UTF8, str(error)[:200], device_id, received_at, sequence_number, raw,
            inflated=compressed,
        )  # fmt: skip
    except ValueError as error:
        return _reject_record(
            out,
            Reason.MALFORMED_JSON,
            str(error)[:200],
            device_id,
            received_at,
            sequence_number,
            raw,
            inflated=compressed,
        )
    if type(body) is dict and "readings" in body:
        items = body["readings"]
        if type(items) is not list:
            return _reject_record(
                out,
                Reason.NOT_A_READING,
                "readings is not a list",
                device_id,
                received_at,
                sequence_number,
                raw,
                inflated=compressed,
            )
        batched = True
    else:
        items = [body]
        batched = False
    # An entry's own object and the message's {"readings": [...]} are in its text's share;
    # any further object or list is charged as what it takes parsed (in strings too: the
    # count errs high, never low).
    containers = opening - len(items) - 2
    cost = max(len(items) * MIN_ENTRY_TEXT_BYTES, len(raw))
    cost += max(containers, 0) * CONTAINER_TEXT_BYTES
    if cost > len(raw) and not out.spend(device_id, cost - len(raw)):
        return _reject_record(
            out,
            Reason.TEXT_BUDGET,
            f"{len(items)} entries and {max(containers, 0)} further objects or lists, "
            f"charged {cost} bytes: {out.budget_detail(device_id)}",
            device_id,
            received_at,
            sequence_number,
            raw,
            inflated=compressed,
        )
    _accept(items, batched, device_id, received_at, sequence_number, rules, out)
    return len(items)


def _reject_record(
    out: Decoded,
    reason: str,
    detail: str,
    device_id: str,
    received_at: int | None,
    sequence_number: str,
    raw: bytes,
    compressed: bool = False,
    *,
    inflated: bool = False,
    whole: bool = False,
) -> int:
    """Quarantines a whole Kinesis record (not one reading of it); returns the count.
    `compressed`: `raw` is the gzip payload as sent, kept as base64. `inflated`: `raw` is
    what a gzip payload inflated to, whose excerpt the event's size does not bound: it is
    charged to the budget, and cut short past the device's room. `whole`: keep all of `raw`
    (as sent, so the event's size bounds it), a record refused for the budget alone, which a
    replay sends again."""
    if whole:
        kept = b64encode(raw).decode() if compressed else raw.decode(errors="backslashreplace")
        rejection = Rejection(
            reason, detail, device_id, received_at, sequence_number, None, kept,
            QUARANTINE_RAW_BASE64 if compressed else None,
        )  # fmt: skip
    elif compressed:
        rejection = Rejection(
            reason, detail, device_id, received_at, sequence_number, None,
            _base64_excerpt(raw), QUARANTINE_RAW_BASE64,
        )  # fmt: skip
    else:
        excerpt = _excerpt(raw)
        if inflated and not out.spend(device_id, REJECTION_TEXT_BYTES + len(excerpt)):
            excerpt = _excerpt(raw, SHORT_EXCERPT_BYTES)
        rejection = Rejection(
            reason, detail, device_id, received_at, sequence_number, None, excerpt
        )
    out.rejected.append(rejection)
    return 1


_OPTIONAL = frozenset(OPTIONAL_FIELDS)
_HIGH = {name: high for name, (_low, high) in OPTIONAL_FIELD_RANGES.items()}
assert all(low == 0 for low, _high in OPTIONAL_FIELD_RANGES.values())
_TINY = OPTIONAL_MIN_MAGNITUDE
_new_tuple = tuple.__new__


def _optional_fields(item: dict[str, Any]) -> dict[str, Any] | None:
    """Valid optional fields ({} if none), or None if one is invalid (the slow path
    then names the defect)."""
    found: dict[str, Any] = {}
    for name in item.keys() & _OPTIONAL:  # set intersection runs in C
        value = item[name]
        if value is None:
            continue
        kind = type(value)
        # Every range starts at 0: a value is 0, or between the smallest magnitude and its
        # field's maximum. NaN fails both; a bool is not a number; seq must be an integer.
        if not (
            (kind is int or (kind is float and name != "seq"))
            and (_TINY <= value <= _HIGH[name] or value == 0)
        ):
            return None
        found[name] = value
    return found


def _accept(
    items: list[Any],
    batched: bool,
    device_id: str,
    received_at: int,
    sequence_number: str,
    rules: ReadingRules,
    out: Decoded,
) -> None:
    """The hot loop: plain readings pass inline checks; anything else (a defect, or
    optional fields) takes check_reading, which also names the defect."""
    points = out.points.get(device_id)
    if points is None:
        points = out.points[device_id] = []
    newest: Point | None = None
    newest_optional: dict[str, Any] | None = None
    earliest_s = (received_at - rules.max_age_s * 1000) / 1000
    latest_s = (received_at + rules.max_future_skew_s * 1000) / 1000
    max_power = rules.max_power_w
    accepted = 0
    first_unkept: Rejection | None = None  # past the budget's room, the rest only counted
    unkept = 0
    for index, item in enumerate(items):
        optional = None
        point: Point | None
        if type(item) is dict:
            ts: Any = item.get("ts")
            energy: Any = item.get("energy_wh")
            power: Any = item.get("power_w")
            kt, ke, kp = type(ts), type(energy), type(power)
            # NaN and infinities fail these comparisons and fall through to the slow path
            if (
                (kt is int or kt is float)
                and (ke is float or ke is int)
                and (kp is float or kp is int)
                and earliest_s <= ts <= latest_s
                and 0 <= energy <= MAX_ENERGY_WH
                and 0 <= power <= max_power
            ):
                # tuple.__new__ skips NamedTuple's Python-level __new__ (hot path)
                point = _new_tuple(
                    Point, (round(ts * 1000), round(energy * 1000), round(power * 10))
                )
                if len(item) > 3:
                    optional = _optional_fields(item)
                    if optional is None:
                        point = None
            else:
                point = None
        else:
            point = None
        if point is None:
            result = check_reading(item, received_at, rules)
            first = result[0]
            if type(first) is str:
                if unkept:  # past the room already: only counted
                    unkept += 1
                    continue
                excerpt = reading_excerpt(item)
                rejection = Rejection(
                    first,
                    str(result[1])[:MAX_DETAIL_CHARS],
                    device_id,
                    received_at,
                    sequence_number,
                    index if batched else None,
                    excerpt,
                )
                if out.spend(device_id, REJECTION_TEXT_BYTES + len(excerpt)):
                    out.rejected.append(rejection)
                else:
                    first_unkept, unkept = rejection, 1
                continue
            point, optional = result  # type: ignore[assignment]
            assert isinstance(point, Point)
        points.append(point)
        accepted += 1
        if newest is None or point > newest:
            newest, newest_optional = point, optional or None
    if first_unkept is not None:
        out.rejected.append(
            folded(
                first_unkept, unkept, out, "rejected readings of this record", Reason.TEXT_BUDGET
            )
        )
    out.accepted_count += accepted
    if newest is not None:
        kept = out.latest.get(device_id)
        if kept is None or (newest, received_at) > kept[:2]:
            out.latest[device_id] = (newest, received_at, newest_optional)
