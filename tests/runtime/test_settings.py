"""Settings: defaults from the contract, and errors that name the variable."""

from __future__ import annotations

import pytest
from energy_runtime.settings import SettingsError, load_batching_settings, load_processor_settings

BATCHING = {"HANDOFF_QUEUE_URL": "https://sqs.example/q", "ARCHIVE_BUCKET": "archive"}
PROCESSOR = {
    "TABLE_NAME": "energy",
    "ARCHIVE_BUCKET": "archive",
    "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:alerts",
    "HIGH_USAGE_THRESHOLD_WH": "1500",
}


def test_contract_defaults() -> None:
    batching = load_batching_settings(BATCHING)
    assert batching.quarantine_prefix == "quarantine/"
    assert batching.interval_minutes == 15
    assert batching.max_payload_bytes == 131_072
    processor = load_processor_settings(PROCESSOR)
    assert processor.processed_prefix == "processed/"
    assert processor.high_usage_threshold_wh == 1500.0
    assert processor.interval_ttl_days == 35


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"HANDOFF_QUEUE_URL": ""}, "HANDOFF_QUEUE_URL"),
        ({"INTERVAL_MINUTES": "7"}, "INTERVAL_MINUTES"),
        ({"INTERVAL_MINUTES": "fifteen"}, "INTERVAL_MINUTES"),
        ({"MAX_PAYLOAD_BYTES": "0"}, "MAX_PAYLOAD_BYTES"),
        ({"QUARANTINE_PREFIX": "/quarantine"}, "QUARANTINE_PREFIX"),
    ],
)
def test_bad_batching_values_are_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_batching_settings({**BATCHING, **change})


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TABLE_NAME": " "}, "TABLE_NAME"),
        ({"HIGH_USAGE_THRESHOLD_WH": "-3"}, "HIGH_USAGE_THRESHOLD_WH"),
        ({"HIGH_USAGE_THRESHOLD_WH": "nan"}, "HIGH_USAGE_THRESHOLD_WH"),
        ({"ANOMALY_MIN_WH": "-1"}, "ANOMALY_MIN_WH"),
        ({"ANOMALY_FACTOR": "lots"}, "ANOMALY_FACTOR"),
        ({"INTERVAL_TTL_DAYS": "3"}, "INTERVAL_TTL_DAYS"),
        ({"PROCESSED_PREFIX": "processed"}, "PROCESSED_PREFIX"),
    ],
)
def test_bad_processor_values_are_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_processor_settings({**PROCESSOR, **change})


def test_a_missing_variable_is_named() -> None:
    with pytest.raises(SettingsError, match="ALERT_TOPIC_ARN"):
        load_processor_settings({k: v for k, v in PROCESSOR.items() if k != "ALERT_TOPIC_ARN"})
