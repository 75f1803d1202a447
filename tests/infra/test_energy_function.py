"""Managed layer ARNs per architecture (no Docker build: AWS publishes these layers)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from energy_monitoring.constructs.energy_function import ManagedLayer, managed_layer_arn
from energy_monitoring.nag_suppressions import render


@pytest.mark.parametrize(
    ("layer", "architecture", "expected"),
    [
        (
            ManagedLayer.POWERTOOLS,
            "arm64",
            "arn:<AWS::Partition>:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:27",
        ),
        (
            ManagedLayer.POWERTOOLS,
            "x86_64",
            "arn:<AWS::Partition>:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:27",
        ),
        (
            ManagedLayer.SDK_PANDAS,
            "arm64",
            "arn:<AWS::Partition>:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python312-Arm64:27",
        ),
        (
            ManagedLayer.SDK_PANDAS,
            "x86_64",
            "arn:<AWS::Partition>:lambda:eu-west-1:336392948345:layer:AWSSDKPandas-Python312:27",
        ),
    ],
)
def test_layer_arn(layer: ManagedLayer, architecture: str, expected: str) -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="123456789012", region="eu-west-1"))

    arn = managed_layer_arn(stack, layer, architecture=architecture, version=27)

    assert render(stack.resolve(arn)) == expected
