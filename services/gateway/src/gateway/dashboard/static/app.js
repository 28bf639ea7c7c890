// marketbus dashboard: live ETF board, k-line chart with signals, live signal feed, scan trigger.
// Data comes from the gateway's REST and SSE routes; nothing is computed here but formatting.
// Hooks for people and tests: #conn[data-state], #board tr[data-code][data-ts],
// #chart[data-code][data-period][data-bars][data-markers], #feed li.live, #scan-job[data-state].
"use strict";

const $ = (id) => document.getElementById(id);
const SHANGHAI_OFFSET_S = 8 * 3600; // the chart shows Asia/Shanghai wall time
const UP = "#e53935", DOWN = "#1aa260"; // 红涨绿跌: red up, green down
const state = {
  code: null, name: "", period: "1d", rows: new Map(), chart: null, candles: null, volume: null,
  bars: [], token: null, strategies: new Map(), feedFilter: "", sideFilter: "", etfs: [],
  feedIds: new Set(), sort: { key: null, dir: 1 }, streams: {}, scanning: false, barSignals: new Map(),
};

function fmtNum(v, digits = 3) { return v == null ? "–" : Number(v).toFixed(digits); }
function fmtVol(v) {
  if (v == null) return "–";
  if (v >= 1e8) return (v / 1e8).toFixed(2) + "亿";
  if (v >= 1e4) return (v / 1e4).toFixed(1) + "万";
  return String(Math.round(v));
}
function fmtPct(v) { return v == null ? "–" : (v > 0 ? "+" : "") + v.toFixed(2) + "%"; }
function cls(v) { return v > 0 ? "up" : v < 0 ? "down" : "flat"; }
const TZ = { timeZone: "Asia/Shanghai", hour12: false };
function fmtTime(ms) {
  return new Date(ms).toLocaleString("zh-CN", { ...TZ, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
}
function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString("zh-CN", { ...TZ, hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).message || `${r.status} ${r.statusText}`);
  return r.json();
}
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

// --- live streams: EventSource retries by itself (with Last-Event-ID); when the browser gives up
// (the gateway answered with an error), reopen with a growing delay and reload what was missed.
function openStream(name, url, handlers, onReopen) {
  const s = state.streams[name] || (state.streams[name] = { state: "connecting", delay: 1000, retries: 0, es: null });
  const es = new EventSource(url);
  s.es = es;
  for (const [event, fn] of Object.entries(handlers)) es.addEventListener(event, (ev) => { s.last = Date.now(); fn(ev); });
  es.onopen = () => { s.delay = 1000; s.retries = 0; setConn(name, "live"); };
  es.onerror = () => {
    s.retries += 1;
    setConn(name, "reconnecting");
    if (es.readyState === EventSource.CLOSED) {
      const wait = s.delay;
      s.delay = Math.min(s.delay * 2, 30000);
      setTimeout(() => { if (s.es === es) onReopen(); }, wait);
    }
  };
  return es;
}
function setConn(name, st) {
  state.streams[name].state = st;
  const all = Object.values(state.streams);
  const overall = all.some((s) => s.state === "reconnecting") ? "reconnecting"
    : all.length >= 2 && all.every((s) => s.state === "live") ? "live" : "connecting";
  const c = $("conn");
  const retries = all.reduce((n, s) => n + (s.state === "reconnecting" ? s.retries : 0), 0);
  c.dataset.state = overall;
  document.body.classList.toggle("stale", overall === "reconnecting"); // what is shown may be old
  c.className = "conn " + overall;
  c.textContent = overall === "live" ? "实时 live" : overall === "reconnecting" ? `重连中 reconnecting… (${retries})` : "连接中 connecting…";
  c.title = all.map((s, i) => `${Object.keys(state.streams)[i]}: ${s.state}` + (s.last ? ` · last event ${fmtClock(s.last)}` : "")).join("\n");
}

// --- board -------------------------------------------------------------------------------------
const SORT = {
  code: (r) => r.dataset.code, price: (r) => Number(r.dataset.price),
  pct: (r) => Number(r.dataset.pct ?? -Infinity), vol: (r) => Number(r.dataset.vol || 0),
};
function renderRow(q) {
  let row = state.rows.get(q.code);
  const prev = row ? Number(row.dataset.price) : null;
  if (!row) {
    row = el("tr");
    row.dataset.code = q.code;
    row.tabIndex = 0;
    row.append(el("td", "code", q.code), el("td", "name", q.name), el("td", "num"), el("td", "num"), el("td", "num col-vol"), el("td", "num col-time muted"));
    row.addEventListener("click", () => selectCode(q.code, row.dataset.name));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") selectCode(q.code, row.dataset.name); });
    row.children[2].addEventListener("animationend", (e) => e.target.classList.remove("flash-up", "flash-down"));
    row.classList.toggle("sel", q.code === state.code);
    state.rows.set(q.code, row);
  }
  const [, , price, pct, vol, time] = row.children;
  const c = cls(q.change_percent);
  price.textContent = fmtNum(q.price);
  price.className = "num " + c;
  pct.textContent = fmtPct(q.change_percent);
  pct.className = "num pct " + c;
  vol.textContent = fmtVol(q.volume);
  time.textContent = fmtClock(q.ts);
  row.title = `${q.code} ${q.name} · ${new Date(q.ts).toLocaleString("zh-CN", TZ)}`;
  Object.assign(row.dataset, { price: q.price, pct: q.change_percent ?? "", vol: q.volume, ts: q.ts, name: q.name });
  if (prev != null && prev !== q.price) { // the price cell blinks red on an uptick, green on a downtick
    price.classList.add(q.price > prev ? "flash-up" : "flash-down");
  }
  return row;
}
function applyBoardFilter() {
  const f = $("board-filter").value.trim().toLowerCase();
  let shown = 0;
  for (const [code, row] of state.rows) {
    row.hidden = f !== "" && !code.toLowerCase().startsWith(f) && !(row.dataset.name || "").toLowerCase().includes(f);
    if (!row.hidden) shown += 1;
  }
  $("board-count").textContent = f ? `${shown}/${state.rows.size}` : `${state.rows.size}`;
}
function sortBoard() {
  const { key, dir } = state.sort;
  if (!key) return;
  const body = $("board").tBodies[0];
  const rows = [...body.rows].sort((a, b) => {
    const x = SORT[key](a), y = SORT[key](b);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
  body.append(...rows);
}
function setupSort() {
  for (const th of $("board").tHead.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "code" ? 1 : -1 };
      for (const o of $("board").tHead.querySelectorAll("th")) o.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", state.sort.dir > 0 ? "ascending" : "descending");
      sortBoard();
    });
  }
  setInterval(sortBoard, 3000); // keep a sorted board sorted without jumping on every tick
}
async function loadBoard() {
  let items;
  try {
    ({ items } = await getJSON("/api/etf/quotes"));
  } catch (err) {
    $("board-msg").textContent = "行情暂不可用 quotes unavailable: " + err.message + " · retrying";
    setTimeout(loadBoard, 3000);
    return;
  }
  if (!items.length) { // the quotes service has not written yet: wait, do not stream every code
    $("board-msg").textContent = "等待行情 waiting for the first quotes…";
    setTimeout(loadBoard, 1500);
    return;
  }
  $("board-msg").textContent = "";
  const body = $("board").tBodies[0];
  body.replaceChildren(...items.map(renderRow));
  state.etfs = items.map((q) => q.code);
  applyBoardFilter();
  sortBoard();
  if (!state.code) selectCode(items[0].code, items[0].name);
  openQuoteStream();
}
function openQuoteStream() {
  if (state.streams.quotes?.es) state.streams.quotes.es.close();
  openStream("quotes", "/api/stream/quotes?codes=" + state.etfs.join(","), {
    quote: (ev) => {
      const q = JSON.parse(ev.data);
      if (!state.rows.has(q.code)) return;
      renderRow(q);
    },
  }, loadBoard);
}

