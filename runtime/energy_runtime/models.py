"""Typed models of what crosses the runtime's boundaries (pydantic v2).

The batching hot path validates readings with hand-written checks (readings.py) because a
model per reading costs more than the whole decode; these models are the reference those
checks are tested against, and they explain rejections in the quarantine's `detail`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

from energy_runtime.contract import (
    MAX_ENERGY_WH,
    OPTIONAL_FIELD_RANGES,
    OPTIONAL_MIN_MAGNITUDE,
    THING_NAME_PATTERN,
)

Number = StrictInt | StrictFloat
_HIGH = {name: high for name, (_low, high) in OPTIONAL_FIELD_RANGES.items()}
DEVICE_ID_PATTERN = f"^{THING_NAME_PATTERN}$"  # AWS IoT thing-name characters


class Reading(BaseModel):
    """One meter reading as the device sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ts: Number | datetime
    energy_wh: Annotated[Number, Field(ge=0, le=MAX_ENERGY_WH)]
    power_w: Annotated[Number, Field(ge=0)]
    voltage_v: Annotated[Number, Field(ge=0, le=_HIGH["voltage_v"])] | None = None
    current_a: Annotated[Number, Field(ge=0, le=_HIGH["current_a"])] | None = None
    power_factor: Annotated[Number, Field(ge=0, le=_HIGH["power_factor"])] | None = None
    frequency_hz: Annotated[Number, Field(ge=0, le=_HIGH["frequency_hz"])] | None = None
    seq: Annotated[StrictInt, Field(ge=0, le=_HIGH["seq"])] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _iso_needs_offset(cls, value: object) -> object:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and not -1e13 < value < 1e13:  # type: ignore[operator]
            raise ValueError("epoch seconds out of range")
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("ISO-8601 timestamp without a UTC offset")
            return parsed
        return value

    @field_validator(
        "ts", "energy_wh", "power_w", "voltage_v", "current_a", "power_factor", "frequency_hz"
    )
    @classmethod
    def _finite(cls, value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        return value

    @field_validator(*OPTIONAL_FIELD_RANGES)
    @classmethod
    def _a_measurement(cls, value: object) -> object:
        if isinstance(value, int | float) and value and abs(value) < OPTIONAL_MIN_MAGNITUDE:
            raise ValueError(f"non-zero but below {OPTIONAL_MIN_MAGNITUDE}")
        return value


class RuleRecord(BaseModel):
    """The JSON the topic rule puts on the stream (docs/contract.md)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    payload: str
    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    received_at: Annotated[StrictInt, Field(gt=0)]


class HandoffInterval(BaseModel):
    """A partial aggregate of one device and one interval (the readings travel along)."""

    start_ms: StrictInt
    points: str  # base64 of codec.encode_points
    reading_count: StrictInt
    energy_wh: float
    power_min_w: float
    power_max_w: float
    power_mean_w: float
    first_ts_ms: StrictInt
    last_ts_ms: StrictInt


class HandoffLatest(BaseModel):
    ts_ms: StrictInt
    energy_mwh: StrictInt
    power_dw: StrictInt
    received_at: StrictInt
    optional: dict[str, float | int] = Field(default_factory=dict)


class HandoffDevice(BaseModel):
    device_id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
    latest: HandoffLatest
    intervals: list[HandoffInterval]


class HandoffMessage(BaseModel):
    """One SQS message from the batching function to the processor."""

    version: int = 1
    interval_minutes: StrictInt
    event_source_arn: str
    first_sequence_number: str
    last_sequence_number: str
    devices: list[HandoffDevice]
