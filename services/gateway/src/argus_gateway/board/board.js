// The quote board: a watch list of quotes, and the 分时 line and 1m K-line of the selected symbol
// (from `history`, then live). Everything it knows arrives through argus.js.
import { ArgusClient } from "/board/argus.js";

const DEFAULT_SYMBOLS = ["000001.SZ", "600000.SH", "000002.SZ", "600519.SH", "300750.SZ", "00700.HK", "AAPL.US"];
const KLINE_HISTORY = 240;
const params = new URLSearchParams(location.search);
const $ = (sel) => document.querySelector(sel);

const client = new ArgusClient({
  url: params.get("ws") || undefined,
  token: sessionStorage.getItem("argus.token") || "",
  conflateMs: 200, // a screen needs no more than 5 quotes a second per symbol
});

const rows = new Map(); // symbol -> {tr, cells, quote}
const sources = new Map(); // source -> state
let symbols = [];
let selected = null;
let gaps = 0;
const tick = newSeries("tick");
const kline = newSeries("kline");

function newSeries(type) {
  return { type, points: new Map(), history: 0, live: 0, recovered: null };
}

// ------------------------------------------------------------------ watch list
function parseSymbols(text) {
  return [...new Set(text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean))];
}

function addSymbols(list) {
  const fresh = list.filter((s) => !rows.has(s));
  if (!fresh.length) return;
  for (const s of fresh) addRow(s);
  symbols.push(...fresh);
  syncUrl();
  client.subscribe({ symbols: fresh, data_types: ["quote"] }).then(rejectedOut).catch(showError);
  if (!selected) select(fresh[0]);
}

function rejectedOut(reply) {
  if (!reply) return;
  for (const r of reply.rejected || []) {
    if (r.symbol && rows.has(r.symbol)) {
      removeSymbol(r.symbol, false);
      notice(`${r.symbol} rejected: ${r.message}`);
    }
  }
}

function removeSymbol(sym, unsubscribe = true) {
  const row = rows.get(sym);
  if (!row) return;
  row.tr.remove();
  rows.delete(sym);
  symbols = symbols.filter((s) => s !== sym);
  syncUrl();
  if (unsubscribe) client.unsubscribe({ symbols: [sym] }).catch(() => {});
  if (selected === sym) {
    selected = null;
    if (symbols.length) select(symbols[0]);
    else clearCharts();
  }
}

function addRow(sym) {
  const tr = document.createElement("tr");
  tr.dataset.symbol = sym;
  tr.dataset.updates = "0";
  const names = ["symbol", "last", "chg", "pct", "bid", "ask", "volume", "x"];
  const cells = {};
  for (const n of names) {
    const td = document.createElement("td");
    td.className = n;
    tr.append(td);
    cells[n] = td;
  }
  cells.symbol.textContent = sym;
  cells.last.textContent = "…";
  const x = document.createElement("button");
  x.className = "remove";
  x.title = `remove ${sym}`;
  x.textContent = "×";
  x.addEventListener("click", (e) => {
    e.stopPropagation();
    removeSymbol(sym);
  });
  cells.x.append(x);
  tr.addEventListener("click", () => select(sym));
  $("#quotes tbody").append(tr);
  rows.set(sym, { tr, cells, quote: null });
}

function syncUrl() {
  const url = new URL(location.href);
  url.searchParams.set("symbols", symbols.join(","));
  history.replaceState(null, "", url);
}

function onQuote(ev) {
  const row = rows.get(ev.symbol);
  if (!row) return;
  const q = ev.quote;
  const prev = row.quote;
  row.quote = q;
  const c = row.cells;
  const chg = q.price - q.prev_close;
  const dir = chg > 0 ? "up" : chg < 0 ? "down" : "";
  c.last.textContent = fmtPrice(q.price);
  c.chg.textContent = signed(fmtPrice(chg, q.price), chg);
  c.pct.textContent = q.prev_close ? signed((chg / q.prev_close * 100).toFixed(2), chg) + "%" : "—";
  c.bid.textContent = q.bid_prices && q.bid_prices.length ? fmtPrice(q.bid_prices[0]) : "—";
  c.ask.textContent = q.ask_prices && q.ask_prices.length ? fmtPrice(q.ask_prices[0]) : "—";
  c.volume.textContent = fmtVolume(q.volume);
  for (const n of ["last", "chg", "pct"]) c[n].className = `${n} ${dir}`;
  if (prev && prev.price !== q.price) flash(c.last, q.price > prev.price ? "flash-up" : "flash-down");
  if (prev && prev.volume !== q.volume) flash(c.volume, "flash-vol");
  row.tr.dataset.updates = String(Number(row.tr.dataset.updates) + 1);
  row.tr.dataset.seq = String(ev.seq);
  if (ev.symbol === selected) drawSoon();
}

