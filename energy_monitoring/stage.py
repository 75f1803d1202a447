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
from energy_monitoring.stacks.storage import StorageStack


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
        self.storage = StorageStack(self, storage_id, config=config, **common)
        self.ingest = IngestStack(
            self, ingest_id, config=config, storage=self.storage.resources, **common
        )
        self.processing = ProcessingStack(
            self,
            processing_id,
            config=config,
            storage=self.storage.resources,
            stream=self.ingest.resources.stream,
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
        for stack in (self.storage, self.ingest, self.processing, self.observability):
            cdk.Tags.of(stack).add("project", "energy-monitoring")
            cdk.Tags.of(stack).add("environment", config.name)
        nag_suppressions.apply(
            stacks=(self.storage, self.ingest, self.processing, self.observability),
            stream_failures=self.processing.resources.stream_failures,
        )
