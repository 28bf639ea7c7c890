// marketbus dashboard: live ETF board, k-line chart with signals, live signal feed, scan trigger.
// Data comes from the gateway's REST and SSE routes; nothing is computed here but formatting.
"use strict";

const $ = (id) => document.getElementById(id);
const SHANGHAI_OFFSET_S = 8 * 3600; // the chart shows Asia/Shanghai wall time
const state = { code: null, period: "1d", rows: new Map(), chart: null, candles: null, volume: null,
                token: null, strategies: new Map(), feedFilter: "", etfs: [] };

function fmtNum(v, digits = 3) { return v == null ? "–" : Number(v).toFixed(digits); }
function fmtVol(v) {
  if (v == null) return "–";
  if (v >= 1e8) return (v / 1e8).toFixed(2) + "亿";
  if (v >= 1e4) return (v / 1e4).toFixed(1) + "万";
  return String(Math.round(v));
}
function fmtPct(v) { return v == null ? "–" : (v > 0 ? "+" : "") + v.toFixed(2) + "%"; }
function cls(v) { return v > 0 ? "up" : v < 0 ? "down" : ""; }
function fmtTime(ms) {
  return new Date(ms).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false,
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}
async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || r.statusText);
  return r.json();
}
function td(text, className) {
  const cell = document.createElement("td");
  cell.textContent = text;
  if (className) cell.className = className;
  return cell;
}

// --- board -------------------------------------------------------------------------------------
function renderRow(q) {
  let row = state.rows.get(q.code);
  const prev = row ? Number(row.dataset.price) : null;
  if (!row) {
    row = document.createElement("tr");
    row.dataset.code = q.code;
    row.append(td(q.code), td(q.name), td("", "num"), td("", "num"), td("", "num"));
    row.addEventListener("click", () => selectCode(q.code, q.name));
    state.rows.set(q.code, row);
  }
  const [, , price, pct, vol] = row.children;
  price.textContent = fmtNum(q.price);
  price.className = "num " + cls(q.change_percent);
  pct.textContent = fmtPct(q.change_percent);
  pct.className = "num " + cls(q.change_percent);
  vol.textContent = fmtVol(q.volume);
  row.dataset.price = q.price;
  row.dataset.name = q.name;
  if (prev != null && prev !== q.price) {
    row.classList.remove("flash-up", "flash-down");
    void row.offsetWidth; // restart the animation
    row.classList.add(q.price > prev ? "flash-up" : "flash-down");
  }
  return row;
}
function applyBoardFilter() {
  const f = $("board-filter").value.trim().toLowerCase();
  for (const [code, row] of state.rows) {
    row.hidden = f !== "" && !code.toLowerCase().startsWith(f) && !(row.dataset.name || "").toLowerCase().includes(f);
  }
}
async function loadBoard() {
  const { items } = await getJSON("/api/etf/quotes");
  const body = $("board").tBodies[0];
  body.replaceChildren(...items.map(renderRow));
  state.etfs = items.map((q) => q.code);
  $("board-count").textContent = `${items.length}`;
  if (!state.code && items.length) selectCode(items[0].code, items[0].name);
  openQuoteStream();
}
function openQuoteStream() {
  const codes = state.etfs.length && state.etfs.length <= 500 ? "?codes=" + state.etfs.join(",") : "";
  const es = new EventSource("/api/stream/quotes" + codes);
  es.addEventListener("quote", (ev) => {
    const q = JSON.parse(ev.data);
    if (q.market === "ETF" || state.rows.has(q.code)) {
      const row = renderRow(q);
      if (!row.parentNode) $("board").tBodies[0].append(row);
    }
  });
  es.onopen = () => setConn(true);
  es.onerror = () => setConn(false);
}
function setConn(live) {
  const el = $("conn");
  el.textContent = live ? "● live" : "● reconnecting";
  el.className = "conn " + (live ? "live" : "down");
}

