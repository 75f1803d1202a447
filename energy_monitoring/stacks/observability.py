"""Observability: dashboard, alarms to an encrypted ops topic, Device Defender.

The ops topic's policy replaces SNS's default policy, so it must allow CloudWatch (which
publishes alarm actions as the service principal `cloudwatch.amazonaws.com`) explicitly,
and the topic's key must let that principal use it: without both, every alarm action
fails and no page reaches anyone. tests/infra/test_alarm_delivery.py evaluates both
policies for every alarm action.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from energy_runtime import contract
from energy_runtime.contract import BATCHING, PROCESSOR
from energy_runtime.contract import QuarantineReason as Reason

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.buckets import archive_bucket
from energy_monitoring.constructs.energy_function import EnergyFunction
from energy_monitoring.constructs.fleet_security import FleetSecurity
from energy_monitoring.constructs.keys import environment_key
from energy_monitoring.constructs.replication import ReplicaTarget, replicated_prefixes, rule_id
from energy_monitoring.stacks.ingest import IngestResources
from energy_monitoring.stacks.processing import ProcessingResources
from energy_monitoring.stacks.storage import StorageResources

FIVE_MINUTES = cdk.Duration.minutes(5)
GE = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


def runtime_metric(
    name: str, function: str, *, period: cdk.Duration = FIVE_MINUTES, label: str | None = None
) -> cloudwatch.Metric:
    """A metric `function` emits (EMF), by the names and dimensions of the contract."""
    return cloudwatch.Metric(
        namespace=contract.METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={contract.SERVICE_DIMENSION: contract.SERVICES[function]},
        statistic="Sum",
        period=period,
        label=label,
    )


def reason_metric(reason: str, function: str) -> cloudwatch.Metric:
    """Readings `function` quarantined for `reason` (QuarantinedByReason's dimensions)."""
    return cloudwatch.Metric(
        namespace=contract.METRICS_NAMESPACE,
        metric_name=contract.QUARANTINED_BY_REASON,
        dimensions_map={
            contract.SERVICE_DIMENSION: contract.SERVICES[function],
            contract.REASON_DIMENSION: reason,
        },
        statistic="Sum",
        period=FIVE_MINUTES,
    )


def iot_metric(name: str, *, protocol: str = "MQTT") -> cloudwatch.Metric:
    """An AWS IoT message-broker metric (account-wide: IoT has no per-thing-type metrics;
    the meters speak MQTT)."""
    return cloudwatch.Metric(
        namespace="AWS/IoT",
        metric_name=name,
        dimensions_map={"Protocol": protocol},
        statistic="Sum",
        period=FIVE_MINUTES,
    )


def filled_sum(label: str, metrics: dict[str, cloudwatch.IMetric]) -> cloudwatch.MathExpression:
    """The sum of the metrics over 5 minutes, a missing one counting as 0 (an alarm on a
    sum with a gap would otherwise see no data at all)."""
    return cloudwatch.MathExpression(
        expression=" + ".join(f"FILL({key}, 0)" for key in metrics),
        label=label,
        period=FIVE_MINUTES,
        using_metrics=metrics,
    )


def iot_sum(label: str, *names: str) -> cloudwatch.MathExpression:
    return filled_sum(label, {f"m{n}": iot_metric(name) for n, name in enumerate(names)})


def rule_action_metric(name: str, rule_name: str, action_type: str) -> cloudwatch.Metric:
    """An IoT rule action metric: IoT publishes these per (RuleName, ActionType) only, so
    a metric naming the rule alone matches no data."""
    return cloudwatch.Metric(
        namespace="AWS/IoT",
        metric_name=name,
        dimensions_map={"RuleName": rule_name, "ActionType": action_type},
        statistic="Sum",
        period=FIVE_MINUTES,
    )


@dataclass(frozen=True, kw_only=True)
class _Signal:
    """One row of the dashboard and, when it has a threshold, one alarm."""

    alarm_id: str
    description: str
    metric: cloudwatch.IMetric
    threshold: float
    comparison: cloudwatch.ComparisonOperator = GE
    missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING
    evaluation_periods: int = 1


class ObservabilityStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: StorageResources,
        ingest: IngestResources,
        processing: ProcessingResources,
        termination_protection: bool,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Energy monitoring ({config.name}): dashboard, alarms, Device Defender",
            termination_protection=termination_protection,
        )
        ops_key = environment_key(
            self,
            "OpsKey",
            config=config,
            purpose="ops",
            description=f"Encrypts the energy monitoring ops topic of {config.name}",
        )
        # `.` never occurs in a stage name, so `energy-dev.*` cannot admit `energy-dev-x`'s.
        self.alarm_name_prefix = f"{config.resource_prefix}."
        # Alarms of this environment, by the names _alarm gives them.
        alarm_arns = self.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=f"{self.alarm_name_prefix}*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        from_this_environments_alarms = {
            "StringEquals": {"aws:SourceAccount": self.account},
            "ArnLike": {"aws:SourceArn": alarm_arns},
        }
        # CloudWatch alarms publish to the encrypted topic with the service's identity.
        ops_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_this_environments_alarms,
            )
        )
        self.ops_topic = sns.Topic(
            self,
            "OpsTopic",
            display_name=f"Energy monitoring operations ({config.name})",
            master_key=ops_key,
            enforce_ssl=True,
        )
        self.ops_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisEnvironmentsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.ops_topic.topic_arn],
                conditions=from_this_environments_alarms,
            )
        )
        self.ops_topic.add_subscription(subscriptions.EmailSubscription(config.alarms.ops_email))

        self.archive_name = archive_bucket(self, "ArchiveForMetrics", config=config).bucket_name
        signals = self._signals(config, storage, ingest, processing)
        self.alarms = [self._alarm(signal) for signal in signals]
        dashboard = self._dashboard(config, storage, ingest, processing, signals)
        self.fleet_security = FleetSecurity(
            self,
            "DeviceDefender",
            config=config,
            topic=self.ops_topic,
            thing_group_arn=self.format_arn(
                service="iot", resource="thinggroup", resource_name=ingest.thing_group_name
            ),
        )

        outputs = {
            "OpsTopicArn": (self.ops_topic.topic_arn, "SNS topic of operational alarms"),
            "DashboardName": (dashboard.dashboard_name, "CloudWatch dashboard of the pipeline"),
        }
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)

    def _alarm(self, signal: _Signal) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            signal.alarm_id,
            # Named, not generated: the name is what a page shows, and the ops topic's
            # policy admits alarms by this environment's name prefix.
            alarm_name=f"{self.alarm_name_prefix}{signal.alarm_id}",
            alarm_description=signal.description,
            metric=signal.metric,
            threshold=signal.threshold,
            comparison_operator=signal.comparison,
            evaluation_periods=signal.evaluation_periods,
            treat_missing_data=signal.missing,
        )
        alarm.add_alarm_action(actions.SnsAction(self.ops_topic))
        alarm.add_ok_action(actions.SnsAction(self.ops_topic))
        return alarm

    def _signals(
        self,
        config: EnvironmentConfig,
        storage: StorageResources,
        ingest: IngestResources,
        processing: ProcessingResources,
    ) -> list[_Signal]:
        alarms = config.alarms
        iterator_age_ms = alarms.iterator_age_minutes * 60 * 1000
        received = runtime_metric(contract.READINGS_RECEIVED, BATCHING)
        quarantined = runtime_metric(contract.READINGS_QUARANTINED, BATCHING)
        silent_period = cdk.Duration.minutes(alarms.silent_minutes)
        signals = [
            _Signal(
                alarm_id="TopicRuleFailures",
                description="The IoT topic rule failed to deliver messages to Kinesis",
                metric=rule_action_metric("Failure", ingest.rule_name, "Kinesis"),
                threshold=1,
            ),
            _Signal(
                alarm_id="TopicRuleErrorActionFailures",
                # The error action is the last stop for a message the rule could not deliver:
                # if it fails too, that message is gone, so one failure is worth a page.
                description="The IoT topic rule's error action (S3 iot-errors/) failed: "
                "messages were lost",
                metric=rule_action_metric("ErrorActionFailure", ingest.rule_name, "S3"),
                threshold=1,
            ),
            _Signal(
                alarm_id="StreamIteratorAge",
                description="Records wait too long in the stream (milliseconds)",
                metric=ingest.stream.metric_get_records_iterator_age_milliseconds(
                    statistic="Maximum", period=FIVE_MINUTES
                ),
                threshold=iterator_age_ms,
                comparison=GT,
            ),
            _Signal(
                alarm_id="BatchingIteratorAge",
                description="The batching Lambda lags behind the stream (milliseconds)",
                metric=processing.batching.function.metric(
                    "IteratorAge", statistic="Maximum", period=FIVE_MINUTES
                ),
                threshold=iterator_age_ms,
                comparison=GT,
            ),
            _Signal(
                alarm_id="StreamWriteThrottled",
                description="The topic rule's writes exceeded the stream's shards (add "
                "shards: stream.shard_count)",
                metric=ingest.stream.metric_write_provisioned_throughput_exceeded(
                    statistic="Sum", period=FIVE_MINUTES
                ),
                threshold=1,
            ),
            _Signal(
                alarm_id="StreamReadThrottled",
                description="The stream's readers (batching Lambda, Firehose) exceeded its "
                "shards' read throughput",
                metric=ingest.stream.metric_read_provisioned_throughput_exceeded(
                    statistic="Sum", period=FIVE_MINUTES
                ),
                threshold=1,
            ),
            _Signal(
                alarm_id="IotAuthErrors",
                description="MQTT connects or publishes refused by authorization (revoked or "
                "unknown certificate, a policy mismatch)",
                metric=iot_sum("Auth errors", "Connect.AuthError", "PublishIn.AuthError"),
                threshold=alarms.iot_auth_errors,
            ),
            _Signal(
                alarm_id="IotClientErrors",
                description="MQTT connects or publishes IoT refused as malformed",
                metric=iot_sum("Client errors", "Connect.ClientError", "PublishIn.ClientError"),
                threshold=alarms.iot_client_errors,
            ),
            _Signal(
                alarm_id="IotThrottles",
                description="MQTT connects or publishes throttled by the account's IoT quotas",
                metric=iot_sum("Throttled", "Connect.Throttle", "PublishIn.Throttle"),
                threshold=alarms.iot_throttles,
            ),
            *self._function_signals("Batching", processing.batching, config),
            *self._function_signals("Processor", processing.processor, config),
            _Signal(
                alarm_id="HandoffDeadLetters",
                description="Hand-off messages the processor could not apply",
                metric=processing.handoff_dead_letters.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=FIVE_MINUTES
                ),
                threshold=1,
            ),
            _Signal(
                alarm_id="StreamFailures",
                description="Kinesis batches that exhausted their retries",
                metric=processing.stream_failures.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=FIVE_MINUTES
                ),
                threshold=1,
            ),
            _Signal(
                alarm_id="TableThrottles",
                description="DynamoDB throttled reads or writes",
                metric=filled_sum(
                    "Throttle events",
                    {
                        "reads": storage.table.metric(
                            "ReadThrottleEvents", statistic="Sum", period=FIVE_MINUTES
                        ),
                        "writes": storage.table.metric(
                            "WriteThrottleEvents", statistic="Sum", period=FIVE_MINUTES
                        ),
                    },
                ),
                threshold=1,
            ),
            _Signal(
                alarm_id="RawArchiveFreshness",
                description="Firehose has not delivered the oldest raw record (seconds)",
                metric=cloudwatch.Metric(
                    namespace="AWS/Firehose",
                    metric_name="DeliveryToS3.DataFreshness",
                    dimensions_map={
                        "DeliveryStreamName": ingest.delivery_stream.delivery_stream_name
                    },
                    statistic="Maximum",
                    period=FIVE_MINUTES,
                ),
                threshold=config.ingest.firehose_buffer_seconds + 900,
                comparison=GT,
            ),
            *self._replication_signals(config, storage),
            _Signal(
                alarm_id="QuarantineRate",
                description="Share of received readings quarantined (percent)",
                metric=cloudwatch.MathExpression(
                    expression="IF(received > 0, 100 * quarantined / received, 0)",
                    label="Quarantined %",
                    period=FIVE_MINUTES,
                    using_metrics={"received": received, "quarantined": quarantined},
                ),
                threshold=alarms.quarantine_percent,
                comparison=GT,
                evaluation_periods=3,
            ),
            _Signal(
                alarm_id="RateLimitedReadings",
                # A meter sending far more than its cadence, or more than a batch's budget
                # lets it parse, is broken or hostile: find it in the quarantine's
                # rate_limited and over_text_budget lines (device_id).
                description="Readings beyond the per-interval cap or a batch's text budget "
                "were quarantined (rate_limited, over_text_budget)",
                metric=filled_sum(
                    "Rate-limited readings",
                    {
                        "batching": reason_metric(Reason.RATE_LIMITED, BATCHING),
                        "processor": reason_metric(Reason.RATE_LIMITED, PROCESSOR),
                        "budget": reason_metric(Reason.TEXT_BUDGET, BATCHING),
                    },
                ),
                threshold=1,
            ),
            _Signal(
                alarm_id="UnwritableReadings",
                description="DynamoDB refused a device's readings; the processor set them "
                "aside in the quarantine (unwritable)",
                metric=reason_metric(Reason.UNWRITABLE, PROCESSOR),
                threshold=1,
            ),
            _Signal(
                alarm_id="NoReadingsAccepted",
                description="No reading was accepted: meters or ingest are silent",
                metric=runtime_metric(contract.READINGS_ACCEPTED, BATCHING, period=silent_period),
                threshold=1,
                comparison=LT,
                missing=cloudwatch.TreatMissingData.BREACHING,
            ),
            _Signal(
                alarm_id="NoAggregatesWritten",
                description="The processor wrote no aggregates: the hand-off is stuck",
                metric=runtime_metric(contract.AGGREGATES_WRITTEN, PROCESSOR, period=silent_period),
                threshold=1,
                comparison=LT,
                missing=cloudwatch.TreatMissingData.BREACHING,
            ),
        ]
        return signals

    def _replication_signals(
        self, config: EnvironmentConfig, storage: StorageResources
    ) -> list[_Signal]:
        """The archive's disaster-recovery copy (dr.replica_region): S3 publishes failed
        replications in the source region, so they alarm here. Latency and what is pending
        S3 publishes in the replica's region, where no alarm of this stack can read them:
        the dashboard draws them from there."""
        if storage.replica is None:
            return []
        replica = storage.replica
        failed: dict[str, cloudwatch.IMetric] = {
            f"m{n}": self._replication_metric(replica, "OperationsFailedReplication", prefix)
            for n, prefix in enumerate(replicated_prefixes(config))
        }
        return [
            _Signal(
                alarm_id="ReplicationFailures",
                description=f"Archive objects failed to replicate to {replica.region} "
                "(the replication role or the replica key refused them)",
                metric=filled_sum("Failed replications", failed),
                threshold=1,
            )
        ]

    def _replication_metric(
        self, replica: ReplicaTarget, name: str, prefix: str, *, statistic: str = "Sum",
        region: str | None = None,
    ) -> cloudwatch.Metric:  # fmt: skip
        return cloudwatch.Metric(
            namespace="AWS/S3",
            metric_name=name,
            dimensions_map={
                "SourceBucket": self.archive_name,
                "DestinationBucket": replica.bucket.bucket_name,
                "RuleId": rule_id(prefix),
            },
            statistic=statistic,
            period=FIVE_MINUTES,
            label=f"{name} {prefix}",
            region=region,
        )

    @staticmethod
    def _function_signals(
        label: str, handler: EnergyFunction, config: EnvironmentConfig
    ) -> list[_Signal]:
        function = handler.function
        timeout_seconds = (
            config.functions.batching_timeout_seconds
            if label == "Batching"
            else config.functions.processor_timeout_seconds
        )
        return [
            _Signal(
                alarm_id=f"{label}Errors",
                description=f"The {label.lower()} Lambda failed invocations",
                metric=function.metric_errors(period=FIVE_MINUTES),
                threshold=1,
            ),
            _Signal(
                alarm_id=f"{label}Throttles",
                description=f"The {label.lower()} Lambda was throttled",
                metric=function.metric_throttles(period=FIVE_MINUTES),
                threshold=1,
            ),
            _Signal(
                alarm_id=f"{label}Duration",
                description=f"The {label.lower()} Lambda nears its timeout (p99, milliseconds)",
                metric=function.metric_duration(statistic="p99", period=FIVE_MINUTES),
                threshold=timeout_seconds * 1000 * 0.8,
                comparison=GT,
                evaluation_periods=3,
            ),
        ]

    def _dashboard(
        self,
        config: EnvironmentConfig,
        storage: StorageResources,
        ingest: IngestResources,
        processing: ProcessingResources,
        signals: list[_Signal],
    ) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=cdk.Duration.hours(6))
        messages_in = cloudwatch.Metric(
            namespace="AWS/IoT",
            metric_name="TopicMatch",
            dimensions_map={"RuleName": ingest.rule_name},
            statistic="Sum",
            period=FIVE_MINUTES,
            label="Messages matched by the rule",
        )
        by_reason = cloudwatch.MathExpression(
            expression=(
                f"SEARCH('{{{contract.METRICS_NAMESPACE},{contract.SERVICE_DIMENSION},"
                f"{contract.REASON_DIMENSION}}} "
                f"MetricName=\"{contract.QUARANTINED_BY_REASON}\"', 'Sum', 300)"
            ),
            label="Quarantined by reason",
            period=FIVE_MINUTES,
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Messages in",
                left=[messages_in, ingest.stream.metric_incoming_records(period=FIVE_MINUTES)],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Readings",
                left=[
                    runtime_metric(contract.READINGS_RECEIVED, BATCHING),
                    runtime_metric(contract.READINGS_ACCEPTED, BATCHING),
                    runtime_metric(contract.READINGS_QUARANTINED, BATCHING),
                    # Hand-off messages the processor could not read are quarantined too.
                    runtime_metric(
                        contract.READINGS_QUARANTINED,
                        PROCESSOR,
                        label=f"{contract.READINGS_QUARANTINED} (hand-off messages)",
                    ),
                ],
                right=[by_reason],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Aggregates and alerts",
                left=[
                    runtime_metric(contract.AGGREGATES_WRITTEN, PROCESSOR),
                    runtime_metric(contract.ALERTS_SENT, PROCESSOR),
                ],
                # Found by the silence sweep (energy_runtime.silence), each sweep.
                right=[
                    runtime_metric(contract.METERS_SILENT, PROCESSOR).with_(statistic="Maximum")
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(*self._capacity_widgets(config, storage, ingest))
        # One graph per signal, alarm threshold drawn in.
        widgets = [
            cloudwatch.GraphWidget(
                title=signal.description,
                left=[signal.metric],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=signal.threshold, label="alarm")
                ],
                width=8,
            )
            for signal in signals
        ]
        for start in range(0, len(widgets), 3):
            dashboard.add_widgets(*widgets[start : start + 3])
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[*self.alarms, processing.batching.rollback_alarm,
                        processing.processor.rollback_alarm],
                width=24,
            )
        )  # fmt: skip
        if ingest.iot_log_group_name:
            dashboard.add_widgets(
                cloudwatch.LogQueryWidget(
                    title="IoT Core errors (connections, authorization, rule actions)",
                    log_group_names=[ingest.iot_log_group_name],
                    query_lines=[
                        "fields @timestamp, eventType, clientId, status, reason, details",
                        'filter logLevel = "ERROR" or status = "Failure"',
                        "sort @timestamp desc",
                        "limit 50",
                    ],
                    width=24,
                )
            )
        return dashboard

    def _capacity_widgets(
        self, config: EnvironmentConfig, storage: StorageResources, ingest: IngestResources
    ) -> list[cloudwatch.IWidget]:
        """When to add shards, and what the table and the archive hold."""
        period_s = int(FIVE_MINUTES.to_seconds())
        capacity: dict[str, list[cloudwatch.HorizontalAnnotation]] = {"records": [], "bytes": []}
        if config.stream.capacity_mode == "provisioned":
            shards = config.stream.shard_count
            capacity["records"].append(
                cloudwatch.HorizontalAnnotation(
                    value=shards * 1000 * period_s, label=f"{shards} shard(s): 1,000 records/s each"
                )
            )
            capacity["bytes"].append(
                cloudwatch.HorizontalAnnotation(
                    value=shards * 1024 * 1024 * period_s, label=f"{shards} shard(s): 1 MB/s each"
                )
            )
        archive = self.archive_name
        day = cdk.Duration.days(1)

        def stored(metric: str, storage_type: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/S3",
                metric_name=metric,
                dimensions_map={"BucketName": archive, "StorageType": storage_type},
                statistic="Average",
                period=day,
                label=f"{metric} {storage_type}",
            )

        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Stream: records in per 5 minutes, against the shards' capacity",
                left=[ingest.stream.metric_incoming_records(statistic="Sum", period=FIVE_MINUTES)],
                left_annotations=capacity["records"],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Stream: bytes in per 5 minutes, against the shards' capacity",
                left=[ingest.stream.metric_incoming_bytes(statistic="Sum", period=FIVE_MINUTES)],
                left_annotations=capacity["bytes"],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Table: consumed read and write units",
                left=[
                    storage.table.metric_consumed_read_capacity_units(period=FIVE_MINUTES),
                    storage.table.metric_consumed_write_capacity_units(period=FIVE_MINUTES),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Archive: bytes per storage class (daily)",
                left=[
                    stored("BucketSizeBytes", kind)
                    for kind in ("StandardStorage", "StandardIAStorage", "GlacierStorage")
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Archive: objects (daily)",
                left=[stored("NumberOfObjects", "AllStorageTypes")],
                width=12,
            ),
        ]
        if storage.replica is not None:
            replica = storage.replica

            def from_replica_region(name: str) -> list[cloudwatch.IMetric]:
                return [
                    self._replication_metric(
                        replica, name, prefix, statistic="Maximum", region=replica.region
                    )
                    for prefix in replicated_prefixes(config)
                ]

            widgets += [
                cloudwatch.GraphWidget(
                    title=f"Archive copy in {replica.region}: how far behind (seconds)",
                    left=from_replica_region("ReplicationLatency"),
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title=f"Archive copy in {replica.region}: bytes and operations pending",
                    left=from_replica_region("BytesPendingReplication"),
                    right=from_replica_region("OperationsPendingReplication"),
                    width=12,
                ),
            ]
        return widgets
