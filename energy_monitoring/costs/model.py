"""What the pipeline asks of each AWS service in a month, and what that costs.

`counts()` turns a fleet (apartments, readings) and an environment's settings into request
counts; `monthly_lines()` turns a month of them into billed quantities per service
(`Line`s: a quantity and the price item it is billed by); `bill()` prices them. The same
counts, over the demo's scenario instead of a month, are what `make demo` compares with
the requests it measured at its moto server (`devkit/demo/cost.py`).

How each count follows from the design (docs/cost.md has the reasoning and sources):
- IoT Core: every meter connected all month; each message is metered in 5 KB steps, and
  Basic Ingest messages are not metered as messages; the topic rule is triggered once per
  message and applies one action (Kinesis), both in 5 KB steps.
- Kinesis: one record per message, each PUT billed in 25 KB payload units; shard-hours in
  provisioned mode, stream-hours and data in on-demand mode.
- Batching Lambda: one invocation per shard (and parallelization slot) per batching window,
  or per `batch_size` records if that comes first; its CPU time per reading as measured by
  `make bench`. Processor: one invocation per batching invocation (the hand-off window is
  seconds, the batching window minutes).
- DynamoDB: per device and processor invocation one write of its `LATEST` item (one write
  unit: under 1 KB) if the device sent anything in that window (a window shorter than a
  meter's message period sees only some of them), one write per closed interval and per
  day, and two per alert (the marker, then sent); a consistent read of `LATEST` per
  device written, and of the marker before its claim.
- The silence sweep: one processor invocation per schedule period, an eventually
  consistent read of every meter's `LATEST` item (half a read unit: under 4 KB).
- S3: per processor invocation one Parquet object per hour partition it touched; per
  Firehose buffer flush one object per hour partition; lifecycle transitions per object.
- Firehose: every record rounded up to 5 KB, converted to Parquet, dynamically partitioned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from energy_runtime import contract

from energy_monitoring.costs.prices import PriceList

HOURS_PER_MONTH = 730.0  # AWS's pricing month
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
IOT_METERING_BYTES = 5 * 1024
KINESIS_PAYLOAD_UNIT_BYTES = 25 * 1024
FIREHOSE_ROUNDING_BYTES = 5 * 1024
SQS_CHUNK_BYTES = 64 * 1024
GB = 1024**3

# What a reading weighs, measured on the simulator's JSON readings (8 fields, as
# docs/contract.md defines them; 141 B on average): `make demo` reports its run's figure.
READING_JSON_BYTES = 141
# A gzip message (fleet.payload_encoding), measured on a day of the simulator's messages of
# 6 to 190 readings: ~160 B (its header, trailer and the text's keys), then ~18 B a reading
# (30: ~0.7 KB, against ~4.3 KB as text). tests/devkit/test_meters.py holds this within 10%.
GZIP_MESSAGE_BYTES = 160
GZIP_BYTES_PER_READING = 18
# The topic rule's Kinesis record around the payload: base64 of it plus device and time.
RECORD_OVERHEAD_BYTES = 120
# A Parquet row in the raw archive per reading it carries (payload kept as base64, snappy),
# for JSON text: 41 to 45 B from 1 to 90 readings a message. Base64 of gzip, which snappy
# cannot shrink, weighs what it is: 4/3 of the message (Fleet.raw_parquet_bytes_per_reading).
# tests/devkit/test_meters.py holds both within 10% of the simulator's messages.
RAW_PARQUET_JSON_BYTES_PER_READING = 43.0
# An interval row in processed/ (Parquet, snappy).
PROCESSED_PARQUET_BYTES_PER_ROW = 60.0
# DynamoDB items as DynamoDB sizes them, measured on what the processor writes for 10 s
# readings (tests/runtime/test_store.py): an interval keeps its 90 readings (~540 B), a
# local day its zone and bounds; LATEST, the mean over an interval as its open interval
# fills (at most ~700 B: one write unit, like the others).
INTERVAL_ITEM_BYTES = 600
DAILY_ITEM_BYTES = 110
LATEST_ITEM_BYTES = 520
# CPU time per reading of the batching handler (`make bench`: 54,000 to 130,000 readings per
# CPU-second on the machines measured; the slower figure, so the model errs high) and the
# processor's time per device and invocation (its share of a BatchGetItem, a PutItem of
# single-digit milliseconds on DynamoDB, its share of the Parquet object).
BATCHING_S_PER_READING = 1 / 54_000
BATCHING_S_PER_INVOCATION = 0.05
PROCESSOR_S_PER_DEVICE = 0.008
PROCESSOR_S_PER_INVOCATION = 0.15
# The silence sweep: a BatchGetItem of 100 meters' LATEST items in tens of milliseconds.
SWEEP_S_PER_METER = 0.0005
SWEEP_READ_UNITS_PER_METER = 0.5  # eventually consistent, under 4 KB
# The baseload judgement at each night's end reads three nights of 16 intervals, eventually
# consistent, half a unit each (docs/data-quality.md, "Baseload change"); the history it
# reads only after a step, and the reads of unusual usage (an interval with 300 Wh more
# than a kettle in it), are rarer and left out.
BASELOAD_READ_UNITS_PER_NIGHT = 3 * 16 * 0.5
# Lambda's SQS poller: five long polls of 20 s while the queue is empty (AWS's documented
# starting number), each ReceiveMessage a request.
SQS_POLLERS = 5
SQS_LONG_POLL_S = 20
# Logs the functions write per invocation (powertools JSON: start, summary, end lines).
LOG_BYTES_PER_INVOCATION = 2_000
# What the stacks create (tests check these against the synthesized templates).
CUSTOMER_MANAGED_KEYS = 2  # without the audit trail's and the replica's (customer_managed_keys)
ALARMS = 26  # without the replication alarms (alarms)
REPLICATION_ALARMS = 1
DASHBOARDS = 1
# Each (metric, function) the handlers emit, and QuarantinedByReason once per reason seen
# (a reason a month has not seen costs nothing: this is the most it can be).
CUSTOM_METRICS = len(contract.EMITTED_METRICS) + len(contract.QUARANTINE_REASONS)


def customer_managed_keys(design: Design) -> int:
    """The data key and the ops key, the audit trail's own where it is on, and the
    replica's where the archive has a disaster-recovery copy."""
    return CUSTOMER_MANAGED_KEYS + int(design.audit_trail) + int(design.replicated)