function flash(td, cls) {
  td.classList.remove("flash-up", "flash-down", "flash-vol");
  void td.offsetWidth; // restart the fade
  td.classList.add(cls);
  setTimeout(() => td.classList.remove(cls), 600);
}

// ------------------------------------------------------------------ selection and charts
function select(sym) {
  if (sym === selected) return;
  const old = selected;
  selected = sym;
  for (const [s, r] of rows) r.tr.classList.toggle("selected", s === sym);
  $("#selected").textContent = sym;
  if (old) client.unsubscribe({ symbols: [old], data_types: ["tick", "kline"] }).catch(() => {});
  clearCharts();
  client.subscribe({ symbols: [sym], data_types: ["tick"], history: "day" }).catch(showError);
  client.subscribe({ symbols: [sym], data_types: ["kline"], periods: ["1m"], history: KLINE_HISTORY }).catch(showError);
}

function clearCharts() {
  for (const s of [tick, kline]) {
    s.points.clear();
    s.history = 0;
    s.live = 0;
    s.recovered = null;
  }
  drawSoon();
}

function onBar(series, ev, mark) {
  if (ev.symbol !== selected) return;
  const old = series.points.get(mark);
  if (old && old.seq > ev.seq) return;
  series.points.set(mark, ev);
  if (ev.replay) series.history += 1;
  else series.live += 1;
  drawSoon();
}

let pending = false;
function drawSoon() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    drawTicks();
    drawKlines();
  });
}

function sortedPoints(series) {
  return [...series.points.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
}

function prepare(canvas, series) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.points = String(series.points.size);
  canvas.dataset.history = String(series.history);
  canvas.dataset.live = String(series.live);
  return ctx;
}

function drawTicks() {
  const canvas = $("#tick-chart");
  const ctx = prepare(canvas, tick);
  const pts = sortedPoints(tick).map((e) => e.tick);
  const info = `${pts.length} min${tick.history ? ` · ${tick.history} from history` : ""}${tick.recovered === false ? " (partial)" : ""}`;
  $("#tick-info").textContent = info;
  if (!pts.length) return empty(ctx, canvas, "waiting for 分时…");
  canvas.dataset.lastTime = pts[pts.length - 1].time;
  const W = canvas.width, H = canvas.height, top = 10, priceH = H * 0.68, volTop = H * 0.74, volBottom = H - 16;
  const quote = rows.get(selected)?.quote;
  const base = quote ? quote.prev_close : pts[0].price;
  let dev = 0;
  for (const p of pts) dev = Math.max(dev, Math.abs(p.price - base), Math.abs(p.avg_price - base));
  dev = dev || base * 0.01 || 1;
  const n = Math.max(pts.length, 60);
  const x = (i) => 40 + (i + 0.5) * ((W - 50) / n);
  const y = (v) => top + (1 - (v - (base - dev)) / (2 * dev)) * (priceH - top);
  grid(ctx, W, top, priceH);
  ctx.setLineDash([4, 4]);
  ctx.strokeStyle = "#7d8894";
  line(ctx, [[40, y(base)], [W - 10, y(base)]]);
  ctx.setLineDash([]);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = "#e8e8e8";
  line(ctx, pts.map((p, i) => [x(i), y(p.price)]));
  ctx.strokeStyle = "#e8b84a";
  ctx.lineWidth = 1;
  line(ctx, pts.map((p, i) => [x(i), y(p.avg_price)]));
  const lastPt = pts[pts.length - 1];
  ctx.fillStyle = "#e8e8e8";
  ctx.beginPath();
  ctx.arc(x(pts.length - 1), y(lastPt.price), 2.5, 0, 2 * Math.PI);
  ctx.fill();
  const vmax = Math.max(...pts.map((p) => p.volume), 1);
  const bw = Math.max(1, (W - 50) / n - 1);
  pts.forEach((p, i) => {
    ctx.fillStyle = i && p.price < pts[i - 1].price ? "#27b36a" : "#f0524f";
    const h = (p.volume / vmax) * (volBottom - volTop);
    ctx.fillRect(x(i) - bw / 2, volBottom - h, bw, h);
  });
  labels(ctx, [[base + dev, y(base + dev) + 10], [base, y(base) - 2], [base - dev, y(base - dev) - 2]]);
  ctx.fillStyle = "#7d8894";
  ctx.fillText(shortTime(pts[0].time), 40, H - 2);
  ctx.fillText(shortTime(pts[pts.length - 1].time), x(pts.length - 1) - 20, H - 2);
}