// --- chart -------------------------------------------------------------------------------------
function ensureChart() {
  if (state.chart || !window.LightweightCharts) return state.chart;
  const el = $("chart");
  const chart = LightweightCharts.createChart(el, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: "#d8dee6" },
    grid: { vertLines: { color: "#1e2630" }, horzLines: { color: "#1e2630" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#263040" },
    rightPriceScale: { borderColor: "#263040" },
    crosshair: { mode: 0 },
  });
  state.candles = chart.addCandlestickSeries({
    upColor: "#e53935", downColor: "#1aa260", borderUpColor: "#e53935", borderDownColor: "#1aa260",
    wickUpColor: "#e53935", wickDownColor: "#1aa260",
  });
  state.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } });
  state.volume = chart.addHistogramSeries({ priceFormat: { type: "volume" }, priceScaleId: "vol" });
  chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
  state.chart = chart;
  return chart;
}
const chartTime = (ms) => Math.floor(ms / 1000) + SHANGHAI_OFFSET_S;

async function loadChart(fit = true) {
  const code = state.code, period = state.period;
  if (!code || !ensureChart()) return;
  try {
    const [kl, sg] = await Promise.all([
      getJSON(`/api/kline/${code}?period=${period}&limit=300`),
      getJSON(`/api/signals/${code}?limit=300`),
    ]);
    if (code !== state.code || period !== state.period) return; // the user moved on
    state.candles.setData(kl.items.map((b) => ({ time: chartTime(b.ts), open: b.open, high: b.high, low: b.low, close: b.close })));
    state.volume.setData(kl.items.map((b) => ({ time: chartTime(b.ts), value: b.volume,
      color: b.close >= b.open ? "rgba(229,57,53,0.5)" : "rgba(26,162,96,0.5)" })));
    const barTimes = new Set(kl.items.map((b) => chartTime(b.ts)));
    const markers = sg.items
      .filter((s) => s.period === period && barTimes.has(chartTime(s.bar_ts)))
      .sort((a, b) => a.bar_ts - b.bar_ts)
      .map((s) => ({ time: chartTime(s.bar_ts), position: s.side === "BUY" ? "belowBar" : "aboveBar",
        color: s.side === "BUY" ? "#ff5252" : "#2ecc71", shape: s.side === "BUY" ? "arrowUp" : "arrowDown",
        text: s.strategy_name || s.strategy }));
    state.candles.setMarkers(markers);
    if (fit) state.chart.timeScale().fitContent();
    $("chart-msg").textContent = kl.items.length ? `${kl.items.length} bars · ${markers.length} signals` : "no bars yet for this period";
  } catch (err) {
    $("chart-msg").textContent = "chart: " + err.message;
  }
}
function selectCode(code, name) {
  state.code = code;
  $("chart-title").textContent = `${code} ${name || ""}`;
  for (const [c, row] of state.rows) row.classList.toggle("sel", c === code);
  loadChart(true);
}
function setupTabs() {
  for (const b of $("period-tabs").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      state.period = b.dataset.period;
      for (const o of $("period-tabs").querySelectorAll("button")) o.classList.toggle("on", o === b);
      loadChart(true);
    });
  }
  // bars close on the server; refresh the chart now and then (cheap: one code)
  setInterval(() => { if (!document.hidden) loadChart(false); }, 5000);
}

