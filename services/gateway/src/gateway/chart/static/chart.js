"use strict";
// The chart page of one code (OLD_API.md P8, the index chart of P9): candles, volume and the
// strategy's signal markers, drawn with TradingView Lightweight Charts from the data the gateway
// embedded in the page (#chart-data). No request is made once the page is loaded.
//
// What a test (or a curious user) can read, on #chart: data-theme, data-bars, data-markers,
// data-buy, data-sell, data-ready ("1" once drawn and the markers placed); on each #signals li:
// data-ts, data-side and data-x / data-y, the marker's bar in pixels from #chart's top-left corner
// (x: the bar's centre; y: its low for a buy, its high for a sell; empty while off screen); on
// #legend: data-ts of the bar it shows. window.marketbusChart.palette holds the theme's colours.
(() => {
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($("chart-data").textContent);

  // 红涨绿跌 (red up, green down), as on every Chinese trading screen; buy/sell markers in colours
  // of their own so they never read as a candle. Keep in step with chart.css.
  const PALETTES = {
    dark: {
      bg: "#131722", text: "#d1d4dc", grid: "#1f2430", line: "#2a2e39",
      up: "#f6465d", down: "#2ebd85", buy: "#f0b90b", sell: "#3d8ef0",
      upVol: "rgba(246,70,93,0.42)", downVol: "rgba(46,189,133,0.42)", forming: "rgba(138,147,166,0.75)",
    },
    light: {
      bg: "#ffffff", text: "#1f2328", grid: "#f0f2f5", line: "#e3e6eb",
      up: "#d92b3a", down: "#0b8f57", buy: "#e8710a", sell: "#1565c0",
      upVol: "rgba(217,43,58,0.35)", downVol: "rgba(11,143,87,0.35)", forming: "rgba(107,114,128,0.7)",
    },
  };
  const pal = PALETTES[data.theme] || PALETTES.dark;
  const PERIOD_LABELS = { "15min": "15分", "30min": "30分", "60min": "60分", daily: "日K", weekly: "周K", monthly: "月K" };
  const INTRADAY = new Set(["1m", "5m", "15m", "30m", "60m"]);
  const SHANGHAI_S = 8 * 3600; // the chart shows wall-clock times of Asia/Shanghai (no DST)
  const intraday = INTRADAY.has(data.period);
  const chartEl = $("chart");
  const state = { chart: null, candles: null, bars: [], byTime: new Map(), markersAt: new Map() };
  window.marketbusChart = { palette: pal, state };

  const timeOf = (ms) => Math.floor(ms / 1000) + SHANGHAI_S;
  const pad = (n) => String(n).padStart(2, "0");
  function when(ms) {
    const d = new Date(ms + SHANGHAI_S * 1000); // read in UTC: the Shanghai wall clock
    const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    return intraday ? `${day.slice(5)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}` : day;
  }
  const fmt = (v) => (v == null ? "–" : Number(v).toFixed(data.decimals));
  function fmtVol(v) {
    if (v == null) return "–";
    if (v >= 1e8) return (v / 1e8).toFixed(2) + "亿";
    if (v >= 1e4) return (v / 1e4).toFixed(1) + "万";
    return String(Math.round(v));
  }
  const fmtPct = (v) => (v > 0 ? "+" : "") + v.toFixed(2) + "%";
  function span(cls, text) {
    const e = document.createElement("span");
    if (cls) e.className = cls;
    e.textContent = text;
    return e;
  }
  const sideWord = (m) => (m.provisional ? "盘中" : "") + (m.side === "BUY" ? "买" : "卖");
  function say(text) {
    $("msg").textContent = text;
    $("msg").hidden = !text;
  }

  // --- header and period tabs ------------------------------------------------------------------
  function header() {
    $("title").textContent = `${data.name || data.app_code} ${data.app_code}`;
    const parts = [PERIOD_LABELS[data.period_name] || data.period_name];
    if (data.strategy) parts.push(data.strategy.name);
    if (data.forming) parts.push("含盘中 forming bar");
    $("sub").textContent = parts.join(" · ");
    const nav = $("periods");
    if (!data.periods.length) return;
    const here = new URLSearchParams(location.search);
    for (const p of data.periods) {
      const q = new URLSearchParams(here);
      q.set("period", p.name);
      const a = document.createElement("a");
      a.href = "?" + q.toString();
      a.textContent = PERIOD_LABELS[p.name] || p.name;
      a.dataset.period = p.name;
      if (p.period === data.period) {
        a.className = "on";
        a.setAttribute("aria-current", "page");
      }
      nav.append(a);
    }
    nav.hidden = false;
  }

  // --- the legend: one bar's OHLCV (the last one unless the crosshair or a tap picks another) ---
  function showLegend(bar) {
    const b = bar || state.bars[state.bars.length - 1];
    const lg = $("legend");
    if (!b) {
      lg.replaceChildren();
      delete lg.dataset.ts;
      return;
    }
    const i = state.bars.indexOf(b);
    const prev = i > 0 ? state.bars[i - 1].close : b.open;
    const chg = prev ? ((b.close - prev) / prev) * 100 : 0;
    const dir = chg > 0 ? "up" : chg < 0 ? "down" : "";
    lg.dataset.ts = String(b.ts);
    lg.replaceChildren(
      span("muted", when(b.ts) + (b.forming ? " 盘中" : "")),
      span("", `开 ${fmt(b.open)}`),
      span("", `高 ${fmt(b.high)}`),
      span("", `低 ${fmt(b.low)}`),
      span(dir, `收 ${fmt(b.close)} ${fmtPct(chg)}`),
      span("", `量 ${fmtVol(b.volume)}`),
      ...(state.markersAt.get(b.ts) || []).map((m) =>
        span(m.side === "BUY" ? "buy" : "sell", `${sideWord(m)} ${fmt(m.price)}`)),
    );
  }

  // --- the signal list below the chart, newest first ---------------------------------------------
  function signalList() {
    const items = data.markers.slice().reverse();
    $("signals-count").textContent = String(items.length);
    $("signals").replaceChildren(...items.map((m) => {
      const li = document.createElement("li");
      Object.assign(li.dataset, { ts: String(m.ts), side: m.side, x: "", y: "" });
      li.append(
        span("muted", when(m.ts)),
        span(m.side === "BUY" ? "buy" : "sell", sideWord(m)),
        span("", fmt(m.price)),
        span("muted", `置信 ${m.confidence.toFixed(2)}`),
        span("reason", m.reason),
      );
      li.addEventListener("click", () => focusBar(m.ts));
      return li;
    }));
    $("signals-panel").hidden = !data.strategy;
  }
  function focusBar(ts) {
    const i = state.bars.findIndex((b) => b.ts === ts);
    if (i < 0 || !state.chart) return;
    const ts_ = state.chart.timeScale();
    const range = ts_.getVisibleLogicalRange();
    const half = range ? (range.to - range.from) / 2 : 30;
    ts_.setVisibleLogicalRange({ from: i - half, to: i + half });
    showLegend(state.bars[i]);
    window.scrollTo({ top: 0, behavior: "smooth" });
  }

  // where each marker's bar is on screen (for a test, and kept current while the user pans)
  function placeMarkers() {
    if (!state.chart) return;
    const scale = state.chart.timeScale();
    let placed = 0;
    for (const li of $("signals").children) {
      const ts = Number(li.dataset.ts);
      const bar = state.byTime.get(ts);
      const x = bar ? scale.timeToCoordinate(timeOf(ts)) : null;
      const y = bar ? state.candles.priceToCoordinate(li.dataset.side === "BUY" ? bar.low : bar.high) : null;
      const shown = x != null && y != null && x >= 0 && x <= chartEl.clientWidth;
      li.dataset.x = shown ? String(Math.round(x)) : "";
      li.dataset.y = shown ? String(Math.round(y)) : "";
      if (shown) placed++;
    }
    chartEl.dataset.placed = String(placed);
  }

  // --- the chart ---------------------------------------------------------------------------------
  function draw() {
    const LWC = window.LightweightCharts;
    state.bars = data.bars.map(([ts, open, high, low, close, volume], i) => ({
      ts, open, high, low, close, volume, forming: data.forming && i === data.bars.length - 1,
    }));
    state.byTime = new Map(state.bars.map((b) => [b.ts, b]));
    for (const m of data.markers) state.markersAt.set(m.ts, [...(state.markersAt.get(m.ts) || []), m]);
    const buys = data.markers.filter((m) => m.side === "BUY").length;
    Object.assign(chartEl.dataset, {
      theme: data.theme, bars: String(state.bars.length), markers: String(data.markers.length),
      buy: String(buys), sell: String(data.markers.length - buys),
    });
    if (!LWC) {
      say("图表库未加载 the chart library did not load (/static/vendor/lightweight-charts.js)");
      return;
    }
    if (!state.bars.length) {
      say("暂无K线 no bars stored for this period yet");
      chartEl.dataset.ready = "1";
      return;
    }
    const minMove = Math.pow(10, -data.decimals);
    const chart = LWC.createChart(chartEl, {
      autoSize: true,
      layout: {
        background: { type: "solid", color: pal.bg }, textColor: pal.text, fontSize: 11,
        fontFamily: getComputedStyle(document.body).fontFamily,
      },
      grid: { vertLines: { color: pal.grid }, horzLines: { color: pal.grid } },
      rightPriceScale: { borderColor: pal.line, scaleMargins: { top: 0.16, bottom: 0.26 } },
      timeScale: { borderColor: pal.line, timeVisible: intraday, secondsVisible: false, rightOffset: 2 },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      // a finger pans sideways and pinches to zoom; an up/down swipe still scrolls the page
      handleScroll: { mouseWheel: true, pressedMouseMove: true, horzTouchDrag: true, vertTouchDrag: false },
      handleScale: { mouseWheel: true, pinch: true, axisPressedMouseMove: true },
      localization: { locale: "zh-CN", priceFormatter: (p) => p.toFixed(data.decimals) },
    });
    const candles = chart.addCandlestickSeries({
      upColor: pal.up, downColor: pal.down, borderUpColor: pal.up, borderDownColor: pal.down,
      wickUpColor: pal.up, wickDownColor: pal.down,
      priceFormat: { type: "price", precision: data.decimals, minMove },
    });
    const FORMING = { color: pal.forming, borderColor: pal.forming, wickColor: pal.forming };
    candles.setData(state.bars.map((b) => ({
      time: timeOf(b.ts), open: b.open, high: b.high, low: b.low, close: b.close, ...(b.forming ? FORMING : {}),
    })));
    const volume = chart.addHistogramSeries({
      priceFormat: { type: "volume" }, priceScaleId: "vol", lastValueVisible: false, priceLineVisible: false,
    });
    chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    volume.setData(state.bars.map((b) => ({
      time: timeOf(b.ts), value: b.volume, color: b.close >= b.open ? pal.upVol : pal.downVol,
    })));
    candles.setMarkers(data.markers.map((m) => ({
      time: timeOf(m.ts),
      position: m.side === "BUY" ? "belowBar" : "aboveBar",
      color: m.side === "BUY" ? pal.buy : pal.sell,
      shape: m.side === "BUY" ? "arrowUp" : "arrowDown",
      text: sideWord(m),
    })));
    state.chart = chart;
    state.candles = candles;

    const pick = (p) => showLegend(p && p.time != null ? state.byTime.get((p.time - SHANGHAI_S) * 1000) : null);
    chart.subscribeCrosshairMove(pick); // hover, or a finger held on the chart
    chart.subscribeClick(pick); // a tap
    // the latest bars at a readable width (about 7 px a bar), all of them when they fit
    const n = state.bars.length;
    const fit = Math.max(20, Math.floor(chartEl.clientWidth / 7));
    if (n > fit) chart.timeScale().setVisibleLogicalRange({ from: n - fit, to: n + 1 });
    else chart.timeScale().fitContent();
    chart.timeScale().subscribeVisibleLogicalRangeChange(() => requestAnimationFrame(placeMarkers));
    chart.timeScale().subscribeSizeChange(() => requestAnimationFrame(placeMarkers));
    // the chart paints on the next frame; place the markers and say "ready" after it
    requestAnimationFrame(() => requestAnimationFrame(() => {
      placeMarkers();
      chartEl.dataset.ready = "1";
    }));
  }

  header();
  signalList();
  showLegend(null);
  draw();
  if (state.bars.length) showLegend(null);
})();
