"""Where a meter's certificate comes from.

- AWS IoT creates the key pair (`CreateKeysAndCertificate`): the private key is returned
  once, and written to the meter's folder only.
- The meter brings a CSR (`CreateCertificateFromCsr`): IoT signs it, the key never leaves
  the meter, and the folder gets no private key.
- Against `local up`, the local CA signs (the thing name as common name, as the local
  broker expects) and the certificate is registered in IoT without a CA
  (`RegisterCertificateWithoutCA`), as one would with certificates from one's own CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from energy_cli.errors import CliError

AMAZON_ROOT_CA_LABEL = "Amazon Root CA 1"


@dataclass(frozen=True)
class IssuedCertificate:
    arn: str
    certificate_id: str
    pem: str
    private_key_pem: str | None  # None when the key stayed on the meter (CSR)


class Issuer(Protocol):
    root_ca_name: str

    def issue(self, thing: str, csr: Path | None) -> IssuedCertificate: ...

    def root_ca(self) -> str: ...


class AwsIotIssuer:
    root_ca_name = "AmazonRootCA1.pem"

    def __init__(self, iot: Any) -> None:
        self.iot = iot

    def issue(self, thing: str, csr: Path | None) -> IssuedCertificate:
        if csr is not None:
            return from_csr(self.iot, csr.read_text())
        created = self.iot.create_keys_and_certificate(setAsActive=True)
        return IssuedCertificate(
            arn=created["certificateArn"],
            certificate_id=created["certificateId"],
            pem=created["certificatePem"],
            private_key_pem=created["keyPair"]["PrivateKey"],
        )

    def root_ca(self) -> str:
        return amazon_root_ca()


def from_csr(iot: Any, csr_pem: str) -> IssuedCertificate:
    """IoT signs the meter's own request; the certificate is active at once."""
    created = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem, setAsActive=True)
    return IssuedCertificate(
        arn=created["certificateArn"],
        certificate_id=created["certificateId"],
        pem=created["certificatePem"],
        private_key_pem=None,
    )


class LocalCaIssuer:
    root_ca_name = "LocalRootCA.pem"

    def __init__(self, iot: Any, ca_directory: Path) -> None:
        from devkit.emulators.pki import CertificateAuthority

        self.iot = iot
        try:
            self.ca = CertificateAuthority.load(ca_directory)
        except FileNotFoundError:
            raise CliError(
                f"no local CA in {ca_directory}: is `energy-monitoring local up` running?"
            ) from None

    def issue(self, thing: str, csr: Path | None) -> IssuedCertificate:
        key: str | None
        if csr is not None:
            try:
                pem = self.ca.sign_request(csr.read_bytes(), thing).decode()
            except ValueError as error:
                raise CliError(f"CSR {csr}: {error}") from None
            key = None
        else:
            cert_pem, key_pem = self.ca.issue_device(thing)
            pem, key = cert_pem.decode(), key_pem.decode()
        registered = self.iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
        return IssuedCertificate(
            arn=registered["certificateArn"],
            certificate_id=registered["certificateId"],
            pem=pem,
            private_key_pem=key,
        )

    def root_ca(self) -> str:
        return self.ca.ca_path.read_text()


@cache
def amazon_root_ca() -> str:
    """Amazon Root CA 1 from the certifi bundle (it carries it: nothing to download)."""
    import certifi

    bundle = Path(certifi.where()).read_text()
    marker = f'# Label: "{AMAZON_ROOT_CA_LABEL}"'
    start = bundle.find(marker)
    if start < 0:
        raise CliError(f"the certifi bundle {certifi.where()} lacks {AMAZON_ROOT_CA_LABEL}")
    begin = bundle.index("-----BEGIN CERTIFICATE-----", start)
    end = bundle.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
    return bundle[begin:end] + "\n"
