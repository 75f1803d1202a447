"""Managed layer ARNs: from the per-region table, never built from a pattern."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from energy_monitoring import managed_layers
from energy_monitoring.config import ConfigError, parse_environment
from energy_monitoring.constructs.energy_function import managed_layer_arn
from energy_monitoring.managed_layers import ManagedLayer
from infra.synthesis import SynthesizedApp


def probe_stack(region: str | None) -> cdk.Stack:
    env = cdk.Environment(account="123456789012", region=region) if region else None
    return cdk.Stack(cdk.App(), "Probe", env=env)


@pytest.mark.parametrize(
    ("region", "layer", "architecture", "expected"),
    [
        # Versions differ per region (and af-south-1 lags the others) ...
        (
            "eu-central-1",
            ManagedLayer.SDK_PANDAS,
            "arm64",
            "arn:aws:lambda:eu-central-1:336392948345:layer:AWSSDKPandas-Python312-Arm64:29",
        ),
        (
            "af-south-1",
            ManagedLayer.SDK_PANDAS,
            "x86_64",
            "arn:aws:lambda:af-south-1:336392948345:layer:AWSSDKPandas-Python312:28",
        ),
        # ... and some regions publish from their own account.
        (
            "ap-east-1",
            ManagedLayer.SDK_PANDAS,
            "arm64",
            "arn:aws:lambda:ap-east-1:839552336658:layer:AWSSDKPandas-Python312-Arm64:26",
        ),
        (
            "eu-central-1",
            ManagedLayer.POWERTOOLS,
            "arm64",
            "arn:aws:lambda:eu-central-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:27",
        ),
    ],
)
def test_a_fixed_region_gets_the_tables_arn_at_synthesis(
    region: str, layer: ManagedLayer, architecture: str, expected: str
) -> None:
    stack = probe_stack(region)
    assert managed_layer_arn(stack, layer, architecture=architecture) == expected


def test_an_environment_agnostic_stack_looks_the_arn_up_at_deploy_time(
    synthesized: SynthesizedApp,
) -> None:
    # dev has no region: its processor's layers are looked up on AWS::Region.
    template = synthesized.template("dev", "Processing")
    (processor,) = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Properties"].get("Handler") == "energy_runtime.processor.handler"
    ]
    assert processor["Layers"] == [
        {"Fn::FindInMap": ["ManagedLayerArnsArm64", {"Ref": "AWS::Region"}, key]}
        for key in ("powertools", "sdkpandas")
    ]
    table = template["Mappings"]["ManagedLayerArnsArm64"]
    # Every region of the mapping has both layers; a region that lacks one is left out, so
    # a deploy there fails on the lookup instead of on a layer that does not exist.
    assert table["eu-central-1"]["sdkpandas"].endswith(":AWSSDKPandas-Python312-Arm64:29")
    assert table["ap-east-1"]["sdkpandas"].startswith("arn:aws:lambda:ap-east-1:839552336658:")
    assert "mx-central-1" not in table  # Powertools only: no SDK for pandas layer there
    assert "ca-west-1" not in table  # no arm64 Powertools layer listed
    assert all(set(row) == {"powertools", "sdkpandas"} for row in table.values())
    assert set(table) == set(managed_layers.regions(tuple(ManagedLayer), "arm64"))
    # A fixed region's template carries literal ARNs and no mapping.
    prod = synthesized.template("prod", "Processing")
    assert "Mappings" not in prod or "ManagedLayerArnsArm64" not in prod["Mappings"]


def test_a_region_without_the_layers_stops_synthesis_naming_the_region() -> None:
    raw = {"account": "123456789012", "region": "mx-central-1", "alarms": {"ops_email": "a@b.co"}}
    with pytest.raises(ConfigError) as error:
        parse_environment("staging", raw)

    message = str(error.value)
    assert message.startswith("energy-monitoring.environments.staging.region: 'mx-central-1'")
    assert "sdk_pandas" in message and "arm64" in message
    assert "managed_layers.json" in message


def test_the_architecture_counts_too() -> None:
    # ca-west-1 publishes the x86_64 Powertools layer only.
    base = {"account": "123456789012", "region": "ca-west-1", "alarms": {"ops_email": "a@b.co"}}
    parse_environment("staging", {**base, "functions": {"architecture": "x86_64"}})
    with pytest.raises(ConfigError, match=r"'ca-west-1' has no powertools Lambda layer"):
        parse_environment("staging", {**base, "functions": {"architecture": "arm64"}})


def test_every_table_row_is_an_arn_of_its_region_and_layer() -> None:
    table = managed_layers._table()
    names = {
        "powertools": {"arm64": "AWSLambdaPowertoolsPythonV3-python312-arm64",
                       "x86_64": "AWSLambdaPowertoolsPythonV3-python312-x86_64"},
        "sdk_pandas": {"arm64": "AWSSDKPandas-Python312-Arm64", "x86_64": "AWSSDKPandas-Python312"},
    }  # fmt: skip
    assert set(table["layers"]) == {layer.value for layer in ManagedLayer}
    for info in table["layers"].values():
        assert info["source"].startswith("https://") and info["checked"]
    for region, published in table["regions"].items():
        for layer, arns in published.items():
            for architecture, arn in arns.items():
                prefix, account, kind, name, version = arn.rsplit(":", 4)
                assert prefix == f"arn:aws:lambda:{region}", arn
                assert (len(account), kind) == (12, "layer"), arn
                assert name == names[layer][architecture], arn
                assert int(version) > 0, arn