function drawKlines() {
  const canvas = $("#kline-chart");
  const ctx = prepare(canvas, kline);
  const bars = sortedPoints(kline).map((e) => e.kline);
  $("#kline-info").textContent = `${bars.length} bars${kline.history ? ` · ${kline.history} from history` : ""}`;
  if (!bars.length) return empty(ctx, canvas, "waiting for bars…");
  canvas.dataset.lastTime = bars[bars.length - 1].open_time;
  const W = canvas.width, H = canvas.height, top = 10, bottom = H - 16;
  const slot = 8;
  const shown = bars.slice(-Math.floor((W - 50) / slot));
  const hi = Math.max(...shown.map((b) => b.high));
  const lo = Math.min(...shown.map((b) => b.low));
  const span = hi - lo || hi * 0.01 || 1;
  const y = (v) => top + (1 - (v - lo) / span) * (bottom - top);
  grid(ctx, W, top, bottom);
  shown.forEach((b, i) => {
    const cx = 40 + i * slot + slot / 2;
    const color = b.close >= b.open ? "#f0524f" : "#27b36a";
    ctx.strokeStyle = ctx.fillStyle = color;
    line(ctx, [[cx, y(b.high)], [cx, y(b.low)]]);
    const y1 = y(Math.max(b.open, b.close)), y2 = y(Math.min(b.open, b.close));
    ctx.fillRect(cx - slot / 2 + 1, y1, slot - 2, Math.max(1, y2 - y1));
  });
  labels(ctx, [[hi, top + 10], [lo, bottom - 2]]);
  ctx.fillStyle = "#7d8894";
  ctx.fillText(shortTime(shown[0].open_time), 40, H - 2);
  ctx.fillText(shortTime(shown[shown.length - 1].open_time), Math.max(40, 40 + (shown.length - 1) * slot - 30), H - 2);
}

function grid(ctx, W, top, bottom) {
  ctx.strokeStyle = "#2a323c";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const yy = top + ((bottom - top) * i) / 4;
    line(ctx, [[40, yy], [W - 10, yy]]);
  }
}

function line(ctx, pts) {
  if (!pts.length) return;
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const [px, py] of pts.slice(1)) ctx.lineTo(px, py);
  ctx.stroke();
}

function labels(ctx, items) {
  ctx.fillStyle = "#7d8894";
  ctx.font = "11px system-ui, sans-serif";
  for (const [v, yy] of items) ctx.fillText(fmtPrice(v), 2, yy);
}

function empty(ctx, canvas, text) {
  canvas.dataset.lastTime = "";
  ctx.fillStyle = "#7d8894";
  ctx.font = "13px system-ui, sans-serif";
  ctx.fillText(text, 20, canvas.height / 2);
}

// ------------------------------------------------------------------ status line
const states = []; // the last connection states, newest last (shown in the badge one at a time)
function onState(s) {
  states.push({ state: s.state, reason: s.reason || "", at: Date.now() });
  if (states.length > 100) states.shift();
  const badge = $("#conn");
  badge.dataset.state = s.state;
  if (s.state === "open") badge.textContent = `live · ${s.session}`;
  else if (s.state === "reconnecting" && s.retryIn !== undefined)
    badge.textContent = `reconnecting in ${(s.retryIn / 1000).toFixed(1)} s (${s.reason})`;
  else if (s.state === "closed") badge.textContent = `stopped: ${s.reason || "closed"}`;
  else badge.textContent = `${s.state}…`;
  if (s.state === "closed" && String(s.reason).startsWith("unauthorized")) {
    notice("the gateway refused the token: enter one above and press connect");
    $("#token").focus();
  }
  if (s.state === "reconnecting" && s.reason === "refused or unreachable")
    notice("cannot reach the gateway (is it running? is this page's origin in security.allowed_origins?)");
  if (s.state === "open") {
    notice("");
    sources.clear(); // a new session: the gateway states again what is not live
    showSources();
  }
}

