"""`energy-monitoring query`: DynamoDB and the processed archive give the same numbers.

Readings go through the real handlers (batching, then processor) into the moto server's
table and archive; the archive is read as against the local pipeline: the Athena SQL run
by DuckDB over the Parquet files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import DEVICE, T0, Pipeline, Server, envelope, event, readings
from energy_runtime.batching import process_kinesis_event
from energy_runtime.processor import process_sqs_event
from energy_runtime.settings import load_batching_settings, load_processor_settings

from energy_cli import consumption

OTHER = "apt-0008"
RANGE = ("--from", "2026-11-18T00:00Z", "--to", "2026-11-19T00:00Z")


def as_local(pipeline: Pipeline, aws: Server, tmp_path: Path, *, ttl_days: int = 400) -> Path:
    """The outputs with the stack `local up` adds: the commands then read the archive with
    DuckDB, and the functions' settings from the local pipeline's record of them."""
    functions = tmp_path / "deployment.json"
    environment = {**pipeline.environment, "INTERVAL_TTL_DAYS": str(ttl_days)}
    functions.write_text(json.dumps({"functions": {
        name: {"environment": environment} for name in ("batching", "processor")
    }}))  # fmt: skip
    outputs = json.loads(pipeline.outputs.read_text())
    outputs["energy-dev-Storage"].update(
        GlueDatabaseName="energy_dev", IntervalTableName="interval_aggregates"
    )
    outputs["energy-dev-Local"] = {
        "AwsEndpointUrl": aws.endpoint, "AwsCaBundle": str(aws.ca_bundle), "Region": "us-east-1",
        "BrokerEndpoint": "127.0.0.1:1", "CertificateAuthorityDir": str(tmp_path),
        "FunctionsFile": str(functions),
    }  # fmt: skip
    path = tmp_path / "local-outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def through_the_handlers(aws: Server, pipeline: Pipeline) -> None:
    """Two meters, 40 minutes each, processed in two batches (so intervals get revisions)."""
    batching = load_batching_settings(pipeline.environment)
    processor = load_processor_settings(pipeline.environment)
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    for half in range(2):
        starts = [T0 + 1200 * half + 60 * n for n in range(20)]
        records = [
            envelope(device, readings(start, 6), (start + 55) * 1000)
            for device in (DEVICE, OTHER)
            for start in starts
        ]
        process_kinesis_event(event(records, first_sequence=1000 + 100 * half),
                              config=batching, sqs=sqs, s3=s3)  # fmt: skip
        messages = sqs.receive_message(QueueUrl=pipeline.handoff, MaxNumberOfMessages=10)
        records_in = [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": {"ApproximateReceiveCount": "1"}, "eventSourceARN": "arn:handoff"}
            for m in messages["Messages"]
        ]  # fmt: skip
        dynamodb, sns = aws.client("dynamodb"), aws.client("sns")
        process_sqs_event(
            {"Records": records_in}, config=processor, dynamodb=dynamodb, s3=s3, sns=sns
        )
        done = [
            {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(records_in)
        ]
        sqs.delete_message_batch(QueueUrl=pipeline.handoff, Entries=done)


def query(cli: Any, outputs: Path, *args: str) -> dict[str, Any]:
    result = cli("query", "--env", "dev", "--outputs", outputs, *RANGE, *args, "--json")
    assert result.code == 0, result.err
    document: dict[str, Any] = result.json()
    return document


def test_dynamodb_and_the_archive_agree(
    cli: Any, aws: Server, pipeline: Pipeline, tmp_path: Path
) -> None:
    through_the_handlers(aws, pipeline)
    outputs = as_local(pipeline, aws, tmp_path)
    for every in ("15m", "1h"):
        table = query(cli, outputs, "--device", DEVICE, "--every", every, "--source", "dynamodb")
        archive = query(cli, outputs, "--device", DEVICE, "--every", every, "--source", "archive")
        assert [s["source"] for s in table["sources"]] == ["dynamodb"]
        assert [s["source"] for s in archive["sources"]] == ["archive"]
        numbers = [(r["bucket_start"], r["energy_wh"]) for r in table["rows"]]
        assert numbers == [(r["bucket_start"], r["energy_wh"]) for r in archive["rows"]]
        assert len(numbers) >= (3 if every == "15m" else 1) and table["total_wh"] > 0
    # A register advancing 2 Wh per reading: 40 minutes of it, less the first step.
    assert table["total_wh"] == pytest.approx(2.0 * (240 - 1))


def test_a_range_across_the_retention_is_split_and_says_so(
    cli: Any, aws: Server, pipeline: Pipeline, tmp_path: Path
) -> None:
    through_the_handlers(aws, pipeline)
    # Intervals kept 7 days: the range's older part is the archive's, the newer the table's.
    outputs = as_local(pipeline, aws, tmp_path, ttl_days=7)
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(days=14), now + dt.timedelta(hours=1)
    wide = ("--from", start.isoformat(), "--to", end.isoformat())
    result = cli("query", "--env", "dev", "--outputs", outputs, *wide, "--every", "1d", "--json",
                 "--device", DEVICE)  # fmt: skip
    assert result.code == 0, result.err
    document = result.json()
    assert [s["source"] for s in document["sources"]] == ["archive", "dynamodb"]
    assert document["sources"][0]["to"] == document["sources"][1]["from"]


def test_a_building_is_its_meters(
    cli: Any, aws: Server, pipeline: Pipeline, tmp_path: Path
) -> None:
    through_the_handlers(aws, pipeline)
    iot = aws.client("iot")
    thing_type = f"meter-{pipeline.table}"
    iot.create_thing_type(thingTypeName=thing_type)
    for thing, building in ((DEVICE, "b7"), (OTHER, "b7")):
        iot.create_thing(thingName=thing, thingTypeName=thing_type,
                         attributePayload={"attributes": {"building": building}})  # fmt: skip
    outputs_data = json.loads(as_local(pipeline, aws, tmp_path).read_text())
    outputs_data["energy-dev-Ingest"] = {"ThingTypeName": thing_type}
    outputs = tmp_path / "with-ingest.json"
    outputs.write_text(json.dumps(outputs_data))
    building = query(cli, outputs, "--building", "b7", "--every", "1h")
    assert building["devices"] == [DEVICE, OTHER]
    alone = query(cli, outputs, "--device", DEVICE, "--every", "1h")
    assert building["total_wh"] == pytest.approx(2 * alone["total_wh"])
    missing = cli("query", "--env", "dev", "--outputs", outputs, *RANGE, "--building", "b9")
    assert missing.code == 1 and "building 'b9'" in missing.err


def test_the_archive_sql_keeps_each_intervals_highest_revision() -> None:
    day = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
    sql = consumption.archive_sql(
        database="energy_dev", table="interval_aggregates", devices=["apt-1"],
        start=day, end=day + dt.timedelta(days=1),
    )  # fmt: skip
    assert "ORDER BY revision DESC" in sql and "WHERE rn = 1" in sql
    assert "year IN ('2026')" in sql  # the partition column prunes what Athena reads
    with pytest.raises(Exception, match="not a thing name"):
        consumption.archive_sql(
            database="d", table="t", devices=["x' OR '1'='1"], start=day, end=day
        )


def test_athena_is_started_waited_for_and_paged(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's Athena returns no rows: the calls are checked against the service model.
    import boto3
    from botocore.stub import Stubber

    from energy_cli.aws import Clients
    from energy_cli.environment import Environment

    monkeypatch.setattr(consumption, "ATHENA_POLL_S", 0.0)
    athena = boto3.client("athena", region_name="eu-central-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    clients = Clients()
    clients._clients["athena"] = athena
    found = Environment("prod", "energy-prod", "test", {"energy-prod-Storage": {
        "AthenaWorkgroupName": "energy-prod"}})  # fmt: skip
    sql = "SELECT 1"

    def page(rows: list[list[str]], token: str | None) -> dict[str, Any]:
        result: dict[str, Any] = {
            "ResultSet": {"Rows": [{"Data": [{"VarCharValue": v} for v in r]} for r in rows]}
        }
        if token:
            result["NextToken"] = token
        return result

    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"},
                          {"QueryString": sql, "WorkGroup": "energy-prod"})  # fmt: skip
        for state in ("RUNNING", "SUCCEEDED"):
            stub.add_response("get_query_execution",
                              {"QueryExecution": {"Status": {"State": state}}},
                              {"QueryExecutionId": "q-1"})  # fmt: skip
        header = ["device_id", "interval_start", "energy_wh"]
        stub.add_response("get_query_results",
                          page([header, ["apt-1", "2026-11-18 11:00:00.000", "12.5"]], "t-2"),
                          {"QueryExecutionId": "q-1"})  # fmt: skip
        second = page([["apt-1", "2026-11-18 11:15:00.000", "7.5"]], None)
        stub.add_response("get_query_results", second,
                          {"QueryExecutionId": "q-1", "NextToken": "t-2"})  # fmt: skip
        rows = consumption.from_athena(clients, found, sql)
        stub.assert_no_pending_responses()
    assert rows == [
        ("apt-1", dt.datetime(2026, 11, 18, 11, 0, tzinfo=dt.UTC), 12.5),
        ("apt-1", dt.datetime(2026, 11, 18, 11, 15, tzinfo=dt.UTC), 7.5),
    ]
