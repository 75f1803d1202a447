"""The moto server on loopback counts what the pipeline asks of each service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from devkit.emulators import aws_api
from devkit.emulators.pki import CertificateAuthority
from devkit.runner import processes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("moto")
    ca = CertificateAuthority(directory / "pki")
    cert = ca.issue_server("moto")
    child, endpoint = aws_api.start(directory, cert=cert.cert, key=cert.key)
    yield endpoint, ca.ca_path
    processes.stop(child)
    assert child.poll() is not None


def client(service: str, endpoint: str, ca: Path) -> object:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        verify=str(ca),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}),
    )


def test_requests_are_counted_per_service_over_tls(server: tuple[str, Path]) -> None:
    endpoint, ca = server
    assert endpoint.startswith("https://127.0.0.1:")
    kinesis = client("kinesis", endpoint, ca)
    kinesis.create_stream(StreamName="s", ShardCount=1)  # type: ignore[attr-defined]
    kinesis.put_records(  # type: ignore[attr-defined]
        StreamName="s", Records=[{"Data": b"x", "PartitionKey": f"apt-{i}"} for i in range(7)]
    )
    s3 = client("s3", endpoint, ca)
    s3.create_bucket(Bucket="archive")  # type: ignore[attr-defined]
    s3.put_object(Bucket="archive", Key="raw/year=2026/a.parquet", Body=b"1" * 10)  # type: ignore[attr-defined]
    dynamodb = client("dynamodb", endpoint, ca)
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "apt-1"}})  # type: ignore[attr-defined]
    counts = aws_api.counts(endpoint, ca)
    assert counts["kinesis_records_put"] == 7
    assert counts["requests"]["kinesis:PutRecords"] == 1
    assert counts["s3_puts"] == {"raw/": 1}
    assert counts["dynamodb_write_units"] == 1
    # The object came through intact although botocore sent it chunked.
    body = s3.get_object(Bucket="archive", Key="raw/year=2026/a.parquet")["Body"].read()  # type: ignore[attr-defined]
    assert body == b"1" * 10


def test_shard_reads_return_every_record_in_order(server: tuple[str, Path]) -> None:
    endpoint, ca = server
    kinesis = client("kinesis", endpoint, ca)
    kinesis.create_stream(StreamName="ordered", ShardCount=1)  # type: ignore[attr-defined]
    for start in range(0, 1200, 400):
        kinesis.put_records(  # type: ignore[attr-defined]
            StreamName="ordered",
            Records=[
                {"Data": str(i).encode(), "PartitionKey": "p"} for i in range(start, start + 400)
            ],
        )
    shard = kinesis.list_shards(StreamName="ordered")["Shards"][0]["ShardId"]  # type: ignore[attr-defined]
    iterator = kinesis.get_shard_iterator(  # type: ignore[attr-defined]
        StreamName="ordered", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seen: list[int] = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=500)  # type: ignore[attr-defined]
        seen.extend(int(r["Data"]) for r in page["Records"])
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            break
    assert seen == list(range(1200))


def test_sequence_numbers_are_unique_across_shards(server: tuple[str, Path]) -> None:
    endpoint, ca = server
    kinesis = client("kinesis", endpoint, ca)
    kinesis.create_stream(StreamName="two-shards", ShardCount=2)  # type: ignore[attr-defined]
    response = kinesis.put_records(  # type: ignore[attr-defined]
        StreamName="two-shards",
        Records=[{"Data": b"x", "PartitionKey": f"apt-{i}"} for i in range(40)],
    )
    shards = {r["ShardId"] for r in response["Records"]}
    sequences = [r["SequenceNumber"] for r in response["Records"]]
    assert len(shards) == 2
    assert len(set(sequences)) == len(sequences)


def test_queries_read_only_their_partition_in_key_order(server: tuple[str, Path]) -> None:
    endpoint, ca = server
    dynamodb = client("dynamodb", endpoint, ca)
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName="series",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for device in ("apt-1", "apt-2"):
        for i in (3, 1, 2, 5, 4):
            dynamodb.put_item(  # type: ignore[attr-defined]
                TableName="series",
                Item={"pk": {"S": device}, "sk": {"S": f"I#{i}"}, "n": {"N": str(i)}},
            )
        dynamodb.put_item(TableName="series", Item={"pk": {"S": device}, "sk": {"S": "LATEST"}})  # type: ignore[attr-defined]
    newest = dynamodb.query(  # type: ignore[attr-defined]
        TableName="series",
        KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
        ExpressionAttributeValues={":pk": {"S": "apt-2"}, ":lo": {"S": "I#"}, ":hi": {"S": "I#4"}},
        ScanIndexForward=False,
        Limit=2,
    )
    assert [item["sk"]["S"] for item in newest["Items"]] == ["I#4", "I#3"]
    everything = dynamodb.query(  # type: ignore[attr-defined]
        TableName="series",
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": "apt-1"}, ":p": {"S": "I#"}},
    )
    assert [item["n"]["N"] for item in everything["Items"]] == ["1", "2", "3", "4", "5"]
    assert {item["pk"]["S"] for item in everything["Items"]} == {"apt-1"}
