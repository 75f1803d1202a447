"""The price list the cost model reads: one JSON file, no network at run time.

Each entry: `service`, `item` (the model's name for it), `unit` (what one price buys),
`usd` per region, `source` (the pricing page) and `checked` (when it was read there).
`--prices FILE` replaces the built-in list; a file may also hold only some entries, which
then override the built-in ones of the same service and item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PriceError(ValueError):
    """A price list that cannot be used: the message names the file and the entry."""


BUILT_IN = Path(__file__).with_name("prices.json")


@dataclass(frozen=True)
class Price:
    service: str
    item: str
    unit: str
    usd: dict[str, float]
    source: str
    checked: str


@dataclass(frozen=True)
class PriceList:
    entries: dict[tuple[str, str], Price]
    path: str

    def usd(self, service: str, item: str, region: str) -> float:
        try:
            price = self.entries[(service, item)]
        except KeyError:
            raise PriceError(f"{self.path}: no price for {service} {item}") from None
        if region not in price.usd:
            regions = ", ".join(sorted(price.usd))
            raise PriceError(
                f"{self.path}: no {region} price for {service} {item} (it has {regions}); "
                "add it with --prices FILE"
            )
        return price.usd[region]

    def regions(self) -> set[str]:
        found: set[str] | None = None
        for price in self.entries.values():
            found = set(price.usd) if found is None else found & set(price.usd)
        return found or set()


def _entries(path: Path) -> dict[tuple[str, str], Price]:
    try:
        raw: Any = json.loads(path.read_text())
    except OSError as error:
        raise PriceError(f"cannot read the price list {path}: {error.strerror}") from None
    except ValueError as error:
        raise PriceError(f"{path} is not JSON: {error}") from None
    rows = raw.get("prices") if isinstance(raw, dict) else None
    if not isinstance(rows, list):
        raise PriceError(f'{path}: expected {{"prices": [{{"service": ..., "item": ...}}, ...]}}')
    entries: dict[tuple[str, str], Price] = {}
    for number, row in enumerate(rows, 1):
        try:
            usd = {str(region): float(value) for region, value in row["usd"].items()}
            price = Price(
                service=str(row["service"]),
                item=str(row["item"]),
                unit=str(row["unit"]),
                usd=usd,
                source=str(row.get("source", "")),
                checked=str(row.get("checked", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise PriceError(
                f"{path}: price {number} is incomplete or not a number ({error})"
            ) from None
        if any(value < 0 for value in usd.values()):
            raise PriceError(f"{path}: price {number} ({price.service} {price.item}) is negative")
        entries[(price.service, price.item)] = price
    return entries


def load(override: Path | None = None) -> PriceList:
    entries = _entries(BUILT_IN)
    if override is None:
        return PriceList(entries, str(BUILT_IN.name))
    entries.update(_entries(override))
    return PriceList(entries, str(override))
