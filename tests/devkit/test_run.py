"""`make demo` end to end on a small scenario: real broker, moto server, handlers, archive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devkit.runner.processes import port_is_free
from devkit.runner.templates import load_stage

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


SCENARIO = [
    "--apartments", "3", "--days", "0.06", "--speed", "300",
    "--duplicate-rate", "0.05", "--garbage-rate", "0.05", "--late-rate", "0.02",
    "--reset-rate", "8",
    # Low enough for a few of this night's intervals: alerts to compare under faults.
    "--high-usage-threshold", "55",
]  # fmt: skip


def run_demo(out: Path, *more: str, scenario: list[str] = SCENARIO) -> tuple[int, Path, str]:
    command = [sys.executable, "-m", "devkit.demo.run", *scenario, "--out", str(out), *more]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    return done.returncode, out, done.stdout + done.stderr


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def fault_run(
    demo_run: tuple[int, Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, Path, str]:
    """The same scenario with every fault the demo injects, each at least once per
    trigger, compared with the fault-free run above."""
    return run_demo(
        tmp_path_factory.mktemp("faults"), "--faults", "--fault-each-once",
        "--reference", str(demo_run[1]),
    )  # fmt: skip


SILENCES = [
    "--apartments", "10", "--days", "0.06", "--speed", "300", "--duplicate-rate", "0",
    "--garbage-rate", "0", "--late-rate", "0", "--reset-rate", "0",
    # Three of the ten go quiet for 25 minutes (apt-0001, -0003, -0009: seed 7).
    # 15 minutes behind the fleet is silent, as deployed: at 300x the pipeline keeps up.
    "--silences", "0.2", "--silence-minutes", "25", "--silent-after", "15",
]  # fmt: skip


def test_the_schedule_s_sweep_alerts_silent_meters_and_their_readings_resolve_it(
    tmp_path: Path,
) -> None:
    """The local pipeline runs the template's EventBridge schedule: each meter's silence is
    alerted (by the sweep), once, within 30 minutes, and resolved when it sends again."""
    code, out, log = run_demo(tmp_path / "silences", scenario=SILENCES)
    assert code == 0, log[-3000:]
    result = summary(out)
    assert result["lost"] == 0 and result["energy_mismatches"] == 0
    quality = result["alerts_quality"]
    assert quality["incidents_by_kind"] == {"meter_silent": 3}
    silenced = sorted(i["device_id"] for i in quality["incidents"])
    silent = quality["kinds"]["meter_silent"]
    assert (silent["alerts"], silent["precision"], silent["recall"]) == (3, 1.0, 1.0)
    assert silent["median_minutes_to_alert"] <= 30
    assert quality["silent_after_minutes"] == 15
    sent = json.loads((out / "alerts.json").read_text())
    assert sorted((a["device_id"], a["status"]) for a in sent) == sorted(
        (device, status) for device in silenced for status in ("alert", "resolved")
    )  # fmt: skip
    sweeps = json.loads((out / "run" / "processor-schedule.status.json").read_text())
    assert sweeps["stats"]["invocations"] > 10 and sweeps["stats"]["errors"] == 0


def summary(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return result


def test_the_demo_verifies_itself(demo_run: tuple[int, Path, str]) -> None:
    code, out, log = demo_run
    assert code == 0, log[-3000:]
    result = summary(out)
    assert result["lost"] == 0
    assert result["energy_mismatches"] == 0
    assert (
        result["published"]
        == result["duplicates_merged"] + result["stored"] + result["quarantined"]
    )
    assert result["quarantined"] == sum(result["quarantined_by_reason"].values()) > 0
    assert result["duplicates_merged"] > 0
    assert "verified: nothing lost" in log


def test_alerts_name_the_building_and_apartment_of_their_meter(
    demo_run: tuple[int, Path, str],
) -> None:
    _, out, _ = demo_run
    sent = json.loads((out / "alerts.json").read_text())
    assert sent, "the test scenario's threshold raises a few alerts"
    for alert in sent:  # 3 apartments: all in the first building
        assert alert["building"] == "b-01" and alert["apartment"] == alert["device_id"][-1]
        assert alert["text"].startswith(f"building b-01, apartment {alert['apartment']} (")


def test_every_service_was_really_used(demo_run: tuple[int, Path, str]) -> None:
    _, out, _ = demo_run
    result = summary(out)
    requests = result["requests"]
    assert requests["iot_messages"] == requests["kinesis_records"] == result["messages_published"]
    assert requests["lambda_invocations"]["batching"] >= 1
    assert requests["lambda_invocations"]["processor"] >= 1
    assert requests["dynamodb_write_units"] > 0
    assert requests["s3_puts_by_prefix"].get("raw/", 0) >= 1
    assert requests["s3_puts_by_prefix"].get("quarantine/", 0) >= 1
    # The raw archive holds every Kinesis record exactly once.
    assert result["raw_archive"]["rows"] == requests["kinesis_records"]
    assert result["on_failure_messages"] == result["dead_letters"] == 0
    assert result["latency_s"]["samples"] > 0
    assert (out / "dashboard.html").stat().st_size > 1000


def test_settings_came_from_the_synthesized_templates(demo_run: tuple[int, Path, str]) -> None:
    _, out, _ = demo_run
    deployment = json.loads((out / "run" / "deployment.json").read_text())
    stage = load_stage(out / "run" / "cdk.out", "energy-dev")
    mappings = [r["Properties"] for _, _, r in stage.of_type("AWS::Lambda::EventSourceMapping")]
    kinesis = next(m for m in mappings if "StartingPosition" in m)
    local = deployment["mappings"]["batching"]
    assert local["batch_size"] == kinesis["BatchSize"]
    assert local["window_s"] == kinesis.get("MaximumBatchingWindowInSeconds", 0)
    assert local["bisect"] == kinesis["BisectBatchOnFunctionError"]
    assert local["max_retry_attempts"] == kinesis["MaximumRetryAttempts"]
    assert local["report_item_failures"] is True
    assert local["on_failure_url"]
    functions = {
        r["Properties"]["Handler"]: r["Properties"]
        for _, _, r in stage.of_type("AWS::Lambda::Function")
        if "energy_runtime" in r["Properties"].get("Handler", "")
    }
    processor = functions["energy_runtime.processor.handler"]["Environment"]["Variables"]
    assert set(deployment["functions"]["processor"]["environment"]) == set(processor)
    assert (
        deployment["functions"]["processor"]["environment"]["TABLE_NAME"]
        == deployment["table_name"]
    )


def test_nothing_is_left_running(demo_run: tuple[int, Path, str]) -> None:
    _, out, _ = demo_run
    run = out / "run"
    for status in run.glob("*.status.json"):
        pid = json.loads(status.read_text())["pid"]
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    moto_port = int((run / "moto.port").read_text())
    broker_port = int(
        next(
            line.split()[1]
            for line in (run / "broker" / "mosquitto.conf").read_text().splitlines()
            if line.startswith("listener")
        )
    )
    assert port_is_free(moto_port) and port_is_free(broker_port)


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    import signal
    import time

    command = [sys.executable, "-m", "devkit.demo.run", "--apartments", "2", "--days", "0.5"]
    command += ["--speed", "60", "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])}
    log = tmp_path / "demo.log"
    with log.open("w") as output:
        demo = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "simulated |" not in log.read_text():
            assert demo.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the demo did not start publishing"
            time.sleep(0.2)
        children = _descendants(demo.pid)
        assert len(children) >= 6  # broker, moto server, bridge, two triggers, archive
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) != 0
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []
    run = tmp_path / "run"
    assert port_is_free(int((run / "moto.port").read_text()))


def test_the_cost_model_predicts_what_the_run_measured(demo_run: tuple[int, Path, str]) -> None:
    # The model's counts for the run's own scenario and settings (devkit/demo/cost.py says
    # which two inputs come from the run) against the moto server's counts.
    _, out, _ = demo_run
    cost = summary(out)["cost"]
    counts = cost["counts"]
    bounded = {name for name, row in counts.items() if row["bounded"]}
    assert bounded == {
        "messages", "rule_actions", "kinesis_records", "kinesis_payload_units",
        "dynamodb_write_units", "s3_processed_puts",
    }  # fmt: skip
    for name in bounded:
        row = counts[name]
        assert row["measured"] > 0, name
        assert abs(row["measured"] / row["predicted"] - 1) <= 0.10, (name, row)
    assert cost["within_tolerance"] is True
    # Timing and data set these: shown beside the model.
    for name in ("batching_invocations", "processor_invocations", "s3_raw_puts"):
        assert counts[name]["measured"] > 0 and counts[name]["predicted"] > 0, name
    assert 0.9 <= cost["usd"]["measured"] / cost["usd"]["predicted"] <= 1.1


def test_faults_lose_nothing_and_leave_the_table_as_without_them(
    fault_run: tuple[int, Path, str],
) -> None:
    code, out, log = fault_run
    assert code == 0, log[-3000:]
    result = summary(out)
    assert result["lost"] == 0 and result["energy_mismatches"] == 0
    assert (
        result["published"]
        == result["duplicates_merged"] + result["stored"] + result["quarantined"]
    )
    faults = result["faults"]
    injected = faults["injected_faults"]
    assert injected["crashes"] >= 2 and injected["timeouts"] >= 2  # in each trigger
    assert injected["transient_errors"] >= 2
    for function in ("batching", "processor"):
        # Each crash and timeout ended its process; the supervisor started a new one,
        # which was handed the batch in flight again.
        assert faults["restarts"][function] >= 2, faults
        assert faults["redelivered"][function] >= 1, faults
    assert faults["fault_free_identical"] is True, faults["differences"]
    assert faults["items_compared"] > 0
    assert faults["drain_after_last_fault_s"] is not None
    # The stuck device's hand-off messages ended in the dead-letter queue, and the replay
    # after the fix applied every one of them (and the table is still the fault-free one's).
    assert injected["refused_device_requests"] >= 1
    dead = faults["dead_letters"]
    assert dead["found"] >= 1 and dead["applied"] == dead["found"] and dead["still_failing"] == 0
    assert injected["dead_letters_replayed"] == dead["found"]
    assert result["dead_letters"] == 0
    # The broker went down mid-run: meters and bridge reconnected to their persistent
    # sessions, the meters published what they had buffered, and nothing was dropped.
    assert injected["broker_restarts"] >= 1
    assert faults["bridge_reconnects"] >= 1
    meters = result["meters"]
    assert meters["reconnects"] >= 3 and meters["buffered_messages"] >= 1, meters
    assert result["dropped_at_meter"] == meters["dropped_readings"] == 0
    # Alerts at least once, none twice: every alert of the fault-free run was sent again.
    alerts = faults["alert_differences"]
    assert faults["fault_free_alerts"] >= 1
    assert alerts["missing_count"] == alerts["duplicated_count"] == 0, alerts