def alarms(design: Design) -> int:
    return ALARMS + (REPLICATION_ALARMS if design.replicated else 0)


# KMS requests: each encrypting service fetches a data key about every 5 minutes per
# writer (S3 bucket keys, SQS data key reuse of 300 s, Kinesis, DynamoDB).
KMS_REQUESTS_PER_WRITER_HOUR = 12
KMS_WRITERS = 6


@dataclass(frozen=True)
class Fleet:
    apartments: int
    reading_interval_s: int
    readings_per_message: int
    payload_encoding: contract.PayloadEncoding = "gzip"  # fleet.payload_encoding
    # Bytes a reading adds to a message as sent (a measured run's figure); None: the model's.
    reading_bytes: float | None = None
    alerts_per_apartment_day: float = 0.5
    # Messages beyond the readings' own: retransmissions (QoS 1 duplicates) and malformed
    # ones, as a share of them (the demo injects both).
    extra_message_rate: float = 0.0
    # Messages that arrive late (a meter catching up after an outage), as a share: each
    # takes its processor invocation into one more, older hour partition of processed/.
    late_message_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.payload_encoding not in contract.PAYLOAD_ENCODINGS:
            raise ValueError(
                f"payload_encoding must be one of {contract.PAYLOAD_ENCODINGS}, "
                f"got {self.payload_encoding!r}"
            )

    @property
    def gzip(self) -> bool:
        return self.payload_encoding == "gzip"

    @property
    def message_bytes(self) -> float:
        n = self.readings_per_message
        if self.reading_bytes is not None:
            return n * self.reading_bytes + (0 if self.gzip else 16)
        if self.gzip:
            return GZIP_MESSAGE_BYTES + n * GZIP_BYTES_PER_READING
        return n * READING_JSON_BYTES + 16  # {"readings":[...]}

    @property
    def raw_parquet_bytes_per_reading(self) -> float:
        if self.gzip:  # fewer readings per message: the header weighs on each one more
            return self.message_bytes * 4 / 3 / self.readings_per_message
        return RAW_PARQUET_JSON_BYTES_PER_READING

    @property
    def record_bytes(self) -> float:
        """A message as the topic rule puts it on the stream: base64, device and time."""
        return self.message_bytes * 4 / 3 + RECORD_OVERHEAD_BYTES


