"""Disaster recovery of the archive (dr.replica_region): a replica stack in the second
region, replication rules that re-encrypt with its key, a role that may do only that, and
alarms on failures and latency. Checked on the synthesized templates, as AWS reads them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from energy_runtime import contract

from infra.iam_evaluation import Deployment, Request, evaluate
from infra.synthesis import ARCHIVE_BUCKET, REPLICA, SynthesizedApp

REPLICA_REGION = "eu-west-1"  # prod's, in cdk.json


def archive(app: SynthesizedApp, environment: str) -> dict[str, Any]:
    buckets = app.resources(environment, "Storage", "AWS::S3::Bucket")
    (found,) = [b for lid, b in buckets.items() if lid.startswith("Archive") and lid[7:8].isdigit()]
    return found["Properties"]


def replica_bucket(app: SynthesizedApp) -> tuple[str, dict[str, Any]]:
    buckets = app.resources("prod", REPLICA, "AWS::S3::Bucket")
    (found,) = [(lid, b) for lid, b in buckets.items() if lid.startswith("ReplicaBucket")]
    return found


def stack_region(app: SynthesizedApp, environment: str, stack: str) -> str:
    """The region the cloud assembly deploys the stack to (`aws://account/region`)."""
    stage = f"energy-{environment}"
    manifest = json.loads((app.outdir / f"assembly-{stage}" / "manifest.json").read_text())
    (artifact,) = [a for a in manifest["artifacts"].values()
                   if a.get("displayName") == f"{stage}/{stack}"]  # fmt: skip
    return str(artifact["environment"]).rsplit("/", 1)[-1]


def test_only_environments_with_a_replica_region_have_a_replica_stack(
    synthesized: SynthesizedApp, variant: SynthesizedApp
) -> None:
    assert REPLICA in synthesized.stacks("prod")
    assert REPLICA not in synthesized.stacks("dev") + synthesized.stacks("staging")
    assert REPLICA not in variant.stacks("dev")
    assert stack_region(synthesized, "prod", REPLICA) == REPLICA_REGION
    assert stack_region(synthesized, "prod", "Storage") == "eu-central-1"
    for environment in ("dev", "staging"):
        assert "ReplicationConfiguration" not in archive(synthesized, environment)


def test_the_replica_keeps_the_archives_lifecycle_and_protection(
    synthesized: SynthesizedApp,
) -> None:
    _, bucket = replica_bucket(synthesized)
    properties = bucket["Properties"]
    source = archive(synthesized, "prod")
    assert properties["LifecycleConfiguration"] == source["LifecycleConfiguration"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == source["PublicAccessBlockConfiguration"]
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key_ref = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert key_ref.startswith("ReplicaKey")
    assert rule["BucketKeyEnabled"] is True
    assert properties["LoggingConfiguration"]["DestinationBucketName"]["Ref"].startswith(
        "ReplicaAccessLogs"
    )
    assert bucket["DeletionPolicy"] == "Retain"  # prod keeps its data
    aliases = synthesized.resources("prod", REPLICA, "AWS::KMS::Alias")
    assert [a["Properties"]["AliasName"] for a in aliases.values()] == ["alias/energy-prod-replica"]


def test_raw_and_processed_replicate_re_encrypted_with_the_replica_key(
    synthesized: SynthesizedApp,
) -> None:
    _, bucket = replica_bucket(synthesized)
    name = bucket["Properties"]["BucketName"]
    configuration = archive(synthesized, "prod")["ReplicationConfiguration"]
    rules = {rule["Filter"]["Prefix"]: rule for rule in configuration["Rules"]}
    assert set(rules) == {contract.RAW_PREFIX, contract.PROCESSED_PREFIX}
    assert len({rule["Priority"] for rule in rules.values()}) == len(rules)
    for rule in rules.values():
        assert rule["Status"] == "Enabled"
        assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
        assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
        destination = rule["Destination"]
        assert destination["Bucket"] == f"arn:aws:s3:::{name}"
        assert destination["EncryptionConfiguration"]["ReplicaKmsKeyID"] == (
            f"arn:aws:kms:{REPLICA_REGION}:222222222222:alias/energy-prod-replica"
        )
        assert destination["Metrics"] == {"Status": "Enabled"}
    outputs = synthesized.template("prod", "Storage")["Outputs"]
    assert outputs["ReplicaBucketName"]["Value"] == name


def _role(deployment: Deployment) -> str:
    (role,) = [
        r for r in deployment.resources("AWS::IAM::Role")
        if r.logical_id.startswith("ArchiveReplicationRole")
    ]  # fmt: skip
    statement = role.properties["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole" and "Condition" not in statement
    return deployment._attribute(role, "Arn")


def _allowed(deployment: Deployment, role: str, action: str, resource: str,
             context: dict[str, Any] | None = None) -> bool:  # fmt: skip
    request = Request(role, action, resource, context or {})
    identity = deployment.identity_policies(role)
    key_policies = [deployment.key_policy(resource)] if action.startswith("kms:") else []
    return evaluate(
        request, account=deployment.account, resource_policies=key_policies,
        identity_policy=identity, key_policy=bool(key_policies),
    ).allowed  # fmt: skip


def test_the_replication_role_may_copy_the_two_prefixes_and_nothing_else(
    synthesized: SynthesizedApp,
) -> None:
    deployment = synthesized.deployment("prod")
    role = _role(deployment)

    def arn(type_: str, logical_id: re.Pattern[str]) -> str:
        (resource,) = [r for r in deployment.resources(type_) if logical_id.fullmatch(r.logical_id)]
        return deployment._attribute(resource, "Arn")

    data_key = arn("AWS::KMS::Key", re.compile(r"DataKey[0-9A-F]{8}"))
    replica_key = arn("AWS::KMS::Key", re.compile(r"ReplicaKey[0-9A-F]{8}"))
    assert f":kms:{REPLICA_REGION}:" in replica_key
    source = arn("AWS::S3::Bucket", ARCHIVE_BUCKET)
    copy = f"arn:aws:s3:::{replica_bucket(synthesized)[1]['Properties']['BucketName']}"
    read_source = {"kms:ViaService": "s3.eu-central-1.amazonaws.com",
                   "kms:EncryptionContext:aws:s3:arn": source}  # fmt: skip
    write_copy = {
        "kms:ViaService": f"s3.{REPLICA_REGION}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": copy,
        "kms:ResourceAliases": ("alias/energy-prod-replica",),
    }
    allowed = [
        ("s3:GetReplicationConfiguration", source, None),
        ("s3:GetObjectVersionForReplication", f"{source}/raw/year=2026/x.parquet", None),
        ("s3:GetObjectVersionForReplication", f"{source}/processed/intervals/x.parquet", None),
        ("s3:ReplicateObject", f"{copy}/raw/year=2026/x.parquet", None),
        ("kms:Decrypt", data_key, read_source),
        ("kms:Encrypt", replica_key, write_copy),
        ("kms:GenerateDataKey", replica_key, write_copy),
        ("kms:Decrypt", replica_key, write_copy),  # S3 checks the replica's bucket key
    ]
    refused = [
        ("s3:GetObjectVersionForReplication", f"{source}/quarantine/x.jsonl", None),
        ("s3:GetObject", f"{source}/raw/year=2026/x.parquet", None),
        ("s3:ReplicateObject", f"{copy}/quarantine/x.jsonl", None),
        ("s3:ReplicateDelete", f"{copy}/raw/year=2026/x.parquet", None),  # no delete markers
        (
            "kms:Decrypt",
            data_key,
            {**read_source, "kms:ViaService": "sqs.eu-central-1.amazonaws.com"},
        ),
        (
            "kms:Decrypt",
            replica_key,
            {**write_copy, "kms:ViaService": "sqs.eu-west-1.amazonaws.com"},
        ),
        ("kms:Encrypt", replica_key, {**write_copy, "kms:ResourceAliases": ("alias/other",)}),
        ("kms:Encrypt", replica_key, {**write_copy, "kms:EncryptionContext:aws:s3:arn": source}),
        ("kms:Encrypt", data_key, write_copy),
    ]
    assert [r for r in allowed if not _allowed(deployment, role, *r)] == []
    assert [r for r in refused if _allowed(deployment, role, *r)] == []


def test_failed_replications_page_the_ops_topic_and_the_dashboard_reads_the_replica_region(
    synthesized: SynthesizedApp,
) -> None:
    alarms = synthesized.resources("prod", "Observability", "AWS::CloudWatch::Alarm")
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    name = replica_bucket(synthesized)[1]["Properties"]["BucketName"]
    alarm = by_name["energy-prod.ReplicationFailures"]
    metrics = [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert {m["MetricName"] for m in metrics} == {"OperationsFailedReplication"}
    rules = set()
    for metric in metrics:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert metric["Namespace"] == "AWS/S3"
        assert dimensions["DestinationBucket"] == name
        assert dimensions["SourceBucket"] == {"Fn::ImportValue": "energy-prod-ArchiveBucketName"}
        rules.add(dimensions["RuleId"])
    assert rules == {"replicate-raw", "replicate-processed"}
    assert alarm["AlarmActions"] and alarm["OKActions"]
    # S3 publishes latency and pending bytes in the destination's region: no alarm of the
    # primary region could see them, so they are drawn from there.
    assert not any("Latency" in n for n in by_name)
    (dashboard,) = synthesized.resources(
        "prod", "Observability", "AWS::CloudWatch::Dashboard"
    ).values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric_name in ("ReplicationLatency", "BytesPendingReplication"):
        assert metric_name in body
    assert f'\\"region\\":\\"{REPLICA_REGION}\\"' in body
    for environment in ("dev", "staging"):
        names = {a["Properties"]["AlarmName"]
                 for a in synthesized.resources(environment, "Observability",
                                                "AWS::CloudWatch::Alarm").values()}  # fmt: skip
        assert not any("Replication" in n for n in names)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"dr": {"replica_region": "eu-central-1"}},
            r"prod\.dr\.replica_region: 'eu-central-1' is",
        ),
        (
            {"dr": {"replica_region": "moon-1"}},
            r"prod\.dr\.replica_region: 'moon-1' does not match",
        ),
        ({"dr": {"replicate": True}}, r"prod\.dr: unknown setting\(s\) \['replicate'\]"),
    ],
)
def test_bad_replica_settings_stop_synthesis(settings: dict[str, Any], message: str) -> None:
    from energy_monitoring.config import ConfigError, parse_environment

    prod = {"account": "222222222222", "region": "eu-central-1",
            "alarms": {"ops_email": "a@b.co"}}  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        parse_environment("prod", {**prod, **settings})


def test_a_replica_needs_a_fixed_account_and_region() -> None:
    from energy_monitoring.config import ConfigError, parse_environment

    with pytest.raises(ConfigError, match=r"dev\.dr\.replica_region: needs the environment's"):
        parse_environment(
            "dev", {"dr": {"replica_region": "eu-west-1"}, "alarms": {"ops_email": "a@b.co"}}
        )


def test_raw_alone_when_processed_is_not_replicated() -> None:
    from energy_monitoring.config import parse_environment
    from energy_monitoring.constructs.replication import replicated_prefixes

    prod = parse_environment("prod", {
        "account": "222222222222", "region": "eu-central-1", "alarms": {"ops_email": "a@b.co"},
        "dr": {"replica_region": "eu-west-1", "replicate_processed": False},
    })  # fmt: skip
    assert replicated_prefixes(prod) == (contract.RAW_PREFIX,)


def test_for_any_value_matches_one_of_several_values() -> None:
    statement = {
        "Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
        "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/a"}},
    }  # fmt: skip

    def decide(aliases: tuple[str, ...]) -> bool:
        request = Request("arn:aws:iam::1:role/r", "kms:Encrypt", "k",
                          {"kms:ResourceAliases": aliases})  # fmt: skip
        return evaluate(request, account="1", resource_policies=[],
                        identity_policy=[statement]).allowed  # fmt: skip

    assert decide(("alias/b", "alias/a"))
    assert not decide(("alias/b",))
