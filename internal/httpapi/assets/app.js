// driftmon dashboard: reads /api/v1 and draws, per model version, a features ×
// windows heat map of drift, the model's performance per window when its stream
// joins late labels, and the reference vs current distribution of every feature
// in the selected window, then the alert list. No framework, no network
// access beyond this server.
"use strict";

const WINDOWS = 24;          // columns of the heat map
const PERF_WINDOWS = 12;     // lines of a performance panel
const REFRESH_MS = 10000;
const selected = new Map();  // model key → selected window id
// model key → the segment key its heat map is split by ("" the whole traffic); the
// page's ?split=country preselects one for every model.
const splits = new Map();
const SPLIT = new URLSearchParams(location.search).get("split") || "";

// el builds an element: el("td", {class: "cell", "data-feature": "x"}, child, "text").
// A style is set through the element's CSSOM, which the page's Content-Security-Policy
// (style-src 'self') allows; a style attribute would be blocked.
function el(tag, attrs, ...children) {
  const svg = ["svg", "rect", "text", "title", "line", "g"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(url + ": " + msg);
  }
  return r.json();
}

const pad2 = n => String(n).padStart(2, "0");

function fmtTime(iso) {
  const d = new Date(iso);
  return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
}

function fmtSpan(w) {
  const d = new Date(w.start);
  return d.getFullYear() + "-" + pad2(d.getMonth() + 1) + "-" + pad2(d.getDate()) + " " + fmtTime(w.start) + " – " + fmtTime(w.end);
}

// compact prints a value with three significant digits and a k/M/B suffix, as the
// alerts do: 29600 → "29.6k".
function compact(v) {
  if (v === null || v === undefined) return "n/a";
  let a = Math.abs(v), i = 0;
  const suffix = ["", "k", "M", "B", "T"];
  while (i < suffix.length - 1 && a >= 999.5) { a /= 1000; v /= 1000; i++; }
  if (i === 0 && a !== 0 && a < 1e-3) return v.toExponential(1);
  return parseFloat(v.toPrecision(3)) + suffix[i];
}

// color maps score/threshold to a cell color: from pale grey-blue (no movement)
// to amber (at the threshold) for stable cells, red for drifted ones.
function color(f) {
  const ratio = f.threshold > 0 && f.score !== null && f.score !== undefined ? f.score / f.threshold : 0;
  if (f.verdict === "drift") {
    const t = Math.min(Math.max(ratio - 1, 0), 3) / 3;
    return mix([214, 69, 58], [140, 24, 18], t);
  }
  return mix([234, 239, 244], [245, 178, 66], Math.min(Math.max(ratio, 0), 1));
}

function mix(a, b, t) {
  return "rgb(" + a.map((x, i) => Math.round(x + (b[i] - x) * t)).join(",") + ")";
}

// featureOrder is the heat map's rows for the whole traffic: the features and the
// model's own findings, not the segments' (hundreds of them in a window).
function featureOrder(windows) {
  const names = [];
  for (const w of windows) {
    for (const d of w.distributions) if (!names.includes(d.feature)) names.push(d.feature);
    for (const f of w.findings) if (!f.segment && !names.includes(f.feature)) names.push(f.feature);
  }
  return names;
}

// segmentOrder is the heat map's rows split by key: each segment's findings
// (income@country=DE), the segments with the largest share of the rows first.
function segmentOrder(windows, key) {
  const share = new Map(), names = [];
  for (const w of windows) {
    for (const f of w.findings) {
      if (!f.segment || !f.segment.startsWith(key + "=")) continue;
      share.set(f.segment, Math.max(share.get(f.segment) || 0, f.segment_share || 0));
      if (!names.includes(f.feature)) names.push(f.feature);
    }
  }
  const seg = n => n.slice(n.indexOf("@") + 1);
  return names.map((n, i) => [n, i]).sort((a, b) =>
    (share.get(seg(b[0])) - share.get(seg(a[0]))) || seg(a[0]).localeCompare(seg(b[0])) || a[1] - b[1]).map(x => x[0]);
}

