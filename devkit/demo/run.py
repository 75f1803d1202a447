"""`make demo`: simulated apartments through the whole pipeline on this machine.

Synthesizes the CDK app, starts mosquitto (mutual TLS, per-device ACLs) and a moto server
provisioned from the dev templates, the topic-rule bridge, one trigger process per Lambda
function running the real handlers, and the raw archive; publishes the scenario; waits
until everything is processed; verifies conservation and energy against the ground truth;
writes out/demo/summary.json and out/demo/dashboard.html. Exit status 0 only if verified.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from energy_runtime import contract

from devkit import faults as fault_injection
from devkit.demo.verify import (
    ENERGY_TOLERANCE_WH,
    MeterDrops,
    Results,
    Verdict,
    alert_differences,
    collect,
    differences,
    meter_drops,
    table_content,
    verify,
)
from devkit.runner import pipeline as local_pipeline
from devkit.settings import dev_config
from devkit.simulator.incidents import IncidentRates, RaisedAlert, judge
from devkit.simulator.meters import Faults, MqttPublisher, RunStats, Scenario, Simulation, run

LATENCY_SAMPLE_DEVICES = 5
STUCK_MIN_S = 20.0
STUCK_FIXED_FILE = "stuck-devices.fixed"  # written by the fix (faults.DeadLetterWatch)
TABLE_FILE = "table.json"  # the interval and day items a run stored (for --reference)
ALERTS_FILE = "alerts.json"  # the alerts a run sent (for --reference)
# A silence, a stuck meter and a heater left on in a few meters of every default run, so
# that those alerts can be judged.
DEMO_INCIDENTS = IncidentRates(
    silences=0.1, stuck_registers=0.05, stuck_powers=0.05, heater_nights=0.1
)
# The detectors' warm-up (the earlier days a device's normal is learned from), then a day
# and a half to judge: an afternoon, a night (a heater from 23:00) and the morning after.
WARMUP_DAYS = dev_config().data.warmup_days
DEMO_DAYS = WARMUP_DAYS + 1.5
COMPRESSED_LAG_WALL_S = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="energy-monitoring local demo", description=__doc__)
    # 20 apartments keep the default run under 3 minutes on 2 busy cores: against moto the
    # processor's DynamoDB queries dominate (see docs/local-pipeline.md).
    parser.add_argument("--apartments", type=int, default=20)
    parser.add_argument(
        "--days",
        type=float,
        default=DEMO_DAYS,
        help=f"simulated days (default {DEMO_DAYS:g}: the detectors' warm-up, "
        "data.warmup_days, then a day and a half in which the incidents are drawn)",
    )
    fleet = dev_config().fleet  # cdk.json's fleet settings, as the cost model reads them
    parser.add_argument(
        "--interval",
        type=int,
        default=fleet.reading_interval_seconds,
        help="seconds between readings (fleet.reading_interval_seconds)",
    )
    parser.add_argument(
        "--readings-per-message",
        type=int,
        default=fleet.readings_per_message,
        help="readings per MQTT message (fleet.readings_per_message)",
    )
    parser.add_argument(
        "--payload-encoding",
        choices=contract.PAYLOAD_ENCODINGS,
        default=fleet.payload_encoding,
        help="how the meters encode a message (fleet.payload_encoding)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="simulated seconds per second (default: a day in 60 s)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duplicate-rate", type=float, default=0.01)
    parser.add_argument("--late-rate", type=float, default=0.005)
    parser.add_argument(
        "--reset-rate", type=float, default=0.05, help="meter swaps per apartment-day"
    )
    parser.add_argument("--garbage-rate", type=float, default=0.005)
    parser.add_argument(
        "--high-usage-threshold",
        type=float,
        default=None,
        help="Wh per interval that raises a high-usage alert in this run (default: the "
        "dev environment's data.high_usage_threshold_wh)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    defaults = fault_injection.DEFAULT_RATES
    parser.add_argument(
        "--faults",
        action="store_true",
        help="inject every fault at its default rate, after a fault-free run of the same "
        "scenario to compare the tables with (docs/local-pipeline.md)",
    )
    parser.add_argument(
        "--fault-crash-rate",
        type=float,
        default=None,
        help=f"share of invocations killed mid-way (--faults: {defaults.crash_per_invocation})",
    )
    parser.add_argument(
        "--fault-timeout-rate",
        type=float,
        default=None,
        help=f"share of invocations that overrun the timeout "
        f"(--faults: {defaults.timeout_per_invocation})",
    )
    parser.add_argument(
        "--fault-transient-rate",
        type=float,
        default=None,
        help=f"share of the handlers' AWS calls that fail transiently "
        f"(--faults: {defaults.transient_per_call})",
    )
    parser.add_argument(
        "--fault-stuck-devices",
        type=int,
        default=None,
        help="devices whose table requests are refused for a while, so that their "
        "hand-off messages end in the dead-letter queue and are re-driven (--faults: 1)",
    )
    parser.add_argument(
        "--fault-broker-restarts",
        type=float,
        default=None,
        help=f"broker restarts per simulated day (--faults: {defaults.broker_restarts_per_day:g})",
    )
    parser.add_argument(
        "--fault-broker-down",
        type=float,
        default=defaults.broker_down_s,
        help="wall seconds the broker stays down at each restart",
    )
    parser.add_argument(
        "--meter-buffer",
        type=int,
        default=fleet.offline_buffer_readings,
        help="readings a meter keeps while disconnected; beyond them the oldest are "
        "dropped at the meter (fleet.offline_buffer_readings)",
    )
    parser.add_argument(
        "--silences",
        type=float,
        default=DEMO_INCIDENTS.silences,
        help="labelled incidents: meters silent for --silence-minutes, per apartment-day "
        "(judged in the summary's alerts_quality)",
    )
    parser.add_argument(
        "--silence-minutes",
        type=int,
        default=None,
        help="how long a labelled silence lasts (default: the run's silence threshold plus "
        "two hours)",
    )
    parser.add_argument(
        "--silent-after",
        type=int,
        default=None,
        help="minutes a meter must lag the fleet to be silent in this run (default: "
        f"data.silent_after_minutes, or {COMPRESSED_LAG_WALL_S:g} wall seconds of simulated "
        "time if longer: the compressed clock stretches the pipeline's delays)",
    )
    parser.add_argument(
        "--heater-nights",
        type=float,
        default=DEMO_INCIDENTS.heater_nights,
        help="labelled incidents: a heater left on from 23:00, per apartment-day (after "
        "the warm-up: data.warmup_days)",
    )
    parser.add_argument(
        "--vacations", type=float, default=0.0, help="labelled weeks away, per apartment-day"
    )
    parser.add_argument(
        "--stuck-registers",
        type=float,
        default=DEMO_INCIDENTS.stuck_registers,
        help="labelled incidents: a register that stops counting for three hours while the "
        "meter reports power, per apartment-day",
    )
    parser.add_argument(
        "--stuck-powers",
        type=float,
        default=DEMO_INCIDENTS.stuck_powers,
        help="labelled incidents: power readings frozen at one value for three hours while "
        "the register counts on, per apartment-day",
    )
    parser.add_argument(
        "--fault-each-once",
        action="store_true",
        help="make every enabled fault fire at least once in each trigger, early (tests)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="a fault-free run's output directory of the same scenario: its table is "
        "compared with this run's (--faults runs one first when this is not given)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=0.0,
        help="seconds to wait for the pipeline after the last publish (default: by size)",
    )
    return parser.parse_args(argv)


def fault_rates(args: argparse.Namespace, scenario: Scenario) -> fault_injection.FaultRates | None:
    """The faults this run injects: --faults' defaults, each overridable, or none. Stuck
    devices are refused from a quarter into the publishing for a quarter of it, at least
    20 s: a message's five receives (each an invocation, a second's wait and the trigger's
    window) must all fall in it for the message to reach the dead-letter queue; they stay
    refused after it until one has (faults.DeadLetterWatch), at most three windows more."""
    defaults = fault_injection.DEFAULT_RATES if args.faults else fault_injection.FaultRates()
    stuck = args.fault_stuck_devices
    if stuck is None:
        stuck = 1 if args.faults else 0
    publish_s = scenario.duration_s / scenario.speed
    stuck_from = time.time() + 5 + publish_s / 4  # 5 s: certificates and connects first
    chosen = {
        "crash_per_invocation": args.fault_crash_rate,
        "timeout_per_invocation": args.fault_timeout_rate,
        "transient_per_call": args.fault_transient_rate,
        "broker_restarts_per_day": args.fault_broker_restarts,
    }
    rates = fault_injection.FaultRates(
        **{name: getattr(defaults, name) if value is None else value
           for name, value in chosen.items()},
        timeout_s=defaults.timeout_s,
        broker_down_s=args.fault_broker_down,
        seed=args.seed,
        each_at_least_once=args.fault_each_once,
        stuck_devices=tuple(scenario.device_ids()[:stuck]),
        stuck_from=stuck_from,
        stuck_until=stuck_from + max(STUCK_MIN_S, publish_s / 4),
        stuck_fixed_file=str(args.out / "run" / STUCK_FIXED_FILE) if stuck else "",
    )  # fmt: skip
    return rates if rates.any else None


class LatencySampler(threading.Thread):
    """Polls a few devices' latest item; latency = seen in DynamoDB - published over MQTT."""

    def __init__(
        self, pipeline: local_pipeline.Pipeline, devices: list[str], stats: RunStats
    ) -> None:
        super().__init__(daemon=True, name="latency-sampler")
        self.devices, self.stats = devices, stats
        deployment = pipeline.deployment
        self.table = (
            deployment.session()
            .resource("dynamodb", endpoint_url=deployment.endpoint, verify=deployment.ca_bundle)
            .Table(deployment.table_name)
        )
        self.samples: list[float] = []
        self.stop = threading.Event()
        self._seen: dict[str, int] = {}

    def run(self) -> None:
        from energy_runtime.queries import device_latest

        published: dict[tuple[str, int], float] = {}
        consumed = 0
        while not self.stop.wait(0.5):
            log = self.stats.publish_log
            for device, ts, wall in log[consumed : len(log)]:
                if device in self.devices:
                    published.setdefault((device, ts), wall)
            consumed = len(log)
            for device in self.devices:
                latest = device_latest(self.table, device)
                if not latest:
                    continue
                ts = int(
                    time.mktime(time.strptime(latest["ts"][:19], "%Y-%m-%dT%H:%M:%S"))
                    - time.timezone
                )
                if self._seen.get(device) != ts and (device, ts) in published:
                    self.samples.append(time.time() - published[(device, ts)])
                self._seen[device] = ts


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = _scenario(args)
    if fault_rates(args, scenario) is not None and args.reference is None:
        # The fault-free run of the same scenario that the tables are compared with.
        args.reference = args.out / "fault-free"
        print(f"==> first, the fault-free run of the same scenario ({args.reference})", flush=True)
        reference_argv = [
            *(argv if argv is not None else sys.argv[1:]),
            "--out", str(args.reference),
            "--fault-crash-rate", "0", "--fault-timeout-rate", "0", "--fault-transient-rate", "0",
            "--fault-stuck-devices", "0", "--fault-broker-restarts", "0",
        ]  # fmt: skip
        if main(reference_argv) != 0:
            print("==> the fault-free run failed: nothing to compare with", file=sys.stderr)
            return 1
        print("==> now the same scenario with faults", flush=True)
    out: Path = args.out
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    started = time.monotonic()
    print(f"==> synthesizing the CDK app ({local_pipeline.STAGE} templates)", flush=True)
    stage = local_pipeline.load_templates(run_dir)
    print("==> starting mosquitto, moto server, topic rule, triggers, raw archive", flush=True)
    rates = fault_rates(args, scenario)  # now: the stuck devices' window starts from here
    try:
        pipeline = local_pipeline.start(
            run_dir, stage, time_scale=scenario.speed, faults=rates, settings=_settings(args),
            schedules=False,  # once the meters are registered (_publish)
        )  # fmt: skip
    except ValueError as error:
        print(f"==> {error}", file=sys.stderr, flush=True)
        return 2
    try:
        return _run(args, Simulation(scenario), pipeline, started, rates)
    finally:
        pipeline.stop()


