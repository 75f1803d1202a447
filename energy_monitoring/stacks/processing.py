"""Processing: the batching Lambda on the stream, the hand-off queue, the processor Lambda."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from energy_runtime import contract

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.buckets import archive_bucket
from energy_monitoring.constructs.energy_function import EnergyFunction
from energy_monitoring.constructs.function_environment import function_environment
from energy_monitoring.constructs.grants import grant_prefix_writes
from energy_monitoring.constructs.queues import encrypted_queue
from energy_monitoring.constructs.retention import log_retention
from energy_monitoring.managed_layers import ManagedLayer
from energy_monitoring.stacks.storage import StorageResources

# What energy_runtime.store calls, and nothing more (no Scan, no DeleteItem, no streams).
PROCESSOR_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",  # the silence sweep's mark on a hot item (energy_runtime.silence)
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
class _Queues:
    handoff: sqs.Queue
    handoff_dead_letters: sqs.Queue
    stream_failures: sqs.Queue


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
        meter_group_name: str,
        termination_protection: bool,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Energy monitoring ({config.name}): batching and processor Lambdas",
            termination_protection=termination_protection,
        )
        self.config = config
        self.key = storage.key
        self.archive = archive_bucket(self, "ArchiveBucket", config=config)
        self.log_retention = log_retention(config.retention.log_retention_days)
        alert_topic = sns.Topic(
            self,
            "Alerts",
            display_name=f"Energy alerts ({config.name})",
            master_key=self.key,
            enforce_ssl=True,
        )
        queues = self._queues()
        batching = self._batching_function(stream, queues)
        processor = self._processor_function(storage, queues, alert_topic, meter_group_name)
        self._silence_sweep(processor)
        self.resources = ProcessingResources(
            batching=batching,
            processor=processor,
            handoff_queue=queues.handoff,
            handoff_dead_letters=queues.handoff_dead_letters,
            stream_failures=queues.stream_failures,
            alert_topic=alert_topic,
        )
        self._outputs()

    def _queues(self) -> _Queues:
        stream_failures = encrypted_queue(self, "StreamFailures", key=self.key)
        handoff_dead_letters = encrypted_queue(self, "HandoffDeadLetters", key=self.key)
        handoff = encrypted_queue(
            self,
            "Handoff",
            key=self.key,
            # AWS's guidance for SQS event sources: six times the function timeout.
            visibility_timeout=cdk.Duration.seconds(
                6 * self.config.functions.processor_timeout_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=handoff_dead_letters,
                max_receive_count=self.config.batching.handoff_max_receive_count,
            ),
        )
        return _Queues(
            handoff=handoff,
            handoff_dead_letters=handoff_dead_letters,
            stream_failures=stream_failures,
        )

    def _function(
        self,
        function: str,
        *,
        description: str,
        memory_mb: int,
        timeout_seconds: int,
        layers: tuple[ManagedLayer, ...],
        resources: dict[contract.Variable, str],
    ) -> EnergyFunction:
        return EnergyFunction(
            self,
            function.title(),
            config=self.config,
            service_name=contract.SERVICES[function],
            handler=contract.HANDLERS[function],
            description=description,
            memory_mb=memory_mb,
            timeout_seconds=timeout_seconds,
            layers=layers,
            environment=function_environment(function, self.config, resources),
            key=self.key,
            log_retention=self.log_retention,
        )

    def _batching_function(self, stream: kinesis.IStream, queues: _Queues) -> EnergyFunction:
        settings = self.config.batching
        batching = self._function(
            contract.BATCHING,
            description="Validates, quarantines and pre-aggregates meter readings",
            memory_mb=self.config.functions.batching_memory_mb,
            timeout_seconds=self.config.functions.batching_timeout_seconds,
            layers=(ManagedLayer.POWERTOOLS,),
            resources={
                contract.HANDOFF_QUEUE_URL: queues.handoff.queue_url,
                contract.ARCHIVE_BUCKET: self.archive.bucket_name,
            },
        )
        queues.handoff.grant_send_messages(batching.role)
        grant_prefix_writes(
            batching.role, bucket=self.archive, prefix=contract.QUARANTINE_PREFIX, key=self.key
        )
        batching.alias.add_event_source(
            sources.KinesisEventSource(
                stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=settings.batch_size,
                max_batching_window=cdk.Duration.seconds(settings.window_seconds),
                bisect_batch_on_error=True,
                retry_attempts=settings.retry_attempts,
                max_record_age=cdk.Duration.seconds(settings.max_record_age_seconds),
                parallelization_factor=settings.parallelization_factor,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(queues.stream_failures),
            )
        )
        return batching

    def _processor_function(
        self,
        storage: StorageResources,
        queues: _Queues,
        alert_topic: sns.ITopic,
        meter_group_name: str,
    ) -> EnergyFunction:
        settings = self.config.batching
        processor = self._function(
            contract.PROCESSOR,
            description="Applies aggregates to DynamoDB and S3 idempotently, raises alerts",
            memory_mb=self.config.functions.processor_memory_mb,
            timeout_seconds=self.config.functions.processor_timeout_seconds,
            layers=(ManagedLayer.POWERTOOLS, ManagedLayer.SDK_PANDAS),
            resources={
                contract.ARCHIVE_BUCKET: self.archive.bucket_name,
                contract.TABLE_NAME: storage.table.table_name,
                contract.ALERT_TOPIC_ARN: alert_topic.topic_arn,
                contract.METER_GROUP_NAME: meter_group_name,
            },
        )
        storage.table.grant(processor.role, *PROCESSOR_TABLE_ACTIONS)
        self.key.grant(processor.role, *TABLE_KEY_ACTIONS)
        # Hand-off messages that are not hand-offs at all are quarantined, not retried.
        for prefix in (contract.PROCESSED_PREFIX, contract.QUARANTINE_PREFIX):
            grant_prefix_writes(processor.role, bucket=self.archive, prefix=prefix, key=self.key)
        alert_topic.grant_publish(processor.role)
        # An alert names the meter's building and apartment (energy_runtime.places).
        processor.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iot:DescribeThing"],
                resources=[self.format_arn(service="iot", resource="thing", resource_name="*")],
            )
        )
        # The silence sweep lists the meters: the members of this environment's group.
        processor.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["iot:ListThingsInThingGroup"],
                resources=[
                    self.format_arn(
                        service="iot", resource="thinggroup", resource_name=meter_group_name
                    )
                ],
            )
        )
        processor.alias.add_event_source(
            sources.SqsEventSource(
                queues.handoff,
                batch_size=settings.handoff_batch_size,
                max_batching_window=cdk.Duration.seconds(settings.handoff_window_seconds),
                # Bounded: a backlog drains at this many invocations, never the account's
                # whole Lambda concurrency (docs/configuration.md has the drain time).
                max_concurrency=settings.handoff_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        return processor

    def _silence_sweep(self, processor: EnergyFunction) -> None:
        """A meter that stops sending raises nothing in the data path: a schedule invokes
        the processor to look for silent meters (energy_runtime.silence)."""
        events.Rule(
            self,
            "SilenceSweep",
            description="Invokes the processor to alert on meters that stopped reporting",
            schedule=events.Schedule.rate(
                cdk.Duration.minutes(self.config.schedules.silence_sweep_minutes)
            ),
            targets=[
                targets.LambdaFunction(
                    processor.alias,
                    event=events.RuleTargetInput.from_object(dict(contract.SILENCE_SWEEP_EVENT)),
                    # A sweep that fails is superseded by the next one: no retries, no pile-up.
                    retry_attempts=0,
                    max_event_age=cdk.Duration.minutes(self.config.schedules.silence_sweep_minutes),
                )
            ],
        )

    def _outputs(self) -> None:
        resources = self.resources
        outputs = {
            "AlertTopicArn": (
                resources.alert_topic.topic_arn,
                "SNS topic of high-usage/unusual-usage alerts",
            ),
            contract.Output.BATCHING_FUNCTION_NAME: (
                resources.batching.function.function_name,
                "batching Lambda",
            ),
            contract.Output.PROCESSOR_FUNCTION_NAME: (
                resources.processor.function.function_name,
                "processor Lambda",
            ),
            contract.Output.HANDOFF_QUEUE_URL: (
                resources.handoff_queue.queue_url,
                "hand-off queue to the processor",
            ),
            contract.Output.HANDOFF_DEAD_LETTER_QUEUE_URL: (
                resources.handoff_dead_letters.queue_url,
                "hand-off messages the processor failed on (energy-monitoring replay)",
            ),
            contract.Output.STREAM_FAILURE_QUEUE_URL: (
                resources.stream_failures.queue_url,
                "Kinesis batches that exhausted their retries",
            ),
        }
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)