@dataclass(frozen=True)
class Design:
    """The settings of an environment that move the bill (`from_config`)."""

    region: str
    basic_ingest: bool
    window_s: int
    batch_size: int
    capacity_mode: str
    shards: int
    parallelization_factor: int
    firehose_buffer_s: int
    firehose_buffer_mb: int
    interval_minutes: int
    interval_ttl_days: int
    ia_after_days: int
    glacier_after_days: int
    expire_after_days: int
    log_retention_days: int
    architecture: str
    batching_memory_mb: int
    processor_memory_mb: int
    handoff_window_s: int
    silence_sweep_s: int = 300
    audit_trail: bool = False
    audit_data_events: bool = False
    replica_region: str | None = None
    replicate_processed: bool = True
    deep_archive_after_days: int | None = None  # raw/ on from Glacier Flexible Retrieval
    table_billing: str = "on_demand"  # or "provisioned", with auto scaling:
    table_target_utilization: float = 0.7
    table_write_capacity: tuple[int, int] = (5, 1000)  # (min, max) capacity units
    table_read_capacity: tuple[int, int] = (5, 1000)

    @property
    def replicated(self) -> bool:
        return self.replica_region is not None

    @classmethod
    def from_config(cls, config: Any, *, region: str) -> Design:
        return cls(
            region=region,
            basic_ingest=config.ingest.basic_ingest,
            window_s=config.batching.window_seconds,
            batch_size=config.batching.batch_size,
            capacity_mode=config.stream.capacity_mode,
            shards=config.stream.shard_count,
            parallelization_factor=config.batching.parallelization_factor,
            firehose_buffer_s=config.ingest.firehose_buffer_seconds,
            firehose_buffer_mb=config.ingest.firehose_buffer_mb,
            interval_minutes=config.data.interval_minutes,
            interval_ttl_days=config.data.interval_ttl_days,
            ia_after_days=config.retention.archive_ia_after_days,
            glacier_after_days=config.retention.archive_glacier_after_days,
            expire_after_days=config.retention.archive_expire_after_days,
            log_retention_days=config.retention.log_retention_days,
            architecture=config.functions.architecture,
            batching_memory_mb=config.functions.batching_memory_mb,
            processor_memory_mb=config.functions.processor_memory_mb,
            handoff_window_s=config.batching.handoff_window_seconds,
            silence_sweep_s=config.schedules.silence_sweep_minutes * 60,
            audit_trail=config.audit.cloudtrail,
            audit_data_events=config.audit.data_events,
            replica_region=config.dr.replica_region,
            replicate_processed=config.dr.replicate_processed,
            deep_archive_after_days=config.retention.archive_deep_archive_after_days,
            table_billing=config.table.billing,
            table_target_utilization=config.table.target_utilization_percent / 100,
            table_write_capacity=(config.table.min_write_capacity,
                                  config.table.max_write_capacity),
            table_read_capacity=(config.table.min_read_capacity, config.table.max_read_capacity),
        )  # fmt: skip

    @property
    def freshness_s(self) -> float:
        """How far the table is behind the stream at most: the batching window, the
        hand-off window and the processing of both functions."""
        return self.window_s + self.handoff_window_s + 10


@dataclass(frozen=True)
class Line:
    service: str
    item: str  # the price list's item
    quantity: float  # in the price's unit
    note: str = ""
    billed_as: str | None = None  # the price list's service, if not `service`


@dataclass(frozen=True)
class Counts:
    """The deterministic request counts of a period, in plain units (not price units)."""

    messages: float
    iot_metered_messages: float  # 5 KB steps, 0 with Basic Ingest
    rule_actions: float
    kinesis_records: float
    kinesis_payload_units: float
    batching_invocations: float
    processor_invocations: float
    dynamodb_write_units: float
    dynamodb_read_units: float
    s3_processed_puts: float
    s3_raw_puts: float
    sns_publishes: float
    sweep_invocations: float  # the silence sweep's schedule
    sweep_read_units: float
    baseload_read_units: float
    processed_rows: float  # a row per device and processor invocation (its open interval)

    @property
    def table_read_units(self) -> float:
        """Every read of the table: the processor's, the silence sweep's, the baseload's."""
        return self.dynamodb_read_units + self.sweep_read_units + self.baseload_read_units

    def as_json(self) -> dict[str, float]:
        return {name: round(value, 1) for name, value in asdict(self).items()}


