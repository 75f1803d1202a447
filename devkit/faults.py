"""Faults injected into the real handlers of the local pipeline (`make demo ARGS="--faults"`).

Where they act, and what they stand for:
- **Transient errors**: a share of the handlers' DynamoDB, SQS, S3 and SNS calls fail
  before they are sent (a botocore `before-send` hook on the handlers' clients, in front
  of the real moto server) with what AWS returns under load: DynamoDB's
  `ProvisionedThroughputExceededException`, `ThrottlingException` and
  `RequestLimitExceeded`, S3's `SlowDown`, SNS's `Throttling`, HTTP 500 and 503, and
  connection resets. botocore's retries and then the handlers' own retry paths see them
  exactly as they would see AWS's.
- **Crashes**: an invocation is killed (SIGKILL of its trigger process) at one of its
  AWS calls, after the ones before it were written and before the trigger checkpoints;
  the pipeline's supervisor restarts the trigger and the batch is delivered again, as
  Lambda redelivers a batch whose invocation died.
- **Dead letters**: for a while, the table refuses every request that names one of a few
  devices (`AccessDeniedException`, as after a key-policy or IAM change that a deploy
  then fixes: an error botocore does not retry and the processor does not quarantine).
  The hand-off messages carrying those devices fail until the queue's redrive policy
  moves them to the dead-letter queue; after the fix, the demo re-drives them with
  `energy-monitoring replay --dead-letters`.
- **Timeouts**: an invocation stalls at one of its calls past the function's (local)
  timeout; a watchdog, armed for that invocation, abandons it the way Lambda does, by
  ending the runtime, and the batch is delivered again.
- **Broker restarts**: mosquitto is stopped (it writes its sessions and queued messages
  to disk) and started again on the same port after `broker_down_s`. Meters and the
  topic-rule bridge reconnect by themselves and resume their persistent sessions; the
  meters publish what they buffered meanwhile (`BrokerRestarts`).

Every fault is written to the run's fault log (one JSON line per fault, appended before
the fault acts, so that a crash is counted although its process dies) and the demo's
summary counts them by kind. Decisions come from a seeded generator per process start,
so a run is repeatable in what it injects, if not in when (thread timing).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FAULT_LOG = "faults.jsonl"
FIXED = "stuck_devices_fixed"  # the fault log's one entry that is a repair, not a fault
SERVICES = ("dynamodb", "sqs", "s3", "sns")

# (HTTP status, error code or None for a bare 5xx / "reset" for a dropped connection)
# per service, each as AWS returns it under load or in a brief outage.
ERRORS: dict[str, tuple[tuple[int, str | None], ...]] = {
    "dynamodb": (
        (400, "ProvisionedThroughputExceededException"),
        (400, "ThrottlingException"),
        (400, "RequestLimitExceeded"),
        (500, "InternalServerError"),
        (0, "reset"),
    ),
    "sqs": ((400, "RequestThrottled"), (500, None), (503, None), (0, "reset")),
    "s3": ((503, "SlowDown"), (500, "InternalError"), (0, "reset")),
    "sns": ((400, "Throttling"), (500, "InternalError"), (0, "reset")),
}
# The namespaces of the JSON-protocol services' error types.
_JSON_TYPES = {"dynamodb": "com.amazonaws.dynamodb.v20120810", "sqs": "com.amazonaws.sqs"}


@dataclass(frozen=True)
class FaultRates:
    """How often each fault fires (documented defaults: docs/local-pipeline.md)."""

    crash_per_invocation: float = 0.0
    timeout_per_invocation: float = 0.0
    transient_per_call: float = 0.0
    # An invocation that stalls is abandoned after this many wall seconds (Lambda's
    # timeout, compressed: the demo's real invocations take well under a second).
    timeout_s: float = 3.0
    seed: int = 0
    # Each kind at least once, early, in each trigger (a short run that must see them all):
    # the first invocation crashes, the next one times out, its first call fails.
    each_at_least_once: bool = False
    # Devices whose table requests are refused between these two epoch times, and after
    # the second until this file exists if one is named (the fix, made once the refused
    # messages have reached the dead-letter queue: `DeadLetterWatch`).
    stuck_devices: tuple[str, ...] = ()
    stuck_from: float = 0.0
    stuck_until: float = 0.0
    stuck_fixed_file: str = ""
    broker_restarts_per_day: float = 0.0  # per simulated day
    broker_down_s: float = 2.0  # wall seconds the broker stays down

    @property
    def any(self) -> bool:
        return bool(self.crash_per_invocation or self.timeout_per_invocation
                    or self.transient_per_call or self.stuck_devices
                    or self.broker_restarts_per_day)  # fmt: skip

    def broker_restart_times(self, duration_s: int) -> list[float]:
        """When the broker restarts, in simulated seconds from the start: the rate's share
        of the simulated days (a fraction is one more restart with that probability), at
        least one if each kind must fire, within the middle half of the publishing."""
        if not self.broker_restarts_per_day:
            return []
        rng = random.Random(f"{self.seed}:broker")
        expected = self.broker_restarts_per_day * duration_s / 86_400
        count = int(expected) + (rng.random() < expected - int(expected))
        if self.each_at_least_once:
            count = max(count, 1)
        return sorted(rng.uniform(0.25, 0.75) * duration_s for _ in range(count))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FaultRates:
        raw = json.loads(text)
        return cls(**{**raw, "stuck_devices": tuple(raw.get("stuck_devices", ()))})


DEFAULT_RATES = FaultRates(
    crash_per_invocation=1 / 50,
    timeout_per_invocation=1 / 100,
    transient_per_call=0.02,
    broker_restarts_per_day=1,
)


class FaultLog:
    """The run's record of every fault: one JSON line each, appended by every process."""

    def __init__(self, path: Path, *, worker: str) -> None:
        self.path, self.worker = path, worker
        self._lock = threading.Lock()

    def record(self, kind: str, **details: Any) -> None:
        line = json.dumps({"kind": kind, "worker": self.worker, "at": time.time(), **details})
        with self._lock:
            # One write per line, O_APPEND: lines of concurrent processes never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def counts_by_kind(entries: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(entry["kind"] for entry in entries))


