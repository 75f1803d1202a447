"""Synthesized apps for every infrastructure test (synthesis is the slow part): the project's
own app, and one variant that exercises the settings the project's environments leave off."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.synthesis import SynthesizedApp

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")

VARIANT_PREFIX = "alice"


def _synthesize(
    outdir: Path, *, context: dict[str, Any] | None = None, prefix: str | None = None
) -> SynthesizedApp:
    from energy_monitoring.application import build_app
    from energy_monitoring.config import CONTEXT_KEY, load_environments

    app = build_app(outdir=str(outdir), context=context, prefix=prefix)
    assembly = app.synth()
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    files: dict[tuple[str, str], Path] = {}
    stack_names: dict[tuple[str, str], str] = {}
    config = app.node.try_get_context(CONTEXT_KEY)
    for environment in load_environments(config, prefix=prefix or ""):
        stage_assembly = assembly.get_nested_assembly(f"assembly-{environment.stage_name}")
        for stack in stage_assembly.stacks:
            name = stack.hierarchical_id.split("/")[-1]
            path = Path(stack.template_full_path)
            files[(environment.name, name)] = path
            templates[(environment.name, name)] = json.loads(path.read_text())
            stack_names[(environment.name, name)] = stack.stack_name
    return SynthesizedApp(
        outdir=outdir,
        templates=templates,
        template_files=files,
        config=config,
        stack_names=stack_names,
    )


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedApp]:
    yield _synthesize(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """dev alone, deployed a second time into the same account under the prefix `alice`,
    with Device Defender Detect on and the account's existing IoT logging."""
    from energy_monitoring.application_paths import CDK_JSON
    from energy_monitoring.config import CONTEXT_KEY

    context = json.loads(CDK_JSON.read_text())["context"]
    dev = copy.deepcopy(context[CONTEXT_KEY]["environments"]["dev"])
    dev["security"] = {"audit": "existing", "detect": True}
    dev["ingest"] = {**dev.get("ingest", {}), "iot_logging": "existing"}
    context[CONTEXT_KEY] = {"environments": {"dev": dev}}
    return _synthesize(
        tmp_path_factory.mktemp("variant.out"), context=context, prefix=VARIANT_PREFIX
    )


@pytest.fixture(scope="session")
def environments(synthesized: SynthesizedApp) -> dict[str, Any]:
    from energy_monitoring.config import load_environments

    return {env.name: env for env in load_environments(synthesized.config)}
