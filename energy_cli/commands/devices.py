"""`energy-monitoring devices`: meters in, certificates rotated, meters out, the fleet listed."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from energy_cli import console
from energy_cli.errors import CliError
from energy_cli.options import Env, Json, Outputs, Prefix, environment

if TYPE_CHECKING:
    from energy_cli.aws import Clients
    from energy_cli.environment import Environment
    from energy_cli.fleet.registry import Fleet, Outcome
    from energy_cli.fleet.roster import Meter

app = typer.Typer(
    help="Register, rotate, revoke and list meters (AWS IoT things and certificates).",
    no_args_is_help=True,
)

Thing = Annotated[str, typer.Option("--thing", help="The meter's thing name.", show_default=False)]
Out = Annotated[
    Path,
    typer.Option(
        "--out", help="Folder under which each meter gets its own folder.", file_okay=False
    ),
]
DEFAULT_GRACE_HOURS = 24.0


def _fleet(found: Environment, clients: Clients) -> Fleet:
    from energy_cli.fleet.certificates import AwsIotIssuer, Issuer, LocalCaIssuer
    from energy_cli.fleet.folder import MQTT_TLS_PORT
    from energy_cli.fleet.registry import Fleet, FleetNames

    iot = clients.client("iot")
    local = found.local
    issuer: Issuer
    if local is not None:
        issuer = LocalCaIssuer(iot, local.ca_directory)
        host, _, port = local.broker_endpoint.rpartition(":")

        def endpoint() -> tuple[str, int]:
            return host, int(port)
    else:
        issuer = AwsIotIssuer(iot)

        def endpoint() -> tuple[str, int]:
            described = iot.describe_endpoint(endpointType="iot:Data-ATS")
            return str(described["endpointAddress"]), MQTT_TLS_PORT

    return Fleet(iot, FleetNames.of(found), issuer, endpoint=endpoint)


def _failed(meter: Meter, error: Exception) -> Outcome:
    from energy_cli.aws import describe

    reason = str(error) if isinstance(error, CliError) else describe(error)
    detail = console.one_line(reason or f"{type(error).__name__}: {error}")
    from energy_cli.fleet.registry import Outcome

    return Outcome(meter.thing, "failed", detail=detail, line=meter.line)


def _fatal(error: Exception) -> bool:
    """Errors no other row would escape (credentials, region, network): stop at once.
    Anything else fails its own row only, and the report still comes."""
    from botocore import exceptions

    return isinstance(
        error,
        exceptions.NoCredentialsError
        | exceptions.PartialCredentialsError
        | exceptions.NoRegionError
        | exceptions.ProfileNotFound
        | exceptions.EndpointConnectionError
        | exceptions.ConnectionClosedError
        | exceptions.SSLError,
    )


def _checked(thing: str) -> str:
    from energy_cli.fleet.roster import check_thing

    reason = check_thing(thing)
    if reason is not None:
        raise CliError(reason)
    return thing


def _warn(fleet: Fleet, *, json: bool) -> list[str]:
    if not json:
        for warning in fleet.warnings:
            console.note(f"warning: {warning}")
    return fleet.warnings


@app.command()
def register(
    env: Env,
    out: Out,
    thing: Annotated[str | None, typer.Option(help="One meter's thing name.")] = None,
    building: Annotated[str | None, typer.Option(help="Its building (with --thing).")] = None,
    apartment: Annotated[str | None, typer.Option(help="Its apartment (with --thing).")] = None,
    csr: Annotated[
        Path | None,
        typer.Option(help="The meter's own CSR (with --thing): its key never leaves it."),
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(help="Many meters: a CSV with the header thing,building,apartment[,csr]."),
    ] = None,
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
) -> None:
    """Register meters: thing, certificate, policy, thing group, and one folder per meter.

    Idempotent: registering the same meters again creates nothing and says so. A bad CSV
    row is reported with its line number while the other rows go on; the exit status is 1
    if any row failed.
    """
    from energy_cli.fleet.registry import Outcome
    from energy_cli.fleet.roster import Meter, RowProblem, check, read_csv

    if (thing is None) == (csv is None):
        raise CliError("give either --thing (with --building and --apartment) or --csv")
    problems: list[RowProblem] = []
    if csv is not None:
        if building or apartment or csr:
            raise CliError("--building, --apartment and --csr go with --thing, not --csv")
        meters, problems = read_csv(csv)
    else:
        meter = Meter(thing or "", building or "", apartment or "", csr=csr)
        reason = check(meter)
        if reason is not None:
            raise CliError(reason)
        meters = [meter]
    found, clients = environment(env, prefix, outputs)
    fleet = _fleet(found, clients)
    outcomes = [Outcome(p.thing, "failed", detail=p.reason, line=p.line) for p in problems]
    with console.progress(quiet=json) as bar:
        task = bar.add_task(f"registering in {found.stage}", total=len(meters))
        for meter in meters:
            try:
                outcome = fleet.register(meter, out)
            except Exception as error:
                if _fatal(error):
                    raise
                outcome = _failed(meter, error)
            outcomes.append(outcome)
            if not json:
                bar.console.print(_line(outcome), highlight=False)
            bar.advance(task)
    _report(outcomes, json=json, environment=found.name, warnings=_warn(fleet, json=json))


def _line(outcome: Outcome) -> str:
    where = f"line {outcome.line}: " if outcome.line is not None else ""
    detail = f" ({outcome.detail})" if outcome.detail else ""
    return f"{where}{outcome.thing or '(no thing)'}: {outcome.status}{detail}"


def _report(outcomes: list[Outcome], *, json: bool, environment: str, warnings: list[str]) -> None:
    outcomes.sort(key=lambda o: (o.line or 0, o.thing))
    counts = Counter(o.status for o in outcomes)
    summary = {s: counts.get(s, 0) for s in ("created", "updated", "unchanged", "failed")}
    if json:
        console.print_json(
            {
                "environment": environment,
                **summary,
                "meters": [o.as_json() for o in outcomes],
                "warnings": warnings,
            }
        )
    else:
        for outcome in outcomes:
            if outcome.status == "failed" and outcome.line is not None and not outcome.folder:
                console.note(_line(outcome))  # CSV rows refused before any call to AWS
        console.note(", ".join(f"{n} {s}" for s, n in summary.items()))
    if counts.get("failed"):
        raise typer.Exit(1)


@app.command()
def rotate(
    env: Env,
    thing: Thing,
    out: Out,
    grace_hours: Annotated[
        float | None,
        typer.Option(
            help=f"Hours the old certificate stays active beside the new one "
            f"[default: {DEFAULT_GRACE_HOURS:g}].",
            min=0,
            max=8760,
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        bool, typer.Option("--now", help="Deactivate the old certificate at once.")
    ] = False,
    csr: Annotated[
        Path | None, typer.Option(help="Sign the meter's new CSR instead of creating a key.")
    ] = None,
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
) -> None:
    """Give a meter a new certificate; the old one is deactivated after the grace period.

    Put the new folder's files on the meter within the grace period. A later `rotate` or
    `devices list` deactivates any certificate whose grace period is over.
    """
    from energy_cli.fleet.roster import check_csr

    if now and grace_hours is not None:
        raise CliError("--now and --grace-hours exclude each other")
    _checked(thing)
    if csr is not None and (reason := check_csr(csr)) is not None:
        raise CliError(reason)
    hours = DEFAULT_GRACE_HOURS if grace_hours is None else grace_hours
    found, clients = environment(env, prefix, outputs)
    fleet = _fleet(found, clients)
    with console.status(f"rotating {thing}'s certificate", quiet=json):
        outcome = fleet.rotate(thing, out, grace_s=0 if now else round(hours * 3600), csr=csr)
    _single(outcome, json=json, warnings=_warn(fleet, json=json))


def _single(outcome: Outcome, *, json: bool, warnings: list[str]) -> None:
    if json:
        console.print_json({**outcome.as_json(), "warnings": warnings})
    else:
        console.note(_line(outcome))


@app.command()
def revoke(
    env: Env,
    thing: Thing,
    delete: Annotated[
        bool,
        typer.Option("--delete", help="Also detach and delete the certificates, and the thing."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --delete.")] = False,
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
) -> None:
    """Deactivate a meter's certificates at once (a lost or stolen meter)."""
    _checked(thing)
    if delete and not yes:
        if not sys.stdin.isatty():
            raise CliError("--delete removes the thing and its certificates: add --yes")
        typer.confirm(f"Delete {thing} and its certificates?", abort=True)
    found, clients = environment(env, prefix, outputs)
    fleet = _fleet(found, clients)
    with console.status(f"revoking {thing}", quiet=json):
        outcome = fleet.revoke(thing, delete=delete)
    _single(outcome, json=json, warnings=_warn(fleet, json=json))