class _Body:
    """What botocore reads an injected response's body from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def error_response(service: str, status: int, code: str | None) -> Any:
    """The HTTP response AWS sends for this error, in the service's protocol."""
    from botocore.awsrequest import AWSResponse

    headers = {"x-amzn-requestid": "injected-fault"}
    if code is None:
        body = b""
    elif service in _JSON_TYPES:
        headers["content-type"] = "application/x-amz-json-1.0"
        headers["x-amzn-query-error"] = f"{code};Sender"
        error = {"__type": f"{_JSON_TYPES[service]}#{code}", "message": "injected"}
        body = json.dumps(error).encode()
    elif service == "sns":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>injected</Message></Error>"
            "<RequestId>injected-fault</RequestId></ErrorResponse>"
        ).encode()
    else:  # s3
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
    return AWSResponse("https://injected.invalid/", status, headers, _Body(body))


class FaultInjector:
    """Decides and applies the faults of one trigger process's invocations."""

    def __init__(self, rates: FaultRates, log: FaultLog, *, function: str) -> None:
        self.rates, self.log, self.function = rates, log, function
        # A new stream of decisions after each restart: the same seed would crash the
        # redelivered batch at the same call again, forever.
        self.random = random.Random(f"{rates.seed}:{function}:{os.getpid()}:{time.time_ns()}")
        self._lock = threading.Lock()
        self._calls = 0
        self._force_transient = False
        self._fatal: tuple[str, int] | None = None  # ("crash"|"timeout", at which call)
        self._watchdog: threading.Timer | None = None
        self._fix_seen = False

    # -- invocations ---------------------------------------------------------------------

    def _not_yet(self) -> set[str]:
        """The kinds this function has not seen yet, when each must fire at least once."""
        if not self.rates.each_at_least_once:
            return set()
        seen = {e["kind"] for e in read_log(self.log.path) if e.get("function") == self.function}
        wanted = {"crashes", "timeouts", "transient_errors"}
        if not self.rates.timeout_per_invocation:
            wanted.discard("timeouts")
        if not self.rates.crash_per_invocation:
            wanted.discard("crashes")
        if not self.rates.transient_per_call:
            wanted.discard("transient_errors")
        return wanted - seen

    def begin_invocation(self) -> None:
        missing = self._not_yet()
        with self._lock:
            self._calls = 0
            self._force_transient = "transient_errors" in missing
            draw = self.random.random()
            at = self.random.randint(1, 3)
            if "crashes" in missing:
                self._fatal = ("crash", 2)
            elif "timeouts" in missing:
                self._fatal = ("timeout", 2)
            elif draw < self.rates.crash_per_invocation:
                self._fatal = ("crash", at)
            elif draw < self.rates.crash_per_invocation + self.rates.timeout_per_invocation:
                self._fatal = ("timeout", at)
            else:
                self._fatal = None
        if self._fatal and self._fatal[0] == "timeout":
            self._watchdog = threading.Timer(self.rates.timeout_s, self._abandon)
            self._watchdog.daemon = True
            self._watchdog.start()

    def end_invocation(self) -> None:
        """An invocation chosen to die that made fewer calls dies here: after its writes,
        before the trigger checkpoints."""
        with self._lock:
            fatal, self._fatal = self._fatal, None
        if fatal is not None:
            self._die(fatal[0], call=None)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _abandon(self) -> None:
        """The invocation overran its timeout: Lambda ends the runtime; so do we."""
        self.log.record("timeouts", function=self.function, timeout_s=self.rates.timeout_s)
        os.kill(os.getpid(), signal.SIGKILL)

    def _stuck(self, service: str, request: Any) -> str | None:
        """The stuck device a table request names, while the devices are stuck."""
        rates = self.rates
        if service != "dynamodb" or not rates.stuck_devices or time.time() < rates.stuck_from:
            return None
        if time.time() >= rates.stuck_until and self._fixed():
            return None
        body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
        return next((d for d in rates.stuck_devices if f'"{d}"'.encode() in body), None)

    def _fixed(self) -> bool:
        """Whether the stuck devices were fixed (no fix file: as soon as their window ends);
        a fix stays made, so the file is looked for only until it is there."""
        if not self._fix_seen:
            fix = self.rates.stuck_fixed_file
            self._fix_seen = not fix or os.path.exists(fix)
        return self._fix_seen

    def _die(self, how: str, *, call: int | None, service: str | None = None) -> None:
        if how == "crash":
            self.log.record("crashes", function=self.function, service=service, call=call)
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.rates.timeout_s * 10)  # a stall: the watchdog ends it first

    # -- calls ---------------------------------------------------------------------------

    def attach(self, client: Any) -> Any:
        service = client.meta.service_model.endpoint_prefix
        if service == "email":  # SES shares nothing with these
            return client
        client.meta.events.register("before-send", self._before_send(service))
        return client

    def _before_send(self, service: str) -> Any:
        def hook(request: Any, **_: Any) -> Any:
            with self._lock:
                self._calls += 1
                fatal = self._fatal if self._fatal and self._fatal[1] == self._calls else None
                # A forced one goes to the invocation's first call that survives, ahead of a
                # stuck device's refusal (its retry is refused).
                forced = self._force_transient and not fatal
                inject = self.random.random() < self.rates.transient_per_call or forced
                choice = self.random.choice(ERRORS.get(service, ((500, None),)))
            operation = request.headers.get("X-Amz-Target", b"")
            if fatal:
                self._die(fatal[0], call=self._calls, service=service)
            stuck = None if forced else self._stuck(service, request)
            if stuck is not None:
                self.log.record("refused_device_requests", function=self.function,
                                service=service, device=stuck)  # fmt: skip
                return error_response(service, 400, "AccessDeniedException")
            if not inject:
                return None
            with self._lock:
                self._force_transient = False
            status, code = choice
            self.log.record("transient_errors", function=self.function, service=service,
                            status=status, code=code,
                            target=operation.decode() if isinstance(operation, bytes)
                            else str(operation))  # fmt: skip
            if code == "reset":
                from botocore.exceptions import ConnectionClosedError

                raise ConnectionClosedError(endpoint_url=request.url)
            return error_response(service, status, code)

        return hook