def _steps(size: float, step: int) -> int:
    return max(1, math.ceil(size / step))


def counts(
    fleet: Fleet,
    design: Design,
    *,
    seconds: float,
    processor_invocations: float | None = None,
    device_invocations: float | None = None,
) -> Counts:
    """Requests over `seconds` of the fleet's life. A measured run passes what its
    compressed clock sets rather than the window: the processor's invocations and the
    devices each one carried; everything else follows as in a month."""
    # A meter reads at both ends of the span and sends its last partial message too
    # (what matters over a short run; nothing over a month).
    per_device_readings = math.floor(seconds / fleet.reading_interval_s) + 1
    readings = fleet.apartments * per_device_readings
    per_device_messages = math.ceil(per_device_readings / fleet.readings_per_message)
    messages = fleet.apartments * per_device_messages * (1 + fleet.extra_message_rate)
    message_steps = _steps(fleet.message_bytes, IOT_METERING_BYTES)
    record_bytes = fleet.record_bytes
    slots = design.shards * design.parallelization_factor if _provisioned(design) else 1
    windows = seconds / max(design.window_s, 1)
    batching = max(windows * slots, messages / design.batch_size)
    processor = batching if processor_invocations is None else processor_invocations
    # A shard's devices, those that sent a message in the span one invocation covers: with
    # a message every 5 minutes, a 60 s window sees a fifth of them.
    covered_s = seconds * slots / max(processor, 1e-9)  # each slot's invocations, in turn
    message_period_s = fleet.readings_per_message * fleet.reading_interval_s
    devices_per_invocation = fleet.apartments / slots * min(1.0, covered_s / message_period_s)
    # A meter's newest interval stays open (in its LATEST item) until later data closes it.
    closed_per_device = max(0, math.ceil(seconds / (design.interval_minutes * 60)) - 1)
    intervals = fleet.apartments * closed_per_device
    days = fleet.apartments * seconds / 86_400
    alerts = fleet.apartments * fleet.alerts_per_apartment_day * seconds / 86_400
    device_writes = (
        processor * devices_per_invocation if device_invocations is None else device_invocations
    )
    latest_writes = device_writes * _steps(LATEST_ITEM_BYTES, 1024)
    dynamodb_writes = (
        latest_writes
        + intervals * _steps(INTERVAL_ITEM_BYTES, 1024)
        + days * _steps(DAILY_ITEM_BYTES, 1024)
        + 2 * alerts
    )
    # Strongly consistent reads of up to 4 KB: one unit per LATEST item; a day's total
    # is read back once per day; an alert's marker is read before it is claimed.
    dynamodb_reads = device_writes + days * 2 + alerts
    # Late messages spread over the invocations: the share of invocations that got one
    # writes one more object (Poisson: 1 - e^-late/invocations of them).
    late = messages * fleet.late_message_rate
    with_late = processor * (1 - math.exp(-late / processor)) if processor else 0.0
    processed_puts = processor * _hour_partitions(covered_s) + with_late
    flushes = seconds / design.firehose_buffer_s
    by_size = readings * fleet.raw_parquet_bytes_per_reading / (design.firehose_buffer_mb * 2**20)
    raw_puts = max(flushes, by_size)
    return Counts(
        messages=messages,
        iot_metered_messages=0.0 if design.basic_ingest else messages * message_steps,
        rule_actions=messages * message_steps,
        kinesis_records=messages,
        kinesis_payload_units=messages * _steps(record_bytes, KINESIS_PAYLOAD_UNIT_BYTES),
        batching_invocations=batching,
        processor_invocations=processor,
        dynamodb_write_units=dynamodb_writes,
        dynamodb_read_units=dynamodb_reads,
        s3_processed_puts=processed_puts,
        s3_raw_puts=raw_puts * _hour_partitions(design.firehose_buffer_s),
        sns_publishes=alerts,
        sweep_invocations=seconds / design.silence_sweep_s,
        sweep_read_units=seconds
        / design.silence_sweep_s
        * fleet.apartments
        * SWEEP_READ_UNITS_PER_METER,
        baseload_read_units=days * BASELOAD_READ_UNITS_PER_NIGHT,
        processed_rows=device_writes,
    )


