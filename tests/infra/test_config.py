"""Settings validation: a wrong or missing setting names itself and its environment."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from energy_runtime import contract
from energy_runtime.settings import SettingsError, load_processor_settings

from energy_monitoring.application_paths import CDK_JSON
from energy_monitoring.config import (
    CONTEXT_KEY,
    ConfigError,
    StreamTriggerSettings,
    load_environments,
    parse_environment,
)


def project_settings() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"][CONTEXT_KEY]
    return settings


def dev_with(**overrides: Any) -> dict[str, Any]:
    raw = copy.deepcopy(project_settings()["environments"]["dev"])
    for dotted, value in overrides.items():
        target = raw
        *parents, leaf = dotted.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return raw


def test_project_environments_parse_with_their_own_settings() -> None:
    environments = {env.name: env for env in load_environments(project_settings())}

    assert set(environments) == {"dev", "staging", "prod"}
    assert environments["dev"].account is None  # dev may be env-agnostic
    assert environments["prod"].removal_policy == "retain"
    assert environments["prod"].deletion_protection is True
    assert environments["prod"].stream.capacity_mode == "provisioned"
    assert environments["dev"].retention.log_retention_days == 14
    # Settings not overridden keep the single default.
    default = StreamTriggerSettings.model_fields["batch_size"].default
    assert environments["staging"].batching.batch_size == default


def test_contract_batching_defaults() -> None:
    batching = parse_environment("dev", dev_with()).batching

    assert (batching.batch_size, batching.window_seconds) == (10000, 300)
    assert (batching.handoff_batch_size, batching.handoff_window_seconds) == (100, 5)


def test_arm64_is_the_default_architecture() -> None:
    assert parse_environment("dev", dev_with()).functions.architecture == "arm64"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"batching__batch_size": 20000},
            "energy-monitoring.environments.dev.batching.batch_size: 20000 is above the maximum",
        ),
        (
            {"batching__window_seconds": "300"},
            "energy-monitoring.environments.dev.batching.window_seconds: expected int, got '300'",
        ),
        (
            {"functions__architecture": "sparc"},
            "energy-monitoring.environments.dev.functions.architecture: 'sparc' is not one of",
        ),
        (
            {"retention__log_retention_days": 10},
            "energy-monitoring.environments.dev.retention.log_retention_days: 10 is not one of",
        ),
        (
            {"alarms__ops_email": "not-an-address"},
            "energy-monitoring.environments.dev.alarms.ops_email: 'not-an-address' does not match",
        ),
        (
            {"ingest__firehose_buffer_mb": 32},
            "energy-monitoring.environments.dev.ingest.firehose_buffer_mb: 32 is below the minimum",
        ),
        (
            {"deletion_protection": "yes"},
            "energy-monitoring.environments.dev.deletion_protection: expected bool, got 'yes'",
        ),
        (
            {"stream__shard_cout": 2},
            "energy-monitoring.environments.dev.stream: unknown setting(s) ['shard_cout']",
        ),
        (
            {"data__interval_minutes": 7},
            "energy-monitoring.environments.dev.data.interval_minutes: 7 is not one of",
        ),
        (
            {"batching__retry_attempts": True},
            "energy-monitoring.environments.dev.batching.retry_attempts: expected int, got True",
        ),
        (
            # The former on/off switch: an account singleton needs create or existing.
            {"ingest__iot_logging": True},
            "energy-monitoring.environments.dev.ingest.iot_logging: True is not one of "
            "['off', 'create', 'existing']",
        ),
        (
            {"security__audit": "yes"},
            "energy-monitoring.environments.dev.security.audit: 'yes' is not one of",
        ),
        (
            {"batching__handoff_max_concurrency": 1},
            "energy-monitoring.environments.dev.batching.handoff_max_concurrency: 1 is below the "
            "minimum 2",
        ),
        (
            {"functions__sdk_pandas_layer_version": 26},
            "energy-monitoring.environments.dev.functions: unknown setting(s) "
            "['sdk_pandas_layer_version']",
        ),
    ],
)
def test_wrong_setting_is_named_with_its_environment(
    overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_environment("dev", dev_with(**overrides))
    assert expected in str(error.value)


def test_missing_ops_email_is_named() -> None:
    raw = dev_with()
    del raw["alarms"]["ops_email"]

    with pytest.raises(ConfigError, match=r"environments\.dev\.alarms\.ops_email: missing"):
        parse_environment("dev", raw)


def test_only_dev_may_be_env_agnostic() -> None:
    raw = copy.deepcopy(project_settings()["environments"]["prod"])
    raw["account"] = None
    raw["region"] = None

    with pytest.raises(ConfigError, match=r"environments\.prod\.account: only dev"):
        parse_environment("prod", raw)


def test_account_without_region_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"environments\.dev\.account/region: set both"):
        parse_environment("dev", dev_with(account="123456789012"))


def test_bad_account_format_is_named() -> None:
    with pytest.raises(ConfigError, match=r"environments\.dev\.account: '1234' does not match"):
        parse_environment("dev", dev_with(account="1234", region="eu-west-1"))


def test_lifecycle_must_tier_before_it_expires() -> None:
    raw = dev_with(
        retention__archive_glacier_after_days=400, retention__archive_expire_after_days=200
    )

    with pytest.raises(ConfigError, match=r"environments\.dev\.retention: archive_ia_after_days <"):
        parse_environment("dev", raw)


def test_large_handoff_batches_need_a_window() -> None:
    raw = dev_with(batching__handoff_batch_size=500, batching__handoff_window_seconds=0)

    with pytest.raises(ConfigError, match=r"dev\.batching\.handoff_window_seconds: must be at"):
        parse_environment("dev", raw)


def test_environment_name_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"environments\.Prod_1: environment name must match"):
        parse_environment("Prod_1", {})


def test_missing_context_stops_with_a_message() -> None:
    with pytest.raises(ConfigError, match="context 'energy-monitoring' is missing"):
        load_environments(None)
    with pytest.raises(ConfigError, match=r"energy-monitoring\.environments: missing or empty"):
        load_environments({"environments": {}})


def test_bad_setting_stops_synthesis_of_the_app() -> None:
    from energy_monitoring.application import build_app

    context = json.loads(CDK_JSON.read_text())["context"]
    context[CONTEXT_KEY]["environments"]["staging"]["batching"] = {"window_seconds": 900}

    with pytest.raises(ConfigError, match=r"environments\.staging\.batching\.window_seconds"):
        build_app(context=context)


def test_interval_ttl_must_outlive_the_oldest_interval_the_processor_reads() -> None:
    with pytest.raises(ConfigError, match=r"dev\.data\.interval_ttl_days: 1 is below the minimum"):
        parse_environment("dev", dev_with(data__interval_ttl_days=1))
    # A reading 7 days late lands in its interval, judged against the 14 days before it;
    # a night's base load against 2 nights and the 14 before those: 7 + 14 + 2 + 1 = 24.
    # The processor refuses to start below that (the same rule): synthesis stops first.
    with pytest.raises(ConfigError, match=r"dev\.data\.interval_ttl_days: must exceed .*\(24\)"):
        parse_environment("dev", dev_with(data__interval_ttl_days=24))
    parse_environment("dev", dev_with(data__interval_ttl_days=25))
    with pytest.raises(ConfigError, match=r"\(47\): a late reading"):
        parse_environment(
            "dev", dev_with(data__interval_ttl_days=31, data__max_reading_age_days=30)
        )
    names = {v.name: "x" for v in contract.variables_of(contract.PROCESSOR) if v.default is None}
    for ttl, fits in ((24, False), (25, True)):
        environment = contract.default_environment(
            contract.PROCESSOR, **names, INTERVAL_TTL_DAYS=str(ttl)
        )
        if fits:
            load_processor_settings(environment)
        else:
            with pytest.raises(SettingsError, match="INTERVAL_TTL_DAYS=24 must exceed 24"):
                load_processor_settings(environment)


@pytest.mark.parametrize(
    ("deep", "expire", "fits"),
    [(180, 365, True), (179, 1825, False), (186, 365, False), (None, 180, True)],
)
def test_deep_archive_leaves_each_class_after_its_minimum_storage_duration(
    deep: int | None, expire: int, fits: bool
) -> None:
    # Glacier after 90 days: its 90-day minimum, then Deep Archive's 180 before expiry.
    raw = dev_with(
        retention__archive_deep_archive_after_days=deep,
        retention__archive_expire_after_days=expire,
        data__interval_ttl_days=35,
    )
    if fits:
        parsed = parse_environment("dev", raw)
        assert parsed.retention.archive_deep_archive_after_days == deep
    else:
        with pytest.raises(ConfigError, match=rf"archive_deep_archive_after_days: {deep} must"):
            parse_environment("dev", raw)


def test_a_provisioned_tables_minimum_is_not_above_its_maximum() -> None:
    with pytest.raises(ConfigError, match=r"dev\.table\.min_read_capacity: 50 is above"):
        parse_environment("dev", dev_with(table__min_read_capacity=50, table__max_read_capacity=40))
    with pytest.raises(ConfigError, match=r"dev\.table\.billing: .*'reserved'"):
        parse_environment("dev", dev_with(table__billing="reserved"))
    parse_environment("dev", dev_with(table__billing="provisioned", table__min_write_capacity=40,
                                      table__max_write_capacity=40))  # fmt: skip


def test_the_warm_up_must_fit_the_weekend_days_of_the_baseline() -> None:
    # 14 days hold 4 weekend days: a warm-up of 5 would never let a weekend be judged.
    with pytest.raises(ConfigError, match=r"dev\.data\.warmup_days: must be at most the 4"):
        parse_environment("dev", dev_with(data__warmup_days=5, data__baseline_days=14))
    parse_environment(
        "dev",
        dev_with(data__warmup_days=5, data__baseline_days=21, data__interval_ttl_days=35),
    )


def test_a_meter_is_not_silent_before_it_could_have_published_twice() -> None:
    # 30 readings of 10 s: a message every 5 minutes; a sweep every 5 minutes.
    with pytest.raises(ConfigError, match=r"dev\.data\.silent_after_minutes: 14 is too short"):
        parse_environment("dev", dev_with(data__silent_after_minutes=14))
    parse_environment("dev", dev_with(data__silent_after_minutes=15))
    with pytest.raises(ConfigError, match=r"dev\.data\.silent_after_minutes: 15 is too short"):
        parse_environment(
            "dev", dev_with(data__silent_after_minutes=15, schedules__silence_sweep_minutes=6)
        )


def test_the_functions_settings_take_the_contracts_defaults_and_limits() -> None:
    data = parse_environment("dev", {"alarms": {"ops_email": "a@b.co"}}).data
    for name in type(data).model_fields:
        variable = next(v for v in contract.VARIABLES if v.name == name.upper())
        assert getattr(data, name) == variable.default, name
        if variable.maximum is not None:
            with pytest.raises(ConfigError, match=rf"data\.{name}: .* is above the maximum"):
                parse_environment(
                    "dev",
                    {"alarms": {"ops_email": "a@b.co"},
                     "data": {name: variable.kind(variable.maximum) + 1}},
                )  # fmt: skip
