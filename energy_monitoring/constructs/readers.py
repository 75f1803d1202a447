"""Read access to the processed data, in one place: a managed policy for whoever analyses
it through Athena (QuickSight's service role when `analytics.quicksight_service_role` is
set; any analyst role an administrator attaches it to).

What Athena needs to run a query for a reader, and nothing else: the environment's
workgroup; the Glue database and its tables (partition projection: no partitions to list);
the archive's `processed/` and `raw/` objects; the workgroup's results bucket (Athena
writes each result there as the reader); and the data key, which encrypts both buckets
and the results (SSE-KMS). The key policy lets the account's IAM policies grant the key,
so the grant here needs no edit of the key policy that the next deploy would revert.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct
from energy_runtime import contract


def role_arn(scope: Construct, role: str) -> str:
    """The ARN of a role given by ARN or by `[path/]name` in this stack's account."""
    if role.startswith("arn:"):
        return role
    stack = cdk.Stack.of(scope)
    return f"arn:{stack.partition}:iam::{stack.account}:role/{role}"


class ProcessedDataReaders(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        archive: s3.IBucket,
        results: s3.IBucket,
        key: kms.IKey,
        database_name: str,
        table_names: list[str],
        workgroup_name: str,
        quicksight_service_role: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        catalog_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:catalog"
        readable_prefixes = (contract.PROCESSED_PREFIX, contract.RAW_PREFIX)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            # No fixed name: IAM names are account-wide, and an environment without a
            # region may be deployed in two regions of one account.
            description=f"Read {stage_name}'s processed data through Athena (QuickSight, analysts)",
            statements=[
                iam.PolicyStatement(
                    sid="AthenaWorkgroup",
                    actions=[
                        "athena:GetWorkGroup",
                        "athena:StartQueryExecution",
                        "athena:StopQueryExecution",
                        "athena:GetQueryExecution",
                        "athena:GetQueryResults",
                        "athena:GetQueryResultsStream",
                    ],
                    resources=[
                        f"arn:{stack.partition}:athena:{stack.region}:{stack.account}:"
                        f"workgroup/{workgroup_name}"
                    ],
                ),
                iam.PolicyStatement(
                    sid="AthenaCatalog",
                    actions=["athena:GetDataCatalog"],
                    resources=[
                        f"arn:{stack.partition}:athena:{stack.region}:{stack.account}:"
                        "datacatalog/AwsDataCatalog"
                    ],
                ),
                iam.PolicyStatement(
                    sid="GlueTables",
                    actions=[
                        "glue:GetDatabase",
                        "glue:GetTable",
                        "glue:GetTables",
                        "glue:GetPartition",
                        "glue:GetPartitions",
                    ],
                    resources=[
                        catalog_arn,
                        f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:"
                        f"database/{database_name}",
                        *(
                            f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:"
                            f"table/{database_name}/{table}"
                            for table in table_names
                        ),
                    ],
                ),
                iam.PolicyStatement(
                    sid="ArchiveObjects",
                    actions=["s3:GetObject"],
                    resources=[
                        archive.arn_for_objects(f"{prefix}*") for prefix in readable_prefixes
                    ],
                ),
                iam.PolicyStatement(
                    sid="ArchiveListing",
                    actions=["s3:ListBucket", "s3:GetBucketLocation"],
                    resources=[archive.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in readable_prefixes]}},
                ),
                iam.PolicyStatement(
                    sid="AthenaResults",
                    actions=[
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    resources=[results.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="AthenaResultsBucket",
                    actions=[
                        "s3:ListBucket",
                        "s3:GetBucketLocation",
                        "s3:ListBucketMultipartUploads",
                    ],
                    resources=[results.bucket_arn],
                ),
                iam.PolicyStatement(
                    sid="DataKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                ),
            ],
        )
        self.quicksight_role: iam.IRole | None = None
        if quicksight_service_role is not None:
            self.quicksight_role = iam.Role.from_role_arn(
                self,
                "QuickSightServiceRole",
                role_arn(self, quicksight_service_role),
                mutable=False,  # the account's role: attach this policy, change nothing else
            )
            self.policy.attach_to_role(self.quicksight_role)
