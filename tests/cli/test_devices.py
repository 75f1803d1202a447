"""`energy-monitoring devices` against the moto server: register, rotate, revoke, list."""

from __future__ import annotations

import base64
import json
import re
import stat
import time
from pathlib import Path
from typing import Any

from conftest import Deployed, Server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from energy_cli.fleet.certificates import amazon_root_ca
from energy_cli.fleet.registry import RETIRE_ATTRIBUTE_PREFIX


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["thing,building,apartment", *rows]) + "\n")
    return path


def register_csv(cli: Any, deployed: Deployed, csv: Path, out: Path) -> Any:
    return cli(
        "devices", "register", "--env", "dev", "--outputs", deployed.outputs,
        "--csv", csv, "--out", out, "--json",
    )  # fmt: skip


def certificate_ids(iot: Any) -> set[str]:
    return {c["certificateId"] for c in iot.list_certificates(pageSize=250)["certificates"]}


def attached(iot: Any, thing: str) -> list[dict[str, Any]]:
    principals = iot.list_thing_principals(thingName=thing)["principals"]
    return [
        iot.describe_certificate(certificateId=p.rsplit("/", 1)[1])["certificateDescription"]
        for p in principals
    ]


def test_registering_the_same_csv_twice_creates_nothing_the_second_time(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    iot = aws.client("iot")
    things = [deployed.thing(n) for n in (1, 2, 3)]
    csv = write_csv(tmp_path / "meters.csv", [f"{t},b7,{n}" for n, t in enumerate(things, 1)])
    out = tmp_path / "devices"

    first = register_csv(cli, deployed, csv, out)
    assert first.code == 0, first.err
    report = first.json()
    assert (report["created"], report["unchanged"], report["failed"]) == (3, 0, 0)
    for n, thing in enumerate(things, 1):
        described = iot.describe_thing(thingName=thing)
        assert described["thingTypeName"] == deployed.thing_type
        assert described["attributes"] == {"building": "b7", "apartment": str(n)}
        (certificate,) = attached(iot, thing)
        assert certificate["status"] == "ACTIVE"
        policies = iot.list_attached_policies(target=certificate["certificateArn"])["policies"]
        assert [p["policyName"] for p in policies] == [deployed.policy]
        groups = iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]
        assert [g["groupName"] for g in groups] == [deployed.thing_group]
        folder = out / thing
        assert (folder / "certificate.pem").read_text() == certificate["certificatePem"]
        assert stat.S_IMODE((folder / "private.key").stat().st_mode) == 0o600
        # The ATS data endpoint (moto makes up a new one per call; AWS has one per account).
        endpoint = (folder / "endpoint.txt").read_text().strip()
        assert re.fullmatch(r"[a-z0-9]+-ats\.iot\.us-east-1\.amazonaws\.com", endpoint)
        config = json.loads((folder / "config.json").read_text())
        assert config["thing_name"] == config["client_id"] == thing
        assert config["topic"] == f"energy/consumption/{thing}"
        assert config["certificate_id"] == certificate["certificateId"]
        assert (config["endpoint"], config["port"]) == (endpoint, 8883)
        assert config["basic_ingest_topic"] is None  # the outputs name no Basic Ingest topic
        # Amazon Root CA 1, as the certifi bundle carries it.
        assert (folder / "AmazonRootCA1.pem").read_text() == amazon_root_ca()
        root = x509.load_pem_x509_certificate((folder / "AmazonRootCA1.pem").read_bytes())
        assert root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
            "Amazon Root CA 1"
        )
    keys_before = {t: (out / t / "private.key").read_bytes() for t in things}
    certificates_before = certificate_ids(iot)

    second = register_csv(cli, deployed, csv, out)
    assert second.code == 0, second.err
    report = second.json()
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 3)
    assert certificate_ids(iot) == certificates_before
    assert {t: (out / t / "private.key").read_bytes() for t in things} == keys_before
    human = cli(
        "devices", "register", "--env", "dev", "--outputs", deployed.outputs,
        "--csv", csv, "--out", out,
    )  # fmt: skip
    assert human.code == 0
    assert "0 created, 0 updated, 3 unchanged, 0 failed" in human.err


