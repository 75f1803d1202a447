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
  // Spans (a labelled incident) behind the curve, marks (an alert) on top of it.
  const inside = t => t >= x0 && t <= x1;
  for (const [t0, t1, color, label] of opts.spans || []) {
    if (t1 < x0 || t0 > x1) continue;
    const a = X(Math.max(t0, x0)), b = X(Math.min(t1, x1));
    el('rect', {x: a, y: 0, width: Math.max(1, b - a), height: h, fill: color, opacity: 0.25}, s, undefined);
    if (label) el('title', {}, s.lastChild, label);
  }
  if (opts.area) el('path', {d: d + `L${X(x1)} ${Y(0)}L${X(x0)} ${Y(0)}Z`, fill: opts.fill, stroke: 'none'}, s);
  // Bands (what an alert expected, low to high) over the curve, within the chart.
  for (const [t0, t1, lo, hi, color, label] of opts.bands || []) {
    if (t1 < x0 || t0 > x1) continue;
    const a = X(Math.max(t0, x0)), b = X(Math.min(t1, x1));
    const top = Y(Math.min(hi, y1)), bottom = Y(Math.max(lo, 0));
    const band = el('rect', {x: a, y: top, width: Math.max(2, b - a), height: Math.max(1, bottom - top),
                             fill: color, opacity: 0.45, class: 'band'}, s);
    el('title', {}, band, label);
  }
  el('path', {d, fill: 'none', stroke: opts.stroke, 'stroke-width': opts.width || 1.5}, s);
  for (const [t, color, label] of opts.marks || []) {
    if (!inside(t)) continue;
    const m = el('line', {x1: X(t), y1: 0, x2: X(t), y2: h, stroke: color, 'stroke-width': 2, class: 'mark'}, s);
    el('title', {}, m, label);
  }
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
  const marks = D.alerts.filter(a => a.device_id === name && a.interval_start).map(a =>
    [Date.parse(a.interval_start), a.status === 'resolved' ? '#1e8449' : '#c0392b',
     `${a.kind} ${a.status || 'alert'} ${a.interval_start}` + (a.expected_wh != null ? `, expected ${a.expected_wh} Wh` : '')]);
  // An alert that says what it expected: its usual level (one robust sigma either side,
  // from its z-score) from its interval until it cleared (or the end of the run).
  const bands = D.alerts.filter(a => a.device_id === name && a.interval_start && a.status !== 'resolved'
                                  && a.expected_wh !== '' && a.expected_wh != null).map(a => {
    const t0 = Date.parse(a.interval_start);
    const cleared = D.alerts.find(r => r.device_id === name && r.kind === a.kind && r.status === 'resolved'
                                       && Date.parse(r.interval_start) > t0);
    const t1 = cleared ? Date.parse(cleared.interval_start) : Infinity;
    const z = Number(a.robust_z), sigma = z > 0 ? (Number(a.energy_wh) - Number(a.expected_wh)) / z : 0;
    const kw = wh => wh * perHour / 1000;
    return [t0, t1, kw(Number(a.expected_wh) - sigma), kw(Number(a.expected_wh) + sigma), '#1e8449',
            `${a.kind}: expected ${a.expected_wh} Wh per interval` + (sigma ? ` ± ${sigma.toFixed(1)}` : '')];
  });
  const spans = D.incidents.filter(i => i.device_id === name).map(i =>
    [i.start_s * 1000, i.end_s * 1000, i.expects ? '#f5cba7' : '#d5dbdb', `${i.kind} (expects ${i.expects || 'nothing'})`]);
  if (series.length) lineChart(cell.id, series, 220, 70, {stroke: '#2471a3', fill: '#d6eaf8', area: true, pad: 4, width: 1, marks, spans, bands});
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
// Cost model
(function () {
  const box = document.getElementById('cost'), c = D.cost;
  if (!c.rows.length) { box.innerHTML = '<p>No cost model in this summary.</p>'; return; }
  const pct = Math.round(c.tolerance * 100);
  box.innerHTML = '<table><tr><th>count</th><th>model</th><th>measured</th><th>measured / model</th><th>checked</th></tr>' +
    c.rows.map(([name, want, got, ratio, bounded]) => `<tr><td>${name}</td><td>${want}</td><td>${got}</td>` +
      `<td>${ratio === null ? '' : ratio}</td><td>${bounded ? 'within ' + pct + '%' : 'reported'}</td></tr>`).join('') +
    '</table>' + `<p>At list prices (${c.region}): model $${c.usd.predicted}, measured $${c.usd.measured}.</p>`;
})();
done('cost');
document.body.dataset.chartsRendered = String(rendered);
})();