// --- signal feed -------------------------------------------------------------------------------
function feedItem(s, isNew) {
  const li = document.createElement("li");
  li.dataset.strategy = s.strategy;
  const side = document.createElement("span");
  side.className = "side " + s.side;
  side.textContent = s.side === "BUY" ? "买 BUY" : "卖 SELL";
  const who = document.createElement("span");
  who.textContent = `${s.code} ${s.name}`;
  const price = document.createElement("span");
  price.className = "num";
  price.textContent = fmtNum(s.price);
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${s.strategy_name || s.strategy} · ${s.period} · ${fmtTime(s.bar_ts)} · conf ${(s.confidence * 100).toFixed(0)}%`;
  meta.title = s.reason || "";
  li.append(side, who, price, meta);
  li.hidden = state.feedFilter !== "" && s.strategy !== state.feedFilter;
  if (isNew) li.classList.add("new");
  li.addEventListener("click", () => selectCode(s.code, s.name));
  return li;
}
function noteStrategy(key, name) {
  if (state.strategies.has(key)) return;
  state.strategies.set(key, name || key);
  const opt = document.createElement("option");
  opt.value = key;
  opt.textContent = name && name !== key ? `${name} (${key})` : key;
  $("feed-filter").append(opt);
}
async function loadFeed() {
  try {
    const { items } = await getJSON("/api/strategies");
    for (const s of items) noteStrategy(s.key, s.name);
  } catch { /* the list fills from the signals themselves */ }
  const { items } = await getJSON("/api/signals?limit=100");
  for (const s of items) noteStrategy(s.strategy, s.strategy_name);
  $("feed").replaceChildren(...items.map((s) => feedItem(s, false)));
  const es = new EventSource("/api/stream/signals");
  es.addEventListener("signal", (ev) => {
    const s = JSON.parse(ev.data);
    noteStrategy(s.strategy, s.strategy_name);
    const feed = $("feed");
    feed.prepend(feedItem(s, true));
    while (feed.children.length > 300) feed.lastElementChild.remove();
    if (s.code === state.code && s.period === state.period) loadChart(false);
  });
  $("feed-filter").addEventListener("change", (e) => {
    state.feedFilter = e.target.value;
    for (const li of $("feed").children) li.hidden = state.feedFilter !== "" && li.dataset.strategy !== state.feedFilter;
  });
}

// --- scan trigger ------------------------------------------------------------------------------
function scanMsg(text, err = false) { const m = $("scan-msg"); m.textContent = text; m.className = "msg" + (err ? " err" : ""); }
function setupScan() {
  $("scan-btn").addEventListener("click", () => {
    $("scan-panel").hidden = false;
    if (state.token) $("scan-token").value = state.token; // kept in this page's memory only
    $("scan-token").focus();
  });
  $("scan-cancel").addEventListener("click", () => { $("scan-panel").hidden = true; });
  $("scan-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const token = $("scan-token").value.trim();
    if (!token) { scanMsg("enter the API token (MARKETBUS_API_TOKEN)", true); return; }
    state.token = token;
    scanMsg("sending…");
    try {
      const r = await fetch("/api/scheduler/trigger", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify({ task_type: "calc_signals", period: $("scan-period").value }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) { state.token = null; $("scan-token").value = ""; }
      if (r.status !== 202) { scanMsg(body.message || `failed (${r.status})`, true); return; }
      scanMsg(`job ${body.job_id} queued`);
      followJob(body.job_id);
    } catch (err) { scanMsg("cannot reach the gateway: " + err.message, true); }
  });
}
async function followJob(jobId) {
  $("scan-job").hidden = false;
  for (;;) {
    let job;
    try { job = await getJSON(`/api/scheduler/jobs/${jobId}`); } catch (err) { scanMsg(err.message, true); return; }
    $("scan-progress").style.width = `${job.percent}%`;
    $("scan-text").textContent = `${job.state} · ${job.percent.toFixed(0)}% · ${job.codes} codes · ${job.signals} signals`;
    if (job.state === "done") { scanMsg(`scan done: ${job.signals} signals over ${job.codes} codes`); return; }
    if (job.state === "failed") { scanMsg("scan failed: " + (job.error || "unknown error"), true); return; }
    await new Promise((res) => setTimeout(res, 1000));
  }
}
async function loadSchedule() {
  try {
    const s = await getJSON("/api/scheduler/status");
    const parts = [];
    if (s.schedule) parts.push(`schedule: ${s.schedule}`);
    if (s.next_run_ts) parts.push(`next ${fmtTime(s.next_run_ts)}`);
    if (s.running_job) parts.push("scan running");
    $("sched").textContent = parts.join(" · ");
  } catch { /* not critical */ }
}

// --- start -------------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  $("board-filter").addEventListener("input", applyBoardFilter);
  setupTabs();
  setupScan();
  loadBoard().catch((err) => { $("board-count").textContent = "error: " + err.message; });
  loadFeed().catch(() => {});
  loadSchedule();
  setInterval(loadSchedule, 30000);
});
