"""Columns of the archive's Parquet files and of the Glue tables over them.

One definition for both sides: the storage stack builds the Glue tables from these
tuples and the Parquet writers (processor Lambda, local raw archive) build their Arrow
schemas from them. Plain Python only: the CDK app imports this module too.
"""

from __future__ import annotations

from typing import Final

# (column name, Glue/Hive type)
Column = tuple[str, str]

PARTITION_KEYS: Final[tuple[Column, ...]] = (
    ("year", "string"),
    ("month", "string"),
    ("day", "string"),
    ("hour", "string"),
)

# The Kinesis records exactly as the topic rule wrote them (lossless landing zone).
RAW_COLUMNS: Final[tuple[Column, ...]] = (
    ("device_id", "string"),
    ("received_at", "bigint"),  # epoch milliseconds, set by the topic rule
    ("payload", "string"),  # base64 of the MQTT payload as the device sent it
)

# One row per device and interval, as the processor wrote it (the runtime owns these).
INTERVAL_COLUMNS: Final[tuple[Column, ...]] = (
    ("device_id", "string"),
    ("interval_start", "timestamp"),
    ("interval_minutes", "int"),
    ("energy_wh", "double"),
    ("reading_count", "int"),
    ("power_min_w", "double"),
    ("power_max_w", "double"),
    ("power_mean_w", "double"),
    ("first_ts", "timestamp"),
    ("last_ts", "timestamp"),
    # Rises each time the interval's aggregate changes; keep the highest per
    # (device_id, interval_start): see docs/data-model.md.
    ("revision", "bigint"),
)

RAW_PREFIX: Final = "raw/"
INTERVALS_PREFIX: Final = "processed/intervals/"
QUARANTINE_PREFIX: Final = "quarantine/"