def _provisioned(design: Design) -> bool:
    return design.capacity_mode == "provisioned"


def _hour_partitions(span_s: float) -> float:
    """Hour partitions a span of time touches on average: 1 + span/hour."""
    return 1 + span_s / 3600


def monthly_lines(fleet: Fleet, design: Design) -> list[Line]:
    """Every billed quantity of a month, in the price list's units."""
    c = counts(fleet, design, seconds=SECONDS_PER_MONTH)
    readings = fleet.apartments * SECONDS_PER_MONTH / fleet.reading_interval_s
    record_bytes = fleet.record_bytes
    lines = [
        Line("IoT Core", "connectivity", fleet.apartments * HOURS_PER_MONTH * 60 / 1e6,
             "every meter connected all month"),
        Line("IoT Core", "messaging", c.iot_metered_messages / 1e6,
             "Basic Ingest: not metered" if design.basic_ingest else "5 KB steps"),
        Line("IoT Core", "rules_triggered", c.rule_actions / 1e6, "one rule per message"),
        Line("IoT Core", "rule_actions", c.rule_actions / 1e6, "one Kinesis action"),
    ]  # fmt: skip
    if _provisioned(design):
        lines.append(Line("Kinesis", "shard_hours", design.shards * HOURS_PER_MONTH))
        lines.append(Line("Kinesis", "put_payload_units", c.kinesis_payload_units / 1e6))
    else:
        stream_bytes = c.kinesis_records * record_bytes
        lines.append(Line("Kinesis", "on_demand_stream_hours", HOURS_PER_MONTH))
        lines.append(Line("Kinesis", "on_demand_data_in_gb", stream_bytes / GB))
        # Two consumers read it: the batching function and Firehose.
        lines.append(Line("Kinesis", "on_demand_data_out_gb", 2 * stream_bytes / GB))
    batching_s = (
        c.batching_invocations * BATCHING_S_PER_INVOCATION + readings * BATCHING_S_PER_READING
    )
    processor_s = (
        (c.processor_invocations + c.sweep_invocations) * PROCESSOR_S_PER_INVOCATION
        + c.dynamodb_read_units * PROCESSOR_S_PER_DEVICE
        + c.sweep_invocations * fleet.apartments * SWEEP_S_PER_METER
    )
    gb_seconds = (
        batching_s * design.batching_memory_mb + processor_s * design.processor_memory_mb
    ) / 1024
    invocations = c.batching_invocations + c.processor_invocations + c.sweep_invocations
    lines += [
        Line("Lambda", "requests", invocations / 1e6, "batching, processor, silence sweep"),
        Line("Lambda", f"gb_seconds_{design.architecture}", gb_seconds),
    ]
    handoff_bytes = readings * 40 / max(c.batching_invocations, 1)  # aggregates, not readings
    sends = c.batching_invocations * _steps(handoff_bytes, SQS_CHUNK_BYTES)
    polls = SQS_POLLERS * SECONDS_PER_MONTH / SQS_LONG_POLL_S
    lines.append(Line("SQS", "requests", (sends * 2 + polls) / 1e6, "send, delete, long polls"))
    interval_items = (
        fleet.apartments * design.interval_ttl_days * 86_400 / (design.interval_minutes * 60)
    )
    daily_items = fleet.apartments * 365  # a year of days kept
    table_gb = (
        interval_items * (INTERVAL_ITEM_BYTES + 100)
        + daily_items * (DAILY_ITEM_BYTES + 100)
        + fleet.apartments * (LATEST_ITEM_BYTES + 100)
    ) / GB
    lines += [
        *_table_capacity_lines(c, design),
        Line("DynamoDB", "storage_gb_month", table_gb, "100 B index overhead per item"),
    ]
    raw_gb_month = readings * fleet.raw_parquet_bytes_per_reading / GB
    processed_gb_month = c.processed_rows * PROCESSED_PARQUET_BYTES_PER_ROW / GB
    objects_month = c.s3_processed_puts + c.s3_raw_puts
    lines += [
        Line("S3", "put_requests", objects_month / 1000, "processed/ and raw/ objects"),
        Line("S3", "get_requests", c.processor_invocations / 1000, "the processor's reads"),
        *_storage_lines(
            c,
            raw_gb_month,
            processed_gb_month,
            objects_month,
            design,
            lambda item, quantity: Line(
                "S3", item, quantity, "steady state, with lifecycle" if "standard" in item else ""
            ),
        ),
    ]
    firehose_gb = (
        c.kinesis_records
        * _steps(record_bytes, FIREHOSE_ROUNDING_BYTES)
        * (FIREHOSE_ROUNDING_BYTES)
        / GB
    )
    lines += [
        Line("Firehose", "ingestion_gb", firehose_gb, "each record rounded up to 5 KB"),
        Line("Firehose", "format_conversion_gb", firehose_gb, "JSON to Parquet"),
        Line("Firehose", "dynamic_partitioning_gb", c.kinesis_records * record_bytes / GB),
        Line("Firehose", "dynamic_partitioning_objects", c.s3_raw_puts / 1000),
    ]
    if design.replica_region is not None:
        lines += _replica_lines(c, raw_gb_month, processed_gb_month, design)
    if design.audit_data_events:
        # Every object write and read of raw/ and processed/: the writers' PUTs, the
        # processor's GETs and the lifecycle transitions (analysts' Athena reads add more).
        events = objects_month * 2 + c.processor_invocations
        lines.append(Line("CloudTrail", "data_events", events / 100_000, "raw/, processed/"))
    lines += [
        Line("KMS", "keys", customer_managed_keys(design)),
        Line("KMS", "requests",
             KMS_WRITERS * KMS_REQUESTS_PER_WRITER_HOUR * HOURS_PER_MONTH / 10_000),
    ]  # fmt: skip
    log_gb = invocations * LOG_BYTES_PER_INVOCATION / GB
    retained_months = min(design.log_retention_days / 30.4, 12.0)
    lines += [
        Line("CloudWatch", "metrics", CUSTOM_METRICS),
        Line("CloudWatch", "alarms", alarms(design)),
        Line("CloudWatch", "dashboards", DASHBOARDS),
        Line("CloudWatch", "logs_ingested_gb", log_gb),
        Line("CloudWatch", "logs_stored_gb_month", log_gb * retained_months),
        Line("SNS", "publishes", c.sns_publishes / 1e6, "alerts"),
    ]
    return lines


