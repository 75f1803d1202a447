"""What every local worker process shares: a status file, a stop flag, a deployment."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from devkit.runner.provision import Deployment


class Worker:
    """Parses the common arguments, stops on SIGTERM/SIGINT, publishes a status file."""

    def __init__(self, description: str, argv: list[str] | None = None, **extra: Any) -> None:
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--deployment", type=Path, required=True)
        parser.add_argument("--status", type=Path, required=True)
        parser.add_argument(
            "--time-scale",
            type=float,
            default=1.0,
            help="simulated seconds per wall second: batching windows are divided by it",
        )
        for name, options in extra.items():
            parser.add_argument("--" + name.replace("_", "-"), **options)
        self.args = parser.parse_args(argv)
        self.deployment = Deployment.load(self.args.deployment)
        self.stopping = threading.Event()
        self.status: dict[str, Any] = {"pid": os.getpid(), "started": time.time()}
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())

    def scaled(self, seconds: float) -> float:
        return seconds / self.args.time_scale

    def write_status(self, **values: Any) -> None:
        self.status.update(values, updated=time.time())
        tmp = self.args.status.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status))
        tmp.replace(self.args.status)


def read_status(path: Path) -> dict[str, Any]:
    """A JSON file a worker writes by rename (its status, checkpoints, lease): {} when it
    is missing or unreadable."""
    try:
        result: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return result
