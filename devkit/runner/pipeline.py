"""Starts and stops the whole local pipeline: broker, moto server, bridge, triggers, archive."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_runtime import contract
from energy_runtime.settings import SettingsError, load_batching_settings, load_processor_settings

from devkit.emulators import aws_api
from devkit.emulators.broker import RULE_CLIENT_NAME, Broker, start_broker
from devkit.emulators.pki import CertificateAuthority
from devkit.faults import FAULT_LOG, FaultRates
from devkit.runner import processes
from devkit.runner.provision import Deployment, provision
from devkit.runner.templates import Stage, load_stage, synthesize
from devkit.runner.worker import read_status

REPO = Path(__file__).resolve().parents[2]
STAGE = "energy-dev"
# How each function checks its settings when it starts (a run's own settings are checked so).
SETTINGS_CHECKS: dict[str, Callable[[dict[str, str]], object]] = {
    contract.PROCESSOR: load_processor_settings,
    contract.BATCHING: load_batching_settings,
}
# The run's record of what was provisioned (names, the functions' settings): the workers
# and `energy-monitoring` commands against `local up` read it.
DEPLOYMENT_FILE = "deployment.json"


@dataclass
class Pipeline:
    run_dir: Path
    ca: CertificateAuthority
    broker: Broker
    moto: subprocess.Popen[bytes]
    deployment: Deployment
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Workers whose death is a fault injected into them: the supervisor starts them again.
    restartable: dict[str, Callable[[], subprocess.Popen[bytes]]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    _supervising: threading.Event = field(default_factory=threading.Event)
    # Starts a worker (name, module, arguments, environment): what start() launched with.
    launch: Callable[[str, str, list[str], dict[str, str]], None] | None = None

    @property
    def fault_log(self) -> Path:
        return self.run_dir / FAULT_LOG

    def supervise(self) -> None:
        """Start a died restartable worker again, as Lambda starts a new runtime."""
        for name, relaunch in self.restartable.items():
            child = self.workers[name]
            if child.poll() is not None and not self._supervising.is_set():
                processes.stop(child)  # reap it and whatever it left in its group
                self.workers[name] = relaunch()
                self.restarts[name] = self.restarts.get(name, 0) + 1

    def restart_broker(self, down_s: float) -> None:
        """A broker outage: stopped, down for `down_s`, started on the same port."""
        self.broker = self.broker.restart(down_s=down_s)

    def start_schedules(self) -> None:
        """The templates' EventBridge schedules (the silence sweep), one worker per function
        they invoke; start() starts them unless told to wait (until meters exist)."""
        assert self.launch is not None
        for function in sorted({schedule.function for schedule in self.deployment.schedules}):
            self.launch(
                f"{function}-schedule",
                "devkit.emulators.schedules",
                ["--function", function],
                self.deployment.functions[function].environment,
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Until every worker has written its status; a worker that exits stops all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, child in self.workers.items():
                if child.poll() is not None:
                    log = (self.run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                    self.stop()
                    raise RuntimeError(f"{name} exited with {child.returncode}:\n{log}")
            if all(self.status(name) for name in self.workers):
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"the pipeline's workers did not report ready within {timeout:.0f} s")

    def start_supervisor(self) -> None:
        def loop() -> None:
            while not self._supervising.wait(0.2):
                self.supervise()

        threading.Thread(target=loop, daemon=True, name="supervisor").start()

    def status(self, name: str) -> dict[str, Any]:
        return read_status(self.run_dir / f"{name}.status.json")

    def counts(self) -> dict[str, Any]:
        return aws_api.counts(self.deployment.endpoint, self.ca.ca_path)

    def stop(self) -> None:
        self._supervising.set()
        # Workers first (they flush), then the services they talk to.
        for child in reversed(list(self.workers.values())):
            processes.stop(child, grace=15)
        self.broker.stop()
        processes.stop(self.moto)


def load_templates(run_dir: Path) -> Stage:
    return load_stage(synthesize(run_dir / "cdk.out"), STAGE)


def _child_env(deployment: Deployment, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(deployment.client_env())
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "runtime")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(
    run_dir: Path,
    stage: Stage,
    *,
    time_scale: float,
    handlers: dict[str, str] | None = None,
    with_archive: bool = True,
    faults: FaultRates | None = None,
    settings: dict[str, dict[str, str]] | None = None,
    schedules: bool = True,
) -> Pipeline:
    """Everything up and subscribed; the caller owns stop() (also registered at exit).
    `settings`: environment variables per function that replace the templates' (a demo
    run's own thresholds), checked as the functions check them. `schedules`: False to
    start them later (`Pipeline.start_schedules`), once there are meters to look at."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(run_dir / "pki")
    broker = start_broker(run_dir / "broker", ca)
    moto_cert = ca.issue_server("moto")
    moto, endpoint = aws_api.start(run_dir, cert=moto_cert.cert, key=moto_cert.key)
    deployment = provision(stage, Deployment(endpoint=endpoint, ca_bundle=str(ca.ca_path)))
    for function, variables in (settings or {}).items():
        deployment.functions[function].environment.update(variables)
        try:
            SETTINGS_CHECKS[function](deployment.functions[function].environment)
        except SettingsError as error:
            processes.stop(moto)
            broker.stop()
            raise ValueError(f"{function} setting: {error}") from None
    deployment_file = run_dir / DEPLOYMENT_FILE
    deployment.save(deployment_file)
    pipeline = Pipeline(run_dir, ca, broker, moto, deployment)
    common = ["--deployment", str(deployment_file), "--time-scale", str(time_scale)]
    rule = ca.issue_client(RULE_CLIENT_NAME)

    def launch(name: str, module: str, args: list[str], env: dict[str, str]) -> None:
        (run_dir / f"{name}.status.json").unlink(missing_ok=True)

        def spawn(*more: str) -> subprocess.Popen[bytes]:
            return processes.spawn(
                [
                    sys.executable,
                    "-m",
                    module,
                    *common,
                    "--status",
                    str(run_dir / f"{name}.status.json"),
                    *args,
                    *more,
                ],
                env=_child_env(deployment, env),
                log=run_dir / f"{name}.log",
                cwd=REPO,
            )

        pipeline.workers[name] = spawn()
        if faults is not None and faults.any and module == "devkit.emulators.event_sources":
            pipeline.restartable[name] = lambda: spawn("--restarted")

    injected = (
        ["--faults", faults.to_json(), "--fault-log", str(pipeline.fault_log)]
        if faults is not None and faults.any
        else []
    )
    for function in ("batching", "processor"):
        override = ["--handler", handlers[function]] if handlers and function in handlers else []
        launch(
            function,
            "devkit.emulators.event_sources",
            ["--function", function, *override, *injected],
            deployment.functions[function].environment,
        )
    pipeline.launch = launch
    if with_archive:
        launch("archive", "devkit.emulators.firehose", [], {})
    launch(
        "bridge",
        "devkit.emulators.topic_rule",
        [
            "--port",
            str(broker.port),
            "--cert",
            str(rule.cert),
            "--key",
            str(rule.key),
            "--ca",
            str(rule.ca),
        ],
        {},
    )
    pipeline._wait_ready()
    if schedules:
        pipeline.start_schedules()
    if pipeline.restartable:
        pipeline.start_supervisor()
    return pipeline


