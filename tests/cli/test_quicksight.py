"""`energy-monitoring quicksight setup`: created once, unchanged the second time.

moto serves QuickSight's data sources and dashboards (create, describe): those run against
the moto server. It lacks describing and updating data sets, permissions and updating a
dashboard: those requests are checked with botocore's Stubber against the service model.
"""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from conftest import Server

from energy_cli import quicksight

ACCOUNT = "123456789012"
PRINCIPAL = f"arn:aws:quicksight:us-east-1:{ACCOUNT}:group/default/analysts"
NAMES = quicksight.Names(
    account_id=ACCOUNT,
    stage="energy-prod",
    workgroup="energy-prod",
    database="energy_prod",
    interval_table="interval_aggregates",
    raw_table="raw_readings",
    high_usage_threshold_wh=500.0,
    time_zone="Europe/Berlin",
)


def test_the_data_source_and_dashboard_are_created_once(aws: Server) -> None:
    qs = aws.client("quicksight")
    names = quicksight.Names(**{**NAMES.__dict__, "stage": f"energy-{id(qs) % 10**6}"})
    arn, first = quicksight.ensure_data_source(qs, names, PRINCIPAL)
    assert first.action == "created" and arn.endswith(f"datasource/{names.stage}-athena")
    again_arn, again = quicksight.ensure_data_source(qs, names, PRINCIPAL)
    assert (again_arn, again.action) == (arn, "unchanged")
    # A data source someone pointed at another workgroup is put back.
    qs.update_data_source(
        AwsAccountId=ACCOUNT,
        DataSourceId=f"{names.stage}-athena",
        Name="x",
        DataSourceParameters={"AthenaParameters": {"WorkGroup": "w"}},
    )
    assert quicksight.ensure_data_source(qs, names, PRINCIPAL)[1].action == "updated"
    described = qs.describe_data_source(AwsAccountId=ACCOUNT, DataSourceId=f"{names.stage}-athena")
    assert described["DataSource"]["DataSourceParameters"] == {
        "AthenaParameters": {"WorkGroup": names.workgroup}
    }

    sets = {
        k: f"arn:aws:quicksight:us-east-1:{ACCOUNT}:dataset/{k}" for k in ("daily", "intervals")
    }
    dashboard_arn, created = quicksight.ensure_dashboard(qs, names, sets, PRINCIPAL)
    assert created.action == "created" and dashboard_arn.endswith(f"{names.stage}-dashboard")
    assert quicksight.ensure_dashboard(qs, names, sets, PRINCIPAL)[1].action == "unchanged"
    listed = qs.list_dashboards(AwsAccountId=ACCOUNT)["DashboardSummaryList"]
    assert [d["DashboardId"] for d in listed].count(f"{names.stage}-dashboard") == 1


