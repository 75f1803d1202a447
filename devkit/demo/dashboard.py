"""out/demo/dashboard.html: one self-contained page (inline data, JS and SVG; no network).

Charts: the building's total load, every apartment's load curve (small multiples), top
consumers, alerts raised, and pipeline health (conservation, quarantined by reason,
publish-to-DynamoDB latency, request counts). Each chart marks its container with
`data-rendered` once drawn, and the body carries the number of charts drawn, so a
headless browser can check the page really rendered.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any

from devkit.demo.verify import Results
from devkit.simulator import incidents
from devkit.simulator.incidents import RaisedAlert
from devkit.simulator.meters import Simulation

_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"
ALERT_COLUMNS = (
    "device_id", "kind", "status", "interval_start", "energy_wh", "expected_wh", "robust_z",
)  # fmt: skip
CHARTS = ("building", "apartments", "top", "reasons", "latency", "requests", "alerts", "cost")


def _data(
    summary: dict[str, Any], results: Results, simulation: Simulation, latency: list[float]
) -> dict[str, Any]:
    interval_minutes = int(summary.get("interval_minutes", 15))
    apartments = {
        device: [[row["interval_start"], round(float(row["energy_wh"]), 3)] for row in rows]
        for device, rows in results.intervals.items()
    }
    totals = {
        device: round(sum(value for _, value in rows) / 1000, 3)
        for device, rows in apartments.items()
    }
    alerts = []
    for alert in results.alerts[:200]:
        shown = {k: alert.get(k, "") for k in ALERT_COLUMNS}
        raised = RaisedAlert.of(alert) if "interval_start" in alert else None
        incident = incidents.matching(raised, simulation.incidents) if raised else None
        # The labelled incident it is the expected alert of; a configured rule's alerts
        # and resolutions are not judged.
        if alert.get("kind") in incidents.RULE_KINDS or raised is None:
            shown["incident"] = "(not judged)"
        else:
            shown["incident"] = incident.kind if incident else "none: a false alert"
        alerts.append(shown)
    requests = summary["requests"]
    return {
        "interval_minutes": interval_minutes,
        "apartments": apartments,
        "totals_kwh": totals,
        "expected_kwh": {
            d: round(t.expected_energy_wh / 1000, 3) for d, t in simulation.truth.items()
        },
        "heavy": [d for d, p in simulation.profiles.items() if p.heavy_user],
        "alerts": alerts,
        "incidents": [i.public() for i in simulation.incidents],
        "reasons": summary["quarantined_by_reason"],
        "latency": [round(x, 3) for x in latency],
        "kpis": {
            "published": summary["published"],
            "stored": summary["stored"],
            "quarantined": summary["quarantined"],
            "duplicates merged": summary["duplicates_merged"],
            "lost": summary["lost"],
            "energy mismatches": summary["energy_mismatches"],
            "throughput (readings/s)": summary["throughput_readings_per_s"],
            "latency p50 / p95 (s)": "{p50} / {p95}".format(**summary["latency_s"]),
            "duration (s)": summary["duration_s"],
        },
        "requests": {
            "IoT messages": requests["iot_messages"],
            "Kinesis records": requests["kinesis_records"],
            "Lambda invocations: batching": requests["lambda_invocations"]["batching"],
            "Lambda invocations: processor": requests["lambda_invocations"]["processor"],
            "DynamoDB write units": requests["dynamodb_write_units"],
            "S3 PUTs": requests["s3_puts"],
            "SNS publishes": requests["sns_publishes"],
        },
        "cost": _cost_rows(summary.get("cost")),
        "ok": summary["ok"],
        "scenario": summary["scenario"],
    }


def _cost_rows(cost: dict[str, Any] | None) -> dict[str, Any]:
    """The cost model's prediction for this run beside what was measured."""
    if not cost:
        return {"rows": [], "usd": None}
    rows = [
        [name, row["predicted"], row["measured"], row["ratio"], row["bounded"]]
        for name, row in cost["counts"].items()
    ]
    return {
        "rows": rows,
        "usd": cost["usd"],
        "tolerance": cost["tolerance"],
        "region": cost.get("region"),
    }


# The page's script and style live beside this module and are inlined into the page.
_ASSETS = Path(__file__).resolve().parent


def write_dashboard(
    path: Path,
    summary: dict[str, Any],
    results: Results,
    simulation: Simulation,
    latency: list[float],
) -> None:
    data = json.dumps(_data(summary, results, simulation, latency), separators=(",", ":"))
    script = (_ASSETS / "dashboard.js").read_text(encoding="utf-8")
    css = (_ASSETS / "dashboard.css").read_text(encoding="utf-8")
    safe_data = data.replace("</", "<\\/")  # the JSON cannot close its script element
    scenario = simulation.scenario
    verdict = "verified: nothing lost, energy matches" if summary["ok"] else "VERIFICATION FAILED"
    page = Template((_ASSETS / "dashboard.html").read_text(encoding="utf-8")).substitute(
        csp=_CSP,
        css=css,
        script=script,
        data=safe_data,
        apartments=scenario.apartments,
        days=f"{scenario.days:g}",
        interval=scenario.interval_s,
        per_message=scenario.readings_per_message,
        verdict=html.escape(verdict),
    )
    path.write_text(page, encoding="utf-8")
