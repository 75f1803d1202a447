"""Creates one environment's resources in the moto server, from its synthesized templates.

Streams, tables, buckets, queues, topics and KMS keys are created as the templates declare
them (names, key schema, TTL attribute, shard count, queue redrive and visibility, KMS
encryption). Lambda functions are not created in moto: their handler, timeout and resolved
environment are read for the local triggers, together with the event source mappings,
the topic rule's SQL and Kinesis action, and the Firehose buffering.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from energy_runtime import contract

from devkit.runner.templates import (
    ACCOUNT,
    REGION,
    Physical,
    Resolver,
    Stack,
    Stage,
    UnresolvableError,
)

ON_DEMAND_LOCAL_SHARDS = 2  # an on-demand stream starts with 4 shards in AWS; 2 suffice here
CREATED_TYPES = (
    "AWS::KMS::Key",
    "AWS::Kinesis::Stream",
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    # What `devices register` needs of an environment (against `local up`).
    "AWS::IoT::Policy",
    "AWS::IoT::ThingType",
    "AWS::IoT::ThingGroup",
)


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]


@dataclass
class MappingSpec:
    function: str  # "batching" or "processor"
    source: str  # "kinesis" or "sqs"
    source_arn: str
    source_name: str  # stream name or queue URL
    batch_size: int
    window_s: float
    starting_position: str = "TRIM_HORIZON"
    bisect: bool = False
    max_retry_attempts: int = -1
    max_record_age_s: int = -1
    report_item_failures: bool = False
    on_failure_arn: str = ""
    on_failure_url: str = ""
    parallelization_factor: int = 1


@dataclass
class ScheduleSpec:
    """An EventBridge schedule that invokes one of the functions with a fixed input."""

    function: str  # "batching" or "processor"
    rate_s: int  # simulated seconds between invocations
    input: dict[str, Any]


@dataclass
class Deployment:
    """Everything the local processes need, resolved to local names (JSON round-trips)."""

    endpoint: str
    ca_bundle: str
    region: str = REGION
    stream_name: str = ""
    stream_arn: str = ""
    table_name: str = ""
    archive_bucket: str = ""
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    mappings: dict[str, MappingSpec] = field(default_factory=dict)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    rule_sql: str = ""
    rule_partition_key: str = ""
    rule_topic_filter: str = ""
    firehose_prefix: str = ""
    firehose_buffer_s: int = 300
    firehose_buffer_mb: int = 64
    alert_topic_arns: list[str] = field(default_factory=list)
    alert_tap_url: str = ""
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> URL
    # Stack outputs resolved to the local names, as `cdk deploy --outputs-file` writes them.
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def handoff_dead_letter_url(self) -> str:
        """The hand-off queue's dead-letter queue (stacks/processing.py names it)."""
        found = [url for logical, url in self.queues.items()
                 if logical.startswith("HandoffDeadLetters")]  # fmt: skip
        if len(found) != 1:
            raise LookupError(f"expected one HandoffDeadLetters queue, found {len(found)}")
        return found[0]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Deployment:
        raw = json.loads(path.read_text())
        raw["functions"] = {k: FunctionSpec(**v) for k, v in raw["functions"].items()}
        raw["mappings"] = {k: MappingSpec(**v) for k, v in raw["mappings"].items()}
        raw["schedules"] = [ScheduleSpec(**v) for v in raw.get("schedules", [])]
        return cls(**raw)

    def client_env(self) -> dict[str, str]:
        """Environment that points boto3 (and so the real handlers) at the moto server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CA_BUNDLE": self.ca_bundle,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=self.region
        )

    def client(self, service: str) -> Any:
        return self.session().client(
            service,
            endpoint_url=self.endpoint,
            verify=self.ca_bundle,
            config=Config(retries={"max_attempts": 10, "mode": "standard"}),
        )


def _local_name(stack: Stack, logical: str, *, limit: int, lower: bool = False) -> str:
    name = f"{stack.name}-{logical}"
    name = re.sub(r"[^A-Za-z0-9-]", "-", name)
    return (name.lower() if lower else name)[:limit].rstrip("-")


class Provisioner:
    def __init__(self, stage: Stage, deployment: Deployment) -> None:
        self.stage = stage
        self.deployment = deployment
        self.resolve = Resolver(stage, self._create)
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.deployment.client(service)
        return self._clients[service]

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"

    def _create(self, stack: Stack, logical: str) -> Physical:
        resource = stack.resources[logical]
        kind = resource["Type"]
        props = resource.get("Properties", {})
        creator = getattr(self, "_create_" + kind.replace("AWS::", "").replace("::", "_"), None)
        if creator is None:
            # Not emulated (roles, functions, alarms...): a stable placeholder identity.
            name = _local_name(stack, logical, limit=64)
            arn = self._arn(kind.split("::")[1].lower(), name)
            return Physical(ref=name, attributes={"Arn": arn, "Name": name})
        physical: Physical = creator(stack, logical, props)
        return physical

    def _create_KMS_Key(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        key = self._client("kms").create_key(Description=f"{stack.name}/{logical}")["KeyMetadata"]
        return Physical(ref=key["KeyId"], attributes={"Arn": key["Arn"], "KeyId": key["KeyId"]})

    def _create_Kinesis_Stream(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("Name")) or _local_name(stack, logical, limit=128)
        shards = int(props.get("ShardCount") or ON_DEMAND_LOCAL_SHARDS)
        kinesis = self._client("kinesis")
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
        encryption = props.get("StreamEncryption")
        if encryption:
            key = self.resolve(stack, encryption["KeyId"])
            kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId=key)
        arn = self._arn("kinesis", f"stream/{name}")
        return Physical(ref=name, attributes={"Arn": arn})

    def _create_DynamoDB_Table(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("TableName")) or _local_name(stack, logical, limit=255)
        dynamodb = self._client("dynamodb")
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {k: v for k, v in gsi.items() if k in ("IndexName", "KeySchema", "Projection")}
                for gsi in props["GlobalSecondaryIndexes"]
            ]
        sse = props.get("SSESpecification") or {}
        if sse.get("KMSMasterKeyId"):
            args["SSESpecification"] = {
                "Enabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": self.resolve(stack, sse["KMSMasterKeyId"]),
            }
        dynamodb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        arn = self._arn("dynamodb", f"table/{name}")
        return Physical(ref=name, attributes={"Arn": arn, "StreamArn": arn + "/stream/local"})

    def _create_DynamoDB_GlobalTable(
        self, stack: Stack, logical: str, props: dict[str, Any]
    ) -> Physical:
        replica: dict[str, Any] = next(iter(props.get("Replicas", [])), {})
        key = (props.get("SSESpecification") or {}).get("SSEType") == "KMS" and (
            replica.get("SSESpecification") or {}
        ).get("KMSMasterKeyId")
        flattened = {**props, "SSESpecification": {"KMSMasterKeyId": key} if key else {}}
        return self._create_DynamoDB_Table(stack, logical, flattened)

    def _create_S3_Bucket(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("BucketName")) or _local_name(
            stack, logical, limit=63, lower=True
        )
        s3 = self._client("s3")
        s3.create_bucket(Bucket=name)
        encryption = props.get("BucketEncryption")
        if encryption:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": rule[
                                "ServerSideEncryptionByDefault"
                            ],
                            "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False)),
                        }
                        for rule in self.resolve(
                            stack, encryption["ServerSideEncryptionConfiguration"]
                        )
                    ]
                },
            )
        arn = f"arn:aws:s3:::{name}"
        return Physical(
            ref=name,
            attributes={
                "Arn": arn,
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
            },
        )

    def _create_SQS_Queue(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        fifo = bool(props.get("FifoQueue"))
        default = _local_name(stack, logical, limit=75) + (".fifo" if fifo else "")
        name = self.resolve(stack, props.get("QueueName")) or default
        attributes: dict[str, str] = {}
        for prop in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if prop in props:
                attributes[prop] = str(self.resolve(stack, props[prop]))
        if fifo:
            attributes["FifoQueue"] = "true"
        if props.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = str(self.resolve(stack, props["KmsMasterKeyId"]))
        if props.get("RedrivePolicy"):
            attributes["RedrivePolicy"] = json.dumps(self.resolve(stack, props["RedrivePolicy"]))
        url = self._client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.deployment.queues[logical] = url
        arn = self._arn("sqs", name)
        return Physical(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _create_IoT_Policy(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("PolicyName")) or _local_name(
            stack, logical, limit=128
        )
        document = self.resolve(stack, props["PolicyDocument"])
        self._client("iot").create_policy(policyName=name, policyDocument=json.dumps(document))
        return Physical(ref=name, attributes={"Arn": self._arn("iot", f"policy/{name}")})

    def _create_IoT_ThingType(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("ThingTypeName")) or _local_name(
            stack, logical, limit=128
        )
        properties = props.get("ThingTypeProperties") or {}
        self._client("iot").create_thing_type(
            thingTypeName=name,
            thingTypeProperties={
                "thingTypeDescription": properties.get("ThingTypeDescription", ""),
                "searchableAttributes": properties.get("SearchableAttributes", []),
            },
        )
        return Physical(ref=name, attributes={"Arn": self._arn("iot", f"thingtype/{name}")})

    def _create_IoT_ThingGroup(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("ThingGroupName")) or _local_name(
            stack, logical, limit=128
        )
        self._client("iot").create_thing_group(thingGroupName=name)
        return Physical(ref=name, attributes={"Arn": self._arn("iot", f"thinggroup/{name}")})

    def _create_SNS_Topic(self, stack: Stack, logical: str, props: dict[str, Any]) -> Physical:
        name = self.resolve(stack, props.get("TopicName")) or _local_name(stack, logical, limit=256)
        attributes = {}
        if props.get("KmsMasterKeyId"):
            attributes["KmsMasterKeyId"] = str(self.resolve(stack, props["KmsMasterKeyId"]))
        arn = self._client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        return Physical(ref=arn, attributes={"TopicArn": arn, "TopicName": name})


def _function_of(stage: Stage, stack: Stack, expression: Any) -> str:
    """The Lambda function's logical id an event source mapping's FunctionName points at."""
    refs: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Ref" in value:
                refs.append(value["Ref"])
            if "Fn::GetAtt" in value:
                refs.append(value["Fn::GetAtt"][0])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(expression)
    for ref in refs:
        resource = stack.resources.get(ref, {})
        if resource.get("Type") == "AWS::Lambda::Function":
            return ref
        if resource.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            return _function_of(stage, stack, resource["Properties"]["FunctionName"])
    raise LookupError(f"cannot tell which function {expression!r} names")


def provision(stage: Stage, deployment: Deployment) -> Deployment:
    """Create the stage's data resources in moto and fill in the deployment."""
    prov = Provisioner(stage, deployment)
    for kind in CREATED_TYPES:
        for stack, logical, _ in stage.of_type(kind):
            prov.resolve.resource(stack, logical)
    functions = _read_functions(stage, prov.resolve, deployment)
    _read_event_sources(stage, prov.resolve, deployment, functions)
    _read_schedules(stage, deployment, functions)
    _read_names(deployment)
    _read_topic_rule(stage, deployment)
    _read_firehose(stage, prov.resolve, deployment)
    if not (deployment.stream_name and deployment.table_name and deployment.archive_bucket):
        raise LookupError("the templates did not yield a stream, a table and an archive bucket")
    if deployment.alert_topic_arns:
        _tap_alerts(prov, deployment)
    deployment.outputs = _read_outputs(stage, prov.resolve)
    return deployment


