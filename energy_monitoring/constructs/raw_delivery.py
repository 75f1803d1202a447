"""Firehose from the stream into raw/ as Parquet, partitioned by the rule's receive time."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime import contract
from energy_runtime.contract import PARTITION_KEYS

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.grants import role_policy
from energy_monitoring.constructs.retention import removal_policy

# received_at is epoch milliseconds (set by the topic rule); partitions are UTC hours.
_FORMATS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H"}
# Firehose joins these into one jq 1.6 object, {"year": <query>, ...}; jq's grammar takes
# only a term or a pipe as an object value, so arithmetic must be parenthesized.
PARTITION_QUERIES = {
    name: f'(.received_at / 1000 | floor | strftime("{_FORMATS[name]}"))'
    for name, _type in PARTITION_KEYS
}
DATA_PREFIX = contract.RAW_PREFIX + "".join(
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
            removal_policy=removal_policy(config),
        )
        role = self._destination_role(
            archive=archive, key=key, raw_table=raw_table, log_group=log_group
        )
        destination = firehose.S3Bucket(
            archive,
            # The L2 destination would grant read-write on the whole bucket (deletes
            # included): it gets a view of the role that ignores grants, and the role
            # carries only the policy below.
            role=role.without_policy_updates(),
            data_output_prefix=DATA_PREFIX,
            error_output_prefix=contract.FIREHOSE_ERRORS_PREFIX + "!{firehose:error-output-type}/",
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
        # The L2's log stream is retained by default: it follows the environment too.
        for child in log_group.node.children:
            if isinstance(child, logs.LogStream):
                child.apply_removal_policy(removal_policy(config))
        # Firehose validates the destination role when the stream is created.
        cfn_stream = self.delivery_stream.node.default_child
        assert cfn_stream is not None
        cfn_stream.node.add_dependency(role_policy(role))

    def _destination_role(
        self,
        *,
        archive: s3.IBucket,
        key: kms.IKey,
        raw_table: glue.CfnTable,
        log_group: logs.ILogGroup,
    ) -> iam.Role:
        """What Firehose's S3 destination documentation lists, on the two prefixes it writes."""
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "DestinationRole",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"),
            description="Lets Firehose write raw/ Parquet and firehose-errors/ to the archive",
        )
        database = raw_table.database_name
        table_path = f"{database}/{raw_table.ref}"
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[archive.bucket_arn],
            ),
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                resources=[
                    archive.arn_for_objects(f"{prefix}*")
                    for prefix in (contract.RAW_PREFIX, contract.FIREHOSE_ERRORS_PREFIX)
                ],
            ),
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
            # Record format conversion reads the raw table's schema.
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=database),
                    stack.format_arn(service="glue", resource="table", resource_name=table_path),
                ],
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        return role
