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
from typing import Any

from local.simulator import Simulation
from local.verify import Results

CHARTS = ("building", "apartments", "top", "reasons", "latency", "requests", "alerts")


def _data(
    summary: dict[str, Any], results: Results, simulation: Simulation, latency: list[float]
) -> dict[str, Any]:
    interval_minutes = int(simulation.scenario.interval_s and 15)
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
        alerts.append(
            {
                k: alert.get(k)
                for k in ("device_id", "kind", "interval_start", "energy_wh", "message")
                if k in alert
            }
            or alert
        )
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
            "latency p50 / p95 (s)": f"{summary['latency_s']['p50']} / {summary['latency_s']['p95']}",
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
        "ok": summary["ok"],
        "scenario": summary["scenario"],
    }


_SCRIPT = r"""
(() => {
const D = JSON.parse(document.getElementById('data').textContent);
const NS = 'http://www.w3.org/2000/svg';
let rendered = 0;
function el(tag, attrs, parent, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function svg(id, w, h) {
  const box = document.getElementById(id);
  return el('svg', {viewBox: `0 0 ${w} ${h}`, width: '100%', role: 'img'}, box);
}
function done(id) { document.getElementById(id).dataset.rendered = 'true'; rendered += 1; }
const perHour = 60 / D.interval_minutes;
function lineChart(id, series, w, h, opts) {
  const s = svg(id, w, h), pad = opts.pad || 36;
  const xs = series.map(p => Date.parse(p[0])), ys = series.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y1 = Math.max(...ys, 1e-9);
  const X = t => pad + (w - pad - 8) * (x1 > x0 ? (t - x0) / (x1 - x0) : 0);
  const Y = v => h - pad / 1.5 - (h - pad) * v / y1;
  let d = '';
  series.forEach((p, i) => { d += (i ? 'L' : 'M') + X(xs[i]).toFixed(1) + ' ' + Y(ys[i]).toFixed(1); });
  if (opts.area) el('path', {d: d + `L${X(x1)} ${Y(0)}L${X(x0)} ${Y(0)}Z`, fill: opts.fill, stroke: 'none'}, s);
  el('path', {d, fill: 'none', stroke: opts.stroke, 'stroke-width': opts.width || 1.5}, s);
  if (opts.axes) {
    el('line', {x1: pad, y1: Y(0), x2: w - 8, y2: Y(0), stroke: '#999'}, s);
    el('text', {x: 4, y: Y(y1) + 4, 'font-size': 11}, s, y1.toFixed(1) + ' ' + opts.unit);
    el('text', {x: pad, y: h - 4, 'font-size': 11}, s, new Date(x0).toISOString().slice(0, 16).replace('T', ' '));
    el('text', {x: w - 8, y: h - 4, 'font-size': 11, 'text-anchor': 'end'}, s, new Date(x1).toISOString().slice(0, 16).replace('T', ' ') + ' UTC');
  }
  return s;
}
function bars(id, entries, w, unit, color) {
  const rowH = 22, h = entries.length * rowH + 10, s = svg(id, w, Math.max(h, 30));
  const max = Math.max(...entries.map(e => e[1]), 1e-9), left = 220;
  entries.forEach(([name, value], i) => {
    const y = 5 + i * rowH;
    el('text', {x: left - 6, y: y + 15, 'font-size': 12, 'text-anchor': 'end'}, s, name);
    el('rect', {x: left, y: y + 3, width: Math.max(1, (w - left - 90) * value / max), height: rowH - 6, fill: color}, s);
    el('text', {x: left + (w - left - 90) * value / max + 6, y: y + 15, 'font-size': 12}, s, `${value} ${unit}`);
  });
  if (!entries.length) el('text', {x: 10, y: 20, 'font-size': 12}, s, 'none');
}
// KPIs
const kpis = document.getElementById('kpis');
for (const [k, v] of Object.entries(D.kpis)) {
  const d = document.createElement('div'); d.className = 'kpi' + ((k === 'lost' || k === 'energy mismatches') && v !== 0 ? ' bad' : '');
  d.innerHTML = `<b>${v}</b><span>${k}</span>`; kpis.appendChild(d);
}
// Building total: sum of interval energies -> mean power in kW
const total = {};
for (const rows of Object.values(D.apartments)) for (const [t, wh] of rows) total[t] = (total[t] || 0) + wh;
const building = Object.keys(total).sort().map(t => [t, total[t] * perHour / 1000]);
lineChart('building', building, 900, 240, {stroke: '#c0392b', fill: '#f5b7b1', area: true, axes: true, unit: 'kW', width: 2});
done('building');
// Small multiples
const grid = document.getElementById('apartments');
const names = Object.keys(D.apartments).sort();
for (const name of names) {
  const cell = document.createElement('div'); cell.className = 'cell'; cell.id = 'apt-' + name;
  const heavy = D.heavy.includes(name) ? ' ⚡' : '';
  cell.innerHTML = `<div class="name">${name}${heavy} <small>${D.totals_kwh[name]} kWh</small></div>`;
  grid.appendChild(cell);
  const series = D.apartments[name].map(([t, wh]) => [t, wh * perHour / 1000]);
  if (series.length) lineChart(cell.id, series, 220, 70, {stroke: '#2471a3', fill: '#d6eaf8', area: true, pad: 4, width: 1});
}
done('apartments');
// Top consumers
const topConsumers = Object.entries(D.totals_kwh).sort((a, b) => b[1] - a[1]).slice(0, 10);
bars('top', topConsumers, 560, 'kWh', '#7d3c98'); done('top');
bars('reasons', Object.entries(D.reasons).sort((a, b) => b[1] - a[1]), 560, '', '#d68910'); done('reasons');
// Latency histogram
(function () {
  const v = D.latency, w = 560, h = 160, s = svg('latency', w, h);
  if (!v.length) { el('text', {x: 10, y: 20, 'font-size': 12}, s, 'no samples'); return; }
  const max = Math.max(...v), n = 20, step = max / n || 1, counts = new Array(n).fill(0);
  v.forEach(x => counts[Math.min(n - 1, Math.floor(x / step))]++);
  const cmax = Math.max(...counts), bw = (w - 40) / n;
  counts.forEach((c, i) => el('rect', {x: 30 + i * bw, y: h - 20 - (h - 40) * c / cmax, width: bw - 2, height: (h - 40) * c / cmax, fill: '#17a589'}, s));
  el('text', {x: 30, y: h - 4, 'font-size': 11}, s, '0 s');
  el('text', {x: w - 10, y: h - 4, 'font-size': 11, 'text-anchor': 'end'}, s, max.toFixed(1) + ' s');
  el('text', {x: 30, y: 12, 'font-size': 11}, s, `${v.length} samples, publish → visible in DynamoDB`);
})();
done('latency');
bars('requests', Object.entries(D.requests), 560, '', '#566573'); done('requests');
// Alerts
(function () {
  const box = document.getElementById('alerts');
  if (!D.alerts.length) { box.innerHTML = '<p>No alerts were raised.</p>'; }
  else {
    const keys = Object.keys(D.alerts[0]);
    box.innerHTML = '<table><tr>' + keys.map(k => `<th>${k}</th>`).join('') + '</tr>' +
      D.alerts.map(a => '<tr>' + keys.map(k => `<td>${String(a[k] ?? '').replace(/</g, '&lt;')}</td>`).join('') + '</tr>').join('') + '</table>';
  }
})();
done('alerts');
document.body.dataset.chartsRendered = String(rendered);
})();
"""

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{margin:0 0 4px} h2{margin:28px 0 8px;font-size:17px} .sub{color:#666}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.kpi{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:20px} .kpi span{color:#666;font-size:12px} .kpi.bad{border-color:#c0392b;background:#fdecea}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:8px}
.cell{background:#fff;border:1px solid #e3e3e3;border-radius:4px;padding:4px}
.name{font-size:12px} .name small{color:#888}
.row{display:flex;flex-wrap:wrap;gap:24px} .row>section{flex:1;min-width:480px}
table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ddd;padding:3px 6px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
#requests svg,#top svg,#reasons svg{max-width:640px}
"""


def write_dashboard(
    path: Path,
    summary: dict[str, Any],
    results: Results,
    simulation: Simulation,
    latency: list[float],
) -> None:
    data = json.dumps(_data(summary, results, simulation, latency), separators=(",", ":"))
    safe_data = data.replace("</", "<\\/")  # the JSON cannot close its script element
    scenario = simulation.scenario
    verdict = "verified: nothing lost, energy matches" if summary["ok"] else "VERIFICATION FAILED"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Energy monitoring: local demo</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<style>{_CSS}</style></head>
<body>
<h1>Apartment energy: local pipeline demo</h1>
<div class="sub">{scenario.apartments} apartments, {scenario.days:g} simulated day(s), readings every
{scenario.interval_s} s, {scenario.readings_per_message} per message. <b>{html.escape(verdict)}</b></div>
<div id="kpis" class="kpis"></div>
<h2>Building total load (mean kW per interval)</h2><div id="building" class="card"></div>
<h2>Load curve per apartment (kW; ⚡ heavy user)</h2><div id="apartments" class="grid"></div>
<div class="row">
<section><h2>Top consumers</h2><div id="top" class="card"></div></section>
<section><h2>Alerts raised</h2><div id="alerts" class="card"></div></section>
</div>
<div class="row">
<section><h2>Quarantined by reason</h2><div id="reasons" class="card"></div></section>
<section><h2>Latency: publish to visible in DynamoDB</h2><div id="latency" class="card"></div></section>
</div>
<h2>Requests per service</h2><div id="requests" class="card"></div>
<script type="application/json" id="data">{safe_data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