def test_the_dashboard_definition_names_only_the_data_sets_it_declares() -> None:
    arns = {"daily": "arn:daily", "intervals": "arn:intervals"}
    definition = quicksight.dashboard_definition(arns)
    declared = {d["Identifier"] for d in definition["DataSetIdentifierDeclarations"]}
    used = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "DataSetIdentifier" in value:
                used.add(value["DataSetIdentifier"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(definition["Sheets"])
    assert used == declared == set(arns)
    columns = {k: {c for c, _ in cols} for k, (_, cols) in quicksight.data_sets(NAMES).items()}
    for visual in definition["Sheets"][0]["Visuals"]:
        text = str(visual)
        for identifier in declared:
            for column in ("day", "energy_kwh", "hour_of_day", "power_mean_w"):
                if f"'DataSetIdentifier': '{identifier}', 'ColumnName': '{column}'" in text:
                    assert column in columns[identifier]
    titles = [
        next(iter(v.values()))["Title"]["FormatText"]["PlainText"]
        for v in definition["Sheets"][0]["Visuals"]
    ]
    assert len(titles) == 4 and any("hour of day" in t for t in titles)


def _stubbed() -> tuple[Any, Stubber]:
    qs = boto3.client(
        "quicksight", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return qs, Stubber(qs)


def _not_found(stub: Stubber, operation: str) -> None:
    stub.add_client_error(operation, "ResourceNotFoundException", http_status_code=404)


def _arn(kind: str, resource_id: str) -> str:
    return f"arn:aws:quicksight:us-east-1:{ACCOUNT}:{kind}/{resource_id}"


def test_setup_twice_creates_everything_then_changes_nothing() -> None:
    qs, stub = _stubbed()
    sets = quicksight.data_sets(NAMES)
    source_arn = _arn("datasource", "energy-prod-athena")
    # First run: nothing exists.
    _not_found(stub, "describe_data_source")
    stub.add_response(
        "create_data_source",
        {"Arn": source_arn},
        {
            "AwsAccountId": ACCOUNT,
            "DataSourceId": "energy-prod-athena",
            "Name": ANY,
            "Type": "ATHENA",
            "DataSourceParameters": {"AthenaParameters": {"WorkGroup": "energy-prod"}},
            "Permissions": [
                {"Principal": PRINCIPAL, "Actions": sorted(quicksight.DATA_SOURCE_ACTIONS)}
            ],
        },
    )
    for identifier in sets:
        _not_found(stub, "describe_data_set")
        stub.add_response(
            "create_data_set",
            {"Arn": _arn("dataset", f"energy-prod-{identifier}")},
            {
                "AwsAccountId": ACCOUNT,
                "DataSetId": f"energy-prod-{identifier}",
                "Name": ANY,
                "PhysicalTableMap": ANY,
                "ImportMode": "DIRECT_QUERY",
                "Permissions": ANY,
            },
        )
    _not_found(stub, "describe_dashboard")
    stub.add_response(
        "create_dashboard",
        {"Arn": _arn("dashboard", "energy-prod-dashboard")},
        {
            "AwsAccountId": ACCOUNT,
            "DashboardId": "energy-prod-dashboard",
            "Name": ANY,
            "Definition": ANY,
            "VersionDescription": ANY,
            "Permissions": ANY,
        },
    )
    with stub:
        first = quicksight.setup(qs, NAMES, PRINCIPAL, report=lambda _c: None)
        stub.assert_no_pending_responses()
    assert [c.action for c in first] == ["created"] * 5

    # Second run: everything as setup made it, shared with the principal.
    qs, stub = _stubbed()
    stub.add_response(
        "describe_data_source",
        {
            "DataSource": {
                "Arn": source_arn,
                "Type": "ATHENA",
                "Name": "energy-prod (Athena)",
                "DataSourceParameters": {"AthenaParameters": {"WorkGroup": "energy-prod"}},
            }
        },
    )
    stub.add_response(
        "describe_data_source_permissions",
        {
            "Permissions": [
                {"Principal": PRINCIPAL, "Actions": list(quicksight.DATA_SOURCE_ACTIONS)}
            ]
        },
    )
    for identifier, (sql, columns) in sets.items():
        stub.add_response(
            "describe_data_set",
            {
                "DataSet": {
                    "Arn": _arn("dataset", f"energy-prod-{identifier}"),
                    "Name": f"energy-prod {identifier}",
                    "ImportMode": "DIRECT_QUERY",
                    "PhysicalTableMap": {
                        "sql": {
                            "CustomSql": {
                                "DataSourceArn": source_arn,
                                "Name": identifier,
                                "SqlQuery": sql,
                                "Columns": [{"Name": c, "Type": t} for c, t in columns],
                            }
                        }
                    },
                }
            },
        )
        stub.add_response(
            "describe_data_set_permissions",
            {
                "Permissions": [
                    {"Principal": PRINCIPAL, "Actions": list(quicksight.DATA_SET_ACTIONS)}
                ]
            },
        )
    arns = {k: _arn("dataset", f"energy-prod-{k}") for k in sets}
    digest = quicksight._digest(quicksight.dashboard_definition(arns))
    stub.add_response(
        "describe_dashboard",
        {
            "Dashboard": {
                "Arn": _arn("dashboard", "energy-prod-dashboard"),
                "Name": "Energy monitoring (energy-prod)",
                "Version": {"Description": digest},
            }
        },
    )
    stub.add_response(
        "describe_dashboard_permissions",
        {"Permissions": [{"Principal": PRINCIPAL, "Actions": list(quicksight.DASHBOARD_ACTIONS)}]},
    )
    with stub:
        second = quicksight.setup(qs, NAMES, PRINCIPAL, report=lambda _c: None)
        stub.assert_no_pending_responses()  # and no create or update was asked for
    assert [c.action for c in second] == ["unchanged"] * 5


def test_a_changed_data_set_and_a_new_principal_are_updated_not_recreated() -> None:
    qs, stub = _stubbed()
    sql, columns = quicksight.data_sets(NAMES)["daily"]
    source_arn = _arn("datasource", "energy-prod-athena")
    stale = {
        "DataSet": {
            "Arn": _arn("dataset", "energy-prod-daily"),
            "Name": "energy-prod daily",
            "ImportMode": "DIRECT_QUERY",
            "PhysicalTableMap": {
                "sql": {
                    "CustomSql": {
                        "DataSourceArn": source_arn,
                        "Name": "daily",
                        "SqlQuery": "SELECT 1",
                        "Columns": [{"Name": c, "Type": t} for c, t in columns],
                    }
                }
            },
        }
    }
    stub.add_response("describe_data_set", stale)
    expected = {
        "AwsAccountId": ACCOUNT,
        "DataSetId": "energy-prod-daily",
        "Name": "energy-prod daily",
        "ImportMode": "DIRECT_QUERY",
        "PhysicalTableMap": copy.deepcopy(stale["DataSet"]["PhysicalTableMap"]),
    }
    expected["PhysicalTableMap"]["sql"]["CustomSql"]["SqlQuery"] = sql
    stub.add_response("update_data_set", {"Arn": stale["DataSet"]["Arn"]}, expected)
    other = f"arn:aws:quicksight:us-east-1:{ACCOUNT}:user/default/someone-else"
    stub.add_response(
        "describe_data_set_permissions",
        {"Permissions": [{"Principal": other, "Actions": ["quicksight:DescribeDataSet"]}]},
    )
    stub.add_response(
        "update_data_set_permissions",
        {},
        {
            "AwsAccountId": ACCOUNT,
            "DataSetId": "energy-prod-daily",
            "GrantPermissions": [
                {"Principal": PRINCIPAL, "Actions": sorted(quicksight.DATA_SET_ACTIONS)}
            ],
        },
    )
    with stub:
        _, change = quicksight.ensure_data_set(qs, NAMES, "daily", source_arn, PRINCIPAL)
        assert change.action == "updated"
        assert quicksight.share(qs, NAMES, change, PRINCIPAL).action == "updated"
        stub.assert_no_pending_responses()


def test_a_principal_that_is_not_a_quicksight_arn_is_one_line(cli: Any) -> None:
    result = cli("quicksight", "setup", "--env", "prod", "--principal", "alice")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "not a QuickSight user or group ARN" in result.err


def test_days_and_hours_of_day_follow_the_environments_zone() -> None:
    sets = quicksight.data_sets(NAMES)
    daily, columns = sets["daily"]
    local = "(interval_start AT TIME ZONE 'Europe/Berlin')"
    # One row per device and local day: grouped by the local date, never by a UTC
    # partition (a Berlin day starts at 22:00 or 23:00 UTC, in the previous UTC day).
    assert f"CAST({local} AS date) AS day" in daily and daily.endswith("GROUP BY device_id, day")
    assert "year(day)" in daily and "month(day)" in daily
    assert [c for c, _ in columns] == [
        "device_id", "day", "energy_kwh", "high_usage_intervals", "year", "month",
    ]  # fmt: skip
    assert f"hour({local}) AS hour_of_day" in sets["intervals"][0]
    utc = quicksight.data_sets(quicksight.Names(**{**NAMES.__dict__, "time_zone": "UTC"}))
    assert "AT TIME ZONE 'UTC'" in utc["daily"][0]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "UTC'; DROP TABLE x; --", ""])
def test_a_zone_that_is_not_an_iana_name_is_refused(zone: str) -> None:
    with pytest.raises(ValueError, match="not an IANA time zone"):
        quicksight.data_sets(quicksight.Names(**{**NAMES.__dict__, "time_zone": zone}))


@pytest.mark.parametrize("identifier", ["intervals", "daily", "raw"])
def test_each_data_set_reads_one_glue_table_of_the_environment(identifier: str) -> None:
    sql, columns = quicksight.data_sets(NAMES)[identifier]
    table = "raw_readings" if identifier == "raw" else "interval_aggregates"
    assert f'"energy_prod"."{table}"' in sql
    names = [c for c, _ in columns]
    assert "device_id" in names and "year" in names  # the partition columns filter cheaply
    if identifier != "raw":
        assert "ORDER BY revision DESC" in sql and "rn = 1" in sql  # each interval once