def _read_outputs(stage: Stage, resolve: Resolver) -> dict[str, dict[str, str]]:
    """Every stack output that names something that exists locally (an output of a resource
    the local pipeline does not create, such as the dashboard, resolves to a placeholder)."""
    outputs: dict[str, dict[str, str]] = {}
    for stack in stage.stacks.values():
        values = outputs.setdefault(stack.name, {})
        for key, output in stack.template.get("Outputs", {}).items():
            try:
                values[key] = str(resolve(stack, output["Value"]))
            except UnresolvableError:
                continue
    return outputs


def _read_functions(
    stage: Stage, resolve: Resolver, deployment: Deployment
) -> dict[str, tuple[Stack, str]]:
    """The two handlers' settings and resolved environments; logical id -> (stack, role)."""
    roles = {handler: function for function, handler in contract.HANDLERS.items()}
    functions: dict[str, tuple[Stack, str]] = {}
    for stack, logical, resource in stage.of_type("AWS::Lambda::Function"):
        props = resource["Properties"]
        role = roles.get(props.get("Handler", ""))
        if role is None:
            continue  # custom-resource and log-retention helpers
        variables = (props.get("Environment") or {}).get("Variables", {})
        deployment.functions[role] = FunctionSpec(
            logical_id=logical,
            handler=props["Handler"],
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment={k: str(resolve(stack, v)) for k, v in variables.items()},
        )
        functions[logical] = (stack, role)
    missing = set(contract.FUNCTIONS) - set(deployment.functions)
    if missing:
        raise LookupError(
            f"the stage {stage.name} has no function with the {sorted(missing)} handler"
        )
    return functions


