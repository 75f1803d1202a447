"""One synthesized app for every infrastructure test (synthesis is the slow part)."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedApp]:
    from energy_monitoring.application import build_app
    from energy_monitoring.config import CONTEXT_KEY, load_environments

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(outdir=str(outdir))
    assembly = app.synth()
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    files: dict[tuple[str, str], Path] = {}
    config = app.node.try_get_context(CONTEXT_KEY)
    for environment in load_environments(config):
        stage_assembly = assembly.get_nested_assembly(f"assembly-{environment.stage_name}")
        for stack in stage_assembly.stacks:
            name = stack.hierarchical_id.split("/")[-1]
            path = Path(stack.template_full_path)
            files[(environment.name, name)] = path
            templates[(environment.name, name)] = json.loads(path.read_text())
    yield SynthesizedApp(outdir=outdir, templates=templates, template_files=files, config=config)


@pytest.fixture(scope="session")
def environments(synthesized: SynthesizedApp) -> dict[str, Any]:
    from energy_monitoring.config import load_environments

    return {env.name: env for env in load_environments(synthesized.config)}
