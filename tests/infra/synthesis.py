"""What the infrastructure tests share: the synthesized app and lookups into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.iam_evaluation import ACCOUNT, REGION, Deployment

STACKS = ("Storage", "Ingest", "Processing", "Observability")


@dataclass(frozen=True)
class SynthesizedApp:
    outdir: Path
    templates: dict[tuple[str, str], dict[str, Any]]
    template_files: dict[tuple[str, str], Path]
    config: dict[str, Any]
    stack_names: dict[tuple[str, str], str] = field(default_factory=dict)

    def template(self, environment: str, stack: str) -> dict[str, Any]:
        return self.templates[(environment, stack)]

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
        return Deployment(
            {
                self.stack_names[key]: template
                for key, template in self.templates.items()
                if key[0] == environment
            },
            account=settings.get("account") or ACCOUNT,
            region=settings.get("region") or REGION,
        )
