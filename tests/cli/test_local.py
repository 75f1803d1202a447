"""`local up`, then the other commands against it with its outputs file, then `local down`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from infra.synthesis import SynthesizedApp

from energy_cli.commands.local import _alive, _process

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def wait_for(condition: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def local_up(
    synthesized: SynthesizedApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    directory = tmp_path_factory.mktemp("local")
    log = (directory.parent / "local-up.log").open("wb")
    up = subprocess.Popen(
        [
            Path(sys.executable).parent / "energy-monitoring", "local", "up",
            "--dir", directory, "--assembly", synthesized.outdir, "--time-scale", "300",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ},
    )  # fmt: skip

    def ready() -> bool:
        if up.poll() is not None:
            raise RuntimeError((directory.parent / "local-up.log").read_text()[-3000:])
        state = directory / "local.json"
        return state.exists() and bool(json.loads(state.read_text())["children"])

    try:
        wait_for(ready, timeout=90, what="local up was not ready")
        yield up, directory
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=60)
        log.close()


def test_commands_run_against_local_up_and_down_leaves_nothing(
    local_up: tuple[subprocess.Popen[bytes], Path], cli: Any
) -> None:
    up, directory = local_up
    outputs = directory / "outputs.json"
    common = ("--env", "dev", "--outputs", outputs)

    stacks = cli("outputs", *common, "--json").json()
    assert stacks["energy-dev-Ingest"]["IotPolicyName"]
    assert stacks["energy-dev-Local"]["BrokerEndpoint"].startswith("127.0.0.1:")

    # A meter registered in moto without a CA, its certificate from the local CA.
    out = directory / "devices"
    registered = cli(
        "devices", "register", *common, "--thing", "apt-0142", "--building", "b7",
        "--apartment", "0142", "--out", out, "--json",
    )  # fmt: skip
    assert registered.code == 0, registered.err
    folder = out / "apt-0142"
    certificate = x509.load_pem_x509_certificate((folder / "certificate.pem").read_bytes())
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "apt-0142"
    assert (folder / "LocalRootCA.pem").read_bytes() == (directory / "pki" / "ca.pem").read_bytes()

    # The meter's folder is all `simulate` needs to publish through the local broker.
    published = cli("simulate", "--device", folder, "--minutes", "2", "--speed", "120",
                    "--readings-per-message", "6", "--json")  # fmt: skip
    assert published.code == 0, published.err
    result = published.json()
    assert result["things"] == ["apt-0142"] and result["refused"] == 0
    assert result["messages"] >= 2

    def heard() -> dict[str, Any] | None:
        (device,) = cli("devices", "list", *common, "--json").json()
        return device if device["last_reading"] else None

    device = wait_for(heard, timeout=60, what="the reading did not reach the table")
    assert device["thing"] == "apt-0142" and len(device["active_certificates"]) == 1

    # What the processor stored, read back from the table and (DuckDB) from the archive.
    day = dt.datetime.now(dt.UTC).date()
    span = ("--from", str(day - dt.timedelta(days=1)), "--to", str(day + dt.timedelta(days=1)))

    def consumed(source: str) -> list[tuple[str, float]]:
        result = cli("query", *common, "--device", "apt-0142", *span, "--every", "15m",
                     "--source", source, "--json")  # fmt: skip
        assert result.code == 0, result.err
        return [(row["bucket_start"], row["energy_wh"]) for row in result.json()["rows"]]

    table = consumed("dynamodb")
    assert table and wait_for(lambda: consumed("archive") == table, timeout=30,
                              what="the archive did not match the table")  # fmt: skip

    # Simulated apartments on the local broker, certificates straight from the local CA.
    apartments = cli("simulate", "--outputs", outputs, "--apartments", "2", "--minutes", "1",
                     "--speed", "120", "--json")  # fmt: skip
    assert apartments.code == 0, apartments.err
    assert apartments.json()["things"] == ["apt-0001", "apt-0002"]

    state = json.loads((directory / "local.json").read_text())
    # broker, moto, 2 triggers, the schedule (the silence sweep), archive, topic rule
    assert len(state["children"]) == 7
    down = cli("local", "down", "--dir", directory)
    assert down.code == 0, down.err
    assert up.wait(timeout=30) == 0
    assert not [p for p in [state["process"], *state["children"]] if _alive(p)]
    assert not (directory / "local.json").exists()
    again = cli("local", "down", "--dir", directory)
    assert again.code == 1 and "no local pipeline is up" in again.err


def test_down_signals_only_the_processes_it_recorded_not_a_reused_pid(
    cli: Any, tmp_path: Path
) -> None:
    # Two sleepers in sessions of their own, as `local up` starts its children: one
    # recorded as it is, one under a start time of another process (its pid reused).
    ours, stranger = (subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(2))
    try:
        recorded = {**_process(stranger.pid), "start": _process(stranger.pid)["start"] - 1}
        state = {
            "process": {"pid": os.getpid(), "start": 1},  # this test, under a stale record
            "children": [_process(ours.pid), recorded],
            "outputs": "",
        }
        (tmp_path / "local.json").write_text(json.dumps(state))
        down = cli("local", "down", "--dir", tmp_path)
        assert down.code == 0, down.err
        assert ours.wait(timeout=10) != 0  # stopped by its signal
        assert stranger.poll() is None  # never signalled
        assert not (tmp_path / "local.json").exists()
    finally:
        for child in (ours, stranger):
            child.kill()
            child.wait()
