"""The dashboard renders its charts offline in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from energy_runtime.contract import iso_utc

from devkit.demo.dashboard import CHARTS, write_dashboard
from devkit.demo.verify import Results
from devkit.simulator.incidents import IncidentRates
from devkit.simulator.meters import Faults, Scenario, Simulation

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def scenario_output() -> tuple[dict[str, Any], Results, Simulation]:
    """A small scenario's ground truth, shaped as the pipeline's results."""
    scenario = Scenario(
        apartments=4,
        days=0.25,
        start_epoch_s=1_794_700_800,
        faults=Faults(reset_rate=0, late_rate=0),
        incidents=IncidentRates(silences=1.0, silence_minutes=30),
    )
    simulation = Simulation(scenario)
    messages = list(simulation.messages())
    results = Results()
    for device in simulation.devices:
        profile = simulation.profiles[device]
        rows = []
        for start in range(0, int(scenario.days * 86400), 900):
            wh = sum(profile.power_w(start + s) * 10 / 3600 for s in range(0, 900, 10))
            rows.append(
                {"interval_start": iso_utc((simulation.start + start) * 1000), "energy_wh": wh}
            )
        results.intervals[device] = rows
    silence = simulation.incidents[0]
    unusual_at = iso_utc((simulation.start + 3 * 3600) * 1000)
    results.alerts = [
        {"device_id": "apt-0001", "kind": "high_usage", "energy_wh": 2500.0},
        {"device_id": silence.device_id, "kind": "meter_silent", "status": "alert",
         "interval_start": iso_utc(silence.start_s * 1000)},
        {"device_id": "apt-0002", "kind": "unusual_usage", "status": "alert",
         "interval_start": unusual_at, "energy_wh": 500.0, "expected_wh": 100.0,
         "robust_z": 8.0},
    ]  # fmt: skip
    summary: dict[str, Any] = {
        "ok": True,
        "published": sum(m.readings for m in messages),
        "stored": 100,
        "quarantined": 3,
        "duplicates_merged": 2,
        "lost": 0,
        "energy_mismatches": 0,
        "throughput_readings_per_s": 1234.5,
        "latency_s": {"p50": 1.0, "p95": 2.0},
        "duration_s": 10.0,
        "quarantined_by_reason": {"not_json": 2, "missing_field": 1},
        "scenario": {},
        "requests": {
            "iot_messages": 10,
            "kinesis_records": 10,
            "lambda_invocations": {"batching": 2, "processor": 2},
            "dynamodb_write_units": 40,
            "s3_puts": 5,
            "sns_publishes": 1,
        },
        "cost": {
            "tolerance": 0.1,
            "region": "us-east-1",
            "usd": {"predicted": 0.0002, "measured": 0.0002},
            "counts": {
                "messages": {"predicted": 10.0, "measured": 10, "ratio": 1.0, "bounded": True},
                "sns_publishes": {"predicted": 0.0, "measured": 1, "ratio": None, "bounded": False},
            },
        },
    }
    return summary, results, simulation


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    summary, results, simulation = scenario_output()
    page = tmp_path / "dashboard.html"
    write_dashboard(page, summary, results, simulation, [0.5, 1.5, 2.0])
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert "default-src 'none'" in text  # the browser may not fetch anything either


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian package chromium is not installed (make setup)"
)
def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    summary, results, simulation = scenario_output()
    page = tmp_path / "dashboard.html"
    write_dashboard(page, summary, results, simulation, [0.5, 1.5, 2.0, 2.5])
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=90, check=True).stdout
    assert f'data-charts-rendered="{len(CHARTS)}"' in dom
    for chart in CHARTS:
        assert re.search(rf'id="{chart}"[^>]*data-rendered="true"', dom), chart
    # Real drawings, not empty boxes: an area path per apartment plus the building total.
    assert dom.count("<path") >= 2 * (len(simulation.devices) + 1)
    assert dom.count("<rect") >= 4 + 2 + 7  # top consumers, reasons, request counts
    assert "high_usage" in dom
    # The silent meter's alert on its load curve, over its incident's span, and the table
    # says it matched the incident.
    assert dom.count('class="mark"') == 2
    # The unusual interval's expected level as a band (100 Wh ± 50: its z of 8 over 400 Wh).
    (band,) = re.findall(r'<rect[^>]*class="band"[^>]*>.*?</rect>', dom)
    assert "unusual_usage: expected 100 Wh per interval ± 50.0" in band
    assert re.search(r"<td>meter_silent</td><td>alert</td>(<td>[^<]*</td>)*"
                     r"<td>meter_silent</td></tr>", dom)  # fmt: skip
    assert (
        "<td>high_usage</td><td></td><td></td><td>2500</td><td></td><td></td><td>(not judged)</td>"
        in dom
    )
    # How unusual, and that no incident was injected there.
    assert "<td>100</td><td>8</td><td>none: a false alert</td>" in dom
