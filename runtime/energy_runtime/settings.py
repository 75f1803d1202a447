"""Every setting the handlers read from their environment, validated in one place.

The variables, their types and limits are the contract's (`contract.VARIABLES`), which
the stacks set from `cdk.json`. A variable that is missing or malformed raises
SettingsError naming it, at the first invocation: the runtime never falls back to a
default of its own, so a function applies exactly the rules that were configured.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from energy_runtime import contract, local_time
from energy_runtime.contract import Variable


class SettingsError(ValueError):
    """An environment variable is missing or has a value the runtime cannot use."""


def _raw(env: Mapping[str, str], variable: Variable) -> str:
    value = env.get(variable.name)
    if value is None or not value.strip():
        raise SettingsError(
            f"environment variable {variable.name} is required and must not be empty "
            f"({variable.description})"
        )
    return value.strip()


def _int(env: Mapping[str, str], variable: Variable) -> int:
    raw = _raw(env, variable)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{variable.name}={raw!r} is not an integer") from None
    _check_bounds(variable, value)
    if variable.choices and value not in variable.choices:
        raise SettingsError(f"{variable.name}={value} is not one of {list(variable.choices)}")
    return value


def _float(env: Mapping[str, str], variable: Variable) -> float:
    raw = _raw(env, variable)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{variable.name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise SettingsError(f"{variable.name}={raw!r} must be a finite number")
    _check_bounds(variable, value)
    return value


def _check_bounds(variable: Variable, value: float) -> None:
    low, high = variable.minimum, variable.maximum
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{variable.name}={value} is outside {low}..{high}")


def _prefix(env: Mapping[str, str], variable: Variable) -> str:
    value = _raw(env, variable)
    if value.startswith("/") or not value.endswith("/"):
        raise SettingsError(f"{variable.name}={value!r} must be a relative S3 prefix ending in '/'")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingRules:
    """Plausibility limits for a reading; shared by validation and aggregation."""

    max_power_w: int = int(contract.MAX_POWER_W.default or 0)
    max_future_skew_s: int = int(contract.MAX_FUTURE_SKEW_S.default or 0)
    max_age_s: int = int(contract.MAX_READING_AGE_DAYS.default or 0) * 86_400


def _reading_rules(env: Mapping[str, str]) -> ReadingRules:
    return ReadingRules(
        max_power_w=_int(env, contract.MAX_POWER_W),
        max_future_skew_s=_int(env, contract.MAX_FUTURE_SKEW_S),
        max_age_s=_int(env, contract.MAX_READING_AGE_DAYS) * 86_400,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingSettings:
    handoff_queue_url: str
    archive_bucket: str
    quarantine_prefix: str
    interval_minutes: int
    max_payload_bytes: int
    max_readings_per_interval: int
    rules: ReadingRules
    # the JSON text one batch parses at most (contract.BATCH_TEXT_BYTES_PER_MEMORY_MB)
    max_batch_text_bytes: int = (
        contract.DEFAULT_LAMBDA_MEMORY_MB * contract.BATCH_TEXT_BYTES_PER_MEMORY_MB
    )


def _memory_mb(env: Mapping[str, str]) -> int:
    """The function's memory as Lambda states it (the default locally)."""
    raw = env.get(contract.LAMBDA_MEMORY_VARIABLE) or str(contract.DEFAULT_LAMBDA_MEMORY_MB)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(f"{contract.LAMBDA_MEMORY_VARIABLE}={raw!r} is not a positive integer")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessorSettings:
    table_name: str
    archive_bucket: str
    processed_prefix: str
    quarantine_prefix: str
    interval_minutes: int
    alert_topic_arn: str
    high_usage_threshold_wh: float
    interval_ttl_days: int
    unusual_min_z: float
    unusual_min_excess_wh: float
    unusual_sustain_intervals: int
    unusual_tolerance_minutes: int
    time_zone: str  # the default for a meter whose thing names no zone
    baseline_days: int
    warmup_days: int
    alert_period_minutes: int
    max_readings_per_interval: int
    meter_group_name: str
    silent_after_minutes: int
    meter_stuck_min_wh: float
    baseload_min_step_w: float
    baseload_nights: int
    rules: ReadingRules


