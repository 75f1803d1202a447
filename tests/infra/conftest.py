"""Synthesized apps for every infrastructure test (synthesis is the slow part): the project's
own app, and one variant that exercises the settings the project's environments leave off."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest

from infra.synthesis import SynthesizedApp, synthesize_app

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

VARIANT_PREFIX = "alice"
QUICKSIGHT_ROLE = "service-role/aws-quicksight-service-role-v0"  # the account's default


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """dev alone, deployed a second time into the same account under the prefix `alice`,
    with Device Defender Detect on, the account's existing IoT logging, QuickSight's
    service role granted the reader policies, and an audit trail with S3 data events."""
    from energy_monitoring.application_paths import CDK_JSON
    from energy_monitoring.config import CONTEXT_KEY

    context = json.loads(CDK_JSON.read_text())["context"]
    dev = copy.deepcopy(context[CONTEXT_KEY]["environments"]["dev"])
    dev["security"] = {"audit": "existing", "detect": True}
    dev["ingest"] = {**dev.get("ingest", {}), "iot_logging": "existing"}
    dev["analytics"] = {"quicksight_service_role": QUICKSIGHT_ROLE}
    dev["audit"] = {"cloudtrail": True, "data_events": True, "expire_after_days": 400}
    context[CONTEXT_KEY] = {"environments": {"dev": dev}}
    return synthesize_app(
        tmp_path_factory.mktemp("variant.out"), context=context, prefix=VARIANT_PREFIX
    )


@pytest.fixture(scope="session")
def environments(synthesized: SynthesizedApp) -> dict[str, Any]:
    from energy_monitoring.config import load_environments

    return {env.name: env for env in load_environments(synthesized.config)}
