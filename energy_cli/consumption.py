"""Consumption over a time range: from DynamoDB while the table still holds the intervals
(`data.interval_ttl_days`), from the processed archive before that, split at the boundary.

The archive is read with one SQL text: Athena runs it over the Glue table in AWS; against
the local pipeline (whose moto Athena returns no rows) DuckDB runs the very same text over
the archive's Parquet files, with the Glue table's name bound to a view of them. Of the
rows of one interval (each batch that changed it wrote one, with a higher `revision`),
the highest revision is the interval's value, as docs/data-model.md says.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from energy_runtime import contract

from energy_cli.aws import Clients
from energy_cli.environment import Environment
from energy_cli.errors import CliError
from energy_cli.fleet.roster import check_thing

STEPS = {"15m": 900, "1h": 3600, "1d": 86_400}
# Intervals this close to the table's TTL may already be gone: read them from the archive.
TTL_MARGIN = dt.timedelta(days=1)
ATHENA_POLL_S = 1.0
ATHENA_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Span:
    source: str  # "dynamodb" or "archive"
    start: dt.datetime
    end: dt.datetime

    def as_json(self) -> dict[str, str]:
        return {"source": self.source, "from": _iso(self.start), "to": _iso(self.end)}


@dataclass(frozen=True)
class Row:
    bucket_start: str
    device_id: str
    energy_wh: float
    source: str


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def spans(start: dt.datetime, end: dt.datetime, *, ttl_days: int, now: dt.datetime) -> list[Span]:
    """Which source serves which part of [start, end): the table inside its retention."""
    boundary = now - dt.timedelta(days=ttl_days) + TTL_MARGIN
    found = []
    if start < boundary:
        found.append(Span("archive", start, min(end, boundary)))
    if end > boundary:
        found.append(Span("dynamodb", max(start, boundary), end))
    return found


def archive_sql(
    *, database: str, table: str, devices: list[str], start: dt.datetime, end: dt.datetime
) -> str:
    """The SQL both Athena and DuckDB run: each interval's highest revision in the range."""
    for device in devices:  # only thing names are quoted into the SQL
        if check_thing(device) is not None:
            raise CliError(f"{device!r} is not a thing name")
    listed = ", ".join(f"'{device}'" for device in devices)
    years = sorted({str(y) for y in range(start.year, end.year + 1)})
    return (
        "SELECT device_id, interval_start, energy_wh FROM ("
        " SELECT device_id, interval_start, energy_wh,"
        " row_number() OVER (PARTITION BY device_id, interval_start ORDER BY revision DESC) AS rn"
        f' FROM "{database}"."{table}"'
        f" WHERE device_id IN ({listed})"
        f" AND year IN ({', '.join(repr(y) for y in years)})"
        f" AND interval_start >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'"
        f" AND interval_start < TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'"
        ") WHERE rn = 1 ORDER BY device_id, interval_start"
    )


def from_dynamodb(
    clients: Clients, table_name: str, devices: list[str], span: Span
) -> list[tuple[str, dt.datetime, float]]:
    from energy_runtime.queries import device_intervals_between

    table = clients.resource("dynamodb").Table(table_name)
    found = []
    for device in devices:
        for row in device_intervals_between(table, device, _ms(span.start), _ms(span.end)):
            start = dt.datetime.fromisoformat(row["interval_start"].replace("Z", "+00:00"))
            found.append((device, start, float(row["energy_wh"])))
    return found


def from_athena(
    clients: Clients, environment: Environment, sql: str
) -> list[tuple[str, dt.datetime, float]]:
    """Start the query in the environment's workgroup, wait for it, page its results."""
    athena = clients.client("athena")
    workgroup = environment.output(contract.Output.ATHENA_WORKGROUP_NAME)
    execution = athena.start_query_execution(QueryString=sql, WorkGroup=workgroup)
    query_id = execution["QueryExecutionId"]
    deadline = time.monotonic() + ATHENA_TIMEOUT_S
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            break
        if state in ("FAILED", "CANCELLED"):
            raise CliError(
                f"Athena query {query_id} {state}: {status.get('StateChangeReason', '')}"
            )
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise CliError(f"Athena query {query_id} ran over {ATHENA_TIMEOUT_S:.0f} s: stopped")
        time.sleep(ATHENA_POLL_S)
    found = []
    header = True
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        for row in page["ResultSet"]["Rows"]:
            if header:  # the first row of the first page names the columns
                header = False
                continue
            device, start, energy = (cell.get("VarCharValue", "") for cell in row["Data"])
            moment = dt.datetime.fromisoformat(start.replace(" UTC", "")).replace(tzinfo=dt.UTC)
            found.append((device, moment, float(energy)))
    return found


def from_local_archive(
    clients: Clients, environment: Environment, sql: str, *, database: str, table: str
) -> list[tuple[str, dt.datetime, float]]:
    """The same SQL with DuckDB, over the processed Parquet the local archive holds."""
    import duckdb

    s3 = clients.client("s3")
    bucket = environment.output(contract.Output.ARCHIVE_BUCKET_NAME)
    with tempfile.TemporaryDirectory(prefix="energy-query-") as directory:
        root = Path(directory)
        paginator = s3.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=contract.INTERVALS_PREFIX):
            for item in page.get("Contents", []):
                if item["Key"].endswith(".parquet"):
                    target = root / item["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, item["Key"], str(target))
                    count += 1
        if not count:
            return []
        connection = duckdb.connect()
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(f'CREATE SCHEMA "{database}"')
            files = str(root / contract.INTERVALS_PREFIX / "**" / "*.parquet")
            # Athena's `timestamp` is UTC without a zone: the view gives DuckDB the same.
            connection.execute(
                f'CREATE VIEW "{database}"."{table}" AS SELECT * REPLACE '
                "(CAST(interval_start AS TIMESTAMP) AS interval_start) FROM read_parquet("
                f"'{files}', hive_partitioning = true, hive_types_autocast = false)"
            )
            rows = connection.execute(sql).fetchall()
        finally:
            connection.close()
    return [(str(d), start.replace(tzinfo=dt.UTC), float(e)) for d, start, e in rows]


def bucketed(
    found: Iterable[tuple[str, dt.datetime, float]], step_s: int, source: str
) -> list[Row]:
    sums: dict[tuple[str, int], float] = defaultdict(float)
    for device, start, energy in found:
        epoch = int(start.timestamp())
        sums[(device, epoch - epoch % step_s)] += energy
    return [
        Row(_iso(dt.datetime.fromtimestamp(bucket, dt.UTC)), device, round(energy, 3), source)
        for (device, bucket), energy in sorted(sums.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def building_devices(clients: Clients, environment: Environment, building: str) -> list[str]:
    """The meters whose `building` attribute is this building."""
    iot = clients.client("iot")
    thing_type = environment.output(contract.Output.THING_TYPE_NAME)
    devices = []
    for page in iot.get_paginator("list_things").paginate(
        thingTypeName=thing_type, attributeName="building", attributeValue=building
    ):
        devices += [thing["thingName"] for thing in page["things"]]
    if not devices:
        raise CliError(f"no meter of environment {environment.name!r} is in building {building!r}")
    return sorted(devices)
