"""Observability stack: alarms (units and thresholds), ops topic, dashboard, Device Defender."""

from __future__ import annotations

import json
from typing import Any

from energy_runtime import contract

from infra.synthesis import SynthesizedApp

RUNTIME_METRICS = (
    *dict.fromkeys(metric for metric, _function in contract.EMITTED_METRICS),
    contract.QUARANTINED_BY_REASON,
)


def alarms(app: SynthesizedApp, environment: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in app.resources(
            environment, "Observability", "AWS::CloudWatch::Alarm"
        ).items()
    }


def alarm(app: SynthesizedApp, environment: str, prefix: str) -> dict[str, Any]:
    (found,) = [p for lid, p in alarms(app, environment).items() if lid.startswith(prefix)]
    return found


def test_iterator_age_alarms_are_in_milliseconds(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    expected_ms = environments["prod"].alarms.iterator_age_minutes * 60 * 1000
    stream = alarm(synthesized, "prod", "StreamIteratorAge")
    function = alarm(synthesized, "prod", "BatchingIteratorAge")

    assert stream["MetricName"] == "GetRecords.IteratorAgeMilliseconds"
    assert stream["Namespace"] == "AWS/Kinesis"
    assert function["MetricName"] == "IteratorAge"  # Lambda reports it in milliseconds
    assert function["Namespace"] == "AWS/Lambda"
    for age in (stream, function):
        assert age["Threshold"] == expected_ms == 900_000
        assert age["Statistic"] == "Maximum"
        assert age["ComparisonOperator"] == "GreaterThanThreshold"


def test_duration_alarm_threshold_is_milliseconds_below_the_timeout(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    duration = alarm(synthesized, "dev", "ProcessorDuration")
    timeout_ms = environments["dev"].functions.processor_timeout_seconds * 1000

    assert duration["MetricName"] == "Duration"
    assert duration["ExtendedStatistic"] == "p99"
    assert duration["Threshold"] == timeout_ms * 0.8


def test_firehose_freshness_alarm_is_in_seconds(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    freshness = alarm(synthesized, "dev", "RawArchiveFreshness")
    assert freshness["MetricName"] == "DeliveryToS3.DataFreshness"
    assert freshness["Threshold"] == environments["dev"].ingest.firehose_buffer_seconds + 900


def test_every_alarm_notifies_the_ops_topic(synthesized: SynthesizedApp) -> None:
    found = alarms(synthesized, "dev")
    assert len(found) >= 16
    for logical_id, properties in found.items():
        (action,) = properties["AlarmActions"]
        assert action["Ref"].startswith("OpsTopic"), logical_id
        assert properties["OKActions"] == [action]


def test_alarms_cover_each_dashboard_signal(synthesized: SynthesizedApp) -> None:
    names = {lid.rstrip("0123456789ABCDEF") for lid in alarms(synthesized, "dev")}
    for expected in (
        "TopicRuleFailures",
        "TopicRuleErrorActionFailures",
        "StreamIteratorAge",
        "BatchingErrors",
        "BatchingThrottles",
        "ProcessorErrors",
        "ProcessorThrottles",
        "HandoffDeadLetters",
        "StreamFailures",
        "TableThrottles",
        "RawArchiveFreshness",
        "QuarantineRate",
        "NoReadingsAccepted",
        "NoAggregatesWritten",
    ):
        assert any(name.startswith(expected) for name in names), expected


def test_rule_failure_alarm_has_the_dimensions_iot_publishes(synthesized: SynthesizedApp) -> None:
    failures = alarm(synthesized, "dev", "TopicRuleFailures")

    assert (failures["Namespace"], failures["MetricName"]) == ("AWS/IoT", "Failure")
    # IoT publishes rule action metrics per (RuleName, ActionType) only.
    assert sorted(failures["Dimensions"], key=lambda d: d["Name"]) == [
        {"Name": "ActionType", "Value": "Kinesis"},
        {"Name": "RuleName", "Value": "energy_dev_ingest"},
    ]


def test_error_action_alarm_pages_on_the_first_lost_message(synthesized: SynthesizedApp) -> None:
    lost = alarm(synthesized, "dev", "TopicRuleErrorActionFailures")

    assert (lost["Namespace"], lost["MetricName"]) == ("AWS/IoT", "ErrorActionFailure")
    assert sorted(lost["Dimensions"], key=lambda d: d["Name"]) == [
        {"Name": "ActionType", "Value": "S3"},
        {"Name": "RuleName", "Value": "energy_dev_ingest"},
    ]
    assert (lost["Statistic"], lost["Threshold"]) == ("Sum", 1)
    assert lost["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_silence_alarm_treats_missing_data_as_breaching(synthesized: SynthesizedApp) -> None:
    silent = alarm(synthesized, "dev", "NoReadingsAccepted")
    assert silent["TreatMissingData"] == "breaching"
    assert silent["Namespace"] == "EnergyMonitoring"
    assert silent["Dimensions"] == [{"Name": "service", "Value": "energy-batching"}]


def test_ops_topic_is_encrypted_and_mails_the_configured_address(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    topic = synthesized.one("prod", "Observability", "AWS::SNS::Topic")
    subscription = synthesized.one("prod", "Observability", "AWS::SNS::Subscription")
    key = synthesized.one("prod", "Observability", "AWS::KMS::Key")

    assert topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("OpsKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == environments["prod"].alarms.ops_email
    principals = [
        statement.get("Principal", {}).get("Service")
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
    ]
    assert "cloudwatch.amazonaws.com" in principals


def test_dashboard_shows_the_runtime_metrics(synthesized: SynthesizedApp) -> None:
    dashboard = synthesized.one("dev", "Observability", "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in RUNTIME_METRICS:
        assert metric in body
    assert "GetRecords.IteratorAgeMilliseconds" in body
    assert "EnergyMonitoring" in body


def dashboard_metrics(app: SynthesizedApp, environment: str) -> list[list[Any]]:
    """Every metric array of the dashboard, tokens shown as <token>."""
    body = app.one(environment, "Observability", "AWS::CloudWatch::Dashboard")["Properties"][
        "DashboardBody"
    ]
    if isinstance(body, dict):
        separator, parts = body["Fn::Join"]
        body = separator.join(part if isinstance(part, str) else "<token>" for part in parts)
    return [
        metric
        for widget in json.loads(body)["widgets"]
        for metric in widget.get("properties", {}).get("metrics", [])
    ]


# What runtime/energy_runtime emits: (metric, service dimension), as the contract names them.
EMITTED = {(metric, contract.SERVICES[function]) for metric, function in contract.EMITTED_METRICS}


def test_dashboard_graphs_runtime_metrics_with_their_service_dimension(
    synthesized: SynthesizedApp,
) -> None:
    shown = {
        (metric[1], metric[3])
        for metric in dashboard_metrics(synthesized, "dev")
        if metric[0] == "EnergyMonitoring" and metric[2:3] == ["service"]
    }
    assert shown >= EMITTED
    # Each runtime metric has exactly the `service` dimension the handlers set (and
    # QuarantinedByReason its `reason` too).
    for metric in dashboard_metrics(synthesized, "dev"):
        if metric[0] == contract.METRICS_NAMESPACE:
            dimensions = [part for part in metric[2:] if not isinstance(part, dict)]
            names = set(dimensions[::2])
            if metric[1] == contract.QUARANTINED_BY_REASON:
                assert names == {contract.SERVICE_DIMENSION, contract.REASON_DIMENSION}, metric
                assert dimensions[dimensions.index(contract.REASON_DIMENSION) + 1] in (
                    contract.QUARANTINE_REASONS
                )
            else:
                assert names == {contract.SERVICE_DIMENSION}, metric


def test_dashboard_searches_quarantine_reasons_by_their_dimensions(
    synthesized: SynthesizedApp,
) -> None:
    expressions = [
        part["expression"]
        for metric in dashboard_metrics(synthesized, "dev")
        for part in metric
        if isinstance(part, dict) and "expression" in part
    ]
    assert any(
        "{EnergyMonitoring,service,reason}" in e and 'MetricName="QuarantinedByReason"' in e
        for e in expressions
    )
