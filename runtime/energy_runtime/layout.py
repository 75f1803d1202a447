"""Keys and attribute names of the DynamoDB table (see docs/data-model.md).

Every item of a device lives under pk = the device id; `sk` tells the kinds apart:
- LATEST: the device's "hot" item: latest reading, the open interval's readings, and the
  last readings before it (context for its energy); rewritten once per device per batch.
- INT#<interval start, ISO UTC>: a closed interval (readings + aggregates), TTL.
- DAY#<YYYY-MM-DD>: a closed day's total, written once when the day closes (no TTL).
- ALERT#<kind>#<period>: one alert per device, kind and period: claimed `pending` before the
  aggregates are written, marked `sent` after SNS accepted it (so a failed publish is
  retried, a replay after success sends nothing); TTL.
"""

from __future__ import annotations

from typing import Final

from energy_runtime.aggregate import iso_utc

LATEST_SK: Final = "LATEST"
INTERVAL_PREFIX: Final = "INT#"
DAY_PREFIX: Final = "DAY#"
ALERT_PREFIX: Final = "ALERT#"

# Optional reading fields kept on the latest reading only (not needed for aggregates).
OPTIONAL_FIELDS: Final = ("voltage_v", "current_a", "power_factor", "frequency_hz", "seq")


def interval_sk(start_ms: int) -> str:
    return INTERVAL_PREFIX + iso_utc(start_ms)


def day_sk(day: str) -> str:
    return DAY_PREFIX + day


def alert_sk(kind: str, period: str) -> str:
    return f"{ALERT_PREFIX}{kind}#{period}"