def provisioned_capacity(units_per_month: float, design: Design, kind: str) -> float:
    """Capacity units auto scaling holds for a steady load: the mean rate over the target
    utilization, within the table's limits (`kind` "write" or "read")."""
    low, high = design.table_write_capacity if kind == "write" else design.table_read_capacity
    needed = units_per_month / SECONDS_PER_MONTH / design.table_target_utilization
    return float(min(max(needed, low), high))


def _table_capacity_lines(c: Counts, design: Design) -> list[Line]:
    """DynamoDB's request units: billed per request on demand, or as the capacity units
    auto scaling holds for the month's mean rate when provisioned."""
    reads = {
        "the processor's consistent reads": c.dynamodb_read_units,
        "the silence sweep: every meter's LATEST item each period": c.sweep_read_units,
        "the baseload judgement: three nights' intervals at each night's end": (
            c.baseload_read_units
        ),
    }
    if design.table_billing == "provisioned":
        percent = f"{design.table_target_utilization:.0%} utilization"
        writes = provisioned_capacity(c.dynamodb_write_units, design, "write")
        read_capacity = provisioned_capacity(c.table_read_units, design, "read")
        return [
            Line("DynamoDB", "write_capacity_unit_hours", writes * HOURS_PER_MONTH / 1e3,
                 f"{writes:,.0f} units at {percent}"),
            Line("DynamoDB", "read_capacity_unit_hours", read_capacity * HOURS_PER_MONTH / 1e3,
                 f"{read_capacity:,.0f} units at {percent}"),
        ]  # fmt: skip
    return [
        Line("DynamoDB", "write_request_units", c.dynamodb_write_units / 1e6),
        *(Line("DynamoDB", "read_request_units", units / 1e6, why) for why, units in reads.items()),
    ]