@dataclass
class _Published:
    """What the publishing step hands to the ones after it."""

    simulation: Simulation
    stats: RunStats
    publisher: MqttPublisher
    sampler: LatencySampler
    publish_s: float
    drain_s: float = 0.0

    @property
    def drops(self) -> MeterDrops:
        return meter_drops(self.publisher.dropped, self.simulation.duplicated)


def _run(
    args: argparse.Namespace,
    simulation: Simulation,
    pipeline: local_pipeline.Pipeline,
    started: float,
    rates: fault_injection.FaultRates | None,
) -> int:
    scenario = simulation.scenario
    watch = _watch_dead_letters(pipeline, rates)
    published = _publish(simulation, pipeline, started, args.meter_buffer, rates)
    if watch is not None:  # the fix comes before the pipeline can drain
        watch.join(max(0.0, watch.give_up_at - time.time()) + 5)
    published.drain_s = _drain(args, scenario, pipeline, published, started)
    drained_at = time.time()
    replayed = _replay_dead_letters(pipeline) if rates and rates.stuck_devices else None
    results = collect(pipeline.deployment, published.simulation.devices)
    verdict = verify(published.stats.readings, published.simulation.truth, results, published.drops)
    summary = _summary(scenario, pipeline, published, results, verdict, time.monotonic() - started)
    content = table_content(pipeline.deployment)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / TABLE_FILE).write_text(json.dumps(content))
    (args.out / ALERTS_FILE).write_text(json.dumps(results.alerts))
    identical, missing_alerts = True, 0
    if args.reference is not None:
        summary["faults"] = _fault_report(
            args.reference, pipeline, rates, content, drained_at, results.alerts
        )
        summary["faults"]["duration_ratio"] = round(
            summary["duration_s"] / max(summary["faults"]["fault_free_duration_s"], 1e-9), 2
        )
        summary["faults"]["alerts"] = summary["alerts"]
        summary["faults"]["dead_letters"] = replayed
        if replayed is not None:
            summary["faults"]["injected_faults"]["dead_letters_replayed"] = replayed["applied"]
        # Readings a full offline buffer dropped make a different table, rightly.
        identical = summary["faults"]["fault_free_identical"] or verdict.dropped_at_meter > 0
        # At least once: every alert the fault-free run sent must have been sent.
        missing_alerts = (summary["faults"]["alert_differences"] or {}).get("missing_count", 0)
    _write_outputs(args.out, summary, results, published)
    if not identical:
        print("==> the table differs from the fault-free run's", file=sys.stderr, flush=True)
    if missing_alerts:
        print(f"==> {missing_alerts} alerts of the fault-free run were not sent",
              file=sys.stderr, flush=True)  # fmt: skip
    if not identical or missing_alerts:
        return 1
    if not verdict.ok:
        print("==> VERIFICATION FAILED", file=sys.stderr, flush=True)
        return 1
    print(
        "==> verified: nothing lost, every apartment's energy matches the ground truth", flush=True
    )
    return 0


