"""Settings: every variable the contract declares is required, and errors name it."""

from __future__ import annotations

import pytest
from energy_runtime import contract
from energy_runtime.settings import SettingsError, load_batching_settings, load_processor_settings

BATCHING = contract.default_environment(
    contract.BATCHING, HANDOFF_QUEUE_URL="https://sqs.example/q", ARCHIVE_BUCKET="archive"
)
PROCESSOR = contract.default_environment(
    contract.PROCESSOR,
    TABLE_NAME="energy",
    ARCHIVE_BUCKET="archive",
    ALERT_TOPIC_ARN="arn:aws:sns:eu-west-1:123456789012:alerts",
    METER_GROUP_NAME="energy-dev-meters",
    HIGH_USAGE_THRESHOLD_WH="1500",
)
LOADERS = {contract.BATCHING: (load_batching_settings, BATCHING),
           contract.PROCESSOR: (load_processor_settings, PROCESSOR)}  # fmt: skip


def test_the_values_given_are_the_values_used() -> None:
    batching = load_batching_settings(BATCHING)
    assert batching.quarantine_prefix == contract.QUARANTINE_PREFIX
    assert batching.interval_minutes == 15
    assert batching.max_payload_bytes == 131_072
    processor = load_processor_settings(PROCESSOR)
    assert processor.processed_prefix == contract.PROCESSED_PREFIX
    assert processor.high_usage_threshold_wh == 1500.0
    assert processor.interval_ttl_days == 35
    assert processor.rules.max_age_s == 7 * 86_400


@pytest.mark.parametrize(
    ("function", "variable"),
    [
        (function, variable)
        for function in contract.FUNCTIONS
        for variable in contract.variables_of(function)
        if variable not in contract.POWERTOOLS_VARIABLES
    ],
    ids=lambda value: getattr(value, "name", value),
)
def test_every_declared_variable_is_required(function: str, variable: contract.Variable) -> None:
    # A function deployed without one refuses to start; it never uses a default of its
    # own that could differ from the configured rule.
    load, environment = LOADERS[function]
    missing = {k: v for k, v in environment.items() if k != variable.name}
    with pytest.raises(SettingsError, match=f"environment variable {variable.name} is required"):
        load(missing)


def test_the_runtime_reads_nothing_the_contract_does_not_declare() -> None:
    for function, (load, environment) in LOADERS.items():
        declared = {v.name for v in contract.variables_of(function)}
        assert set(environment) == declared
        load(environment)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"HANDOFF_QUEUE_URL": ""}, "HANDOFF_QUEUE_URL"),
        ({"INTERVAL_MINUTES": "7"}, "INTERVAL_MINUTES"),
        ({"INTERVAL_MINUTES": "fifteen"}, "INTERVAL_MINUTES"),
        ({"MAX_PAYLOAD_BYTES": "0"}, "MAX_PAYLOAD_BYTES"),
        ({"MAX_PAYLOAD_BYTES": "1048576"}, "MAX_PAYLOAD_BYTES"),  # the CDK's limit too
        ({"QUARANTINE_PREFIX": "/quarantine"}, "QUARANTINE_PREFIX"),
        ({"MAX_POWER_W": "0"}, "MAX_POWER_W"),
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
        ({"HIGH_USAGE_THRESHOLD_WH": "inf"}, "HIGH_USAGE_THRESHOLD_WH"),
        ({"UNUSUAL_MIN_EXCESS_WH": "-1"}, "UNUSUAL_MIN_EXCESS_WH"),
        ({"UNUSUAL_MIN_Z": "lots"}, "UNUSUAL_MIN_Z"),
        ({"BASELINE_DAYS": "3"}, "BASELINE_DAYS"),
        ({"WARMUP_DAYS": "5"}, "WARMUP_DAYS"),  # 14 days hold 4 weekend days
        ({"INTERVAL_TTL_DAYS": "7"}, "INTERVAL_TTL_DAYS"),  # not beyond the reading age
        ({"INTERVAL_TTL_DAYS": "24"}, "INTERVAL_TTL_DAYS"),  # nor the baseline's nights
        ({"PROCESSED_PREFIX": "processed"}, "PROCESSED_PREFIX"),
        ({"ALERT_PERIOD_MINUTES": "0"}, "ALERT_PERIOD_MINUTES"),
        ({"TIME_ZONE": "Mars/Olympus_Mons"}, "TIME_ZONE"),
        ({"TIME_ZONE": "/etc/localtime"}, "TIME_ZONE"),
    ],
)
def test_bad_processor_values_are_named(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_processor_settings({**PROCESSOR, **change})