@app.command("list")
def list_devices(
    env: Env,
    prefix: Prefix = "",
    outputs: Outputs = None,
    json: Json = False,
) -> None:
    """Every meter: building, apartment, active certificates and expiry, last reading."""
    from energy_runtime import contract

    found, clients = environment(env, prefix, outputs)
    fleet = _fleet(found, clients)
    table_name = found.optional(contract.Output.TABLE_NAME)
    table = clients.resource("dynamodb").Table(table_name) if table_name else None
    devices = []
    with console.progress(quiet=json) as bar:
        task = bar.add_task(f"reading {found.stage}'s meters", total=None)
        for device in fleet.devices(table):
            devices.append(device)
            bar.advance(task)
    _warn(fleet, json=False)  # on stderr, also under --json (whose document is the list)
    if json:
        console.print_json([d.as_json() for d in devices])
        return
    rows = []
    for device in devices:
        active = device.active
        expiry = min((c.not_after for c in active if c.not_after), default=None)
        rows.append(
            (
                device.thing,
                device.building,
                device.apartment,
                ", ".join(c.certificate_id[:12] for c in active) or "none (revoked)",
                expiry.strftime("%Y-%m-%d") if expiry else "",
                len(device.retiring) or "",
                device.last_reading or "never",
            )
        )
    columns = ("thing", "building", "apartment", "active certificates", "expires", "retiring")
    console.table(f"{found.stage}: {len(rows)} meters", (*columns, "last reading"), rows)
