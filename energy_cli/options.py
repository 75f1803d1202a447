"""Options several commands share, and how they turn into an environment and its clients."""

from __future__ import annotations

import datetime as dt
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


def time_range(from_: str, to: str) -> tuple[dt.datetime, dt.datetime]:
    """`--from` and `--to` as ISO 8601 times (a date is midnight; no zone is UTC), the end
    after the start."""
    from energy_cli.errors import CliError

    def parse(text: str, option: str) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise CliError(
                f"{option} {text!r} is not an ISO 8601 time (2026-11-30T08:00Z)"
            ) from None
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    start, end = parse(from_, "--from"), parse(to, "--to")
    if end <= start:
        raise CliError(f"--to {to} is not after --from {from_}")
    return start, end
