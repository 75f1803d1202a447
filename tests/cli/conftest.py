"""The command line against a real moto server on loopback (TLS, the local CA), started once.

Each test deploys its own pretend environment into it (policy, thing type, thing group and
table under fresh names, and an outputs file naming them, as `cdk deploy --outputs-file`
writes it), so tests sharing the server never see each other's meters.
"""

from __future__ import annotations

import json
import uuid
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
