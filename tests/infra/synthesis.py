"""What the infrastructure tests share: the synthesized app and lookups into it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACKS = ("Storage", "Ingest", "Processing", "Observability")


@dataclass(frozen=True)
class SynthesizedApp:
    outdir: Path
    templates: dict[tuple[str, str], dict[str, Any]]
    template_files: dict[tuple[str, str], Path]
    config: dict[str, Any]

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
