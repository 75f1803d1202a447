"""DynamoDB write units of a request, from item sizes as DynamoDB documents them.

moto does not meter capacity, so the demo's moto server (`devkit.emulators.aws_api`, on the
JSON wire body) and the benchmark (`tools/bench.py`, on botocore's parameters before
serialization) both count with this one module; the two forms differ only in how binary
travels (raw bytes vs base64 text), and both are accepted.

Item size, as "DynamoDB item sizes and formats" documents it
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
each attribute's name in UTF-8 bytes plus its value:
- S: UTF-8 bytes; B: raw bytes;
- N: 1 byte per two significant digits, plus 1 (sign, decimal point, exponent and leading
  and trailing zeros are not significant: "1000", "1E+3" and "1.0E3" are the same size);
- BOOL, NULL: 1; SS, NS, BS: the sum of their elements;
- L, M: 3, plus each element and 1 byte per element (a map's element includes its name).

Write units: PutItem ceil(size / 1 KB), at least 1; UpdateItem the same over its key and
new values; DeleteItem 1; BatchWriteItem per put (1 per delete); TransactWriteItems twice
each Put, Update and Delete (a ConditionCheck reads: it writes nothing).

The figures are a lower bound wherever a write replaces or removes an item: DynamoDB
bills an overwrite or an update by the larger of the item before and after, and a delete
by the deleted item, and a request does not show the stored item.
"""

from __future__ import annotations

import base64
import decimal
import math
from collections.abc import Mapping
from typing import Any

WRITE_ACTIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
# Container overhead: 3 bytes per list or map, 1 byte per element in it.
_CONTAINER_BYTES = 3
_ELEMENT_BYTES = 1
# TransactWriteItems members and the single-item action each one bills as.
_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}


def number_size(text: str) -> int:
    """Bytes of an N value: ceil(significant digits / 2) + 1."""
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation as error:
        raise ValueError(f"not a DynamoDB number: {text!r}") from error
    if not number.is_finite():
        raise ValueError(f"not a DynamoDB number: {text!r}")
    # The digit tuple has no sign, point or exponent; zeros at either end are not significant.
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    return math.ceil(len(digits) / 2) + 1


def binary_size(raw: bytes | bytearray | memoryview | str) -> int:
    """Bytes of a B value: raw bytes as botocore takes them, or base64 text as on the wire."""
    if isinstance(raw, str):
        return len(base64.b64decode(raw, validate=True))
    return len(raw)


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's typed form ({"S": ...}, {"M": {...}}...)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return binary_size(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(element.encode()) for element in raw)
    if kind == "NS":
        return sum(number_size(element) for element in raw)
    if kind == "BS":
        return sum(binary_size(element) for element in raw)
    if kind == "L":
        return _CONTAINER_BYTES + sum(value_size(v) + _ELEMENT_BYTES for v in raw)
    if kind == "M":
        return _CONTAINER_BYTES + item_size(raw) + _ELEMENT_BYTES * len(raw)
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of an item: every attribute's name (UTF-8) plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def units(size: int) -> int:
    """Write units for writing `size` bytes: one per started KB, at least one."""
    return max(1, math.ceil(size / 1024))


def write_units(action: str, params: Mapping[str, Any]) -> int:
    """Write units a DynamoDB request consumes (0 for a request that writes nothing)."""
    if action == "PutItem":
        return units(item_size(params.get("Item", {})))
    if action == "UpdateItem":
        values = params.get("ExpressionAttributeValues", {})
        return units(item_size(params.get("Key", {})) + item_size(values))
    if action == "DeleteItem":
        return 1
    if action == "BatchWriteItem":
        total = 0
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                put = request.get("PutRequest")
                total += units(item_size(put["Item"])) if put else 1
        return total
    if action == "TransactWriteItems":
        total = 0
        for member in params.get("TransactItems", []):
            ((kind, request),) = member.items()
            if kind in _TRANSACT_ACTIONS:
                total += 2 * write_units(_TRANSACT_ACTIONS[kind], request)
        return total
    return 0
