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
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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

    def __init__(self, directory: Path, *, existing: trustme.CA | None = None) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "ca.pem"
        self._key_path = directory / "ca.key"
        if existing is None:
            self._ca = trustme.CA(organization_name=ORGANIZATION, key_type=trustme.KeyType.ECDSA)
            self._ca.cert_pem.write_to_path(str(self.ca_path))
            # Kept beside it so that other processes (the command line's `devices register`
            # against `local up`) can issue meters certificates the broker trusts.
            self._ca.private_key_pem.write_to_path(str(self._key_path))
            self._key_path.chmod(0o600)
        else:
            self._ca = existing

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """The CA a running local pipeline created in `directory`."""
        ca = trustme.CA.from_pem(
            (directory / "ca.pem").read_bytes(), (directory / "ca.key").read_bytes()
        )
        return cls(directory, existing=ca)

    def _leaf(self, common_name: str, *identities: str) -> trustme.LeafCert:
        now = dt.datetime.now(dt.UTC)
        return self._ca.issue_cert(
            *identities,
            common_name=common_name,
            organization_name=ORGANIZATION,
            not_before=now - dt.timedelta(minutes=5),
            not_after=now + _VALIDITY,
            key_type=trustme.KeyType.ECDSA,
        )

    def _issue(self, common_name: str, *identities: str) -> CertFiles:
        leaf = self._leaf(common_name, *identities)
        stem = self.directory / common_name
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        leaf.cert_chain_pems[0].write_to_path(str(cert_path))
        leaf.private_key_pem.write_to_path(str(key_path))
        key_path.chmod(0o600)
        return CertFiles(cert=cert_path, key=key_path, ca=self.ca_path)

    def issue_device(self, thing_name: str) -> tuple[bytes, bytes]:
        """A meter's certificate and private key (PEM), written nowhere: the command line
        puts them in the meter's own folder."""
        _check_topic_level(thing_name)
        leaf = self._leaf(thing_name, f"{thing_name}@meters.invalid")
        return leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()

    def sign_request(self, csr_pem: bytes, thing_name: str) -> bytes:
        """A certificate for the key in a meter's CSR, so that key never leaves the meter.
        The common name is the thing name whatever the CSR asked for: the local broker
        identifies a meter by it (AWS IoT keeps the CSR's subject and maps the certificate
        to the thing by attachment instead)."""
        _check_topic_level(thing_name)
        request = x509.load_pem_x509_csr(csr_pem)
        if not request.is_signature_valid:
            raise ValueError("the certificate signing request's signature does not verify")
        ca_cert = x509.load_pem_x509_certificate(self._ca.cert_pem.bytes())
        ca_key = serialization.load_pem_private_key(self._ca.private_key_pem.bytes(), None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError("the local CA's key is not an EC key")
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                        x509.NameAttribute(NameOID.COMMON_NAME, thing_name),
                    ]
                )
            )
            .issuer_name(ca_cert.subject)
            .public_key(request.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    def issue_server(self, name: str = "broker") -> CertFiles:
        """A certificate for a service on loopback (the names clients check)."""
        return self._issue(name, "localhost", "127.0.0.1")

    def issue_client(self, thing_name: str) -> CertFiles:
        """A device's certificate: the thing name is its common name. (Its one identity
        is an e-mail-style name, which accepts any thing name; a DNS name would not.)"""
        _check_topic_level(thing_name)
        return self._issue(thing_name, f"{thing_name}@meters.invalid")


def _check_topic_level(thing_name: str) -> None:
    if not thing_name or "/" in thing_name or "+" in thing_name or "#" in thing_name:
        raise ValueError(f"thing name {thing_name!r} is not a valid MQTT topic level")
