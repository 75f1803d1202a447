"""The moto server on loopback, over TLS, counting what the pipeline asks of each service.

Run as `python -m devkit.emulators.aws_api --ready FILE --cert C --key K`: it binds a free
127.0.0.1 port, writes the port to FILE, and serves moto's AWS APIs. A WSGI middleware
counts requests per service and action, Kinesis records put, DynamoDB write units and S3
object PUTs per top-level prefix; GET /_local/counts returns them as JSON.

DynamoDB write units are estimated from the request by `devkit.metering` (the benchmark's
meter too), since moto does not meter capacity.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import signal
import socket
import ssl
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from werkzeug.serving import WSGIRequestHandler, make_server

from devkit.metering import write_units

COUNTS_PATH = "/_local/counts"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])}


KINESIS_PAYLOAD_UNIT_BYTES = 25 * 1024


def _payload_units(record: dict[str, Any]) -> int:
    """A PUT's payload units: its data and partition key in 25 KB steps, at least one."""
    size = len(base64.b64decode(record.get("Data", ""))) + len(
        record.get("PartitionKey", "").encode()
    )
    return max(1, -(-size // KINESIS_PAYLOAD_UNIT_BYTES))


class CountingMiddleware:
    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.serial: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self.busy_s: defaultdict[str, float] = defaultdict(float)
        self.wait_s: defaultdict[str, float] = defaultdict(float)
        self.requests: Counter[str] = Counter()
        self.kinesis_records = 0
        self.kinesis_payload_units = 0
        self.dynamodb_write_units = 0
        self.s3_puts: Counter[str] = Counter()
        self.sns_publishes = 0

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests),
                "kinesis_records_put": self.kinesis_records,
                "kinesis_payload_units": self.kinesis_payload_units,
                "dynamodb_write_units": self.dynamodb_write_units,
                "s3_puts": dict(self.s3_puts),
                "sns_publishes": self.sns_publishes,
                "server_busy_s": _rounded(self.busy_s),
                "server_wait_s": _rounded(self.wait_s),
            }

    @staticmethod
    def _key(environ: Environ) -> str:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        service = (
            auth.split("Credential=", 1)[1].split("/")[3] if "Credential=" in auth else "unknown"
        )
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        action = target.rsplit(".", 1)[-1] if target else environ.get("REQUEST_METHOD", "")
        return f"{service}:{action}"

    def _count(self, environ: Environ, body: bytes) -> None:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        service = (
            auth.split("Credential=", 1)[1].split("/")[3] if "Credential=" in auth else "unknown"
        )
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        action = target.rsplit(".", 1)[-1] if target else ""
        method = environ.get("REQUEST_METHOD", "GET")
        if not action and body and service in ("sns", "sqs", "sts", "iam"):
            action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        if service == "s3":
            path = unquote(environ.get("PATH_INFO", "/")).lstrip("/")
            _bucket, _, key = path.partition("/")
            action = f"{method} {'object' if key else 'bucket'}"
            if (
                method in ("PUT", "POST")
                and key
                and "uploadId" not in environ.get("QUERY_STRING", "")
            ):
                with self.lock:
                    self.s3_puts[key.split("/", 1)[0] + "/" if "/" in key else key] += 1
        with self.lock:
            self.requests[f"{service}:{action or method}"] += 1
        if service == "kinesis" and action in ("PutRecords", "PutRecord"):
            request = json.loads(body)
            records = request.get("Records", []) if action == "PutRecords" else [request]
            units = sum(_payload_units(record) for record in records)
            with self.lock:
                self.kinesis_records += len(records)
                self.kinesis_payload_units += units
        elif service == "dynamodb" and action:
            units = write_units(action, json.loads(body)) if body else 0
            with self.lock:
                self.dynamodb_write_units += units
        elif service == "sns" and action in ("Publish", "PublishBatch"):
            with self.lock:
                self.sns_publishes += 1

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH and "HTTP_AUTHORIZATION" not in environ:
            payload = json.dumps(self.snapshot()).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            body = environ["wsgi.input"].read(length)
        elif environ.get("wsgi.input_terminated"):
            # A chunked upload (botocore's flexible checksums): read it whole, pass it on plain.
            body = environ["wsgi.input"].read()
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["CONTENT_LENGTH"] = str(len(body))
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        # Counting must never break a request: whatever it makes of the body, moto gets it.
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            self._count(environ, body)
        # moto's backends are not thread-safe (a Kinesis shard's records are iterated while
        # PutRecords appends to them): one request at a time per service.
        key = self._key(environ)
        waited = time.perf_counter()
        with self.lock:
            service_lock = self.serial[key.split(":", 1)[0]]
        with service_lock:
            began = time.perf_counter()
            response = list(self.app(environ, start_response))
            ended = time.perf_counter()
        with self.lock:
            self.busy_s[key] += ended - began
            self.wait_s[key] += began - waited
        return response


