"""Firehose from the stream into raw/ as Parquet, partitioned by the rule's receive time."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime.schema import PARTITION_KEYS, RAW_PREFIX

from energy_monitoring.config import EnvironmentConfig

ERROR_PREFIX = "firehose-errors/"
# received_at is epoch milliseconds (set by the topic rule); partitions are UTC hours.
_FORMATS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H"}
# Firehose joins these into one jq 1.6 object, {"year": <query>, ...}; jq's grammar takes
# only a term or a pipe as an object value, so arithmetic must be parenthesized.
PARTITION_QUERIES = {
    name: f'(.received_at / 1000 | floor | strftime("{_FORMATS[name]}"))'
    for name, _type in PARTITION_KEYS
}
DATA_PREFIX = RAW_PREFIX + "".join(
    f"{name}=!{{partitionKeyFromQuery:{name}}}/" for name, _type in PARTITION_KEYS
)


class RawArchiveDelivery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        stream: kinesis.IStream,
        archive: s3.IBucket,
        key: kms.IKey,
        raw_table: glue.CfnTable,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        destination = firehose.S3Bucket(
            archive,
            data_output_prefix=DATA_PREFIX,
            error_output_prefix=ERROR_PREFIX + "!{firehose:error-output-type}/",
            buffering_interval=cdk.Duration.seconds(config.ingest.firehose_buffer_seconds),
            buffering_size=cdk.Size.mebibytes(config.ingest.firehose_buffer_mb),
            encryption_key=key,
            logging_config=firehose.EnableLogging(log_group),
            dynamic_partitioning=firehose.DynamicPartitioningProps(enabled=True),
            processors=[firehose.MetadataExtractionProcessor.jq16(PARTITION_QUERIES)],
            data_format_conversion=firehose.DataFormatConversionProps(
                schema_configuration=firehose.SchemaConfiguration.from_cfn_table(raw_table),
                input_format=firehose.InputFormat.OPENX_JSON,
                output_format=firehose.OutputFormat.PARQUET,
            ),
        )
        self.delivery_stream = firehose.DeliveryStream(
            self,
            "DeliveryStream",
            source=firehose.KinesisStreamSource(stream),
            destination=destination,
        )
