"""`energy-monitoring query`: consumption of a meter or a building over a time range."""

from __future__ import annotations

import csv
import datetime as dt
import sys
from typing import Annotated, Literal

import typer

from energy_cli import console
from energy_cli.errors import CliError
from energy_cli.options import Env, Json, Outputs, Prefix, environment, time_range


def query(
    env: Env,
    from_: Annotated[str, typer.Option("--from", help="ISO 8601 start (UTC if no zone).")],
    to: Annotated[str, typer.Option("--to", help="ISO 8601 end, exclusive.")],
    device: Annotated[str | None, typer.Option(help="One meter (thing name).")] = None,
    building: Annotated[
        str | None, typer.Option(help="Every meter whose `building` attribute is this.")
    ] = None,
    every: Annotated[
        Literal["15m", "1h", "1d"], typer.Option(help="Sum energy per this step.")
    ] = "1h",
    source: Annotated[
        Literal["auto", "dynamodb", "archive"],
        typer.Option(help="auto: DynamoDB inside the interval retention, the archive before it."),
    ] = "auto",
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV for spreadsheets.")] = False,
) -> None:
    """Energy (Wh) per meter and step over a range, and which source served which part."""
    from energy_runtime import contract

    from energy_cli import consumption
    from energy_cli.functions import function_environment

    if (device is None) == (building is None):
        raise CliError("give --device THING or --building B")
    if json and csv_out:
        raise CliError("--json or --csv, not both")
    start, end = time_range(from_, to)
    found, clients = environment(env, prefix, outputs)
    devices = (
        [device]
        if device is not None
        else consumption.building_devices(clients, found, building or "")
    )
    if source == "auto":  # where the table's retention ends: the processor's setting
        processor = function_environment(found, clients, contract.Output.PROCESSOR_FUNCTION_NAME)
        # The function runs with every contract variable set (the stacks set them all).
        ttl_days = int(processor[contract.INTERVAL_TTL_DAYS.name])
        plan = consumption.spans(start, end, ttl_days=ttl_days, now=dt.datetime.now(dt.UTC))
    else:
        plan = [consumption.Span(source, start, end)]
    rows: list[consumption.Row] = []
    step = consumption.STEPS[every]
    for span in plan:
        if span.source == "dynamodb":
            table = found.output(contract.Output.TABLE_NAME)
            intervals = consumption.from_dynamodb(clients, table, devices, span)
        else:
            database = found.output(contract.Output.GLUE_DATABASE_NAME)
            table = found.output(contract.Output.INTERVAL_TABLE_NAME)
            sql = consumption.archive_sql(
                database=database, table=table, devices=devices, start=span.start, end=span.end
            )
            if found.local is not None:
                intervals = consumption.from_local_archive(
                    clients, found, sql, database=database, table=table
                )
            else:
                with console.status("Athena: running the query", quiet=json or csv_out):
                    intervals = consumption.from_athena(clients, found, sql)
        rows += consumption.bucketed(intervals, step, span.source)
    rows.sort(key=lambda r: (r.bucket_start, r.device_id))
    if json:
        console.print_json(
            {
                "devices": devices,
                "every": every,
                "sources": [span.as_json() for span in plan],
                "rows": [r.__dict__ for r in rows],
                "total_wh": round(sum(r.energy_wh for r in rows), 3),
            }
        )
    elif csv_out:
        writer = csv.writer(sys.stdout)
        writer.writerow(["bucket_start", "device_id", "energy_wh", "source"])
        writer.writerows([r.bucket_start, r.device_id, r.energy_wh, r.source] for r in rows)
    else:
        console.table(
            f"energy per {every} ({found.stage})",
            ("from", "meter", "Wh", "source"),
            [(r.bucket_start, r.device_id, f"{r.energy_wh:,.1f}", r.source) for r in rows],
        )
        for span in plan:
            console.note(f"{span.source}: {span.as_json()['from']} .. {span.as_json()['to']}")
