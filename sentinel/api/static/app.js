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
  ];
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
    showSummary(st);
    showRetrain(st.retrain);
    const running = st.retrain && st.retrain.state === "running";
    $("retrain_all").disabled = running;
    if (wasRunning && !running) loadModels();
    wasRunning = running;
    clearTimeout(pollTimer);
    pollTimer = setTimeout(loadStatus, running ? 1000 : 10000);
  } catch (err) {
    say("retrain_status", "status unavailable: " + err.message, false);
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

async function loadModels() {
  const { models } = await api("/api/ml/models");
  const body = $("models_table").querySelector("tbody");
  body.replaceChildren();
  for (const m of models) {
    const tr = document.createElement("tr");
    cell(tr, m.symbol);
    cell(tr, m.training_samples);
    cell(tr, fmt(m.validation_rmse));
    cell(tr, fmt(m.validation_mae));
    cell(tr, fmt(m.validation_r2, 3));
    cell(tr, fmt(m.validation_ic, 3));
    cell(tr, fmt(m.baseline_ic, 3));
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
function plot(div, traces, title) {
  if (!window.Plotly) {
    $(div).textContent = "plotly.js is not available";
    return;
  }
  window.Plotly.react(div, traces, {
    title: { text: title }, margin: { t: 40, r: 10 }, xaxis: { type: "date" },
    yaxis: { title: { text: "equity" } }, legend: { orientation: "h" },
  }, { responsive: true, displaylogo: false });
}

async function showRun(id) {
  const run = await api("/api/runs/" + id);
  plot("run_chart", [{ x: run.equity.date, y: run.equity.equity, type: "scatter", name: run.name }],
       `run ${run.id}: ${run.name} (blend ${fmt(run.blend_ratio, 2)})`);
}

async function showSweep(sweepId) {
  const sweep = await api("/api/sweeps/" + encodeURIComponent(sweepId));
  const traces = sweep.runs.map((r) => ({
    x: r.equity.date, y: r.equity.equity, type: "scatter",
    name: `blend ${fmt(r.blend_ratio, 2)} (run ${r.id})`,
  }));
  plot("sweep_chart", traces, `sweep ${sweepId}`);
}

async function loadRuns() {
  const { runs } = await api("/api/runs");
  const body = $("runs_table").querySelector("tbody");
  body.replaceChildren();
  for (const r of runs) {
    const m = r.metrics || {};
    const tr = document.createElement("tr");
    tr.className = "clickable";
    for (const v of [r.id, r.name, (r.created_at || "").slice(0, 19), fmt(r.blend_ratio, 2),
                     r.ml_mode || "-", pct(m.cagr), fmt(m.sharpe_ratio, 2), pct(m.max_drawdown),
                     r.sweep_id || ""]) {
      cell(tr, v);
    }
    tr.addEventListener("click", () => showRun(r.id));
    body.appendChild(tr);
  }
  if (runs.length) showRun(runs[runs.length - 1].id);
}

async function loadSweeps() {
  const { sweeps } = await api("/api/sweeps");
  const body = $("sweeps_table").querySelector("tbody");
  body.replaceChildren();
  for (const s of sweeps) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    for (const v of [s.sweep_id, s.name, s.n_runs, (s.created_at || "").slice(0, 19)]) cell(tr, v);
    tr.addEventListener("click", () => showSweep(s.sweep_id));
    body.appendChild(tr);
  }
  if (sweeps.length) showSweep(sweeps[sweeps.length - 1].sweep_id);
}

document.addEventListener("DOMContentLoaded", () => {
  initToken();
  initSettings();
  $("retrain_all").addEventListener("click", () => retrain(null));
  loadSettings();
  loadStatus();
  loadModels().catch((err) => say("retrain_status", "models unavailable: " + err.message, false));
  loadRuns().catch(() => {});
  loadSweeps().catch(() => {});
});
