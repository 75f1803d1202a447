"""Every setting the handlers read from their environment, validated in one place.

A missing or malformed value raises SettingsError naming the variable, at cold start,
instead of surfacing later as a confusing failure deep in a handler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """An environment variable is missing or has a value the runtime cannot use."""


def _text(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or not value.strip():
        raise SettingsError(f"environment variable {name} is required and must not be empty")
    return value.strip()


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is outside {low}..{high}")
    return value


def _float(env: Mapping[str, str], name: str, default: float | None) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        if default is None:
            raise SettingsError(f"environment variable {name} is required")
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name}={raw!r} must be a positive finite number")
    return value


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = _text(env, name, default)
    if value.startswith("/") or not value.endswith("/"):
        raise SettingsError(f"{name}={value!r} must be a relative S3 prefix ending in '/'")
    return value


def _interval_minutes(env: Mapping[str, str]) -> int:
    minutes = _int(env, "INTERVAL_MINUTES", 15, 1, 60)
    if 60 % minutes:
        raise SettingsError(f"INTERVAL_MINUTES={minutes} must divide an hour (1, 5, 15, 30, 60...)")
    return minutes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingRules:
    """Plausibility limits for a reading; shared by validation and aggregation."""

    max_power_w: int = 50_000  # far above any apartment's main fuse
    max_future_skew_s: int = 300  # device clock ahead of the rule's receive time
    max_age_s: int = 7 * 86_400  # older readings are quarantined (TTL must outlive this)


def _reading_rules(env: Mapping[str, str]) -> ReadingRules:
    return ReadingRules(
        max_power_w=_int(env, "MAX_POWER_W", 50_000, 1, 10_000_000),
        max_future_skew_s=_int(env, "MAX_FUTURE_SKEW_S", 300, 0, 86_400),
        max_age_s=_int(env, "MAX_READING_AGE_DAYS", 7, 1, 365) * 86_400,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchingSettings:
    handoff_queue_url: str
    archive_bucket: str
    quarantine_prefix: str
    interval_minutes: int
    max_payload_bytes: int
    rules: ReadingRules


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
    anomaly_factor: float
    anomaly_min_wh: float
    alert_period_minutes: int
    rules: ReadingRules


def load_batching_settings(env: Mapping[str, str] | None = None) -> BatchingSettings:
    env = os.environ if env is None else env
    return BatchingSettings(
        handoff_queue_url=_text(env, "HANDOFF_QUEUE_URL"),
        archive_bucket=_text(env, "ARCHIVE_BUCKET"),
        quarantine_prefix=_prefix(env, "QUARANTINE_PREFIX", "quarantine/"),
        interval_minutes=_interval_minutes(env),
        max_payload_bytes=_int(env, "MAX_PAYLOAD_BYTES", 131_072, 64, 1_048_576),
        rules=_reading_rules(env),
    )


def load_processor_settings(env: Mapping[str, str] | None = None) -> ProcessorSettings:
    env = os.environ if env is None else env
    rules = _reading_rules(env)
    ttl_days = _int(env, "INTERVAL_TTL_DAYS", 35, 1, 3650)
    if ttl_days * 86_400 <= rules.max_age_s:
        raise SettingsError(
            f"INTERVAL_TTL_DAYS={ttl_days} must exceed MAX_READING_AGE_DAYS="
            f"{rules.max_age_s // 86_400}: a late reading must find its interval still stored"
        )
    return ProcessorSettings(
        table_name=_text(env, "TABLE_NAME"),
        archive_bucket=_text(env, "ARCHIVE_BUCKET"),
        processed_prefix=_prefix(env, "PROCESSED_PREFIX", "processed/"),
        quarantine_prefix=_prefix(env, "QUARANTINE_PREFIX", "quarantine/"),
        interval_minutes=_interval_minutes(env),
        alert_topic_arn=_text(env, "ALERT_TOPIC_ARN"),
        high_usage_threshold_wh=_float(env, "HIGH_USAGE_THRESHOLD_WH", 1000.0),
        interval_ttl_days=ttl_days,
        anomaly_factor=_float(env, "ANOMALY_FACTOR", 4.0),
        # Below this floor an interval never pages as an anomaly, however quiet the hours
        # before it were: 400 Wh in 15 minutes is 1.6 kW on average, more than a kettle.
        anomaly_min_wh=_float(env, "ANOMALY_MIN_WH", 400.0),
        alert_period_minutes=_int(env, "ALERT_PERIOD_MINUTES", 60, 1, 7 * 24 * 60),
        rules=rules,
    )
