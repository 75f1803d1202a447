"""The installer's roster: one meter per CSV row (`thing,building,apartment[,time_zone][,csr]`).

`time_zone`, the building's IANA zone (Europe/Berlin), is needed only where a building is
not in the environment's `data.time_zone`: the alerts follow the building's clock.

Each row is checked on its own, so one bad row is reported with its line number while the
others are registered. Names and values follow what AWS IoT accepts (thing names and
attribute values have fixed character sets), so a row fails here, not half-way in AWS.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from energy_runtime import contract, local_time
from energy_runtime.contract import THING_NAME_PATTERN

from energy_cli.errors import CliError

REQUIRED_COLUMNS = ("thing", "building", "apartment")
CSR_COLUMN = "csr"
TIME_ZONE_COLUMN = contract.TIME_ZONE_ATTRIBUTE
# AWS IoT's attribute-value pattern and length (the IoT API model).
_ATTRIBUTE_VALUE = re.compile(r"[a-zA-Z0-9_.,@/:#=\[\]-]{1,800}")
_THING_NAME = re.compile(THING_NAME_PATTERN)
MAX_CSR_BYTES = 4096  # CreateCertificateFromCsr takes at most this much


@dataclass(frozen=True)
class Meter:
    thing: str
    building: str
    apartment: str
    csr: Path | None = None
    time_zone: str = ""  # empty: the environment's
    line: int | None = None  # in the CSV, for messages

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else self.thing


@dataclass(frozen=True)
class RowProblem:
    line: int
    thing: str
    reason: str


def check(meter: Meter) -> str | None:
    """Why AWS IoT would refuse this meter, or None."""
    reason = check_thing(meter.thing)
    if reason is not None:
        return reason
    for column in ("building", "apartment"):
        value = getattr(meter, column)
        if not value:
            return f"empty {column}"
        if not _ATTRIBUTE_VALUE.fullmatch(value):
            return (
                f"{column} {value!r} is not a valid IoT attribute value "
                "(up to 800 of: letters, digits, and _.,@/:#=[]-; no spaces)"
            )
    if meter.time_zone and not (
        local_time.is_zone(meter.time_zone) and _ATTRIBUTE_VALUE.fullmatch(meter.time_zone)
    ):
        return (
            f"time_zone {meter.time_zone!r} is not an IANA time zone an IoT attribute can "
            "hold (such as Europe/Berlin)"
        )
    if meter.csr is not None:
        return check_csr(meter.csr)
    return None


def check_thing(thing: str) -> str | None:
    if not thing:
        return "empty thing name"
    if not _THING_NAME.fullmatch(thing):
        return (
            f"thing name {thing!r} is not valid (1-128 characters: letters, digits, ':', '_', '-')"
        )
    return None


def check_csr(path: Path) -> str | None:
    """Why IoT would refuse this CSR file (CreateCertificateFromCsr takes a PEM request
    of at most 4 KB with a valid signature), or None."""
    from cryptography import x509

    if not path.is_file():
        return f"CSR file {path} does not exist"
    if path.stat().st_size > MAX_CSR_BYTES:
        return f"CSR file {path} is larger than {MAX_CSR_BYTES} bytes"
    try:
        request = x509.load_pem_x509_csr(path.read_bytes())
    except (OSError, ValueError) as error:
        return f"CSR file {path} is not a PEM certificate signing request ({error})"
    if not request.is_signature_valid:
        return f"CSR file {path} has a signature that does not verify"
    return None


def read_csv(path: Path) -> tuple[list[Meter], list[RowProblem]]:
    """The valid meters and the rows that are not; a file without the header is an error.

    A `csr` path is relative to the CSV's folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"CSV file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"CSV file {path} is not readable UTF-8 text: {error}") from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise CliError(
            f"CSV file {path}: the header must name {','.join(REQUIRED_COLUMNS)}"
            f"[,{TIME_ZONE_COLUMN}][,{CSR_COLUMN}]"
            f" (missing {', '.join(missing)})"
        )
    reader.fieldnames = header
    meters: list[Meter] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue  # a blank line
        values = {
            column: (row.get(column) or "").strip()
            for column in (*REQUIRED_COLUMNS, TIME_ZONE_COLUMN, CSR_COLUMN)
        }
        absent = [column for column in REQUIRED_COLUMNS if row.get(column) is None]
        thing = values["thing"]
        if absent:
            problems.append(RowProblem(line, thing, f"missing column {', '.join(absent)}"))
            continue
        if None in row:  # more fields than the header has
            problems.append(RowProblem(line, thing, "more fields than the header names"))
            continue
        csr = path.parent / values[CSR_COLUMN] if values[CSR_COLUMN] else None
        meter = Meter(thing, values["building"], values["apartment"], csr=csr, line=line,
                      time_zone=values[TIME_ZONE_COLUMN])  # fmt: skip
        reason = check(meter)
        if reason is None and thing in seen:
            reason = f"thing {thing} is already on line {seen[thing]}"
        if reason is not None:
            problems.append(RowProblem(line, thing, reason))
            continue
        seen[thing] = line
        meters.append(meter)
    return meters, problems
