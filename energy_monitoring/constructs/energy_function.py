"""A runtime handler as deployed: code asset, managed layers, alias, canary deployment.

Each function gets its own role with only what it is granted (no managed policies), an
encrypted log group with retention, X-Ray tracing, and a `live` alias that CodeDeploy
shifts gradually to new versions, rolling back when the alias reports errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from energy_monitoring.application_paths import RUNTIME_DIR
from energy_monitoring.config import EnvironmentConfig

ALIAS_NAME = "live"
METRICS_NAMESPACE = "EnergyMonitoring"
# Build output and caches must not reach the asset, or its hash churns between machines.
ASSET_EXCLUDES = [
    "tests",
    "**/__pycache__",
    "**/*.pyc",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "*.egg-info",
]


class ManagedLayer(Enum):
    """Layers AWS publishes (no Docker build): account id and name pattern."""

    POWERTOOLS = ("017000801446", "AWSLambdaPowertoolsPythonV3-python312-{arch}")
    SDK_PANDAS = ("336392948345", "AWSSDKPandas-Python312{arm_suffix}")


def managed_layer_arn(
    stack: cdk.Stack, layer: ManagedLayer, *, architecture: str, version: int
) -> str:
    account, pattern = layer.value
    name = pattern.format(arch=architecture, arm_suffix="-Arm64" if architecture == "arm64" else "")
    # The region token keeps env-agnostic stacks deployable in any region.
    return f"arn:{stack.partition}:lambda:{stack.region}:{account}:layer:{name}:{version}"


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
        stack = cdk.Stack.of(self)
        settings = config.functions
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=cdk.RemovalPolicy.DESTROY,
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
                    managed_layer_arn(
                        stack,
                        layer,
                        architecture=settings.architecture,
                        version=(
                            settings.powertools_layer_version
                            if layer is ManagedLayer.POWERTOOLS
                            else settings.sdk_pandas_layer_version
                        ),
                    ),
                )
                for layer in layers
            ],
            memory_size=memory_mb,
            timeout=cdk.Duration.seconds(timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": settings.log_level,
                **environment,
            },
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
