"""What `cdk destroy` does with data: prod keeps every stateful resource, the others keep
nothing (constructs.retention.removal_policy decides for all of them)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.synthesis import SynthesizedApp

ENVIRONMENTS = ("dev", "staging", "prod")
# Resources that hold data, or make it readable (the key, the catalog).
STATEFUL = {
    "AWS::DynamoDB::Table",
    "AWS::Kinesis::Stream",
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::Logs::LogGroup",
}


def stateful(app: SynthesizedApp, environment: str) -> dict[str, dict[str, Any]]:
    return {
        f"{stack}/{logical_id}": resource
        for stack in app.stacks(environment)
        for logical_id, resource in app.template(environment, stack)["Resources"].items()
        if resource["Type"] in STATEFUL
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_stateful_resources_follow_the_removal_policy(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    expected = "Retain" if environments[environment].removal_policy == "retain" else "Delete"
    found = stateful(synthesized, environment)

    assert {resource["Type"] for resource in found.values()} == STATEFUL
    wrong = {
        name: (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        for name, resource in found.items()
        if (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        != (expected, expected)
    }
    assert wrong == {}


@pytest.mark.parametrize("environment", ("dev", "staging"))
def test_nothing_outside_prod_is_retained(synthesized: SynthesizedApp, environment: str) -> None:
    retained = [
        f"{stack}/{logical_id}"
        for stack in synthesized.stacks(environment)
        for logical_id, resource in synthesized.template(environment, stack)["Resources"].items()
        if "Retain" in (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
    ]
    assert retained == []
    # Buckets are emptied on deletion, or CloudFormation could not delete them.
    storage = synthesized.template(environment, "Storage")["Resources"]
    emptied = {
        resource["Properties"]["BucketName"]["Ref"]
        for resource in storage.values()
        if resource["Type"] == "Custom::S3AutoDeleteObjects"
    }
    buckets = {lid for lid, r in storage.items() if r["Type"] == "AWS::S3::Bucket"}
    assert emptied == buckets