def _replica_lines(
    c: Counts, raw_gb_month: float, processed_gb_month: float, design: Design
) -> list[Line]:
    """The archive's disaster-recovery copy: every replicated object crosses regions once,
    is written there (a PUT) and tiers and expires as the archive does. Priced at the
    environment's own region's S3 prices (the price list need not hold the replica's)."""
    processed_gb = processed_gb_month if design.replicate_processed else 0.0
    objects = c.s3_raw_puts + (c.s3_processed_puts if design.replicate_processed else 0)
    note = f"in {design.replica_region}, at {design.region} prices"

    def line(item: str, quantity: float, why: str = note) -> Line:
        return Line("S3 replica", item, quantity, why, billed_as="S3")

    return [
        line(
            "inter_region_transfer_gb", raw_gb_month + processed_gb, f"to {design.replica_region}"
        ),
        line("put_requests", objects / 1000),
        *_storage_lines(c, raw_gb_month, processed_gb, objects, design, line),
    ]


def _storage_lines(
    c: Counts,
    raw_gb_month: float,
    processed_gb_month: float,
    objects_month: float,
    design: Design,
    line: Callable[[str, float], Line],  # (item, quantity) -> the service's Line
) -> list[Line]:
    """Steady-state GB per storage class and the lifecycle's transitions: each month's
    data spends its first days in Standard, then Standard-IA, raw/ then Glacier (and Deep
    Archive where set), until it expires."""
    months = lambda days: days / 30.4  # noqa: E731
    ia, glacier, expire = design.ia_after_days, design.glacier_after_days, design.expire_after_days
    deep = min(design.deep_archive_after_days or expire, expire)
    standard = (raw_gb_month + processed_gb_month) * months(min(ia, expire))
    infrequent = raw_gb_month * months(max(0, min(glacier, expire) - ia)) + (
        processed_gb_month * months(max(0, expire - ia))
    )
    lines = [
        line("standard_gb_month", standard),
        line("standard_ia_gb_month", infrequent),
        line("glacier_gb_month", raw_gb_month * months(max(0, deep - glacier))),
        line("transition_ia_requests", objects_month / 1000),
        line("transition_glacier_requests", c.s3_raw_puts / 1000),
    ]
    if deep < expire:
        lines += [
            line("deep_archive_gb_month", raw_gb_month * months(expire - deep)),
            line("transition_deep_archive_requests", c.s3_raw_puts / 1000),
        ]
    return lines


# The services a message passes through from the meter to the table and the alerts.
MESSAGE_PATH_SERVICES = (
    "IoT Core", "Kinesis", "Lambda", "SQS", "DynamoDB", "KMS", "CloudWatch", "SNS",
)  # fmt: skip


@dataclass(frozen=True)
class Bill:
    lines: list[tuple[Line, float, float]]  # (line, unit price, usd)
    apartments: int

    @property
    def total(self) -> float:
        return sum(usd for _, _, usd in self.lines)

    @property
    def per_apartment(self) -> float:
        return self.total / self.apartments

    def by_service(self) -> dict[str, float]:
        services: dict[str, float] = {}
        for line, _, usd in self.lines:
            services[line.service] = services.get(line.service, 0.0) + usd
        return services


def bill(lines: Iterable[Line], prices: PriceList, *, region: str, apartments: int) -> Bill:
    priced = []
    for line in lines:
        unit = prices.usd(line.billed_as or line.service, line.item, region)
        priced.append((line, unit, line.quantity * unit))
    return Bill(priced, apartments)


def naive_lines(fleet: Fleet, design: Design) -> list[Line]:
    """The design without batching, as the README defines it: one message per reading, a
    rule action and a Lambda invocation per message, three DynamoDB items and an S3
    object per reading."""
    readings = fleet.apartments * SECONDS_PER_MONTH / fleet.reading_interval_s
    # A reading as plain JSON text (a meter sending each reading alone gains nothing by
    # compressing it).
    single = replace(fleet, readings_per_message=1, payload_encoding="json", reading_bytes=None)
    return [
        Line("IoT Core", "connectivity", fleet.apartments * HOURS_PER_MONTH * 60 / 1e6),
        Line("IoT Core", "messaging",
             readings * _steps(single.message_bytes, IOT_METERING_BYTES) / 1e6),
        Line("IoT Core", "rules_triggered", readings / 1e6),
        Line("IoT Core", "rule_actions", readings / 1e6, "a Lambda action"),
        Line("Lambda", "requests", readings / 1e6),
        Line("Lambda", f"gb_seconds_{design.architecture}", readings * 0.02 * 128 / 1024,
             "20 ms at 128 MB"),
        Line("DynamoDB", "write_request_units", 3 * readings / 1e6, "three items per reading"),
        Line("S3", "put_requests", readings / 1000, "an object per reading"),
    ]  # fmt: skip


