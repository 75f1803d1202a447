"""The typed boundary models agree with what the handlers accept and produce."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from energy_runtime.models import HandoffMessage, RuleRecord
from energy_runtime.readings import Decoded, Reason, decode_record
from energy_runtime.settings import ReadingRules
from pydantic import ValidationError
from runtime_fixtures import T0, Cloud, kinesis_record

PAYLOAD = base64.b64encode(json.dumps({"ts": T0, "energy_wh": 1, "power_w": 1}).encode()).decode()


@pytest.mark.parametrize(
    "envelope",
    [
        {"payload": PAYLOAD, "device_id": "apt-1", "received_at": (T0 + 1) * 1000},
        {"payload": PAYLOAD, "device_id": "apt/1", "received_at": (T0 + 1) * 1000},
        {"payload": PAYLOAD, "device_id": "", "received_at": (T0 + 1) * 1000},
        {"payload": PAYLOAD, "device_id": "apt-1", "received_at": "1795000001000"},
        {"payload": PAYLOAD, "received_at": (T0 + 1) * 1000},
        {"device_id": "apt-1", "received_at": (T0 + 1) * 1000},
    ],
)
def test_the_rule_record_model_and_the_fast_decoder_agree(envelope: dict[str, Any]) -> None:
    record = kinesis_record("apt-1", b"", (T0 + 1) * 1000, 1)
    record["kinesis"]["data"] = base64.b64encode(json.dumps(envelope).encode()).decode()
    out = Decoded()
    decode_record(record, 131_072, ReadingRules(), out)
    fast_ok = not any(r.reason == Reason.BAD_ENVELOPE for r in out.rejected)
    try:
        RuleRecord.model_validate(envelope)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert fast_ok == model_ok


def test_handoff_messages_match_their_model(cloud: Cloud) -> None:
    readings = [{"ts": T0 + 10 * i, "energy_wh": 10.0 + i, "power_w": 5.0} for i in range(12)]
    cloud.run_batching([kinesis_record("apt-1", {"readings": readings}, (T0 + 200) * 1000, 1)])
    [message] = cloud.drain_handoff()
    parsed = HandoffMessage.model_validate_json(message["body"])
    [device] = parsed.devices
    assert device.device_id == "apt-1"
    assert sum(i.reading_count for i in device.intervals) == 12
    assert device.latest.ts_ms == (T0 + 110) * 1000