// renderModel draws one model version; perf is its performance windows, newest
// first (empty when its stream joins no labels).
function renderModel(stream, model, version, windows, perf) {
  const key = JSON.stringify([stream.name, model, version.version]);
  const section = el("section", { class: "model", "data-stream": stream.name, "data-model": model, "data-version": version.version });
  section.append(el("h2", {}, model + " ", el("span", { class: "version" }, version.version || "(no version)"),
    el("span", { class: "stream" }, "stream " + stream.name)));
  const latest = version.latest;
  section.append(el("p", { class: "meta" },
    version.windows + " windows closed, " + version.drifted_windows + " with drift",
    latest ? " · reference: " + latest.reference : ""));
  const perfPanel = perf.length ? performance(perf) : null;
  if (windows.length === 0) {
    if (perfPanel) section.append(perfPanel);
    return section;
  }

  if (!windows.some(w => w.id === selected.get(key))) {
    const compared = windows.filter(w => !w.warmup);
    selected.set(key, (compared.length ? compared[compared.length - 1] : windows[windows.length - 1]).id);
  }
  const keys = version.segment_keys || [];
  const objectives = objectiveOrder(windows);
  const heat = el("div", { class: "heatmap-wrap" });
  const dists = el("div", {});
  const draw = () => {
    const sel = selected.get(key), split = splits.get(key);
    const rows = split ? segmentOrder(windows, split) : featureOrder(windows);
    heat.replaceChildren(heatmap(rows, windows, sel, id => { selected.set(key, id); draw(); }, objectives));
    dists.replaceChildren(distributions(windows.find(w => w.id === sel)));
  };
  draw();
  if (keys.length) {
    // The heat map of the whole traffic, or of each segment of a key.
    const options = [el("option", { value: "" }, "whole traffic")].concat(
      keys.map(k => el("option", { value: k, selected: k === splits.get(key) ? "selected" : null }, "by " + k)));
    section.append(el("p", { class: "split" }, "Heat map: ",
      el("select", { "data-split": key, onchange: e => { splits.set(key, e.target.value); refresh(); } }, options)));
  }
  section.append(heat, legend());
  const lat = windows.some(w => w.latency) ? latencyPanel(windows) : null;
  if (lat) section.append(lat);
  if (perfPanel) section.append(perfPanel);
  section.append(dists);
  return section;
}

const METRIC_NAMES = {
  accuracy: "accuracy", precision: "precision", recall: "recall", f1: "F1", roc_auc: "ROC AUC",
  log_loss: "log loss", mae: "MAE", rmse: "RMSE", mape: "MAPE",
};

// performance draws one line per window, newest first: the alert rule's metric
// with a bar (and the rule's bound as a tick), how many predictions have a label
// so far, and whether the window is final or still provisional (italic, hatched:
// late labels may still change it). Degraded windows are red and marked ▼; the
// tooltip says why.
function performance(windows) {
  const metric = windows[0].verdict.metric;
  const name = METRIC_NAMES[metric] || metric;
  const finite = v => v !== null && v !== undefined;
  const top = Math.max(1, ...windows.flatMap(w => [w.verdict.value, w.verdict.bound].filter(finite)));
  const rows = windows.map(w => {
    const v = w.verdict;
    const labelled = (finite(w.coverage) ? Math.round(w.coverage * 100) + "% labelled" : "no prediction yet");
    const title = [w.status, labelled + " (" + w.labelled.toLocaleString() + " of " + w.predictions.toLocaleString() + ")",
      v.rule, w.revision ? "revised " + w.revision + "×" : ""].filter(Boolean).join(" · ");
    const bar = el("span", { class: "perf-bar" },
      finite(v.value) ? el("i", { style: "width:" + (100 * Math.max(v.value, 0) / top).toFixed(1) + "%" }) : null,
      finite(v.bound) ? el("b", { style: "left:" + (100 * v.bound / top).toFixed(1) + "%" }) : null);
    return el("tr", { class: w.status + (v.degraded ? " degraded" : ""), "data-perf-window": w.start, "data-status": w.status, title },
      el("td", { class: "when" }, fmtSpan(w)),
      el("td", { class: "value" }, (v.degraded ? "▼ " : "") + compact(v.value)),
      el("td", {}, bar),
      el("td", { class: "coverage" }, labelled),
      el("td", { class: "state" }, w.status + (v.degraded ? ", degraded" : "")));
  });
  return el("div", { class: "perf-panel" },
    el("h3", {}, "Performance · " + name, el("span", { class: "muted" }, " from late labels, newest first")),
    el("table", { class: "performance" }, el("tbody", {}, rows)),
    el("p", { class: "legend" },
      el("span", {}, el("i", { class: "swatch-final" }), "final"),
      el("span", {}, el("i", { class: "swatch-provisional" }), el("em", {}, "provisional: labels may still come")),
      el("span", { class: "degraded" }, "▼ degraded: the rule fired"),
      el("span", {}, "hover a line for the rule")));
}

