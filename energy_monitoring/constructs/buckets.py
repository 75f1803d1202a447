"""The S3 archive: raw and processed data, its access-log bucket, Athena's results bucket.

CloudFormation names the buckets (stack name, construct id and a random suffix): a fixed
name would collide across prefixed copies of an environment and exceed 63 characters with
long account and region names. People read the names from the stack outputs; the other
stacks import the archive bucket's name by the export `<stage>-ArchiveBucketName`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime import contract

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.replication import ArchiveReplication, ReplicaTarget
from energy_monitoring.constructs.retention import removal_policy

# Athena skips objects in Glacier Flexible Retrieval: these prefixes are archive-only
# once they get there. Processed aggregates (small, what QuickSight reads) stop at
# Standard-IA so that they stay queryable until they expire.
GLACIER_PREFIXES = tuple(p for p in contract.ARCHIVE_PREFIXES if p != contract.PROCESSED_PREFIX)


ARCHIVE_EXPORT = "ArchiveBucketName"


def archive_export_name(config: EnvironmentConfig) -> str:
    return f"{config.stage_name}-{ARCHIVE_EXPORT}"


def archive_bucket(scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> s3.IBucket:
    """The environment's archive bucket, as another stack of it sees it: by the name the
    Storage stack exports (a named export, so IAM statements quote the same name when
    synthesized and when cdk-nag reads them)."""
    name = cdk.Fn.import_value(archive_export_name(config))
    return s3.Bucket.from_bucket_name(scope, construct_id, name)


def data_bucket(
    scope: Construct,
    construct_id: str,
    *,
    config: EnvironmentConfig,
    key: kms.IKey,
    access_logs: s3.IBucket,
    purpose: str,
    lifecycle_rules: list[s3.LifecycleRule],
    versioned: bool = False,
    bucket_name: str | None = None,
) -> s3.Bucket:
    """A bucket that holds data: the defaults every such bucket shares (CMK with a bucket
    key, no public access, TLS only, access logs under `<purpose>/`), in one place."""
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{purpose}/",
        removal_policy=removal_policy(config),
        auto_delete_objects=config.removal_policy == "destroy",
        lifecycle_rules=lifecycle_rules,
        versioned=versioned,
    )


def access_log_bucket(
    scope: Construct, construct_id: str, *, config: EnvironmentConfig
) -> s3.Bucket:
    """Where the data buckets of one region deliver their server access logs. Server
    access logs cannot be delivered to an SSE-KMS bucket: SSE-S3 here."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy(config),
        auto_delete_objects=config.removal_policy == "destroy",
        lifecycle_rules=[
            s3.LifecycleRule(
                id="expire-access-logs",
                expiration=cdk.Duration.days(config.retention.access_log_expire_days),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            )
        ],
    )


def archive_lifecycle(config: EnvironmentConfig) -> list[s3.LifecycleRule]:
    """The archive's tiers and expiry (its disaster-recovery replica keeps the same)."""
    retention = config.retention
    infrequent = s3.Transition(
        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
        transition_after=cdk.Duration.days(retention.archive_ia_after_days),
    )
    glacier = s3.Transition(
        storage_class=s3.StorageClass.GLACIER,
        transition_after=cdk.Duration.days(retention.archive_glacier_after_days),
    )
    cold = [infrequent, glacier]
    if retention.archive_deep_archive_after_days is not None:
        cold.append(
            s3.Transition(
                storage_class=s3.StorageClass.DEEP_ARCHIVE,
                transition_after=cdk.Duration.days(retention.archive_deep_archive_after_days),
            )
        )
    expire = cdk.Duration.days(retention.archive_expire_after_days)
    return [
        *(
            s3.LifecycleRule(
                id=f"tier-{prefix.strip('/')}",
                prefix=prefix,
                transitions=cold,
                expiration=expire,
            )
            for prefix in GLACIER_PREFIXES
        ),
        s3.LifecycleRule(
            id="tier-processed",
            prefix=contract.PROCESSED_PREFIX,
            transitions=[infrequent],
            expiration=expire,
        ),
        s3.LifecycleRule(
            id="versions-and-uploads",
            noncurrent_version_expiration=cdk.Duration.days(retention.noncurrent_expire_days),
            abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
        ),
    ]


class ArchiveBuckets(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        replica: ReplicaTarget | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = access_log_bucket(self, "AccessLogs", config=config)
        self.archive = data_bucket(
            self, "Archive", config=config, key=key, access_logs=self.access_logs,
            purpose="archive", lifecycle_rules=archive_lifecycle(config), versioned=True,
        )  # fmt: skip
        if replica is not None:
            ArchiveReplication(
                self, "Replication", config=config, archive=self.archive, key=key, target=replica
            )
        self.athena_results = data_bucket(
            self,
            "AthenaResults",
            config=config,
            key=key,
            access_logs=self.access_logs,
            purpose="athena-results",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-query-results",
                    expiration=cdk.Duration.days(config.retention.athena_results_expire_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