def floor_lines(fleet: Fleet) -> list[Line]:
    """What no design can go below: every meter connected to IoT Core."""
    return [Line("IoT Core", "connectivity", fleet.apartments * HOURS_PER_MONTH * 60 / 1e6)]


def sitewise_lines(fleet: Fleet) -> list[Line]:
    """AWS IoT SiteWise instead: each reading's measurements ingested (near real time, 10
    data points of one property per message) and kept a year in the hot tier."""
    readings = fleet.apartments * SECONDS_PER_MONTH / fleet.reading_interval_s
    points = readings * SITEWISE_POINTS_PER_READING
    return [
        Line("IoT Core", "connectivity", fleet.apartments * HOURS_PER_MONTH * 60 / 1e6),
        Line("IoT Core", "messaging", readings / fleet.readings_per_message / 1e6),
        Line("IoT Core", "rules_triggered", readings / fleet.readings_per_message / 1e6),
        Line("IoT Core", "rule_actions", readings / fleet.readings_per_message / 1e6),
        Line(
            "IoT SiteWise",
            "messages_ingested",
            points / SITEWISE_POINTS_PER_MESSAGE / 1e6,
            "10 data points per message and property",
        ),
        Line("IoT SiteWise", "hot_storage_gb_month", 12 * points * SITEWISE_BYTES_PER_POINT / GB),
    ]


# A reading carries energy, power, voltage, current, power factor and frequency.
SITEWISE_POINTS_PER_READING = 6
SITEWISE_BYTES_PER_POINT = 40
SITEWISE_POINTS_PER_MESSAGE = 10


@dataclass
class Report:
    """A month of the pipeline beside the naive design, SiteWise and the floor."""

    fleet: Fleet
    design: Design
    current: Bill
    naive: Bill
    floor: Bill
    sitewise: Bill
    warnings: list[str] = field(default_factory=list)

    @property
    def message_path_per_apartment(self) -> float:
        """What the services every message passes through cost, the archive (S3, its copy,
        Firehose) and the audit trail aside: the least this design costs at this many
        messages."""
        services = self.current.by_service()
        return sum(services.get(s, 0.0) for s in MESSAGE_PATH_SERVICES) / self.fleet.apartments

    def as_json(self) -> dict[str, Any]:
        return {
            "apartments": self.fleet.apartments,
            "region": self.design.region,
            "total_usd_per_month": round(self.current.total, 2),
            "per_apartment_usd_per_month": round(self.current.per_apartment, 6),
            "naive_per_apartment_usd_per_month": round(self.naive.per_apartment, 6),
            "floor_per_apartment_usd_per_month": round(self.floor.per_apartment, 6),
            "sitewise_per_apartment_usd_per_month": round(self.sitewise.per_apartment, 6),
            "message_path_per_apartment_usd_per_month": round(self.message_path_per_apartment, 6),
            "naive_ratio": round(self.naive.total / self.current.total, 1),
            "above_floor_ratio": round(self.current.total / self.floor.total, 2),
            "freshness_s": self.design.freshness_s,
            "reading_age_s": self.design.freshness_s
            + self.fleet.readings_per_message * self.fleet.reading_interval_s,
            "by_service": {k: round(v, 4) for k, v in self.current.by_service().items()},
            "lines": [
                {
                    "service": line.service,
                    "item": line.item,
                    "quantity": round(line.quantity, 6),
                    "unit_usd": unit,
                    "usd_per_month": round(usd, 4),
                    "note": line.note,
                }
                for line, unit, usd in self.current.lines
            ],
            "fleet": asdict(self.fleet),
            "settings": asdict(self.design),
            "warnings": self.warnings,
        }


def report(fleet: Fleet, design: Design, prices: PriceList) -> Report:
    from energy_monitoring.costs.capacity import warnings

    region, apartments = design.region, fleet.apartments
    return Report(
        fleet,
        design,
        current=bill(monthly_lines(fleet, design), prices, region=region, apartments=apartments),
        naive=bill(naive_lines(fleet, design), prices, region=region, apartments=apartments),
        floor=bill(floor_lines(fleet), prices, region=region, apartments=apartments),
        sitewise=bill(sitewise_lines(fleet), prices, region=region, apartments=apartments),
        warnings=warnings(fleet, design),
    )
