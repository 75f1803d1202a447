"""Builds the whole CDK app: one Stage per environment configured in cdk.json."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from energy_monitoring.application_paths import CDK_JSON
from energy_monitoring.config import CONTEXT_KEY, PREFIX_CONTEXT_KEY, load_environments
from energy_monitoring.stage import EnergyStage


def build_app(
    outdir: str | None = None,
    *,
    context: dict[str, Any] | None = None,
    prefix: str | None = None,
) -> cdk.App:
    """The app with every environment's stages, checked by cdk-nag on synthesis.

    Run by the CDK CLI, the context comes from cdk.json (plus any `-c`); called
    in-process (tests, the local pipeline), cdk.json is read here so both see the same
    settings. `context` replaces cdk.json's context (tests of bad settings use it);
    `prefix` stands in for `-c energy-monitoring:prefix=...`.
    """
    app = cdk.App(outdir=outdir)
    settings = context if context is not None else _project_context()
    for key, value in settings.items():
        if app.node.try_get_context(key) is None or context is not None:
            app.node.set_context(key, value)
    if prefix is None:
        prefix = app.node.try_get_context(PREFIX_CONTEXT_KEY) or ""
    environments = load_environments(app.node.try_get_context(CONTEXT_KEY), prefix=prefix)
    for environment in environments:
        EnergyStage(app, environment.stage_name, config=environment)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def _project_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return context
