"""The command line against a real moto server on loopback (TLS, the local CA), started once.

Each test deploys its own pretend environment into it (policy, thing type, thing group and
table under fresh names, and an outputs file naming them, as `cdk deploy --outputs-file`
writes it), so tests sharing the server never see each other's meters.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from energy_runtime import contract

from devkit.emulators import aws_api
from devkit.emulators.pki import CertificateAuthority
from devkit.runner import processes
from energy_cli.main import run

REGION = "us-east-1"
METER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
}


@dataclass(frozen=True)
class Server:
    endpoint: str
    ca_bundle: Path

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            verify=str(self.ca_bundle),
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except ValueError:
            raise AssertionError(
                f"not JSON (exit {self.code}): {self.out!r} {self.err!r}"
            ) from None


@dataclass(frozen=True)
class Deployed:
    """A pretend environment `dev` in moto: what its stacks' outputs would name."""

    outputs: Path
    policy: str
    thing_type: str
    thing_group: str
    table: str
    suffix: str

    def thing(self, n: int) -> str:
        return f"m{self.suffix}-{n:03d}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("cli-moto")
    ca = CertificateAuthority(directory / "pki")
    cert = ca.issue_server("moto")
    child, endpoint = aws_api.start(directory, cert=cert.cert, key=cert.key)
    yield Server(endpoint, ca.ca_path)
    processes.stop(child)


@pytest.fixture
def aws(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """boto3's normal chain, pointed at the moto server the way a user would."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(server.ca_bundle))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return server


@pytest.fixture
def deployed(aws: Server, tmp_path: Path) -> Deployed:
    suffix = uuid.uuid4().hex[:8]
    iot = aws.client("iot")
    policy, thing_type, group = f"meter-policy-{suffix}", f"meter-{suffix}", f"meters-{suffix}"
    iot.create_policy(policyName=policy, policyDocument=json.dumps(METER_POLICY))
    iot.create_thing_type(
        thingTypeName=thing_type,
        thingTypeProperties={"searchableAttributes": ["building", "apartment"]},
    )
    iot.create_thing_group(thingGroupName=group)
    table = f"energy-{suffix}"
    aws.client("dynamodb").create_table(
        TableName=table,
        KeySchema=list(contract.KEY_SCHEMA),
        AttributeDefinitions=list(contract.KEY_ATTRIBUTES),
        BillingMode="PAY_PER_REQUEST",
    )
    outputs = tmp_path / "outputs.json"
    output = contract.Output
    outputs.write_text(
        json.dumps(
            {
                "energy-dev-Storage": {output.TABLE_NAME: table, "ArchiveBucketName": "archive"},
                "energy-dev-Ingest": {
                    output.IOT_POLICY_NAME: policy,
                    output.THING_TYPE_NAME: thing_type,
                    output.THING_GROUP_NAME: group,
                    output.METER_TOPIC_TEMPLATE: "energy/consumption/<thing-name>",
                },
            }
        )
    )
    return Deployed(outputs, policy, thing_type, group, table, suffix)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `energy-monitoring ARGS...` in this process; its exit status and output."""

    def invoke(*args: str | Path) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


# --- a pipeline environment in moto (replay, query) -----------------------------------

T0 = 1_795_000_000  # 2026-11-18T11:06:40Z
DEVICE = "apt-0007"


@dataclass(frozen=True)
class Pipeline:
    """An environment's queues, stream, table, bucket and functions in moto."""

    outputs: Path
    table: str
    bucket: str
    handoff: str
    dead_letters: str
    failures: str
    stream_arn: str
    environment: dict[str, str]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def pipeline(aws: Server, tmp_path: Path) -> Pipeline:
    suffix = uuid.uuid4().hex[:8]
    sqs, s3, kinesis = aws.client("sqs"), aws.client("s3"), aws.client("kinesis")
    handoff = sqs.create_queue(QueueName=f"handoff-{suffix}")["QueueUrl"]
    dead = sqs.create_queue(QueueName=f"handoff-dlq-{suffix}")["QueueUrl"]
    failures = sqs.create_queue(QueueName=f"failures-{suffix}")["QueueUrl"]
    bucket, table, stream = f"archive-{suffix}", f"energy-{suffix}", f"readings-{suffix}"
    s3.create_bucket(Bucket=bucket)
    aws.client("dynamodb").create_table(
        TableName=table,
        KeySchema=list(contract.KEY_SCHEMA),
        AttributeDefinitions=list(contract.KEY_ATTRIBUTES),
        BillingMode="PAY_PER_REQUEST",
    )
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["StreamARN"]
    topic = aws.client("sns").create_topic(Name=f"alerts-{suffix}")["TopicArn"]
    environment = {
        **contract.default_environment(contract.BATCHING),
        **contract.default_environment(contract.PROCESSOR),
        "HANDOFF_QUEUE_URL": handoff,
        "ARCHIVE_BUCKET": bucket,
        "TABLE_NAME": table,
        "ALERT_TOPIC_ARN": topic,
        "METER_GROUP_NAME": f"meters-{suffix}",
    }
    role = aws.client("iam").create_role(
        RoleName=f"functions-{suffix}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    functions = {}
    for name in ("batching", "processor"):
        functions[name] = f"{name}-{suffix}"
        aws.client("lambda").create_function(
            FunctionName=functions[name], Runtime="python3.12", Role=role,
            Handler="index.handler", Code={"ZipFile": _zip()},
            Environment={"Variables": environment},
        )  # fmt: skip
    output = contract.Output
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "energy-dev-Storage": {
                    output.TABLE_NAME: table,
                    output.ARCHIVE_BUCKET_NAME: bucket,
                },
                "energy-dev-Processing": {
                    output.HANDOFF_QUEUE_URL: handoff,
                    output.HANDOFF_DEAD_LETTER_QUEUE_URL: dead,
                    output.STREAM_FAILURE_QUEUE_URL: failures,
                    output.BATCHING_FUNCTION_NAME: functions["batching"],
                    output.PROCESSOR_FUNCTION_NAME: functions["processor"],
                },
            }
        )
    )
    return Pipeline(outputs, table, bucket, handoff, dead, failures, stream_arn, environment)


def envelope(device: str, readings: list[dict[str, Any]], received_ms: int) -> bytes:
    payload = json.dumps({"readings": readings}).encode()
    return json.dumps(
        {"device_id": device, "received_at": received_ms,
         "payload": base64.b64encode(payload).decode()}
    ).encode()  # fmt: skip


def readings(start_s: int, count: int, *, power_w: float = 720.0) -> list[dict[str, Any]]:
    """A meter's register advancing 2 Wh per 10 s reading."""
    return [
        {"ts": ts, "energy_wh": 5000.0 + (ts - T0) / 5, "power_w": power_w}
        for ts in (start_s + 10 * i for i in range(count))
    ]


def event(records: list[bytes], *, first_sequence: int = 1000) -> dict[str, Any]:
    return {
        "Records": [
            {
                "kinesis": {
                    "partitionKey": DEVICE,
                    "sequenceNumber": str(first_sequence + n),
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": T0,
                },
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/readings",
            }
            for n, data in enumerate(records)
        ]
    }


def table_items(aws: Server, table: str) -> list[dict[str, Any]]:
    items = aws.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def waiting(aws: Server, url: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
