"""The dev environment's settings as cdk.json states them: the local pipeline deploys dev,
so the demo, the simulator's defaults and the benchmark describe the same fleet
(`fleet.reading_interval_seconds`, `fleet.readings_per_message`) as the cost model."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from energy_monitoring.application_paths import CDK_JSON
from energy_monitoring.config import EnvironmentConfig, environments_in

LOCAL_ENVIRONMENT = "dev"


@cache
def dev_config(cdk_json: Path = CDK_JSON) -> EnvironmentConfig:
    return environments_in(cdk_json)[LOCAL_ENVIRONMENT]
