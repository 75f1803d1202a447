"""paho-mqtt clients over mutual TLS, for the local broker and for AWS IoT Core alike.

Every client keeps a persistent session (no clean start, MQTT 5 session expiry an hour as
IoT Core's default) and reconnects on its own when the connection drops: a reconnect
resumes the session, so the broker delivers what it queued for the client meanwhile and
the client resends its QoS 1 messages that were not acknowledged.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

SESSION_EXPIRY_S = 3600  # AWS IoT Core's default persistent-session expiry
RECONNECT_DELAY_S = (1, 2)  # seconds to the first retry, then doubling up to the second


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
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        # MQTT 3.1.1's persistent session; MQTT 5 asks for one when it connects.
        clean_session=None if protocol == mqtt.MQTTProtocolVersion.MQTTv5 else False,
    )
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    context.check_hostname = server_hostname_check
    client.tls_set_context(context)
    # At most 100 unacknowledged messages on the wire; the rest wait in the client.
    client.max_inflight_messages_set(100)
    client.reconnect_delay_set(*RECONNECT_DELAY_S)
    return client


def connect(
    client: mqtt.Client,
    host: str,
    port: int,
    *,
    timeout: float = 10.0,
    on_every_connect: Callable[[], None] | None = None,
) -> None:
    """Connect and start the network loop (which reconnects by itself); raise
    ConnectionRefused if the first connection fails. `on_every_connect` runs in the network
    thread after each accepted CONNECT, the first one and every reconnect."""
    done = threading.Event()
    result: dict[str, object] = {}

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: Properties | None
    ) -> None:
        if not done.is_set():
            result["reason"] = reason
            done.set()
        if on_every_connect is not None and not reason.is_failure:
            on_every_connect()

    client.on_connect = on_connect
    try:
        if client.protocol == mqtt.MQTTProtocolVersion.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            # Never a clean start, as IoT Core's persistent sessions: mosquitto 2.0 writes
            # to disk only the sessions of clients that connected without one (session
            # expiry alone keeps a session in memory, not over a restart).
            client.connect(host, port, keepalive=60, properties=properties, clean_start=False)
        else:  # MQTT 3.1.1: tls_client asked for clean_session=False
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
