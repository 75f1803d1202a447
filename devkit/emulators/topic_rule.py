"""The topic rule, locally: MQTT subscription -> the rule's SQL -> Kinesis PutRecords.

The SQL and the partition key come from the synthesized AWS::IoT::TopicRule. This module
evaluates the subset of IoT SQL the rule uses (`encode(*, 'base64')`, `topic(n)`,
`timestamp()`, each `AS name`, FROM a topic filter) and refuses anything else, so a
change to the deployed rule cannot silently diverge from what runs here.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.emulators.broker import RULE_CLIENT_NAME
from devkit.emulators.mqtt import connect, tls_client
from devkit.runner.worker import Worker

_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+'(?P<topic>[^']+)'\s*$", re.IGNORECASE | re.DOTALL
)
_FIELD = re.compile(r"^\s*(?P<expr>.+?)\s+AS\s+(?P<name>\w+)\s*$", re.IGNORECASE)
_TOPIC = re.compile(r"^topic\((\d+)\)$")
MAX_PUT_RECORDS = 500


@dataclass(frozen=True)
class Rule:
    topic_filter: str
    fields: list[tuple[str, Callable[[str, bytes, int], Any]]]
    partition_key: Callable[[str], str]

    def transform(self, topic: str, payload: bytes, received_ms: int) -> dict[str, Any]:
        return {name: evaluate(topic, payload, received_ms) for name, evaluate in self.fields}


def _topic_level(topic: str, index: int) -> str:
    levels = topic.split("/")
    return levels[index - 1] if 0 < index <= len(levels) else ""


def _expression(expr: str) -> Callable[[str, bytes, int], Any]:
    compact = expr.replace(" ", "")
    if compact.lower() == "encode(*,'base64')":
        return lambda _t, payload, _r: base64.b64encode(payload).decode()
    if compact.lower() == "timestamp()":
        return lambda _t, _p, received: received
    match = _TOPIC.match(compact.lower())
    if match:
        index = int(match.group(1))
        return lambda topic, _p, _r: _topic_level(topic, index)
    raise ValueError(f"the local topic rule does not implement the IoT SQL expression {expr!r}")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def parse_rule(sql: str, partition_key: str) -> Rule:
    match = _SELECT.match(sql)
    if not match:
        raise ValueError(f"unsupported topic rule SQL: {sql!r}")
    fields = []
    for part in _split_top_level(match.group("fields")):
        field = _FIELD.match(part)
        if not field:
            raise ValueError(f"every selected field needs `AS name` locally: {part!r}")
        fields.append((field.group("name"), _expression(field.group("expr"))))
    key_match = re.fullmatch(r"\$\{\s*topic\((\d+)\)\s*\}", partition_key)
    if not key_match:
        raise ValueError(f"unsupported partition key template {partition_key!r}")
    key_index = int(key_match.group(1))
    return Rule(match.group("topic"), fields, lambda topic: _topic_level(topic, key_index))


class Bridge:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        deployment = worker.deployment
        self.rule = parse_rule(deployment.rule_sql, deployment.rule_partition_key)
        self.kinesis = deployment.client("kinesis")
        self.queue: deque[tuple[str, bytes, int]] = deque()
        self.received = 0
        self.put = 0
        self.put_requests = 0
        self.throttled_retries = 0
        self.connects = 0

    def on_message(self, _client: object, _userdata: object, message: Any) -> None:
        self.queue.append((message.topic, message.payload, int(time.time() * 1000)))
        self.received += 1

    def flush(self) -> None:
        batch = [self.queue.popleft() for _ in range(min(MAX_PUT_RECORDS, len(self.queue)))]
        entries = [
            {
                "Data": json.dumps(
                    self.rule.transform(topic, payload, received), separators=(",", ":")
                ).encode(),
                "PartitionKey": self.rule.partition_key(topic),
            }
            for topic, payload, received in batch
        ]
        while entries:
            response = self.kinesis.put_records(
                StreamName=self.worker.deployment.stream_name, Records=entries
            )
            self.put_requests += 1
            failed = [
                e for e, r in zip(entries, response["Records"], strict=True) if "ErrorCode" in r
            ]
            self.put += len(entries) - len(failed)
            if failed:
                self.throttled_retries += 1
                time.sleep(0.05)
            entries = failed

    def run(self, host: str, port: int, cert: Path, key: Path, ca: Path) -> None:
        client = tls_client(RULE_CLIENT_NAME, cert=cert, key=key, ca=ca)
        client.on_message = self.on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *_a: subscribed.set()

        def on_connect() -> None:
            # The resumed session keeps the subscription; subscribing again is harmless
            # and covers a broker that lost it.
            self.connects += 1
            client.subscribe(self.rule.topic_filter, qos=1)

        connect(client, host, port, on_every_connect=on_connect)
        if not subscribed.wait(10):
            raise RuntimeError("the bridge could not subscribe")
        self.worker.write_status(subscribed=True, received=0, put=0)
        last_status = 0.0
        while not self.worker.stopping.is_set() or self.queue:
            if self.queue:
                self.flush()
            else:
                time.sleep(0.02)
            if time.monotonic() - last_status > 0.25:
                self._status()
                last_status = time.monotonic()
        client.disconnect()
        client.loop_stop()
        self._status()

    def _status(self) -> None:
        self.worker.write_status(
            subscribed=True,
            received=self.received,
            put=self.put,
            backlog=len(self.queue),
            put_requests=self.put_requests,
            throttled_retries=self.throttled_retries,
            reconnects=max(0, self.connects - 1),
        )


def main(argv: list[str] | None = None) -> None:
    worker = Worker(
        "IoT topic rule emulation",
        argv,
        host={"default": "127.0.0.1"},
        port={"type": int, "required": True},
        cert={"type": Path, "required": True},
        key={"type": Path, "required": True},
        ca={"type": Path, "required": True},
    )
    args = worker.args
    Bridge(worker).run(args.host, args.port, args.cert, args.key, args.ca)


if __name__ == "__main__":
    main()
