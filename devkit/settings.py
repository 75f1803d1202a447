"""The dev environment's settings as cdk.json states them: the local pipeline deploys dev,
so the demo, the simulator's defaults and the benchmark describe the same fleet
(`fleet.reading_interval_seconds`, `fleet.readings_per_message`) as the cost model."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from energy_monitoring.config import CONTEXT_KEY, EnvironmentConfig, load_environments

REPO = Path(__file__).resolve().parents[1]
LOCAL_ENVIRONMENT = "dev"


@cache
def dev_config(cdk_json: Path = REPO / "cdk.json") -> EnvironmentConfig:
    context = json.loads(cdk_json.read_text())["context"][CONTEXT_KEY]
    return next(c for c in load_environments(context) if c.name == LOCAL_ENVIRONMENT)
