"""The synthesized app as a whole: its layout, cfn-lint, cdk-nag and per-stack snapshots.

Snapshots mask asset hashes and Lambda version digests (they change with every runtime
edit and are not infrastructure) and the Glue tables' columns (the runtime's schema
module owns them; test_storage_stack checks them), so a snapshot fails only when the
infrastructure changes. After an intended change, regenerate them with
`UPDATE_SNAPSHOTS=1 pytest tests/infra` and review the diff like code.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import cfnlint.api
import pytest

from infra.synthesis import REPLICA, STACKS, SynthesizedApp

SNAPSHOTS = Path(__file__).parent / "snapshots"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")
# A Lambda version's logical id ends in a digest of the function's code and settings.
VERSION_DIGEST = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}")
ENVIRONMENTS = ("dev", "staging", "prod")


def _replica_region(environment: str) -> str | None:
    from energy_monitoring.application_paths import CDK_JSON
    from energy_monitoring.config import environments_in

    return environments_in(CDK_JSON)[environment].dr.replica_region


KEYS = [(environment, stack) for environment in ENVIRONMENTS for stack in STACKS] + [
    (environment, REPLICA) for environment in ENVIRONMENTS if _replica_region(environment)
]


def masked(template: dict[str, Any]) -> str:
    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        if resource["Type"] == "AWS::Glue::Table":
            # Columns come from energy_runtime.contract (the runtime owns them);
            # test_storage_stack checks them against that module instead.
            descriptor = resource["Properties"]["TableInput"]["StorageDescriptor"]
            descriptor["Columns"] = "<energy_runtime.contract>"
    text = json.dumps(template, indent=1, sort_keys=True)
    text = ASSET_HASH.sub("<asset-hash>", text)
    return VERSION_DIGEST.sub(r"\1<code-digest>", text) + "\n"


def test_one_stage_per_environment_with_four_stacks_and_its_replica(
    synthesized: SynthesizedApp,
) -> None:
    assert set(synthesized.templates) == set(KEYS)


def test_no_unacknowledged_cdk_nag_findings(synthesized: SynthesizedApp) -> None:
    # Synthesis raises on errors (test_nag_suppressions proves the plugin fails it);
    # warnings would only show in the report, which synthesis always writes.
    report_path = synthesized.outdir / "validation-report.json"
    assert report_path.exists()
    report = json.loads(report_path.read_text())
    findings = [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        if plugin["pluginName"] == "AwsSolutions"
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
    assert findings == []


@pytest.mark.parametrize(("environment", "stack"), KEYS)
def test_cfn_lint_finds_no_errors(
    synthesized: SynthesizedApp, environment: str, stack: str, environments: dict[str, Any]
) -> None:
    config = environments[environment]
    region = (config.dr.replica_region if stack == REPLICA else config.region) or "us-east-1"
    text = synthesized.template_files[(environment, stack)].read_text()
    matches = cfnlint.api.lint(text, regions=[region])
    errors = [f"{m.rule.id} {m.path}: {m.message}" for m in matches if m.rule.severity == "error"]
    assert errors == []


@pytest.mark.parametrize(("environment", "stack"), KEYS)
def test_snapshot(synthesized: SynthesizedApp, environment: str, stack: str) -> None:
    snapshot = SNAPSHOTS / f"energy-{environment}-{stack}.json"
    current = masked(synthesized.template(environment, stack))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        snapshot.write_text(current)
    assert snapshot.exists(), f"no snapshot: run UPDATE_SNAPSHOTS=1 pytest {__file__}"
    assert current == snapshot.read_text(), (
        f"{environment}/{stack} changed; if intended: UPDATE_SNAPSHOTS=1 pytest tests/infra"
    )


def test_masking_hides_only_code_digests() -> None:
    version = "BatchingFunctionCurrentVersionFFE0AC2E" + "4" * 32
    template = {"Code": {"S3Key": "a" * 64 + ".zip"}, "Name": "energy-dev", "Ref": version}
    assert json.loads(masked(template)) == {
        "Code": {"S3Key": "<asset-hash>.zip"},
        "Name": "energy-dev",
        "Ref": "BatchingFunctionCurrentVersionFFE0AC2E<code-digest>",
    }


ACCESS_LOG_BUCKETS = ("ArchiveAccessLogs", "ReplicaAccessLogs")


def _encrypted(resource: dict[str, Any], logical_id: str) -> bool:
    """Whether a data-holding resource is encrypted with a customer-managed key."""
    properties = resource.get("Properties", {})
    match resource["Type"]:
        case "AWS::SQS::Queue" | "AWS::SNS::Topic":
            return "KmsMasterKeyId" in properties
        case "AWS::Logs::LogGroup":
            return "KmsKeyId" in properties
        case "AWS::Kinesis::Stream":
            return properties["StreamEncryption"]["EncryptionType"] == "KMS"
        case "AWS::DynamoDB::Table":
            return bool(properties["SSESpecification"].get("KMSMasterKeyId"))
        case "AWS::KinesisFirehose::DeliveryStream":
            destination = properties["ExtendedS3DestinationConfiguration"]
            return "KMSEncryptionConfig" in destination["EncryptionConfiguration"]
        case "AWS::S3::Bucket":
            rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            # The access-log buckets can only be SSE-S3: S3 refuses to log into SSE-KMS.
            return algorithm == "aws:kms" or logical_id.startswith(ACCESS_LOG_BUCKETS)
    return True


DATA_TYPES = {
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
    "AWS::Kinesis::Stream",
    "AWS::DynamoDB::Table",
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::S3::Bucket",
}


def test_encryption_everywhere(synthesized: SynthesizedApp) -> None:
    seen = set()
    for (environment, stack), template in synthesized.templates.items():
        for logical_id, resource in template["Resources"].items():
            assert _encrypted(resource, logical_id), f"{environment}/{stack}/{logical_id}"
            seen.add(resource["Type"])
    assert seen >= DATA_TYPES


# Resource type -> (its policy's type, the property listing what the policy covers).
TLS_POLICIES = {
    "AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics"),
    "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues"),
}


def _denies_plain_transport(statement: dict[str, Any]) -> bool:
    return statement["Effect"] == "Deny" and statement.get("Condition") == {
        "Bool": {"aws:SecureTransport": "false"}
    }


@pytest.mark.parametrize(("environment", "stack"), KEYS)
def test_every_topic_and_queue_refuses_plain_transport(
    synthesized: SynthesizedApp, environment: str, stack: str
) -> None:
    resources = synthesized.template(environment, stack)["Resources"]
    for type_, (policy_type, covers) in TLS_POLICIES.items():
        tls_only = {
            target["Ref"]
            for policy in resources.values()
            if policy["Type"] == policy_type
            and any(
                map(_denies_plain_transport, policy["Properties"]["PolicyDocument"]["Statement"])
            )
            for target in policy["Properties"][covers]
        }
        for logical_id, resource in resources.items():
            if resource["Type"] == type_:
                assert logical_id in tls_only, f"{environment}/{stack}/{logical_id}"


def test_every_key_rotates(synthesized: SynthesizedApp) -> None:
    keys = [
        (environment, stack, logical_id, resource)
        for (environment, stack), template in synthesized.templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::KMS::Key"
    ]
    audited = sum(
        1
        for e in ENVIRONMENTS
        if synthesized.config["environments"][e].get("audit", {}).get("cloudtrail")
    )
    replicated = sum(1 for e in ENVIRONMENTS if _replica_region(e))
    # The data key and the ops key per environment, the audit trail's where it is on, and
    # the replica's where there is one.
    assert len(keys) == 2 * len(ENVIRONMENTS) + audited + replicated
    for environment, stack, logical_id, resource in keys:
        assert resource["Properties"]["EnableKeyRotation"] is True, (environment, stack, logical_id)


def test_docs_list_every_stack_output(synthesized: SynthesizedApp) -> None:
    deploy_doc = (Path(__file__).parents[2] / "docs" / "deploy.md").read_text()
    outputs = {
        name
        for template in synthesized.templates.values()
        for name in template.get("Outputs", {})
        if not name.startswith("ExportsOutput")  # cross-stack references the CDK adds
    }
    assert outputs
    assert sorted(name for name in outputs if f"`{name}`" not in deploy_doc) == []


# Names CloudFormation cannot generate, unique per account and region: each carries the
# stage name (and so the prefix), except the one IoT Core fixes.
ACCOUNT_UNIQUE_NAMES = {
    ("AWS::S3::Bucket", "BucketName"),  # the replica's: the CDK generates it from the stage
    ("AWS::Athena::WorkGroup", "Name"),
    ("AWS::CloudTrail::Trail", "TrailName"),
    ("AWS::CloudWatch::Alarm", "AlarmName"),
    ("AWS::Glue::Database", "DatabaseInput.Name"),
    ("AWS::Glue::Table", "DatabaseName"),
    ("AWS::IoT::ThingGroup", "ThingGroupName"),
    ("AWS::IoT::TopicRule", "RuleName"),
    ("AWS::KMS::Alias", "AliasName"),
    ("AWS::Logs::LogGroup", "LogGroupName"),
}
NAMED_BY_AWS = {"AWSIotLogsV2"}  # IoT Core's log group: one per account (iot_logging)
# Properties called ...Name that name nothing account-wide (or refer to another resource).
NOT_ACCOUNT_UNIQUE = {
    ("AWS::ApplicationAutoScaling::ScalingPolicy", "PolicyName"),  # per scalable target
    ("AWS::CloudWatch::Alarm", "MetricName"),
    ("AWS::CodeDeploy::DeploymentGroup", "DeploymentConfigName"),
    ("AWS::IAM::Policy", "PolicyName"),  # inline in its role
    ("AWS::Lambda::Alias", "Name"),  # per function
    ("AWS::SNS::Topic", "DisplayName"),
}


def literal_names(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, property, value) of every literal name the template sets."""
    found = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        candidates = {key: value for key, value in properties.items() if key.endswith("Name")}
        if resource["Type"] == "AWS::Glue::Database":
            candidates["DatabaseInput.Name"] = properties["DatabaseInput"]["Name"]
        for key, value in candidates.items():
            if isinstance(value, str):
                found.append((resource["Type"], key, value))
    return found


