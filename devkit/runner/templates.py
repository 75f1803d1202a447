"""Reads the synthesized CloudFormation templates of one environment (the one source of truth).

`load_stage` synthesizes the CDK app in-process (`energy_monitoring.application.build_app`)
and returns every stack's template of one stage. `Resolver` evaluates the intrinsic
functions the templates use (Ref, Fn::GetAtt, Fn::ImportValue, Fn::Join, Fn::Select,
Fn::Split, Fn::Sub, pseudo parameters) against the physical resources the local pipeline
created, so names, settings and environment variables come from what deploys.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class Stack:
    name: str  # e.g. energy-dev-Processing
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}


@dataclass
class Stage:
    name: str
    stacks: dict[str, Stack] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[tuple[Stack, str, dict[str, Any]]]:
        return [
            (stack, logical, resource)
            for stack in self.stacks.values()
            for logical, resource in stack.of_type(resource_type).items()
        ]

    def exports(self) -> dict[str, tuple[Stack, Any]]:
        found: dict[str, tuple[Stack, Any]] = {}
        for stack in self.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    found[export] = (stack, output["Value"])
        return found


def synthesize(outdir: Path) -> Path:
    """Synthesize the whole app into outdir (cdk-nag runs, as in `cdk synth`)."""
    os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("JSII_DEPRECATED", "quiet")
    from energy_monitoring.application import build_app

    build_app(str(outdir)).synth()
    return outdir


def load_stage(assembly: Path, stage_name: str) -> Stage:
    """Templates of one stage from a cloud assembly directory."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "cdk:cloud-assembly":
            continue
        props = artifact.get("properties", {})
        if props.get("displayName") == stage_name or props.get("directoryName", "").endswith(
            stage_name
        ):
            return _load_nested(assembly / props["directoryName"], stage_name)
    raise LookupError(f"stage {stage_name!r} is not in the cloud assembly at {assembly}")


def _load_nested(directory: Path, stage_name: str) -> Stage:
    manifest = json.loads((directory / "manifest.json").read_text())
    stage = Stage(stage_name)
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        name = props.get("stackName") or artifact.get("displayName", "").replace("/", "-")
        template = json.loads((directory / props["templateFile"]).read_text())
        stage.stacks[name] = Stack(name=name, template=template)
    if not stage.stacks:
        raise LookupError(f"stage {stage_name!r} has no stacks in {directory}")
    return stage


class UnresolvableError(ValueError):
    pass


@dataclass
class Physical:
    """What a created resource answers to Ref and Fn::GetAtt."""

    ref: str
    attributes: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Evaluates intrinsics; `create(stack, logical_id)` makes a resource on first reference."""

    def __init__(self, stage: Stage, create: Callable[[Stack, str], Physical]) -> None:
        self.stage = stage
        self.create = create
        self.physical: dict[tuple[str, str], Physical] = {}
        self._exports = stage.exports()

    def resource(self, stack: Stack, logical: str) -> Physical:
        key = (stack.name, logical)
        if key not in self.physical:
            if logical not in stack.resources:
                raise UnresolvableError(f"{stack.name} has no resource {logical}")
            self.physical[key] = self.create(stack, logical)
        return self.physical[key]

    def __call__(self, stack: Stack, value: Any) -> Any:
        if isinstance(value, list):
            return [self(stack, v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(stack, v) for k, v in value.items()}
        (key, arg), *_ = value.items()
        if key == "Ref":
            return self._ref(stack, arg)
        if key == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            found = self.resource(stack, logical)
            if attribute not in found.attributes:
                raise UnresolvableError(
                    f"{stack.name}/{logical} has no attribute {attribute} locally"
                )
            return found.attributes[attribute]
        if key == "Fn::ImportValue":
            name = self(stack, arg)
            if name not in self._exports:
                raise UnresolvableError(f"no stack exports {name!r}")
            exporter, expression = self._exports[name]
            return self(exporter, expression)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self(stack, p)) for p in self(stack, parts))
        if key == "Fn::Select":
            index, items = arg
            return self(stack, items)[int(self(stack, index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self(stack, text)).split(separator)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            bound = {k: str(self(stack, v)) for k, v in variables.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in bound:
                    return bound[name]
                if "." in name:
                    return str(self(stack, {"Fn::GetAtt": name.split(".", 1)}))
                return str(self._ref(stack, name))

            return re.sub(r"\$\{([^}!]+)\}", substitute, text)
        return {key: self(stack, arg)}

    def _ref(self, stack: Stack, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        parameters = stack.template.get("Parameters", {})
        if name in parameters:
            return parameters[name].get("Default", "")
        return self.resource(stack, name).ref
