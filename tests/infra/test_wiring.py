"""How the stacks reach each other: exports only of identities that never change.

CloudFormation refuses to change or remove an export while another stack imports it, so an
exported resource that gets replaced blocks the deploy. The rule (docs/deploy.md, "How
the stacks are wired"): a stack exports only the name or ARN of a resource whose
replacing properties are absent (CloudFormation generates the name) or fixed by the code
for the life of the environment. These tests hold every export to it.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.synthesis import SynthesizedApp

ENVIRONMENTS = ("dev", "staging", "prod")

# Resource type -> the properties whose change replaces it (CloudFormation's reference:
# "Update requires: Replacement"), for every type the stacks export.
REPLACING: dict[str, tuple[str, ...]] = {
    "AWS::S3::Bucket": ("BucketName", "ObjectLockEnabled"),
    "AWS::KMS::Key": ("KeySpec", "KeyUsage", "MultiRegion", "Origin"),
    "AWS::DynamoDB::Table": ("TableName", "KeySchema"),
    "AWS::Glue::Table": ("CatalogId", "DatabaseName", "TableInput.Name"),
    "AWS::Kinesis::Stream": ("Name",),
    "AWS::KinesisFirehose::DeliveryStream": (
        "DeliveryStreamName",
        "DeliveryStreamType",
        "KinesisStreamSourceConfiguration",
    ),
    "AWS::Lambda::Function": ("FunctionName", "PackageType"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::IoT::ThingGroup": ("ThingGroupName", "ParentGroupName"),
}
# Replacing properties the code sets, and why they never change for an environment.
FIXED_BY_CODE: dict[tuple[str, str], str] = {
    ("AWS::DynamoDB::Table", "KeySchema"): "pk/sk, the contract's key schema",
    ("AWS::Glue::Table", "CatalogId"): "the environment's account",
    ("AWS::Glue::Table", "DatabaseName"): "derived from the environment's name",
    ("AWS::Glue::Table", "TableInput.Name"): "the catalog's table names are constants",
    ("AWS::KinesisFirehose::DeliveryStream", "DeliveryStreamType"): "always the stream source",
    ("AWS::KinesisFirehose::DeliveryStream", "KinesisStreamSourceConfiguration"): (
        "the environment's stream, itself exported under the same rule"
    ),
}


def _lookup(properties: dict[str, Any], dotted: str) -> Any:
    value: Any = properties
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def exports(app: SynthesizedApp, environment: str) -> list[tuple[str, str, Any]]:
    return [
        (app.stack_names[(env, stack)], output["Export"]["Name"], output["Value"])
        for (env, stack), template in app.templates.items()
        if env == environment
        for output in template.get("Outputs", {}).values()
        if "Export" in output
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_export_names_a_resource_that_is_never_replaced(
    synthesized: SynthesizedApp, environment: str
) -> None:
    deployment = synthesized.deployment(environment)
    found = exports(synthesized, environment)
    assert found, "the walk must see the exports"
    problems = []
    for stack, name, value in found:
        resource = deployment.referenced(stack, value)
        if resource.type not in REPLACING:
            problems.append(f"{name}: {resource.type} has no replacement rule here")
            continue
        for prop in REPLACING[resource.type]:
            if _lookup(dict(resource.properties), prop) is not None and (
                (resource.type, prop) not in FIXED_BY_CODE
            ):
                problems.append(f"{name}: {resource.logical_id} sets {prop}")
    assert problems == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_import_is_an_export_of_the_same_environment(
    synthesized: SynthesizedApp, environment: str
) -> None:
    exported = {name for _stack, name, _value in exports(synthesized, environment)}
    imported: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Fn::ImportValue" in value:
                imported.add(value["Fn::ImportValue"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for (env, _stack), template in synthesized.templates.items():
        if env == environment:
            walk(template["Resources"])
    assert imported and imported <= exported
    # Exports nobody imports are still locks on the exporting resource.
    assert exported - imported == set()
