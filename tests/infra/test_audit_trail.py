"""The audit trail (`audit.cloudtrail`, on in prod): validated, encrypted with its own key,
its own versioned bucket with a lifecycle, delivered to CloudWatch Logs; S3 data events on
raw/ and processed/ only where `audit.data_events` asks for them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from energy_runtime import contract

from energy_monitoring.config import ConfigError, parse_environment
from infra.synthesis import SynthesizedApp


def one(app: SynthesizedApp, environment: str, type_: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = app.resources(environment, "Storage", type_).items()
    return logical_id, resource["Properties"]


def test_prod_has_a_validated_encrypted_trail_without_data_events(
    synthesized: SynthesizedApp,
) -> None:
    _, trail = one(synthesized, "prod", "AWS::CloudTrail::Trail")
    assert trail["EnableLogFileValidation"] is True
    assert trail["IsLogging"] is True and trail["IsMultiRegionTrail"] is False
    assert trail["TrailName"] == "energy-prod-audit"
    assert "CloudWatchLogsLogGroupArn" in trail and "CloudWatchLogsRoleArn" in trail
    assert not [s for s in trail.get("EventSelectors", []) if s.get("DataResources")]
    keys = synthesized.resources("prod", "Storage", "AWS::KMS::Key")
    (audit_key,) = [lid for lid in keys if lid.startswith("Audit")]
    assert trail["KMSKeyId"] == {"Fn::GetAtt": [audit_key, "Arn"]}
    # Only this trail may have the key make data keys for it.
    statements = keys[audit_key]["Properties"]["KeyPolicy"]["Statement"]
    (cloudtrail,) = [s for s in statements if s.get("Sid") == "CloudTrailEncryptsThisTrail"]
    assert cloudtrail["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert "aws:SourceArn" in cloudtrail["Condition"]["StringEquals"]
    assert "AuditTrailArn" in synthesized.template("prod", "Storage")["Outputs"]


def test_the_trails_bucket_is_its_own_versioned_expiring_and_logged(
    synthesized: SynthesizedApp, environments: dict[str, Any]
) -> None:
    _, trail = one(synthesized, "prod", "AWS::CloudTrail::Trail")
    bucket_id = trail["S3BucketName"]["Ref"]
    bucket = synthesized.template("prod", "Storage")["Resources"][bucket_id]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == environments["prod"].audit.expire_after_days == 2555
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "audit-trail/"
    _, group = one(synthesized, "prod", "AWS::Logs::LogGroup")
    assert "KmsKeyId" in group and group["RetentionInDays"] == 365


def test_environments_without_the_setting_have_no_trail(synthesized: SynthesizedApp) -> None:
    for environment in ("dev", "staging"):
        assert synthesized.resources(environment, "Storage", "AWS::CloudTrail::Trail") == {}


def test_data_events_cover_raw_and_processed_only(variant: SynthesizedApp) -> None:
    _, trail = one(variant, "dev", "AWS::CloudTrail::Trail")
    (selector,) = [s for s in trail["EventSelectors"] if s.get("DataResources")]
    (resource,) = selector["DataResources"]
    assert resource["Type"] == "AWS::S3::Object"
    values = json.dumps(resource["Values"])
    for prefix in (contract.RAW_PREFIX, contract.PROCESSED_PREFIX):
        assert f"/{prefix}" in values
    assert len(resource["Values"]) == 2 and contract.QUARANTINE_PREFIX not in values


def test_data_events_need_the_trail() -> None:
    with pytest.raises(ConfigError, match=re.escape("audit.data_events: needs audit.cloudtrail")):
        parse_environment(
            "qa",
            {"account": "333333333333", "region": "eu-central-1",
             "alarms": {"ops_email": "ops@example.com"}, "audit": {"data_events": True}},
        )  # fmt: skip