def _zone(env: Mapping[str, str], variable: contract.Variable) -> str:
    name = _raw(env, variable)
    if not local_time.is_zone(name):
        raise SettingsError(f"{variable.name}={name!r} is not an IANA time zone")
    return name


def load_batching_settings(env: Mapping[str, str] | None = None) -> BatchingSettings:
    env = os.environ if env is None else env
    return BatchingSettings(
        handoff_queue_url=_raw(env, contract.HANDOFF_QUEUE_URL),
        archive_bucket=_raw(env, contract.ARCHIVE_BUCKET),
        quarantine_prefix=_prefix(env, contract.QUARANTINE_PREFIX_VARIABLE),
        interval_minutes=_int(env, contract.INTERVAL_MINUTES),
        max_payload_bytes=_int(env, contract.MAX_PAYLOAD_BYTES),
        max_readings_per_interval=_int(env, contract.MAX_READINGS_PER_INTERVAL),
        rules=_reading_rules(env),
        max_batch_text_bytes=_memory_mb(env) * contract.BATCH_TEXT_BYTES_PER_MEMORY_MB,
    )


def load_processor_settings(env: Mapping[str, str] | None = None) -> ProcessorSettings:
    env = os.environ if env is None else env
    rules = _reading_rules(env)
    ttl_days = _int(env, contract.INTERVAL_TTL_DAYS)
    baseline_days = _int(env, contract.BASELINE_DAYS)
    nights = _int(env, contract.BASELOAD_NIGHTS)
    reach = contract.interval_reach_days(rules.max_age_s // 86_400, baseline_days, nights)
    if ttl_days <= reach:
        raise SettingsError(
            f"{contract.INTERVAL_TTL_DAYS.name}={ttl_days} must exceed {reach} "
            f"({contract.MAX_READING_AGE_DAYS.name} + {contract.BASELINE_DAYS.name} + "
            f"{contract.BASELOAD_NIGHTS.name} + 1): a late reading must find its interval, "
            "and the days its alerts compare it with, still stored"
        )
    warmup_days = _int(env, contract.WARMUP_DAYS)
    if warmup_days > contract.weekend_days_within(baseline_days):
        raise SettingsError(
            f"{contract.WARMUP_DAYS.name}={warmup_days} must be at most the "
            f"{contract.weekend_days_within(baseline_days)} weekend days that "
            f"{contract.BASELINE_DAYS.name}={baseline_days} hold: weekend intervals could "
            "never be judged"
        )
    return ProcessorSettings(
        table_name=_raw(env, contract.TABLE_NAME),
        archive_bucket=_raw(env, contract.ARCHIVE_BUCKET),
        processed_prefix=_prefix(env, contract.PROCESSED_PREFIX_VARIABLE),
        quarantine_prefix=_prefix(env, contract.QUARANTINE_PREFIX_VARIABLE),
        interval_minutes=_int(env, contract.INTERVAL_MINUTES),
        alert_topic_arn=_raw(env, contract.ALERT_TOPIC_ARN),
        high_usage_threshold_wh=_float(env, contract.HIGH_USAGE_THRESHOLD_WH),
        interval_ttl_days=ttl_days,
        unusual_min_z=_float(env, contract.UNUSUAL_MIN_Z),
        unusual_min_excess_wh=_float(env, contract.UNUSUAL_MIN_EXCESS_WH),
        unusual_sustain_intervals=_int(env, contract.UNUSUAL_SUSTAIN_INTERVALS),
        unusual_tolerance_minutes=_int(env, contract.UNUSUAL_TOLERANCE_MINUTES),
        time_zone=_zone(env, contract.TIME_ZONE),
        baseline_days=baseline_days,
        warmup_days=warmup_days,
        alert_period_minutes=_int(env, contract.ALERT_PERIOD_MINUTES),
        max_readings_per_interval=_int(env, contract.MAX_READINGS_PER_INTERVAL),
        meter_group_name=_raw(env, contract.METER_GROUP_NAME),
        silent_after_minutes=_int(env, contract.SILENT_AFTER_MINUTES),
        meter_stuck_min_wh=_float(env, contract.METER_STUCK_MIN_WH),
        baseload_min_step_w=_float(env, contract.BASELOAD_MIN_STEP_W),
        baseload_nights=nights,
        rules=rules,
    )
