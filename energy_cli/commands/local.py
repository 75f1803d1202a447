"""`energy-monitoring local`: the whole pipeline on this machine (no AWS account).

`local demo` runs the demo scenario and verifies it (what `make demo` runs). `local up`
starts the pipeline of environment dev (broker, moto server provisioned from the
synthesized templates, topic rule, triggers, raw archive) and keeps it up until
`local down` or Ctrl-C. It writes its stack outputs in the `cdk deploy --outputs-file`
format, plus the stack `energy-dev-Local` that says where it listens, so every command
runs against it with `--outputs <dir>/outputs.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from energy_cli import console
from energy_cli.errors import CliError

if TYPE_CHECKING:
    from devkit.runner.pipeline import Pipeline

app = typer.Typer(help="The whole pipeline on this machine: demo, up, down.", no_args_is_help=True)

DEFAULT_DIR = Path("out/local")
STATE_FILE = "local.json"
OUTPUTS_FILE = "outputs.json"
ENV_FILE = "env.sh"
STOP_TIMEOUT_S = 60.0
DEFAULT_TIME_SCALE = 10.0
Directory = Annotated[
    Path,
    typer.Option("--dir", help="Where the local pipeline keeps its state.", file_okay=False),
]


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def demo(ctx: typer.Context) -> None:
    """Run the demo scenario through the local pipeline and verify it (`make demo`).

    Options go to the demo: `energy-monitoring local demo --help` lists them.
    """
    from devkit.demo.run import main as run_demo

    raise typer.Exit(run_demo(list(ctx.args)))


def _start_time(pid: int) -> int | None:
    """When the process started (clock ticks since boot, /proc/<pid>/stat field 22), or
    None if there is no such process. With the pid it names one process for good: a pid
    reused by an unrelated process after a reboot or a crash has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return int(fields[19]) if fields[0] != "Z" else None  # a zombie has exited


def _process(pid: int) -> dict[str, int]:
    return {"pid": pid, "start": _start_time(pid) or 0}


def _alive(process: dict[str, int]) -> bool:
    """The very process recorded is still running."""
    started = _start_time(int(process["pid"]))
    return started is not None and started == int(process["start"])


def _signal(process: dict[str, int], signum: int, *, group: bool) -> None:
    """Signal the recorded process (its whole process group: each child is a session
    leader, and the broker and moto server start helpers of their own)."""
    if not _alive(process):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(int(process["pid"]), signum)
        else:
            os.kill(int(process["pid"]), signum)


def _save_state(run_dir: Path, children: list[int], outputs: Path | None) -> None:
    state = {
        "process": _process(os.getpid()),
        "children": [_process(child) for child in children],
        "outputs": str(outputs or ""),
    }
    (run_dir / STATE_FILE).write_text(json.dumps(state))


def _state(directory: Path) -> dict[str, Any] | None:
    path = directory / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
        _alive(state["process"])
        for child in state["children"]:
            _alive(child)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or not one this version wrote: nothing it names is signalled
    return state


def _stop_children(state: dict[str, Any], *, timeout_s: float) -> int:
    """Stop the recorded children (TERM, then KILL after the timeout); how many needed KILL."""
    children: list[dict[str, int]] = state["children"]
    for child in children:
        _signal(child, signal.SIGTERM, group=True)
    deadline = time.monotonic() + timeout_s
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [c for c in children if _alive(c)]
    for child in left:
        _signal(child, signal.SIGKILL, group=True)
    return len(left)


@app.command()
def up(
    directory: Directory = DEFAULT_DIR,
    assembly: Annotated[
        Path | None,
        typer.Option(
            help="An already synthesized cloud assembly (cdk.out) instead of synthesizing.",
            file_okay=False,
            exists=True,
        ),
    ] = None,
    time_scale: Annotated[
        float,
        typer.Option(
            min=1,
            max=3600,
            help="Divide the triggers' batching windows by this (10: the 300 s window of "
            "the batching function takes 30 s; 1: as in AWS).",
        ),
    ] = DEFAULT_TIME_SCALE,
) -> None:
    """Start the local pipeline and keep it up until `local down` or Ctrl-C."""
    state = _state(directory)
    if state and _alive(state["process"]):
        raise CliError(
            f"a local pipeline is already up in {directory} (pid {state['process']['pid']}): "
            "`energy-monitoring local down` first"
        )
    # A `local up` that was killed: its broker and moto server may still run.
    if state and (killed := _stop_children(state, timeout_s=5.0)):
        console.note(f"stopped {killed} process(es) left by an earlier `local up`")
    from devkit.runner import pipeline as local_pipeline
    from devkit.runner.templates import load_stage, synthesize

    run_dir = directory.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    _save_state(run_dir, [], None)  # `local down` during the set-up stops it too
    try:
        if assembly is None:
            synthesizing = f"synthesizing the CDK app ({local_pipeline.STAGE}, ~15 s)"
            with console.status(synthesizing, log=True):
                assembly = synthesize(run_dir / "cdk.out")
        stage = load_stage(assembly, local_pipeline.STAGE)
        starting = "starting mosquitto, moto server, topic rule, triggers, raw archive"
        with console.status(starting, log=True):
            pipeline = local_pipeline.start(run_dir, stage, time_scale=time_scale)
    except (RuntimeError, TimeoutError, LookupError, ValueError) as error:
        (run_dir / STATE_FILE).unlink(missing_ok=True)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CliError(f"the local pipeline did not start: {first} (logs in {run_dir})") from None
    except BaseException:
        (run_dir / STATE_FILE).unlink(missing_ok=True)
        raise
    try:
        outputs = write_outputs(run_dir, pipeline)
        children = [pipeline.broker.process.pid, pipeline.moto.pid]
        children += [child.pid for child in pipeline.workers.values()]
        _save_state(run_dir, children, outputs)
        _announce(run_dir, pipeline, outputs)
        _wait(pipeline)
    except (KeyboardInterrupt, SystemExit):
        pass  # Ctrl-C or `local down` (SIGTERM): the normal way to stop
    finally:
        pipeline.stop()
        (run_dir / STATE_FILE).unlink(missing_ok=True)
        console.note("local pipeline stopped")


