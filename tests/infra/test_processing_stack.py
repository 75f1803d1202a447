"""Processing stack: event source settings, handlers, grants, hand-off, canary deployment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from energy_runtime import contract

from energy_monitoring import managed_layers
from energy_monitoring.managed_layers import ManagedLayer
from infra.synthesis import SynthesizedApp

ENVIRONMENTS = ("dev", "staging", "prod")

DEPLOYMENT_CONFIGS = {
    "ALL_AT_ONCE": "CodeDeployDefault.LambdaAllAtOnce",
    "CANARY_10_PERCENT_5_MINUTES": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
    "CANARY_10_PERCENT_10_MINUTES": "CodeDeployDefault.LambdaCanary10Percent10Minutes",
}


def functions(app: SynthesizedApp, environment: str) -> dict[str, dict[str, Any]]:
    """Handler -> function properties."""
    return {
        resource["Properties"]["Handler"]: resource["Properties"]
        for resource in app.resources(environment, "Processing", "AWS::Lambda::Function").values()
        if resource["Properties"].get("Handler", "").startswith("energy_runtime.")
    }


def mappings(app: SynthesizedApp, environment: str) -> dict[str, dict[str, Any]]:
    """'kinesis' / 'sqs' -> event source mapping properties."""
    result = {}
    for resource in app.resources(
        environment, "Processing", "AWS::Lambda::EventSourceMapping"
    ).values():
        properties = resource["Properties"]
        kind = "kinesis" if "StartingPosition" in properties else "sqs"
        result[kind] = properties
    return result


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_kinesis_trigger_settings_come_from_config(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    batching = environments[environment].batching
    kinesis = mappings(synthesized, environment)["kinesis"]

    assert kinesis["BatchSize"] == batching.batch_size
    assert kinesis["MaximumBatchingWindowInSeconds"] == batching.window_seconds
    assert kinesis["BisectBatchOnFunctionError"] is True
    assert kinesis["MaximumRetryAttempts"] == batching.retry_attempts
    assert kinesis["MaximumRetryAttempts"] >= 0  # never Lambda's infinite default
    assert kinesis["MaximumRecordAgeInSeconds"] == batching.max_record_age_seconds
    assert kinesis["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert kinesis["StartingPosition"] == "TRIM_HORIZON"
    on_failure = kinesis["DestinationConfig"]["OnFailure"]["Destination"]
    assert on_failure["Fn::GetAtt"][0].startswith("StreamFailures")


def test_contract_defaults_reach_the_mappings(synthesized: SynthesizedApp) -> None:
    dev = mappings(synthesized, "dev")
    assert (dev["kinesis"]["BatchSize"], dev["kinesis"]["MaximumBatchingWindowInSeconds"]) == (
        10000,
        300,
    )
    assert (dev["sqs"]["BatchSize"], dev["sqs"]["MaximumBatchingWindowInSeconds"]) == (100, 5)
    assert dev["sqs"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_triggers_invoke_the_live_aliases(synthesized: SynthesizedApp, environment: str) -> None:
    for mapping in mappings(synthesized, environment).values():
        assert mapping["FunctionName"]["Fn::Join"][1][-1] == ":live"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_schedule_invokes_the_processor_to_sweep_for_silent_meters(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    minutes = environments[environment].schedules.silence_sweep_minutes
    (rule,) = synthesized.resources(environment, "Processing", "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == f"rate({minutes} minutes)"
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    # The live alias (the canary shifts the sweep too), with the event the handler expects.
    aliases = synthesized.resources(environment, "Processing", "AWS::Lambda::Alias")
    assert aliases[target["Arn"]["Ref"]]["Properties"]["Name"] == "live"
    assert json.loads(target["Input"]) == contract.SILENCE_SWEEP_EVENT
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": minutes * 60,
                                     "MaximumRetryAttempts": 0}  # fmt: skip
    # EventBridge may invoke the alias, from this rule only.
    permissions = synthesized.resources(environment, "Processing", "AWS::Lambda::Permission")
    (allowed,) = [p["Properties"] for p in permissions.values()
                  if p["Properties"]["Principal"] == "events.amazonaws.com"]  # fmt: skip
    assert allowed["FunctionName"] == target["Arn"]
    assert allowed["SourceArn"]["Fn::GetAtt"][0] in synthesized.resources(
        environment, "Processing", "AWS::Events::Rule"
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_function_gets_exactly_the_variables_the_runtime_declares(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    deployed = functions(synthesized, environment)
    data = environments[environment].data

    assert set(deployed) == set(contract.HANDLERS.values())
    for function, handler in contract.HANDLERS.items():
        variables = deployed[handler]["Environment"]["Variables"]
        # Nothing missing (the runtime would refuse to start), nothing it never reads.
        assert set(variables) == {v.name for v in contract.variables_of(function)}
        assert variables[contract.SERVICE_NAME.name] == contract.SERVICES[function]
        assert variables[contract.METRICS_NAMESPACE_VARIABLE.name] == contract.METRICS_NAMESPACE
        assert variables[contract.LOG_LEVEL.name] == environments[environment].functions.log_level
        # Every rule a function applies is the configured one.
        for variable in contract.variables_of(function):
            setting = variable.name.lower()
            if setting in type(data).model_fields:
                assert variables[variable.name] == contract.format_value(getattr(data, setting))
    processor = deployed[contract.HANDLERS[contract.PROCESSOR]]["Environment"]["Variables"]
    batching = deployed[contract.HANDLERS[contract.BATCHING]]["Environment"]["Variables"]
    assert processor["PROCESSED_PREFIX"] == contract.PROCESSED_PREFIX
    assert batching["QUARANTINE_PREFIX"] == contract.QUARANTINE_PREFIX


def test_functions_run_python_312_on_arm64_with_tracing(synthesized: SynthesizedApp) -> None:
    for function in functions(synthesized, "dev").values():
        assert function["Runtime"] == "python3.12"
        assert function["Architectures"] == ["arm64"]
        assert function["TracingConfig"] == {"Mode": "Active"}


def test_layers_come_from_the_table_for_the_region(synthesized: SynthesizedApp) -> None:
    processor = functions(synthesized, "prod")["energy_runtime.processor.handler"]
    batching = functions(synthesized, "prod")["energy_runtime.batching.handler"]
    region = "eu-central-1"

    assert processor["Layers"] == [
        managed_layers.arn(region, layer, "arm64")
        for layer in (ManagedLayer.POWERTOOLS, ManagedLayer.SDK_PANDAS)
    ]
    assert batching["Layers"] == [managed_layers.arn(region, ManagedLayer.POWERTOOLS, "arm64")]


def test_code_asset_is_the_runtime_directory(synthesized: SynthesizedApp) -> None:
    keys = {function["Code"]["S3Key"] for function in functions(synthesized, "dev").values()}
    (key,) = keys  # both handlers share one asset
    asset_dir = synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
    assert (asset_dir / "energy_runtime" / "contract.py").is_file()
    assert not list(asset_dir.rglob("__pycache__"))
    assert not list(asset_dir.rglob("*.pyc"))


def role_statements(app: SynthesizedApp, environment: str, prefix: str) -> list[dict[str, Any]]:
    policies = app.resources(environment, "Processing", "AWS::IAM::Policy")
    (policy,) = [p for lid, p in policies.items() if lid.startswith(f"{prefix}RoleDefaultPolicy")]
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    found = set()
    for statement in statements:
        action = statement["Action"]
        found.update(action if isinstance(action, list) else [action])
    return found


def test_batching_role_is_least_privilege(synthesized: SynthesizedApp) -> None:
    statements = role_statements(synthesized, "dev", "Batching")
    actions = actions_of(statements)

    assert "sqs:SendMessage" in actions
    assert "s3:PutObject" in actions
    assert not any(a.startswith(("dynamodb:", "sns:", "s3:Get", "s3:Delete")) for a in actions)
    (put,) = [s for s in statements if s["Action"] == "s3:PutObject"]
    assert put["Resource"]["Fn::Join"][1][-1] == "/quarantine/*"


def test_processor_role_is_least_privilege(synthesized: SynthesizedApp) -> None:
    statements = role_statements(synthesized, "dev", "Processor")
    actions = actions_of(statements)

    # Exactly what energy_runtime.store calls: no Scan, DeleteItem or stream reads.
    assert {a for a in actions if a.startswith("dynamodb:")} == {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",  # the silence sweep's mark
    }
    # The silence sweep lists one group's members; places are read thing by thing.
    iot = {s["Action"]: s["Resource"] for s in statements if str(s["Action"]).startswith("iot:")}
    assert set(iot) == {"iot:DescribeThing", "iot:ListThingsInThingGroup"}
    assert "thinggroup/energy-dev-meters" in json.dumps(iot["iot:ListThingsInThingGroup"])
    assert {"sns:Publish", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey*"} <= actions
    assert not any(a.startswith(("kinesis:Put", "s3:Delete", "s3:Get")) for a in actions)
    puts = [s for s in statements if s["Action"] == "s3:PutObject"]
    resources = [r for put in puts for r in _as_list(put["Resource"])]
    prefixes = sorted(resource["Fn::Join"][1][-1] for resource in resources)
    assert prefixes == ["/processed/*", "/quarantine/*"]


def test_function_roles_carry_no_managed_policies(synthesized: SynthesizedApp) -> None:
    roles = synthesized.resources("dev", "Processing", "AWS::IAM::Role")
    for logical_id, role in roles.items():
        if logical_id.startswith(("BatchingRole", "ProcessorRole")):
            assert "ManagedPolicyArns" not in role["Properties"], logical_id


def test_queues_are_encrypted_tls_only_and_the_handoff_has_a_dlq(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    queues = synthesized.resources("dev", "Processing", "AWS::SQS::Queue")
    assert len(queues) == 3
    for queue in queues.values():
        assert "Fn::ImportValue" in str(queue["Properties"]["KmsMasterKeyId"])
    (handoff,) = [q for lid, q in queues.items() if lid.startswith("Handoff3")]
    redrive = handoff["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == environments["dev"].batching.handoff_max_receive_count
    assert handoff["Properties"]["VisibilityTimeout"] == (
        6 * environments["dev"].functions.processor_timeout_seconds
    )
    for policy in synthesized.resources("dev", "Processing", "AWS::SQS::QueuePolicy").values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alert_topic_is_encrypted(synthesized: SynthesizedApp) -> None:
    topic = synthesized.one("dev", "Processing", "AWS::SNS::Topic")
    assert "Fn::ImportValue" in str(topic["Properties"]["KmsMasterKeyId"])


def test_log_groups_have_retention_and_the_cmk(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    groups = synthesized.resources("prod", "Processing", "AWS::Logs::LogGroup")
    assert len(groups) == 2
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == (
            environments["prod"].retention.log_retention_days
        )
        assert "KmsKeyId" in group["Properties"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_canary_deployment_rolls_back_on_alarm(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    groups = synthesized.resources(environment, "Processing", "AWS::CodeDeploy::DeploymentGroup")
    deployment = environments[environment].functions.deployment
    assert len(groups) == 2
    for group in groups.values():
        properties = group["Properties"]
        assert properties["AlarmConfiguration"]["Enabled"] is True
        assert len(properties["AlarmConfiguration"]["Alarms"]) == 1
        assert set(properties["AutoRollbackConfiguration"]["Events"]) >= {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
        }
        assert properties["DeploymentConfigName"] == DEPLOYMENT_CONFIGS[deployment]
    aliases = synthesized.resources(environment, "Processing", "AWS::Lambda::Alias")
    assert {alias["Properties"]["Name"] for alias in aliases.values()} == {"live"}
    for alias in aliases.values():
        assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_processor_takes_at_most_its_share_of_the_accounts_concurrency(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    sqs = mappings(synthesized, environment)["sqs"]
    assert sqs["ScalingConfig"] == {
        "MaximumConcurrency": environments[environment].batching.handoff_max_concurrency
    }