def _fault_report(
    reference: Path,
    pipeline: local_pipeline.Pipeline,
    rates: fault_injection.FaultRates | None,
    content: dict[str, Any],
    drained_at: float,
    alerts: list[dict[str, Any]],
) -> dict[str, Any]:
    """What was injected, what it caused, and whether the table and the alerts came out
    as without it."""
    log = fault_injection.read_log(pipeline.fault_log)
    kinds = ("crashes", "timeouts", "transient_errors", "broker_restarts")
    injected = dict.fromkeys(kinds, 0)
    injected.update(fault_injection.counts_by_kind(log))
    fixed = injected.pop(fault_injection.FIXED, 0)
    expected = json.loads((reference / TABLE_FILE).read_text())
    different = differences(content, expected)
    stats = {name: pipeline.status(name).get("stats", {}) for name in ("batching", "processor")}
    last_fault = max((e["at"] for e in log if e["kind"] != fault_injection.FIXED), default=None)
    fault_free = json.loads((reference / "summary.json").read_text())
    return {
        "rates": None if rates is None else json.loads(rates.to_json()),
        "injected_faults": injected,
        "transient_errors_by_service": dict(
            sorted(Counter(e["service"] for e in log if e["kind"] == "transient_errors").items())
        ),
        "stuck_devices_fixed": bool(fixed),
        "restarts": dict(pipeline.restarts),
        "bridge_reconnects": pipeline.status("bridge").get("reconnects", 0),
        "redelivered": {name: s.get("redelivered", 0) for name, s in stats.items()},
        "retries": {name: s.get("retries", 0) for name, s in stats.items()},
        "function_errors": {name: s.get("errors", 0) for name, s in stats.items()},
        "drain_after_last_fault_s": (
            None if last_fault is None else round(max(0.0, drained_at - last_fault), 1)
        ),
        "fault_free_identical": not different,
        "items_compared": len(expected),
        "differences": different[:20],
        "fault_free_duration_s": fault_free["duration_s"],
        # At least once, and no more than without faults: an alert is marked before it is
        # sent, so a batch applied again does not send it twice.
        "fault_free_alerts": fault_free["alerts"],
        "alert_differences": _alert_differences(reference, pipeline, alerts),
    }