function onStatus(st) {
  if (st.symbol) {
    const row = rows.get(st.symbol);
    if (!row) return;
    let mark = row.cells.symbol.querySelector(".halt");
    if (st.state === "live") mark?.remove();
    else {
      if (!mark) {
        mark = document.createElement("span");
        mark.className = "halt";
        row.cells.symbol.append(mark);
      }
      mark.textContent = st.state;
    }
    return;
  }
  if (st.source === "gateway") return; // draining: the connection badge says it
  sources.set(st.source, st.state);
  showSources();
}

function showSources() {
  const box = $("#sources");
  box.textContent = "";
  const bad = [...sources].filter(([, state]) => state !== "live");
  const items = bad.length ? bad : [["", "live"]];
  for (const [name, state] of items) {
    const b = document.createElement("span");
    b.className = "badge src";
    b.dataset.source = name;
    b.dataset.state = state;
    b.textContent = name ? `${name}: ${state}` : sources.size ? `${[...sources.keys()].join(", ")}: live` : "sources: no trouble reported";
    box.append(b);
  }
}

function onGap(g) {
  gaps += 1;
  const el = $("#gaps");
  el.dataset.count = String(gaps);
  const where = g.period ? `kline:${g.symbol}:${g.period}` : `${g.type}:${g.symbol}`;
  el.textContent = `gaps: ${gaps} (last: ${where} ${g.from_seq}–${g.to_seq}, ${g.reason})`;
}

function onReplayed(r) {
  for (const [key, s] of Object.entries(r.streams)) {
    if (selected && key === `tick:${selected}`) tick.recovered = s.recovered;
    if (selected && key === `kline:${selected}:1m`) kline.recovered = s.recovered;
  }
  drawSoon();
}

function notice(text) {
  $("#notice").textContent = text;
}

function showError(e) {
  notice(String(e.message || e));
}

// ------------------------------------------------------------------ formatting
function fmtPrice(v, scale = v) {
  const a = Math.abs(scale);
  return v.toFixed(a !== 0 && a < 1 ? 3 : 2);
}

function signed(text, v) {
  return v > 0 ? `+${text}` : text;
}

function fmtVolume(v) {
  if (v >= 1e8) return `${(v / 1e8).toFixed(2)}亿`;
  if (v >= 1e4) return `${(v / 1e4).toFixed(2)}万`;
  return String(v);
}

function shortTime(iso) {
  const m = /T(\d\d:\d\d)/.exec(iso);
  return m ? m[1] : iso;
}

// ------------------------------------------------------------------ wiring
client.on("state", onState);
client.on("quote", onQuote);
client.on("tick", (ev) => onBar(tick, ev, ev.tick.time));
client.on("kline", (ev) => onBar(kline, ev, ev.kline.open_time));
client.on("status", onStatus);
client.on("gap", onGap);
client.on("replayed", onReplayed);
client.on("error", (e) => {
  if (!["INVALID_SYMBOL", "UNSUPPORTED_DATA_TYPE"].includes(e.code)) notice(`${e.code}: ${e.message}`);
});

$("#add").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("#symbol");
  addSymbols(parseSymbols(input.value));
  input.value = "";
});

$("#auth").addEventListener("submit", (e) => {
  e.preventDefault();
  client.token = $("#token").value.trim();
  sessionStorage.setItem("argus.token", client.token);
  client.close();
  client.connect();
});
$("#token").value = client.token;

addSymbols(params.get("symbols") ? parseSymbols(params.get("symbols")) : DEFAULT_SYMBOLS);
drawSoon();
showSources();
client.connect();

// for people poking at the page from the console, and for its tests
window.argusBoard = { client, rows, tick, kline, states, get selected() { return selected; }, get gaps() { return gaps; } };