def _read_event_sources(
    stage: Stage,
    resolve: Resolver,
    deployment: Deployment,
    functions: dict[str, tuple[Stack, str]],
) -> None:
    """Each handler's event source mapping, with its source and on-failure destination."""
    arns = {
        (resolve.physical[key].attributes.get("Arn")): (key, resolve.physical[key])
        for key in list(resolve.physical)
    }
    for stack, _logical, resource in stage.of_type("AWS::Lambda::EventSourceMapping"):
        props = resource["Properties"]
        function_logical = _function_of(stage, stack, props["FunctionName"])
        if function_logical not in functions:
            continue
        role = functions[function_logical][1]
        source_arn = str(resolve(stack, props["EventSourceArn"]))
        _, source = arns[source_arn]
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        failure_arn = str(resolve(stack, on_failure)) if on_failure else ""
        failure_url = arns[failure_arn][1].ref if failure_arn in arns else ""
        is_kinesis = ":kinesis:" in source_arn
        deployment.mappings[role] = MappingSpec(
            function=role,
            source="kinesis" if is_kinesis else "sqs",
            source_arn=source_arn,
            source_name=source.ref,
            batch_size=int(props.get("BatchSize", 100 if is_kinesis else 10)),
            window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            starting_position=props.get("StartingPosition", "TRIM_HORIZON"),
            bisect=bool(props.get("BisectBatchOnFunctionError", False)),
            max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            report_item_failures="ReportBatchItemFailures"
            in props.get("FunctionResponseTypes", []),
            on_failure_arn=failure_arn,
            on_failure_url=failure_url,
            parallelization_factor=int(props.get("ParallelizationFactor", 1)),
        )
        if is_kinesis:
            deployment.stream_name, deployment.stream_arn = source.ref, source_arn


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNIT_S = {"minute": 60, "hour": 3600, "day": 86_400}


