"""`energy-monitoring quicksight setup`: the analysts' QuickSight from the stack outputs."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from energy_cli import console
from energy_cli.errors import CliError
from energy_cli.options import Env, Json, Outputs, Prefix, environment

app = typer.Typer(help="QuickSight over the environment's Athena workgroup.", no_args_is_help=True)

PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:quicksight:[a-z0-9-]+:\d{12}:(user|group)/[^/]+/.+$")


@app.command()
def setup(
    env: Env,
    principal: Annotated[
        str,
        typer.Option(
            help="The QuickSight user or group ARN to share everything with "
            "(arn:aws:quicksight:REGION:ACCOUNT:user/default/NAME).",
        ),
    ],
    account_id: Annotated[
        str | None, typer.Option(help="The QuickSight account (default: the caller's).")
    ] = None,
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
) -> None:
    """Create or update the Athena data source, the data sets (intervals, daily totals, raw
    readings) and the dashboard, each shared with --principal. Running it again changes
    nothing that is already as it should be."""
    from energy_runtime import contract

    from energy_cli import quicksight
    from energy_cli.functions import function_environment

    if not PRINCIPAL.match(principal):
        raise CliError(
            f"--principal {principal!r} is not a QuickSight user or group ARN "
            "(arn:aws:quicksight:REGION:ACCOUNT:user/default/NAME)"
        )
    if account_id is not None and not re.fullmatch(r"\d{12}", account_id):
        raise CliError(f"--account-id {account_id!r} is not a 12-digit account id")
    found, clients = environment(env, prefix, outputs)
    output = contract.Output
    processor = function_environment(found, clients, output.PROCESSOR_FUNCTION_NAME)
    names = quicksight.Names(
        account_id=account_id or str(clients.client("sts").get_caller_identity()["Account"]),
        stage=found.stage,
        workgroup=found.output(output.ATHENA_WORKGROUP_NAME),
        database=found.output(output.GLUE_DATABASE_NAME),
        interval_table=found.output(output.INTERVAL_TABLE_NAME),
        raw_table=found.output(output.RAW_TABLE_NAME),
        high_usage_threshold_wh=float(processor[contract.HIGH_USAGE_THRESHOLD_WH.name]),
        time_zone=processor[contract.TIME_ZONE.name],
    )

    def report(change: quicksight.Change) -> None:
        if not json:
            console.note(f"{change.kind} {change.resource_id}: {change.action}")

    changes = quicksight.setup(clients.client("quicksight"), names, principal, report)
    if json:
        console.print_json(
            {
                "changes": [c.as_json() for c in changes],
                "changed": sum(c.action != "unchanged" for c in changes),
            }
        )
    elif all(c.action == "unchanged" for c in changes):
        console.note("nothing to change")
