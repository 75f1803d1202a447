"""Storage stack: encryption everywhere, TLS-only buckets, lifecycle, table, catalog."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from energy_runtime.contract import INTERVAL_COLUMNS, PARTITION_KEYS, RAW_COLUMNS

from infra.synthesis import SynthesizedApp

ENVIRONMENTS = ("dev", "staging", "prod")


def buckets(app: SynthesizedApp, environment: str) -> dict[str, dict[str, Any]]:
    return app.resources(environment, "Storage", "AWS::S3::Bucket")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_key_rotates(synthesized: SynthesizedApp, environment: str) -> None:
    keys = synthesized.resources(environment, "Storage", "AWS::KMS::Key")
    (data_key,) = [key for lid, key in keys.items() if lid.startswith("DataKey")]
    assert data_key["Properties"]["EnableKeyRotation"] is True


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_table_is_per_device_encrypted_with_pitr_and_ttl(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    table = synthesized.one(environment, "Storage", "AWS::DynamoDB::Table")["Properties"]

    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    settings = environments[environment].table
    if settings.billing == "on_demand":
        assert table["BillingMode"] == "PAY_PER_REQUEST" and "ProvisionedThroughput" not in table
    else:
        assert "BillingMode" not in table  # CloudFormation's default: PROVISIONED
        assert table["ProvisionedThroughput"] == {
            "ReadCapacityUnits": settings.min_read_capacity,
            "WriteCapacityUnits": settings.min_write_capacity,
        }
    assert table["SSESpecification"]["SSEEnabled"] is True
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert "Fn::GetAtt" in table["SSESpecification"]["KMSMasterKeyId"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["DeletionProtectionEnabled"] is environments[environment].deletion_protection


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_provisioned_table_scales_both_capacities_on_utilization(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    settings = environments[environment].table
    resources = synthesized.template(environment, "Storage")["Resources"]
    targets = {r["Properties"]["ScalableDimension"]: (logical_id, r["Properties"])
               for logical_id, r in resources.items()
               if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"}  # fmt: skip
    policies = [r["Properties"] for r in resources.values()
                if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"]  # fmt: skip
    if settings.billing == "on_demand":
        assert targets == {} and policies == []
        return
    (table_id,) = [k for k, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
    for kind in ("Write", "Read"):
        logical_id, target = targets[f"dynamodb:table:{kind}CapacityUnits"]
        assert target["ServiceNamespace"] == "dynamodb"
        assert target["ResourceId"] == {"Fn::Join": ["", ["table/", {"Ref": table_id}]]}
        low = getattr(settings, f"min_{kind.lower()}_capacity")
        high = getattr(settings, f"max_{kind.lower()}_capacity")
        assert (target["MinCapacity"], target["MaxCapacity"]) == (low, high)
        # Application Auto Scaling's own service-linked role (it creates it on first use).
        assert target["RoleARN"].endswith(
            "/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"
        )
        (policy,) = [p for p in policies if p["ScalingTargetId"] == {"Ref": logical_id}]
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert tracking == {
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": f"DynamoDB{kind}CapacityUtilization"
            },
            "TargetValue": settings.target_utilization_percent,
        }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_bucket_is_private_and_encrypted(
    synthesized: SynthesizedApp, environment: str
) -> None:
    for logical_id, bucket in buckets(synthesized, environment).items():
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        if logical_id.startswith("ArchiveAccessLogs"):
            # S3 cannot deliver server access logs into an SSE-KMS bucket.
            assert algorithm == "AES256"
        else:
            assert algorithm == "aws:kms", logical_id
            assert rule["BucketKeyEnabled"] is True


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_bucket_policy_denies_plain_http(
    synthesized: SynthesizedApp, environment: str
) -> None:
    policies = synthesized.resources(environment, "Storage", "AWS::S3::BucketPolicy")
    assert len(policies) == len(buckets(synthesized, environment))
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": statements[0]["Resource"],
        } in statements


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_archive_tiers_and_expires_as_configured(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    retention = environments[environment].retention
    archive = next(
        bucket["Properties"]
        for logical_id, bucket in buckets(synthesized, environment).items()
        if logical_id.startswith("Archive") and "VersioningConfiguration" in bucket["Properties"]
    )
    rules = {rule["Id"]: rule for rule in archive["LifecycleConfiguration"]["Rules"]}
    infrequent = {
        "StorageClass": "STANDARD_IA",
        "TransitionInDays": retention.archive_ia_after_days,
    }
    glacier = {"StorageClass": "GLACIER", "TransitionInDays": retention.archive_glacier_after_days}
    cold = [infrequent, glacier]
    if environment != "dev":  # dev keeps 180 days: too short for Deep Archive's minimum
        deep = retention.archive_deep_archive_after_days
        assert deep is not None and deep >= retention.archive_glacier_after_days + 90
        cold.append({"StorageClass": "DEEP_ARCHIVE", "TransitionInDays": deep})

    assert all(rule["Status"] == "Enabled" for rule in rules.values())
    # Every prefix of the contract's layout tiers and expires.
    for prefix in ("raw/", "quarantine/", "firehose-errors/", "iot-errors/"):
        rule = rules[f"tier-{prefix.strip('/')}"]
        assert rule["Prefix"] == prefix
        assert rule["Transitions"] == cold
        assert rule["ExpirationInDays"] == retention.archive_expire_after_days
    # Athena skips Glacier Flexible Retrieval objects: aggregates stop at Standard-IA.
    processed = rules["tier-processed"]
    assert processed["Prefix"] == "processed/"
    assert processed["Transitions"] == [infrequent]
    assert processed["ExpirationInDays"] == retention.archive_expire_after_days
    versions = rules["versions-and-uploads"]
    assert "Prefix" not in versions
    assert versions["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": retention.noncurrent_expire_days
    }
    assert versions["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert archive["VersioningConfiguration"] == {"Status": "Enabled"}
    assert archive["LoggingConfiguration"]["LogFilePrefix"] == "archive/"


STATEFUL = (
    ("Storage", "AWS::DynamoDB::Table"),
    ("Storage", "AWS::KMS::Key"),
    ("Storage", "AWS::S3::Bucket"),
    ("Ingest", "AWS::Kinesis::Stream"),
)


@pytest.mark.parametrize(("environment", "expected"), [("dev", "Delete"), ("prod", "Retain")])
def test_removal_policy_follows_the_environment(
    synthesized: SynthesizedApp, environment: str, expected: str
) -> None:
    for stack, type_ in STATEFUL:
        for logical_id, resource in synthesized.resources(environment, stack, type_).items():
            assert resource["DeletionPolicy"] == expected, f"{environment}/{logical_id}"


def columns(table: dict[str, Any]) -> list[tuple[str, str]]:
    descriptor = table["Properties"]["TableInput"]["StorageDescriptor"]
    return [(column["Name"], column["Type"]) for column in descriptor["Columns"]]


def test_glue_tables_use_the_shared_schema_and_projection(synthesized: SynthesizedApp) -> None:
    tables = {
        table["Properties"]["TableInput"]["Name"]: table
        for table in synthesized.resources("dev", "Storage", "AWS::Glue::Table").values()
    }

    assert columns(tables["raw_readings"]) == list(RAW_COLUMNS)
    assert columns(tables["interval_aggregates"]) == list(INTERVAL_COLUMNS)
    for table in tables.values():
        table_input = table["Properties"]["TableInput"]
        assert [(key["Name"], key["Type"]) for key in table_input["PartitionKeys"]] == list(
            PARTITION_KEYS
        )
        parameters = table_input["Parameters"]
        assert parameters["projection.enabled"] == "true"
        assert parameters["projection.month.digits"] == "2"
        assert parameters["projection.hour.range"] == "0,23"
        template = parameters["storage.location.template"]
        assert "year=${year}/month=${month}/day=${day}/hour=${hour}/" in str(template)
        assert table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith(
            "ParquetHiveSerDe"
        )


def test_athena_results_are_encrypted_with_the_key(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("prod", "Storage"))
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "energy-prod",
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "ResultConfiguration": {
                    "EncryptionConfiguration": {
                        "EncryptionOption": "SSE_KMS",
                        "KmsKey": Match.any_value(),
                    }
                },
            },
        },
    )


def test_outputs_for_quicksight(synthesized: SynthesizedApp) -> None:
    outputs = synthesized.template("dev", "Storage")["Outputs"]
    for name in (
        "TableName",
        "ArchiveBucketName",
        "GlueDatabaseName",
        "RawTableName",
        "IntervalTableName",
        "AthenaWorkgroupName",
    ):
        assert name in outputs
    assert outputs["GlueDatabaseName"]["Value"] == "energy_dev"
