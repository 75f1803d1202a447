"""Device Defender: Audit where every account can use it, Detect only when asked for.

Detect is closed to new customers since 31 August 2026, so a security profile fails a
first deploy into a fresh account: none may exist unless `security.detect` is on. The
audit configuration is one per account and region: only the environment that says
`create` may declare it.
"""

from __future__ import annotations

from typing import Any

import pytest

from energy_monitoring.constructs.fleet_security import AUDIT_CHECKS
from energy_monitoring.nag_suppressions import render
from infra.synthesis import SynthesizedApp

ENVIRONMENTS = ("dev", "staging", "prod")
# What matters for meters, as the checks are named by Device Defender.
METER_CHECKS = {
    "DEVICE_CERTIFICATE_SHARED_CHECK",
    "CONFLICTING_CLIENT_IDS_CHECK",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    "CA_CERTIFICATE_EXPIRING_CHECK",
    "LOGGING_DISABLED_CHECK",
}


def resources(app: SynthesizedApp, environment: str, type_: str) -> list[dict[str, Any]]:
    return [
        resource
        for (env, _stack), template in app.templates.items()
        if env == environment
        for resource in template["Resources"].values()
        if resource["Type"] == type_
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_detect_profile_unless_asked_for(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    assert environments[environment].security.detect is False
    assert resources(synthesized, environment, "AWS::IoT::SecurityProfile") == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_audit_configuration_exists_only_where_the_environment_owns_it(
    synthesized: SynthesizedApp, environment: str, environments: dict[str, Any]
) -> None:
    audit = environments[environment].security.audit
    configurations = resources(synthesized, environment, "AWS::IoT::AccountAuditConfiguration")
    scheduled = resources(synthesized, environment, "AWS::IoT::ScheduledAudit")

    assert len(configurations) == (1 if audit == "create" else 0)
    assert len(scheduled) == (0 if audit == "off" else 1)


def test_the_owner_enables_the_meter_checks_and_audits_them_daily(
    synthesized: SynthesizedApp,
) -> None:
    (configuration,) = resources(synthesized, "prod", "AWS::IoT::AccountAuditConfiguration")
    (audit,) = resources(synthesized, "prod", "AWS::IoT::ScheduledAudit")
    checks = configuration["Properties"]["AuditCheckConfigurations"]

    assert set(AUDIT_CHECKS) == METER_CHECKS
    assert audit["Properties"]["Frequency"] == "DAILY"
    assert set(audit["Properties"]["TargetCheckNames"]) == METER_CHECKS
    # Every check the audit names is enabled in the configuration, and nothing else.
    enabled = {name for name, setting in checks.items() if setting == {"Enabled": True}}
    assert len(enabled) == len(METER_CHECKS) == len(checks)
    # The scheduled audit waits for the configuration that enables its checks.
    (stack,) = [t for (env, name), t in synthesized.templates.items()
                if env == "prod" and name == "Observability"]  # fmt: skip
    (audit_id,) = [lid for lid, r in stack["Resources"].items()
                   if r["Type"] == "AWS::IoT::ScheduledAudit"]  # fmt: skip
    depends = stack["Resources"][audit_id].get("DependsOn", [])
    assert any(d.startswith("DeviceDefenderAuditConfiguration") for d in depends)


def test_the_audit_role_uses_the_documented_service_policy(synthesized: SynthesizedApp) -> None:
    roles = synthesized.resources("prod", "Observability", "AWS::IAM::Role")
    (audit_role,) = [r for lid, r in roles.items() if lid.startswith("DeviceDefenderAuditRole")]
    (arn,) = audit_role["Properties"]["ManagedPolicyArns"]
    assert arn["Fn::Join"][1][-1] == ":iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit"
    principal = audit_role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "iot.amazonaws.com"}


def test_detect_profiles_are_one_type_each_and_watch_the_environments_thing_group(
    variant: SynthesizedApp,
) -> None:
    profiles = [r["Properties"] for r in resources(variant, "dev", "AWS::IoT::SecurityProfile")]
    group = variant.one("dev", "Ingest", "AWS::IoT::ThingGroup")["Properties"]

    kinds = set()
    for profile in profiles:
        learned = {"MlDetectionConfig" in b["Criteria"] for b in profile["Behaviors"]}
        assert len(learned) == 1, "a profile is rules or ML, never both"
        kinds |= learned
        (target,) = profile["TargetArns"]
        # The environment's thing group, by its name (no export): never all/registered-things.
        assert render(target).endswith(f":thinggroup/{group['ThingGroupName']}")
        assert group["ThingGroupName"] == "alice-energy-dev-meters"
    assert kinds == {True, False}
    metrics = {b["Metric"] for p in profiles for b in p["Behaviors"]}
    assert {"aws:num-authorization-failures", "aws:num-messages-sent"} <= metrics


def test_an_environment_using_the_accounts_audit_only_schedules_its_audit(
    variant: SynthesizedApp,
) -> None:
    assert resources(variant, "dev", "AWS::IoT::AccountAuditConfiguration") == []
    (audit,) = resources(variant, "dev", "AWS::IoT::ScheduledAudit")
    assert set(audit["Properties"]["TargetCheckNames"]) == METER_CHECKS