def test_every_fixed_name_is_known(synthesized: SynthesizedApp, variant: SynthesizedApp) -> None:
    for app in (synthesized, variant):
        for template in app.templates.values():
            for type_, key, value in literal_names(template):
                known = ACCOUNT_UNIQUE_NAMES | NOT_ACCOUNT_UNIQUE
                assert (type_, key) in known, (type_, key, value)


def test_a_prefix_separates_a_second_copy_of_an_environment(variant: SynthesizedApp) -> None:
    from infra.conftest import VARIANT_PREFIX

    stage = f"{VARIANT_PREFIX}-energy-dev"
    assert sorted(variant.stack_names.values()) == sorted(f"{stage}-{s}" for s in STACKS)
    for template in variant.templates.values():
        for output in template.get("Outputs", {}).values():
            if "Export" in output:
                assert output["Export"]["Name"].startswith(f"{stage}-"), output
        for type_, key, value in literal_names(template):
            if (type_, key) in ACCOUNT_UNIQUE_NAMES and value not in NAMED_BY_AWS:
                assert value.removeprefix("alias/").startswith(VARIANT_PREFIX), (type_, key, value)
    ingest = variant.template("dev", "Ingest")["Resources"]
    (rule,) = [r for r in ingest.values() if r["Type"] == "AWS::IoT::TopicRule"]
    assert rule["Properties"]["RuleName"] == f"{VARIANT_PREFIX}_energy_dev_ingest"


