"""`energy-monitoring simulate`: the meter simulator, as one registered meter or as many
simulated apartments on the local broker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from energy_cli import console
from energy_cli.errors import CliError
from energy_cli.options import Json, Outputs

if TYPE_CHECKING:
    from devkit.simulator.meters import MqttPublisher, Scenario


def simulate(
    device: Annotated[
        Path | None,
        typer.Option(
            help="A registered meter's folder (from `devices register`): publish as that "
            "meter, to its endpoint and topic.",
            file_okay=False,
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="The meter's private key, for a folder registered from a CSR."),
    ] = None,
    basic_ingest: Annotated[
        bool,
        typer.Option(
            help="Publish to the Basic Ingest topic (AWS IoT only; where the environment has it)."
        ),
    ] = False,
    outputs: Outputs = None,
    env: Annotated[str, typer.Option(help="The environment in --outputs.")] = "dev",
    apartments: Annotated[
        int, typer.Option(min=1, max=500, help="Simulated apartments (with --outputs).")
    ] = 3,
    minutes: Annotated[float, typer.Option(min=0.1, help="Simulated minutes of readings.")] = 10,
    interval: Annotated[
        int | None,
        typer.Option(min=1, help="Seconds between readings [default: fleet setting, 10]."),
    ] = None,
    readings_per_message: Annotated[
        int | None,
        typer.Option(min=1, max=1000, help="Readings per message [default: fleet setting, 30]."),
    ] = None,
    payload_encoding: Annotated[
        Literal["gzip", "json"] | None,
        typer.Option(help="How the meters encode a message [default: fleet setting, gzip]."),
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.01, help="Simulated seconds per wall-clock second.")
    ] = 60.0,
    faults: Annotated[
        bool,
        typer.Option(help="Add the demo's faults (duplicates, late and malformed messages)."),
    ] = False,
    seed: int = 7,
    json: Json = False,
) -> None:
    """Publish simulated readings over MQTT with mutual TLS.

    With --device, as that meter (against AWS IoT, or `local up`'s broker for a folder
    registered against it); with --outputs (`local up`'s file), as simulated apartments on
    the local broker. The readings end at the current time, so `devices list` shows them
    as the meter's last reading once the pipeline has processed them.
    """
    from devkit.simulator.meters import Faults, Scenario

    if (device is None) == (outputs is None):
        raise CliError(
            "give --device DIR (a registered meter's folder) or --outputs FILE "
            "(`local up`'s outputs, for simulated apartments)"
        )
    days = minutes / (24 * 60)
    duration_s = int(days * 86400)
    fleet = Scenario()  # the fleet settings' defaults
    scenario = Scenario(
        apartments=1 if device is not None else apartments,
        days=days,
        interval_s=interval or fleet.interval_s,
        readings_per_message=readings_per_message or fleet.readings_per_message,
        payload_encoding=payload_encoding or fleet.payload_encoding,
        speed=speed,
        seed=seed,
        start_epoch_s=int(time.time()) - duration_s,
        faults=Faults()
        if faults
        else Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0),
    )
    if device is not None:
        publisher, scenario, where = _as_meter(device, key, basic_ingest, scenario)
    else:
        if basic_ingest:
            raise CliError("--basic-ingest needs AWS IoT: the local broker has no Basic Ingest")
        publisher, where = _on_local_broker(outputs, env)  # type: ignore[arg-type]
    result = _run(scenario, publisher, quiet=json)
    result["endpoint"] = where
    if json:
        console.print_json(result)
    else:
        console.note(
            f"published {result['messages']} messages ({result['readings']} readings) "
            f"as {', '.join(result['things'])} to {where} in {result['wall_s']} s"
        )
    if result["refused"]:
        raise CliError(
            f"the broker refused {result['refused']} of {result['messages']} messages "
            "(not authorized: is the policy attached and the topic the meter's own?)"
        )


def _as_meter(
    folder: Path, key: Path | None, basic_ingest: bool, scenario: Scenario
) -> tuple[MqttPublisher, Scenario, str]:
    from dataclasses import replace

    from devkit.simulator.meters import MqttPublisher
    from energy_cli.fleet.folder import read_config

    config = read_config(folder)
    if config is None:
        raise CliError(f"{folder} has no config.json: is it a folder from `devices register`?")
    private_key = key or (folder / config.private_key if config.private_key else None)
    if private_key is None or not private_key.is_file():
        raise CliError(f"no private key for {config.thing_name}: give --key (the meter's own)")
    topic = config.topic
    if basic_ingest:
        if not config.basic_ingest_topic:
            raise CliError(f"environment {config.environment!r} has no Basic Ingest topic")
        topic = config.basic_ingest_topic
    credentials = (folder / config.certificate, private_key, folder / config.root_ca)
    for path in credentials:
        if not path.is_file():
            raise CliError(f"{path} is missing")
    publisher = MqttPublisher(
        config.endpoint, config.port, lambda _device: credentials, topic=lambda _device: topic
    )
    scenario = replace(scenario, things=(config.thing_name,))
    return publisher, scenario, f"{config.endpoint}:{config.port} {topic}"


def _on_local_broker(outputs: Path, env: str) -> tuple[MqttPublisher, str]:
    from devkit.emulators.pki import CertificateAuthority
    from devkit.simulator.meters import MqttPublisher
    from energy_cli.environment import from_file

    local = from_file(outputs, env).local
    if local is None:
        raise CliError(f"{outputs} is not a local pipeline's outputs: use --device for AWS IoT")
    try:
        ca = CertificateAuthority.load(local.ca_directory)
    except FileNotFoundError:
        raise CliError(f"no local CA in {local.ca_directory}: is `local up` running?") from None
    host, _, port = local.broker_endpoint.rpartition(":")

    def credentials(device: str) -> tuple[Path, Path, Path]:
        issued = ca.issue_client(device)
        return issued.cert, issued.key, issued.ca

    return MqttPublisher(host, int(port), credentials), local.broker_endpoint


def _run(scenario: Scenario, publisher: MqttPublisher, *, quiet: bool) -> dict[str, Any]:
    from devkit.emulators.mqtt import ConnectionRefused
    from devkit.simulator.meters import RunStats, Simulation, run

    simulation = Simulation(scenario)
    with console.progress(quiet=quiet) as bar:
        task = bar.add_task("publishing", total=100)

        def progress(_stats: RunStats, fraction: float) -> None:
            bar.update(task, completed=round(fraction * 100))

        try:
            stats = run(simulation, publisher, progress=progress)
        except ConnectionRefused as error:
            raise CliError(str(error)) from None
        bar.update(task, completed=100)
    return {
        "things": simulation.devices,
        "messages": stats.messages,
        "readings": stats.readings,
        "refused": publisher.refused,
        "wall_s": round(stats.wall_s, 1),
    }
