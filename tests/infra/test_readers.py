"""The processed-data reader policy: QuickSight's service role reads through Athena what
an analyst needs, and nothing else, with no edit of the key policy."""

from __future__ import annotations

import re
from typing import Any

from energy_runtime import contract

from infra.conftest import QUICKSIGHT_ROLE
from infra.iam_evaluation import Deployment, Request, evaluate
from infra.synthesis import SynthesizedApp


def reader_policy(app: SynthesizedApp, environment: str) -> dict[str, Any]:
    (policy,) = app.resources(environment, "Storage", "AWS::IAM::ManagedPolicy").values()
    return dict(policy["Properties"])


def allowed(deployment: Deployment, role: str, action: str, resource: str) -> bool:
    request = Request(role, action, resource, {})
    identity = deployment.identity_policies(role)
    if action.startswith("kms:"):
        return evaluate(
            request,
            account=deployment.account,
            resource_policies=[deployment.key_policy(resource)],
            identity_policy=identity,
            key_policy=True,
        ).allowed
    return evaluate(
        request, account=deployment.account, resource_policies=[], identity_policy=identity
    ).allowed


def test_quicksight_reads_processed_and_raw_data_through_the_workgroup(
    variant: SynthesizedApp,
) -> None:
    deployment = variant.deployment("dev")
    role = f"arn:aws:iam::{deployment.account}:role/{QUICKSIGHT_ROLE}"
    assert reader_policy(variant, "dev")["Roles"] == ["aws-quicksight-service-role-v0"]
    (key,) = [k for k in deployment.resources("AWS::KMS::Key") if k.stack.endswith("Storage")]
    key_arn = deployment._attribute(key, "Arn")
    buckets = {b.logical_id: b for b in deployment.resources("AWS::S3::Bucket")}
    archive = next(deployment._attribute(b, "Arn") for lid, b in buckets.items()
                   if re.fullmatch(r"Archive[0-9A-F]{8}", lid))  # fmt: skip
    results = next(deployment._attribute(b, "Arn") for lid, b in buckets.items()
                   if lid.startswith("ArchiveAthenaResults"))  # fmt: skip
    (workgroup,) = deployment.resources("AWS::Athena::WorkGroup")
    name = deployment.resolve(workgroup.stack, workgroup.properties["Name"])
    workgroup_arn = f"arn:aws:athena:{deployment.region}:{deployment.account}:workgroup/{name}"

    yes = [
        ("athena:StartQueryExecution", workgroup_arn),
        ("athena:GetQueryResults", workgroup_arn),
        ("s3:GetObject", f"{archive}/{contract.INTERVALS_PREFIX}year=2026/x.parquet"),
        ("s3:GetObject", f"{archive}/{contract.RAW_PREFIX}year=2026/x.parquet"),
        ("s3:PutObject", f"{results}/query-id.csv"),
        ("kms:Decrypt", key_arn),
        ("kms:GenerateDataKey", key_arn),
    ]
    no = [
        ("athena:StartQueryExecution", f"{workgroup_arn}-other"),
        ("s3:GetObject", f"{archive}/{contract.QUARANTINE_PREFIX}year=2026/x.jsonl"),
        ("s3:PutObject", f"{archive}/{contract.PROCESSED_PREFIX}x.parquet"),
        ("s3:DeleteObject", f"{results}/query-id.csv"),
        ("kms:Encrypt", key_arn),
        ("dynamodb:GetItem", "*"),
    ]
    assert [a for a in yes if not allowed(deployment, role, *a)] == []
    assert [a for a in no if allowed(deployment, role, *a)] == []


def test_without_the_setting_the_policy_exists_for_analysts_but_no_role_has_it(
    synthesized: SynthesizedApp,
) -> None:
    for environment in ("dev", "staging", "prod"):
        policy = reader_policy(synthesized, environment)
        assert "Roles" not in policy
        statements = policy["PolicyDocument"]["Statement"]
        assert all(s["Resource"] != "*" for s in statements)
        outputs = synthesized.template(environment, "Storage")["Outputs"]
        assert contract.Output.READER_POLICY_ARN in outputs
