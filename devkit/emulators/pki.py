"""A throwaway certificate authority for the local broker and the moto server (trustme).

It plays the part of AWS IoT's certificate registry: one CA, a server certificate for
each service on loopback, and one client certificate per device whose common name is the
thing name (the broker maps the CN to the MQTT username, as IoT maps the certificate to
its thing). Keys are EC P-256, generated fresh per run and never leave the run directory.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import trustme

ORGANIZATION = "energy-monitoring local"
# Certificates outlive any run by far, and are thrown away with the run directory.
_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path
    ca: Path


class CertificateAuthority:
    """Issues server and device certificates under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name=ORGANIZATION, key_type=trustme.KeyType.ECDSA)
        self.ca_path = directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))

    def _issue(self, common_name: str, *identities: str) -> CertFiles:
        now = dt.datetime.now(dt.UTC)
        leaf = self._ca.issue_cert(
            *identities,
            common_name=common_name,
            organization_name=ORGANIZATION,
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + _VALIDITY,
            key_type=trustme.KeyType.ECDSA,
        )
        stem = self.directory / common_name
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        leaf.cert_chain_pems[0].write_to_path(str(cert_path))
        leaf.private_key_pem.write_to_path(str(key_path))
        key_path.chmod(0o600)
        return CertFiles(cert=cert_path, key=key_path, ca=self.ca_path)

    def issue_server(self, name: str = "broker") -> CertFiles:
        """A certificate for a service on loopback (the names clients check)."""
        return self._issue(name, "localhost", "127.0.0.1")

    def issue_client(self, thing_name: str) -> CertFiles:
        """A device's certificate: the thing name is its common name. (Its one identity
        is an e-mail-style name, which accepts any thing name; a DNS name would not.)"""
        if not thing_name or "/" in thing_name or "+" in thing_name or "#" in thing_name:
            raise ValueError(f"thing name {thing_name!r} is not a valid MQTT topic level")
        return self._issue(thing_name, f"{thing_name}@meters.invalid")
