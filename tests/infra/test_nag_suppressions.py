"""Suppressions are an allowlist with reasons: a new wildcard still fails synthesis."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from energy_monitoring import nag_suppressions


def test_render_matches_cdk_nag_notation() -> None:
    value = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b-", {"Fn::GetAtt": ["Bucket", "Arn"]}],
        ]
    }
    assert nag_suppressions.render(value) == "arn:<AWS::Partition>:s3:::b-<Bucket.Arn>"
    assert nag_suppressions.render({"Fn::ImportValue": "stack:Export"}) == "stack:Export"


def test_every_reason_is_written_out() -> None:
    reasons = [
        *(reason for _pattern, reason in nag_suppressions.WILDCARD_ACTIONS),
        *(reason for _pattern, reason in nag_suppressions.WILDCARD_RESOURCES),
        *nag_suppressions.UNSCOPABLE_ACTIONS.values(),
        *nag_suppressions.MANAGED_POLICIES.values(),
    ]
    assert all(len(reason) > 40 for reason in reasons)


def synth_stack_with(resource: str, tmp_path_str: str) -> None:
    app = cdk.App(outdir=tmp_path_str)
    stack = cdk.Stack(app, "Probe")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[resource]))
    queue = sqs.Queue(stack, "Failures", enforce_ssl=True)
    nag_suppressions.apply(stacks=[stack], stream_failures=queue)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


def test_prefix_scoped_writes_are_acknowledged(tmp_path: pytest.TempPathFactory) -> None:
    synth_stack_with(
        f"arn:{cdk.Aws.PARTITION}:s3:::{cdk.Fn.import_value('energy-dev-ArchiveBucketName')}"
        "/processed/*",
        str(tmp_path),
    )


def test_an_unlisted_prefix_of_the_archive_fails_synthesis(
    tmp_path: pytest.TempPathFactory,
) -> None:
    bucket = cdk.Fn.import_value("energy-dev-ArchiveBucketName")
    with pytest.raises(RuntimeError, match=r"ArchiveBucketName/athena/\*"):
        synth_stack_with(f"arn:{cdk.Aws.PARTITION}:s3:::{bucket}/athena/*", str(tmp_path))


def test_an_unlisted_wildcard_fails_synthesis(tmp_path: pytest.TempPathFactory) -> None:
    finding = r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:s3:::someone-elses-bucket/\*\]"
    with pytest.raises(RuntimeError, match=finding):
        synth_stack_with(f"arn:{cdk.Aws.PARTITION}:s3:::someone-elses-bucket/*", str(tmp_path))
