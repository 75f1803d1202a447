"""What the infrastructure tests share: the synthesized app and lookups into it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.iam_evaluation import ACCOUNT, REGION, Deployment

STACKS = ("Storage", "Ingest", "Processing", "Observability")
# The archive bucket's logical id in the Storage stack (its siblings add to the path).
ARCHIVE_BUCKET = re.compile(r"Archive[0-9A-F]{8}")
REPLICA = "Replica"  # in the environments that set dr.replica_region, in that region


@dataclass(frozen=True)
class SynthesizedApp:
    outdir: Path
    templates: dict[tuple[str, str], dict[str, Any]]
    template_files: dict[tuple[str, str], Path]
    config: dict[str, Any]
    stack_names: dict[tuple[str, str], str] = field(default_factory=dict)

    def template(self, environment: str, stack: str) -> dict[str, Any]:
        return self.templates[(environment, stack)]

    def stacks(self, environment: str) -> list[str]:
        """The environment's stacks: the four, and its replica stack if it has one."""
        return [stack for env, stack in self.templates if env == environment]

    def resources(self, environment: str, stack: str, type_: str) -> dict[str, dict[str, Any]]:
        template = self.template(environment, stack)
        return {
            logical_id: resource
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == type_
        }

    def one(self, environment: str, stack: str, type_: str) -> dict[str, Any]:
        (resource,) = self.resources(environment, stack, type_).values()
        return resource

    def deployment(self, environment: str) -> Deployment:
        """The environment's templates, resolved the way AWS would see them deployed (in
        its own account and region, or a pretend one where it has none)."""
        settings = self.config["environments"][environment]
        replica_region = settings.get("dr", {}).get("replica_region")
        return Deployment(
            {
                self.stack_names[key]: template
                for key, template in self.templates.items()
                if key[0] == environment
            },
            account=settings.get("account") or ACCOUNT,
            region=settings.get("region") or REGION,
            regions=(
                {self.stack_names[(environment, REPLICA)]: replica_region} if replica_region else {}
            ),
        )


def synthesize_app(
    outdir: Path, *, context: dict[str, Any] | None = None, prefix: str | None = None
) -> SynthesizedApp:
    """The whole app synthesized in-process (cdk-nag runs, as in `cdk synth`)."""
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
