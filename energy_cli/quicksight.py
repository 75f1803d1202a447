"""QuickSight over an environment's Athena workgroup, from its stack outputs, idempotently.

One Athena data source on the workgroup; three data sets in direct query (no SPICE
copies): interval aggregates (each interval's highest revision), daily totals (kWh, and
the intervals above the high-usage threshold: the alerts of the `high_usage` rule) and raw
readings (the topic rule's records), each with its partition columns; and the dashboard of
`dashboards/energy.json`. Each is created when missing, updated when it differs from what
this module would create, left alone otherwise; and shared with one user or group ARN.

What a resource should be is compared with what QuickSight describes: the data source's
type, parameters and name; a data set's SQL and columns; the dashboard's definition, by a
digest kept in its version description (QuickSight's described definition adds defaults).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_runtime import contract, local_time

from energy_cli.aws import error_code

DEFINITION_FILE = Path(__file__).with_name("dashboards") / "energy.json"
DIGEST_PREFIX = "definition sha256:"

DATA_SOURCE_ACTIONS = (
    "quicksight:DescribeDataSource", "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource", "quicksight:UpdateDataSource",
    "quicksight:DeleteDataSource", "quicksight:UpdateDataSourcePermissions",
)  # fmt: skip
DATA_SET_ACTIONS = (
    "quicksight:DescribeDataSet", "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet", "quicksight:DescribeIngestion", "quicksight:ListIngestions",
    "quicksight:UpdateDataSet", "quicksight:DeleteDataSet", "quicksight:CreateIngestion",
    "quicksight:CancelIngestion", "quicksight:UpdateDataSetPermissions",
)  # fmt: skip
DASHBOARD_ACTIONS = (
    "quicksight:DescribeDashboard", "quicksight:ListDashboardVersions",
    "quicksight:UpdateDashboardPermissions", "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard", "quicksight:DeleteDashboard",
    "quicksight:DescribeDashboardPermissions", "quicksight:UpdateDashboardPublishedVersion",
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    kind: str  # "data source", "data set", "dashboard"
    resource_id: str
    action: str  # "created", "updated", "shared", "unchanged"

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.resource_id, "action": self.action}


@dataclass(frozen=True)
class Names:
    """What the environment's outputs name, and the ids derived from its stage."""

    account_id: str
    stage: str
    workgroup: str
    database: str
    interval_table: str
    raw_table: str
    high_usage_threshold_wh: float
    time_zone: str  # the environment's (the processor's TIME_ZONE): the days of `daily`

    def resource_id(self, what: str) -> str:
        return f"{self.stage}-{what}"


def _not_found(error: BaseException) -> bool:
    return error_code(error) == "ResourceNotFoundException"


# --- data sets -------------------------------------------------------------------------


def _existing(describe: Callable[..., dict[str, Any]], **key: str) -> dict[str, Any] | None:
    """What a describe_* call returns, or None where QuickSight has no such resource."""
    try:
        return describe(**key)
    except Exception as error:
        if _not_found(error):
            return None
        raise


def _latest_intervals(names: Names) -> str:
    return (
        "SELECT * FROM (SELECT i.*, row_number() OVER (PARTITION BY device_id, interval_start "
        f'ORDER BY revision DESC) AS rn FROM "{names.database}"."{names.interval_table}" i) '
        "WHERE rn = 1"
    )


def _local(names: Names, column: str) -> str:
    """A UTC timestamp column as the environment's wall-clock time (Athena's engine reads
    a timestamp without zone as UTC and converts it); the zone was checked as an IANA name,
    so quoting it cannot break out of the literal."""
    if not local_time.is_zone(names.time_zone):
        raise ValueError(f"time zone {names.time_zone!r} is not an IANA time zone name")
    return f"({column} AT TIME ZONE '{names.time_zone}')"