// objectiveOrder is the names of the objectives the windows were judged against.
function objectiveOrder(windows) {
  const names = [];
  for (const w of windows) for (const o of (w.objectives || [])) if (!names.includes(o.name)) names.push(o.name);
  return names;
}

// latencyPanel draws the model's inference latency and throughput, one line per
// window, newest first: p50, p95 and p99 of the stream's latency field, a bar of the
// p99 (against the largest p99 shown) and the rows per minute. A window that breached
// an objective on the latency field is red and marked ◆; the tooltip gives the rule.
function latencyPanel(windows) {
  const shown = windows.filter(w => w.latency).slice().reverse();
  const field = shown[0].latency.field;
  const finite = v => v !== null && v !== undefined;
  const top = Math.max(1e-9, ...shown.map(w => w.latency.p99).filter(finite));
  const rows = shown.map(w => {
    const l = w.latency;
    const breaches = (w.objectives || []).filter(o => o.field === field && o.verdict === "breached");
    const title = [fmtSpan(w), l.values.toLocaleString() + " latencies"].concat(breaches.map(o => o.rule)).join(" · ");
    return el("tr", { class: breaches.length ? "breached" : "", "data-latency-window": w.start, title },
      el("td", { class: "when" }, fmtSpan(w)),
      el("td", { class: "value" }, "p50 " + compact(l.p50)),
      el("td", { class: "value" }, "p95 " + compact(l.p95)),
      el("td", { class: "value p99" }, (breaches.length ? "◆ " : "") + "p99 " + compact(l.p99)),
      el("td", {}, el("span", { class: "perf-bar" }, finite(l.p99) ? el("i", { style: "width:" + (100 * Math.max(l.p99, 0) / top).toFixed(1) + "%" }) : null)),
      el("td", { class: "rate" }, finite(l.rows_per_minute) ? compact(l.rows_per_minute) + " rows/min" : w.rows.toLocaleString() + " rows"));
  });
  return el("div", { class: "latency-panel" },
    el("h3", {}, "Latency and throughput · " + field, el("span", { class: "muted" }, " newest first")),
    el("table", { class: "performance latency" }, el("tbody", {}, rows)),
    el("p", { class: "legend" }, el("span", { class: "degraded" }, "◆ an objective on " + field + " breached"), el("span", {}, "hover a line for the rule")));
}

