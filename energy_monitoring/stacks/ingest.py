"""Ingest: meters' IoT policy and thing type, the topic rule, the stream, the raw archive."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from constructs import Construct
from energy_runtime import contract

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.buckets import archive_bucket
from energy_monitoring.constructs.device_access import DeviceAccess
from energy_monitoring.constructs.grants import role_policy
from energy_monitoring.constructs.raw_delivery import RawArchiveDelivery
from energy_monitoring.constructs.retention import log_retention, removal_policy
from energy_monitoring.constructs.topic_rule import IngestRule
from energy_monitoring.stacks.storage import StorageResources

# IoT Core writes its logs to this log group, whose name it fixes.
IOT_LOG_GROUP = "AWSIotLogsV2"


@dataclass(frozen=True, kw_only=True)
class IngestResources:
    stream: kinesis.IStream
    rule_name: str
    delivery_stream: firehose.IDeliveryStream
    policy_name: str
    thing_type_name: str
    thing_group_name: str  # a literal `<stage>-meters`: no export, whoever uses it
    iot_log_group_name: str | None


class IngestStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageResources,
        termination_protection: bool,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Energy monitoring ({config.name}): IoT ingest, stream, raw archive",
            termination_protection=termination_protection,
        )
        settings = config.stream
        provisioned = settings.capacity_mode == "provisioned"
        stream = kinesis.Stream(
            self,
            "Readings",
            stream_mode=(
                kinesis.StreamMode.PROVISIONED if provisioned else kinesis.StreamMode.ON_DEMAND
            ),
            shard_count=settings.shard_count if provisioned else None,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=storage.key,
            retention_period=cdk.Duration.hours(settings.retention_hours),
            # The L2 retains streams by default: a destroyed dev environment would leave a
            # billed stream behind, encrypted with a key that is gone.
            removal_policy=removal_policy(config),
        )

        archive = archive_bucket(self, "ArchiveBucket", config=config)
        access = DeviceAccess(self, "Devices", config=config)
        rule = IngestRule(
            self,
            "TopicRule",
            rule_name=config.iot_rule_name,
            topic_root=config.topic_root,
            stream=stream,
            archive=archive,
            key=storage.key,
        )
        retention = log_retention(config.retention.log_retention_days)
        raw_archive = RawArchiveDelivery(
            self,
            "RawArchive",
            config=config,
            stream=stream,
            archive=archive,
            key=storage.key,
            raw_table=storage.raw_table,
            log_retention=retention,
        )
        iot_log_group_name = None
        if config.ingest.iot_logging == "create":
            iot_log_group_name = self._iot_logging(config, retention, storage)
        elif config.ingest.iot_logging == "existing":
            iot_log_group_name = IOT_LOG_GROUP

        self.resources = IngestResources(
            stream=stream,
            rule_name=rule.rule_name,
            delivery_stream=raw_archive.delivery_stream,
            policy_name=access.policy.ref,
            thing_type_name=access.thing_type.ref,
            thing_group_name=access.thing_group_name,
            iot_log_group_name=iot_log_group_name,
        )
        outputs = {
            "StreamName": (stream.stream_name, "Kinesis stream the topic rule writes to"),
            "TopicRuleName": (rule.rule_name, "IoT topic rule routing meter messages"),
            contract.Output.IOT_POLICY_NAME: (
                access.policy.ref,
                "IoT policy to attach to meter certificates",
            ),
            contract.Output.THING_TYPE_NAME: (access.thing_type.ref, "IoT thing type for meters"),
            contract.Output.THING_GROUP_NAME: (
                access.thing_group.ref,
                "IoT thing group of this environment's meters (Device Defender targets it)",
            ),
            contract.Output.METER_TOPIC_TEMPLATE: (
                f"{config.topic_root}/{contract.THING_NAME_PLACEHOLDER}",
                "MQTT topic a meter publishes to",
            ),
            "RawDeliveryStreamName": (
                raw_archive.delivery_stream.delivery_stream_name,
                "Firehose delivery stream writing raw/ Parquet",
            ),
        }
        if config.ingest.basic_ingest:
            # Publishing here skips the message broker (and its messaging charge).
            outputs[contract.Output.BASIC_INGEST_TOPIC_TEMPLATE] = (
                f"$aws/rules/{rule.rule_name}/{config.topic_root}/{contract.THING_NAME_PLACEHOLDER}",
                "Basic Ingest topic a meter may publish to instead",
            )
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)

    def _iot_logging(
        self, config: EnvironmentConfig, retention: logs.RetentionDays, storage: StorageResources
    ) -> str:
        """AWS::IoT::Logging and IoT's fixed-name log group are singletons per account and
        region: one environment creates them (`iot_logging: create`), the others say
        `existing`. Both fail to create where the account already has them."""
        log_group = logs.LogGroup(
            self,
            "IotLogs",
            log_group_name=IOT_LOG_GROUP,
            retention=retention,
            encryption_key=storage.key,
            removal_policy=removal_policy(config),
        )
        role = iam.Role(
            self,
            "IotLoggingRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets AWS IoT Core write its logs to CloudWatch Logs",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                # What IoT's logging role documentation lists, on IoT's log group only.
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:PutMetricFilter",
                    "logs:PutRetentionPolicy",
                ],
                resources=[log_group.log_group_arn],
            )
        )
        logging = iot.CfnLogging(
            self,
            "IotLogging",
            account_id=self.account,
            default_log_level=config.ingest.iot_log_level,
            role_arn=role.role_arn,
        )
        logging.node.add_dependency(role_policy(role))
        return IOT_LOG_GROUP