def test_a_changed_attribute_is_updated_in_place(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    thing, out = deployed.thing(1), tmp_path / "devices"
    register_csv(cli, deployed, write_csv(tmp_path / "a.csv", [f"{thing},b7,1"]), out)
    moved = register_csv(cli, deployed, write_csv(tmp_path / "b.csv", [f"{thing},b8,1"]), out)
    (meter,) = moved.json()["meters"]
    assert (meter["status"], meter["detail"]) == ("updated", "attributes")
    assert aws.client("iot").describe_thing(thingName=thing)["attributes"]["building"] == "b8"
    assert len(attached(aws.client("iot"), thing)) == 1


def test_bad_rows_are_reported_by_line_and_the_others_registered(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    good = [deployed.thing(1), deployed.thing(2)]
    csv = write_csv(
        tmp_path / "meters.csv",
        [
            f"{good[0]},b7,1",  # line 2
            ",b7,2",  # line 3: empty thing name
            "apt 3,b7,3",  # line 4: a space is not a thing-name character
            f"{deployed.thing(4)},b7",  # line 5: no apartment column
            f"{good[1]},b7,5",  # line 6
            f"{good[0]},b7,6",  # line 7: the same thing again
            f"{deployed.thing(8)},Block 7,8",  # line 8: attribute values take no spaces
        ],
    )
    result = register_csv(cli, deployed, csv, tmp_path / "devices")
    assert result.code == 1
    report = result.json()
    assert report["created"] == 2 and report["failed"] == 5
    failed = {m["line"]: m["detail"] for m in report["meters"] if m["status"] == "failed"}
    assert set(failed) == {3, 4, 5, 7, 8}
    assert "empty thing name" in failed[3]
    assert "not valid" in failed[4]
    assert "missing column apartment" in failed[5]
    assert "already on line 2" in failed[7]
    assert "building 'Block 7'" in failed[8]
    things = aws.client("iot").list_things(thingTypeName=deployed.thing_type)["things"]
    assert sorted(t["thingName"] for t in things) == sorted(good)


def test_a_building_s_time_zone_is_a_thing_attribute_and_a_bad_one_fails_its_row(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    lisbon, unknown, plus = deployed.thing(1), deployed.thing(2), deployed.thing(3)
    csv = tmp_path / "meters.csv"
    csv.write_text("thing,building,apartment,time_zone\n"
                   f"{lisbon},b7,1,Europe/Lisbon\n"
                   f"{unknown},b8,1,Mars/Olympus_Mons\n"
                   f"{plus},b9,1,Etc/GMT+5\n")  # fmt: skip
    result = register_csv(cli, deployed, csv, tmp_path / "devices")
    failed = {m["line"]: m["detail"] for m in result.json()["meters"] if m["status"] == "failed"}
    assert set(failed) == {3, 4}  # IoT attribute values cannot hold a '+'
    assert all("not an IANA time zone" in detail for detail in failed.values())
    attributes = aws.client("iot").describe_thing(thingName=lisbon)["attributes"]
    assert attributes["time_zone"] == "Europe/Lisbon"


def test_a_csv_without_its_header_is_one_line_error(
    cli: Any, deployed: Deployed, tmp_path: Path
) -> None:
    csv = tmp_path / "meters.csv"
    csv.write_text("name,building\napt-1,b7\n")
    result = register_csv(cli, deployed, csv, tmp_path / "devices")
    assert result.code == 1
    assert result.err.count("\n") == 1 and "missing apartment" not in result.err
    assert "header must name thing,building,apartment" in result.err


def meter_csr(tmp_path: Path, thing: str) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, thing)]))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"{thing}.csr"
    path.write_bytes(request.public_bytes(serialization.Encoding.PEM))
    return path


