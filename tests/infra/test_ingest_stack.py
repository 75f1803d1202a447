"""Ingest stack: the IoT policy's resources, the rule, the stream, Firehose, IoT logging."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from energy_runtime import contract

from energy_monitoring.constructs.topic_rule import rule_sql
from energy_monitoring.nag_suppressions import render
from infra.synthesis import SynthesizedApp


def flatten(value: Any) -> str:
    """A CloudFormation string with references shown as <Name> (cdk-nag's notation)."""
    return render(value)


def policy_statements(app: SynthesizedApp, environment: str) -> dict[str, Any]:
    policy = app.one(environment, "Ingest", "AWS::IoT::Policy")["Properties"]
    return {statement["Action"]: statement for statement in policy["PolicyDocument"]["Statement"]}


ARN = "arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>"


def test_device_connects_only_as_its_own_thing(synthesized: SynthesizedApp) -> None:
    connect = policy_statements(synthesized, "dev")["iot:Connect"]

    assert flatten(connect["Resource"]) == f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"
    assert connect["Condition"] == {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}


def test_device_publishes_only_to_its_own_topic(synthesized: SynthesizedApp) -> None:
    publish = policy_statements(synthesized, "dev")["iot:Publish"]

    assert [flatten(resource) for resource in publish["Resource"]] == [
        f"{ARN}:topic/energy/consumption/${{iot:Connection.Thing.ThingName}}"
    ]


def test_basic_ingest_topic_is_allowed_only_where_enabled(synthesized: SynthesizedApp) -> None:
    publish = policy_statements(synthesized, "staging")["iot:Publish"]
    resources = [flatten(resource) for resource in publish["Resource"]]

    # Staging has a concrete account and region: the ARN carries them literally.
    assert resources == [
        "arn:aws:iot:eu-central-1:111111111111:topic/energy/consumption/"
        "${iot:Connection.Thing.ThingName}",
        "arn:aws:iot:eu-central-1:111111111111:topic/$aws/rules/energy_staging_ingest/"
        "energy/consumption/${iot:Connection.Thing.ThingName}",
    ]


def test_no_policy_grants_subscribe_or_wildcards(synthesized: SynthesizedApp) -> None:
    for environment in ("dev", "staging", "prod"):
        statements = policy_statements(synthesized, environment)
        assert set(statements) == {"iot:Connect", "iot:Publish"}
        for statement in statements.values():
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                assert not flatten(resource).endswith("*")


def test_rule_follows_the_contract(synthesized: SynthesizedApp) -> None:
    rule = synthesized.one("dev", "Ingest", "AWS::IoT::TopicRule")["Properties"]
    payload = rule["TopicRulePayload"]

    assert rule["RuleName"] == "energy_dev_ingest"
    assert payload["Sql"] == rule_sql(contract.TOPIC_ROOT)
    assert payload["Sql"] == (
        "SELECT encode(*, 'base64') AS payload, topic(3) AS device_id, "
        "timestamp() AS received_at FROM 'energy/consumption/+'"
    )
    assert payload["AwsIotSqlVersion"] == "2016-03-23"
    (action,) = payload["Actions"]
    assert action["Kinesis"]["PartitionKey"] == "${topic(3)}"
    error = payload["ErrorAction"]["S3"]
    assert error["Key"].startswith("iot-errors/")
    # The archive bucket by the name the Storage stack exports.
    assert error["BucketName"] == {"Fn::ImportValue": "energy-dev-ArchiveBucketName"}


def test_rule_role_can_write_stream_and_error_prefix_only(synthesized: SynthesizedApp) -> None:
    policies = synthesized.resources("dev", "Ingest", "AWS::IAM::Policy")
    (rule_policy,) = [p for lid, p in policies.items() if lid.startswith("TopicRuleRole")]
    statements = rule_policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {action for s in statements for action in _list(s["Action"])}

    assert {"kinesis:PutRecord", "kinesis:PutRecords", "s3:PutObject"} <= actions
    assert "kms:GenerateDataKey" in actions or "kms:GenerateDataKey*" in actions
    assert not any(a.startswith(("s3:Get", "s3:Delete", "kinesis:Get")) for a in actions)
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert flatten(put["Resource"]) == (
        "arn:<AWS::Partition>:s3:::energy-dev-ArchiveBucketName/iot-errors/*"
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_stream_is_encrypted_with_the_cmk_and_sized_per_environment(
    synthesized: SynthesizedApp,
) -> None:
    dev = synthesized.one("dev", "Ingest", "AWS::Kinesis::Stream")["Properties"]
    prod = synthesized.one("prod", "Ingest", "AWS::Kinesis::Stream")["Properties"]

    for stream in (dev, prod):
        assert stream["StreamEncryption"]["EncryptionType"] == "KMS"
        assert "Fn::ImportValue" in stream["StreamEncryption"]["KeyId"]
    assert dev["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert "ShardCount" not in dev
    assert prod["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert prod["ShardCount"] == 2
    assert prod["RetentionPeriodHours"] == 168


def test_firehose_writes_parquet_partitioned_by_receive_hour(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    stream = synthesized.one("prod", "Ingest", "AWS::KinesisFirehose::DeliveryStream")
    properties = stream["Properties"]
    destination = properties["ExtendedS3DestinationConfiguration"]
    ingest = environments["prod"].ingest

    assert properties["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert destination["Prefix"] == (
        "raw/year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/"
        "day=!{partitionKeyFromQuery:day}/hour=!{partitionKeyFromQuery:hour}/"
    )
    assert destination["ErrorOutputPrefix"].startswith("firehose-errors/")
    assert destination["BufferingHints"] == {
        "IntervalInSeconds": ingest.firehose_buffer_seconds,
        "SizeInMBs": ingest.firehose_buffer_mb,
    }
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    schema = conversion["SchemaConfiguration"]
    assert "Fn::ImportValue" in str(schema["TableName"])
    assert destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"]
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "MetadataExtraction"
    assert parameters["JsonParsingEngine"] == "JQ-1.6"
    assert ".received_at / 1000" in parameters["MetadataExtractionQuery"]


def test_firehose_destination_role_writes_only_its_prefixes(synthesized: SynthesizedApp) -> None:
    policies = synthesized.resources("dev", "Ingest", "AWS::IAM::Policy")
    (policy,) = [p for lid, p in policies.items() if lid.startswith("RawArchiveDestinationRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {action for s in statements for action in _list(s["Action"])}

    assert not any("*" in action for action in actions)
    assert not any(
        a.startswith(("s3:Delete", "s3:PutObjectRetention", "kms:Encrypt")) for a in actions
    )
    (objects,) = [s for s in statements if "s3:PutObject" in _list(s["Action"])]
    assert sorted(flatten(r).rsplit("/", 2)[-2] for r in objects["Resource"]) == [
        "firehose-errors",
        "raw",
    ]
    (glue,) = [s for s in statements if "glue:GetTable" in _list(s["Action"])]
    assert "glue:GetSchemaVersion" not in actions and glue["Resource"] != "*"
    delivery = synthesized.one("dev", "Ingest", "AWS::KinesisFirehose::DeliveryStream")
    role_arn = delivery["Properties"]["ExtendedS3DestinationConfiguration"]["RoleARN"]
    assert role_arn["Fn::GetAtt"][0].startswith("RawArchiveDestinationRole")
    assert any(
        d.startswith("RawArchiveDestinationRoleDefaultPolicy") for d in delivery["DependsOn"]
    )


def test_firehose_partition_query_runs_in_jq(synthesized: SynthesizedApp) -> None:
    """The query Firehose evaluates, run on a Kinesis record the topic rule writes."""
    stream = synthesized.one("dev", "Ingest", "AWS::KinesisFirehose::DeliveryStream")
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    record = {"payload": "e30=", "device_id": "meter-1", "received_at": 1_709_251_199_999}

    result = subprocess.run(
        ["jq", "-c", parameters["MetadataExtractionQuery"]],
        input=json.dumps(record),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    # 2024-02-29T23:59:59.999Z: the hour the rule received it, zero-padded, in UTC.
    assert json.loads(result.stdout) == {"year": "2024", "month": "02", "day": "29", "hour": "23"}


def iot_log_groups(app: SynthesizedApp, environment: str) -> list[dict[str, Any]]:
    groups = app.resources(environment, "Ingest", "AWS::Logs::LogGroup")
    return [g for g in groups.values() if g["Properties"].get("LogGroupName") == "AWSIotLogsV2"]


def iot_log_widgets(app: SynthesizedApp, environment: str) -> int:
    dashboard = app.one(environment, "Observability", "AWS::CloudWatch::Dashboard")
    return json.dumps(dashboard["Properties"]["DashboardBody"]).count("AWSIotLogsV2")


@pytest.mark.parametrize("environment", ("dev", "staging", "prod"))
def test_iot_logging_is_created_only_by_the_environment_that_owns_it(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    # AWS::IoT::Logging and the AWSIotLogsV2 group are one per account and region: they
    # fail to create where the account has them already.
    owns = environments[environment].ingest.iot_logging == "create"
    assert len(synthesized.resources(environment, "Ingest", "AWS::IoT::Logging")) == int(owns)
    assert len(iot_log_groups(synthesized, environment)) == int(owns)
    assert iot_log_widgets(synthesized, environment) == int(owns)


def test_an_environment_using_existing_iot_logging_reads_it_and_creates_nothing(
    variant: SynthesizedApp,
) -> None:
    assert not variant.resources("dev", "Ingest", "AWS::IoT::Logging")
    assert iot_log_groups(variant, "dev") == []
    assert iot_log_widgets(variant, "dev") == 1


def test_outputs_name_policy_and_thing_type(synthesized: SynthesizedApp) -> None:
    outputs = synthesized.template("dev", "Ingest")["Outputs"]
    assert {"StreamName", "IotPolicyName", "ThingTypeName", "TopicRuleName"} <= set(outputs)


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_the_topic_templates_a_meter_gets_are_the_topics_its_policy_allows(
    synthesized: SynthesizedApp, environments: dict[str, Any], environment: str
) -> None:
    # `devices register` fills these templates into each meter's config.json.
    outputs = synthesized.template(environment, "Ingest")["Outputs"]
    templates = [contract.Output.METER_TOPIC_TEMPLATE]
    if environments[environment].ingest.basic_ingest:
        templates.append(contract.Output.BASIC_INGEST_TOPIC_TEMPLATE)
    else:
        assert contract.Output.BASIC_INGEST_TOPIC_TEMPLATE not in outputs
    allowed = [
        flatten(resource).split(":topic/", 1)[1]
        for resource in policy_statements(synthesized, environment)["iot:Publish"]["Resource"]
    ]
    offered = [
        outputs[name]["Value"].replace(
            contract.THING_NAME_PLACEHOLDER, "${iot:Connection.Thing.ThingName}"
        )
        for name in templates
    ]
    assert offered == allowed


def test_iot_log_group_is_encrypted_with_retention(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    groups = synthesized.resources("prod", "Ingest", "AWS::Logs::LogGroup")
    (iot_logs,) = [
        g for g in groups.values() if g["Properties"].get("LogGroupName") == "AWSIotLogsV2"
    ]
    assert "Fn::ImportValue" in str(iot_logs["Properties"]["KmsKeyId"])
    assert iot_logs["Properties"]["RetentionInDays"] == (
        environments["prod"].retention.log_retention_days
    )
    assert iot_logs["DeletionPolicy"] == "Retain"  # prod keeps its data


def test_a_prefixed_copy_reads_only_its_own_meters(variant: SynthesizedApp) -> None:
    # Topics are account-wide: a copy under its own root never ingests another's meters.
    rule = variant.one("dev", "Ingest", "AWS::IoT::TopicRule")["Properties"]["TopicRulePayload"]
    policy = variant.one("dev", "Ingest", "AWS::IoT::Policy")["Properties"]["PolicyDocument"]
    root = "alice/energy/consumption"

    assert rule["Sql"].endswith(f"FROM '{root}/+'")
    assert "topic(4) AS device_id" in rule["Sql"]  # the level after the root
    assert rule["Actions"][0]["Kinesis"]["PartitionKey"] == "${topic(4)}"
    (publish,) = [s for s in policy["Statement"] if s["Action"] == "iot:Publish"]
    assert [flatten(r).split(":topic/")[1] for r in publish["Resource"]] == [
        f"{root}/${{iot:Connection.Thing.ThingName}}"
    ]
    outputs = variant.template("dev", "Ingest")["Outputs"]
    assert outputs["MeterTopicTemplate"]["Value"] == f"{root}/<thing-name>"
