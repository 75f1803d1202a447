"""An environment's stack outputs: from CloudFormation (`DescribeStacks` on the moto
server) or from a `cdk deploy --outputs-file` JSON; and the one-line errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Deployed, Server

TEMPLATE_WITH_OUTPUTS = {
    "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        "IotPolicyName": {"Value": "policy-from-cloudformation"},
        "ThingTypeName": {"Value": "type-from-cloudformation"},
    },
}


def test_outputs_come_from_cloudformation_by_stack_name(cli: Any, aws: Server) -> None:
    environment = f"cf{uuid.uuid4().hex[:6]}"
    cloudformation = aws.client("cloudformation")
    for stack in (f"energy-{environment}-Ingest", f"copy-energy-{environment}-Ingest"):
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(TEMPLATE_WITH_OUTPUTS))
    result = cli("outputs", "--env", environment, "--json")
    assert result.code == 0, result.err
    assert result.json() == {
        f"energy-{environment}-Ingest": {
            "IotPolicyName": "policy-from-cloudformation",
            "ThingTypeName": "type-from-cloudformation",
        }
    }
    # A prefixed copy (`make deploy PREFIX=copy`) is a separate set of stacks.
    copy = cli("outputs", "--env", environment, "--prefix", "copy", "--json")
    assert list(copy.json()) == [f"copy-energy-{environment}-Ingest"]
    table = cli("outputs", "--env", environment)
    assert "policy-from-cloudformation" in table.out and "IotPolicyName" in table.out


def test_an_unknown_environment_is_one_line_naming_the_known_ones(
    cli: Any, deployed: Deployed
) -> None:
    result = cli("outputs", "--env", "prod", "--outputs", deployed.outputs)
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: unknown environment 'prod': no stacks energy-prod-*")
    assert "it has dev" in result.err


def test_an_unknown_environment_in_cloudformation_is_one_line(cli: Any, aws: Server) -> None:
    result = cli("outputs", "--env", "nowhere")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "unknown environment 'nowhere'" in result.err and "region us-east-1" in result.err


def test_a_missing_output_is_one_line_naming_it(
    cli: Any, deployed: Deployed, tmp_path: Path
) -> None:
    outputs = json.loads(deployed.outputs.read_text())
    del outputs["energy-dev-Ingest"]["IotPolicyName"]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(outputs))
    result = cli(
        "devices", "register", "--env", "dev", "--outputs", older, "--thing", "apt-1",
        "--building", "b7", "--apartment", "1", "--out", tmp_path / "devices",
    )  # fmt: skip
    assert result.code == 1 and result.err.count("\n") == 1
    assert "has no stack output IotPolicyName" in result.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not readable JSON"),
        ('["energy-dev-Ingest"]', "is not in the `cdk deploy --outputs-file` format"),
        ('{"energy-dev-Ingest": {"A": {"nested": 1}}}', "is not in the"),
    ],
)
def test_a_bad_outputs_file_is_one_line(
    cli: Any, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    result = cli("outputs", "--env", "dev", "--outputs", path)
    assert result.code == 1 and result.err.count("\n") == 1 and message in result.err


def test_no_credentials_is_one_line(
    cli: Any, aws: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    result = cli("outputs", "--env", "dev")
    assert result.code == 1
    assert result.err == (
        "error: no AWS credentials: configure a profile (AWS_PROFILE) or AWS_* variables\n"
    )


def test_aws_region_alone_names_the_region_and_no_region_names_both_variables(
    cli: Any, aws: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from energy_cli.aws import Clients

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    assert Clients().region == "us-east-1"  # from AWS_REGION
    monkeypatch.delenv("AWS_REGION")
    result = cli("outputs", "--env", "dev")
    assert result.code == 1
    assert "AWS_REGION" in result.err and "AWS_DEFAULT_REGION" in result.err
    assert result.err.count("\n") == 1


def test_the_local_pipeline_is_reached_whatever_profile_the_shell_names(
    aws: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from energy_cli.aws import Clients
    from energy_cli.environment import LocalPipeline

    monkeypatch.setenv("AWS_PROFILE", "a-profile-this-machine-does-not-have")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://127.0.0.1:9")  # not the moto server
    local = LocalPipeline(
        aws_endpoint=aws.endpoint, ca_bundle=str(aws.ca_bundle), region="eu-west-1",
        broker_endpoint="127.0.0.1:1", ca_directory=tmp_path,
    )  # fmt: skip
    clients = Clients(local=local)
    assert clients.region == "eu-west-1"
    assert "TableNames" in clients.client("dynamodb").list_tables()