def test_a_meter_with_its_own_csr_gets_no_private_key_file(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    # moto signs a CSR's certificate over a fresh key (and stores it inactive); what AWS
    # answers is tested against its documented response in test_certificates.py.
    thing, out = deployed.thing(1), tmp_path / "devices"
    result = cli(
        "devices", "register", "--env", "dev", "--outputs", deployed.outputs, "--thing", thing,
        "--building", "b7", "--apartment", "1", "--csr", meter_csr(tmp_path, thing),
        "--out", out, "--json",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert result.json()["created"] == 1
    folder = out / thing
    assert not (folder / "private.key").exists()
    assert json.loads((folder / "config.json").read_text())["private_key"] is None
    assert (folder / "certificate.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert len(attached(aws.client("iot"), thing)) == 1


def register_one(cli: Any, deployed: Deployed, thing: str, out: Path) -> None:
    result = cli(
        "devices", "register", "--env", "dev", "--outputs", deployed.outputs, "--thing", thing,
        "--building", "b7", "--apartment", "1", "--out", out, "--json",
    )  # fmt: skip
    assert result.code == 0, result.err


def test_rotation_now_deactivates_the_old_certificate_at_once(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    iot, thing, out = aws.client("iot"), deployed.thing(1), tmp_path / "devices"
    register_one(cli, deployed, thing, out)
    old_id = json.loads((out / thing / "config.json").read_text())["certificate_id"]
    old_pem = (out / thing / "certificate.pem").read_text()
    rotated = cli(
        "devices", "rotate", "--env", "dev", "--outputs", deployed.outputs, "--thing", thing,
        "--out", out, "--now", "--json",
    )  # fmt: skip
    assert rotated.code == 0, rotated.err
    new_id = rotated.json()["certificate_id"]
    status = {c["certificateId"]: c["status"] for c in attached(iot, thing)}
    assert status == {old_id: "INACTIVE", new_id: "ACTIVE"}
    new_policies = iot.list_attached_policies(target=f"{_arn(iot, new_id)}")["policies"]
    assert [p["policyName"] for p in new_policies] == [deployed.policy]
    assert (out / thing / "certificate.pem").read_text() != old_pem
    assert json.loads((out / thing / "config.json").read_text())["certificate_id"] == new_id
    (retired,) = (out / thing / "retired").iterdir()
    assert (retired / "certificate.pem").read_text() == old_pem
    assert stat.S_IMODE((out / thing / "private.key").stat().st_mode) == 0o600


def _arn(iot: Any, certificate_id: str) -> str:
    return str(
        iot.describe_certificate(certificateId=certificate_id)["certificateDescription"][
            "certificateArn"
        ]
    )


def test_rotation_with_grace_keeps_both_until_the_period_ends(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    iot, thing, out = aws.client("iot"), deployed.thing(1), tmp_path / "devices"
    register_one(cli, deployed, thing, out)
    old_id = json.loads((out / thing / "config.json").read_text())["certificate_id"]
    common = ("--env", "dev", "--outputs", deployed.outputs)
    rotated = cli("devices", "rotate", *common, "--thing", thing, "--out", out, "--json")
    assert rotated.code == 0, rotated.err
    new_id = rotated.json()["certificate_id"]
    assert {c["status"] for c in attached(iot, thing)} == {"ACTIVE"}  # both, for 24 h
    deadline = int(
        iot.describe_thing(thingName=thing)["attributes"][RETIRE_ATTRIBUTE_PREFIX + old_id]
    )
    assert abs(deadline - (time.time() + 24 * 3600)) < 120
    (listed,) = cli("devices", "list", *common, "--json").json()
    assert {c["certificate_id"] for c in listed["active_certificates"]} == {old_id, new_id}

    # A period of a second: over by the time `devices list` runs, which finishes it.
    again = cli(
        "devices", "rotate", *common, "--thing", thing, "--out", out, "--grace-hours", "0.0003",
        "--json",
    )  # fmt: skip
    newest = again.json()["certificate_id"]
    time.sleep(1.5)
    (listed,) = cli("devices", "list", *common, "--json").json()
    assert [c["certificate_id"] for c in listed["active_certificates"]] == [newest]
    status = {c["certificateId"]: c["status"] for c in attached(iot, thing)}
    assert status == {old_id: "INACTIVE", new_id: "INACTIVE", newest: "ACTIVE"}
    attributes = iot.describe_thing(thingName=thing)["attributes"]
    assert not [name for name in attributes if name.startswith(RETIRE_ATTRIBUTE_PREFIX)]


def test_revoke_deactivates_and_delete_removes_the_meter(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    iot, out = aws.client("iot"), tmp_path / "devices"
    kept, deleted = deployed.thing(1), deployed.thing(2)
    for thing in (kept, deleted):
        register_one(cli, deployed, thing, out)
    common = ("--env", "dev", "--outputs", deployed.outputs)
    assert cli("devices", "revoke", *common, "--thing", kept).code == 0
    assert [c["status"] for c in attached(iot, kept)] == ["INACTIVE"]

    certificate_id = json.loads((out / deleted / "config.json").read_text())["certificate_id"]
    refused = cli("devices", "revoke", *common, "--thing", deleted, "--delete")
    assert refused.code == 1 and "--yes" in refused.err  # no terminal to ask: say so
    assert cli("devices", "revoke", *common, "--thing", deleted, "--delete", "--yes").code == 0
    assert deleted not in {t["thingName"] for t in iot.list_things()["things"]}
    assert certificate_id not in certificate_ids(iot)

    listed = cli("devices", "list", *common, "--json").json()
    assert [(d["thing"], d["active_certificates"]) for d in listed] == [(kept, [])]


def test_list_shows_each_meters_last_reading_from_the_table(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    out = tmp_path / "devices"
    heard, silent = deployed.thing(1), deployed.thing(2)
    for thing in (heard, silent):
        register_one(cli, deployed, thing, out)
    aws.client("dynamodb").put_item(
        TableName=deployed.table,
        Item={"pk": {"S": heard}, "sk": {"S": "LATEST"}, "ts_ms": {"N": "1796000000000"}},
    )
    listed = {d["thing"]: d for d in cli("devices", "list", "--env", "dev", "--outputs",
                                           deployed.outputs, "--json").json()}  # fmt: skip
    assert listed[heard]["last_reading"] == "2026-11-30T00:53:20Z"
    assert listed[silent]["last_reading"] is None
    assert listed[heard]["building"] == "b7"
    (certificate,) = listed[heard]["active_certificates"]
    assert certificate["expires"]
    table = cli("devices", "list", "--env", "dev", "--outputs", deployed.outputs)
    assert table.code == 0 and heard in table.out and "never" in table.out


def test_an_unknown_thing_is_a_one_line_error(cli: Any, deployed: Deployed, tmp_path: Path) -> None:
    result = cli(
        "devices", "rotate", "--env", "dev", "--outputs", deployed.outputs, "--thing",
        "no-such-meter", "--out", tmp_path, "--now",
    )  # fmt: skip
    assert result.code == 1
    assert result.err == "error: unknown thing 'no-such-meter' in environment 'dev'\n"


def test_another_environments_thing_is_left_alone(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    thing = deployed.thing(1)
    aws.client("iot").create_thing(thingName=thing)  # no thing type: not this environment's
    result = cli("devices", "revoke", "--env", "dev", "--outputs", deployed.outputs,
                 "--thing", thing)  # fmt: skip
    assert result.code == 1 and "not environment 'dev'" in result.err
    assert result.err.count("\n") == 1


def test_an_interrupted_registration_attaches_the_certificate_it_wrote(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    # As if the first run died between writing the folder and attaching the certificate.
    iot, thing, out = aws.client("iot"), deployed.thing(1), tmp_path / "devices"
    register_one(cli, deployed, thing, out)
    (certificate,) = attached(iot, thing)
    iot.detach_thing_principal(thingName=thing, principal=certificate["certificateArn"])
    before = certificate_ids(iot)
    register_one(cli, deployed, thing, out)
    assert certificate_ids(iot) == before  # no new, orphaned-old certificate
    assert [c["certificateId"] for c in attached(iot, thing)] == [certificate["certificateId"]]


def test_a_folder_never_pairs_its_key_with_another_keys_certificate(
    cli: Any, deployed: Deployed, tmp_path: Path
) -> None:
    thing, first, second = deployed.thing(1), tmp_path / "a", tmp_path / "b"
    register_one(cli, deployed, thing, first)
    rotated = cli(
        "devices", "rotate", "--env", "dev", "--outputs", deployed.outputs, "--thing", thing,
        "--out", second, "--now", "--json",
    )  # fmt: skip
    assert rotated.code == 0, rotated.err
    key_before = (first / thing / "private.key").read_bytes()
    certificate_before = (first / thing / "certificate.pem").read_bytes()
    again = cli(
        "devices", "register", "--env", "dev", "--outputs", deployed.outputs, "--thing", thing,
        "--building", "b7", "--apartment", "1", "--out", first, "--json",
    )  # fmt: skip
    assert again.code == 1
    (row,) = again.json()["meters"]
    assert row["status"] == "failed" and "no longer active" in row["detail"]
    # Folder a is left as it was: its (now inactive) pair, not a mismatched one.
    assert (first / thing / "private.key").read_bytes() == key_before
    assert (first / thing / "certificate.pem").read_bytes() == certificate_before


def test_an_unreadable_csr_fails_its_own_row_only(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    good, bad, unsigned = deployed.thing(1), deployed.thing(2), deployed.thing(3)
    (tmp_path / "garbage.csr").write_bytes(b"\x30\x82\x01\x00 not a request")
    csr = meter_csr(tmp_path, unsigned)
    request = x509.load_pem_x509_csr(csr.read_bytes())
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the signature's last byte: still a well-formed request, not signed
    body = base64.encodebytes(bytes(der)).decode()
    csr.write_text(
        f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    )
    csv = tmp_path / "meters.csv"
    csv.write_text(
        "thing,building,apartment,csr\n"
        f"{good},b7,1,\n{bad},b7,2,garbage.csr\n{unsigned},b7,3,{csr.name}\n"
    )
    result = register_csv(cli, deployed, csv, tmp_path / "devices")
    assert result.code == 1
    report = result.json()
    assert (report["created"], report["failed"]) == (1, 2)
    failed = {m["line"]: m["detail"] for m in report["meters"] if m["status"] == "failed"}
    assert "not a PEM certificate signing request" in failed[3]
    assert "\n" not in failed[3]
    assert failed[4].endswith("has a signature that does not verify")
    things = aws.client("iot").list_things(thingTypeName=deployed.thing_type)["things"]
    assert [t["thingName"] for t in things] == [good]


def test_a_second_rotation_keeps_the_first_deadline_and_leaves_no_pending_pair(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    iot, thing, out = aws.client("iot"), deployed.thing(1), tmp_path / "devices"
    register_one(cli, deployed, thing, out)
    original = json.loads((out / thing / "config.json").read_text())["certificate_id"]
    common = ("--env", "dev", "--outputs", deployed.outputs, "--thing", thing, "--out", out)
    assert cli("devices", "rotate", *common, "--grace-hours", "1", "--json").code == 0
    first = int(
        iot.describe_thing(thingName=thing)["attributes"][RETIRE_ATTRIBUTE_PREFIX + original]
    )
    second = cli("devices", "rotate", *common, "--grace-hours", "48", "--json")
    assert second.code == 0, second.err
    attributes = iot.describe_thing(thingName=thing)["attributes"]
    assert int(attributes[RETIRE_ATTRIBUTE_PREFIX + original]) == first  # not pushed back
    assert len([a for a in attributes if a.startswith(RETIRE_ATTRIBUTE_PREFIX)]) == 2
    folder = out / thing
    assert not (folder / "pending").exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "private.key").stat().st_mode) == 0o600
    for retired in (folder / "retired").iterdir():
        assert stat.S_IMODE(retired.stat().st_mode) == 0o700
        assert stat.S_IMODE((retired / "private.key").stat().st_mode) == 0o600
    assert not list(folder.glob(".*.tmp"))


def test_a_rotation_that_cannot_attach_leaves_the_folder_and_no_active_certificate(
    cli: Any, deployed: Deployed, aws: Server, tmp_path: Path
) -> None:
    iot, thing, out = aws.client("iot"), deployed.thing(1), tmp_path / "devices"
    register_one(cli, deployed, thing, out)
    before = {p.name: p.read_bytes() for p in (out / thing).iterdir() if p.is_file()}
    (old,) = attached(iot, thing)
    outputs = json.loads(deployed.outputs.read_text())
    outputs["energy-dev-Ingest"]["IotPolicyName"] = f"gone-{deployed.suffix}"
    broken = tmp_path / "broken-outputs.json"
    broken.write_text(json.dumps(outputs))
    known = certificate_ids(iot)
    result = cli(
        "devices", "rotate", "--env", "dev", "--outputs", broken, "--thing", thing,
        "--out", out, "--now",
    )  # fmt: skip
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert {p.name: p.read_bytes() for p in (out / thing).iterdir() if p.is_file()} == before
    assert [c["certificateId"] for c in attached(iot, thing)] == [old["certificateId"]]
    (created,) = certificate_ids(iot) - known
    described = iot.describe_certificate(certificateId=created)["certificateDescription"]
    assert described["status"] == "INACTIVE"
    assert [c["status"] for c in attached(iot, thing)] == ["ACTIVE"]
    assert not (out / thing / "pending").exists()