function heatmap(features, windows, sel, choose, objectives) {
  const head = el("tr", {}, el("th", {}));
  for (const w of windows) {
    head.append(el("th", { class: "win" + (w.id === sel ? " selected" : ""), title: fmtSpan(w), onclick: () => choose(w.id) }, fmtTime(w.start)));
  }
  const body = el("tbody", {});
  for (const name of features) {
    const row = el("tr", {}, el("th", { class: "feature" }, name));
    for (const w of windows) {
      const f = w.findings.find(x => x.feature === name);
      let cls = "cell", style, title = name + " · " + fmtSpan(w), mark = "";
      if (w.warmup) {
        cls += " warmup"; title += " · reference warm-up";
      } else if (!f || f.verdict === "insufficient_data") {
        cls += " insufficient"; title += " · insufficient data" + (f && f.note ? ": " + f.note : "");
      } else {
        style = "background:" + color(f);
        title += " · " + f.summary + " (" + f.verdict + ")" + (f.rule ? " · " + f.rule : "");
        if (f.verdict === "drift") { cls += " drifted"; mark = "●"; }
      }
      if (w.id === sel) cls += " selected";
      row.append(el("td", { class: cls, "data-feature": name, "data-window": w.id, style, title, onclick: () => choose(w.id) }, mark));
    }
    body.append(row);
  }
  // One row per objective: a fixed bound judged on every window, warm-up included.
  for (const name of objectives || []) {
    const row = el("tr", { class: "objective" }, el("th", { class: "feature" }, "◇ " + name));
    for (const w of windows) {
      const o = (w.objectives || []).find(x => x.name === name);
      let cls = "cell objective", mark = "";
      const title = name + " · " + fmtSpan(w) + " · " + (o ? o.rule : "not judged");
      if (!o || o.verdict === "insufficient_data") cls += " insufficient";
      else if (o.verdict === "breached") { cls += " breached"; mark = "◆"; }
      else if (o.verdict === "within_sketch_error") cls += " within";
      else cls += " met";
      if (w.id === sel) cls += " selected";
      row.append(el("td", { class: cls, "data-objective": name, "data-window": w.id, title, onclick: () => choose(w.id) }, mark));
    }
    body.append(row);
  }
  return el("table", { class: "heatmap" }, el("thead", {}, head), body);
}

function legend() {
  const sw = c => el("i", { style: "background:" + c });
  return el("p", { class: "legend" },
    el("span", {}, sw(color({ score: 0, threshold: 1 })), "no change"),
    el("span", {}, sw(color({ score: 0.9, threshold: 1 })), "near the threshold"),
    el("span", {}, sw(color({ score: 1.5, threshold: 1, verdict: "drift" })), "● drifted"),
    el("span", {}, el("i", { class: "cell warmup" }), "reference warm-up"),
    el("span", {}, el("i", { class: "cell objective breached" }), "◆ objective breached"),
    el("span", {}, "click a column to see its distributions"));
}

function distributions(w) {
  if (!w) return el("div", {});
  const title = w.warmup ? "Window " + fmtSpan(w) + " (part of the reference)" : "Window " + fmtSpan(w) + " vs reference";
  const grid = el("div", { class: "dists" });
  for (const d of w.distributions) {
    const f = w.findings.find(x => x.feature === d.feature);
    const drifted = f && f.verdict === "drift";
    grid.append(el("div", { class: "dist" + (drifted ? " drifted" : ""), "data-feature": d.feature },
      el("h4", {}, d.feature, el("span", { class: "verdict" }, f ? f.verdict.replace("_", " ") : (w.warmup ? "reference" : ""))),
      el("p", { class: "summary" }, f ? f.summary : ""),
      el("p", { class: "rule" }, f && f.rule ? f.rule : ""),
      d.kind === "categorical" ? categoryChart(d) : histogram(d)));
  }
  for (const f of w.findings) {
    for (const p of (f.explanation && f.explanation.pairs) || []) grid.append(pairGrid(f, p));
  }
  return el("div", {}, el("h3", {}, title), el("p", { class: "legend" },
    el("span", {}, el("i", { style: "background:var(--ref)" }), "reference"),
    el("span", {}, el("i", { style: "background:var(--cur)" }), "current window"),
    el("span", {}, el("i", { style: "background:var(--drift)" }), "current window, drifted")), grid);
}

