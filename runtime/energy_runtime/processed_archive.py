"""Processed interval aggregates to S3 as Parquet, Hive-partitioned by interval start.

One object per hour partition per invocation, named by a hash of its rows, so a replay
that recomputes the same rows rewrites the same object. An interval can appear in several
objects (each batch that changes it emits a row with a higher `revision`); readers keep
the row with the highest revision (see docs/data-model.md). pyarrow is imported lazily:
it is large and only needed when there is something to write.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from energy_runtime.aggregate import IntervalSummary
from energy_runtime.contract import INTERVAL_COLUMNS, INTERVALS_SUBPREFIX, partition_strftime


class Row(dict[str, Any]):
    """One output row, keyed by INTERVAL_COLUMNS names."""


def make_row(device_id: str, summary: IntervalSummary, rev: int, interval_minutes: int) -> Row:
    return Row(
        device_id=device_id,
        interval_start=summary.start_ms,
        interval_minutes=interval_minutes,
        energy_wh=summary.energy_wh,
        reading_count=summary.reading_count,
        power_min_w=summary.power_min_dw / 10,
        power_max_w=summary.power_max_dw / 10,
        power_mean_w=summary.power_mean_w,
        first_ts=summary.first_ts_ms,
        last_ts=summary.last_ts_ms,
        revision=rev,
    )


def _arrow_schema() -> Any:
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
    }
    return pa.schema([pa.field(name, types[kind]) for name, kind in INTERVAL_COLUMNS])


# The AWS SDK for pandas layer's pyarrow is built with Snappy and zlib only (its build sets
# ARROW_WITH_ZSTD=OFF): zstd would fail on Lambda while passing every local test.
PARQUET_COMPRESSION = "snappy"


def parquet_objects(rows: list[Row], prefix: str) -> dict[str, bytes]:
    """Object key -> Parquet bytes, one object per hour partition of interval start."""
    if not rows:
        return {}
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    by_hour: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        start = datetime.fromtimestamp(row["interval_start"] / 1000, tz=UTC)
        by_hour[start.strftime(partition_strftime())].append(row)
    objects: dict[str, bytes] = {}
    for partition, group in sorted(by_hour.items()):
        group.sort(key=lambda r: (r["device_id"], r["interval_start"], r["revision"]))
        table = pa.Table.from_pylist(group, schema=schema)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression=PARQUET_COMPRESSION)
        identity = repr([sorted(r.items()) for r in group]).encode()
        digest = hashlib.sha256(identity).hexdigest()[:32]
        objects[f"{prefix}{INTERVALS_SUBPREFIX}{partition}{digest}.parquet"] = buffer.getvalue()
    return objects


def put_objects(s3: Any, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
