"""A fleet of meters in AWS IoT: register, rotate, revoke and list them, idempotently.

A meter is registered when its thing exists in the environment's thing type with its
`building` and `apartment`, and an active certificate with the environment's policy is
attached to it (and the thing is in the environment's thing group). Registering it again
checks each of those and changes only what is missing.

A rotation attaches a new certificate beside the old ones; each old one is deactivated at
once (`grace_s=0`) or when its grace period ends. The deadline is kept on the thing, as the
attribute `retire_after_<certificate id>` (epoch seconds), so any later `rotate` or `list`
from any machine finishes deactivations that are due.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from energy_runtime import contract

from energy_cli.aws import error_code
from energy_cli.environment import Environment
from energy_cli.errors import CliError
from energy_cli.fleet import folder as device_folder
from energy_cli.fleet.certificates import IssuedCertificate, Issuer
from energy_cli.fleet.roster import Meter

RETIRE_ATTRIBUTE_PREFIX = "retire_after_"
ATTRIBUTES = contract.PLACE_ATTRIBUTES
# DetachThingPrincipal propagates asynchronously: DeleteCertificate may refuse for a while.
DELETE_CONFLICT_WAIT_S = 30.0
BATCH_GET_KEYS = 100  # DynamoDB BatchGetItem's limit


@dataclass(frozen=True)
class FleetNames:
    """What the environment's stacks name for its meters (their outputs)."""

    environment: str
    policy: str
    thing_type: str
    thing_group: str | None
    topic_template: str
    basic_ingest_template: str | None
    table: str | None

    @classmethod
    def of(cls, environment: Environment) -> FleetNames:
        output = contract.Output
        return cls(
            environment=environment.name,
            policy=environment.output(output.IOT_POLICY_NAME),
            thing_type=environment.output(output.THING_TYPE_NAME),
            thing_group=environment.optional(output.THING_GROUP_NAME),
            topic_template=environment.output(output.METER_TOPIC_TEMPLATE),
            basic_ingest_template=environment.optional(output.BASIC_INGEST_TOPIC_TEMPLATE),
            table=environment.optional(output.TABLE_NAME),
        )

    def topic(self, template: str, thing: str) -> str:
        return template.replace(contract.THING_NAME_PLACEHOLDER, thing)


@dataclass
class Outcome:
    thing: str
    status: str  # created | updated | unchanged | rotated | revoked | deleted | failed
    detail: str = ""
    line: int | None = None
    certificate_id: str | None = None
    folder: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Certificate:
    arn: str
    certificate_id: str
    status: str
    not_after: dt.datetime | None
    pem: str

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


@dataclass
class Device:
    thing: str
    building: str
    apartment: str
    certificates: list[Certificate] = field(default_factory=list)
    retiring: dict[str, int] = field(default_factory=dict)  # certificate id -> deadline
    last_reading: str | None = None

    @property
    def active(self) -> list[Certificate]:
        return [c for c in self.certificates if c.active]

    def as_json(self) -> dict[str, Any]:
        return {
            "thing": self.thing,
            "building": self.building,
            "apartment": self.apartment,
            "active_certificates": [
                {
                    "certificate_id": c.certificate_id,
                    "expires": c.not_after.isoformat() if c.not_after else None,
                    "retire_after": _iso(self.retiring[c.certificate_id])
                    if c.certificate_id in self.retiring
                    else None,
                }
                for c in self.active
            ],
            "last_reading": self.last_reading,
        }


