"""The contract's values, pinned: changing one is a change to every part that shares it."""

from __future__ import annotations

from energy_runtime import contract


def test_archive_layout() -> None:
    assert contract.ARCHIVE_PREFIXES == (
        "raw/", "processed/", "quarantine/", "firehose-errors/", "iot-errors/"
    )  # fmt: skip
    assert contract.INTERVALS_PREFIX == "processed/intervals/"
    # Hive-style partitions of event time, UTC, zero-padded.
    assert contract.partition_path(1_795_000_000_000) == "year=2026/month=11/day=18/hour=11/"
    assert contract.partition_path(0) == "year=1970/month=01/day=01/hour=00/"
    moment = 1_795_000_000_000
    from datetime import UTC, datetime

    formatted = datetime.fromtimestamp(moment / 1000, tz=UTC).strftime(
        contract.partition_strftime()
    )
    assert formatted == contract.partition_path(moment)
    assert [name for name, _type in contract.PARTITION_KEYS] == ["year", "month", "day", "hour"]


def test_table_keys() -> None:
    assert (contract.PARTITION_KEY, contract.SORT_KEY) == ("pk", "sk")
    assert contract.TTL_ATTRIBUTE == "expires_at"
    assert contract.interval_sk(1_795_000_500_000) == "INT#2026-11-18T11:15:00Z"
    assert contract.day_sk("2026-11-18") == "LDAY#2026-11-18"
    assert contract.alert_sk("high_usage", "2026-11-18T11:00:00Z") == (
        "ALERT#high_usage#2026-11-18T11:00:00Z"
    )


def test_every_variable_is_read_by_someone_and_named_once() -> None:
    names = [variable.name for variable in contract.VARIABLES]
    assert len(names) == len(set(names))
    for variable in contract.VARIABLES:
        assert variable.functions and set(variable.functions) <= set(contract.FUNCTIONS)
        assert variable.description
        if variable.default is not None:
            assert isinstance(variable.default, variable.kind)
            if variable.minimum is not None:
                assert variable.minimum <= variable.default
            if variable.maximum is not None:
                assert variable.default <= variable.maximum
            if variable.choices is not None:
                assert variable.default in variable.choices


def test_a_default_environment_is_complete() -> None:
    for function in contract.FUNCTIONS:
        environment = contract.default_environment(function)
        resource_names = {v.name for v in contract.variables_of(function) if v.default is None}
        declared = {v.name for v in contract.variables_of(function)}
        assert set(environment) | resource_names == declared
        assert environment["POWERTOOLS_SERVICE_NAME"] == contract.SERVICES[function]


def test_values_are_written_as_a_person_would() -> None:
    assert contract.format_value(2000.0) == "2000"
    assert contract.format_value(12.5) == "12.5"
    assert contract.format_value(15) == "15"


def test_docs_list_every_variable_as_declared() -> None:
    from pathlib import Path

    from energy_monitoring.config_reference import variables_markdown

    docs = (Path(__file__).parents[2] / "docs" / "contract.md").read_text()
    assert variables_markdown() in docs, (
        "regenerate: python -m energy_monitoring.config_reference --variables"
    )