def write_outputs(run_dir: Path, pipeline: Pipeline) -> Path:
    """The stack outputs of a local pipeline, as `cdk deploy --outputs-file` writes them,
    with its Local stack: what every command's `--outputs` reads (the demo's replay too)."""
    from devkit.runner.pipeline import DEPLOYMENT_FILE
    from energy_cli import environment as env

    deployment = pipeline.deployment
    stage = next(iter(deployment.outputs)).rsplit("-", 1)[0]
    outputs: dict[str, dict[str, str]] = dict(deployment.outputs)
    outputs[f"{stage}-{env.LOCAL_STACK_ID}"] = {
        env.LOCAL_AWS_ENDPOINT: deployment.endpoint,
        env.LOCAL_CA_BUNDLE: deployment.ca_bundle,
        env.LOCAL_REGION: deployment.region,
        env.LOCAL_BROKER_ENDPOINT: f"{pipeline.broker.host}:{pipeline.broker.port}",
        env.LOCAL_CA_DIRECTORY: str(pipeline.ca.directory),
        env.LOCAL_FUNCTIONS_FILE: str(pipeline.run_dir / DEPLOYMENT_FILE),
    }
    path = run_dir / OUTPUTS_FILE
    path.write_text(json.dumps(outputs, indent=2) + "\n")
    exports = {**deployment.client_env()}
    (run_dir / ENV_FILE).write_text(
        "# For the aws CLI and boto3 scripts against the local moto server: source this file.\n"
        + "".join(f"export {name}={value}\n" for name, value in exports.items())
    )
    return path


def _announce(run_dir: Path, pipeline: Pipeline, outputs: Path) -> None:
    deployment = pipeline.deployment
    console.table(
        "local pipeline (environment dev)",
        ("what", "where"),
        [
            ("MQTT broker (mutual TLS)", f"{pipeline.broker.host}:{pipeline.broker.port}"),
            ("AWS APIs (moto server)", deployment.endpoint),
            ("CA (broker, moto, meters)", str(pipeline.ca.ca_path)),
            ("stack outputs", str(outputs)),
            ("aws CLI / boto3 environment", str(run_dir / ENV_FILE)),
            ("logs", str(run_dir / "*.log")),
        ],
    )
    console.note(
        f"try: energy-monitoring devices list --env dev --outputs {outputs}\n"
        "stop: Ctrl-C, or `energy-monitoring local down`"
    )


def _wait(pipeline: Pipeline) -> None:
    watched = {"broker": pipeline.broker.process, "moto": pipeline.moto, **pipeline.workers}
    while True:
        for name, child in watched.items():
            if child.poll() is not None:
                raise CliError(
                    f"the local {name} exited with {child.returncode}: see "
                    f"{pipeline.run_dir / (name + '.log')}"
                )
        time.sleep(1.0)


@app.command()
def down(directory: Directory = DEFAULT_DIR) -> None:
    """Stop the local pipeline that `local up` started (and every process it started)."""
    state = _state(directory)
    if state is None:
        raise CliError(f"no local pipeline is up in {directory} (no {STATE_FILE})")
    # `local up` stops its children itself (workers first, so they flush); they are
    # signalled here only if it has not done so in time, or is gone.
    _signal(state["process"], signal.SIGTERM, group=False)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _alive(state["process"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal(state["process"], signal.SIGKILL, group=False)
    killed = _stop_children(state, timeout_s=5.0)
    (directory / STATE_FILE).unlink(missing_ok=True)
    console.note("local pipeline stopped" + (f" ({killed} processes killed)" if killed else ""))