// --- chart -------------------------------------------------------------------------------------
function ensureChart() {
  if (state.chart || !window.LightweightCharts) return state.chart;
  const chart = LightweightCharts.createChart($("chart"), {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: "#d8dee6", fontFamily: getComputedStyle(document.body).fontFamily },
    grid: { vertLines: { color: "#1e2630" }, horzLines: { color: "#1e2630" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#263040" },
    rightPriceScale: { borderColor: "#263040" },
    crosshair: { mode: 0 },
    localization: { locale: "zh-CN" },
  });
  state.candles = chart.addCandlestickSeries({
    upColor: UP, downColor: DOWN, borderUpColor: UP, borderDownColor: DOWN, wickUpColor: UP, wickDownColor: DOWN,
  });
  state.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } });
  state.volume = chart.addHistogramSeries({ priceFormat: { type: "volume" }, priceScaleId: "vol", lastValueVisible: false, priceLineVisible: false });
  chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
  chart.subscribeCrosshairMove((p) => showLegend(p && p.time != null ? state.bars.find((b) => b.time === p.time) : null));
  state.chart = chart;
  return chart;
}
const chartTime = (ms) => Math.floor(ms / 1000) + SHANGHAI_OFFSET_S;

function showLegend(bar) {
  const b = bar || state.bars[state.bars.length - 1];
  const lg = $("chart-legend");
  if (!b) { lg.textContent = ""; return; }
  const idx = state.bars.indexOf(b);
  const prev = idx > 0 ? state.bars[idx - 1].close : b.open;
  const chg = prev ? ((b.close - prev) / prev) * 100 : 0;
  const t = new Date((b.time - SHANGHAI_OFFSET_S) * 1000);
  const when = state.period === "1d"
    ? t.toLocaleDateString("zh-CN", TZ)
    : t.toLocaleString("zh-CN", { ...TZ, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  lg.replaceChildren(
    el("span", "muted", b.forming ? `${when} 盘中 forming` : when),
    el("span", "", `开 ${fmtNum(b.open)}`), el("span", "", `高 ${fmtNum(b.high)}`),
    el("span", "", `低 ${fmtNum(b.low)}`), el("span", cls(chg), `收 ${fmtNum(b.close)} ${fmtPct(chg)}`),
    el("span", "muted", `量 ${fmtVol(b.volume)}`),
    ...(state.barSignals?.get(b.time) || []).map((s) =>
      el("span", "sig " + (s.side === "BUY" ? "up" : "down") + (s.provisional ? " prov" : ""),
        `${s.provisional ? "盘中" : ""}${s.side === "BUY" ? "买" : "卖"} ${s.strategy_name || s.strategy}`)),
  );
}
function markerOf(s, n) {
  const buy = s.side === "BUY";
  // provisional (in session, on the forming bar): dimmed and labelled 盘中
  const color = s.provisional ? (buy ? "rgba(255,107,107,0.5)" : "rgba(46,204,113,0.5)") : (buy ? "#ff6b6b" : "#2ecc71");
  return { time: chartTime(s.bar_ts), position: buy ? "belowBar" : "aboveBar", color,
    shape: buy ? "arrowUp" : "arrowDown", text: (s.provisional ? "盘中" : "") + (buy ? "买" : "卖") + (n > 1 ? n : "") };
}
// a provisional signal the close confirmed or withdrew is shown by its resolution, not twice
function chartable(items) {
  const resolved = new Set(items.flatMap((s) => [s.confirms, s.withdraws]).filter(Boolean));
  return items.filter((s) => s.status !== "withdrawn" && !resolved.has(s.id));
}
async function loadChart(fit = true) {
  const code = state.code, period = state.period;
  if (!code) return;
  state.chartLoaded = Date.now();
  if (!ensureChart()) { $("chart-msg").textContent = "chart library not loaded (/static/vendor/lightweight-charts.js)"; return; }
  try {
    const [kl, sg] = await Promise.all([
      getJSON(`/api/kline/${code}?period=${period}&limit=300`),
      getJSON(`/api/signals/${code}?limit=500`),
    ]);
    if (code !== state.code || period !== state.period) return; // the user moved on
    state.bars = kl.items.map((b) => ({ time: chartTime(b.ts), open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume }));
    // provisional signals sit on today's forming daily bar, which is not a stored k-line yet: draw
    // it from the latest quote (the same snapshot the scan evaluated), marked as forming
    const lastTs = kl.items.length ? kl.items[kl.items.length - 1].ts : -Infinity;
    const forming = chartable(sg.items).find((s) => s.provisional && s.period === period && s.bar_ts > lastTs);
    if (forming && period === "1d") {
      const q = await getJSON(`/api/quotes/${code}`).catch(() => null);
      if (code !== state.code || period !== state.period) return;
      if (q && q.price) {
        state.bars.push({ time: chartTime(forming.bar_ts), open: q.open ?? q.price, high: q.high ?? q.price,
          low: q.low ?? q.price, close: q.price, volume: q.volume, forming: true });
      }
    }
    const FORMING = { color: "rgba(139,151,166,0.55)", wickColor: "rgba(139,151,166,0.8)", borderColor: "rgba(139,151,166,0.8)" };
    state.candles.setData(state.bars.map(({ time, open, high, low, close, forming }) =>
      ({ time, open, high, low, close, ...(forming ? FORMING : {}) }))); // the forming bar: dimmed
    state.volume.setData(state.bars.map((b) => ({ time: b.time, value: b.volume,
      color: b.close >= b.open ? "rgba(229,57,53,0.45)" : "rgba(26,162,96,0.45)" })));
    const barTimes = new Set(state.bars.map((b) => b.time));
    const shown = chartable(sg.items).filter((s) => s.period === period && barTimes.has(chartTime(s.bar_ts)) && passesFilter(s));
    // several strategies can fire on one bar: one marker per bar and side (买3), the names in the legend
    const byBar = new Map();
    state.barSignals = new Map();
    for (const s of shown.sort((a, b) => a.bar_ts - b.bar_ts)) {
      const key = `${s.bar_ts}|${s.side}|${s.provisional ? 1 : 0}`;
      byBar.set(key, [...(byBar.get(key) || []), s]);
      const t = chartTime(s.bar_ts);
      state.barSignals.set(t, [...(state.barSignals.get(t) || []), s]);
    }
    const markers = [...byBar.values()].map((group) => markerOf(group[0], group.length)).sort((a, b) => a.time - b.time);
    state.candles.setMarkers(markers);
    if (fit) { // the latest bars, wide enough to read (all of them when there are few)
      const n = state.bars.length, show = $("chart").clientWidth < 500 ? 60 : 120;
      if (n > show) state.chart.timeScale().setVisibleLogicalRange({ from: n - show, to: n + 2 });
      else state.chart.timeScale().fitContent();
    }
    const c = $("chart");
    Object.assign(c.dataset, { code, period, bars: state.bars.length, markers: shown.length });
    showLegend(null);
    const filtered = state.feedFilter || state.sideFilter ? " (filtered)" : "";
    $("chart-msg").textContent = state.bars.length
      ? `K线 ${state.bars.length} bars · 信号 ${shown.length} signals${filtered}`
      : "该周期暂无K线 no bars yet for this period";
  } catch (err) {
    $("chart-msg").textContent = "chart: " + err.message;
  }
}
function selectCode(code, name) {
  state.code = code;
  state.name = name || "";
  $("chart-title").textContent = `${code} ${state.name}`;
  for (const [c, row] of state.rows) row.classList.toggle("sel", c === code);
  loadChart(true);
  if (window.matchMedia("(max-width: 700px)").matches) $("chart-panel").scrollIntoView({ behavior: "smooth", block: "start" });
}
function setPeriod(period) {
  state.period = period;
  for (const o of $("period-tabs").querySelectorAll("button")) o.classList.toggle("on", o.dataset.period === period);
}
function setupTabs() {
  for (const b of $("period-tabs").querySelectorAll("button")) {
    b.addEventListener("click", () => { setPeriod(b.dataset.period); loadChart(true); });
  }
  // bars close on the server; refresh the chart now and then (cheap: one code), soon while empty
  setInterval(() => {
    const age = Date.now() - (state.chartLoaded || 0);
    const due = age > 5000 || ((state.bars.length === 0 || state.chartStale) && age > 1000);
    if (!document.hidden && due) { state.chartStale = false; loadChart(false); }
  }, 500);
}

// --- signal feed -------------------------------------------------------------------------------
function passesFilter(s) {
  return (state.feedFilter === "" || s.strategy === state.feedFilter) && (state.sideFilter === "" || s.side === state.sideFilter);
}
// provisional: in session, on the forming daily bar (may change until the close); withdrawn: the close
// did not give it; confirmed: the closed bar's signal confirming a provisional one
const SIGNAL_KIND = {
  provisional: ["prov", "盘中 provisional"],
  withdrawn: ["withdrawn", "撤回 withdrawn"],
  confirmed: ["confirmed", "收盘确认 confirmed"],
};
const RESOLVED = { withdrawn: "盘中 · 已撤回 withdrawn", confirmed: "盘中 · 已确认 confirmed" };
function signalKind(s) {
  return s.status === "withdrawn" ? "withdrawn" : s.provisional ? "provisional" : s.status === "confirmed" ? "confirmed" : "";
}
function feedItem(s, live) {
  const kind = signalKind(s);
  const li = el("li", [live ? "live new" : "", kind ? SIGNAL_KIND[kind][0] : ""].filter(Boolean).join(" "));
  Object.assign(li.dataset, { id: s.id, strategy: s.strategy, side: s.side, code: s.code, period: s.period, status: kind || "closed" });
  const price = el("span", "num", fmtNum(s.price));
  const meta = el("span", "meta",
    `${s.strategy_name || s.strategy} · ${s.period} · ${fmtTime(s.bar_ts)} · 置信 ${(s.confidence * 100).toFixed(0)}%`);
  if (kind) meta.prepend(el("span", "badge " + SIGNAL_KIND[kind][0], SIGNAL_KIND[kind][1]), " ");
  li.title = s.reason || "";
  li.append(el("span", "side " + s.side, s.side === "BUY" ? "买 BUY" : "卖 SELL"), el("span", "who", `${s.code} ${s.name}`), price, meta);
  li.hidden = !passesFilter(s);
  if (live) li.addEventListener("animationend", () => li.classList.remove("new"), { once: true });
  li.addEventListener("click", () => { setPeriod(s.period); selectCode(s.code, s.name); }); // its bar, marked
  return li;
}
function noteStrategy(key, name) {
  if (state.strategies.has(key)) return;
  state.strategies.set(key, name || key);
  const opt = el("option", "", name && name !== key ? `${name} (${key})` : key);
  opt.value = key;
  $("feed-filter").append(opt);
}
function addSignals(items, live) {
  const feed = $("feed");
  const fresh = items.filter((s) => !state.feedIds.has(s.id));
  for (const s of fresh) { state.feedIds.add(s.id); noteStrategy(s.strategy, s.strategy_name); }
  if (!fresh.length) return;
  feed.prepend(...fresh.map((s) => feedItem(s, live)));
  for (const s of fresh) { // the close confirmed or withdrew a provisional signal shown here
    const ref = s.withdraws || s.confirms;
    const li = ref && feed.querySelector(`li[data-id="${CSS.escape(ref)}"]`);
    if (!li) continue;
    const how = s.withdraws ? "withdrawn" : "confirmed";
    li.classList.add("resolved-" + how);
    li.dataset.resolved = how;
    const badge = li.querySelector(".badge");
    if (badge) badge.textContent = RESOLVED[how];
  }
  while (feed.children.length > 300) { state.feedIds.delete(feed.lastElementChild.dataset.id); feed.lastElementChild.remove(); }
  $("feed-empty").hidden = true;
  updateFeedCount();
  if (fresh.some((s) => s.code === state.code && s.period === state.period)) state.chartStale = true;
}
function updateFeedCount() {
  const all = $("feed").children.length;
  const shown = [...$("feed").children].filter((li) => !li.hidden).length;
  $("feed-count").textContent = shown === all ? `${all}` : `${shown}/${all}`;
}
function applyFeedFilter() {
  for (const li of $("feed").children) li.hidden = !passesFilter(li.dataset);
  updateFeedCount();
  loadChart(false); // the chart's markers follow the filter
}
async function loadSignals() {
  const { items } = await getJSON("/api/signals?limit=100");
  addSignals(items.reverse(), false); // oldest first: prepend leaves the newest on top
}
async function loadFeed() {
  try {
    const { items } = await getJSON("/api/strategies");
    for (const s of items) noteStrategy(s.key, s.name);
  } catch { /* the list fills from the signals themselves */ }
  $("feed-filter").addEventListener("change", (e) => { state.feedFilter = e.target.value; applyFeedFilter(); });
  for (const b of $("side-tabs").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      state.sideFilter = b.dataset.side;
      for (const o of $("side-tabs").querySelectorAll("button")) o.classList.toggle("on", o === b);
      applyFeedFilter();
    });
  }
  await loadSignals().catch(() => {});
  if (!$("feed").children.length) $("feed-empty").hidden = false;
  const open = () => openStream("signals", "/api/stream/signals", {
    signal: (ev) => addSignals([JSON.parse(ev.data)], true),
  }, () => { loadSignals().catch(() => {}); open(); });
  open();
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
    if (state.scanning) return;
    const token = $("scan-token").value.trim();
    if (!token) { scanMsg("请输入令牌 enter the API token (MARKETBUS_API_TOKEN)", true); return; }
    state.token = token;
    scanMsg("提交中 sending…");
    try {
      const r = await fetch("/api/scheduler/trigger", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify({ task_type: "calc_signals", period: $("scan-period").value }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) { state.token = null; $("scan-token").value = ""; }
      if (r.status !== 202) { scanMsg(body.message || `failed (${r.status})`, true); return; }
      scanMsg(`任务 job ${body.job_id.slice(0, 8)} 已排队 queued`);
      followJob(body.job_id);
    } catch (err) { scanMsg("cannot reach the gateway: " + err.message, true); }
  });
}
const JOB_STATE = { queued: "排队 queued", running: "扫描中 running", done: "完成 done", failed: "失败 failed" };
async function followJob(jobId) {
  const box = $("scan-job");
  box.hidden = false;
  box.dataset.job = jobId;
  box.dataset.state = "queued";
  state.scanning = true;
  $("scan-submit").disabled = true;
  const started = Date.now();
  try {
    for (;;) {
      let job;
      try { job = await getJSON(`/api/scheduler/jobs/${jobId}`); } catch (err) { scanMsg(err.message, true); box.dataset.state = "error"; return; }
      const secs = ((Date.now() - started) / 1000).toFixed(0);
      box.dataset.state = job.state;
      $("scan-progress").style.width = `${job.state === "done" ? 100 : job.percent}%`;
      $("scan-text").textContent =
        `${JOB_STATE[job.state] || job.state} · ${job.percent.toFixed(0)}% · ${job.codes} 只 codes · ${job.signals} 个信号 signals · ${secs}s`;
      if (job.state === "done") { scanMsg(`扫描完成 scan done: ${job.signals} signals over ${job.codes} codes (${job.period})`); loadSchedule(); return; }
      if (job.state === "failed") { scanMsg("扫描失败 scan failed: " + (job.error || "unknown error"), true); return; }
      await new Promise((res) => setTimeout(res, 500));
    }
  } finally {
    state.scanning = false;
    $("scan-submit").disabled = false;
  }
}
async function loadSchedule() {
  try {
    const s = await getJSON("/api/scheduler/status");
    const parts = [];
    if (s.schedule) parts.push(`schedule: ${s.schedule}`);
    if (s.last_run_ts) parts.push(`last ${fmtTime(s.last_run_ts)}`);
    if (s.next_run_ts) parts.push(`next ${fmtTime(s.next_run_ts)}`);
    if (s.running_job) parts.push("scan running");
    $("sched").textContent = parts.join(" · ");
    $("scan-btn").title = s.trigger_enabled ? "run the full-market scan (needs the API token)"
      : "the trigger is disabled: start the gateway with MARKETBUS_API_TOKEN";
    $("scan-btn").classList.toggle("ghost", !s.trigger_enabled);
  } catch { /* not critical */ }
}