def _iso(epoch_s: int) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retiring(attributes: dict[str, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, value in attributes.items():
        if name.startswith(RETIRE_ATTRIBUTE_PREFIX) and value.isdigit():
            found[name[len(RETIRE_ATTRIBUTE_PREFIX) :]] = int(value)
    return found


class Fleet:
    def __init__(
        self,
        iot: Any,
        names: FleetNames,
        issuer: Issuer,
        *,
        endpoint: Callable[[], tuple[str, int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.iot = iot
        self.names = names
        self.issuer = issuer
        self._endpoint = endpoint  # asked once, when a folder is first written
        self._endpoint_value: tuple[str, int] | None = None
        self.clock = clock
        self.warnings: list[str] = []  # what a command reports beside its result

    @property
    def endpoint(self) -> tuple[str, int]:
        if self._endpoint_value is None:
            self._endpoint_value = self._endpoint()
        return self._endpoint_value

    # --- lookups --------------------------------------------------------------------------

    def _thing(self, thing: str) -> dict[str, Any] | None:
        try:
            described: dict[str, Any] = self.iot.describe_thing(thingName=thing)
        except Exception as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise
        return described

    def _own_thing(self, thing: str) -> dict[str, Any]:
        """The thing, which must be one of this environment's meters."""
        described = self._thing(thing)
        if described is None:
            raise CliError(f"unknown thing {thing!r} in environment {self.names.environment!r}")
        self._check_type(thing, described)
        return described

    def _check_type(self, thing: str, described: dict[str, Any]) -> None:
        # A prefixed copy or another environment may share the account: never touch its meters.
        kind = described.get("thingTypeName")
        if kind != self.names.thing_type:
            raise CliError(
                f"thing {thing!r} exists with thing type {kind or '(none)'}, not environment "
                f"{self.names.environment!r}'s {self.names.thing_type}"
            )

    def certificates(self, thing: str) -> list[Certificate]:
        found: list[Certificate] = []
        for page in self.iot.get_paginator("list_thing_principals").paginate(thingName=thing):
            for principal in page["principals"]:
                if ":cert/" not in principal:
                    continue
                certificate_id = principal.rsplit("/", 1)[1]
                described = self.iot.describe_certificate(certificateId=certificate_id)
                description = described["certificateDescription"]
                found.append(
                    Certificate(
                        arn=principal,
                        certificate_id=certificate_id,
                        status=description["status"],
                        not_after=(description.get("validity") or {}).get("notAfter"),
                        pem=description.get("certificatePem", ""),
                    )
                )
        return found

    # --- register ----------------------------------------------------------------------------

    def register(self, meter: Meter, out: Path) -> Outcome:
        changes: list[str] = []
        wanted = {"building": meter.building, "apartment": meter.apartment}
        if meter.time_zone:
            wanted[contract.TIME_ZONE_ATTRIBUTE] = meter.time_zone
        described = self._thing(meter.thing)
        if described is None:
            self.iot.create_thing(
                thingName=meter.thing,
                thingTypeName=self.names.thing_type,
                attributePayload={"attributes": wanted},
            )
            changes.append("thing")
        else:
            self._check_type(meter.thing, described)
            current = described.get("attributes", {})
            if any(current.get(k) != v for k, v in wanted.items()):
                self.iot.update_thing(
                    thingName=meter.thing, attributePayload={"attributes": wanted, "merge": True}
                )
                changes.append("attributes")
        folder = out / meter.thing
        active = [c for c in self.certificates(meter.thing) if c.active]
        recorded = device_folder.read_config(folder)
        key: str | None = None
        if active:
            chosen = self._folder_certificate(folder, active, recorded)
            certificate = IssuedCertificate(chosen.arn, chosen.certificate_id, chosen.pem, None)
        elif (unattached := self._interrupted(folder, recorded)) is not None:
            certificate = unattached
            changes.append("certificate attached")
        else:
            certificate = self.issuer.issue(meter.thing, meter.csr)
            key = certificate.private_key_pem
            # The folder first: a key IoT created is returned once, whatever happens next.
            self._write_folder(folder, meter.thing, certificate, key)
            changes.append("certificate")
        changes += self._attach(meter.thing, certificate.arn, attached=bool(active))
        rewritten = self._write_folder(folder, meter.thing, certificate, key)
        # The status is about AWS IoT; a folder brought up to date is only mentioned.
        status = "created" if "thing" in changes else "updated" if changes else "unchanged"
        detail = ", ".join(changes) if status == "updated" else ""
        if rewritten and status == "unchanged":
            detail = "folder rewritten"
        key_elsewhere = not (folder / device_folder.PRIVATE_KEY_FILE).exists()
        if meter.csr is None and key is None and key_elsewhere:
            # IoT returns a key it creates once: to the folder written at the time.
            detail = "; ".join(filter(None, [detail, "no private.key in this folder"]))
        return Outcome(
            meter.thing,
            status,
            detail=detail,
            line=meter.line,
            certificate_id=certificate.certificate_id,
            folder=str(folder),
        )

    @staticmethod
    def _folder_certificate(
        folder: Path, active: list[Certificate], recorded: device_folder.DeviceConfig | None
    ) -> Certificate:
        """The active certificate to write beside the folder's key: only the one that key
        belongs to (a folder never pairs a key with another key's certificate)."""
        key = device_folder.public_key(folder)
        if key is None:  # a new folder, or a meter that keeps its own key (CSR)
            mine = [c for c in active if recorded and c.certificate_id == recorded.certificate_id]
            return (mine or active)[0]
        for certificate in active:
            if device_folder.certificate_key(certificate.pem) == key:
                return certificate
        raise CliError(
            f"{folder} holds the key of a certificate that is no longer active; the meter's "
            f"active certificate ({active[0].certificate_id[:12]}) was written to another "
            "folder: use that one, or `devices rotate` into this one"
        )

    def _interrupted(
        self, folder: Path, recorded: device_folder.DeviceConfig | None
    ) -> IssuedCertificate | None:
        """The active certificate an interrupted registration wrote to the folder but did
        not attach: attached now instead of a new one (which would leave it orphaned)."""
        if recorded is None or not (folder / device_folder.CERTIFICATE_FILE).exists():
            return None
        try:
            described = self.iot.describe_certificate(certificateId=recorded.certificate_id)
        except Exception as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise
        description = described["certificateDescription"]
        if description["status"] != "ACTIVE":
            return None  # revoked: a re-registered meter gets a new one
        pem = (folder / device_folder.CERTIFICATE_FILE).read_text()
        if pem.strip() != str(description.get("certificatePem", "")).strip():
            return None
        return IssuedCertificate(description["certificateArn"], recorded.certificate_id, pem, None)

    def _attach(self, thing: str, certificate_arn: str, *, attached: bool) -> list[str]:
        """Policy on the certificate, certificate on the thing, thing in the group."""
        changes: list[str] = []
        policies = {
            policy["policyName"]
            for page in self.iot.get_paginator("list_attached_policies").paginate(
                target=certificate_arn
            )
            for policy in page["policies"]
        }
        if self.names.policy not in policies:
            self.iot.attach_policy(policyName=self.names.policy, target=certificate_arn)
            changes.append("policy")
        if not attached:
            self.iot.attach_thing_principal(thingName=thing, principal=certificate_arn)
        if self.names.thing_group:
            groups = {
                group["groupName"]
                for page in self.iot.get_paginator("list_thing_groups_for_thing").paginate(
                    thingName=thing
                )
                for group in page["thingGroups"]
            }
            if self.names.thing_group not in groups:
                self.iot.add_thing_to_thing_group(
                    thingGroupName=self.names.thing_group, thingName=thing
                )
                changes.append("thing group")
        return changes

    def _write_folder(
        self, folder: Path, thing: str, certificate: IssuedCertificate, key: str | None
    ) -> bool:
        host, port = self.endpoint
        basic = self.names.basic_ingest_template
        has_key = key is not None or (folder / device_folder.PRIVATE_KEY_FILE).exists()
        config = device_folder.DeviceConfig(
            environment=self.names.environment,
            thing_name=thing,
            client_id=thing,
            topic=self.names.topic(self.names.topic_template, thing),
            basic_ingest_topic=self.names.topic(basic, thing) if basic else None,
            endpoint=host,
            port=port,
            root_ca=self.issuer.root_ca_name,
            certificate=device_folder.CERTIFICATE_FILE,
            private_key=device_folder.PRIVATE_KEY_FILE if has_key else None,
            certificate_id=certificate.certificate_id,
        )
        return device_folder.write(
            folder,
            config=config,
            certificate_pem=certificate.pem,
            private_key_pem=key,
            root_ca_pem=self.issuer.root_ca(),
        )

    # --- rotate --------------------------------------------------------------------------

    def finish_overdue(self, thing: str, attributes: dict[str, str]) -> list[str]:
        """Deactivate the certificates whose grace period is over; their ids. One that
        cannot be deactivated now (no permission) is left for a later run, with a warning."""
        now = self.clock()
        due = {cid: at for cid, at in retiring(attributes).items() if at <= now}
        done: list[str] = []
        for certificate_id in sorted(due):
            try:
                self.iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
            except Exception as error:
                # Gone, or revoked out of band: nothing left to deactivate.
                if error_code(error) not in (
                    "ResourceNotFoundException",
                    "CertificateStateException",
                ):
                    if error_code(error) in ("AccessDeniedException", "UnauthorizedException"):
                        self.warnings.append(
                            f"{thing}: certificate {certificate_id[:12]} is past its grace "
                            f"period but could not be deactivated ({error_code(error)})"
                        )
                        continue
                    raise
            done.append(certificate_id)
        if done:
            try:
                self._forget(thing, done)
            except Exception as error:
                if error_code(error) not in ("AccessDeniedException", "UnauthorizedException"):
                    raise
                self.warnings.append(f"{thing}: could not clear its retire_after_* attributes")
        return done

    def _forget(self, thing: str, certificate_ids: Iterable[str]) -> None:
        # An empty value removes an attribute (UpdateThing with merge).
        self.iot.update_thing(
            thingName=thing,
            attributePayload={
                "attributes": {RETIRE_ATTRIBUTE_PREFIX + cid: "" for cid in certificate_ids},
                "merge": True,
            },
        )

    def rotate(self, thing: str, out: Path, *, grace_s: int, csr: Path | None = None) -> Outcome:
        described = self._own_thing(thing)
        attributes = described.get("attributes", {})
        finished = self.finish_overdue(thing, attributes)
        old = [c for c in self.certificates(thing) if c.active]
        folder = out / thing
        certificate = self.issuer.issue(thing, csr)
        # The new pair is kept before anything else can fail (IoT returns a key once), and
        # moves into place only once the certificate is attached: a failed rotation leaves
        # the folder as it was and no active certificate behind.
        pending = device_folder.stage(folder, certificate.pem, certificate.private_key_pem)
        try:
            self._attach(thing, certificate.arn, attached=False)
        except BaseException:
            # Deactivated, the new pair is of no use: drop it. If even that fails, the pair
            # stays in pending/ so that nothing active is lost.
            with contextlib.suppress(Exception):
                self.iot.update_certificate(
                    certificateId=certificate.certificate_id, newStatus="INACTIVE"
                )
                device_folder.unstage(pending)
            raise
        device_folder.retire(folder)
        self._write_folder(folder, thing, certificate, certificate.private_key_pem)
        device_folder.unstage(pending)
        pending_deadlines = retiring(attributes)
        if grace_s <= 0:
            for previous in old:
                self.iot.update_certificate(
                    certificateId=previous.certificate_id, newStatus="INACTIVE"
                )
            stale = [c.certificate_id for c in old if c.certificate_id in pending_deadlines]
            if stale:
                self._forget(thing, stale)
            when = "deactivated now"
        else:
            deadline = int(self.clock()) + grace_s
            # A certificate already retiring keeps its earlier deadline.
            deadlines = {
                c.certificate_id: min(deadline, pending_deadlines.get(c.certificate_id, deadline))
                for c in old
            }
            if deadlines:
                self.iot.update_thing(
                    thingName=thing,
                    attributePayload={
                        "attributes": {
                            RETIRE_ATTRIBUTE_PREFIX + cid: str(at) for cid, at in deadlines.items()
                        },
                        "merge": True,
                    },
                )
            when = f"deactivated after {_iso(deadline)}"
        retired = ", ".join(c.certificate_id[:12] for c in old) or "none"
        detail = f"new certificate {certificate.certificate_id[:12]}; old ({retired}) {when}"
        if finished:
            detail += f"; overdue deactivations finished: {len(finished)}"
        return Outcome(
            thing,
            "rotated",
            detail=detail,
            certificate_id=certificate.certificate_id,
            folder=str(folder),
        )

    # --- revoke --------------------------------------------------------------------------

    def revoke(self, thing: str, *, delete: bool) -> Outcome:
        described = self._own_thing(thing)
        certificates = self.certificates(thing)
        for certificate in certificates:
            if certificate.active:
                self.iot.update_certificate(
                    certificateId=certificate.certificate_id, newStatus="INACTIVE"
                )
        pending = retiring(described.get("attributes", {}))
        if not delete:
            if pending:
                self._forget(thing, pending)
            return Outcome(
                thing, "revoked", detail=f"{len(certificates)} certificate(s) deactivated"
            )
        # One certificate at a time: an interrupted run leaves the rest attached, so running
        # it again finds them (a detached certificate would be lost to the meter's listing).
        for certificate in certificates:
            for page in self.iot.get_paginator("list_attached_policies").paginate(
                target=certificate.arn
            ):
                for policy in page["policies"]:
                    self.iot.detach_policy(policyName=policy["policyName"], target=certificate.arn)
            self.iot.detach_thing_principal(thingName=thing, principal=certificate.arn)
            self._delete_certificate(certificate.certificate_id)
        self.iot.delete_thing(thingName=thing)
        return Outcome(
            thing, "deleted", detail=f"thing and {len(certificates)} certificate(s) deleted"
        )

    def _delete_certificate(self, certificate_id: str) -> None:
        deadline = time.monotonic() + DELETE_CONFLICT_WAIT_S
        while True:
            try:
                self.iot.delete_certificate(certificateId=certificate_id)
                return
            except Exception as error:
                if error_code(error) != "DeleteConflictException" or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    # --- list ----------------------------------------------------------------------------

    def devices(self, table: Any | None) -> Iterator[Device]:
        """Every meter of the environment, with its certificates and last reading; due
        deactivations are finished on the way."""
        paginator = self.iot.get_paginator("list_things")
        batch: list[Device] = []
        for page in paginator.paginate(thingTypeName=self.names.thing_type):
            for thing in page["things"]:
                attributes = dict(thing.get("attributes", {}))
                self.finish_overdue(thing["thingName"], attributes)
                pending = {cid: at for cid, at in retiring(attributes).items() if at > self.clock()}
                device = Device(
                    thing=thing["thingName"],
                    building=attributes.get("building", ""),
                    apartment=attributes.get("apartment", ""),
                    certificates=self.certificates(thing["thingName"]),
                    retiring=pending,
                )
                batch.append(device)
                if len(batch) == BATCH_GET_KEYS:
                    yield from _with_last_readings(table, batch)
                    batch = []
        yield from _with_last_readings(table, batch)


def _with_last_readings(table: Any | None, devices: list[Device]) -> list[Device]:
    """Each device's newest reading time from its LATEST item (one BatchGetItem per 100)."""
    if table is None or not devices:
        return devices
    pk, sk = contract.PARTITION_KEY, contract.SORT_KEY
    request: dict[str, Any] = {
        table.name: {
            "Keys": [{pk: d.thing, sk: contract.LATEST_SK} for d in devices],
            "ProjectionExpression": "#pk, ts_ms",
            "ExpressionAttributeNames": {"#pk": pk},
        }
    }
    by_thing = {d.thing: d for d in devices}
    client = table.meta.client  # the resource's client: plain Python values in and out
    for _attempt in range(8):
        response = client.batch_get_item(RequestItems=request)
        for item in response.get("Responses", {}).get(table.name, []):
            by_thing[str(item[pk])].last_reading = contract.iso_utc(int(item["ts_ms"]))
        request = response.get("UnprocessedKeys") or {}
        if not request:
            break
        time.sleep(0.2)
    return devices
