"""Alert quality against ground truth: the simulator's labelled incidents through the
processor's own code path, judged per alert kind.

    python -m tools.bench_alerts            # or: make bench-alerts

For each seed, a multi-day scenario of apartments with labelled incidents (a heater left
on for a night, a week away, a meter silent for an hour, a register stuck for three
hours, a base load that steps up; devkit/simulator/incidents.py) is published in
simulated time: every `--window` seconds the messages of the window go through the
batching handler and the processor (process_kinesis_event, process_sqs_event) and the
silence sweep runs at its schedule, all against moto in-process, with the dev
environment's alert settings from cdk.json. What the alert topic received is judged
against the incidents (precision, recall, minutes to alert, false alerts per 100
apartment-days); the worst seed per figure is the headline, so a detector tuned to one
seed shows. Writes out/bench/alerts.json.

Readings come every `--reading-interval` seconds (60 by default, against the fleet's 10):
the detectors judge interval energies, and fewer readings keep a 14-day run within
minutes; meters still publish every fleet publish period (readings x interval of
cdk.json), so a silent meter looks as it would.

moto encodes DynamoDB responses by walking the service model member by member, which
dominates such a run (measured: about 110 ms per BatchGetItem of ten hot items); with
`--fast-responses` (the default) moto's DynamoDB results are written as the wire JSON they
stand for instead. Requests, the table's behaviour and errors stay moto's; the tests run a
small scenario both ways and compare.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from energy_runtime import contract

from devkit.settings import dev_config
from devkit.simulator import incidents as labelled
from devkit.simulator.meters import Faults, Scenario, Simulation

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out" / "bench" / "alerts.json"
FLEET = dev_config().fleet
PUBLISH_PERIOD_S = FLEET.reading_interval_seconds * FLEET.readings_per_message
# A Monday, midnight UTC: the scenario's weeks start on one. Fourteen days from it hold the
# autumn clock change (2026-10-25 in the European zones), judged after the warm-up.
START = int(dt.datetime(2026, 10, 12, tzinfo=dt.UTC).timestamp())
RATES = labelled.IncidentRates(
    heater_nights=0.03,
    vacations=0.004,
    silences=0.03,
    stuck_registers=0.02,
    baseload_steps=0.02,
    stuck_powers=0.02,
    after_days=dev_config().data.warmup_days,
)
NO_FAULTS = Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0)
KINESIS_BATCH = 10_000  # records per batching invocation (the stacks' batch size bound)
HANDOFF_BATCH = 100  # hand-off messages per processor invocation


def scenario_of(
    seed: int, apartments: int, days: int, interval_s: int, rates: labelled.IncidentRates
) -> Scenario:
    """The scenario a seed runs: the meters publish as the fleet settings say."""
    return Scenario(
        apartments=apartments,
        days=days,
        interval_s=interval_s,
        readings_per_message=max(1, PUBLISH_PERIOD_S // interval_s),
        start_epoch_s=START,
        seed=seed,
        faults=NO_FAULTS,
        incidents=rates,
    )


@contextlib.contextmanager
def wire_json_dynamodb_responses() -> Iterator[None]:
    """moto's DynamoDB results, written straight as DynamoDB's JSON (binary as base64),
    while the context lasts."""
    import base64

    from moto.dynamodb.responses import DynamoResult

    def encode(value: object) -> str | float:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, dt.datetime):  # the JSON protocol's timestamps: epoch seconds
            return value.timestamp()
        raise TypeError(f"cannot encode {type(value).__name__}")

    def execute_result(self: DynamoResult, context: Any) -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return 200, headers, json.dumps(self.result, default=encode)

    original = DynamoResult.execute_result
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        DynamoResult.execute_result = original  # type: ignore[method-assign]


def run_seed(
    seed: int,
    apartments: int,
    days: int,
    window_s: int,
    interval_s: int,
    *,
    fast_responses: bool = True,
    rates: labelled.IncidentRates = RATES,
) -> dict[str, Any]:
    """One seed in a fresh moto: returns its judgement and what it took."""
    os.environ[contract.LOG_LEVEL.name] = "WARNING"  # before the handlers' loggers exist
    from energy_runtime import processor as processor_module

    started = time.monotonic()
    # moto's tables are not safe for one thread's Query while another writes: one device
    # at a time (threads gain nothing against an in-process moto anyway).
    processor_module.DEVICE_WORKERS = 1
    with wire_json_dynamodb_responses() if fast_responses else contextlib.nullcontext():
        return _run(seed, apartments, days, window_s, interval_s, rates, started)


def _run(
    seed: int,
    apartments: int,
    days: int,
    window_s: int,
    interval_s: int,
    rates: labelled.IncidentRates,
    started: float,
) -> dict[str, Any]:
    from energy_runtime import aws, places, silence
    from energy_runtime.batching import process_kinesis_event
    from energy_runtime.processor import process_sqs_event, telemetry
    from energy_runtime.settings import load_batching_settings, load_processor_settings

    from energy_monitoring.constructs.function_environment import function_environment
    from tools.bench import Cloud, clear_metrics, kinesis_records

    cloud = Cloud()
    aws.reset_clients()
    places.forget()
    silence.forget()
    iot = aws.client("iot")
    group = "meters"
    config = dev_config()
    env = {
        **function_environment(contract.BATCHING, config, {
            contract.HANDOFF_QUEUE_URL: cloud.queue_url, contract.ARCHIVE_BUCKET: "archive"}),
        **function_environment(contract.PROCESSOR, config, {
            contract.ARCHIVE_BUCKET: "archive", contract.TABLE_NAME: "energy",
            contract.ALERT_TOPIC_ARN: cloud.env[contract.ALERT_TOPIC_ARN.name],
            contract.METER_GROUP_NAME: group}),
    }  # fmt: skip
    batching, processor = load_batching_settings(env), load_processor_settings(env)
    scenario = scenario_of(seed, apartments, days, interval_s, rates)
    iot.create_thing_group(thingGroupName=group)
    for device, place in scenario.places().items():
        iot.create_thing(thingName=device, attributePayload={"attributes": place})
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=device)
    tap = cloud.sqs.create_queue(QueueName="alert-tap")["QueueUrl"]
    tap_arn = cloud.sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]  # fmt: skip
    cloud.sns.subscribe(TopicArn=processor.alert_topic_arn, Protocol="sqs", Endpoint=tap_arn,
                        Attributes={"RawMessageDelivery": "true"})  # fmt: skip
    raised: list[labelled.RaisedAlert] = []
    resolutions: list[labelled.RaisedAlert] = []
    messages: list[dict[str, Any]] = []

    def collect(now_s: float) -> None:
        while got := cloud.sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in got:
                body = json.loads(message["Body"])
                messages.append(body)
                alert = labelled.RaisedAlert.of(body, now_s)
                if alert is not None:
                    raised.append(alert)
                cleared = labelled.RaisedAlert.resolution_of(body, now_s)
                if cleared is not None:
                    resolutions.append(cleared)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                       for i, m in enumerate(got)]  # fmt: skip
            cloud.sqs.delete_message_batch(QueueUrl=tap, Entries=entries)

    def apply(window: list[tuple[int, str, bytes]], end_s: int, seq: int) -> None:
        for first in range(0, len(window), KINESIS_BATCH):
            records = kinesis_records(window[first : first + KINESIS_BATCH], seq + first)
            process_kinesis_event({"Records": records}, config=batching, sqs=cloud.sqs, s3=cloud.s3)
        handoffs = cloud.drain()
        for first in range(0, len(handoffs), HANDOFF_BATCH):
            result = process_sqs_event(
                {"Records": handoffs[first : first + HANDOFF_BATCH]}, config=processor,
                dynamodb=cloud.dynamodb, s3=cloud.s3, sns=cloud.sns, iot=iot,
            )  # fmt: skip
            if result["batchItemFailures"]:
                raise RuntimeError(f"the processor failed {result['batchItemFailures']}")
        clear_metrics()  # outside Lambda nothing flushes them
        collect(end_s)

    simulation = Simulation(scenario)
    sweep_s = config.schedules.silence_sweep_minutes * 60
    next_sweep = START + sweep_s
    window: list[tuple[int, str, bytes]] = []
    window_end = START + window_s
    seq = 0
    readings = 0
    for message in simulation.messages():
        while message.publish_at >= window_end:
            apply(window, window_end, seq)
            seq += len(window)
            window = []
            while next_sweep <= window_end:
                silence.sweep(config=processor, dynamodb=cloud.dynamodb, sns=cloud.sns, iot=iot,
                              telemetry=telemetry)  # fmt: skip
                collect(next_sweep)
                next_sweep += sweep_s
            window_end += window_s
        window.append((int(message.publish_at * 1000) + 500, message.device_id, message.payload))
        readings += message.readings
    apply(window, window_end, seq)
    cloud.stop()
    judged = labelled.judge(simulation.incidents, raised, apartment_days=apartments * days,
                            resolutions=resolutions)  # fmt: skip
    return {
        "seed": seed,
        **judged,
        "resolutions": sum(m.get("status") == "resolved" for m in messages),
        "readings": readings,
        "seconds": round(time.monotonic() - started, 1),
    }


def worst(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind, the worst seed's figures (lowest precision and recall, slowest alert)."""
    kinds: dict[str, dict[str, Any]] = {}
    for result in results:
        for kind, figures in result["kinds"].items():
            entry = kinds.setdefault(kind, {"precision": None, "recall": None,
                                            "median_minutes_to_alert": None})  # fmt: skip
            for name, pick in (("precision", min), ("recall", min),
                               ("median_minutes_to_alert", max)):  # fmt: skip
                value = figures[name]
                if value is not None:
                    entry[name] = value if entry[name] is None else pick(entry[name], value)
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--apartments", type=int, default=100)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--window", type=int, default=300, help="simulated seconds per batch")
    parser.add_argument("--reading-interval", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2, help="seeds run side by side")
    parser.add_argument(
        "--moto-responses",
        action="store_true",
        help="let moto encode DynamoDB responses itself (slow; see above)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.apartments < 1 or args.days < 1 or args.window < 60 or not args.seeds:
        parser.error("needs at least one seed, one apartment, one day and a 60 s window")
    print(f"==> {len(args.seeds)} seeds x {args.apartments} apartments x {args.days} days, "
          f"{args.window} s windows", flush=True)  # fmt: skip
    with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, len(args.seeds)))) as pool:
        futures = [pool.submit(run_seed, seed, args.apartments, args.days, args.window,
                               args.reading_interval, fast_responses=not args.moto_responses)
                   for seed in args.seeds]  # fmt: skip
        results = []
        for future in futures:
            result = future.result()
            results.append(result)
            print(f"    seed {result['seed']}: {json.dumps(result['kinds'])} false "
                  f"{result['false_alerts_per_100_apartment_days']}/100 apartment-days "
                  f"({result['seconds']} s)", flush=True)  # fmt: skip
    report = {
        "seeds": args.seeds,
        "apartments": args.apartments,
        "days": args.days,
        "apartment_days": args.apartments * args.days,
        "window_s": args.window,
        "reading_interval_s": args.reading_interval,
        "kinds": worst(results),
        "false_alerts_per_100_apartment_days": max(
            r["false_alerts_per_100_apartment_days"] for r in results
        ),
        "by_seed": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"==> {args.out}")
    return 0 if all(math.isfinite(r["seconds"]) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