def _alert_differences(
    reference: Path, pipeline: local_pipeline.Pipeline, alerts: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """By device, kind and period: the fault-free run's alerts missing here, the extra
    ones, and any sent twice (None: the reference run kept no alerts file)."""
    if not (reference / ALERTS_FILE).exists():
        return None
    period = _processor_setting(pipeline, contract.ALERT_PERIOD_MINUTES)
    found = alert_differences(alerts, json.loads((reference / ALERTS_FILE).read_text()), period)
    return {**{f"{name}_count": len(keys) for name, keys in found.items()}, **found}


def _processor_setting(pipeline: local_pipeline.Pipeline, variable: contract.Variable) -> int:
    """A whole-number setting of the processor as this run deployed it."""
    return int(pipeline.deployment.functions[contract.PROCESSOR].environment[variable.name])


def _progress_printer(
    pipeline: local_pipeline.Pipeline, started: float
) -> Callable[[RunStats, float], None]:
    def progress(stats: RunStats, fraction: float) -> None:
        bridge = pipeline.status("bridge")
        batching = pipeline.status("batching").get("stats", {})
        processor = pipeline.status("processor").get("stats", {})
        print(
            f"    {fraction:6.1%} simulated | published {stats.messages:>7} msgs"
            f" | rule {bridge.get('put', 0):>7}"
            f" | batching {batching.get('invocations', 0):>5} inv"
            f" | processor {processor.get('invocations', 0):>5} inv"
            f" | {time.monotonic() - started:5.0f}s",
            flush=True,
        )

    return progress


def _watch_dead_letters(
    pipeline: local_pipeline.Pipeline, rates: fault_injection.FaultRates | None
) -> fault_injection.DeadLetterWatch | None:
    """Fix the stuck devices once their messages reach the hand-off dead-letter queue."""
    if rates is None or not rates.stuck_devices:
        return None
    from energy_cli.recovery import messages_waiting

    deployment = pipeline.deployment
    sqs, url = deployment.client("sqs"), deployment.handoff_dead_letter_url
    window = rates.stuck_until - rates.stuck_from
    watch = fault_injection.DeadLetterWatch(
        rates, fault_injection.FaultLog(pipeline.fault_log, worker="operator"),
        lambda: messages_waiting(sqs, url),
        give_up_at=rates.stuck_until + 3 * window,
    )  # fmt: skip
    watch.start()
    return watch


def _replay_dead_letters(pipeline: local_pipeline.Pipeline) -> dict[str, Any]:
    """After the fix (the stuck devices' window is over): re-drive the dead-letter queue
    with `energy-monitoring replay --dead-letters`, as an operator would."""
    from energy_cli.commands.local import write_outputs

    outputs = write_outputs(pipeline.run_dir, pipeline)
    command = [
        sys.executable, "-c", "from energy_cli.main import main; main()",
        "replay", "--env", "dev", "--outputs", str(outputs),
        "--dead-letters", "--json",
    ]  # fmt: skip
    print(
        "==> re-driving the dead-letter queue: energy-monitoring replay --dead-letters", flush=True
    )
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=local_pipeline.REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(local_pipeline.REPO), str(local_pipeline.REPO / "runtime")])},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"replay failed: {done.stderr.strip()[-2000:]}")
    outcome: dict[str, Any] = json.loads(done.stdout)
    print(f"    {outcome['found']} dead letters, {outcome['applied']} applied", flush=True)
    return outcome


