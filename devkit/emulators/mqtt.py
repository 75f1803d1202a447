"""paho-mqtt clients over mutual TLS, for the local broker and for AWS IoT Core alike."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


class ConnectionRefused(RuntimeError):
    pass


def tls_client(
    client_id: str,
    *,
    cert: Path,
    key: Path,
    ca: Path,
    protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTProtocolVersion.MQTTv5,
    server_hostname_check: bool = True,
) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    context.check_hostname = server_hostname_check
    client.tls_set_context(context)
    # Bounded in-memory queue: publish() blocks the caller rather than growing forever.
    client.max_inflight_messages_set(100)
    return client


def connect(client: mqtt.Client, host: str, port: int, *, timeout: float = 10.0) -> None:
    """Connect and start the network loop; raise ConnectionRefused if the broker says no."""
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: Properties | None
    ) -> None:
        result["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=60)
    except (OSError, ssl.SSLError) as error:
        raise ConnectionRefused(f"TLS/TCP connection to {host}:{port} failed: {error}") from error
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise ConnectionRefused(f"no CONNACK from {host}:{port} within {timeout}s")
    reason = result["reason"]
    if isinstance(reason, ReasonCode) and reason.is_failure:
        client.loop_stop()
        raise ConnectionRefused(f"broker refused the connection: {reason}")
