"""One environment's stack outputs, from CloudFormation or from a `cdk deploy --outputs-file`.

The stacks of environment `dev` are `energy-dev-<Stack>` (`<prefix>-energy-dev-<Stack>` for
a prefixed copy); `DescribeStacks` gives their outputs. An outputs file holds the same as
`{"energy-dev-Ingest": {"IotPolicyName": "...", ...}, ...}`. `local up` writes one with an
extra stack, `energy-dev-Local`, that says where the local pipeline listens: commands
given that file talk to the local moto server and broker, never to an AWS account.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_runtime import contract

from energy_cli.errors import CliError

# The pseudo-stack `local up` adds to its outputs file, and what it holds.
LOCAL_STACK_ID = "Local"
LOCAL_AWS_ENDPOINT = "AwsEndpointUrl"
LOCAL_CA_BUNDLE = "AwsCaBundle"
LOCAL_REGION = "Region"
LOCAL_BROKER_ENDPOINT = "BrokerEndpoint"
LOCAL_CA_DIRECTORY = "CertificateAuthorityDir"
# The functions' settings as the local triggers run them (what Lambda's configuration
# holds in AWS): `replay` runs the same handlers with them.
LOCAL_FUNCTIONS_FILE = "FunctionsFile"

_STACK_IDS = (*contract.STACK_IDS, LOCAL_STACK_ID)
_STACK_NAME = re.compile(
    r"^(?:(?P<prefix>[a-z0-9-]+)-)?energy-(?P<env>[A-Za-z0-9]+)-(?P<stack>"
    + "|".join(_STACK_IDS)
    + ")$"
)


@dataclass(frozen=True)
class LocalPipeline:
    """Where `local up` listens: the moto server (AWS APIs), the broker, the CA."""

    aws_endpoint: str
    ca_bundle: str
    region: str
    broker_endpoint: str
    ca_directory: Path
    functions_file: Path | None = None


@dataclass(frozen=True)
class Environment:
    name: str
    stage: str  # `energy-<env>` or `<prefix>-energy-<env>`
    source: str  # where the outputs came from, for messages
    stacks: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> key -> value

    def optional(self, key: str) -> str | None:
        for values in self.stacks.values():
            if key in values:
                return values[key]
        return None

    def output(self, key: str) -> str:
        value = self.optional(key)
        if value is None:
            raise CliError(
                f"environment {self.name!r} has no stack output {key} ({self.source}): "
                "deploy its stacks with this version of the app"
            )
        return value

    @property
    def local(self) -> LocalPipeline | None:
        values = self.stacks.get(f"{self.stage}-{LOCAL_STACK_ID}")
        if values is None:
            return None
        try:
            return LocalPipeline(
                aws_endpoint=values[LOCAL_AWS_ENDPOINT],
                ca_bundle=values[LOCAL_CA_BUNDLE],
                region=values[LOCAL_REGION],
                broker_endpoint=values[LOCAL_BROKER_ENDPOINT],
                ca_directory=Path(values[LOCAL_CA_DIRECTORY]),
                functions_file=(
                    Path(values[LOCAL_FUNCTIONS_FILE]) if LOCAL_FUNCTIONS_FILE in values else None
                ),
            )
        except KeyError as missing:
            raise CliError(f"{self.source}: the local pipeline's stack lacks {missing}") from None


def environments_in(stack_names: list[str]) -> list[str]:
    """The environment names a list of stack names holds (for "did you mean")."""
    found = {match["env"] for name in stack_names if (match := _STACK_NAME.match(name))}
    return sorted(found)


def _select(name: str, prefix: str, stacks: dict[str, dict[str, str]], source: str) -> Environment:
    stage = contract.stage_name(name, prefix)
    mine = {
        stack: values
        for stack, values in stacks.items()
        if stack in {f"{stage}-{stack_id}" for stack_id in _STACK_IDS}
    }
    if not mine:
        known = environments_in(list(stacks))
        hint = f"it has {', '.join(known)}" if known else "it has no energy-<env>-* stacks"
        raise CliError(f"unknown environment {name!r}: no stacks {stage}-* in {source} ({hint})")
    return Environment(name=name, stage=stage, source=source, stacks=mine)


def from_file(path: Path, name: str, *, prefix: str = "") -> Environment:
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"outputs file {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise CliError(f"outputs file {path} is not readable JSON: {error}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(values, dict) and all(isinstance(v, (str, int, float)) for v in values.values())
        for values in raw.values()
    ):
        raise CliError(
            f"outputs file {path} is not in the `cdk deploy --outputs-file` format "
            '({"<stack>": {"<output>": "<value>"}})'
        )
    stacks = {stack: {k: str(v) for k, v in values.items()} for stack, values in raw.items()}
    return _select(name, prefix, stacks, str(path))


def from_cloudformation(cloudformation: Any, name: str, *, prefix: str = "") -> Environment:
    """The environment's stacks by name (one call each); every stack's name only if none
    exists, to say which environments there are."""
    from botocore.exceptions import ClientError

    region = cloudformation.meta.region_name
    source = f"CloudFormation, region {region}"
    stage = contract.stage_name(name, prefix)
    stacks: dict[str, dict[str, str]] = {}
    for stack_id in contract.STACK_IDS:
        try:
            (stack,) = cloudformation.describe_stacks(StackName=f"{stage}-{stack_id}")["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                continue
            raise
        stacks[stack["StackName"]] = {
            output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])
        }
    if not stacks:
        names = [
            summary["StackName"]
            for page in cloudformation.get_paginator("list_stacks").paginate()
            for summary in page["StackSummaries"]
            if summary["StackStatus"] != "DELETE_COMPLETE"
        ]
        stacks = {stack: {} for stack in names}
    return _select(name, prefix, stacks, source)