def data_sets(names: Names) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Identifier -> (SQL, [(column, QuickSight type)]) of each data set.

    Hours of day and days follow the environment's time zone, as the processor's daily
    items do; the Parquet rows carry no building, so a building with its own `time_zone`
    attribute is still counted by the environment's clock here. A local day straddles two
    UTC `day` partitions, so `daily` carries the local day's year and month as columns
    (filters on them do not prune partitions; `intervals` keeps the partition columns).
    """
    partitions = [(name, "STRING") for name in contract.PARTITION_NAMES]
    latest = _latest_intervals(names)
    local_day = f"CAST({_local(names, 'interval_start')} AS date)"
    return {
        "intervals": (
            f"SELECT device_id, interval_start, hour({_local(names, 'interval_start')}) "
            "AS hour_of_day, energy_wh, reading_count, power_min_w, power_max_w, "
            f"power_mean_w, year, month, day, hour FROM ({latest})",
            [("device_id", "STRING"), ("interval_start", "DATETIME"),
             ("hour_of_day", "INTEGER"), ("energy_wh", "DECIMAL"), ("reading_count", "INTEGER"),
             ("power_min_w", "DECIMAL"), ("power_max_w", "DECIMAL"),
             ("power_mean_w", "DECIMAL"), *partitions],
        ),
        "daily": (
            "SELECT device_id, day, sum(energy_wh) / 1000 AS energy_kwh, "
            f"count_if(energy_wh > {names.high_usage_threshold_wh:g}) AS high_usage_intervals, "
            "CAST(year(day) AS varchar) AS year, "
            "lpad(CAST(month(day) AS varchar), 2, '0') AS month "
            f"FROM (SELECT device_id, energy_wh, {local_day} AS day FROM ({latest})) "
            "GROUP BY device_id, day",
            [("device_id", "STRING"), ("day", "DATETIME"), ("energy_kwh", "DECIMAL"),
             ("high_usage_intervals", "INTEGER"), ("year", "STRING"), ("month", "STRING")],
        ),
        "raw": (
            "SELECT device_id, from_unixtime(received_at / 1000) AS received_at, payload, "
            f'year, month, day, hour FROM "{names.database}"."{names.raw_table}"',
            [("device_id", "STRING"), ("received_at", "DATETIME"), ("payload", "STRING"),
             *partitions],
        ),
    }  # fmt: skip


def _physical_table(
    data_source_arn: str, name: str, sql: str, columns: list[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "sql": {
            "CustomSql": {
                "DataSourceArn": data_source_arn,
                "Name": name,
                "SqlQuery": sql,
                "Columns": [{"Name": column, "Type": kind} for column, kind in columns],
            }
        }
    }


def _permissions(principal: str, actions: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"Principal": principal, "Actions": sorted(actions)}]


# --- ensure each resource --------------------------------------------------------------


def ensure_data_source(qs: Any, names: Names, principal: str) -> tuple[str, Change]:
    source_id = names.resource_id("athena")
    wanted = {"AthenaParameters": {"WorkGroup": names.workgroup}}
    name = f"{names.stage} (Athena)"
    found = _existing(
        qs.describe_data_source, AwsAccountId=names.account_id, DataSourceId=source_id
    )
    if found is None:
        created = qs.create_data_source(
            AwsAccountId=names.account_id, DataSourceId=source_id, Name=name, Type="ATHENA",
            DataSourceParameters=wanted, Permissions=_permissions(principal, DATA_SOURCE_ACTIONS),
        )  # fmt: skip
        return str(created["Arn"]), Change("data source", source_id, "created")
    source = found["DataSource"]
    if (source.get("Type"), source.get("DataSourceParameters"), source.get("Name")) == (
        "ATHENA", wanted, name,
    ):  # fmt: skip
        return str(source["Arn"]), Change("data source", source_id, "unchanged")
    qs.update_data_source(
        AwsAccountId=names.account_id, DataSourceId=source_id, Name=name,
        DataSourceParameters=wanted,
    )  # fmt: skip
    return str(source["Arn"]), Change("data source", source_id, "updated")


def ensure_data_set(
    qs: Any, names: Names, identifier: str, data_source_arn: str, principal: str
) -> tuple[str, Change]:
    sql, columns = data_sets(names)[identifier]
    set_id = names.resource_id(identifier)
    name = f"{names.stage} {identifier}"
    table = _physical_table(data_source_arn, identifier, sql, columns)
    arguments = {
        "AwsAccountId": names.account_id, "DataSetId": set_id, "Name": name,
        "PhysicalTableMap": table, "ImportMode": "DIRECT_QUERY",
    }  # fmt: skip
    found = _existing(qs.describe_data_set, AwsAccountId=names.account_id, DataSetId=set_id)
    if found is None:
        created = qs.create_data_set(
            **arguments, Permissions=_permissions(principal, DATA_SET_ACTIONS)
        )
        return str(created["Arn"]), Change("data set", set_id, "created")
    data_set = found["DataSet"]
    current = data_set.get("PhysicalTableMap", {}).get("sql", {}).get("CustomSql", {})
    same = (
        data_set.get("Name") == name
        and data_set.get("ImportMode") == "DIRECT_QUERY"
        and current.get("SqlQuery") == sql
        and current.get("DataSourceArn") == data_source_arn
        and [(c.get("Name"), c.get("Type")) for c in current.get("Columns", [])] == columns
    )
    if same:
        return str(data_set["Arn"]), Change("data set", set_id, "unchanged")
    qs.update_data_set(**arguments)
    return str(data_set["Arn"]), Change("data set", set_id, "updated")


def dashboard_definition(arns: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(json.loads(DEFINITION_FILE.read_text())["definition"])
    for identifier, arn in arns.items():
        text = text.replace("${" + identifier + "}", arn)
    definition: dict[str, Any] = json.loads(text)
    return definition


def _digest(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()
    return DIGEST_PREFIX + hashlib.sha256(canonical).hexdigest()[:32]


def ensure_dashboard(
    qs: Any, names: Names, arns: dict[str, str], principal: str
) -> tuple[str, Change]:
    dashboard_id = names.resource_id("dashboard")
    definition = dashboard_definition(arns)
    digest = _digest(definition)
    name = f"Energy monitoring ({names.stage})"
    arguments = {
        "AwsAccountId": names.account_id, "DashboardId": dashboard_id, "Name": name,
        "Definition": definition, "VersionDescription": digest,
    }  # fmt: skip
    found = _existing(
        qs.describe_dashboard, AwsAccountId=names.account_id, DashboardId=dashboard_id
    )
    if found is None:
        created = qs.create_dashboard(
            **arguments, Permissions=_permissions(principal, DASHBOARD_ACTIONS)
        )
        return str(created["Arn"]), Change("dashboard", dashboard_id, "created")
    dashboard = found["Dashboard"]
    if dashboard.get("Name") == name and dashboard.get("Version", {}).get("Description") == digest:
        return str(dashboard["Arn"]), Change("dashboard", dashboard_id, "unchanged")
    updated = qs.update_dashboard(**arguments)
    version = int(str(updated["VersionArn"]).rsplit("/", 1)[-1])
    qs.update_dashboard_published_version(
        AwsAccountId=names.account_id, DashboardId=dashboard_id, VersionNumber=version
    )
    return str(dashboard["Arn"]), Change("dashboard", dashboard_id, "updated")


# --- sharing ---------------------------------------------------------------------------

_SHARING: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # kind: (id parameter, describe operation, update operation, owner actions)
    "data source": ("DataSourceId", "describe_data_source_permissions",
                    "update_data_source_permissions", DATA_SOURCE_ACTIONS),
    "data set": ("DataSetId", "describe_data_set_permissions",
                 "update_data_set_permissions", DATA_SET_ACTIONS),
    "dashboard": ("DashboardId", "describe_dashboard_permissions",
                  "update_dashboard_permissions", DASHBOARD_ACTIONS),
}  # fmt: skip


def share(qs: Any, names: Names, change: Change, principal: str) -> Change:
    """Give the principal the owner's actions on an existing resource if it lacks any."""
    if change.action == "created":  # created with the principal's permissions
        return change
    parameter, describe, update, actions = _SHARING[change.kind]
    found = getattr(qs, describe)(AwsAccountId=names.account_id, **{parameter: change.resource_id})
    held = {
        action
        for permission in found.get("Permissions", [])
        if permission.get("Principal") == principal
        for action in permission.get("Actions", [])
    }
    if set(actions) <= held:
        return change
    getattr(qs, update)(
        AwsAccountId=names.account_id, **{parameter: change.resource_id},
        GrantPermissions=_permissions(principal, actions),
    )  # fmt: skip
    return Change(
        change.kind, change.resource_id, "shared" if change.action == "unchanged" else change.action
    )


def setup(qs: Any, names: Names, principal: str, report: Callable[[Change], None]) -> list[Change]:
    """Every resource, in dependency order; the changes made."""
    changes = []
    source_arn, change = ensure_data_source(qs, names, principal)
    changes.append(share(qs, names, change, principal))
    report(changes[-1])
    arns = {}
    for identifier in data_sets(names):
        arns[identifier], change = ensure_data_set(qs, names, identifier, source_arn, principal)
        changes.append(share(qs, names, change, principal))
        report(changes[-1])
    _, change = ensure_dashboard(qs, names, arns, principal)
    changes.append(share(qs, names, change, principal))
    report(changes[-1])
    return changes
