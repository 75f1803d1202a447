"""Options several commands share, and how they turn into an environment and its clients."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from energy_cli.aws import Clients
    from energy_cli.environment import Environment

Env = Annotated[
    str,
    typer.Option(
        "--env",
        "-e",
        envvar="ENERGY_MONITORING_ENV",
        help="The environment (a key of cdk.json's environments: dev, staging, prod).",
        show_default=False,
    ),
]
Prefix = Annotated[
    str,
    typer.Option(
        "--prefix",
        envvar="ENERGY_MONITORING_PREFIX",
        help="A separate copy's prefix (`make deploy PREFIX=...`): stacks <prefix>-energy-<env>-*.",
    ),
]
Outputs = Annotated[
    Path | None,
    typer.Option(
        "--outputs",
        help="Stack outputs from this `cdk deploy --outputs-file` JSON (or `local up`'s) "
        "instead of CloudFormation.",
        dir_okay=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def environment(env: str, prefix: str, outputs: Path | None) -> tuple[Environment, Clients]:
    from energy_cli import environment as environments
    from energy_cli.aws import Clients

    if outputs is not None:
        found = environments.from_file(outputs, env, prefix=prefix)
        return found, Clients.of(found)
    clients = Clients()
    found = environments.from_cloudformation(clients.client("cloudformation"), env, prefix=prefix)
    return found, clients