def silent_after_minutes(args: argparse.Namespace) -> int:
    """How long a meter must lag the fleet to be silent in this run. The compressed clock
    stretches the pipeline's own delays: one processor invocation of a few wall seconds
    carries hours of simulated time, and a sweep during it sees the devices it has
    written far ahead of the others. So unless told (--silent-after), the threshold is
    the environment's or COMPRESSED_LAG_WALL_S of wall time, whichever is longer."""
    if args.silent_after is not None:
        return int(args.silent_after)
    configured = dev_config().data.silent_after_minutes
    return max(configured, math.ceil(COMPRESSED_LAG_WALL_S * (args.speed or 1440.0) / 60))


def _settings(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """The processor settings this run sets itself (the pipeline checks them)."""
    settings = {contract.SILENT_AFTER_MINUTES.name: str(silent_after_minutes(args))}
    if args.high_usage_threshold is not None:
        settings[contract.HIGH_USAGE_THRESHOLD_WH.name] = repr(args.high_usage_threshold)
    return {contract.PROCESSOR: settings}


def _scenario(args: argparse.Namespace) -> Scenario:
    return Scenario(
        apartments=args.apartments,
        days=args.days,
        interval_s=args.interval,
        readings_per_message=args.readings_per_message,
        payload_encoding=args.payload_encoding,
        speed=args.speed or 1440.0,
        seed=args.seed,
        faults=Faults(
            duplicate_rate=args.duplicate_rate,
            late_rate=args.late_rate,
            reset_rate=args.reset_rate,
            garbage_rate=args.garbage_rate,
        ),
        incidents=IncidentRates(
            silences=args.silences,
            silence_minutes=args.silence_minutes or silent_after_minutes(args) + 120,
            heater_nights=args.heater_nights,
            vacations=args.vacations,
            stuck_registers=args.stuck_registers,
            stuck_powers=args.stuck_powers,
            after_days=incidents_after_days(args.days),
        ),
    )


def incidents_after_days(days: float) -> int:
    """The day incidents start on: after the detectors' warm-up when the run has a night
    after it (a heater left on before could not be judged), else the first (a short run's
    silent and stuck meters need no warm-up)."""
    return WARMUP_DAYS if days >= WARMUP_DAYS + 1.5 else 0


def _publish(
    simulation: Simulation,
    pipeline: local_pipeline.Pipeline,
    started: float,
    buffer_readings: int,
    rates: fault_injection.FaultRates | None,
) -> _Published:
    """Give every meter its certificate, connect them, and publish the scenario (while
    the broker restarts, if that is one of the faults)."""
    scenario = simulation.scenario
    ca = pipeline.ca
    pki = ca.directory
    iot = pipeline.deployment.client("iot")
    group = pipeline.deployment.functions[contract.PROCESSOR].environment[
        contract.METER_GROUP_NAME.name
    ]
    for device, place in scenario.places().items():
        ca.issue_client(device)
        # As `energy-monitoring fleet register` leaves it: the thing, placed, in the group.
        iot.create_thing(thingName=device, attributePayload={"attributes": place})
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=device)
    pipeline.start_schedules()  # the silence sweep, now that there are meters to list
    publisher = MqttPublisher(
        pipeline.broker.host,
        pipeline.broker.port,
        lambda d: (pki / f"{d}.crt", pki / f"{d}.key", ca.ca_path),
        buffer_readings=buffer_readings,
    )
    print(
        f"==> {scenario.apartments} apartments, {scenario.days:g} simulated day(s)"
        f" at {scenario.interval_s}-s readings,"
        f" {scenario.readings_per_message} per {scenario.payload_encoding} message,"
        f" {scenario.speed:g}x real time",
        flush=True,
    )
    print(
        f"==> connecting {len(simulation.devices)} meters (mutual TLS, one certificate each)",
        flush=True,
    )
    for device in simulation.devices:
        publisher.connect(device)
    stats = RunStats()
    sampler = LatencySampler(pipeline, simulation.devices[:LATENCY_SAMPLE_DEVICES], stats)
    sampler.start()
    restarts = None
    if rates is not None and rates.broker_restarts_per_day:
        log = fault_injection.FaultLog(pipeline.fault_log, worker="broker")
        restarts = fault_injection.BrokerRestarts(
            rates, log, pipeline.restart_broker,
            duration_s=scenario.duration_s, speed=scenario.speed,
        )  # fmt: skip
        restarts.start()
    publish_started = time.monotonic()
    stats = run(simulation, publisher, progress=_progress_printer(pipeline, started), stats=stats)
    publish_s = time.monotonic() - publish_started
    if restarts is not None:
        restarts.stop.set()
        restarts.join(30)
        if restarts.error is not None:
            raise RuntimeError(f"restarting the broker failed: {restarts.error}")
    print(
        f"==> published {stats.messages} messages in {publish_s:.1f}s;"
        " waiting for the pipeline to drain",
        flush=True,
    )
    if publisher.dropped:
        print(
            f"==> meters dropped {publisher.dropped_readings} readings from full offline "
            f"buffers ({len(publisher.dropped)} messages)",
            flush=True,
        )
    return _Published(simulation, stats, publisher, sampler, publish_s)


