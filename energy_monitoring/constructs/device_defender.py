"""IoT Device Defender security profile over every registered meter."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_sns as sns
from constructs import Construct

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.grants import role_policy

AUTHORIZATION_FAILURES_PER_5_MIN = 5


class MeterSecurityProfile(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "AlertRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets Device Defender publish violations to the ops topic",
        )
        topic.grant_publish(role)
        behaviors = [
            iot.CfnSecurityProfile.BehaviorProperty(
                name="AuthorizationFailures",
                metric="aws:num-authorization-failures",
                criteria=iot.CfnSecurityProfile.BehaviorCriteriaProperty(
                    comparison_operator="greater-than",
                    value=iot.CfnSecurityProfile.MetricValueProperty(
                        count=str(AUTHORIZATION_FAILURES_PER_5_MIN)
                    ),
                    duration_seconds=300,
                    consecutive_datapoints_to_alarm=1,
                    consecutive_datapoints_to_clear=1,
                ),
            ),
            # ML Detect learns each fleet's normal message volume; no fixed threshold.
            iot.CfnSecurityProfile.BehaviorProperty(
                name="MessageVolumeAnomaly",
                metric="aws:num-messages-sent",
                criteria=iot.CfnSecurityProfile.BehaviorCriteriaProperty(
                    ml_detection_config=iot.CfnSecurityProfile.MachineLearningDetectionConfigProperty(
                        confidence_level="HIGH"
                    )
                ),
            ),
        ]
        self.profile = iot.CfnSecurityProfile(
            self,
            "Profile",
            security_profile_name=f"{config.resource_prefix}-meters",
            security_profile_description="Authorization failures and message-volume anomalies",
            behaviors=behaviors,
            alert_targets={
                "SNS": iot.CfnSecurityProfile.AlertTargetProperty(
                    alert_target_arn=topic.topic_arn, role_arn=role.role_arn
                )
            },
            target_arns=[
                f"arn:{stack.partition}:iot:{stack.region}:{stack.account}:all/registered-things"
            ],
        )
        self.profile.node.add_dependency(role_policy(role))
