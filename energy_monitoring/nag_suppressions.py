"""Every cdk-nag (AwsSolutions) finding this project accepts, each with its reason.

cdk-nag 3 fails synthesis on any finding that is not acknowledged. Wildcards in IAM
policies are acknowledged only when they match the allowlists below (a new wildcard
anywhere else still fails synthesis); the other acknowledgments name their resource.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import IConstruct
from energy_runtime import contract

# Wildcard actions the CDK's own grants generate, and why each is acceptable.
WILDCARD_ACTIONS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (
        re.compile(r"^kms:(GenerateDataKey|ReEncrypt)\*$"),
        "KMS actions from CDK grants on this environment's key; the resource is that one key",
    ),
)

# Wildcard resources: objects under data-dependent keys in one bucket of this environment.
WILDCARD_RESOURCES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (
        # The archive bucket: in its own stack, or by its exported name in the others.
        re.compile(
            r"(<Archive[0-9A-F]{8}\.Arn>|:s3:::[a-z0-9-]+-ArchiveBucketName)/"
            f"({'|'.join(re.escape(prefix) for prefix in contract.ARCHIVE_PREFIXES)})\\*$"
        ),
        "object keys under this prefix depend on the data (time partitions, content "
        "hashes); the grant covers objects under the one prefix the writer owns",
    ),
    (
        # The disaster-recovery copy of the archive (a name the CDK generates, stacks/replica.py).
        re.compile(
            r":s3:::[a-z0-9-]*replica[a-z0-9]*/"
            f"({'|'.join(re.escape(prefix) for prefix in contract.ARCHIVE_PREFIXES)})\\*$"
        ),
        "replicas keep the archive's object keys (time partitions, content hashes); the "
        "replication role writes only under the prefixes it replicates",
    ),
    (
        # The processor reads the place of the meter an alert names (energy_runtime.places).
        re.compile(r":iot:([a-z0-9-]+|<AWS::Region>):(\d{12}|<AWS::AccountId>):thing/\*$"),
        "an alert may name any meter: DescribeThing (read-only, the thing's attributes) "
        "on this region's things; thing names are the meters' own, with no common prefix",
    ),
    (
        # The Athena results bucket, in the storage stack (the processed-data reader policy).
        re.compile(r"^<ArchiveAthenaResults[0-9A-F]{8}\.Arn>/\*$"),
        "Athena names each query's result object itself; a reader writes and reads query "
        "results only, in this environment's results bucket, which holds nothing else",
    ),
)

# Wildcard resources acknowledged only in a statement that narrows them by this condition key.
CONDITIONED_WILDCARD_RESOURCES: Final[tuple[tuple[re.Pattern[str], str, str], ...]] = (
    (
        # The replication role writes with the replica key, whose ARN the primary region
        # cannot know (constructs/replication.py): any key, but only the one with the alias.
        re.compile(r":kms:[a-z0-9-]+:\d{12}:key/\*$"),
        "kms:ResourceAliases",
        "the replica key is in another region, addressed by its alias: the statement admits "
        "only the key that carries the environment's replica alias, and only through S3",
    ),
)

# Statements whose resource must be "*" because the service has no resource-level control.
UNSCOPABLE_ACTIONS: Final[dict[frozenset[str], str]] = {
    frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}): (
        "X-Ray trace submission supports no resource-level permissions"
    ),
}

# AWS-managed policies that are the documented way to grant a service role.
MANAGED_POLICIES: Final[dict[str, str]] = {
    "AWSCodeDeployRoleForLambdaLimited": (
        "CodeDeploy's documented policy for Lambda deployments: it can only shift alias "
        "traffic and invoke lifecycle hooks"
    ),
    "AWSIoTDeviceDefenderAudit": (
        "Device Defender Audit's documented service policy: read-only access to the IoT, "
        "IAM and Cognito settings its checks inspect"
    ),
}


def apply(*, stacks: Sequence[cdk.Stack], stream_failures: sqs.IQueue) -> None:
    for stack in stacks:
        for construct in stack.node.find_all():
            if isinstance(construct, iam.CfnPolicy | iam.CfnManagedPolicy):
                _acknowledge_policy_wildcards(stack, construct)
            elif isinstance(construct, iam.CfnRole):
                _acknowledge_managed_policies(stack, construct)
            elif isinstance(construct, lambda_.CfnFunction):
                _acknowledge(
                    construct,
                    "AwsSolutions-L1",
                    "The handlers target python3.12, the version their code and the "
                    "managed Powertools/SDK-for-pandas layer versions are pinned to; the "
                    "runtime moves together with those layer versions in config",
                )
            elif isinstance(construct, kinesis.CfnStream):
                _acknowledge(
                    construct,
                    "AwsSolutions-KDS3",
                    "The stream is encrypted with the environment's customer-managed key "
                    "(rotation, key policy under the owner's control) instead of aws/kinesis",
                )
            elif isinstance(construct, firehose.CfnDeliveryStream):
                _acknowledge(
                    construct,
                    "AwsSolutions-KDF1",
                    "Firehose cannot enable SSE on a delivery stream whose source is a "
                    "Kinesis stream; the source stream and the S3 destination are both "
                    "encrypted with the environment's customer-managed key",
                )
                # Only a stack-level acknowledgment reaches this finding: the mapping is a
                # stack-level element the L2 construct adds, not a child of the stream.
                _acknowledge(
                    stack,
                    "CloudFormation-Validate::W7001",
                    "The Firehose L2 construct always adds its CIDR-block mapping (used only "
                    "for Redshift/OpenSearch-in-VPC destinations); an unused mapping is inert",
                )
    _acknowledge(
        stream_failures,
        "AwsSolutions-SQS3",
        "This queue is the Kinesis event source's on-failure destination, a dead-letter "
        "queue itself; failed batches are investigated from it, not redriven onward",
    )


def _acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def _acknowledge_policy_wildcards(
    stack: cdk.Stack, policy: iam.CfnPolicy | iam.CfnManagedPolicy
) -> None:
    document = stack.resolve(policy.policy_document)
    for statement in document.get("Statement", []):
        actions = set(_as_list(statement.get("Action")))
        for action in sorted(a for a in actions if "*" in a):
            reason = _first_match(WILDCARD_ACTIONS, action)
            if reason:
                _acknowledge(policy, f"AwsSolutions-IAM5[Action::{action}]", reason)
        for resource in (render(r) for r in _as_list(statement.get("Resource"))):
            if "*" not in resource:
                continue
            if resource == "*":
                reason = UNSCOPABLE_ACTIONS.get(frozenset(actions))
            else:
                reason = _first_match(WILDCARD_RESOURCES, resource) or _narrowed(
                    resource, statement
                )
            if reason:
                _acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason)


def _acknowledge_managed_policies(stack: cdk.Stack, role: iam.CfnRole) -> None:
    for arn in (render(a) for a in _as_list(stack.resolve(role.managed_policy_arns))):
        reason = MANAGED_POLICIES.get(arn.rsplit("/", 1)[-1])
        if reason:
            _acknowledge(role, f"AwsSolutions-IAM4[Policy::{arn}]", reason)


def _narrowed(resource: str, statement: dict[str, Any]) -> str | None:
    keys = {key for block in statement.get("Condition", {}).values() for key in block}
    return next(
        (
            reason
            for pattern, key, reason in CONDITIONED_WILDCARD_RESOURCES
            if pattern.search(resource) and key in keys
        ),
        None,
    )


def render(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag prints it in a finding's id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{resource}.{attribute}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(render(part) for part in parts)
        if "Fn::ImportValue" in value:
            return render(value["Fn::ImportValue"])
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _first_match(table: tuple[tuple[re.Pattern[str], str], ...], text: str) -> str | None:
    return next((reason for pattern, reason in table if pattern.search(text)), None)
