"""Replica: the disaster-recovery copy of the archive, in `dr.replica_region`.

Its own key and access-log bucket, and a versioned bucket with the archive's lifecycle and
public-access block. The archive's replication rules (constructs/replication.py, in the
Storage stack) write to it; nothing else does.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.constructs.buckets import access_log_bucket, archive_lifecycle, data_bucket
from energy_monitoring.constructs.keys import environment_key, key_alias
from energy_monitoring.constructs.replication import REPLICA_KEY_PURPOSE, ReplicaTarget


class ReplicaStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        region: str,
        termination_protection: bool,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=region),
            description=f"Energy monitoring ({config.name}): disaster-recovery copy of the archive",
            termination_protection=termination_protection,
        )
        key = environment_key(
            self,
            "ReplicaKey",
            config=config,
            purpose=REPLICA_KEY_PURPOSE,
            description=f"Encrypts the disaster-recovery copy of the {config.name} archive",
        )
        access_logs = access_log_bucket(self, "ReplicaAccessLogs", config=config)
        bucket = data_bucket(
            self,
            "ReplicaBucket",
            config=config,
            key=key,
            access_logs=access_logs,
            purpose="replica",
            lifecycle_rules=archive_lifecycle(config),
            versioned=True,  # a replication destination must be versioned
            bucket_name=cdk.PhysicalName.GENERATE_IF_NEEDED,
        )
        self.target = ReplicaTarget(
            bucket=bucket, region=region, key_alias=key_alias(config, REPLICA_KEY_PURPOSE)
        )
        cdk.CfnOutput(self, "ReplicaBucketName", value=bucket.bucket_name,
                      description="S3 bucket of the archive's disaster-recovery copy")  # fmt: skip
        cdk.CfnOutput(self, "ReplicaKeyArn", value=key.key_arn,
                      description="KMS key encrypting the disaster-recovery copy")  # fmt: skip