def _drain(
    args: argparse.Namespace,
    scenario: Scenario,
    pipeline: local_pipeline.Pipeline,
    published: _Published,
    started: float,
) -> float:
    """Wait until every stage has processed what was published; returns the seconds."""
    progress = _progress_printer(pipeline, started)
    last_report = [time.monotonic()]

    def draining() -> None:
        if time.monotonic() - last_report[0] >= 2:
            progress(published.stats, 1.0)
            last_report[0] = time.monotonic()

    timeout = args.drain_timeout or 180.0 + 6.0 * scenario.apartments * scenario.days
    sent = published.stats.messages - len(published.publisher.dropped)
    drain_s = local_pipeline.wait_drained(pipeline, messages=sent, timeout=timeout, report=draining)
    published.sampler.stop.set()
    published.sampler.join(5)
    return drain_s


def _alerts_quality(scenario: Scenario, published: _Published, results: Results) -> dict[str, Any]:
    """The alerts judged against the simulator's labelled incidents; when each alert was
    sent comes from the alert tap's SentTimestamp, in the scenario's simulated time."""
    log = sorted((wall, ts) for _device, ts, wall in published.stats.publish_log)
    walls = [wall for wall, _ts in log]

    def simulated(sent_ms: int | None) -> float | None:
        if sent_ms is None or not log:
            return None
        at = max(0, bisect.bisect_right(walls, sent_ms / 1000) - 1)
        wall, ts = log[at]
        return ts + (sent_ms / 1000 - wall) * scenario.speed

    sent_at = list(zip(results.alerts, results.alert_sent_ms, strict=True))
    raised = [RaisedAlert.of(alert, simulated(sent)) for alert, sent in sent_at]
    cleared = [RaisedAlert.resolution_of(alert, simulated(sent)) for alert, sent in sent_at]
    incidents = published.simulation.incidents
    report = judge(incidents, [a for a in raised if a is not None],
                   apartment_days=scenario.apartments * scenario.days,
                   resolutions=[r for r in cleared if r is not None])  # fmt: skip
    return {**report, "incidents": [i.public() for i in incidents]}


