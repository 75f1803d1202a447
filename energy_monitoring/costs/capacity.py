"""Will it keep up? Each check names the number that trips it and the limit it meets."""

from __future__ import annotations

import math

from energy_monitoring.costs.model import (
    BATCHING_S_PER_INVOCATION,
    BATCHING_S_PER_READING,
    PROCESSOR_S_PER_DEVICE,
    PROCESSOR_S_PER_INVOCATION,
    SECONDS_PER_MONTH,
    Design,
    Fleet,
    counts,
    provisioned_capacity,
)

# Service limits (AWS documentation: Kinesis Data Streams quotas, DynamoDB service quotas,
# Firehose quotas).
SHARD_WRITE_BYTES_PER_S = 1024 * 1024
SHARD_WRITE_RECORDS_PER_S = 1000
ON_DEMAND_INITIAL_WRITE_BYTES_PER_S = 4 * 1024 * 1024
PARTITION_WRITE_UNITS_PER_S = 1000
TABLE_ON_DEMAND_INITIAL_WRITES_PER_S = 4000
FIREHOSE_ACTIVE_PARTITIONS = 500
# A provisioned table banks up to 300 s of unused capacity for bursts (best effort).
BURST_BANK_S = 300
FRESHNESS_TARGET_S = 300
HANDOFF_BATCH_SIZE = 100


def shards_needed(fleet: Fleet, design: Design) -> tuple[int, float, float]:
    """(shards, write bytes/s, records/s) of the fleet's steady load."""
    messages_per_s = fleet.apartments / fleet.reading_interval_s / fleet.readings_per_message
    bytes_per_s = messages_per_s * fleet.record_bytes
    # Beyond the shard limits: a window's records per shard must fit one batch, or the
    # batching function runs several times per window, and the processor writes each
    # device's LATEST item as many times.
    per_window = messages_per_s * design.window_s / design.parallelization_factor
    shards = max(
        math.ceil(bytes_per_s / SHARD_WRITE_BYTES_PER_S),
        math.ceil(messages_per_s / SHARD_WRITE_RECORDS_PER_S),
        math.ceil(per_window / design.batch_size),
        1,
    )
    return shards, bytes_per_s, messages_per_s


