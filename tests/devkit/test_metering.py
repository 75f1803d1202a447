"""The one write-unit meter: item sizes as DynamoDB documents them, write units per request."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from devkit import metering
from devkit.metering import item_size, number_size, value_size, write_units


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_write_units_follow_the_1_kb_rule() -> None:
    small = {"pk": {"S": "apt-1"}, "sk": {"S": "LATEST"}}
    big = {**small, "blob": {"B": base64.b64encode(b"x" * 3000).decode()}}
    assert item_size(small) == len("pk") + 5 + len("sk") + 6
    assert write_units("PutItem", {"Item": small}) == 1
    assert write_units("PutItem", {"Item": big}) == 3
    batch = {
        "RequestItems": {"t": [{"PutRequest": {"Item": big}}, {"DeleteRequest": {"Key": small}}]}
    }
    assert write_units("BatchWriteItem", batch) == 4
    assert write_units("GetItem", {"Key": small}) == 0


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 1),  # no significant digit
        ("-0", 1),
        ("7", 2),
        ("-12.50", 3),  # 1, 2, 5: sign, point and the trailing zero do not count
        ("1E+3", 2),
        ("1000", 2),  # the same number as 1E+3, the same size
        ("1.0e3", 2),
        ("0.00123", 3),
        ("1000123.456", 6),  # a register reading: 10 digits
        ("123456789012345678901234567890", 16),  # 29 significant digits
    ],
)
def test_numbers_count_significant_digits(text: str, size: int) -> None:
    assert number_size(text) == size
    assert value_size({"N": text}) == size


@pytest.mark.parametrize("text", ["", "abc", "1..2", "NaN", "Infinity"])
def test_what_is_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        number_size(text)


def test_binary_is_raw_bytes_whether_given_as_bytes_or_as_base64() -> None:
    raw = bytes(range(256)) * 3
    assert value_size({"B": raw}) == 768
    assert value_size({"B": b64(raw)}) == 768
    assert value_size({"B": bytearray(b"abc")}) == 3
    assert value_size({"BS": [b"ab", b64(b"abc")]}) == 5
    with pytest.raises(ValueError):
        value_size({"B": "not base64!"})


def test_strings_count_utf8_bytes_in_names_and_values() -> None:
    assert item_size({"größe": {"S": "€"}}) == len("größe".encode()) + 3
    assert value_size({"SS": ["ab", "ü"]}) == 2 + 2
    assert value_size({"NS": ["1", "-12.50"]}) == 2 + 3
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1


def test_lists_and_maps_add_3_bytes_and_1_per_element() -> None:
    assert value_size({"L": []}) == value_size({"M": {}}) == 3
    inner = {"L": [{"N": "1"}, {"BOOL": False}]}
    assert value_size(inner) == 3 + (2 + 1) + (1 + 1)
    document = {"M": {"a": {"S": "xy"}, "b": inner}}
    assert value_size(document) == 3 + (1 + 2 + 1) + (1 + 8 + 1)
    nested = {"M": {"outer": {"M": {"deep": {"L": [document]}}}}}
    deep = 3 + (len("deep") + (3 + 17 + 1) + 1)
    assert value_size(nested) == 3 + (len("outer") + deep + 1)


def test_1024_bytes_is_one_unit_and_1025_two() -> None:
    def item(size: int) -> dict[str, Any]:
        return {"pk": {"S": "x" * (size - len("pk"))}}

    assert item_size(item(1024)) == 1024
    assert write_units("PutItem", {"Item": item(1024)}) == 1
    assert item_size(item(1025)) == 1025
    assert write_units("PutItem", {"Item": item(1025)}) == 2
    assert write_units("PutItem", {"Item": {}}) == 1  # at least one


def test_units_per_request_kind() -> None:
    key = {"pk": {"S": "apt-1"}, "sk": {"S": "LATEST"}}
    values = {":blob": {"B": b"y" * 1100}}
    assert write_units("UpdateItem", {"Key": key}) == 1
    assert write_units("UpdateItem", {"Key": key, "ExpressionAttributeValues": values}) == 2
    assert write_units("DeleteItem", {"Key": key}) == 1
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "t", "Item": {**key, "blob": {"B": b"z" * 2000}}}},
            {"Update": {"TableName": "t", "Key": key, "ExpressionAttributeValues": values}},
            {"Delete": {"TableName": "t", "Key": key}},
            {"ConditionCheck": {"TableName": "t", "Key": key}},  # a read: no write units
        ]
    }
    assert write_units("TransactWriteItems", transaction) == 2 * 2 + 2 * 2 + 2 * 1
    assert write_units("Query", {"KeyConditionExpression": "pk = :pk"}) == 0
    assert {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
    } == metering.WRITE_ACTIONS


def test_wire_form_and_botocore_form_weigh_the_same() -> None:
    """The demo meters the JSON body moto receives, the benchmark botocore's parameters."""
    points = bytes(range(200))
    botocore_form: dict[str, dict[str, Any]] = {
        "pk": {"S": "apt-00001"},
        "sk": {"S": "I#2026-11-22T10:15:00+00:00"},
        "points": {"B": points},
        "energy_wh": {"N": "12.345"},
        "tags": {"M": {"heavy": {"BOOL": True}, "seen": {"L": [{"N": "1"}, {"NULL": True}]}}},
    }
    wire_form = {**botocore_form, "points": {"B": b64(points)}}
    assert item_size(botocore_form) == item_size(wire_form)
    assert write_units("PutItem", {"Item": botocore_form}) == write_units(
        "PutItem", {"Item": wire_form}
    )


def test_the_demo_and_the_benchmark_count_with_this_module() -> None:
    from devkit.emulators import aws_api
    from tools import bench

    assert aws_api.write_units is metering.write_units
    assert bench.write_units is metering.write_units
