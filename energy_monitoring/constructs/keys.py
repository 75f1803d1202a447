"""The environment's customer-managed keys: the settings every one of them shares, in one
place, and the key-policy grant that lets CloudWatch Logs encrypt log groups with one."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.retention import removal_policy


def key_alias(config: EnvironmentConfig, purpose: str) -> str:
    """`alias/<stage>-<purpose>`: what another region's stacks address the key by."""
    return f"alias/{config.resource_prefix}-{purpose}"


def environment_key(
    scope: Construct, construct_id: str, *, config: EnvironmentConfig, purpose: str,
    description: str,
) -> kms.Key:  # fmt: skip
    """A rotating key named `alias/<stage>-<purpose>`, kept or destroyed with the stack as
    the environment's removal policy says (a shorter pending window where it is destroyed)."""
    return kms.Key(
        scope,
        construct_id,
        alias=key_alias(config, purpose),
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy(config),
        pending_window=cdk.Duration.days(7 if config.removal_policy == "destroy" else 30),
    )


def allow_log_groups(key: kms.Key, *, sid: str | None = None) -> None:
    """CloudWatch Logs may use the key for this account's log groups in this region (it
    needs the grant in the key policy)."""
    stack = cdk.Stack.of(key)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                    )
                }
            },
        )
    )
