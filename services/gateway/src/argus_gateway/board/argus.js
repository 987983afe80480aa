// argus.js — a small browser client for the Argus WebSocket protocol (docs/protocol.md, v1).
// No dependencies, no build step: `import { ArgusClient } from "/board/argus.js"`.
//
//   const client = new ArgusClient({ url: "ws://localhost:8765/ws", token: "…" });
//   client.on("quote", (ev) => console.log(ev.symbol, ev.quote.price));
//   client.on("state", (s) => console.log(s.state, s.reason));
//   client.connect();
//   await client.subscribe({ symbols: ["000001.SZ"], data_types: ["quote", "tick"], history: "day" });
//
// What it does for you, as the Python SDK does:
// - reconnects forever with exponential backoff and full jitter; honours STATUS draining
//   (reconnect_after_ms) and close 1012; stops on UNAUTHORIZED (set a new token, call connect());
// - detects a silent socket: no frame for 2.5 heartbeat intervals + 1 s closes and reconnects;
// - resubscribes everything on reconnect, resuming each stream after its last seq;
// - drops duplicates by seq, follows GAP reason=reset to lower seqs, and reports a trade hole
//   (or a bar whose first_seq lies past the next seq) that the server did not announce as a
//   "gap" event with reason "unannounced". The application sees each event once, every loss
//   as a "gap".
//
// Events (client.on(kind, fn)): "quote" "tick" "kline" "trade" (DATA by type), "data" (all four),
// "gap", "replayed", "status", "error", "welcome", "state" ({state, reason, retryIn, url}:
// state is "connecting", "open", "reconnecting" or "closed").

const CLOSE_POLICY = 1008;
const CLOSE_RESTART = 1012;

/** The stream key of a DATA event or a GAP: `type:symbol` or `kline:symbol:period`. */
export function streamKey(type, symbol, period) {
  return type === "kline" ? `kline:${symbol}:${period}` : `${type}:${symbol}`;
}

function keyOf(data) {
  return streamKey(data.type, data.symbol, data.type === "kline" ? data.kline.period : data.period);
}

/** Exponential backoff with full jitter: attempt n waits uniform(0, min(max, initial·2ⁿ)) ms. */
export class Backoff {
  constructor({ initial = 500, max = 30000, floor = 50, random = Math.random } = {}) {
    Object.assign(this, { initial, max, floor, random });
    this.attempt = 0;
  }
  next() {
    const cap = Math.min(this.max, this.initial * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.max(this.floor, this.random() * cap);
  }
  afterHint(ms) {
    this.attempt += 1;
    return ms + this.random() * ms;
  }
  reset() {
    this.attempt = 0;
  }
}

export class ArgusClient {
  /**
   * @param {object} o
   * @param {string} o.url          ws:// or wss:// URL of a gateway (default: this page's host, /ws)
   * @param {string} [o.token]      API key or JWT, sent in an AUTH message first
   * @param {number} [o.conflateMs] the gateway's conflate_ms delivery option (quotes)
   * @param {Backoff} [o.backoff]
   * @param {number} [o.stableAfterMs] a session this long resets the backoff (default 10 s)
   */
  constructor({ url, token = "", conflateMs = 0, backoff = new Backoff(), stableAfterMs = 10000 } = {}) {
    this.url = url || defaultUrl();
    this.token = token;
    this.conflateMs = conflateMs;
    this.backoff = backoff;
    this.stableAfterMs = stableAfterMs;
    this.state = "closed";
    this.welcome = null;
    this.connections = 0;
    this.last = new Map(); // stream key -> last seq delivered
    this.wanted = new Map(); // stream key -> {history, snapshot}
    this.handlers = new Map();
    this.ws = null;
    this.ids = 0;
    this.replies = new Map(); // request id -> {resolve, reject}
    this.stopped = true;
    this.timer = null;
    this.liveness = null;
  }

  on(kind, fn) {
    if (!this.handlers.has(kind)) this.handlers.set(kind, []);
    this.handlers.get(kind).push(fn);
    return this;
  }

