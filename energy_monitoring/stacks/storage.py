"""Storage: the customer-managed key, the DynamoDB table, the S3 archive, Glue and Athena."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from constructs import Construct
from energy_runtime import contract

from energy_monitoring.config import EnvironmentConfig, TableSettings
from energy_monitoring.constructs.audit_trail import AuditTrail
from energy_monitoring.constructs.buckets import ARCHIVE_EXPORT, ArchiveBuckets, archive_export_name
from energy_monitoring.constructs.catalog import AnalyticsCatalog
from energy_monitoring.constructs.keys import allow_log_groups, environment_key
from energy_monitoring.constructs.readers import DataReaders
from energy_monitoring.constructs.replication import ReplicaTarget
from energy_monitoring.constructs.retention import removal_policy


@dataclass(frozen=True, kw_only=True)
class StorageResources:
    """What the other stacks of the environment use from this one."""

    key: kms.IKey
    table: dynamodb.ITable
    database_name: str
    raw_table: glue.CfnTable
    raw_table_name: str
    interval_table_name: str
    replica: ReplicaTarget | None  # the archive's disaster-recovery copy, if any


class StorageStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        replica: ReplicaTarget | None,
        termination_protection: bool,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Energy monitoring ({config.name}): keys, table, archive, catalog",
            termination_protection=termination_protection,
        )
        removal = removal_policy(config)

        key = environment_key(
            self,
            "DataKey",
            config=config,
            purpose="data",
            description=f"Encrypts the energy monitoring data of {config.name}",
        )
        # Log groups of this environment are encrypted with the same key.
        allow_log_groups(key)

        table = dynamodb.Table(
            self,
            "Readings",
            partition_key=dynamodb.Attribute(
                name=contract.PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=contract.SORT_KEY, type=dynamodb.AttributeType.STRING),
            **_capacity(config.table),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=contract.TTL_ATTRIBUTE,
            deletion_protection=config.deletion_protection,
            removal_policy=removal,
        )

        if config.table.billing == "provisioned":
            _auto_scale(table, config.table)

        buckets = ArchiveBuckets(self, "Archive", config=config, key=key, replica=replica)
        catalog = AnalyticsCatalog(
            self,
            "Catalog",
            config=config,
            archive=buckets.archive,
            results=buckets.athena_results,
            key=key,
            removal=removal,
        )

        readers = DataReaders(
            self,
            "Readers",
            stage_name=config.stage_name,
            archive=buckets.archive,
            results=buckets.athena_results,
            key=key,
            database_name=catalog.database_name,
            interval_table_name=catalog.interval_table.ref,
            raw_table_name=catalog.raw_table.ref,
            workgroup_name=catalog.workgroup_name,
            quicksight_service_role=config.analytics.quicksight_service_role,
        )

        if config.audit.cloudtrail:
            audit = AuditTrail(
                self,
                "Audit",
                config=config,
                access_logs=buckets.access_logs,
                archive=buckets.archive,
            )
            cdk.CfnOutput(
                self,
                "AuditTrailArn",
                value=audit.trail.trail_arn,
                description="CloudTrail trail of this environment (audit.cloudtrail)",
            )

        self.resources = StorageResources(
            key=key,
            table=table,
            database_name=catalog.database_name,
            raw_table=catalog.raw_table,
            raw_table_name=catalog.raw_table.ref,
            interval_table_name=catalog.interval_table.ref,
            replica=replica,
        )

        outputs = {
            contract.Output.TABLE_NAME: (
                table.table_name,
                "DynamoDB table of latest, interval and daily items",
            ),
            contract.Output.ARCHIVE_BUCKET_NAME: (
                buckets.archive.bucket_name,
                "S3 archive (raw/, processed/)",
            ),
            "AthenaResultsBucketName": (
                buckets.athena_results.bucket_name,
                "S3 bucket of Athena query results",
            ),
            contract.Output.GLUE_DATABASE_NAME: (
                catalog.database_name,
                "Glue database for Athena/QuickSight",
            ),
            contract.Output.RAW_TABLE_NAME: (catalog.raw_table.ref, "Glue table over raw/"),
            contract.Output.INTERVAL_TABLE_NAME: (
                catalog.interval_table.ref,
                "Glue table over intervals",
            ),
            contract.Output.ATHENA_WORKGROUP_NAME: (
                catalog.workgroup.ref,
                "Athena workgroup for QuickSight",
            ),
            "DataKeyArn": (key.key_arn, "KMS key encrypting this environment's data"),
            contract.Output.PROCESSED_READER_POLICY_ARN: (
                readers.processed.managed_policy_arn,
                "managed policy: query the processed data through Athena",
            ),
            contract.Output.RAW_READER_POLICY_ARN: (
                readers.raw.managed_policy_arn,
                "managed policy: also query the raw readings (with the processed reader's)",
            ),
        }
        if replica is not None:
            outputs["ReplicaBucketName"] = (
                replica.bucket.bucket_name,
                f"S3 bucket of the archive's disaster-recovery copy ({replica.region})",
            )
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(
                self,
                output_id,
                value=value,
                description=description,
                export_name=archive_export_name(config) if output_id == ARCHIVE_EXPORT else None,
            )


def _capacity(settings: TableSettings) -> dict[str, Any]:
    """The table's billing mode and, provisioned, the capacity it starts with."""
    if settings.billing == "on_demand":
        return {"billing_mode": dynamodb.BillingMode.PAY_PER_REQUEST}
    return {
        "billing_mode": dynamodb.BillingMode.PROVISIONED,
        "write_capacity": settings.min_write_capacity,
        "read_capacity": settings.min_read_capacity,
    }


def _auto_scale(table: dynamodb.Table, settings: TableSettings) -> None:
    """Target tracking on consumed capacity (Application Auto Scaling creates its
    service-linked role for DynamoDB on the first registration: no role here)."""
    target = settings.target_utilization_percent
    table.auto_scale_write_capacity(
        min_capacity=settings.min_write_capacity, max_capacity=settings.max_write_capacity
    ).scale_on_utilization(target_utilization_percent=target)
    table.auto_scale_read_capacity(
        min_capacity=settings.min_read_capacity, max_capacity=settings.max_read_capacity
    ).scale_on_utilization(target_utilization_percent=target)