def _summary(
    scenario: Scenario,
    pipeline: local_pipeline.Pipeline,
    published: _Published,
    results: Results,
    verdict: Verdict,
    duration: float,
) -> dict[str, Any]:
    """Everything out/demo/summary.json says about the run."""
    counts = pipeline.counts()
    worker_status = {name: pipeline.status(name) for name in pipeline.workers}
    stats, sampler = published.stats, published.sampler
    requests = counts["requests"]
    batching = worker_status["batching"].get("stats", {})
    processor = worker_status["processor"].get("stats", {})
    return {
        "ok": verdict.ok,
        "published": verdict.published,
        "duplicates_merged": verdict.duplicates,
        "stored": verdict.stored,
        "quarantined": verdict.quarantined,
        "dropped_at_meter": verdict.dropped_at_meter,
        "lost": verdict.lost,
        "energy_mismatches": len(verdict.energy_mismatches),
        "energy_mismatch_details": verdict.energy_mismatches[:20],
        "energy_tolerance_wh": ENERGY_TOLERANCE_WH,
        "interval_minutes": _processor_setting(pipeline, contract.INTERVAL_MINUTES),
        "duration_s": round(duration, 1),
        "publish_s": round(published.publish_s, 1),
        "drain_s": round(published.drain_s, 1),
        "scenario": asdict(scenario),
        "messages_published": stats.messages,
        "messages_by_kind": stats.by_kind,
        "meters": {
            "offline_buffer_readings": published.publisher.buffer_readings,
            "reconnects": published.publisher.reconnects,
            "buffered_messages": published.publisher.buffered,
            "buffered_peak_readings": published.publisher.buffered_peak_readings,
            "dropped_messages": len(published.publisher.dropped),
            "dropped_readings": published.publisher.dropped_readings,
        },
        "quarantined_by_reason": results.quarantined_by_reason,
        "requests": {
            "iot_messages": worker_status["bridge"].get("received", 0),
            "kinesis_records": counts["kinesis_records_put"],
            "kinesis_put_requests": requests.get("kinesis:PutRecords", 0),
            "lambda_invocations": {
                "batching": batching.get("invocations", 0),
                "processor": processor.get("invocations", 0),
            },
            "dynamodb_write_units": counts["dynamodb_write_units"],
            "s3_puts": sum(counts["s3_puts"].values()),
            "s3_puts_by_prefix": counts["s3_puts"],
            "sqs_send_requests": requests.get("sqs:SendMessage", 0)
            + requests.get("sqs:SendMessageBatch", 0),
            "sns_publishes": counts["sns_publishes"],
            "all": requests,
        },
        "lambda": {"batching": batching, "processor": processor},
        "raw_archive": {"objects": results.raw_archive_objects, "rows": results.raw_archive_rows},
        "processed_objects": results.processed_objects,
        "moto_server": {"busy_s": counts["server_busy_s"], "lock_wait_s": counts["server_wait_s"]},
        "on_failure_messages": results.on_failure_messages,
        "dead_letters": results.dead_letters,
        "alerts": len(results.alerts),
        "alerts_quality": {
            **_alerts_quality(scenario, published, results),
            # The threshold this run used (see silent_after_minutes: the compressed clock).
            "silent_after_minutes": _processor_setting(pipeline, contract.SILENT_AFTER_MINUTES),
        },
        "latency_s": {
            "samples": len(sampler.samples),
            "p50": round(_percentile(sampler.samples, 0.5), 2),
            "p95": round(_percentile(sampler.samples, 0.95), 2),
            "max": round(max(sampler.samples, default=0.0), 2),
        },
        "throughput_readings_per_s": round(
            verdict.published / max(published.publish_s + published.drain_s, 1e-9), 1
        ),
        "cost": _cost(scenario, counts, stats, batching, processor, results),
        "settings": {
            "batching": asdict(pipeline.deployment.mappings["batching"]),
            "processor": asdict(pipeline.deployment.mappings["processor"]),
            "time_scale": scenario.speed,
        },
    }


