"""Where meter certificates come from: AWS IoT (a created key or the meter's CSR), the
local CA, and Amazon Root CA 1 from the certifi bundle."""

from __future__ import annotations

from pathlib import Path

import boto3
import certifi
import pytest
from botocore.stub import Stubber
from conftest import Server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devkit.emulators.pki import CertificateAuthority
from energy_cli.errors import CliError
from energy_cli.fleet.certificates import AwsIotIssuer, LocalCaIssuer, amazon_root_ca


def csr_for(thing: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whatever-it-asks")]))
        .sign(key, hashes.SHA256())
    )
    return key, request.public_bytes(serialization.Encoding.PEM)


def test_a_csr_is_signed_by_iot_as_aws_documents_the_call(tmp_path: Path) -> None:
    # moto signs a CSR over a key of its own and stores the certificate inactive, so the
    # call is checked against AWS's documented request and response instead: botocore
    # validates the parameters against the IoT model; the response is the documented one.
    _key, csr = csr_for("apt-1")
    path = tmp_path / "apt-1.csr"
    path.write_bytes(csr)
    iot = boto3.client(
        "iot", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    certificate_id = "a" * 64
    arn = f"arn:aws:iot:eu-central-1:123456789012:cert/{certificate_id}"
    with Stubber(iot) as stub:
        stub.add_response(
            "create_certificate_from_csr",
            {"certificateArn": arn, "certificateId": certificate_id, "certificatePem": "PEM"},
            {"certificateSigningRequest": csr.decode(), "setAsActive": True},
        )
        issued = AwsIotIssuer(iot).issue("apt-1", path)
        stub.assert_no_pending_responses()
    assert (issued.arn, issued.certificate_id, issued.pem) == (arn, certificate_id, "PEM")
    assert issued.private_key_pem is None  # the key stayed on the meter


def test_iot_creates_the_key_pair_when_there_is_no_csr() -> None:
    iot = boto3.client(
        "iot", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(iot) as stub:
        stub.add_response(
            "create_keys_and_certificate",
            {
                "certificateArn": "arn:aws:iot:eu-central-1:123456789012:cert/" + "b" * 64,
                "certificateId": "b" * 64,
                "certificatePem": "PEM",
                "keyPair": {"PublicKey": "PUB", "PrivateKey": "KEY"},
            },
            {"setAsActive": True},
        )
        issued = AwsIotIssuer(iot).issue("apt-1", None)
    assert issued.private_key_pem == "KEY"


def test_the_local_ca_signs_a_csr_for_the_thing_name(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "pki")
    key, csr = csr_for("apt-1")
    certificate = x509.load_pem_x509_certificate(ca.sign_request(csr, "apt-1"))
    # The broker reads the thing from the common name, whatever the CSR asked for.
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "apt-1"
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    issuer = x509.load_pem_x509_certificate(ca.ca_path.read_bytes())
    certificate.verify_directly_issued_by(issuer)
    reloaded = CertificateAuthority.load(tmp_path / "pki")  # as `devices register` does
    x509.load_pem_x509_certificate(reloaded.sign_request(csr, "apt-2")).verify_directly_issued_by(
        issuer
    )


def test_a_tampered_csr_is_refused(aws: Server, tmp_path: Path) -> None:
    _key, csr = csr_for("apt-1")
    request = x509.load_pem_x509_csr(csr)
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the signature's last byte
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    path = tmp_path / "bad.csr"
    path.write_bytes(tampered)
    ca = CertificateAuthority(tmp_path / "pki")
    with pytest.raises(ValueError, match="signature"):
        ca.sign_request(tampered, "apt-1")

    iot = aws.client("iot")
    before = iot.list_certificates()["certificates"]
    with pytest.raises(CliError, match=r"bad\.csr"):
        LocalCaIssuer(iot, tmp_path / "pki").issue("apt-1", path)
    assert iot.list_certificates()["certificates"] == before  # nothing reached IoT


def test_amazon_root_ca_1_comes_from_the_certifi_bundle() -> None:
    pem = amazon_root_ca()
    root = x509.load_pem_x509_certificate(pem.encode())
    assert root.subject == root.issuer  # a root
    assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Amazon Root CA 1"
    assert pem.strip() in Path(certifi.where()).read_text()
