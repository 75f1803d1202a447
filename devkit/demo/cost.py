"""The cost model's prediction for the demo's own run, beside what the moto server counted.

The model (`energy_monitoring.costs.model`) predicts from the scenario (apartments, days,
readings per message) and the dev environment's settings, as it predicts a month. Two
inputs come from the run instead, because the demo compresses a day into a minute:
the number of processor invocations and the devices each carried (a compressed window is
a fraction of a second, so the processor merges several; in AWS it runs once per batching
window, with every device that sent in it) and the alerts the
data raised (the data's, not the pipeline's); the scenario's injected duplicate and
malformed messages are the fleet's `extra_message_rate`, the late ones it sent its
`late_message_rate`. Everything the model then derives from them, DynamoDB write units
and processed/ objects, is checked, not copied.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from energy_runtime import contract

from devkit.settings import LOCAL_ENVIRONMENT, dev_config
from energy_monitoring.costs import model, prices

REGION = "us-east-1"  # dev is environment-agnostic: priced where most people start
TOLERANCE = 0.10
# Counts that follow from the workload and the settings, within TOLERANCE of measurement.
BOUNDED = (
    "messages",
    "rule_actions",
    "kinesis_records",
    "kinesis_payload_units",
    "dynamodb_write_units",
    "s3_processed_puts",
)
# Counts that follow from timing or from the data: shown beside the model, not bounded.
REPORTED = ("batching_invocations", "processor_invocations", "s3_raw_puts", "sns_publishes")


def compare(
    *,
    apartments: int,
    duration_s: float,
    interval_s: int,
    readings_per_message: int,
    payload_encoding: contract.PayloadEncoding,
    reading_bytes: float,
    measured: dict[str, float],
    alerts: int,
    extra_message_rate: float,
    late_message_rate: float,
) -> dict[str, Any]:
    """The summary's `cost` section: predicted and measured counts, and their dollars."""
    config = dev_config()
    design = model.Design.from_config(config, region=REGION)
    days = duration_s / 86_400
    fleet = model.Fleet(
        apartments=apartments,
        reading_interval_s=interval_s,
        readings_per_message=readings_per_message,
        payload_encoding=payload_encoding,
        reading_bytes=reading_bytes,
        alerts_per_apartment_day=alerts / max(apartments * days, 1e-9),
        extra_message_rate=extra_message_rate,
        late_message_rate=late_message_rate,
    )
    predicted = model.counts(
        fleet,
        design,
        seconds=duration_s,
        processor_invocations=measured["processor_invocations"],
        device_invocations=measured["device_invocations"],
    ).as_json()
    rows = {}
    for name in (*BOUNDED, *REPORTED):
        want, got = predicted[name], measured.get(name, 0.0)
        rows[name] = {
            "predicted": want,
            "measured": got,
            "ratio": round(got / want, 3) if want else None,
            "bounded": name in BOUNDED,
        }
    price_list = prices.load()
    return {
        "model": "energy_monitoring.costs.model",
        "environment": LOCAL_ENVIRONMENT,
        "region": REGION,
        "tolerance": TOLERANCE,
        "fleet": asdict(fleet),
        "counts": rows,
        "usd": {
            "predicted": round(_usd(predicted, fleet, price_list), 6),
            "measured": round(_usd(measured, fleet, price_list), 6),
        },
        "within_tolerance": all(
            row["ratio"] is not None and abs(row["ratio"] - 1) <= TOLERANCE
            for row in rows.values()
            if row["bounded"]
        ),
    }


def _usd(counts: dict[str, float], fleet: model.Fleet, price_list: prices.PriceList) -> float:
    """What the run's requests cost at list prices (the billed items the counts cover)."""
    steps = max(1, -(-fleet.message_bytes // model.IOT_METERING_BYTES))

    def price(service: str, item: str) -> float:
        return price_list.usd(service, item, REGION)

    rule_actions = counts.get("rule_actions", 0.0)
    invocations = counts.get("batching_invocations", 0.0) + counts.get("processor_invocations", 0.0)
    return (
        counts.get("messages", 0.0) * steps * price("IoT Core", "messaging") / 1e6
        + rule_actions * price("IoT Core", "rules_triggered") / 1e6
        + rule_actions * price("IoT Core", "rule_actions") / 1e6
        + counts.get("kinesis_payload_units", 0.0) * price("Kinesis", "put_payload_units") / 1e6
        + invocations * price("Lambda", "requests") / 1e6
        + counts.get("dynamodb_write_units", 0.0) * price("DynamoDB", "write_request_units") / 1e6
        + (counts.get("s3_processed_puts", 0.0) + counts.get("s3_raw_puts", 0.0))
        * price("S3", "put_requests")
        / 1000
        + counts.get("sns_publishes", 0.0) * price("SNS", "publishes") / 1e6
    )
