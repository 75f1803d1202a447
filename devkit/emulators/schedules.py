"""EventBridge schedules, locally: one process invokes a function's real handler in-process
with each of its scheduled rules' inputs, at the rules' rates (in simulated time: divided
by --time-scale), as EventBridge would. An invocation that raises is counted and logged;
the next one comes at its time regardless (the stacks give the targets no retries)."""

from __future__ import annotations

import time
import traceback
from typing import Any

from devkit.emulators.event_sources import LambdaContext, load_handler
from devkit.runner.worker import Worker


def main(argv: list[str] | None = None) -> None:
    worker = Worker(
        "EventBridge schedule emulation", argv, function={"required": True,
                                                          "choices": ["batching", "processor"]},
    )  # fmt: skip
    function = worker.args.function
    spec = worker.deployment.functions[function]
    schedules = [s for s in worker.deployment.schedules if s.function == function]
    handler = load_handler(spec.handler)
    due = [time.monotonic() + worker.scaled(s.rate_s) for s in schedules]
    stats: dict[str, Any] = {"invocations": 0, "errors": 0, "last_result": None}
    worker.write_status(stats=stats, schedules=len(schedules))
    while not worker.stopping.is_set():
        now = time.monotonic()
        for index, schedule in enumerate(schedules):
            if now < due[index]:
                continue
            due[index] = now + worker.scaled(schedule.rate_s)
            context = LambdaContext(
                function_name=spec.logical_id,
                memory_limit_in_mb=spec.memory_mb,
                timeout_s=spec.timeout_s,
                invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:"
                f"{spec.logical_id}",
            )
            stats["invocations"] += 1
            try:
                stats["last_result"] = handler(dict(schedule.input), context)
            except Exception:  # a function error, as EventBridge sees it: logged, not retried
                stats["errors"] += 1
                traceback.print_exc()
            worker.write_status(stats=stats, schedules=len(schedules))
        pending = [d - time.monotonic() for d in due]
        worker.stopping.wait(max(0.01, min(pending, default=1.0)))
    worker.write_status(stats=stats, schedules=len(schedules), stopped=True)


if __name__ == "__main__":
    main()
