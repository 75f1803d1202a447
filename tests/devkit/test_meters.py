"""The meter simulator's messages and the ground truth the demo verifies against."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from energy_runtime import contract
from energy_runtime.aggregate import LOOKBACK
from energy_runtime.contract import QuarantineReason
from energy_runtime.readings import Decoded, decode_record
from energy_runtime.settings import ReadingRules

from devkit.emulators import firehose
from devkit.emulators.broker import RULE_CLIENT_NAME, start_broker
from devkit.emulators.mqtt import connect, tls_client
from devkit.emulators.pki import CertificateAuthority
from devkit.runner.processes import wait_until
from devkit.simulator.meters import Faults, Message, MqttPublisher, Scenario, Simulation, main
from energy_monitoring.costs import model

START = 1_794_700_800  # a Monday, 00:00 UTC


def simulate(**settings: object) -> tuple[Simulation, list]:
    scenario = Scenario(start_epoch_s=START, **settings)  # type: ignore[arg-type]
    simulation = Simulation(scenario)
    return simulation, list(simulation.messages())


def readings_of(payload: bytes) -> list[dict]:
    body = json.loads(payload)
    readings: list[dict] = body.get("readings", [body])
    return readings


def test_a_clean_run_publishes_every_reading_once_in_order() -> None:
    faults = Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0)
    simulation, messages = simulate(apartments=3, days=0.25, readings_per_message=6, faults=faults)
    per_device: dict[str, list[dict]] = {}
    for message in messages:
        per_device.setdefault(message.device_id, []).extend(readings_of(message.text))
    steps = 0.25 * 86_400 / 10 + 1
    for device, readings in per_device.items():
        assert len(readings) == steps == simulation.truth[device].readings
        times = [r["ts"] for r in readings]
        assert times == sorted(times) and len(set(times)) == len(times)
        registers = [r["energy_wh"] for r in readings]
        assert registers == sorted(registers)  # a cumulative register never goes back
        truth = simulation.truth[device]
        assert truth.expected_energy_wh == pytest.approx(registers[-1] - registers[0], abs=1e-6)
        assert truth.physical_energy_wh == truth.expected_energy_wh


def test_load_profiles_look_like_apartments() -> None:
    faults = Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0)
    simulation, _ = simulate(apartments=20, days=1, readings_per_message=30, faults=faults)
    daily_kwh = [t.expected_energy_wh / 1000 for t in simulation.truth.values()]
    assert min(daily_kwh) > 3 and max(daily_kwh) < 80
    profile = next(p for p in simulation.profiles.values() if not p.heavy_user)
    night = sum(profile.power_w(h * 3600 + 1800) for h in (2, 3, 4)) / 3
    evening = sum(profile.power_w(h * 3600 + 1800) for h in (19, 20, 21)) / 3
    assert evening > night


def test_faults_are_injected_and_accounted_for() -> None:
    faults = Faults(
        duplicate_rate=0.05, late_rate=0.05, reset_rate=10.0, garbage_rate=0.05, late_delay_s=1800
    )
    simulation, messages = simulate(apartments=4, days=0.5, readings_per_message=3, faults=faults)
    kinds = Counter(m.kind for m in messages)
    truth = simulation.truth.values()
    assert kinds["duplicate"] > 0 and kinds["late"] > 0
    garbage = sum(
        kinds[k]
        for k in ("not-json", "missing-field", "wrong-type", "negative-register", "cut-gzip")
    )
    assert garbage == sum(t.garbage_messages for t in truth) > 0
    assert sum(m.readings for m in messages if m.kind == "duplicate") == sum(
        t.duplicate_readings for t in truth
    )
    # Late messages are published after readings that were taken later than theirs.
    late = [m for m in messages if m.kind == "late"]
    assert all(m.publish_at >= m.last_ts + 1800 for m in late)
    # A meter swap costs the first LOOKBACK readings of the new meter, nothing else.
    swapped = [t for t in truth if t.resets]
    assert swapped
    for t in swapped:
        assert t.expected_energy_wh < t.physical_energy_wh
    assert LOOKBACK >= 1


@pytest.mark.parametrize("per_message", [6, 30, 90])
def test_gzip_messages_weigh_what_the_cost_model_says(per_message: int) -> None:
    """The model prices IoT 5 KB steps, Kinesis payload units and Firehose's 5 KB rounding
    from these sizes, so they are held to what the simulator really sends."""
    faults = Faults(duplicate_rate=0, late_rate=0, reset_rate=0, garbage_rate=0)
    _, messages = simulate(apartments=4, days=1, readings_per_message=per_message,
                           payload_encoding="gzip", faults=faults)  # fmt: skip
    full = [m for m in messages if m.readings == per_message]
    assert full and all(m.payload[:2] == contract.GZIP_MAGIC for m in full)
    measured = sum(len(m.payload) for m in full) / len(full)
    fleet = model.Fleet(apartments=1, reading_interval_s=10, readings_per_message=per_message)
    assert measured == pytest.approx(fleet.message_bytes, rel=0.10)
    plain = model.Fleet(apartments=1, reading_interval_s=10, readings_per_message=per_message,
                        payload_encoding="json")  # fmt: skip
    assert sum(len(m.text) for m in full) / len(full) == pytest.approx(
        plain.message_bytes, rel=0.10
    )
    # raw/ as Firehose writes it (the payload as base64, Parquet with snappy), both ways
    for fleet_, payloads in ((fleet, [m.payload for m in full]), (plain, [m.text for m in full])):
        rows = [
            {"device_id": m.device_id, "received_at": int(m.publish_at * 1000),
             "payload": base64.b64encode(payload).decode()}
            for m, payload in zip(full, payloads, strict=True)
        ]  # fmt: skip
        measured = len(firehose.to_parquet(rows)) / (len(full) * per_message)
        assert measured == pytest.approx(fleet_.raw_parquet_bytes_per_reading, rel=0.10)


def test_gzip_and_json_fleets_send_the_same_readings() -> None:
    faults = Faults(duplicate_rate=0.05, late_rate=0.05, reset_rate=0, garbage_rate=0.05)
    _, packed = simulate(apartments=3, days=0.05, payload_encoding="gzip", faults=faults)
    _, plain = simulate(apartments=3, days=0.05, payload_encoding="json", faults=faults)
    assert [(m.device_id, m.kind, m.text) for m in packed if m.last_ts] == [
        (m.device_id, m.kind, m.payload) for m in plain if m.last_ts
    ]
    cut = [m for m in packed if m.kind == "cut-gzip"]
    out = Decoded(now_ms=START * 1000)
    for i, message in enumerate(cut):
        envelope = {"payload": base64.b64encode(message.payload).decode(),
                    "device_id": message.device_id, "received_at": START * 1000}  # fmt: skip
        data = base64.b64encode(json.dumps(envelope).encode()).decode()
        record = {"kinesis": {"partitionKey": message.device_id, "sequenceNumber": str(i),
                              "data": data, "approximateArrivalTimestamp": START}}  # fmt: skip
        decode_record(record, 131_072, ReadingRules(), out)
    assert [r.reason for r in out.rejected] == [QuarantineReason.BAD_COMPRESSION] * len(cut)


def test_same_seed_same_scenario() -> None:
    _, first = simulate(apartments=2, days=0.05, seed=3)
    _, second = simulate(apartments=2, days=0.05, seed=3)
    assert [m.payload for m in first] == [m.payload for m in second]


@pytest.mark.parametrize(
    "setting", [{"apartments": 0}, {"interval_s": 0}, {"speed": 0}, {"days": -1}]
)
def test_bad_scenario_settings_are_named(setting: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(setting))):
        Scenario(**setting)  # type: ignore[arg-type]


def test_bad_fault_rates_are_named() -> None:
    with pytest.raises(ValueError, match="garbage_rate"):
        Faults(garbage_rate=2)


def test_the_command_line_publishes_to_a_broker_over_mutual_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    broker = start_broker(tmp_path / "broker", ca)
    try:
        for device in ("apt-0001", "apt-0002"):
            ca.issue_client(device)
        rule = ca.issue_client(RULE_CLIENT_NAME)
        received: list[str] = []
        subscribed = threading.Event()
        subscriber = tls_client("rule", cert=rule.cert, key=rule.key, ca=rule.ca)
        subscriber.on_message = lambda _c, _u, m: received.append(m.topic)
        subscriber.on_subscribe = lambda *_a: subscribed.set()
        connect(subscriber, broker.host, broker.port)
        subscriber.subscribe("energy/consumption/+", qos=1)
        assert subscribed.wait(5)
        scenario = ["--apartments", "2", "--days", "0.01", "--speed", "2000"]
        main([*scenario, "--port", str(broker.port), "--pki", str(tmp_path / "pki")])
        sent = json.loads(capsys.readouterr().out)
        for _ in range(50):
            if len(received) >= sent["messages"]:
                break
            threading.Event().wait(0.1)
        assert len(received) == sent["messages"] > 0
        assert set(received) == {"energy/consumption/apt-0001", "energy/consumption/apt-0002"}
        subscriber.disconnect()
        subscriber.loop_stop()
    finally:
        broker.stop()


def test_a_disconnected_meter_buffers_its_readings_and_drops_the_oldest_beyond_the_buffer(
    tmp_path: Path,
) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    broker = start_broker(tmp_path / "broker", ca)
    device = "apt-0001"
    files = {name: ca.issue_client(name) for name in (device, RULE_CLIENT_NAME)}
    received: list[bytes] = []
    rule = tls_client("rule", cert=files[RULE_CLIENT_NAME].cert,
                      key=files[RULE_CLIENT_NAME].key, ca=ca.ca_path)  # fmt: skip
    rule.on_message = lambda _c, _u, m: received.append(m.payload)
    subscribed = threading.Event()
    rule.on_subscribe = lambda *_a: subscribed.set()
    publisher = MqttPublisher(
        broker.host, broker.port, lambda _d: (files[device].cert, files[device].key, ca.ca_path),
        buffer_readings=3,
    )  # fmt: skip

    def message(n: int) -> Message:
        return Message(n, device, b"%d" % n, 1, n, "readings")

    try:
        connect(rule, broker.host, broker.port)
        rule.subscribe("energy/consumption/+", qos=1)
        assert subscribed.wait(5)
        publisher.connect(device)
        publisher.publish(message(0))
        broker.stop()
        client = publisher.clients[device]
        wait_until(lambda: not client.is_connected(), timeout=10)
        for n in range(1, 8):  # readings taken while the broker is down
            publisher.publish(message(n))
        assert [m.payload for m in publisher.dropped] == [b"1", b"2", b"3", b"4"]
        assert publisher.dropped_readings == 4
        assert publisher.buffered_peak_readings == 3
        broker = broker.restart()
        assert wait_until(client.is_connected, timeout=10), "the meter did not reconnect by itself"
        publisher.publish(message(8))  # after the buffered ones, which go first
        publisher.close()  # waits for every PUBACK
        assert publisher.reconnects == 1
        wait_until(lambda: len(set(received)) >= 5, timeout=10)
        # Nothing but the dropped ones is missing, in the order taken (the session may
        # deliver the message in flight at the restart twice: QoS 1).
        assert list(dict.fromkeys(received)) == [b"0", b"5", b"6", b"7", b"8"]
    finally:
        rule.disconnect()
        rule.loop_stop()
        broker.stop()
