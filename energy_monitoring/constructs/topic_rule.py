"""The IoT topic rule: meter messages onto the Kinesis stream, failures to the archive."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime import contract

from energy_monitoring.constructs.grants import grant_prefix_writes, role_policy


def device_level(topic_root: str) -> int:
    """The topic level that names the device: the one after the root."""
    return len(topic_root.split("/")) + 1


def rule_sql(topic_root: str) -> str:
    """The rule's SQL. The payload travels base64-encoded so that nothing a meter sends is
    dropped by the rules engine (the batching Lambda quarantines what it cannot parse)."""
    return (
        f"SELECT encode(*, 'base64') AS payload, topic({device_level(topic_root)}) AS device_id, "
        f"timestamp() AS received_at FROM '{topic_root}/+'"
    )


def partition_key(topic_root: str) -> str:
    """Partition by device (never a random key: it would break per-device order)."""
    return f"${{topic({device_level(topic_root)})}}"


def error_key(topic_root: str) -> str:
    return (
        contract.IOT_ERRORS_PREFIX
        + "${parse_time('yyyy/MM/dd', timestamp())}/"
        + f"${{topic({device_level(topic_root)})}}-${{newuuid()}}"
    )


class IngestRule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rule_name: str,
        topic_root: str,
        stream: kinesis.IStream,
        archive: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets the ingest topic rule put to the stream and its errors to S3",
        )
        # grant_write includes kms:GenerateDataKey on the stream's key.
        stream.grant_write(role)
        grant_prefix_writes(role, bucket=archive, prefix=contract.IOT_ERRORS_PREFIX, key=key)

        self.rule = iot.CfnTopicRule(
            self,
            "Rule",
            rule_name=rule_name,
            topic_rule_payload=iot.CfnTopicRule.TopicRulePayloadProperty(
                sql=rule_sql(topic_root),
                aws_iot_sql_version="2016-03-23",
                rule_disabled=False,
                description="Meter readings to Kinesis, partitioned by device",
                actions=[
                    iot.CfnTopicRule.ActionProperty(
                        kinesis=iot.CfnTopicRule.KinesisActionProperty(
                            stream_name=stream.stream_name,
                            partition_key=partition_key(topic_root),
                            role_arn=role.role_arn,
                        )
                    )
                ],
                error_action=iot.CfnTopicRule.ActionProperty(
                    s3=iot.CfnTopicRule.S3ActionProperty(
                        bucket_name=archive.bucket_name,
                        key=error_key(topic_root),
                        role_arn=role.role_arn,
                    )
                ),
            ),
        )
        # The role's policy must exist before IoT validates the rule's actions.
        self.rule.node.add_dependency(role_policy(role))
        self.rule_name = rule_name
        self.rule_arn = cdk.Stack.of(self).format_arn(
            service="iot", resource="rule", resource_name=rule_name
        )