  emit(kind, value) {
    for (const fn of this.handlers.get(kind) || []) {
      try {
        fn(value);
      } catch (e) {
        console.error("argus handler failed", kind, e);
      }
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit("state", { state, url: this.url, ...extra });
  }

  /** Start (or restart after a stop) connecting; returns at once. */
  connect() {
    this.stopped = false;
    clearTimeout(this.timer);
    if (!this.ws) this.open();
  }

  /** Stop for good (until connect()); the subscriptions are kept. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.liveness);
    const ws = this.ws;
    this.ws = null; // so a connect() right after opens a new socket at once
    this.welcome = null;
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
    for (const { reject } of this.replies.values()) reject(new Error("closed"));
    this.replies.clear();
    this.setState("closed", { reason: "closed by the page" });
  }

  /** Subscribe and keep the streams across reconnects; resolves with SUBSCRIBED once sent. */
  subscribe({ symbols, data_types = ["quote"], periods = ["1m"], history = 0, snapshot = true }) {
    const keys = [];
    for (const s of symbols)
      for (const t of data_types)
        for (const p of t === "kline" ? periods : [""]) keys.push(streamKey(t, s, p));
    for (const k of keys) if (!this.wanted.has(k)) this.wanted.set(k, { history, snapshot });
    const data = { symbols, data_types, periods, snapshot };
    if (history) data.history = history;
    const resume = this.resumeOf(keys);
    if (resume) data.resume = resume;
    return this.isOpen() ? this.request("SUBSCRIBE", data) : Promise.resolve(null);
  }

  /** Stop streams (a missing field means all of it) and forget their seqs. */
  unsubscribe({ symbols, data_types, periods } = {}) {
    for (const key of [...this.wanted.keys()]) {
      const [t, s, p] = key.split(":");
      if (symbols && !symbols.includes(s)) continue;
      if (data_types && !data_types.includes(t)) continue;
      if (periods && p && !periods.includes(p)) continue;
      this.wanted.delete(key);
      this.last.delete(key);
    }
    const data = {};
    if (symbols) data.symbols = symbols;
    if (data_types) data.data_types = data_types;
    if (periods) data.periods = periods;
    return this.isOpen() ? this.request("UNSUBSCRIBE", data) : Promise.resolve(null);
  }

  // ------------------------------------------------------------------ internals
  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.welcome !== null;
  }

  request(type, data) {
    const id = `b${++this.ids}`;
    return new Promise((resolve, reject) => {
      this.replies.set(id, { resolve, reject });
      this.send(type, data, id);
    });
  }

  send(type, data, id) {
    const msg = { type };
    if (data !== undefined) msg.data = data;
    if (id !== undefined) msg.id = id;
    this.ws.send(JSON.stringify(msg));
  }

  resumeOf(keys) {
    const out = {};
    let any = false;
    for (const k of keys) {
      const seq = this.last.get(k);
      if (seq > 0) {
        out[k] = seq;
        any = true;
      }
    }
    return any ? out : null;
  }

  open() {
    const url = new URL(this.url);
    if (this.conflateMs) url.searchParams.set("conflate_ms", String(this.conflateMs));
    this.setState(this.connections ? "reconnecting" : "connecting", { attempt: this.backoff.attempt });
    const ws = new WebSocket(url.toString());
    this.ws = ws;
    this.welcome = null;
    this.leaveAfter = null;
    this.unauthorized = null;
    this.openedAt = Date.now();
    ws.onopen = () => {
      if (this.token) this.send("AUTH", { token: this.token }); // the first message, before any SUBSCRIBE
      this.watch(10000);
    };
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = (e) => this.closed(ws, e.code, e.reason);
  }

  watch(ms) {
    clearTimeout(this.liveness);
    this.liveness = setTimeout(() => {
      this.silent = true;
      if (this.ws) this.ws.close(4000, "silent");
    }, ms);
  }

  receive(text) {
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      console.warn("argus: undecodable frame");
      return;
    }
    if (this.welcome) this.watch((2.5 * this.welcome.heartbeat_interval + 1) * 1000);
    for (const env of Array.isArray(parsed) ? parsed : [parsed]) this.handle(env);
  }

  handle({ type, data, id }) {
    switch (type) {
      case "WELCOME":
        return this.welcomed(data);
      case "DATA":
        return this.admit(data);
      case "GAP":
        return this.gap(data);
      case "HEARTBEAT":
        return;
      case "STATUS":
        if (data.source === "gateway" && data.state === "draining") {
          this.leaveAfter = data.reconnect_after_ms || 1000;
          this.emit("status", data);
          this.ws.close(1000, "draining"); // leave now, come back after the hint (browsers send only 1000 or 3000-4999)
          return;
        }
        return this.emit("status", data);
      case "REPLAYED":
        return this.emit("replayed", { ...data, id });
      case "ERROR": {
        if (data.code === "UNAUTHORIZED") this.unauthorized = data.message;
        const waiting = id !== undefined && this.replies.get(id);
        if (waiting && !["INVALID_SYMBOL", "UNSUPPORTED_DATA_TYPE", "FORBIDDEN", "TOO_MANY_SUBSCRIPTIONS"].includes(data.code)) {
          this.replies.delete(id);
          waiting.reject(new Error(`${data.code}: ${data.message}`));
        }
        return this.emit("error", data);
      }
      default: {
        const waiting = id !== undefined && this.replies.get(id);
        if (waiting) {
          this.replies.delete(id);
          waiting.resolve(data);
          if (type === "SUBSCRIBED") this.forgetRejected(data.rejected || []);
        }
      }
    }
  }