def test_a_prefixed_copy_never_creates_the_accounts_singletons() -> None:
    from energy_monitoring.application_paths import CDK_JSON
    from energy_monitoring.config import load_environments

    context = json.loads(CDK_JSON.read_text())["context"]["energy-monitoring"]
    originals = {env.name: env for env in load_environments(context)}
    copies = {env.name: env for env in load_environments(context, prefix="alice")}

    assert any(env.ingest.iot_logging == "create" for env in originals.values())
    assert any(env.security.audit == "create" for env in originals.values())
    for name, copy_ in copies.items():
        # Whatever the original owns, the copy uses; what it leaves off stays off.
        expected = {"create": "existing"}
        assert copy_.ingest.iot_logging == expected.get(
            originals[name].ingest.iot_logging, originals[name].ingest.iot_logging
        )
        assert copy_.security.audit == expected.get(
            originals[name].security.audit, originals[name].security.audit
        )


def test_the_prefix_is_checked() -> None:
    from energy_monitoring.config import ConfigError, load_environments

    context = {"environments": {"dev": {"alarms": {"ops_email": "a@b.co"}}}}
    assert load_environments(context, prefix="bob2")[0].stage_name == "bob2-energy-dev"
    for bad in ("Alice", "a_b", "-a", "a-", "abcdefghijklm"):
        with pytest.raises(ConfigError, match="energy-monitoring:prefix"):
            load_environments(context, prefix=bad)
    with pytest.raises(ConfigError, match=r"dev\.prefix: the prefix is not a setting"):
        load_environments({"environments": {"dev": {"prefix": "x"}}})
