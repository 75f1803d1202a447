"""The data reader policies: a processed-data reader runs Athena queries over the interval
table and cannot read `raw/`; the raw-data reader adds the raw readings; QuickSight's role
gets both by a setting, with no edit of the key policy."""

from __future__ import annotations

import copy
from typing import Any

from energy_runtime import contract

from infra.conftest import QUICKSIGHT_ROLE
from infra.iam_evaluation import Deployment, Request, evaluate
from infra.synthesis import ARCHIVE_BUCKET, SynthesizedApp

ANALYST = "analyst-role"


def policies(app: SynthesizedApp, environment: str) -> dict[str, dict[str, Any]]:
    found = app.resources(environment, "Storage", "AWS::IAM::ManagedPolicy")
    return {
        ("raw" if lid.startswith("ReadersRaw") else "processed"): p["Properties"]
        for lid, p in found.items()
    }


def with_policies(deployment: Deployment, app: SynthesizedApp, *kinds: str) -> Deployment:
    """A copy of the deployment with the analyst's role holding these reader policies."""
    deployment = copy.deepcopy(deployment)
    for resource in deployment.resources("AWS::IAM::ManagedPolicy"):
        kind = "raw" if resource.logical_id.startswith("ReadersRaw") else "processed"
        if kind in kinds:
            resource.properties.setdefault("Roles", []).append(ANALYST)
    return deployment


def allowed(deployment: Deployment, role: str, action: str, resource: str) -> bool:
    via_s3 = {"kms:ViaService": f"s3.{deployment.region}.amazonaws.com"}
    request = Request(role, action, resource, via_s3 if action.startswith("kms:") else {})
    identity = deployment.identity_policies(role)
    if action.startswith("kms:"):
        key_policy = [deployment.key_policy(resource)]
        return evaluate(
            request, account=deployment.account, resource_policies=key_policy,
            identity_policy=identity, key_policy=True,
        ).allowed  # fmt: skip
    return evaluate(
        request, account=deployment.account, resource_policies=[], identity_policy=identity
    ).allowed


def arns(deployment: Deployment) -> dict[str, str]:
    (key,) = [
        k for k in deployment.resources("AWS::KMS::Key") if k.logical_id.startswith("DataKey")
    ]
    buckets = {b.logical_id: b for b in deployment.resources("AWS::S3::Bucket")}
    (workgroup,) = deployment.resources("AWS::Athena::WorkGroup")
    name = deployment.resolve(workgroup.stack, workgroup.properties["Name"])
    return {
        "key": deployment._attribute(key, "Arn"),
        "archive": next(deployment._attribute(b, "Arn") for lid, b in buckets.items()
                        if ARCHIVE_BUCKET.fullmatch(lid)),
        "results": next(deployment._attribute(b, "Arn") for lid, b in buckets.items()
                        if lid.startswith("ArchiveAthenaResults")),
        "workgroup": f"arn:aws:athena:{deployment.region}:{deployment.account}:workgroup/{name}",
    }  # fmt: skip


def requests(a: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    return {
        "query": [
            ("athena:StartQueryExecution", a["workgroup"]),
            ("athena:GetQueryResults", a["workgroup"]),
            ("s3:GetObject", f"{a['archive']}/{contract.INTERVALS_PREFIX}year=2026/x.parquet"),
            ("s3:PutObject", f"{a['results']}/query-id.csv"),
            ("kms:Decrypt", a["key"]),
            ("kms:GenerateDataKey", a["key"]),
        ],
        "raw": [("s3:GetObject", f"{a['archive']}/{contract.RAW_PREFIX}year=2026/x.parquet")],
        "never": [
            ("athena:StartQueryExecution", f"{a['workgroup']}-other"),
            ("s3:GetObject", f"{a['archive']}/{contract.QUARANTINE_PREFIX}year=2026/x.jsonl"),
            ("s3:PutObject", f"{a['archive']}/{contract.PROCESSED_PREFIX}x.parquet"),
            ("s3:DeleteObject", f"{a['results']}/query-id.csv"),
            ("kms:Encrypt", a["key"]),
            ("dynamodb:GetItem", "*"),
        ],
    }


def test_a_processed_reader_runs_queries_and_cannot_read_raw(synthesized: SynthesizedApp) -> None:
    for environment in ("dev", "prod"):
        deployment = with_policies(synthesized.deployment(environment), synthesized, "processed")
        role = f"arn:aws:iam::{deployment.account}:role/{ANALYST}"
        wanted = requests(arns(deployment))
        assert [r for r in wanted["query"] if not allowed(deployment, role, *r)] == []
        assert [r for r in wanted["raw"] + wanted["never"] if allowed(deployment, role, *r)] == []


def test_the_raw_reader_adds_raw_readings_and_nothing_else(synthesized: SynthesizedApp) -> None:
    deployment = with_policies(synthesized.deployment("prod"), synthesized, "processed", "raw")
    role = f"arn:aws:iam::{deployment.account}:role/{ANALYST}"
    wanted = requests(arns(deployment))
    assert [r for r in wanted["query"] + wanted["raw"] if not allowed(deployment, role, *r)] == []
    assert [r for r in wanted["never"] if allowed(deployment, role, *r)] == []


def test_the_data_key_is_used_through_s3_only(synthesized: SynthesizedApp) -> None:
    deployment = with_policies(synthesized.deployment("prod"), synthesized, "processed")
    role = f"arn:aws:iam::{deployment.account}:role/{ANALYST}"
    key = arns(deployment)["key"]
    direct = Request(role, "kms:Decrypt", key, {})
    assert not evaluate(
        direct, account=deployment.account, resource_policies=[deployment.key_policy(key)],
        identity_policy=deployment.identity_policies(role), key_policy=True,
    ).allowed  # fmt: skip


def test_quicksight_gets_both_by_the_setting(variant: SynthesizedApp) -> None:
    found = policies(variant, "dev")
    assert (
        found["processed"]["Roles"] == found["raw"]["Roles"] == ["aws-quicksight-service-role-v0"]
    )
    deployment = variant.deployment("dev")
    role = f"arn:aws:iam::{deployment.account}:role/{QUICKSIGHT_ROLE}"
    wanted = requests(arns(deployment))
    assert [r for r in wanted["query"] + wanted["raw"] if not allowed(deployment, role, *r)] == []
    assert [r for r in wanted["never"] if allowed(deployment, role, *r)] == []


def test_without_the_setting_no_role_has_them(synthesized: SynthesizedApp) -> None:
    for environment in ("dev", "staging", "prod"):
        for policy in policies(synthesized, environment).values():
            assert "Roles" not in policy
            assert all(s["Resource"] != "*" for s in policy["PolicyDocument"]["Statement"])
        outputs = synthesized.template(environment, "Storage")["Outputs"]
        assert contract.Output.PROCESSED_READER_POLICY_ARN in outputs
        assert contract.Output.RAW_READER_POLICY_ARN in outputs
