"""Mosquitto on loopback with mutual TLS and per-device ACLs mirroring the IoT policy.

AWS IoT lets a certificate connect as its own thing and publish only to
`energy/consumption/${iot:Connection.Thing.ThingName}`. Locally the certificate's common
name becomes the MQTT username (`use_identity_as_username`) and an ACL pattern grants
write access to `energy/consumption/%u` only. The username also replaces whatever client
id the client asked for (`use_username_as_clientid`), so a certificate cannot take over
(disconnect) another meter's session by asking for its client id. IoT refuses such a
CONNECT outright (`iot:Connect` is allowed on `client/${iot:Connection.Thing.ThingName}`
only); mosquitto accepts it under the certificate's own name: no takeover either way, but
a client sees a refusal on AWS and a connection here. The topic-rule bridge is the one
client allowed to read every device topic.

Sessions outlive the broker, as IoT Core's persistent sessions outlive a reconnect: with
`persistence true` a stopped broker (SIGTERM) writes its sessions, subscriptions and the
QoS 1 messages still queued for the bridge to disk, and reads them back when it starts
again on the same port (`restart`).
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from energy_runtime import contract

from devkit.emulators.pki import CertFiles, CertificateAuthority
from devkit.runner import processes

TOPIC_PREFIX = f"{contract.TOPIC_ROOT}/"
RULE_CLIENT_NAME = "local-topic-rule"


@dataclass(frozen=True)
class Broker:
    port: int
    ca: Path
    process: subprocess.Popen[bytes]
    config: Path

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def stop(self) -> None:
        processes.stop(self.process)

    def restart(self, *, down_s: float = 0.0) -> Broker:
        """Stop (sessions saved), stay down for `down_s`, start on the same port again."""
        self.stop()
        time.sleep(down_s)
        child = _spawn(self.config)
        processes.wait_for_port(self.port, timeout=10, process=child)
        return Broker(port=self.port, ca=self.ca, process=child, config=self.config)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not found:
        raise RuntimeError(
            "mosquitto is not installed: run `make setup` (Debian package mosquitto)"
        )
    return found


def write_config(directory: Path, *, port: int, server: CertFiles) -> Path:
    acl = directory / "acl"
    acl.write_text(
        "# Devices publish to their own topic only (the IoT policy's ThingName variable).\n"
        f"pattern write {TOPIC_PREFIX}%u\n"
        "# The topic-rule bridge reads every device topic and publishes nothing.\n"
        f"user {RULE_CLIENT_NAME}\n"
        f"topic read {TOPIC_PREFIX}+\n"
    )
    config = directory / "mosquitto.conf"
    config.write_text(
        "\n".join(
            [
                # Started by an unprivileged user it cannot switch; started by root it
                # would drop to `mosquitto`, who cannot read the run directory's keys.
                f"user {getpass.getuser()}",
                # Written when the broker stops and read when it starts (see the docstring).
                "persistence true",
                f"persistence_location {directory}/",
                "log_dest stdout",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "connection_messages true",
                "allow_anonymous false",
                # The bridge may lag behind a burst: never drop its queued QoS 1 messages.
                "max_queued_messages 0",
                "max_queued_bytes 0",
                f"acl_file {acl}",
                f"listener {port} 127.0.0.1",
                f"cafile {server.ca}",
                f"certfile {server.cert}",
                f"keyfile {server.key}",
                "require_certificate true",
                "use_identity_as_username true",
                # A certificate connects as its own thing, whatever client id it sends.
                "use_username_as_clientid true",
                "tls_version tlsv1.2",
                "",
            ]
        )
    )
    return config


def _spawn(config: Path) -> subprocess.Popen[bytes]:
    return processes.spawn(
        [mosquitto_binary(), "-c", str(config)], log=config.parent / "mosquitto.log"
    )


def start_broker(directory: Path, ca: CertificateAuthority, *, attempts: int = 5) -> Broker:
    """Start mosquitto on a free loopback port; retries if the port was taken meanwhile."""
    directory.mkdir(parents=True, exist_ok=True)
    server = ca.issue_server("broker")
    last_error: Exception | None = None
    for _ in range(attempts):
        port = processes.free_loopback_port()
        config = write_config(directory, port=port, server=server)
        child = _spawn(config)
        try:
            processes.wait_for_port(port, timeout=10, process=child)
        except (RuntimeError, TimeoutError) as error:
            last_error = error
            processes.stop(child)
            continue
        return Broker(port=port, ca=ca.ca_path, process=child, config=config)
    log = (directory / "mosquitto.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"mosquitto did not start: {last_error}\n{log}")