  welcomed(welcome) {
    this.welcome = welcome;
    this.connections += 1;
    this.watch((2.5 * welcome.heartbeat_interval + 1) * 1000);
    if (welcome.auth_required && !this.token) {
      this.unauthorized = "this gateway needs a token";
      this.ws.close(1000);
      return;
    }
    this.setState("open", { session: welcome.session_id });
    this.emit("welcome", welcome);
    // one SUBSCRIBE per (type, period, history, snapshot), resuming what has a seq
    const groups = new Map();
    for (const [key, want] of this.wanted) {
      const [t, s, p] = key.split(":");
      const g = `${t}|${p || ""}|${want.history}|${want.snapshot}`;
      if (!groups.has(g)) groups.set(g, { t, p, want, symbols: [], keys: [] });
      groups.get(g).symbols.push(s);
      groups.get(g).keys.push(key);
    }
    for (const { t, p, want, symbols, keys } of groups.values()) {
      const data = { symbols, data_types: [t], snapshot: want.snapshot };
      if (p) data.periods = [p];
      if (want.history) data.history = want.history;
      const resume = this.resumeOf(keys);
      if (resume) data.resume = resume;
      this.request("SUBSCRIBE", data).catch((e) => console.warn("argus: resubscribe refused", e));
    }
  }

  admit(ev) {
    const key = keyOf(ev);
    const last = this.last.get(key) || 0;
    if (last && ev.seq <= last) return; // a duplicate
    if (last && ev.type === "trade" && ev.seq > last + 1) this.lost(ev, last + 1, ev.seq - 1);
    else if (last && (ev.type === "kline" || ev.type === "tick") && ev.first_seq > last + 1)
      this.lost(ev, last + 1, ev.first_seq - 1);
    this.last.set(key, ev.seq);
    this.emit(ev.type, ev);
    this.emit("data", ev);
  }

  lost(ev, from, to) {
    const gap = { symbol: ev.symbol, type: ev.type, from_seq: from, to_seq: to, reason: "unannounced" };
    if (ev.type === "kline") gap.period = ev.kline.period;
    this.emit("gap", gap);
  }

  gap(g) {
    const key = keyOf(g);
    const last = this.last.get(key) || 0;
    if (g.reason === "reset") {
      this.last.set(key, g.to_seq); // a new numbering: lower seqs follow
      return this.emit("gap", g);
    }
    if (g.to_seq <= last) return; // had those already
    this.last.set(key, g.to_seq);
    this.emit("gap", { ...g, from_seq: Math.max(g.from_seq, last + 1) });
  }

  forgetRejected(rejected) {
    for (const r of rejected)
      for (const key of [...this.wanted.keys()]) {
        const [t, s, p] = key.split(":");
        if ((!r.symbol || r.symbol === s) && (!r.data_type || r.data_type === t) && (!r.period || r.period === p))
          this.wanted.delete(key);
      }
  }

  closed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this.liveness);
    for (const { reject } of this.replies.values()) reject(new Error("connection lost"));
    this.replies.clear();
    const welcomed = this.welcome !== null;
    this.welcome = null;
    if (welcomed && Date.now() - this.openedAt >= this.stableAfterMs) this.backoff.reset();
    if (this.stopped) return;
    if (this.unauthorized) {
      this.stopped = true;
      this.setState("closed", { reason: `unauthorized: ${this.unauthorized}`, code });
      return;
    }
    let why = this.silent ? "silent" : reason || (welcomed ? "closed" : "refused or unreachable");
    let delay;
    if (this.leaveAfter !== null) {
      why = "draining";
      delay = this.backoff.afterHint(this.leaveAfter);
    } else if (code === CLOSE_RESTART) delay = this.backoff.afterHint(1000);
    else delay = this.backoff.next();
    if (code === CLOSE_POLICY && !welcomed) why = "refused (policy)";
    this.silent = false;
    this.setState("reconnecting", { reason: why, code, retryIn: delay });
    this.timer = setTimeout(() => this.open(), delay);
  }
}

function defaultUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}/ws`;
}
