// sentinel web UI: plain JS over the JSON API (no build step). Writes send the token kept in
// localStorage; everything shown comes from the same endpoints any client uses.
"use strict";

const TOKEN_KEY = "sentinel_api_token";
const $ = (id) => document.getElementById(id);

function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path, options = {}) {
  const res = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", ...authHeaders(), ...(options.headers || {}) },
  });
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const detail = body && body.detail;
    const text = Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail;
    throw new Error(`${res.status}: ${text || res.statusText}`);
  }
  return body;
}

function fmt(v, digits = 4) {
  return v === null || v === undefined ? "-" : Number(v).toFixed(digits);
}

function pct(v) {
  return v === null || v === undefined ? "-" : (100 * v).toFixed(2) + "%";
}

function say(id, text, ok = true) {
  const el = $(id);
  el.textContent = text;
  el.className = "msg " + (ok ? "ok" : "err");
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

// -- token --------------------------------------------------------------------------------
function initToken() {
  $("api_token").value = localStorage.getItem(TOKEN_KEY) || "";
  $("token_form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("api_token").value.trim());
    say("token_msg", "token remembered");
  });
}

// -- settings -----------------------------------------------------------------------------
function showSettings(s) {
  $("ml_enabled").checked = s.ml_enabled;
  $("ml_wavelet_blend_ratio").value = s.ml_wavelet_blend_ratio;
  $("blend_number").value = s.ml_wavelet_blend_ratio;
  $("ml_retrain_weekly").checked = s.ml_retrain_weekly;
  $("ml_prediction_horizon_days").value = s.ml_prediction_horizon_days;
  $("ml_min_samples_per_symbol").value = s.ml_min_samples_per_symbol;
}

async function loadSettings() {
  try {
    showSettings(await api("/api/settings"));
  } catch (err) {
    say("settings_msg", "could not load settings: " + err.message, false);
  }
}

function initSettings() {
  $("ml_wavelet_blend_ratio").addEventListener("input", (e) => {
    $("blend_number").value = e.target.value;
  });
  $("blend_number").addEventListener("input", (e) => {
    $("ml_wavelet_blend_ratio").value = e.target.value;
  });
  $("settings_form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      ml_enabled: $("ml_enabled").checked,
      ml_wavelet_blend_ratio: parseFloat($("blend_number").value),
      ml_retrain_weekly: $("ml_retrain_weekly").checked,
      ml_prediction_horizon_days: parseInt($("ml_prediction_horizon_days").value, 10),
      ml_min_samples_per_symbol: parseInt($("ml_min_samples_per_symbol").value, 10),
    };
    say("settings_msg", "saving…");
    try {
      showSettings(await api("/api/settings", { method: "POST", body: JSON.stringify(body) }));
      say("settings_msg", "saved");
      loadStatus();
    } catch (err) {
      say("settings_msg", "not saved: " + err.message, false);
    }
  });
}

// -- ML status, models, retrain -------------------------------------------------------------
let pollTimer = null;
let wasRunning = false;
let lastStatus = null;
let modelsAsked = false;

function showSummary(st) {
  const agg = st.aggregate_metrics || {};
  const items = [
    ["enabled", st.enabled ? "yes" : "no"],
    ["blend ratio", fmt(st.blend_ratio, 2)],
    ["symbols with models", st.symbols_with_models],
    ["training samples", st.total_training_samples],
    ["avg RMSE", fmt(agg.avg_validation_rmse)],
    ["avg MAE", fmt(agg.avg_validation_mae)],
    ["avg R²", fmt(agg.avg_validation_r2, 3)],
    ["avg model IC", fmt(agg.avg_validation_ic, 3)],
  ];
  // each naive baseline's average validation IC, labelled: the bar the model IC must clear
  for (const [name, b] of Object.entries(agg.baselines || {})) {
    if (b && b.avg_validation_ic !== null && b.avg_validation_ic !== undefined) {
      items.push([`avg IC, baseline ${name}`, fmt(b.avg_validation_ic, 3)]);
    }
  }
  const box = $("ml_summary");
  box.replaceChildren();
  for (const [k, v] of items) {
    const div = document.createElement("div");
    div.className = "card";
    const b = document.createElement("b");
    b.textContent = String(v);
    div.append(k, document.createElement("br"), b);
    box.appendChild(div);
  }
}