def _cost(
    scenario: Scenario,
    counts: dict[str, Any],
    stats: RunStats,
    batching: dict[str, Any],
    processor: dict[str, Any],
    results: Results,
) -> dict[str, Any]:
    from devkit.demo import cost

    puts = counts["s3_puts"]
    measured = {
        "messages": stats.messages,
        # The rule's one action per message (every demo message is under one 5 KB step).
        "rule_actions": counts["kinesis_records_put"],
        "kinesis_records": counts["kinesis_records_put"],
        "kinesis_payload_units": counts["kinesis_payload_units"],
        "dynamodb_write_units": counts["dynamodb_write_units"],
        "s3_processed_puts": puts.get(contract.PROCESSED_PREFIX, 0),
        "s3_raw_puts": puts.get(contract.RAW_PREFIX, 0),
        "sns_publishes": counts["sns_publishes"],
        "batching_invocations": batching.get("invocations", 0),
        "processor_invocations": processor.get("invocations", 0),
        "device_invocations": processor.get("device_invocations", 0),
    }
    return cost.compare(
        apartments=scenario.apartments,
        duration_s=scenario.duration_s,
        interval_s=scenario.interval_s,
        readings_per_message=scenario.readings_per_message,
        payload_encoding=scenario.payload_encoding,
        reading_bytes=stats.payload_bytes / max(stats.readings, 1),
        measured=measured,
        alerts=len(results.alerts),
        extra_message_rate=scenario.faults.duplicate_rate + scenario.faults.garbage_rate,
        # The data's late messages, as the simulator sent them (a rate per message).
        late_message_rate=stats.by_kind.get("late", 0) / max(stats.messages, 1),
    )


def _write_outputs(
    out: Path, summary: dict[str, Any], results: Results, published: _Published
) -> None:
    from devkit.demo.dashboard import write_dashboard

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_dashboard(
        out / "dashboard.html", summary, results, published.simulation, published.sampler.samples
    )
    _print_table(summary)
    print(f"==> {out / 'summary.json'}, {out / 'dashboard.html'}", flush=True)


def _print_table(summary: dict[str, Any]) -> None:
    requests = summary["requests"]
    rows = [
        ("readings published", summary["published"]),
        ("  duplicate copies merged", summary["duplicates_merged"]),
        ("  stored", summary["stored"]),
        ("  quarantined", summary["quarantined"]),
        ("  dropped at the meter", summary["dropped_at_meter"]),
        ("  lost", summary["lost"]),
        ("energy mismatches", summary["energy_mismatches"]),
        ("IoT messages", requests["iot_messages"]),
        ("Kinesis records", requests["kinesis_records"]),
        ("Lambda invocations (batching)", requests["lambda_invocations"]["batching"]),
        ("Lambda invocations (processor)", requests["lambda_invocations"]["processor"]),
        ("DynamoDB write units", requests["dynamodb_write_units"]),
        ("S3 PUTs", requests["s3_puts"]),
        ("alerts", summary["alerts"]),
        (
            "latency publish->DynamoDB p50/p95 s",
            f"{summary['latency_s']['p50']}/{summary['latency_s']['p95']}",
        ),
        ("duration s", summary["duration_s"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"    {name:<{width}}  {value:>12}")


if __name__ == "__main__":
    sys.exit(main())
