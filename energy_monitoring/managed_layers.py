"""The AWS-managed Lambda layers the functions use, looked up per region and architecture.

Layer versions differ from region to region (and a few regions publish from their own
account), so an ARN is never built from a pattern: it comes from the table in
`managed_layers.json`, which names its sources and the date they were checked. Plain
Python (no CDK): configuration validation uses it to name a region the table lacks, and
`constructs.energy_function` turns it into ARNs or, for an environment-agnostic stack, a
CloudFormation mapping resolved on `AWS::Region` at deploy time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Final

TABLE_FILE: Final = Path(__file__).with_name("managed_layers.json")


class ManagedLayer(Enum):
    """A layer AWS publishes; the value is its key in the table."""

    POWERTOOLS = "powertools"
    SDK_PANDAS = "sdk_pandas"

    @property
    def mapping_key(self) -> str:
        # CloudFormation mapping attribute names are alphanumeric.
        return self.value.replace("_", "")


@cache
def _table() -> Mapping[str, Any]:
    table: Mapping[str, Any] = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    return table


def arn(region: str, layer: ManagedLayer, architecture: str) -> str | None:
    """The layer's ARN in `region` on `architecture`, or None where none is published."""
    found = _table()["regions"].get(region, {}).get(layer.value, {}).get(architecture)
    return str(found) if found else None


def regions(layers: tuple[ManagedLayer, ...], architecture: str) -> dict[str, dict[str, str]]:
    """Region -> {layer key: ARN} for every region that has all `layers` on `architecture`."""
    found: dict[str, dict[str, str]] = {}
    for region in _table()["regions"]:
        arns = {layer: arn(region, layer, architecture) for layer in layers}
        if all(arns.values()):
            found[region] = {layer.mapping_key: str(value) for layer, value in arns.items()}
    return found


def missing(region: str, architecture: str, layers: tuple[ManagedLayer, ...]) -> list[str]:
    """The layers the table has no ARN for in `region` on `architecture` (empty: all there)."""
    return [layer.value for layer in layers if arn(region, layer, architecture) is None]


def describe_source() -> str:
    """One line naming where the table comes from, for error messages."""
    layers = _table()["layers"]
    return "; ".join(
        f"{info['title']} {info['release']}, checked {info['checked']} against {info['source']}"
        for info in layers.values()
    )