def wait_drained(pipeline: Pipeline, *, messages: int, timeout: float, report: Any = None) -> float:
    """Wait until every published message went through bridge, triggers and archive.

    A stage counts as drained only on a status it wrote from a poll that began after the
    stage before it was drained (a worker busy in a long invocation writes no status, so a
    stale "caught up" cannot end the wait early), and only if that holds for a second.
    """
    started = time.monotonic()
    deadline = started + timeout
    drained_at: dict[str, float] = {}
    upstream = {"batching": "bridge", "archive": "bridge", "processor": "batching"}
    while time.monotonic() < deadline:
        for name, child in pipeline.workers.items():
            if child.poll() is not None and name not in pipeline.restartable:
                raise RuntimeError(f"{name} died: see {pipeline.run_dir / (name + '.log')}")
        bridge = pipeline.status("bridge")
        bridge_done = (
            bridge.get("received", -1) >= messages
            and bridge.get("backlog", 1) == 0
            and bridge.get("put", -1) >= bridge.get("received", 0)
        )
        if bridge_done:
            drained_at.setdefault("bridge", time.time())
        for name in ("batching", "archive", "processor"):
            if name not in pipeline.workers:
                continue
            status = pipeline.status(name)
            after = drained_at.get(upstream[name])
            done = (
                after is not None
                and status.get("polled_at", 0) > after
                and bool(status.get("caught_up"))
                and not status.get("buffered")
            )
            if not done:
                drained_at.pop(name, None)
            else:
                drained_at.setdefault(name, time.time())
        stages = [n for n in ("batching", "archive", "processor") if n in pipeline.workers]
        if all(n in drained_at and time.time() - drained_at[n] >= 1.0 for n in stages):
            return time.monotonic() - started
        if report is not None:
            report()
        time.sleep(0.25)
    raise TimeoutError(f"the pipeline did not drain within {timeout:.0f} s")