class _KeepAliveHandler(WSGIRequestHandler):
    # HTTP/1.1 keeps boto3's pooled TLS connections open between requests.
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
        # algorithm meets the client's delayed ACK and every request waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _fast_kinesis_reads() -> None:
    """Stream-unique sequence numbers, found by number instead of by scanning the shard.

    moto numbers a shard's records 1, 2, 3... but its GetRecords walks every record from
    the start on each call, which makes a day of readings quadratic. Same results, found
    directly.
    """
    from moto.kinesis.models import Record, Shard

    def get_records(
        self: Shard, last_sequence_id: str, limit: int | None
    ) -> tuple[list[Record], int, int]:
        last = int(last_sequence_id)
        if not self.records:
            return [], last, 0
        newest = next(reversed(self.records))
        results: list[Record] = []
        sequence = max(last + 1, next(iter(self.records)))
        while sequence <= newest and (limit is None or len(results) < limit):
            record = self.records.get(sequence)
            if record is not None:
                results.append(record)
                last = sequence
            sequence += 1
        behind = self.records[newest].created_at - results[-1].created_at if results else 0.0
        return results, last, int(behind * 1000)

    def get_max_sequence_number(self: Shard) -> int:
        return next(reversed(self.records)) if self.records else 0

    def put_record(self: Shard, partition_key: str, data: str, explicit_hash_key: str) -> str:
        # Kinesis sequence numbers are unique across a stream's shards; moto numbers each
        # shard 1, 2, 3... Offsetting every shard keeps them stream-unique, as consumers
        # that key objects by sequence number (quarantine, archive) rightly assume.
        last = next(reversed(self.records)) if self.records else (self._shard_id + 1) * 10**18
        self.records[last + 1] = Record(partition_key, data, last + 1, explicit_hash_key)
        return str(last + 1)

    def get_min_sequence_number(self: Shard) -> int:
        return next(iter(self.records)) if self.records else 0

    Shard.get_records = get_records  # type: ignore[method-assign]
    Shard.put_record = put_record  # type: ignore[method-assign]
    # moto copies every key of the shard to find the newest one, on every PutRecord.
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]


def _partition_queries() -> None:
    """Let a table Query read its partition instead of sorting the whole table.

    moto answers a Query on the base table by sorting every item of the table and then
    keeping the partition's: each Query costs O(table), and a day of intervals makes the
    processor's queries dominate the run. Index queries keep moto's own path.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        # Requests to one service are serialized (CountingMiddleware), so the instance
        # attribute shadows all_items for this call only.
        self.all_items = lambda: partition  # type: ignore[method-assign]
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server on loopback with request counts")
    parser.add_argument("--ready", type=Path, required=True, help="file to write the port to")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)

    from moto.server import DomainDispatcherApplication, create_backend_app

    _fast_kinesis_reads()
    _partition_queries()

    app = CountingMiddleware(DomainDispatcherApplication(create_backend_app))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(args.cert), str(args.key))
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_KeepAliveHandler, ssl_context=context
    )
    server.daemon_threads = True  # type: ignore[attr-defined]

    def shutdown(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    tmp = args.ready.with_suffix(".tmp")
    tmp.write_text(str(server.server_port))
    tmp.replace(args.ready)
    server.serve_forever()
    server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()


def start(directory: Path, *, cert: Path, key: Path, timeout: float = 30.0) -> tuple[Any, str]:
    """Start the server as a child process; returns (process, https endpoint URL)."""

    from devkit.runner import processes

    ready = directory / "moto.port"
    ready.unlink(missing_ok=True)
    child = processes.spawn(
        [
            sys.executable,
            "-m",
            "devkit.emulators.aws_api",
            "--ready",
            str(ready),
            "--cert",
            str(cert),
            "--key",
            str(key),
        ],
        log=directory / "moto.log",
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if child.poll() is not None:
            raise RuntimeError(
                f"moto server exited: {(directory / 'moto.log').read_text()[-2000:]}"
            )
        if time.monotonic() > deadline:
            processes.stop(child)
            raise TimeoutError("moto server did not start")
        time.sleep(0.05)
    port = int(ready.read_text())
    processes.wait_for_port(port, timeout=timeout, process=child)
    return child, f"https://127.0.0.1:{port}"


def counts(endpoint: str, ca_bundle: Path) -> dict[str, Any]:
    import urllib.request

    context = ssl.create_default_context(cafile=str(ca_bundle))
    with urllib.request.urlopen(endpoint + COUNTS_PATH, context=context, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result
