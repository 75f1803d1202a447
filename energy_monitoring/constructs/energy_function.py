"""A runtime handler as deployed: code asset, managed layers, alias, canary deployment.

Each function gets its own role with only what it is granted (no managed policies), an
encrypted log group with retention, X-Ray tracing, and a `live` alias that CodeDeploy
shifts gradually to new versions, rolling back when the alias reports errors.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from energy_monitoring import managed_layers
from energy_monitoring.application_paths import RUNTIME_DIR
from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.retention import removal_policy
from energy_monitoring.managed_layers import ManagedLayer

ALIAS_NAME = "live"
# Build output and caches must not reach the asset, or its hash churns between machines.
ASSET_EXCLUDES = [
    "tests",
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "*.egg-info",
]


LAYER_MAPPING_ID = "ManagedLayerArns"


def managed_layer_arn(scope: Construct, layer: ManagedLayer, *, architecture: str) -> str:
    """The layer's ARN in the stack's region: from the table at synthesis when the region
    is known, else `Fn::FindInMap` on `AWS::Region` over the table (resolved at deploy)."""
    stack = cdk.Stack.of(scope)
    if not cdk.Token.is_unresolved(stack.region):
        arn = managed_layers.arn(stack.region, layer, architecture)
        if arn is None:  # configuration validation names the region first
            raise ValueError(f"{stack.stack_name}: no {layer.value} layer in {stack.region}")
        return arn
    mapping_id = f"{LAYER_MAPPING_ID}{architecture.replace('_', '').title()}"
    mapping = stack.node.try_find_child(mapping_id)
    if not isinstance(mapping, cdk.CfnMapping):
        mapping = cdk.CfnMapping(
            stack,
            mapping_id,
            mapping=managed_layers.regions(tuple(ManagedLayer), architecture),
        )
    return mapping.find_in_map(cdk.Aws.REGION, layer.mapping_key)


class EnergyFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        service_name: str,
        handler: str,
        description: str,
        memory_mb: int,
        timeout_seconds: int,
        layers: tuple[ManagedLayer, ...],
        environment: Mapping[str, str],
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.functions
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=removal_policy(config),
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {service_name}",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=(
                lambda_.Architecture.ARM_64
                if settings.architecture == "arm64"
                else lambda_.Architecture.X86_64
            ),
            handler=handler,
            code=lambda_.Code.from_asset(str(RUNTIME_DIR), exclude=ASSET_EXCLUDES),
            layers=[
                lambda_.LayerVersion.from_layer_version_arn(
                    self,
                    f"Layer{layer.name.title().replace('_', '')}",
                    managed_layer_arn(self, layer, architecture=settings.architecture),
                )
                for layer in layers
            ],
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment=dict(environment),
        )
        self.alias = lambda_.Alias(
            self, "Live", alias_name=ALIAS_NAME, version=self.function.current_version
        )
        self.rollback_alarm = cloudwatch.Alarm(
            self,
            "AliasErrors",
            alarm_description=f"{service_name}: the live alias reports errors (rolls back)",
            metric=self.alias.metric_errors(period=cdk.Duration.minutes(1)),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "Deployment",
            alias=self.alias,
            deployment_config=getattr(codedeploy.LambdaDeploymentConfig, settings.deployment),
            alarms=[self.rollback_alarm],
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
