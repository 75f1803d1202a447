"""The S3 archive: raw and processed data, its access-log bucket, Athena's results bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime.schema import QUARANTINE_PREFIX, RAW_PREFIX

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.raw_archive import ERROR_PREFIX as FIREHOSE_ERROR_PREFIX
from energy_monitoring.constructs.topic_rule import ERROR_PREFIX as IOT_ERROR_PREFIX

PROCESSED_PREFIX = "processed/"
# Athena skips objects in Glacier Flexible Retrieval: these prefixes are archive-only
# once they get there. Processed aggregates (small, what QuickSight reads) stop at
# Standard-IA so that they stay queryable until they expire.
GLACIER_PREFIXES = (RAW_PREFIX, QUARANTINE_PREFIX, FIREHOSE_ERROR_PREFIX, IOT_ERROR_PREFIX)


def bucket_name(config: EnvironmentConfig, scope: Construct, purpose: str) -> str:
    """Globally unique, predictable bucket name (analysts and IAM policies quote it).

    Built from the calling stack's own account and region, so other stacks of the
    environment address the bucket by name without a cross-stack export.
    """
    stack = cdk.Stack.of(scope)
    return f"{config.resource_prefix}-{purpose}-{stack.account}-{stack.region}"


def archive_bucket(scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> s3.IBucket:
    """The environment's archive bucket, as seen from any of its stacks."""
    return s3.Bucket.from_bucket_name(scope, construct_id, bucket_name(config, scope, "archive"))


class ArchiveBuckets(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        retention = config.retention
        destroy = config.removal_policy == "destroy"
        removal = cdk.RemovalPolicy.DESTROY if destroy else cdk.RemovalPolicy.RETAIN

        # Server access logs cannot be delivered to an SSE-KMS bucket: SSE-S3 here.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=bucket_name(config, self, "access-logs"),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            auto_delete_objects=destroy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=cdk.Duration.days(retention.access_log_expire_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )

        def data_bucket(
            construct_id: str,
            purpose: str,
            lifecycle_rules: list[s3.LifecycleRule],
            *,
            versioned: bool = False,
        ) -> s3.Bucket:
            """A bucket that holds data: the defaults every such bucket shares (CMK with a
            bucket key, no public access, TLS only, access logs), in one place."""
            return s3.Bucket(
                self,
                construct_id,
                bucket_name=bucket_name(config, self, purpose),
                encryption=s3.BucketEncryption.KMS,
                encryption_key=key,
                bucket_key_enabled=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{purpose}/",
                removal_policy=removal,
                auto_delete_objects=destroy,
                lifecycle_rules=lifecycle_rules,
                versioned=versioned,
            )

        self.archive = data_bucket(
            "Archive", "archive", self._archive_lifecycle(config), versioned=True
        )
        self.athena_results = data_bucket(
            "AthenaResults",
            "athena-results",
            [
                s3.LifecycleRule(
                    id="expire-query-results",
                    expiration=cdk.Duration.days(retention.athena_results_expire_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )

    @staticmethod
    def _archive_lifecycle(config: EnvironmentConfig) -> list[s3.LifecycleRule]:
        retention = config.retention
        infrequent = s3.Transition(
            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
            transition_after=cdk.Duration.days(retention.archive_ia_after_days),
        )
        glacier = s3.Transition(
            storage_class=s3.StorageClass.GLACIER,
            transition_after=cdk.Duration.days(retention.archive_glacier_after_days),
        )
        expire = cdk.Duration.days(retention.archive_expire_after_days)
        return [
            *(
                s3.LifecycleRule(
                    id=f"tier-{prefix.strip('/')}",
                    prefix=prefix,
                    transitions=[infrequent, glacier],
                    expiration=expire,
                )
                for prefix in GLACIER_PREFIXES
            ),
            s3.LifecycleRule(
                id="tier-processed",
                prefix=PROCESSED_PREFIX,
                transitions=[infrequent],
                expiration=expire,
            ),
            s3.LifecycleRule(
                id="versions-and-uploads",
                noncurrent_version_expiration=cdk.Duration.days(retention.noncurrent_expire_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
            ),
        ]
