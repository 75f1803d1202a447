"""One environment: its four stacks, wired together with typed references."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct
from energy_runtime import contract

from energy_monitoring import nag_suppressions
from energy_monitoring.config import EnvironmentConfig
from energy_monitoring.stacks.ingest import IngestStack
from energy_monitoring.stacks.observability import ObservabilityStack
from energy_monitoring.stacks.processing import ProcessingStack
from energy_monitoring.stacks.replica import ReplicaStack
from energy_monitoring.stacks.storage import StorageStack

# Only in environments with dr.replica_region, in that region.
REPLICA_STACK_ID = "Replica"


class EnergyStage(cdk.Stage):
    def __init__(self, scope: Construct, stage_id: str, *, config: EnvironmentConfig) -> None:
        env = (
            cdk.Environment(account=config.account, region=config.region)
            if config.account
            else None
        )
        super().__init__(scope, stage_id, env=env)
        common = {"termination_protection": config.deletion_protection}

        storage_id, ingest_id, processing_id, observability_id = contract.STACK_IDS
        # Deployed first: the archive's replication rules name its bucket and key alias.
        self.replica = (
            ReplicaStack(
                self, REPLICA_STACK_ID, config=config, region=config.dr.replica_region, **common
            )
            if config.dr.replica_region
            else None
        )
        self.storage = StorageStack(
            self,
            storage_id,
            config=config,
            replica=self.replica.target if self.replica else None,
            **common,
        )
        if self.replica:
            self.storage.add_stack_dependency(self.replica)
        self.ingest = IngestStack(
            self, ingest_id, config=config, storage=self.storage.resources, **common
        )
        self.processing = ProcessingStack(
            self,
            processing_id,
            config=config,
            storage=self.storage.resources,
            stream=self.ingest.resources.stream,
            meter_group_name=self.ingest.resources.thing_group_name,
            **common,
        )
        self.observability = ObservabilityStack(
            self,
            observability_id,
            config=config,
            storage=self.storage.resources,
            ingest=self.ingest.resources,
            processing=self.processing.resources,
            **common,
        )
        # Ingest and Processing address the archive bucket by name: make the order explicit.
        self.ingest.add_stack_dependency(self.storage)
        self.processing.add_stack_dependency(self.ingest)
        self.observability.add_stack_dependency(self.processing)
        stacks = (
            *((self.replica,) if self.replica else ()),
            self.storage, self.ingest, self.processing, self.observability,
        )  # fmt: skip
        for stack in stacks:
            cdk.Tags.of(stack).add("project", "energy-monitoring")
            cdk.Tags.of(stack).add("environment", config.name)
        nag_suppressions.apply(
            stacks=stacks,
            stream_failures=self.processing.resources.stream_failures,
        )