// pairGrid draws a pair of the joint finding: the share of the pair's rows in each
// cell of its grid (x bins across, y bins up, cut at the reference's quantiles), the
// reference's and the window's side by side, darker for more rows. It shows joint
// drift that moves no marginal: each side's row and column sums stay put while mass
// moves between cells. Hovering a cell gives its bounds and both shares.
function pairGrid(f, p) {
  const drifted = f.verdict === "drift";
  const top = Math.max(...p.ref.flat(), ...p.cur.flat(), 1e-9);
  const bin = (edges, i) => (i === 0 ? "< " + compact(edges[0]) :
    i === edges.length ? "≥ " + compact(edges[i - 1]) : compact(edges[i - 1]) + " – " + compact(edges[i]));
  const side = (cells, label) => {
    const table = el("table", { class: "pair-cells" });
    const ny = cells.length ? cells[0].length : 0;
    for (let j = ny - 1; j >= 0; j--) {
      const tr = el("tr", {});
      cells.forEach((col, i) => {
        const td = el("td", { title: p.x + " " + bin(p.x_edges, i) + " & " + p.y + " " + bin(p.y_edges, j) +
          ": reference " + pct(p.ref[i][j]) + ", current " + pct(p.cur[i][j]) });
        td.style.background = mix([255, 255, 255], drifted && cells === p.cur ? [192, 57, 43] : [44, 110, 204], (col[j] || 0) / top);
        tr.append(td);
      });
      table.append(tr);
    }
    return el("figure", {}, table, el("figcaption", {}, label));
  };
  return el("div", { class: "dist pair" + (drifted ? " drifted" : ""), "data-pair": p.x + " & " + p.y },
    el("h4", {}, p.x + " & " + p.y, el("span", { class: "verdict" }, f.verdict.replace("_", " "))),
    el("p", { class: "summary" }, (p.top || []).map(b => b.label + " " + pct(b.ref_share) + " → " + pct(b.cur_share)).join(", ")),
    el("p", { class: "rule" }, f.rule || ""),
    el("div", { class: "pair-sides" }, side(p.ref, "reference"), side(p.cur, "current window")),
    el("p", { class: "axes" }, "x: " + p.x + " (across), y: " + p.y + " (up)"));
}

// histogram draws numeric bins as paired vertical bars (reference, current).
function histogram(d) {
  const W = 300, H = 90, pad = 14, n = d.bins.length;
  const svg = el("svg", { viewBox: "0 0 " + W + " " + (H + pad + 2), role: "img", "aria-label": d.feature + " distribution" });
  if (n === 0) return svg;
  const top = Math.max(...d.bins.map(b => Math.max(b.ref || 0, b.cur || 0)), 1e-9);
  const bw = W / n, half = Math.max((bw - 2) / 2, 1);
  d.bins.forEach((b, i) => {
    const x = i * bw + 1;
    const g = el("g", {}, el("title", {}, b.label + ": reference " + pct(b.ref) + ", current " + pct(b.cur)));
    if (b.ref !== null && b.ref !== undefined) {
      const h = (b.ref / top) * H;
      g.append(el("rect", { class: "bar-ref", x, y: H - h, width: half, height: h }));
    }
    const h = (b.cur / top) * H;
    g.append(el("rect", { class: "bar-cur", x: x + half, y: H - h, width: half, height: h }));
    svg.append(g);
  });
  svg.append(el("line", { x1: 0, y1: H + 0.5, x2: W, y2: H + 0.5, stroke: "#d9dee3" }));
  if (d.exact) {
    const every = Math.ceil(n / 10);
    d.bins.forEach((b, i) => {
      if (i % every === 0) svg.append(el("text", { x: i * bw + bw / 2, y: H + pad, "text-anchor": "middle" }, b.label));
    });
  } else {
    svg.append(el("text", { x: 0, y: H + pad }, compact(d.bins[0].lo)));
    svg.append(el("text", { x: W / 2, y: H + pad, "text-anchor": "middle" }, compact((d.bins[0].lo + d.bins[n - 1].hi) / 2)));
    svg.append(el("text", { x: W, y: H + pad, "text-anchor": "end" }, compact(d.bins[n - 1].hi)));
  }
  return svg;
}

