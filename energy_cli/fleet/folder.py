"""One folder per meter: what goes onto the device.

    <out>/<thing>/certificate.pem   the meter's certificate
    <out>/<thing>/private.key       its key, mode 0600 (only when IoT created the key)
    <out>/<thing>/AmazonRootCA1.pem the server CA to trust (LocalRootCA.pem locally)
    <out>/<thing>/endpoint.txt      the MQTT host (`DescribeEndpoint`, iot:Data-ATS)
    <out>/<thing>/config.json       thing name, client id, topic(s), endpoint, file names

Files are written whole or not at all (a temporary file, then a rename), the key is
created 0600 from the start, and a rotation keeps the previous pair in `retired/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from energy_cli.errors import CliError

CONFIG_FILE = "config.json"
CERTIFICATE_FILE = "certificate.pem"
PRIVATE_KEY_FILE = "private.key"
ENDPOINT_FILE = "endpoint.txt"
RETIRED_DIR = "retired"
PENDING_DIR = "pending"
MQTT_TLS_PORT = 8883


@dataclass(frozen=True)
class DeviceConfig:
    environment: str
    thing_name: str
    client_id: str  # the IoT policy allows a meter to connect as its thing name only
    topic: str
    basic_ingest_topic: str | None
    endpoint: str
    port: int
    root_ca: str
    certificate: str
    private_key: str | None
    certificate_id: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _write(path: Path, text: str, *, mode: int = 0o644) -> bool:
    """Write atomically; False if the file already held exactly this.

    The temporary file is created fresh (never through a link someone planted) with its
    final mode before a byte is written, so a key is never readable by others, not even
    for a moment."""
    with contextlib.suppress(OSError):
        if path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
            return False
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(descriptor, mode)  # the umask may have narrowed it
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return True


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)  # an existing folder too: it holds a key
    except OSError as error:
        raise CliError(f"cannot create {path}: {error}") from None


def write(
    folder: Path,
    *,
    config: DeviceConfig,
    certificate_pem: str,
    private_key_pem: str | None,
    root_ca_pem: str,
) -> bool:
    """The meter's folder; True if anything in it changed."""
    _private_dir(folder)
    changed = False
    if private_key_pem is not None:
        changed |= _write(folder / PRIVATE_KEY_FILE, private_key_pem, mode=0o600)
    changed |= _write(folder / CERTIFICATE_FILE, certificate_pem)
    changed |= _write(folder / config.root_ca, root_ca_pem)
    changed |= _write(folder / ENDPOINT_FILE, config.endpoint + "\n")
    changed |= _write(folder / CONFIG_FILE, config.to_json())
    return changed


def retire(folder: Path) -> Path | None:
    """Move the current certificate (and key) to `retired/<id>-<time>/`, for a rotation."""
    current = read_config(folder)
    if current is None or not (folder / CERTIFICATE_FILE).exists():
        return None
    _private_dir(folder / RETIRED_DIR)
    target = folder / RETIRED_DIR / f"{current.certificate_id[:16]}-{int(time.time())}"
    _private_dir(target)
    for name in (CERTIFICATE_FILE, PRIVATE_KEY_FILE, CONFIG_FILE):
        if (folder / name).exists():
            shutil.move(folder / name, target / name)
    return target


def read_config(folder: Path) -> DeviceConfig | None:
    path = folder / CONFIG_FILE
    if not path.exists():
        return None
    try:
        raw: Any = json.loads(path.read_text())
        return DeviceConfig(**raw)
    except (OSError, ValueError, TypeError) as error:
        raise CliError(f"{path} is not a meter's config.json: {error}") from None


def stage(folder: Path, certificate_pem: str, private_key_pem: str | None) -> Path:
    """A new certificate and key kept in `<folder>/pending/` until they replace the current
    ones (a rotation writes them here first: IoT returns a created key only once)."""
    pending = folder / PENDING_DIR
    _private_dir(pending)
    _write(pending / CERTIFICATE_FILE, certificate_pem)
    if private_key_pem is not None:
        _write(pending / PRIVATE_KEY_FILE, private_key_pem, mode=0o600)
    return pending


def unstage(pending: Path) -> None:
    shutil.rmtree(pending, ignore_errors=True)


def _public_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def public_key(folder: Path) -> bytes | None:
    """The public half of the folder's private key (DER), or None without a key file."""
    from cryptography.hazmat.primitives import serialization

    path = folder / PRIVATE_KEY_FILE
    if not path.exists():
        return None
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise CliError(f"{path} is not a readable private key: {error}") from None
    return _public_der(key.public_key())


def certificate_key(certificate_pem: str) -> bytes | None:
    """The public key a PEM certificate certifies (DER), or None if it does not parse."""
    from cryptography import x509

    try:
        return _public_der(x509.load_pem_x509_certificate(certificate_pem.encode()).public_key())
    except ValueError:
        return None
