"""Read access to the data, in one place: two managed policies for whoever analyses it
through Athena.

- The processed-data reader: what running an Athena query over the interval table needs:
  the environment's workgroup, the Glue database and the interval table (partition
  projection: no partitions to list), the archive's `processed/` objects, the workgroup's
  results bucket (Athena writes each result there as the reader), and the data key, to
  decrypt and to encrypt results, used through S3 only.
- The raw-data reader adds `raw/` and the raw table: attach both for raw access.

QuickSight's service role gets both when `analytics.quicksight_service_role` is set (its
data sets include the raw readings). The key policy lets the account's IAM policies grant
the key, so no key policy is edited, and no deploy reverts an edit.
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


class DataReaders(Construct):
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
        interval_table_name: str,
        raw_table_name: str,
        workgroup_name: str,
        quicksight_service_role: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        glue_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        athena_arn = f"arn:{stack.partition}:athena:{stack.region}:{stack.account}"
        # No fixed names: IAM names are account-wide, and an environment without a region
        # may be deployed in two regions of one account.
        self.processed = iam.ManagedPolicy(
            self,
            "Processed",
            description=f"Query {stage_name}'s processed data through Athena",
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
                    resources=[f"{athena_arn}:workgroup/{workgroup_name}"],
                ),
                iam.PolicyStatement(
                    sid="AthenaCatalog",
                    actions=["athena:GetDataCatalog"],
                    resources=[f"{athena_arn}:datacatalog/AwsDataCatalog"],
                ),
                _glue_tables(glue_arn, database_name, interval_table_name),
                *_objects(archive, contract.PROCESSED_PREFIX, sid="Processed"),
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
                    sid="DataKeyThroughS3",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}
                    },
                ),
            ],
        )
        self.raw = iam.ManagedPolicy(
            self,
            "Raw",
            description=f"Query {stage_name}'s raw readings through Athena (with the "
            "processed-data reader policy)",
            statements=[
                _glue_tables(glue_arn, database_name, raw_table_name),
                *_objects(archive, contract.RAW_PREFIX, sid="Raw"),
            ],
        )
        self.quicksight_role: iam.IRole | None = None
        if quicksight_service_role is not None:
            self.quicksight_role = iam.Role.from_role_arn(
                self,
                "QuickSightServiceRole",
                role_arn(self, quicksight_service_role),
                mutable=False,  # the account's role: attach these policies, change nothing else
            )
            self.processed.attach_to_role(self.quicksight_role)
            self.raw.attach_to_role(self.quicksight_role)


def _glue_tables(glue_arn: str, database: str, table: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        actions=[
            "glue:GetDatabase",
            "glue:GetTable",
            "glue:GetTables",
            "glue:GetPartition",
            "glue:GetPartitions",
        ],
        resources=[
            f"{glue_arn}:catalog",
            f"{glue_arn}:database/{database}",
            f"{glue_arn}:table/{database}/{table}",
        ],
    )


def _objects(archive: s3.IBucket, prefix: str, *, sid: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            sid=f"{sid}Objects",
            actions=["s3:GetObject"],
            resources=[archive.arn_for_objects(f"{prefix}*")],
        ),
        iam.PolicyStatement(
            sid=f"{sid}Listing",
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[archive.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        ),
    ]
