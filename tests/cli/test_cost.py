"""`energy-monitoring cost`: the monthly bill from cdk.json's settings and the price list."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from energy_monitoring.costs import model, prices

REPO = Path(__file__).resolve().parents[2]
KEYS = (
    "total_usd_per_month", "per_apartment_usd_per_month", "naive_per_apartment_usd_per_month",
    "floor_per_apartment_usd_per_month", "by_service", "warnings",
)  # fmt: skip


def cost(cli: Any, *args: str | Path) -> dict[str, Any]:
    result = cli("cost", "--cdk-json", REPO / "cdk.json", *args, "--json")
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    return document


def test_the_bill_adds_up_and_sits_between_the_floor_and_the_naive_design(cli: Any) -> None:
    found = cost(cli, "--env", "prod", "--apartments", "10000")
    assert set(KEYS) <= set(found)
    assert found["region"] == "eu-central-1"  # prod's region, so Frankfurt's prices
    lines = sum(line["usd_per_month"] for line in found["lines"])
    assert found["total_usd_per_month"] == pytest.approx(lines, abs=0.05)
    assert found["total_usd_per_month"] == pytest.approx(
        sum(found["by_service"].values()), abs=0.05
    )
    per = found["per_apartment_usd_per_month"]
    assert per == pytest.approx(found["total_usd_per_month"] / 10_000, rel=1e-3)
    assert found["floor_per_apartment_usd_per_month"] < per
    assert found["naive_per_apartment_usd_per_month"] > 50 * per
    # Basic Ingest is on in prod: no IoT messaging line costs anything.
    messaging = [l for l in found["lines"] if l["item"] == "messaging"]  # noqa: E741
    assert messaging[0]["usd_per_month"] == 0


def test_the_message_path_alone_is_what_the_target_would_have_to_fit(cli: Any) -> None:
    found = cost(cli, "--env", "prod", "--apartments", "10000", "--no-replica")
    path = found["message_path_per_apartment_usd_per_month"]
    services = found["by_service"]
    assert path == pytest.approx(
        sum(services[s] for s in model.MESSAGE_PATH_SERVICES if s in services) / 10_000,
        abs=1e-5,
    )
    assert "Firehose" not in model.MESSAGE_PATH_SERVICES and "S3" not in model.MESSAGE_PATH_SERVICES
    # docs/cost.md: with the archive free, prod's messages alone cost more than $0.015.
    assert 0.015 < path < found["per_apartment_usd_per_month"]
    assert path == pytest.approx(0.0185, abs=0.0002)


def test_each_setting_moves_the_bill_the_way_the_design_says(cli: Any) -> None:
    base = cost(cli, "--env", "prod")
    by = base["by_service"]
    # A LATEST write per device and window in which it sent something: with a message
    # every 5 minutes (30 readings) a shorter window hardly adds writes; with one a minute
    # (6 readings) a 60 s window writes more often (not five times: at 300 s a shard's
    # 25,000 records per window already take three batches of 10,000).
    fresher = cost(cli, "--env", "prod", "--window", "60")["by_service"]
    assert fresher["DynamoDB"] == pytest.approx(by["DynamoDB"], rel=0.02)
    chatty = ("--env", "prod", "--readings-per-message", "6")
    slow = cost(cli, *chatty, "--window", "300")["by_service"]
    fast = cost(cli, *chatty, "--window", "60")["by_service"]
    assert fast["DynamoDB"] > 1.5 * slow["DynamoDB"]
    metered = cost(cli, "--env", "prod", "--no-basic-ingest")["by_service"]
    assert metered["IoT Core"] > by["IoT Core"]
    # Plain JSON: 30 readings' record takes two 5 KB Firehose steps, 25 readings' one
    # (gzip's 30 take one too, at no cost in messages).
    plain = ("--env", "prod", "--payload-encoding", "json")
    text = cost(cli, *plain)["by_service"]
    smaller = cost(cli, *plain, "--readings-per-message", "25")["by_service"]
    assert smaller["Firehose"] < 0.75 * text["Firehose"]
    assert smaller["IoT Core"] > text["IoT Core"]  # more messages, more rules triggered
    assert by["Firehose"] < 0.75 * text["Firehose"] and by["IoT Core"] == text["IoT Core"]
    # Without Basic Ingest the IoT messaging steps are 5 KB too: 190 gzip readings in one.
    metered_text = cost(cli, *plain, "--no-basic-ingest", "--readings-per-message", "180")
    metered_gzip = cost(cli, "--env", "prod", "--no-basic-ingest", "--readings-per-message", "180")
    assert metered_gzip["by_service"]["IoT Core"] < 0.5 * metered_text["by_service"]["IoT Core"]


def test_capacity_warnings_name_the_number_that_trips_them(cli: Any) -> None:
    small = cost(cli, "--env", "prod", "--apartments", "1000", "--window", "240")
    assert small["warnings"] == []
    big = cost(cli, "--env", "prod", "--apartments", "1000000", "--shards", "2")
    shards = [w for w in big["warnings"] if w.startswith("Kinesis")]
    assert shards and "need" in shards[0] and "shard_count is 2" in shards[0]
    stale = cost(cli, "--env", "dev")["warnings"]
    assert any(w.startswith("freshness") and "315 s" in w for w in stale)
    # Prod's table scales to 2,000 write units: 1,000,000 apartments write about 4,500/s.
    table = [w for w in big["warnings"] if w.startswith("DynamoDB") and "on average" in w]
    assert any("table.max_write_capacity is 2,000" in w for w in table), big["warnings"]
    # 100,000 apartments on 10 shards: each window's writes land faster than the one
    # partition a table of ~640 write units may have takes them.
    bursty = cost(cli, "--env", "prod", "--apartments", "100000", "--shards", "10")
    assert any("writes/s at each window's end" in w and "1 partition(s)" in w
               for w in bursty["warnings"]), bursty["warnings"]  # fmt: skip


def test_a_provisioned_table_bills_the_capacity_auto_scaling_holds() -> None:
    fleet = model.Fleet(apartments=10_000, reading_interval_s=10, readings_per_message=30)
    provisioned = model.Design.from_config(_prod(), region="eu-central-1")
    assert provisioned.table_billing == "provisioned"
    on_demand = replace(provisioned, table_billing="on_demand")
    month = model.counts(fleet, provisioned, seconds=model.SECONDS_PER_MONTH)

    def dynamodb(design: model.Design) -> dict[str, float]:
        found: dict[str, float] = {}
        for line in model.monthly_lines(fleet, design):
            if line.service == "DynamoDB":
                found[line.item] = found.get(line.item, 0.0) + line.quantity
        return found

    held, per_request = dynamodb(provisioned), dynamodb(on_demand)
    assert "write_request_units" not in held and "write_capacity_unit_hours" not in per_request
    # The mean rate over 70% utilization, all month (in thousands of unit-hours).
    writes = month.dynamodb_write_units / model.SECONDS_PER_MONTH / 0.7
    assert held["write_capacity_unit_hours"] == pytest.approx(writes * 730 / 1000)
    reads = month.dynamodb_read_units + month.sweep_read_units + month.baseload_read_units
    assert per_request["read_request_units"] == pytest.approx(reads / 1e6)
    assert held["read_capacity_unit_hours"] == pytest.approx(
        reads / model.SECONDS_PER_MONTH / 0.7 * 730 / 1000
    )
    price_list = prices.load()

    def usd(design: model.Design) -> float:
        bill = model.bill(model.monthly_lines(fleet, design), price_list,
                          region="eu-central-1", apartments=10_000)  # fmt: skip
        return sum(usd for line, _, usd in bill.lines if line.service == "DynamoDB")

    assert usd(provisioned) < 0.5 * usd(on_demand)
    # A small fleet pays the minimum it is held at.
    tiny = model.Fleet(apartments=10, reading_interval_s=10, readings_per_message=30)
    lines = {l.item: l.quantity for l in model.monthly_lines(tiny, provisioned)}  # noqa: E741
    held_at_least = provisioned.table_write_capacity[0]  # prod's table.min_write_capacity
    assert held_at_least == 50
    assert lines["write_capacity_unit_hours"] == pytest.approx(held_at_least * 730 / 1000)


def test_prices_come_from_the_file_and_a_file_overrides_them(cli: Any, tmp_path: Path) -> None:
    built_in = prices.load()
    for price in built_in.entries.values():
        assert price.source.startswith("https://aws.amazon.com/") and price.checked
        assert {"us-east-1", "eu-central-1"} <= set(price.usd)
    doubled = tmp_path / "prices.json"
    entry = built_in.entries[("DynamoDB", "write_capacity_unit_hours")]
    doubled.write_text(json.dumps({"prices": [{
        "service": entry.service, "item": entry.item, "unit": entry.unit,
        "usd": {region: 2 * value for region, value in entry.usd.items()},
    }]}))  # fmt: skip
    base = cost(cli, "--env", "prod")
    dearer = cost(cli, "--env", "prod", "--prices", doubled)
    line = next(l for l in base["lines"] if l["item"] == "write_capacity_unit_hours")  # noqa: E741
    assert dearer["total_usd_per_month"] == pytest.approx(
        base["total_usd_per_month"] + line["usd_per_month"], abs=0.05
    )


def test_a_region_without_prices_or_a_bad_file_is_one_line(cli: Any, tmp_path: Path) -> None:
    result = cli("cost", "--cdk-json", REPO / "cdk.json", "--region", "ap-south-2")
    assert result.code == 1 and result.err.count("\n") == 1
    assert "no ap-south-2 price" in result.err and "--prices" in result.err
    broken = tmp_path / "prices.json"
    broken.write_text('{"prices": [{"service": "SNS"}]}')
    result = cli("cost", "--cdk-json", REPO / "cdk.json", "--prices", broken)
    assert result.code == 1 and "price 1 is incomplete" in result.err
    unknown = cli("cost", "--cdk-json", REPO / "cdk.json", "--env", "qa")
    assert unknown.code == 1 and "unknown environment 'qa'" in unknown.err


def test_the_plot_is_a_png_and_the_table_is_for_people(cli: Any, tmp_path: Path) -> None:
    picture = tmp_path / "cost.png"
    shown = cli("cost", "--cdk-json", REPO / "cdk.json", "--plot", picture)
    assert shown.code == 0, shown.err
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    assert "per apartment and month" in shown.out and "AWS IoT SiteWise" in shown.out


def test_a_month_has_the_counts_the_design_promises() -> None:
    fleet = model.Fleet(apartments=100, reading_interval_s=10, readings_per_message=30)
    design = model.Design.from_config(_prod(), region="us-east-1")
    month = model.counts(fleet, design, seconds=model.SECONDS_PER_MONTH)
    readings = 100 * model.SECONDS_PER_MONTH / 10
    assert month.messages == pytest.approx(readings / 30, rel=1e-3)
    # One LATEST write per device and window it sent something in (prod's 60 s window is
    # shorter than a message's 300 s: one a message), one per interval, one per day, two
    # per alert.
    windows = model.SECONDS_PER_MONTH / max(design.window_s, 30 * 10)
    expected = 100 * (windows + model.SECONDS_PER_MONTH / 900 + 30.4 + 2 * 0.5 * 30.4)
    assert month.dynamodb_write_units == pytest.approx(expected, rel=0.01)
    assert month.dynamodb_write_units / readings * 1000 == pytest.approx(44.4, rel=0.05)


def _prod() -> Any:
    from energy_monitoring.config import environments_in

    return environments_in(REPO / "cdk.json")["prod"]


def test_the_archives_copy_costs_its_transfer_puts_storage_and_key() -> None:
    fleet = model.Fleet(apartments=10_000, reading_interval_s=10, readings_per_message=30)
    replicated = model.Design.from_config(_prod(), region="eu-central-1")
    assert replicated.replica_region == "eu-west-1"
    single = replace(replicated, replica_region=None)
    raw_only = replace(replicated, replicate_processed=False)
    price_list = prices.load()

    def lines(design: model.Design) -> dict[tuple[str, str], float]:
        return {(l.service, l.item): l.quantity for l in model.monthly_lines(fleet, design)}  # noqa: E741

    both, alone, raw = lines(replicated), lines(single), lines(raw_only)
    assert not any(service == "S3 replica" for service, _ in alone)
    # Every replicated object is one PUT in the replica region and one transfer of its bytes;
    # the copy's storage is the archive's (raw/ and processed/ are all it holds).
    assert both[("S3 replica", "put_requests")] == pytest.approx(both[("S3", "put_requests")])
    for tier in ("standard_gb_month", "standard_ia_gb_month", "glacier_gb_month",
                 "deep_archive_gb_month"):  # fmt: skip
        assert both[("S3 replica", tier)] == pytest.approx(both[("S3", tier)])
    assert raw[("S3 replica", "put_requests")] < both[("S3 replica", "put_requests")]
    assert both[("KMS", "keys")] == alone[("KMS", "keys")] + 1
    assert both[("CloudWatch", "alarms")] == alone[("CloudWatch", "alarms")] + 1
    bill = model.bill(model.monthly_lines(fleet, replicated), price_list,
                      region="eu-central-1", apartments=10_000)  # fmt: skip
    transfer = next(usd for line, _, usd in bill.lines if line.item == "inter_region_transfer_gb")
    assert transfer == pytest.approx(both[("S3 replica", "inter_region_transfer_gb")] * 0.02)


def test_deep_archive_holds_what_glacier_held_after_its_day_at_less_than_half_the_price(
    cli: Any,
) -> None:
    fleet = model.Fleet(apartments=10_000, reading_interval_s=10, readings_per_message=30)
    deep = model.Design.from_config(_prod(), region="eu-central-1")
    assert (deep.glacier_after_days, deep.deep_archive_after_days) == (90, 180)
    flexible = replace(deep, deep_archive_after_days=None)

    def lines(design: model.Design) -> dict[str, float]:
        return {l.item: l.quantity for l in model.monthly_lines(fleet, design) if l.service == "S3"}  # noqa: E741

    with_deep, without = lines(deep), lines(flexible)
    assert "deep_archive_gb_month" not in without
    # The same bytes, 90 of 1,735 cold days in Glacier and the rest in Deep Archive.
    cold = with_deep["glacier_gb_month"] + with_deep["deep_archive_gb_month"]
    assert cold == pytest.approx(without["glacier_gb_month"])
    assert with_deep["glacier_gb_month"] == pytest.approx(cold * 90 / 1735)
    assert with_deep["transition_deep_archive_requests"] == with_deep["transition_glacier_requests"]
    on = cost(cli, "--env", "prod")["by_service"]["S3"]
    off = cost(cli, "--env", "prod", "--deep-archive-after-days", "0")["by_service"]["S3"]
    assert on < 0.7 * off  # five years of raw/: most of S3's bill was Glacier
    # A lifecycle synthesis would refuse is refused here too (no day billed twice).
    for bad in (("--deep-archive-after-days", "60"), ("--glacier-after-days", "120")):
        result = cli("cost", "--cdk-json", REPO / "cdk.json", "--env", "prod", *bad)
        assert result.code == 1 and "--deep-archive-after-days" in result.err, result.err
        assert result.err.count("\n") == 1


def test_the_copy_is_billed_where_the_environment_has_one(cli: Any) -> None:
    assert "S3 replica" in cost(cli, "--env", "prod")["by_service"]
    assert "S3 replica" not in cost(cli, "--env", "prod", "--no-replica")["by_service"]
    assert "S3 replica" not in cost(cli, "--env", "staging")["by_service"]
    result = cli("cost", "--cdk-json", REPO / "cdk.json", "--env", "staging", "--replica")
    assert result.code == 1
    assert result.err.strip() == "error: --replica: environment 'staging' sets no dr.replica_region"
