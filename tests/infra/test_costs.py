"""The cost model's count of what the stacks create is what they synthesize to."""

from __future__ import annotations

from energy_monitoring.costs import model
from infra.synthesis import SynthesizedApp


def count(app: SynthesizedApp, environment: str, type_: str) -> int:
    return sum(len(app.resources(environment, stack, type_)) for stack in app.stacks(environment))


def test_keys_alarms_and_dashboards_the_model_bills_are_the_stacks(
    synthesized: SynthesizedApp,
) -> None:
    from energy_monitoring.config import load_environments

    configs = {c.name: c for c in load_environments(synthesized.config)}
    for environment in ("dev", "staging", "prod"):
        design = model.Design.from_config(configs[environment], region="us-east-1")
        keys = model.customer_managed_keys(design)
        assert count(synthesized, environment, "AWS::KMS::Key") == keys
        assert count(synthesized, environment, "AWS::CloudWatch::Alarm") == model.alarms(design)
        assert count(synthesized, environment, "AWS::CloudWatch::Dashboard") == model.DASHBOARDS