function showRetrain(r) {
  const bar = $("retrain_progress");
  if (!r || r.state === "idle") {
    say("retrain_status", "");
    bar.hidden = true;
    return;
  }
  if (r.state === "running") {
    bar.hidden = false;
    bar.max = r.total || 1;
    bar.value = r.total ? r.done : 0;
    say("retrain_status", `retraining (${r.phase}${r.message ? ": " + r.message : ""})`);
  } else if (r.state === "completed") {
    bar.hidden = true;
    const res = r.result || {};
    say("retrain_status", `last retrain ${r.finished_at}: ${res.symbols_trained} trained, ` +
        `${res.symbols_skipped} skipped`);
  } else {
    bar.hidden = true;
    say("retrain_status", `last retrain failed: ${r.error}`, false);
  }
}

async function loadStatus() {
  try {
    const st = await api("/api/ml/status");
    lastStatus = st;
    showSummary(st);
    firstModels();
    showRetrain(st.retrain);
    const running = st.retrain && st.retrain.state === "running";
    $("retrain_all").disabled = running;
    if (wasRunning && !running) loadModels();
    wasRunning = running;
    clearTimeout(pollTimer);
    pollTimer = setTimeout(loadStatus, running ? 1000 : 10000);
  } catch (err) {
    say("retrain_status", "status unavailable: " + err.message, false);
    firstModels();
    pollTimer = setTimeout(loadStatus, 10000);
  }
}

async function retrain(symbol) {
  const path = "/api/ml/retrain" + (symbol ? "/" + encodeURIComponent(symbol) : "");
  try {
    await api(path + "?background=true", { method: "POST" });
    wasRunning = true;
    loadStatus();
  } catch (err) {
    say("retrain_status", "retrain not started: " + err.message, false);
  }
}

function baselineCell(tr, m) {
  const td = cell(tr, m.baseline_ic === null || m.baseline_ic === undefined ? "-"
    : fmt(m.baseline_ic, 3) + (m.best_baseline ? ` (${m.best_baseline})` : ""));
  const all = m.baseline_ics || {};
  const lines = Object.entries(all).map(([k, v]) => `${k}: ${v === null ? "undefined" : fmt(v, 3)}`);
  td.title = lines.length ? "validation IC of each baseline\n" + lines.join("\n")
    : "no baseline figures stored with this model";
  return td;
}

// Text with `commands` as <code> nodes (never HTML: the text is set, not parsed).
function withCode(text) {
  return text.split("`").map((part, i) => {
    if (i % 2 === 0) return part;
    const code = document.createElement("code");
    code.textContent = part;
    return code;
  });
}

function showModelHint(models, st) {
  const hint = $("ml_hint");
  if (models.length) {
    hint.hidden = true;
    return;
  }
  const samples = st ? st.total_training_samples : null;
  const steps = samples === 0
    ? "no training samples either: run `sentinel ml samples`, then `sentinel ml train`"
    : "run `sentinel ml train` (or \"Retrain all models\" above, with the API token)";
  hint.replaceChildren();
  const b = document.createElement("b");
  b.textContent = "No stored models yet. ";
  hint.append(b, ...withCode("To make them, " + steps + ". Walk-forward backtests train " +
    "their models in simulated time and keep none, so they do not fill this table; " +
    "`ml.mode: current` backtests and the live mode use the models listed here."));
  hint.hidden = false;
}


// The models once the first status answered (its sample count words the hint), or failed.
function firstModels() {
  if (modelsAsked) return;
  modelsAsked = true;
  loadModels().catch((err) => say("retrain_status", "models unavailable: " + err.message, false));
}

async function loadModels() {
  const { models } = await api("/api/ml/models");
  showModelHint(models, lastStatus);
  $("models_table").hidden = !models.length;
  const body = $("models_table").querySelector("tbody");
  body.replaceChildren();
  for (const m of models) {
    const tr = document.createElement("tr");
    cell(tr, m.symbol);
    const st = cell(tr, m.status || "ok");
    st.className = "status-" + (m.status || "ok");
    if (m.problem) st.title = m.problem;
    cell(tr, m.training_samples);
    cell(tr, fmt(m.validation_rmse));
    cell(tr, fmt(m.validation_mae));
    cell(tr, fmt(m.validation_r2, 3));
    cell(tr, fmt(m.validation_ic, 3));
    baselineCell(tr, m);
    cell(tr, (m.last_trained_at || "").replace("T", " ").slice(0, 19));
    const btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = "retrain";
    btn.addEventListener("click", () => retrain(m.symbol));
    cell(tr, "").appendChild(btn);
    body.appendChild(tr);
  }
}

