"""The environment's audit trail (`audit.cloudtrail`): every management API call of the
account in the environment's region, and with `audit.data_events` every read and write of
the archive's `raw/` and `processed/` objects.

The trail has its own key and bucket: audit logs outlive the data they describe and are
read by other people. Log file validation lets an auditor prove that no file was changed
or deleted; CloudWatch Logs delivery makes the events searchable at once.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime import contract

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.buckets import data_bucket
from energy_monitoring.constructs.keys import allow_log_groups, environment_key
from energy_monitoring.constructs.retention import log_retention, removal_policy

AUDITED_PREFIXES = (contract.RAW_PREFIX, contract.PROCESSED_PREFIX)


class AuditTrail(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        access_logs: s3.IBucket,
        archive: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        removal = removal_policy(config)
        trail_name = f"{config.resource_prefix}-audit"
        trail_arn = stack.format_arn(
            service="cloudtrail", resource="trail", resource_name=trail_name
        )
        self.key = environment_key(
            self,
            "Key",
            config=config,
            purpose="audit",
            description=f"Encrypts the energy monitoring audit trail of {config.name}",
        )
        # CloudTrail encrypts each log file with a data key of this trail's context only.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptsThisTrail",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{stack.partition}:cloudtrail:*:{stack.account}:trail/*"
                        )
                    },
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribesTheKey",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
        # The trail's log group is encrypted with the same key.
        allow_log_groups(self.key, sid="CloudWatchLogsEncryptsTheTrailsLogGroup")
        self.bucket = data_bucket(
            self,
            "Bucket",
            config=config,
            key=self.key,
            access_logs=access_logs,
            purpose="audit-trail",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-audit-logs",
                    expiration=cdk.Duration.days(config.audit.expire_after_days),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention(config.retention.log_retention_days),
            encryption_key=self.key,
            removal_policy=removal,
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=trail_name,
            bucket=self.bucket,
            encryption_key=self.key,
            enable_file_validation=True,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.log_group,
            include_global_service_events=False,  # once per account: the organization's trail
            is_multi_region_trail=False,  # the environment's region
            management_events=cloudtrail.ReadWriteType.ALL,
        )
        if config.audit.data_events:
            self.trail.add_s3_event_selector(
                [
                    cloudtrail.S3EventSelector(bucket=archive, object_prefix=prefix)
                    for prefix in AUDITED_PREFIXES
                ],
                read_write_type=cloudtrail.ReadWriteType.ALL,
                include_management_events=True,
            )
