"""boto3 clients shared by the handlers.

No endpoint is ever hard-coded: boto3 honours AWS_ENDPOINT_URL (the local pipeline points
it at a moto server). Transient errors (throttling, 5xx, connection resets) are retried
by botocore's adaptive retry mode before a handler reports an item failure. boto3 is
imported on first use so that importing a handler module stays cheap (cold start).
"""

from __future__ import annotations

from functools import cache
from typing import Any

MAX_ATTEMPTS = 6


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=5,
        read_timeout=20,
        tcp_keepalive=True,
        max_pool_connections=32,  # the processor works on 16 devices at a time
    )
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests start a fresh moto backend per test)."""
    client.cache_clear()


class RetriesExhausted(Exception):
    """A batch API kept returning unprocessed items after our own retries."""


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth a retry by the event source (after botocore's own retries)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError, RetriesExhausted)


# Errors the request's content causes: the same request fails the same way however often
# it is retried (an item above 400 KB, a number DynamoDB cannot hold). Everything else,
# throttling, 5xx, and also access or configuration errors that a deploy can fix, is
# retried by the event source and ends, if it persists, in a dead-letter queue to redrive.
DATA_ERROR_CODES = frozenset(
    {"ValidationException", "ItemCollectionSizeLimitExceededException", "SerializationException"}
)


def is_data_error(error: BaseException) -> bool:
    """Whether no retry can cure `error`, because of what was sent (not of the service)."""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return False
    return error.response.get("Error", {}).get("Code") in DATA_ERROR_CODES


def backoff(attempt: int) -> None:
    """Sleep before retrying unprocessed batch items (full jitter, capped)."""
    import random
    import time

    if attempt >= MAX_ATTEMPTS:
        raise RetriesExhausted(f"unprocessed items after {attempt} attempts")
    time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
