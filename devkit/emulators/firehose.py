"""Firehose, locally: the stream's records to Parquet in the raw archive.

A separate consumer of every shard (Firehose reads the stream on its own), buffering as
the delivery stream's BufferingHints say (interval in simulated time, size in MB), then
writing one Parquet file per hour partition with the columns of
`energy_runtime.contract.RAW_COLUMNS`, under `raw/year=/month=/day=/hour=/` by `received_at`
(UTC). Object keys name the first sequence number they hold, so a re-delivery overwrites
instead of duplicating. Records that are not the rule's JSON go to `firehose-errors/`.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from energy_runtime.contract import FIREHOSE_ERRORS_PREFIX, RAW_COLUMNS, RAW_PREFIX, partition_path

from devkit.runner.worker import Worker

_ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
}
RAW_SCHEMA = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in RAW_COLUMNS])


def partition(received_at_ms: int) -> str:
    return RAW_PREFIX + partition_path(received_at_ms)


def to_parquet(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(rows, schema=RAW_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


class RawArchive:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        deployment = worker.deployment
        self.kinesis = deployment.client("kinesis")
        self.s3 = deployment.client("s3")
        self.bucket = deployment.archive_bucket
        self.stream = deployment.stream_name
        self.buffer: list[tuple[str, dict[str, Any]]] = []  # (sequence number, row)
        self.buffer_bytes = 0
        self.rows_written = 0
        self.objects_written = 0
        self.errors = 0

    def flush(self) -> None:
        by_partition: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for sequence, row in self.buffer:
            by_partition.setdefault(partition(row["received_at"]), []).append((sequence, row))
        for prefix, entries in by_partition.items():
            first = min(sequence for sequence, _ in entries)
            key = f"{prefix}{self.stream}-{first}.parquet"
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=to_parquet([row for _, row in entries])
            )
            self.objects_written += 1
            self.rows_written += len(entries)
        self.buffer, self.buffer_bytes = [], 0

    def _error(self, sequence: str, data: bytes, reason: str) -> None:
        self.errors += 1
        body = json.dumps(
            {"sequenceNumber": sequence, "reason": reason, "rawData": data.decode("latin-1")}
        )
        self.s3.put_object(
            Bucket=self.bucket,
            Key=f"{FIREHOSE_ERRORS_PREFIX}{self.stream}-{sequence}.json",
            Body=body,
        )

    def run(self) -> None:
        deployment = self.worker.deployment
        shards = [s["ShardId"] for s in self.kinesis.list_shards(StreamName=self.stream)["Shards"]]
        iterators = {
            s: self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=s, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for s in shards
        }
        interval = self.worker.scaled(deployment.firehose_buffer_s)
        limit_bytes = deployment.firehose_buffer_mb * 1024 * 1024
        last_flush = time.monotonic()
        while True:
            polled_at = time.time()
            stopping = self.worker.stopping.is_set()
            got = 0
            behind = 0
            for shard in shards:
                response = self.kinesis.get_records(ShardIterator=iterators[shard], Limit=10000)
                iterators[shard] = response["NextShardIterator"]
                behind += response.get("MillisBehindLatest", 0) if response["Records"] else 0
                for record in response["Records"]:
                    got += 1
                    self._take(record)
            if self.buffer and (
                stopping
                or self.buffer_bytes >= limit_bytes
                or time.monotonic() - last_flush >= interval
            ):
                self.flush()
                last_flush = time.monotonic()
            self.worker.write_status(
                rows=self.rows_written,
                objects=self.objects_written,
                errors=self.errors,
                buffered=len(self.buffer),
                polled_at=polled_at,
                caught_up=not got and not behind,
            )
            if stopping and not got:
                return
            if not got:
                time.sleep(0.25)

    def _take(self, record: dict[str, Any]) -> None:
        data: bytes = record["Data"]
        sequence = record["SequenceNumber"]
        try:
            parsed = json.loads(data)
            row = {name: parsed[name] for name, _ in RAW_COLUMNS}
            if not isinstance(row["received_at"], int):
                raise TypeError("received_at is not an integer")
        except (ValueError, KeyError, TypeError) as error:
            self._error(sequence, data, str(error))
            return
        self.buffer.append((sequence, row))
        self.buffer_bytes += len(data)


def main(argv: list[str] | None = None) -> None:
    RawArchive(Worker("Firehose raw archive emulation", argv)).run()


if __name__ == "__main__":
    main()