// -- runs and sweeps -----------------------------------------------------------------------
const LAYOUT = {
  margin: { t: 40, r: 10, b: 40 }, xaxis: { type: "date" },
  yaxis: { title: { text: "equity" } }, legend: { orientation: "h", y: -0.15 },
};

function plot(div, traces, title) {
  if (!window.Plotly) {
    $(div).textContent = "plotly.js is not available";
    return;
  }
  window.Plotly.react(div, traces, { ...LAYOUT, title: { text: title } },
                      { responsive: true, displaylogo: false });
}

function period(r) {
  return r.start && r.end ? `${r.start} … ${r.end}` : "-";
}

function mlText(r) {
  if (!r.ml_mode) return "-";
  return r.ml_mode === "off" ? "off" : `${r.ml_mode} (${fmt(r.blend_ratio, 2)})`;
}

// The benchmark's closes rebased to the run's first equity, so both start at the same value.
function benchmarkTrace(run, name) {
  const b = run.equity.benchmark;
  if (!b) return null;
  const first = b.findIndex((v) => v !== null && v !== undefined);
  if (first < 0) return null;
  const scale = run.equity.equity[first] / b[first];
  return {
    x: run.equity.date, y: b.map((v) => (v === null || v === undefined ? null : v * scale)),
    type: "scatter", name, line: { dash: "dot", color: "#7a7f89" }, connectgaps: true,
  };
}

function benchName(run) {
  return "benchmark " + (run.benchmark || (run.config && run.config.benchmark) || "(market)") +
    " rebased";
}