def install(rates: FaultRates, log: FaultLog, *, function: str) -> FaultInjector:
    """Give every client the handlers create (energy_runtime.aws.client) the injector."""
    from functools import cache

    from energy_runtime import aws

    injector = FaultInjector(rates, log, function=function)
    create = aws.client

    @cache
    def client_with_faults(service: str) -> Any:
        return injector.attach(create(service))

    aws.client = client_with_faults
    return injector


class BrokerRestarts(threading.Thread):
    """Restarts the broker at the scheduled simulated times while the meters publish."""

    def __init__(
        self,
        rates: FaultRates,
        log: FaultLog,
        restart: Callable[[float], None],
        *,
        duration_s: int,
        speed: float,
    ) -> None:
        super().__init__(daemon=True, name="broker-restarts")
        self.rates, self.log, self.restart = rates, log, restart
        self.times = rates.broker_restart_times(duration_s)
        self.speed = speed
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            for at in self.times:
                if self.stop.wait(max(0.0, started + at / self.speed - time.monotonic())):
                    return
                self.log.record("broker_restarts", simulated_s=round(at),
                                down_s=self.rates.broker_down_s)  # fmt: skip
                self.restart(self.rates.broker_down_s)
        except BaseException as error:  # the demo reports it instead of a silent thread
            self.error = error


class DeadLetterWatch(threading.Thread):
    """The operator's fix for the stuck devices: made once their window is over and the
    dead-letter queue holds at least one message, or at `give_up_at` (an epoch time)."""

    def __init__(
        self, rates: FaultRates, log: FaultLog, depth: Callable[[], int], *, give_up_at: float
    ) -> None:
        super().__init__(daemon=True, name="dead-letter-watch")
        self.rates, self.log, self.depth, self.give_up_at = rates, log, depth, give_up_at
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            if time.time() < self.rates.stuck_until:
                continue
            found = self.depth()
            if found or time.time() >= self.give_up_at:
                self.log.record(FIXED, dead_letters=found)
                Path(self.rates.stuck_fixed_file).touch()
                return
