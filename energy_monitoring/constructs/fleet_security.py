"""Continuous security monitoring of the meter fleet with IoT Device Defender.

Audit is what every account can use: a daily scheduled audit of the checks that matter
for meters (shared or revoked-but-active certificates, conflicting client ids, overly
permissive policies, expiring certificates, logging switched off), findings to the ops
topic. The audit configuration is one per account and region, like IoT logging: the
environment with `security.audit: create` owns it, `existing` schedules its audit on the
account's configuration, `off` does neither.

Detect has been closed to new customers since 31 August 2026: its security profiles fail
to create in an account that never used it, so they are opt-in (`security.detect`). When
on, one rules profile and one ML profile (a profile is one type or the other) watch the
environment's own thing group, never every thing in the account.
"""

from __future__ import annotations

from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_sns as sns
from constructs import Construct

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.grants import role_policy

# The audit checks that matter for meters, as Device Defender names them; each is enabled
# in AWS::IoT::AccountAuditConfiguration by the property of its lowercase name.
AUDIT_CHECKS: Final = (
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "LOGGING_DISABLED_CHECK",
)
# The documented service policy Device Defender Audit needs to read the account's setup.
AUDIT_MANAGED_POLICY: Final = "service-role/AWSIoTDeviceDefenderAudit"
AUTHORIZATION_FAILURES_PER_5_MIN: Final = 5
DISCONNECTS_PER_5_MIN: Final = 10


class FleetSecurity(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        topic: sns.ITopic,
        thing_group_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.audit_configuration: iot.CfnAccountAuditConfiguration | None = None
        self.scheduled_audit: iot.CfnScheduledAudit | None = None
        self.profiles: list[iot.CfnSecurityProfile] = []
        security = config.security
        if security.audit == "off" and not security.detect:
            return
        # Device Defender publishes findings and violations through this role.
        self.notification_role = iam.Role(
            self,
            "NotificationRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets Device Defender publish audit findings and violations to ops",
        )
        topic.grant_publish(self.notification_role)
        if security.audit == "create":
            self.audit_configuration = self._audit_configuration(topic)
        if security.audit != "off":
            self.scheduled_audit = iot.CfnScheduledAudit(
                self,
                "DailyAudit",
                frequency="DAILY",
                target_check_names=list(AUDIT_CHECKS),
            )
            if self.audit_configuration is not None:
                # The checks must be enabled before an audit may name them.
                self.scheduled_audit.node.add_dependency(self.audit_configuration)
        if security.detect:
            self.profiles = self._detect_profiles(config, topic, thing_group_arn)

    def _audit_configuration(self, topic: sns.ITopic) -> iot.CfnAccountAuditConfiguration:
        audit_role = iam.Role(
            self,
            "AuditRole",
            assumed_by=iam.ServicePrincipal("iot.amazonaws.com"),
            description="Lets Device Defender Audit read the account's IoT configuration",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(AUDIT_MANAGED_POLICY)],
        )
        enabled: dict[str, Any] = {"enabled": True}
        configuration = iot.CfnAccountAuditConfiguration(
            self,
            "AuditConfiguration",
            account_id=cdk.Stack.of(self).account,
            role_arn=audit_role.role_arn,
            audit_check_configurations=iot.CfnAccountAuditConfiguration.AuditCheckConfigurationsProperty(
                **{check.lower(): enabled for check in AUDIT_CHECKS}
            ),
            audit_notification_target_configurations=iot.CfnAccountAuditConfiguration.AuditNotificationTargetConfigurationsProperty(
                sns=iot.CfnAccountAuditConfiguration.AuditNotificationTargetProperty(
                    enabled=True,
                    role_arn=self.notification_role.role_arn,
                    target_arn=topic.topic_arn,
                )
            ),
        )
        configuration.node.add_dependency(role_policy(self.notification_role))
        return configuration

    def _detect_profiles(
        self, config: EnvironmentConfig, topic: sns.ITopic, thing_group_arn: str
    ) -> list[iot.CfnSecurityProfile]:
        profile = iot.CfnSecurityProfile
        alert_targets = {
            "SNS": profile.AlertTargetProperty(
                alert_target_arn=topic.topic_arn, role_arn=self.notification_role.role_arn
            )
        }

        def above(
            count: int, seconds: int | None = 300
        ) -> iot.CfnSecurityProfile.BehaviorCriteriaProperty:
            return profile.BehaviorCriteriaProperty(
                comparison_operator="greater-than",
                value=profile.MetricValueProperty(count=str(count)),
                duration_seconds=seconds,
                consecutive_datapoints_to_alarm=1,
                consecutive_datapoints_to_clear=1,
            )

        def learned() -> iot.CfnSecurityProfile.BehaviorCriteriaProperty:
            return profile.BehaviorCriteriaProperty(
                ml_detection_config=profile.MachineLearningDetectionConfigProperty(
                    confidence_level="HIGH"
                )
            )

        rules = profile(
            self,
            "RulesProfile",
            security_profile_description="Meters: authorization failures, oversized messages, "
            "repeated disconnects",
            behaviors=[
                profile.BehaviorProperty(
                    name="AuthorizationFailures",
                    metric="aws:num-authorization-failures",
                    criteria=above(AUTHORIZATION_FAILURES_PER_5_MIN),
                ),
                profile.BehaviorProperty(
                    name="OversizedMessages",
                    metric="aws:message-byte-size",
                    # Larger payloads are quarantined unread; a meter sending them is broken
                    # or hostile.
                    criteria=above(config.data.max_payload_bytes, seconds=None),
                ),
                profile.BehaviorProperty(
                    name="RepeatedDisconnects",
                    metric="aws:num-disconnects",
                    criteria=above(DISCONNECTS_PER_5_MIN),
                ),
            ],
            alert_targets=alert_targets,
            target_arns=[thing_group_arn],
        )
        # ML Detect learns each meter's normal volume; no fixed threshold to tune.
        learned_profile = profile(
            self,
            "MachineLearningProfile",
            security_profile_description="Meters: message volume and connection attempts "
            "outside what ML Detect learned",
            behaviors=[
                profile.BehaviorProperty(
                    name="MessageVolume", metric="aws:num-messages-sent", criteria=learned()
                ),
                profile.BehaviorProperty(
                    name="ConnectionAttempts",
                    metric="aws:num-connection-attempts",
                    criteria=learned(),
                ),
            ],
            alert_targets=alert_targets,
            target_arns=[thing_group_arn],
        )
        for created in (rules, learned_profile):
            created.node.add_dependency(role_policy(self.notification_role))
        return [rules, learned_profile]
