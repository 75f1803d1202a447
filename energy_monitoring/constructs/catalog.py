"""Glue database and tables over the archive (partition projection), Athena workgroup.

The tables' columns come from `energy_runtime.contract`, the module the Parquet writers
use too, so the catalog cannot drift from the files.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime.contract import (
    INTERVAL_COLUMNS,
    INTERVALS_PREFIX,
    PARTITION_KEYS,
    RAW_COLUMNS,
    RAW_PREFIX,
    Column,
)

from energy_monitoring.config import EnvironmentConfig

RAW_TABLE = "raw_readings"
INTERVAL_TABLE = "interval_aggregates"
# Partition projection ranges: years the data can plausibly carry.
PROJECTED_YEARS = "2020,2099"


def partition_projection(location: str) -> dict[str, str]:
    """Table parameters that let Athena compute partitions instead of crawling them."""
    ranges = {"year": (PROJECTED_YEARS, 4), "month": ("1,12", 2), "day": ("1,31", 2),
              "hour": ("0,23", 2)}  # fmt: skip
    parameters = {"projection.enabled": "true", "classification": "parquet"}
    for name, _type in PARTITION_KEYS:
        values, digits = ranges[name]
        parameters[f"projection.{name}.type"] = "integer"
        parameters[f"projection.{name}.range"] = values
        parameters[f"projection.{name}.digits"] = str(digits)
    template = "/".join(f"{name}=${{{name}}}" for name, _type in PARTITION_KEYS)
    parameters["storage.location.template"] = f"{location}{template}/"
    return parameters


def _columns(columns: Sequence[Column]) -> list[glue.CfnTable.ColumnProperty]:
    return [glue.CfnTable.ColumnProperty(name=name, type=type_) for name, type_ in columns]


class AnalyticsCatalog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        archive: s3.IBucket,
        results: s3.IBucket,
        key: kms.IKey,
        removal: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._removal = removal
        self.database_name = config.database_name
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description=f"Apartment energy readings and aggregates ({config.name})",
            ),
        )
        # The catalog is what makes the archive queryable: it stays with the data.
        self.database.apply_removal_policy(removal)
        self.raw_table = self._table(
            "RawReadings",
            name=RAW_TABLE,
            description="Kinesis records as the topic rule wrote them, by received_at",
            columns=RAW_COLUMNS,
            location=f"s3://{archive.bucket_name}/{RAW_PREFIX}",
        )
        self.interval_table = self._table(
            "IntervalAggregates",
            name=INTERVAL_TABLE,
            description="Per-device interval aggregates, by interval start (event time)",
            columns=INTERVAL_COLUMNS,
            location=f"s3://{archive.bucket_name}/{INTERVALS_PREFIX}",
        )

        self.workgroup_name = config.resource_prefix
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=self.workgroup_name,
            description="Queries over the energy archive",
            recursive_delete_option=config.removal_policy == "destroy",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results.bucket_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )

    def _table(
        self,
        construct_id: str,
        *,
        name: str,
        description: str,
        columns: Sequence[Column],
        location: str,
    ) -> glue.CfnTable:
        stack = cdk.Stack.of(self)
        table = glue.CfnTable(
            self,
            construct_id,
            catalog_id=stack.account,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=description,
                table_type="EXTERNAL_TABLE",
                parameters=partition_projection(location),
                partition_keys=_columns(PARTITION_KEYS),
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=_columns(columns),
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        table.node.add_dependency(self.database)
        table.apply_removal_policy(self._removal)
        return table