// --- start -------------------------------------------------------------------------------------
window.addEventListener("DOMContentLoaded", () => {
  state.streams = {};
  $("board-filter").addEventListener("input", applyBoardFilter);
  setupSort();
  setupTabs();
  setupScan();
  loadBoard();
  loadFeed().catch(() => {});
  loadSchedule();
  setInterval(loadSchedule, 30000);
});

// --- scorecard: how each strategy's signals did (GET /api/scorecard, computed by the scorecard
// service). Hooks: #scorecard[data-state][data-rows], #sc-table tr[data-strategy] td[data-figure][data-n],
// #sc-returns[data-lines][data-points], #sc-buckets[data-bars][data-few].
const SC = { period: "1d", market: "*", horizon: 5, strategy: "*", rows: [], horizons: [1, 5, 10, 20] };
// line colours: neither the red nor the green of prices (红涨绿跌)
const SC_COLORS = ["#3d8bfd", "#f0a020", "#b07cff", "#3fc1c9", "#ff7eb6", "#c9c93f", "#8fa8ff", "#ff9f6b", "#9be7ff", "#e0b3ff", "#d8dee6"];
function fmtRet(v) { return v == null ? "–" : (v > 0 ? "+" : "") + (v * 100).toFixed(2) + "%"; }
function fmtRate(v) { return v == null ? "–" : (v * 100).toFixed(1) + "%"; }
function figureCell(fig, fmt, name) {
  const td = el("td", "num");
  td.dataset.figure = name;
  td.dataset.n = String(fig.n);
  if (fig.value == null) {
    td.classList.add("few");
    td.textContent = fig.n ? "样本不足" : "–";
    td.title = fig.note || "";
  } else {
    td.textContent = fmt(fig.value);
    td.classList.add(cls(name === "hit_rate" ? fig.value - 0.5 : fig.value)); // 红涨绿跌 as the board
  }
  td.appendChild(el("small", null, `n=${fig.n}`));
  return td;
}
function scName(r) { return r.strategy === "*" ? "全部 all" : (r.strategy_name ? `${r.strategy_name} ${r.strategy}` : r.strategy); }
function scRowsAt(h) { return SC.rows.filter((r) => r.horizon === h && r.market === SC.market); }
function renderScTable() {
  const body = $("sc-table").querySelector("tbody");
  body.replaceChildren();
  const byKey = (a, b) => (a < b ? -1 : a > b ? 1 : 0); // code-point order, as the keys are
  const rows = scRowsAt(SC.horizon).sort((a, b) => (a.strategy === "*") - (b.strategy === "*") || byKey(a.strategy, b.strategy));
  for (const r of rows) {
    const tr = el("tr", r.strategy === "*" ? "total" : null);
    tr.dataset.strategy = r.strategy;
    tr.appendChild(el("td", null, scName(r)));
    tr.appendChild(el("td", "num", String(r.signals)));
    tr.appendChild(el("td", "num", String(r.pending)));
    tr.appendChild(figureCell(r.hit_rate, fmtRate, "hit_rate"));
    tr.appendChild(figureCell(r.mean_return, fmtRet, "mean_return"));
    tr.appendChild(figureCell(r.median_return, fmtRet, "median_return"));
    tr.appendChild(figureCell(r.vs_market, fmtRet, "vs_market"));
    tr.appendChild(figureCell(r.vs_csi300, fmtRet, "vs_csi300"));
    tr.appendChild(figureCell(r.mae, fmtRet, "mae"));
    tr.appendChild(figureCell(r.mfe, fmtRet, "mfe"));
    const st = r.stop_target;
    const td = el("td", "num", st.n ? `${st.target}/${st.stop}` : "–");
    td.title = st.n ? `target first ${st.target}, stop first ${st.stop}, both in one bar ${st.both}, neither ${st.neither} (of ${st.n})` : "no BUY with a stop or target";
    tr.appendChild(td);
    body.appendChild(tr);
  }
  $("scorecard").dataset.rows = String(rows.length);
}
function canvasCtx(id) {
  const c = $(id);
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.font = "11px system-ui, sans-serif";
  return [c, ctx];
}
function axes(ctx, box, lo, hi, fmt, ticks = 4) {
  ctx.strokeStyle = "#263040"; ctx.fillStyle = "#8b97a6"; ctx.lineWidth = 1;
  for (let i = 0; i <= ticks; i++) {
    const v = lo + ((hi - lo) * i) / ticks;
    const y = box.y + box.h - ((v - lo) / (hi - lo)) * box.h;
    ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke();
    ctx.fillText(fmt(v), 4, y + 4);
  }
}
function renderScReturns() {
  const [c, ctx] = canvasCtx("sc-returns");
  const box = { x: 56, y: 12, w: c.width - 72, h: c.height - 40 };
  const strategies = [...new Set(SC.rows.filter((r) => r.market === SC.market).map((r) => r.strategy))].sort();
  const series = strategies.map((s) => SC.horizons.map((h) => {
    const r = SC.rows.find((x) => x.strategy === s && x.horizon === h && x.market === SC.market);
    return r ? r.mean_return.value : null;
  }));
  const values = series.flat().filter((v) => v != null);
  const legend = $("sc-returns-legend");
  legend.replaceChildren();
  let lines = 0, points = 0;
  if (values.length) {
    let lo = Math.min(0, ...values), hi = Math.max(0, ...values);
    if (hi - lo < 1e-6) { lo -= 0.001; hi += 0.001; }
    const pad = (hi - lo) * 0.1; lo -= pad; hi += pad;
    axes(ctx, box, lo, hi, (v) => (v * 100).toFixed(2) + "%");
    const X = (i) => box.x + (box.w * i) / (SC.horizons.length - 1);
    const Y = (v) => box.y + box.h - ((v - lo) / (hi - lo)) * box.h;
    ctx.strokeStyle = "#8b97a6"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(box.x, Y(0)); ctx.lineTo(box.x + box.w, Y(0)); ctx.stroke(); ctx.setLineDash([]);
    SC.horizons.forEach((h, i) => { ctx.fillStyle = "#8b97a6"; ctx.fillText(`${h}`, X(i) - 4, box.y + box.h + 16); });
    series.forEach((ys, k) => {
      const color = strategies[k] === "*" ? "#d8dee6" : SC_COLORS[k % SC_COLORS.length];
      ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = strategies[k] === "*" ? 3 : 1.5;
      let drawn = 0, open = false;
      ctx.beginPath();
      ys.forEach((v, i) => {
        if (v == null) { open = false; return; }
        if (open) ctx.lineTo(X(i), Y(v)); else ctx.moveTo(X(i), Y(v));
        open = true; drawn += 1;
      });
      ctx.stroke();
      ys.forEach((v, i) => { if (v != null) { ctx.beginPath(); ctx.arc(X(i), Y(v), 2.5, 0, 2 * Math.PI); ctx.fill(); } });
      if (drawn) {
        lines += 1; points += drawn;
        const li = el("li", null, strategies[k] === "*" ? "全部 all" : strategies[k]);
        const sw = el("i"); sw.style.background = color; li.prepend(sw);
        legend.appendChild(li);
      }
    });
  } else {
    ctx.fillStyle = "#8b97a6"; ctx.fillText("样本不足 too few signals for any average yet", box.x, box.y + box.h / 2);
  }
  c.dataset.lines = String(lines);
  c.dataset.points = String(points);
}
function renderScBuckets() {
  const [c, ctx] = canvasCtx("sc-buckets");
  const box = { x: 44, y: 12, w: c.width - 56, h: c.height - 40 };
  const r = SC.rows.find((x) => x.strategy === SC.strategy && x.horizon === SC.horizon && x.market === SC.market);
  const buckets = r ? r.buckets : [];
  axes(ctx, box, 0, 1, (v) => Math.round(v * 100) + "%");
  ctx.strokeStyle = "#8b97a6"; ctx.setLineDash([4, 3]);
  const y50 = box.y + box.h / 2;
  ctx.beginPath(); ctx.moveTo(box.x, y50); ctx.lineTo(box.x + box.w, y50); ctx.stroke(); ctx.setLineDash([]);
  let bars = 0, few = 0;
  const slot = box.w / Math.max(1, buckets.length);
  buckets.forEach((b, i) => {
    const x = box.x + slot * i + slot * 0.15, w = slot * 0.7;
    const v = b.hit_rate.value;
    ctx.fillStyle = "#8b97a6";
    ctx.fillText(b.bucket, x, box.y + box.h + 14);
    ctx.fillText(`n=${b.hit_rate.n}`, x, box.y + box.h + 26 > c.height ? c.height - 2 : box.y + box.h + 26);
    if (v == null) {
      few += 1;
      ctx.strokeStyle = "#8b97a6"; ctx.setLineDash([3, 3]);
      ctx.strokeRect(x, box.y + box.h - 24, w, 24); ctx.setLineDash([]);
      ctx.fillText("不足", x + 2, box.y + box.h - 8);
      return;
    }
    bars += 1;
    const h = v * box.h;
    ctx.fillStyle = "#3d8bfd";
    ctx.fillRect(x, box.y + box.h - h, w, h);
    ctx.fillStyle = "#d8dee6";
    ctx.fillText(fmtRate(v), x, box.y + box.h - h - 3);
  });
  c.dataset.bars = String(bars);
  c.dataset.few = String(few);
}
function fillSelect(id, values, current, label) {
  const sel = $(id);
  const want = [...values];
  const have = [...sel.options].map((o) => o.value);
  if (want.join("|") !== have.join("|")) {
    sel.replaceChildren(...want.map((v) => { const o = el("option", null, label(v)); o.value = v; return o; }));
  }
  sel.value = want.includes(current) ? current : want[0];
  return sel.value;
}
async function loadScorecard() {
  const box = $("scorecard");
  try {
    const body = await getJSON(`/api/scorecard?period=${encodeURIComponent(SC.period)}`);
    const st = body.state;
    if (st && st.horizons) SC.horizons = st.horizons;
    if (st && st.periods && st.periods.length) { // the chosen period stays, scored or not yet
      const periods = st.periods.includes(SC.period) ? st.periods : [SC.period, ...st.periods];
      SC.period = fillSelect("sc-period", periods, SC.period, (p) => p);
    }
    SC.rows = body.rows;
    const markets = ["*", ...new Set(body.rows.map((r) => r.market).filter((m) => m !== "*"))];
    SC.market = fillSelect("sc-market", markets, SC.market, (m) => (m === "*" ? "全部 all" : m));
    const strategies = ["*", ...[...new Set(body.rows.map((r) => r.strategy).filter((s) => s !== "*"))].sort()];
    SC.strategy = fillSelect("sc-strategy", strategies, SC.strategy, (s) => (s === "*" ? "全部策略 all" : s));
    $("sc-meta").textContent = st ? `· ${st.scored} 个信号 scored · ${st.pending} 待定 pending · 样本下限 min ${st.min_samples} · ${fmtClock(st.updated_ts)}` : "";
    $("sc-msg").textContent = body.rows.length ? "" : "暂无记分 no scored signals for this period yet: history is scored within a minute of start";
    renderScTable(); renderScReturns(); renderScBuckets();
    box.dataset.period = SC.period;
    box.dataset.state = body.rows.length ? "ready" : "empty";
  } catch (err) {
    $("sc-msg").textContent = "记分卡不可用 scorecard unavailable: " + err.message;
    box.dataset.state = "error";
  }
}
function setupScorecard() {
  $("sc-period").addEventListener("change", (e) => { SC.period = e.target.value; loadScorecard(); });
  $("sc-market").addEventListener("change", (e) => { SC.market = e.target.value; renderScTable(); renderScReturns(); renderScBuckets(); });
  $("sc-strategy").addEventListener("change", (e) => { SC.strategy = e.target.value; renderScBuckets(); });
  for (const b of $("sc-horizon").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      SC.horizon = Number(b.dataset.h);
      for (const o of $("sc-horizon").querySelectorAll("button")) o.classList.toggle("on", o === b);
      $("sc-horizon").dataset.h = b.dataset.h;
      renderScTable(); renderScBuckets();
    });
  }
  loadScorecard();
  setInterval(loadScorecard, 5000);
}
window.addEventListener("DOMContentLoaded", setupScorecard);