// categoryChart draws categories as paired horizontal bars with their labels.
function categoryChart(d) {
  const W = 300, label = 96, row = 16, n = d.bins.length;
  const svg = el("svg", { viewBox: "0 0 " + W + " " + Math.max(n * row, row), role: "img", "aria-label": d.feature + " distribution" });
  const top = Math.max(...d.bins.map(b => Math.max(b.ref || 0, b.cur || 0)), 1e-9);
  const span = W - label - 40;
  d.bins.forEach((b, i) => {
    const y = i * row;
    const text = b.label.length > 15 ? b.label.slice(0, 14) + "…" : b.label;
    const g = el("g", {}, el("title", {}, b.label + ": reference " + pct(b.ref) + ", current " + pct(b.cur)),
      el("text", { x: label - 4, y: y + 11, "text-anchor": "end" }, text));
    if (b.ref !== null && b.ref !== undefined) g.append(el("rect", { class: "bar-ref", x: label, y: y + 2, width: (b.ref / top) * span, height: 6 }));
    g.append(el("rect", { class: "bar-cur", x: label, y: y + 8, width: (b.cur / top) * span, height: 6 }));
    g.append(el("text", { x: label + (Math.max(b.ref || 0, b.cur) / top) * span + 4, y: y + 11 }, pct(b.cur)));
    svg.append(g);
  });
  return svg;
}

function pct(v) {
  return v === null || v === undefined ? "n/a" : (v * 100).toFixed(1) + "%";
}

function renderAlerts(alerts) {
  const body = document.querySelector("#alerts tbody");
  if (alerts.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No alert yet.")));
    return;
  }
  body.replaceChildren(...alerts.map(a => el("tr", { "data-alert": a.id },
    el("td", {}, fmtSpan({ start: a.window_start, end: a.window_end })),
    el("td", {}, a.model + " " + a.version),
    el("td", { class: "sev-" + a.severity }, a.severity),
    el("td", {}, a.drifted.map(c => el("div", {}, el("b", {}, c.feature), " " + c.summary,
      c.rule ? el("div", { class: "rule" }, c.rule) : ""))),
    el("td", {}, a.routes.map(r => el("div", { class: r.status === "delivered" ? "ok" : "failed", title: r.error || "" },
      (r.status === "delivered" ? "✓ " : "✗ ") + r.route + (r.attempts > 1 ? " (" + r.attempts + " attempts)" : "")))))));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const { streams } = await getJSON("api/v1/streams");
    const perf = new Map();
    for (const p of (await getJSON("api/v1/performance?limit=" + PERF_WINDOWS)).models) {
      perf.set(JSON.stringify([p.stream, p.model, p.version]), p.windows);
    }
    const sections = [];
    const blind = [];
    let events = 0;
    for (const s of streams) {
      events += s.events;
      if (s.blind) blind.push(s.name);
      for (const m of s.models) {
        for (const v of m.versions) {
          // Only the segment findings of the key the heat map is split by, if any: a
          // window of twenty segments has hundreds.
          const key = JSON.stringify([s.name, m.model, v.version]);
          const keys = v.segment_keys || [];
          if (!splits.has(key)) splits.set(key, keys.includes(SPLIT) ? SPLIT : "");
          const q = new URLSearchParams({ stream: s.name, model: m.model, version: v.version, limit: WINDOWS,
            segments: splits.get(key) || "none" });
          const { windows } = await getJSON("api/v1/windows?" + q);
          sections.push(renderModel(s, m.model, v, windows.reverse(), perf.get(JSON.stringify([s.name, m.model, v.version])) || []));
        }
      }
    }
    const models = document.getElementById("models");
    if (sections.length) models.replaceChildren(...sections);
    else models.replaceChildren(el("p", { class: "empty" }, "No window has closed yet."));
    const { alerts } = await getJSON("api/v1/alerts?limit=20");
    renderAlerts(alerts);
    status.classList.toggle("error", blind.length > 0);
    status.textContent = streams.length + " stream(s) · " + events.toLocaleString() + " events · updated " + fmtTime(new Date().toISOString()) +
      (blind.length ? " · events read but not judged (blind): " + blind.join(", ") : "");
  } catch (e) {
    status.classList.add("error");
    status.textContent = "cannot read the API: " + e.message;
  }
  clearTimeout(timer); // a split chosen meanwhile refreshed already
  timer = setTimeout(refresh, REFRESH_MS);
}

let timer;
refresh();
