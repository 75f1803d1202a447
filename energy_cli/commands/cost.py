"""`energy-monitoring cost`: what a fleet costs per month, service by service, and whether
the environment's settings keep up with it. Offline: settings from cdk.json, prices from
the repository's price list (docs/cost.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from energy_cli import console
from energy_cli.errors import CliError

if TYPE_CHECKING:
    from energy_monitoring.costs.model import Design, Fleet, Report

DEFAULT_APARTMENTS = 10_000
DEFAULT_REGION = "us-east-1"  # for an environment-agnostic one (region null in cdk.json)
PLOT_FLEETS = (10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)


def _environment_config(cdk_json: Path, env: str) -> Any:
    from energy_monitoring.config import ConfigError, environments_in

    try:
        environments = environments_in(cdk_json)
    except ConfigError as error:
        raise CliError(f"{error} (run from the project, or give --cdk-json)") from None
    if env not in environments:
        raise CliError(
            f"unknown environment {env!r} in {cdk_json} (it has {', '.join(environments)})"
        )
    return environments[env]


def cost(
    env: Annotated[
        str, typer.Option("--env", "-e", help="Settings of this environment in cdk.json.")
    ] = "prod",
    apartments: Annotated[
        int, typer.Option(min=1, max=100_000_000, help="Apartments (one meter each).")
    ] = DEFAULT_APARTMENTS,
    interval: Annotated[
        int | None, typer.Option(min=1, max=3600, help="Seconds between readings [fleet].")
    ] = None,
    readings_per_message: Annotated[
        int | None, typer.Option(min=1, max=200, help="Readings per MQTT message [fleet].")
    ] = None,
    payload_encoding: Annotated[
        Literal["gzip", "json"] | None,
        typer.Option(help="How meters encode a message [fleet]."),
    ] = None,
    basic_ingest: Annotated[
        bool | None,
        typer.Option("--basic-ingest/--no-basic-ingest", help="Publish through Basic Ingest."),
    ] = None,
    window: Annotated[
        int | None, typer.Option(min=1, max=300, help="Batching window X, seconds.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="Batching batch size Y, records.")
    ] = None,
    capacity_mode: Annotated[
        Literal["on_demand", "provisioned"] | None, typer.Option(help="Kinesis capacity mode.")
    ] = None,
    shards: Annotated[
        int | None, typer.Option(min=1, max=500, help="Kinesis shards (provisioned).")
    ] = None,
    table_billing: Annotated[
        Literal["on_demand", "provisioned"] | None,
        typer.Option(help="DynamoDB capacity mode (provisioned: with auto scaling)."),
    ] = None,
    firehose_buffer_seconds: Annotated[int | None, typer.Option(min=60, max=900)] = None,
    firehose_buffer_mb: Annotated[int | None, typer.Option(min=64, max=128)] = None,
    interval_minutes: Annotated[
        int | None, typer.Option(help="Aggregation interval, minutes.")
    ] = None,
    interval_ttl_days: Annotated[
        int | None, typer.Option(min=1, help="Interval items kept in DynamoDB, days.")
    ] = None,
    ia_after_days: Annotated[int | None, typer.Option(min=30)] = None,
    glacier_after_days: Annotated[int | None, typer.Option(min=31)] = None,
    deep_archive_after_days: Annotated[
        int | None, typer.Option(min=0, help="raw/ moves on to Glacier Deep Archive (0: never).")
    ] = None,
    expire_after_days: Annotated[int | None, typer.Option(min=32)] = None,
    replica: Annotated[
        bool | None,
        typer.Option(
            "--replica/--no-replica",
            help="Bill the archive's copy in dr.replica_region (default: where it is set).",
        ),
    ] = None,
    alerts_per_day: Annotated[
        float, typer.Option(min=0, help="Alerts per apartment and day (SNS, DynamoDB).")
    ] = 0.5,
    region: Annotated[
        str | None, typer.Option(help="Prices of this region (default: the environment's).")
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(
            help="A price list overriding the built-in one (same format).", dir_okay=False
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Also draw cost per apartment against fleet size to this PNG.", dir_okay=False
        ),
    ] = None,
    cdk_json: Annotated[Path, typer.Option(help="The project's cdk.json.", dir_okay=False)] = Path(
        "cdk.json"
    ),
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """What N apartments cost per month, per service, beside the naive design, the floor
    (IoT connectivity alone) and AWS IoT SiteWise; with capacity warnings.

    Settings come from the environment in cdk.json; any option overrides one. Options marked
    [fleet] default to the environment's `fleet` settings.
    """
    from energy_monitoring.costs import model
    from energy_monitoring.costs import prices as price_list

    config = _environment_config(cdk_json, env)
    fleet = model.Fleet(
        apartments=apartments,
        reading_interval_s=interval or config.fleet.reading_interval_seconds,
        readings_per_message=readings_per_message or config.fleet.readings_per_message,
        payload_encoding=payload_encoding or config.fleet.payload_encoding,
        alerts_per_apartment_day=alerts_per_day,
    )
    design = model.Design.from_config(config, region=region or config.region or DEFAULT_REGION)
    overrides: dict[str, Any] = {
        "basic_ingest": basic_ingest,
        "window_s": window,
        "batch_size": batch_size,
        "capacity_mode": capacity_mode,
        "shards": shards,
        "table_billing": table_billing,
        "firehose_buffer_s": firehose_buffer_seconds,
        "firehose_buffer_mb": firehose_buffer_mb,
        "interval_minutes": interval_minutes,
        "interval_ttl_days": interval_ttl_days,
        "ia_after_days": ia_after_days,
        "glacier_after_days": glacier_after_days,
        "expire_after_days": expire_after_days,
    }
    design = replace(design, **{k: v for k, v in overrides.items() if v is not None})
    if deep_archive_after_days is not None:
        design = replace(design, deep_archive_after_days=deep_archive_after_days or None)
    _check_lifecycle(design)
    if replica is False:
        design = replace(design, replica_region=None)
    elif replica and design.replica_region is None:
        raise CliError(f"--replica: environment {env!r} sets no dr.replica_region")
    try:
        loaded = price_list.load(prices)
        result = model.report(fleet, design, loaded)
    except price_list.PriceError as error:
        raise CliError(str(error)) from None
    if plot is not None:
        _plot(plot, fleet, design, loaded)
    if json:
        console.print_json({"environment": env, **result.as_json()})
        return
    _show(env, result)
    if plot is not None:
        console.note(f"plot: {plot}")


def _check_lifecycle(design: Any) -> None:
    """The archive's tiers as synthesis would accept them (config.py's rules), so that no
    day is billed in two classes."""
    from energy_monitoring.config import (
        DEEP_ARCHIVE_MINIMUM_DAYS,
        GLACIER_MINIMUM_DAYS,
        deep_archive_fits,
        tiers_in_order,
    )

    ia, glacier, expire = design.ia_after_days, design.glacier_after_days, design.expire_after_days
    if not tiers_in_order(ia, glacier, expire):
        raise CliError(
            f"--ia-after-days {ia} < --glacier-after-days {glacier} < --expire-after-days "
            f"{expire} must hold"
        )
    deep = design.deep_archive_after_days
    if not deep_archive_fits(glacier, deep, expire):
        raise CliError(
            f"--deep-archive-after-days {deep} must be at least {GLACIER_MINIMUM_DAYS} days "
            f"after Glacier ({glacier}) and {DEEP_ARCHIVE_MINIMUM_DAYS} before expiry "
            f"({expire}); 0: no Deep Archive"
        )


def _show(env: str, result: Report) -> None:
    document = result.as_json()
    console.table(
        f"{result.fleet.apartments:,} apartments, environment {env}, {result.design.region} "
        "(USD per month)",
        ("service", "item", "quantity", "USD"),
        [
            (
                line["service"],
                line["item"],
                f"{line['quantity']:,.3f}",
                f"{line['usd_per_month']:,.2f}",
            )
            for line in document["lines"]
            if line["usd_per_month"] >= 0.005
        ],
    )
    per = document["per_apartment_usd_per_month"]
    console.table(
        "per apartment and month",
        ("design", "USD", "vs this one"),
        [
            ("this pipeline", f"{per:.4f}", "1x"),
            ("naive (a message, a Lambda, 3 items, an object per reading)",
             f"{document['naive_per_apartment_usd_per_month']:.4f}", f"{document['naive_ratio']}x"),
            ("AWS IoT SiteWise", f"{document['sitewise_per_apartment_usd_per_month']:.4f}",
             f"{document['sitewise_per_apartment_usd_per_month'] / per:.1f}x"),
            ("its message path alone (IoT Core to the table, the archive aside)",
             f"{document['message_path_per_apartment_usd_per_month']:.4f}",
             f"1/{per / document['message_path_per_apartment_usd_per_month']:.2f}"),
            ("floor (IoT connectivity alone)",
             f"{document['floor_per_apartment_usd_per_month']:.4f}",
             f"1/{document['above_floor_ratio']}"),
        ],
    )  # fmt: skip
    console.note(
        f"total ${document['total_usd_per_month']:,.2f} per month; the table is up to "
        f"{document['freshness_s']:.0f} s behind the stream, a reading lands up to "
        f"{document['reading_age_s']:.0f} s after it is taken"
    )
    for warning in result.warnings:
        console.note(f"warning: {warning}")


# DynamoDB's default per-table capacity quota (units of each kind).
TABLE_QUOTA = 40_000


def _plot(path: Path, fleet: Fleet, design: Design, prices: Any) -> None:
    from energy_monitoring.costs import model
    from energy_monitoring.costs.capacity import shards_needed

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("--plot needs matplotlib (make setup installs it)") from None
    series: dict[str, list[float]] = {"this pipeline": [], "naive": [], "SiteWise": [], "floor": []}
    for size in PLOT_FLEETS:
        sized = replace(fleet, apartments=size)
        # The platform engineer adds shards and table capacity as the fleet grows (what
        # the warnings ask).
        needed, _, _ = shards_needed(sized, design)
        grown = replace(
            design,
            shards=max(design.shards, needed),
            table_write_capacity=(design.table_write_capacity[0], TABLE_QUOTA),
            table_read_capacity=(design.table_read_capacity[0], TABLE_QUOTA),
        )
        found = model.report(sized, grown, prices)
        series["this pipeline"].append(found.current.per_apartment)
        series["naive"].append(found.naive.per_apartment)
        series["SiteWise"].append(found.sitewise.per_apartment)
        series["floor"].append(found.floor.per_apartment)
    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for label, values in series.items():
        axes.plot(PLOT_FLEETS, values, marker="o", markersize=3, label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("apartments")
    axes.set_ylabel("USD per apartment and month")
    axes.set_title(
        f"{design.region}: {fleet.reading_interval_s} s readings, {fleet.readings_per_message} "
        f"per {fleet.payload_encoding} message, window {design.window_s} s, "
        "shards and capacity as needed"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    try:
        figure.savefig(path, bbox_inches="tight")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from None
    finally:
        plt.close(figure)