async function showRun(id) {
  for (const tr of $("runs_table").querySelectorAll("tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.run === String(id));
  }
  const run = await api("/api/runs/" + id);
  const traces = [{ x: run.equity.date, y: run.equity.equity, type: "scatter",
                    name: `run ${run.id}: ${run.name}` }];
  const bench = benchmarkTrace(run, benchName(run));
  if (bench) traces.push(bench);
  plot("run_chart", traces, `run ${run.id}: ${run.name}, ${period(run)}, ML ${mlText(run)}`);
}

const COMPARE_ROWS = [
  ["name", (r) => r.name], ["period", period], ["strategy", (r) => r.strategy || "-"],
  ["universe", (r) => r.universe || "-"], ["ML (blend)", mlText],
  ["total return", (r) => pct(r.metrics.total_return)], ["CAGR", (r) => pct(r.metrics.cagr)],
  ["benchmark CAGR", (r) => pct(r.metrics.benchmark_cagr)],
  ["excess CAGR", (r) => pct(r.metrics.excess_return)],
  ["volatility", (r) => pct(r.metrics.annualized_volatility)],
  ["Sharpe", (r) => fmt(r.metrics.sharpe_ratio, 2)], ["Sortino", (r) => fmt(r.metrics.sortino_ratio, 2)],
  ["max drawdown", (r) => pct(r.metrics.max_drawdown)], ["Calmar", (r) => fmt(r.metrics.calmar_ratio, 2)],
  ["turnover / year", (r) => pct(r.metrics.turnover)], ["hit rate", (r) => pct(r.metrics.hit_rate)],
  ["trades", (r) => (r.metrics.n_trades === undefined ? "-" : r.metrics.n_trades)],
  ["retrains", (r) => (r.metrics.n_retrains === undefined ? "-" : r.metrics.n_retrains)],
];

async function showComparison(ids) {
  const box = $("compare");
  if (ids.length !== 2) {
    box.hidden = true;
    return;
  }
  const runs = await Promise.all(ids.map((id) => api("/api/runs/" + id)));
  box.hidden = false;
  $("compare_title").textContent = `Run ${runs[0].id} vs run ${runs[1].id}`;
  const head = $("compare_table").querySelector("thead");
  const body = $("compare_table").querySelector("tbody");
  const hr = document.createElement("tr");
  for (const t of ["", `run ${runs[0].id}`, `run ${runs[1].id}`]) {
    const th = document.createElement("th");
    th.textContent = t;
    hr.appendChild(th);
  }
  head.replaceChildren(hr);
  body.replaceChildren();
  for (const [label, get] of COMPARE_ROWS) {
    const tr = document.createElement("tr");
    cell(tr, label);
    for (const r of runs) cell(tr, String(get({ ...r, metrics: r.metrics || {} })));
    body.appendChild(tr);
  }
  const traces = runs.map((r) => ({ x: r.equity.date, y: r.equity.equity, type: "scatter",
                                    name: `run ${r.id}: ${r.name}` }));
  const bench = benchmarkTrace(runs[0], benchName(runs[0]) + ` (run ${runs[0].id})`);
  if (bench) traces.push(bench);
  plot("compare_chart", traces, `run ${runs[0].id} vs run ${runs[1].id}`);
}

function reportLink(td, url, kind) {
  if (!url) {
    td.textContent = "-";
    return;
  }
  const a = document.createElement("a");
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener";
  a.textContent = kind === "sweep" ? "sweep report" : "report";
  a.addEventListener("click", (e) => e.stopPropagation());
  td.appendChild(a);
}

const picked = [];

function togglePick(id, box) {
  const i = picked.indexOf(id);
  if (box.checked && i < 0) picked.push(id);
  if (!box.checked && i >= 0) picked.splice(i, 1);
  while (picked.length > 2) {
    const old = picked.shift();
    const other = document.querySelector(`input[data-run="${old}"]`);
    if (other) other.checked = false;
  }
  showComparison(picked.slice()).catch((err) => {
    $("compare_title").textContent = "comparison unavailable: " + err.message;
  });
}

async function loadRuns() {
  const { runs } = await api("/api/runs");
  $("runs_empty").hidden = runs.length > 0;
  $("runs_table").hidden = !runs.length;
  const body = $("runs_table").querySelector("tbody");
  body.replaceChildren();
  for (const r of runs.slice().reverse()) { // newest first
    const m = r.metrics || {};
    const tr = document.createElement("tr");
    tr.className = "clickable";
    tr.dataset.run = r.id;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.run = r.id;
    box.setAttribute("aria-label", `compare run ${r.id}`);
    box.addEventListener("click", (e) => e.stopPropagation());
    box.addEventListener("change", () => togglePick(r.id, box));
    cell(tr, "").appendChild(box);
    for (const v of [r.id, r.name + (r.sweep_id ? " (sweep point)" : ""), period(r),
                     r.strategy || "-", r.universe || "-", mlText(r), pct(m.cagr),
                     pct(m.benchmark_cagr), fmt(m.sharpe_ratio, 2), pct(m.max_drawdown),
                     m.n_trades === undefined ? "-" : m.n_trades]) {
      cell(tr, v);
    }
    reportLink(cell(tr, ""), r.report_url, r.report_kind);
    cell(tr, (r.created_at || "").replace("T", " ").slice(0, 16));
    if (r.sweep_id) tr.title = "sweep " + r.sweep_id;
    tr.addEventListener("click", () => showRun(r.id));
    body.appendChild(tr);
  }
  if (runs.length) await showRun(runs[runs.length - 1].id);
}

async function showSweep(sweepId) {
  const sweep = await api("/api/sweeps/" + encodeURIComponent(sweepId));
  const traces = sweep.runs.map((r) => ({
    x: r.equity.date, y: r.equity.equity, type: "scatter",
    name: `run ${r.id}: ${r.strategy || r.name}, ML ${mlText(r)}, ${period(r)}`,
  }));
  const bench = sweep.runs.length ? benchmarkTrace(sweep.runs[0], benchName(sweep.runs[0])) : null;
  if (bench) traces.push(bench);
  plot("sweep_chart", traces, `sweep ${sweepId}`);
}

async function loadSweeps() {
  const { sweeps } = await api("/api/sweeps");
  $("sweeps_empty").hidden = sweeps.length > 0;
  $("sweeps_table").hidden = !sweeps.length;
  const body = $("sweeps_table").querySelector("tbody");
  body.replaceChildren();
  for (const s of sweeps) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    const distinct = (f) => [...new Set(s.runs.map(f))].join(" | ");
    for (const v of [s.sweep_id, s.name, distinct(period), distinct((r) => r.strategy || "-"),
                     s.n_runs]) {
      cell(tr, v);
    }
    const withReport = s.runs.find((r) => r.report_url);
    reportLink(cell(tr, ""), withReport && withReport.report_url, "sweep");
    cell(tr, (s.created_at || "").replace("T", " ").slice(0, 16));
    tr.addEventListener("click", () => showSweep(s.sweep_id));
    body.appendChild(tr);
  }
  if (sweeps.length) await showSweep(sweeps[sweeps.length - 1].sweep_id);
}

document.addEventListener("DOMContentLoaded", () => {
  initToken();
  initSettings();
  $("retrain_all").addEventListener("click", () => retrain(null));
  loadSettings();
  loadStatus();
  loadRuns().catch((err) => { $("run_chart").textContent = "runs unavailable: " + err.message; });
  loadSweeps().catch((err) => { $("sweep_chart").textContent = "sweeps unavailable: " + err.message; });
});