def _read_schedules(
    stage: Stage, deployment: Deployment, functions: dict[str, tuple[Stack, str]]
) -> None:
    """Each scheduled rule's targets among the handlers, with their inputs."""
    for stack, logical, resource in stage.of_type("AWS::Events::Rule"):
        props = resource["Properties"]
        expression = props.get("ScheduleExpression")
        if not expression or props.get("State", "ENABLED") != "ENABLED":
            continue
        rate = _RATE.match(expression)
        if rate is None:
            raise LookupError(f"{stack.name}/{logical}: cannot run {expression!r} locally")
        rate_s = int(rate.group(1)) * _RATE_UNIT_S[rate.group(2).rstrip("s")]
        for target in props.get("Targets", []):
            function = functions.get(_function_of(stage, stack, target["Arn"]))
            if function is not None:
                deployment.schedules.append(
                    ScheduleSpec(function[1], rate_s, json.loads(target.get("Input", "{}")))
                )


def _read_names(deployment: Deployment) -> None:
    """The bucket, table and alert topic, as the functions' environments name them."""
    batching_env = deployment.functions[contract.BATCHING].environment
    processor_env = deployment.functions[contract.PROCESSOR].environment
    deployment.archive_bucket = batching_env.get(contract.ARCHIVE_BUCKET.name, "")
    deployment.table_name = processor_env.get(contract.TABLE_NAME.name, "")
    topic = processor_env.get(contract.ALERT_TOPIC_ARN.name)
    if topic:
        deployment.alert_topic_arns = [topic]


def _read_topic_rule(stage: Stage, deployment: Deployment) -> None:
    for _stack, _logical, resource in stage.of_type("AWS::IoT::TopicRule"):
        payload = resource["Properties"]["TopicRulePayload"]
        for action in payload.get("Actions", []):
            if "Kinesis" in action:
                deployment.rule_sql = payload["Sql"]
                deployment.rule_partition_key = action["Kinesis"].get("PartitionKey", "")


def _read_firehose(stage: Stage, resolve: Resolver, deployment: Deployment) -> None:
    for stack, _logical, resource in stage.of_type("AWS::KinesisFirehose::DeliveryStream"):
        props = resource["Properties"]
        destination = props.get("ExtendedS3DestinationConfiguration") or {}
        hints = destination.get("BufferingHints") or {}
        deployment.firehose_prefix = str(resolve(stack, destination.get("Prefix", "")))
        deployment.firehose_buffer_s = int(hints.get("IntervalInSeconds", 300))
        deployment.firehose_buffer_mb = int(hints.get("SizeInMBs", 64))


def _tap_alerts(prov: Provisioner, deployment: Deployment) -> None:
    """A local tap on the alert topic, so the dashboard can show the alerts raised."""
    sqs, sns = prov._client("sqs"), prov._client("sns")
    url = sqs.create_queue(QueueName="local-alert-tap")["QueueUrl"]
    deployment.alert_tap_url = url
    tap_arn = prov._arn("sqs", "local-alert-tap")
    for arn in deployment.alert_topic_arns:
        sns.subscribe(
            TopicArn=arn,
            Protocol="sqs",
            Endpoint=tap_arn,
            Attributes={"RawMessageDelivery": "true"},
        )
