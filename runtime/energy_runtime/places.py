"""Where a meter is: its thing's `building`, `apartment` and `time_zone` attributes, for
its alerts and for the clock its intervals are judged by.

`energy-monitoring fleet register` sets them on the thing (the installer's roster). The
processor looks them up when a meter's interval closes or it raises an alert (one
DescribeThing) and keeps them for a while: attributes change when a meter is
re-registered, rarely. A meter without a thing (registered some other way) has no place;
its alerts name the meter alone, judged by the environment's zone.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from energy_runtime import contract

KEEP_S = 600.0  # a warm container sees a re-registration within ten minutes
_cache: dict[str, tuple[float, dict[str, str]]] = {}
_lock = threading.Lock()


def place_of(iot: Any, device_id: str) -> dict[str, str]:
    """The meter's place attributes that are set. Raises what IoT raises, but for an
    unknown thing (no place)."""
    with _lock:
        kept = _cache.get(device_id)
    if kept is not None and time.monotonic() - kept[0] < KEEP_S:
        return kept[1]
    from botocore.exceptions import ClientError

    try:
        attributes = iot.describe_thing(thingName=device_id).get("attributes", {})
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        attributes = {}
    place = {name: attributes[name] for name in contract.PLACE_ATTRIBUTES if attributes.get(name)}
    with _lock:
        _cache[device_id] = (time.monotonic(), place)
    return place


def forget() -> None:
    """Drop what is kept (tests start a fresh backend)."""
    with _lock:
        _cache.clear()
