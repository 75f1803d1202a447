"""The local topic rule evaluates the deployed rule's SQL and refuses what it cannot."""

from __future__ import annotations

import base64

import pytest

from devkit.emulators.topic_rule import parse_rule

CONTRACT_SQL = (
    "SELECT encode(*, 'base64') AS payload, topic(3) AS device_id, timestamp() AS received_at "
    "FROM 'energy/consumption/+'"
)


def test_the_contract_rule_is_applied_as_iot_core_would() -> None:
    rule = parse_rule(CONTRACT_SQL, "${topic(3)}")
    payload = b'{"ts": 1, "energy_wh": 2, "power_w": 3, "device": "someone-else"}'
    record = rule.transform("energy/consumption/apt-0007", payload, 1_700_000_000_123)
    assert record == {
        "payload": base64.b64encode(payload).decode(),
        "device_id": "apt-0007",
        "received_at": 1_700_000_000_123,
    }
    assert rule.topic_filter == "energy/consumption/+"
    assert rule.partition_key("energy/consumption/apt-0007") == "apt-0007"


def test_malformed_payloads_pass_through_untouched() -> None:
    rule = parse_rule(CONTRACT_SQL, "${topic(3)}")
    garbage = b"\x00\xff{not json"
    record = rule.transform("energy/consumption/apt-1", garbage, 5)
    assert base64.b64decode(record["payload"]) == garbage


@pytest.mark.parametrize(
    ("sql", "key", "message"),
    [
        ("SELECT * FROM 'energy/consumption/+'", "${topic(3)}", "AS name"),
        (
            "SELECT upper(topic(3)) AS d FROM 'energy/consumption/+'",
            "${topic(3)}",
            "does not implement",
        ),
        ("DELETE FROM 'x'", "${topic(3)}", "unsupported topic rule SQL"),
        (CONTRACT_SQL, "${newuuid()}", "unsupported partition key"),
    ],
)
def test_anything_else_is_refused_by_name(sql: str, key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(sql, key)
