"""Processing: the batching Lambda on the stream, the hand-off queue, the processor Lambda."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from energy_runtime.schema import QUARANTINE_PREFIX

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.archive import PROCESSED_PREFIX, archive_bucket
from energy_monitoring.constructs.energy_function import EnergyFunction
from energy_monitoring.constructs.grants import grant_prefix_writes
from energy_monitoring.constructs.queues import encrypted_queue
from energy_monitoring.constructs.retention import log_retention
from energy_monitoring.managed_layers import ManagedLayer
from energy_monitoring.stacks.storage import StorageResources

BATCHING_SERVICE = "energy-batching"
PROCESSOR_SERVICE = "energy-processor"
# What energy_runtime.store calls, and nothing more (no Scan, no DeleteItem, no streams).
PROCESSOR_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
)
# A customer-managed table key is used on the caller's behalf: what DynamoDB documents.
TABLE_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)


@dataclass(frozen=True, kw_only=True)
class ProcessingResources:
    batching: EnergyFunction
    processor: EnergyFunction
    handoff_queue: sqs.IQueue
    handoff_dead_letters: sqs.IQueue
    stream_failures: sqs.IQueue
    alert_topic: sns.ITopic


class ProcessingStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageResources,
        stream: kinesis.IStream,
        termination_protection: bool,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Energy monitoring ({config.name}): batching and processor Lambdas",
            termination_protection=termination_protection,
        )
        key = storage.key
        archive = archive_bucket(self, "ArchiveBucket", config=config)
        batching_settings = config.batching
        retention = log_retention(config.retention.log_retention_days)

        alert_topic = sns.Topic(
            self,
            "Alerts",
            display_name=f"Energy alerts ({config.name})",
            master_key=key,
            enforce_ssl=True,
        )
        # Kinesis batches that exhaust their retries (or age out) are recorded here.
        stream_failures = encrypted_queue(self, "StreamFailures", key=key)
        handoff_dead_letters = encrypted_queue(self, "HandoffDeadLetters", key=key)
        handoff_queue = encrypted_queue(
            self,
            "Handoff",
            key=key,
            # AWS's guidance for SQS event sources: six times the function timeout.
            visibility_timeout=cdk.Duration.seconds(6 * config.functions.processor_timeout_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=handoff_dead_letters,
                max_receive_count=batching_settings.handoff_max_receive_count,
            ),
        )

        interval = str(config.data.interval_minutes)
        batching = EnergyFunction(
            self,
            "Batching",
            config=config,
            service_name=BATCHING_SERVICE,
            handler="energy_runtime.batching.handler",
            description="Validates, quarantines and pre-aggregates meter readings",
            memory_mb=config.functions.batching_memory_mb,
            timeout_seconds=config.functions.batching_timeout_seconds,
            layers=(ManagedLayer.POWERTOOLS,),
            environment={
                "HANDOFF_QUEUE_URL": handoff_queue.queue_url,
                "ARCHIVE_BUCKET": archive.bucket_name,
                "QUARANTINE_PREFIX": QUARANTINE_PREFIX,
                "INTERVAL_MINUTES": interval,
                "MAX_PAYLOAD_BYTES": str(config.data.max_payload_bytes),
            },
            key=key,
            log_retention=retention,
        )
        handoff_queue.grant_send_messages(batching.role)
        grant_prefix_writes(batching.role, bucket=archive, prefix=QUARANTINE_PREFIX, key=key)
        batching.alias.add_event_source(
            sources.KinesisEventSource(
                stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=batching_settings.batch_size,
                max_batching_window=cdk.Duration.seconds(batching_settings.window_seconds),
                bisect_batch_on_error=True,
                retry_attempts=batching_settings.retry_attempts,
                max_record_age=cdk.Duration.seconds(batching_settings.max_record_age_seconds),
                parallelization_factor=batching_settings.parallelization_factor,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(stream_failures),
            )
        )

        processor = EnergyFunction(
            self,
            "Processor",
            config=config,
            service_name=PROCESSOR_SERVICE,
            handler="energy_runtime.processor.handler",
            description="Applies aggregates to DynamoDB and S3 idempotently, raises alerts",
            memory_mb=config.functions.processor_memory_mb,
            timeout_seconds=config.functions.processor_timeout_seconds,
            layers=(ManagedLayer.POWERTOOLS, ManagedLayer.SDK_PANDAS),
            environment={
                "ARCHIVE_BUCKET": archive.bucket_name,
                "INTERVAL_MINUTES": interval,
                "TABLE_NAME": storage.table.table_name,
                "PROCESSED_PREFIX": PROCESSED_PREFIX,
                "QUARANTINE_PREFIX": QUARANTINE_PREFIX,
                "ALERT_TOPIC_ARN": alert_topic.topic_arn,
                "HIGH_USAGE_THRESHOLD_WH": _number(config.data.high_usage_threshold_wh),
                "ANOMALY_FACTOR": _number(config.data.anomaly_factor),
                "ANOMALY_MIN_WH": _number(config.data.anomaly_min_wh),
                "INTERVAL_TTL_DAYS": str(config.data.interval_ttl_days),
            },
            key=key,
            log_retention=retention,
        )
        storage.table.grant(processor.role, *PROCESSOR_TABLE_ACTIONS)
        key.grant(processor.role, *TABLE_KEY_ACTIONS)
        grant_prefix_writes(processor.role, bucket=archive, prefix=PROCESSED_PREFIX, key=key)
        # Hand-off messages that are not hand-offs at all are quarantined, not retried.
        grant_prefix_writes(processor.role, bucket=archive, prefix=QUARANTINE_PREFIX, key=key)
        alert_topic.grant_publish(processor.role)
        processor.alias.add_event_source(
            sources.SqsEventSource(
                handoff_queue,
                batch_size=batching_settings.handoff_batch_size,
                max_batching_window=cdk.Duration.seconds(batching_settings.handoff_window_seconds),
                # Bounded: a backlog drains at this many invocations, never the account's
                # whole Lambda concurrency (docs/configuration.md has the drain time).
                max_concurrency=batching_settings.handoff_max_concurrency,
                report_batch_item_failures=True,
            )
        )

        self.resources = ProcessingResources(
            batching=batching,
            processor=processor,
            handoff_queue=handoff_queue,
            handoff_dead_letters=handoff_dead_letters,
            stream_failures=stream_failures,
            alert_topic=alert_topic,
        )
        outputs = {
            "AlertTopicArn": (alert_topic.topic_arn, "SNS topic of high-usage/anomaly alerts"),
            "BatchingFunctionName": (batching.function.function_name, "batching Lambda"),
            "ProcessorFunctionName": (processor.function.function_name, "processor Lambda"),
            "HandoffQueueUrl": (handoff_queue.queue_url, "hand-off queue to the processor"),
            "StreamFailureQueueUrl": (
                stream_failures.queue_url,
                "Kinesis batches that exhausted their retries",
            ),
        }
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)


def _number(value: float) -> str:
    """2000.0 -> '2000', 12.5 -> '12.5' (what a person would write in the variable)."""
    return str(int(value)) if value == int(value) else str(value)
