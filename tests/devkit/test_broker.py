"""The local broker refuses what AWS IoT refuses: no certificate, a foreign CA, other topics,
another meter's client id."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devkit.emulators.broker import RULE_CLIENT_NAME, Broker, start_broker
from devkit.emulators.mqtt import ConnectionRefused, connect, tls_client
from devkit.emulators.pki import CertificateAuthority
from devkit.runner.processes import wait_until


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def broker(ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = start_broker(tmp_path_factory.mktemp("broker"), ca)
    yield running
    running.stop()


class Subscriber:
    def __init__(self, ca: CertificateAuthority, broker: Broker) -> None:
        files = ca.issue_client(RULE_CLIENT_NAME)
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = tls_client("rule-test", cert=files.cert, key=files.key, ca=files.ca)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        connect(self.client, broker.host, broker.port)
        self.client.subscribe("energy/consumption/+", qos=1)
        assert self.subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_and_get_reason(client: mqtt.Client, topic: str, payload: bytes) -> str:
    reasons: dict[int, str] = {}
    done = threading.Event()

    def on_publish(_c: object, _u: object, mid: int, reason: object, _p: object) -> None:
        reasons[mid] = str(reason)
        done.set()

    client.on_publish = on_publish
    info = client.publish(topic, payload, qos=1)
    assert done.wait(5), "no PUBACK"
    return reasons[info.mid]


def test_device_publishes_to_its_own_topic(ca: CertificateAuthority, broker: Broker) -> None:
    subscriber = Subscriber(ca, broker)
    files = ca.issue_client("apt-own")
    device = tls_client("apt-own", cert=files.cert, key=files.key, ca=files.ca)
    connect(device, broker.host, broker.port)
    try:
        reason = publish_and_get_reason(device, "energy/consumption/apt-own", b'{"ts":1}')
        assert reason == "Success"
        deadline = threading.Event()
        for _ in range(50):
            if subscriber.messages:
                break
            deadline.wait(0.05)
        assert subscriber.messages == [("energy/consumption/apt-own", b'{"ts":1}')]
    finally:
        device.disconnect()
        device.loop_stop()
        subscriber.close()


def test_publishing_to_another_devices_topic_is_refused(
    ca: CertificateAuthority, broker: Broker
) -> None:
    subscriber = Subscriber(ca, broker)
    files = ca.issue_client("apt-intruder")
    device = tls_client("apt-intruder", cert=files.cert, key=files.key, ca=files.ca)
    connect(device, broker.host, broker.port)
    try:
        reason = publish_and_get_reason(device, "energy/consumption/apt-victim", b"forged")
        assert reason == "Not authorized"
        # Something it may publish afterwards proves the forged one was dropped, not late.
        assert (
            publish_and_get_reason(device, "energy/consumption/apt-intruder", b"own") == "Success"
        )
        for _ in range(50):
            if subscriber.messages:
                break
            threading.Event().wait(0.05)
        assert subscriber.messages == [("energy/consumption/apt-intruder", b"own")]
    finally:
        device.disconnect()
        device.loop_stop()
        subscriber.close()


def test_a_device_does_not_receive_other_devices_readings(
    ca: CertificateAuthority, broker: Broker
) -> None:
    # Mosquitto grants the SUBSCRIBE and enforces `read` at delivery, so nothing arrives.
    rule = Subscriber(ca, broker)
    reader_files = ca.issue_client("apt-reader")
    reader = tls_client(
        "apt-reader", cert=reader_files.cert, key=reader_files.key, ca=reader_files.ca
    )
    received: list[str] = []
    subscribed = threading.Event()
    reader.on_message = lambda _c, _u, m: received.append(m.topic)
    reader.on_subscribe = lambda *_a: subscribed.set()
    sender_files = ca.issue_client("apt-sender")
    sender = tls_client(
        "apt-sender", cert=sender_files.cert, key=sender_files.key, ca=sender_files.ca
    )
    connect(reader, broker.host, broker.port)
    connect(sender, broker.host, broker.port)
    try:
        reader.subscribe("energy/consumption/+", qos=1)
        assert subscribed.wait(5)
        assert publish_and_get_reason(sender, "energy/consumption/apt-sender", b"x") == "Success"
        for _ in range(50):
            if rule.messages:
                break
            threading.Event().wait(0.05)
        threading.Event().wait(0.3)
        assert rule.messages == [("energy/consumption/apt-sender", b"x")]
        assert received == []
    finally:
        for client in (reader, sender):
            client.disconnect()
            client.loop_stop()
        rule.close()


def test_a_certificate_cannot_take_over_another_meters_client_id(
    ca: CertificateAuthority, broker: Broker
) -> None:
    # MQTT lets a new connection with a client id in use end the older session. IoT's
    # policy allows iot:Connect only as the certificate's own thing; locally the broker
    # replaces the client id a certificate asks for with the certificate's name.
    victim_files = ca.issue_client("apt-taken")
    victim = tls_client(
        "apt-taken", cert=victim_files.cert, key=victim_files.key, ca=victim_files.ca
    )
    disconnects: list[str] = []
    victim.on_disconnect = lambda _c, _u, _f, reason, _p: disconnects.append(str(reason))
    thief_files = ca.issue_client("apt-thief")
    thief = tls_client("apt-taken", cert=thief_files.cert, key=thief_files.key, ca=thief_files.ca)
    subscriber = Subscriber(ca, broker)
    connect(victim, broker.host, broker.port)
    try:
        connect(thief, broker.host, broker.port)
        threading.Event().wait(0.5)
        assert disconnects == []
        assert publish_and_get_reason(victim, "energy/consumption/apt-taken", b"v") == "Success"
        # Connected under the other meter's id, it still publishes as itself only.
        assert publish_and_get_reason(thief, "energy/consumption/apt-taken", b"t") == (
            "Not authorized"
        )
        assert disconnects == []
        for _ in range(50):
            if subscriber.messages:
                break
            threading.Event().wait(0.05)
        assert subscriber.messages == [("energy/consumption/apt-taken", b"v")]
    finally:
        for client in (thief, victim):
            client.disconnect()
            client.loop_stop()
        subscriber.close()


def test_client_without_certificate_is_refused(ca: CertificateAuthority, broker: Broker) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="apt-anonymous")
    context = ssl.create_default_context(cafile=str(ca.ca_path))
    client.tls_set_context(context)
    with pytest.raises(ConnectionRefused):
        connect(client, broker.host, broker.port, timeout=3)


def test_certificate_from_another_ca_is_refused(
    broker: Broker, ca: CertificateAuthority, tmp_path: Path
) -> None:
    rogue = CertificateAuthority(tmp_path / "rogue").issue_client("apt-own")
    client = tls_client("apt-own", cert=rogue.cert, key=rogue.key, ca=ca.ca_path)
    with pytest.raises(ConnectionRefused):
        connect(client, broker.host, broker.port, timeout=3)


def test_thing_names_that_are_not_one_topic_level_are_rejected(ca: CertificateAuthority) -> None:
    with pytest.raises(ValueError, match="topic level"):
        ca.issue_client("apt/+")


def test_messages_queued_for_a_persistent_session_survive_a_broker_restart(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    broker = start_broker(tmp_path / "broker", ca)
    try:
        rule = Subscriber(ca, broker)
        rule.client.disconnect()  # the session stays: it expires in an hour
        rule.client.loop_stop()
        files = ca.issue_client("apt-restart")
        device = tls_client("apt-restart", cert=files.cert, key=files.key, ca=files.ca)
        connect(device, broker.host, broker.port)
        for n in range(3):
            assert publish_and_get_reason(device, "energy/consumption/apt-restart", b"%d" % n) == (
                "Success"
            )
        broker = broker.restart()
        assert wait_until(device.is_connected, timeout=10), "the device did not reconnect by itself"
        rule.client.reconnect()  # a reconnect resumes the session (clean start: first only)
        rule.client.loop_start()
        assert wait_until(lambda: len(rule.messages) >= 3, timeout=10)
        assert [payload for _, payload in rule.messages] == [b"0", b"1", b"2"]
        device.disconnect()
        device.loop_stop()
        rule.close()
    finally:
        broker.stop()
