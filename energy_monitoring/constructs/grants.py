"""Narrow grants the L2 `grant_*` helpers make broader than needed."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import IConstruct


def grant_prefix_writes(
    principal: iam.IGrantable, *, bucket: s3.IBucket, prefix: str, key: kms.IKey
) -> None:
    """PutObject under one prefix of an SSE-KMS bucket, and nothing else."""
    principal.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}*")]
        )
    )
    # SSE-KMS needs a data key per object; Decrypt is needed for multipart uploads.
    principal.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[key.key_arn])
    )


def role_policy(role: iam.Role) -> IConstruct:
    """The role's policy: what a service validates on create must wait for it.

    (The role itself is already ordered before anything that reads its ARN.)
    """
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise ValueError(f"{role.node.path} has no policy yet: grant before depending on it")
    return policy