def warnings(fleet: Fleet, design: Design) -> list[str]:
    found: list[str] = []
    shards, bytes_per_s, records_per_s = shards_needed(fleet, design)
    if design.capacity_mode == "provisioned" and shards > design.shards:
        found.append(
            f"Kinesis: {bytes_per_s / 1e6:.2f} MB/s and {records_per_s:,.0f} records/s need "
            f"{shards} shards (1 MB/s and 1,000 records/s each, and a window's records in "
            f"one batch of {design.batch_size:,}); stream.shard_count is {design.shards}"
        )
    if design.capacity_mode == "on_demand" and bytes_per_s > ON_DEMAND_INITIAL_WRITE_BYTES_PER_S:
        found.append(
            f"Kinesis: {bytes_per_s / 1e6:.2f} MB/s is above an on-demand stream's initial "
            "4 MB/s write capacity: it scales up over minutes (throttling meanwhile)"
        )
    slots = (
        design.shards * design.parallelization_factor
        if design.capacity_mode == "provisioned"
        else max(shards, 1)
    )
    readings_per_window = fleet.apartments / fleet.reading_interval_s * design.window_s / slots
    batching_s = BATCHING_S_PER_INVOCATION + readings_per_window * BATCHING_S_PER_READING
    if batching_s > design.window_s:
        found.append(
            f"batching Lambda: {batching_s:.0f} s of work per {design.window_s} s window per "
            "shard: it falls behind; add shards or stream.parallelization_factor"
        )
    records_per_window = records_per_s * design.window_s / slots
    if records_per_window > design.batch_size:
        found.append(
            f"batching Lambda: {records_per_window:,.0f} records per window and shard exceed "
            f"batching.batch_size {design.batch_size}: it is invoked "
            f"{math.ceil(records_per_window / design.batch_size)} times per window, and the "
            "processor with it (more DynamoDB writes)"
        )
    devices_per_invocation = fleet.apartments / slots
    processor_s = PROCESSOR_S_PER_INVOCATION + devices_per_invocation * PROCESSOR_S_PER_DEVICE
    if processor_s > design.window_s:
        found.append(
            f"processor Lambda: {processor_s:.0f} s per window for {devices_per_invocation:,.0f} "
            "devices: it cannot keep up; add shards (each processes its own devices)"
        )
    burst = devices_per_invocation / max(processor_s, 1) * slots
    if design.table_billing == "on_demand" and burst > TABLE_ON_DEMAND_INITIAL_WRITES_PER_S:
        found.append(
            f"DynamoDB: about {burst:,.0f} writes/s at each window's end, above the "
            f"{TABLE_ON_DEMAND_INITIAL_WRITES_PER_S:,} a new on-demand table takes at once; "
            "pre-warm the table (warm throughput) before the fleet arrives"
        )
    if design.table_billing == "provisioned":
        found += _provisioned_table(fleet, design, burst)
    per_device = 1 / max(design.window_s, 1)
    if per_device > PARTITION_WRITE_UNITS_PER_S:  # one device is one partition key
        found.append(f"DynamoDB: {per_device:.0f} writes/s per device's partition")
    partitions = 1 + math.ceil(design.firehose_buffer_s / 3600)
    if partitions > FIREHOSE_ACTIVE_PARTITIONS:
        found.append(f"Firehose: {partitions} active partitions (limit 500)")
    if design.freshness_s > FRESHNESS_TARGET_S:
        found.append(
            f"freshness: the table is up to {design.freshness_s:.0f} s behind the stream "
            f"(batching.window_seconds {design.window_s} + hand-off and processing), more "
            f"than {FRESHNESS_TARGET_S} s"
        )
    return found


def _provisioned_table(fleet: Fleet, design: Design, burst_per_s: float) -> list[str]:
    """Provisioned capacity holds the mean rate; each window's writes arrive at once and
    are carried by the capacity DynamoDB banks while the table is below it."""
    found = []
    month = counts(fleet, design, seconds=SECONDS_PER_MONTH)
    for kind, units, limit in (
        ("write", month.dynamodb_write_units, design.table_write_capacity[1]),
        ("read", month.table_read_units, design.table_read_capacity[1]),
    ):  # fmt: skip
        mean = units / SECONDS_PER_MONTH
        needed = mean / design.table_target_utilization
        if needed > limit:
            found.append(
                f"DynamoDB: {mean:,.0f} {kind} units/s on average need {needed:,.0f} capacity "
                f"units at {design.table_target_utilization:.0%} utilization; "
                f"table.max_{kind}_capacity is {limit:,}: {kind}s are throttled"
            )
    capacity = provisioned_capacity(month.dynamodb_write_units, design, "write")
    per_window = month.dynamodb_write_units * design.window_s / SECONDS_PER_MONTH
    if per_window > capacity * BURST_BANK_S:
        found.append(
            f"DynamoDB: a window's {per_window:,.0f} writes arrive at once, more than the "
            f"{BURST_BANK_S} s of unused capacity a table of {capacity:,.0f} write units banks "
            f"({capacity * BURST_BANK_S:,.0f}): shorten batching.window_seconds or lower "
            "table.target_utilization_percent"
        )
    # At least one partition per 1,000 write units, each taking 1,000 writes/s at most.
    partitions = max(1, math.ceil(capacity / PARTITION_WRITE_UNITS_PER_S))
    if burst_per_s > partitions * PARTITION_WRITE_UNITS_PER_S:
        found.append(
            f"DynamoDB: about {burst_per_s:,.0f} writes/s at each window's end; a table of "
            f"{capacity:,.0f} write units may hold {partitions} partition(s) of "
            f"{PARTITION_WRITE_UNITS_PER_S:,} writes/s: the processor retries throttled "
            "writes (later data in the table); raise table.min_write_capacity"
        )
    return found
