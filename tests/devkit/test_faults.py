"""The fault injector: what it returns is what botocore reads as AWS's own transient
errors (and retries), and its crash and timeout decisions happen where the demo says."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from devkit.faults import (
    ERRORS,
    BrokerRestarts,
    FaultInjector,
    FaultLog,
    FaultRates,
    counts_by_kind,
    error_response,
    read_log,
)

CALLS = {
    "dynamodb": lambda c: c.get_item(TableName="t", Key={"pk": {"S": "d"}}),
    "sqs": lambda c: c.send_message(
        QueueUrl="https://sqs.us-east-1.amazonaws.com/1/q", MessageBody="x"
    ),
    "s3": lambda c: c.put_object(Bucket="b", Key="k", Body=b"x"),
    "sns": lambda c: c.publish(TopicArn="arn:aws:sns:us-east-1:123456789012:t", Message="x"),
}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries without their sleeps (the delays are not what is tested)."""
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _seconds: None)


def client(service: str, attempts: int) -> Any:
    return boto3.session.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    ).client(
        service,
        endpoint_url="https://injected.invalid",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


@pytest.mark.parametrize(
    ("service", "status", "code"),
    [(service, status, code) for service, errors in ERRORS.items() for status, code in errors],
)
def test_every_injected_error_is_one_botocore_retries(
    service: str, status: int, code: str | None
) -> None:
    sent = []

    def hook(request: Any, **_: Any) -> Any:
        sent.append(request)
        if code == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        return error_response(service, status, code)

    aws = client(service, attempts=3)
    aws.meta.events.register("before-send", hook)
    with pytest.raises((ClientError, ConnectionClosedError)) as raised:
        CALLS[service](aws)
    assert len(sent) == 3  # botocore retried it: a transient error, as AWS's own
    if code not in (None, "reset"):
        assert isinstance(raised.value, ClientError)
        assert raised.value.response["Error"]["Code"] == code
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_transient_errors_are_logged_and_then_the_call_goes_through(tmp_path: Path) -> None:
    log = FaultLog(tmp_path / "faults.jsonl", worker="processor")
    injector = FaultInjector(FaultRates(transient_per_call=0.5), log, function="processor")
    injector.random = random.Random(11)  # a process start's own stream, fixed for the test
    aws = injector.attach(client("dynamodb", attempts=10))
    # Behind the injector the "service" answers, with an error botocore does not retry:
    # each call ends in that answer, however many injected errors came before it.
    aws.meta.events.register_last(
        "before-send",
        lambda request, **_: error_response("dynamodb", 400, "ResourceNotFoundException"),
    )
    injector.begin_invocation()
    for _ in range(20):
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            CALLS["dynamodb"](aws)
    injector.end_invocation()
    injected = read_log(log.path)
    assert counts_by_kind(injected) == {"transient_errors": len(injected)}
    assert 5 < len(injected) < 60  # about one per call at 50 %
    assert {entry["service"] for entry in injected} == {"dynamodb"}


def test_each_kind_at_least_once_dooms_the_first_invocations(tmp_path: Path) -> None:
    rates = FaultRates(crash_per_invocation=0.001, timeout_per_invocation=0.001,
                       transient_per_call=0.001, each_at_least_once=True)  # fmt: skip
    log = FaultLog(tmp_path / "faults.jsonl", worker="batching")
    injector = FaultInjector(rates, log, function="batching")
    injector.begin_invocation()
    assert injector._fatal == ("crash", 2) and injector._force_transient
    log.record("crashes", function="batching")
    log.record("transient_errors", function="batching")
    injector.begin_invocation()
    assert injector._fatal == ("timeout", 2) and not injector._force_transient
    if injector._watchdog is not None:
        injector._watchdog.cancel()
    log.record("timeouts", function="batching")
    injector.begin_invocation()
    assert injector._fatal is None  # then only the (tiny) rates
    lines = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["crashes", "transient_errors", "timeouts"]


@pytest.mark.parametrize(
    ("per_day", "days", "each_once", "expected"),
    [(1, 1.0, False, 1), (3, 2.0, False, 6), (0, 1.0, True, 0), (1, 0.05, True, 1)],
)
def test_broker_restarts_fall_in_the_middle_half_of_the_publishing(
    per_day: float, days: float, each_once: bool, expected: int
) -> None:
    duration_s = int(days * 86_400)
    rates = FaultRates(broker_restarts_per_day=per_day, each_at_least_once=each_once, seed=7)
    times = rates.broker_restart_times(duration_s)
    assert len(times) == expected
    assert times == sorted(times)
    assert all(0.25 * duration_s <= t <= 0.75 * duration_s for t in times)
    assert FaultRates.from_json(rates.to_json()) == rates  # as the workers receive it


def test_broker_restarts_are_logged_before_each_restart(tmp_path: Path) -> None:
    rates = FaultRates(broker_restarts_per_day=2, broker_down_s=0.5, seed=1)
    log = FaultLog(tmp_path / "faults.jsonl", worker="broker")
    restarted: list[float] = []
    thread = BrokerRestarts(rates, log, restarted.append, duration_s=86_400, speed=86_400 / 2)
    thread.start()
    thread.join(10)
    assert restarted == [0.5, 0.5] and thread.error is None
    entries = read_log(log.path)
    assert counts_by_kind(entries) == {"broker_restarts": 2}
    assert [e["simulated_s"] for e in entries] == [round(t) for t in thread.times]
