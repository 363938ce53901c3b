// The tickfan demo's browser app: watchlist, chart, order ticket, open orders, positions, live order updates.
// Everything the server or a user sends is written with textContent (never innerHTML). The bearer token lives in
// this module's memory only (no storage): a reload signs out. The streams use the SDK (@tickfan/client): one
// anonymous connection for market data, one with the user's token (a single-use ticket per connect) for orders.
import { createChart, CandlestickSeries, type CandlestickData, type UTCTimestamp } from "lightweight-charts";
import {
  ApiError,
  RestClient,
  TickfanClient,
  type Bar,
  type ConnectionState,
  type Order,
  type OrderUpdate,
  type Quote,
  type Subscription,
} from "@tickfan/client";

const WATCHLIST = ["AAPL", "TSLA", "NVDA"];
const OPEN: ReadonlySet<string> = new Set(["accepted", "routed", "partially_filled"]);
const api = location.origin;

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
}

function el(tag: string, text = "", className = ""): HTMLElement {
  const e = document.createElement(tag);
  e.textContent = text;
  if (className) e.className = className;
  return e;
}

/** 4-implied-decimal integer price as dollars ("189.25"); "—" for none. */
function px(v: bigint): string {
  if (v === 0n) return "—";
  const neg = v < 0n;
  const a = neg ? -v : v;
  return `${neg ? "-" : ""}${a / 10_000n}.${(a % 10_000n).toString().padStart(4, "0").slice(0, 2)}`;
}

function money(s: string | null): string {
  if (s === null) return "—";
  const n = Number(s);
  return Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : s;
}

/** An idempotency key; crypto.randomUUID needs a secure context, getRandomValues does not. */
function newKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function showState(node: HTMLElement, label: string, state: ConnectionState | "signed out"): void {
  node.dataset.state = state;
  node.textContent = `${label}: ${state}`;
}

// ---- where the stream is: GET /v1/config (port and path on this page's host) ----

interface NodeConfig {
  stream_port: number;
  stream_path: string;
  stream_scheme: string;
}

async function streamUrl(): Promise<string> {
  const r = await fetch(`${api}/v1/config`);
  if (!r.ok) throw new Error(`GET /v1/config: ${r.status}`);
  const c = (await r.json()) as NodeConfig;
  return `${c.stream_scheme}://${location.hostname}:${c.stream_port}${c.stream_path}`;
}

// ---- watchlist ----

interface Row {
  tr: HTMLTableRowElement;
  bid: HTMLElement;
  ask: HTMLElement;
  last: HTMLElement;
  badges: HTMLElement;
  lastPrice: bigint;
}

const rows = new Map<string, Row>();
let selected = WATCHLIST[0]!;

function addRow(symbol: string): void {
  if (rows.has(symbol)) return;
  const tr = document.createElement("tr");
  tr.dataset.symbol = symbol;
  const name = el("td", symbol);
  const bid = el("td", "—", "bid");
  const ask = el("td", "—", "ask");
  const last = el("td", "—", "last");
  const badges = el("td", "", "badges");
  tr.append(name, bid, ask, last, badges);
  tr.addEventListener("click", () => select(symbol));
  $("watchlist").querySelector("tbody")!.append(tr);
  rows.set(symbol, { tr, bid, ask, last, badges, lastPrice: 0n });
}

function onQuote(q: Quote): void {
  const row = rows.get(q.symbol);
  if (!row) return;
  row.bid.textContent = `${q.bidSize} × ${px(q.bidPrice)}`;
  row.ask.textContent = `${px(q.askPrice)} × ${q.askSize}`;
  row.last.textContent = px(q.lastPrice);
  row.last.className = `last ${q.lastPrice > row.lastPrice ? "tick-up" : q.lastPrice < row.lastPrice ? "tick-down" : ""}`;
  row.lastPrice = q.lastPrice;
  row.tr.dataset.seq = String(q.seq);
  const halted = q.halted || (q.tradingState !== "" && q.tradingState !== "T");
  row.badges.replaceChildren();
  if (halted) row.badges.append(el("span", q.tradingState === "P" ? "paused" : "halted", "badge halted"));
  if (q.stale) row.badges.append(el("span", "stale", "badge stale"));
}

// ---- chart: history from GET /v1/bars, then the live bars channel ----

const chart = createChart($("chart"), {
  autoSize: true,
  // the built-in logo injects a <style> element, which the CSP (no 'unsafe-inline') blocks: the attribution the
  // library's licence asks for is a link under the chart instead (index.html)
  layout: { background: { color: "#181e27" }, textColor: "#d8dee9", attributionLogo: false },
  grid: { vertLines: { color: "#222a35" }, horzLines: { color: "#222a35" } },
  timeScale: { timeVisible: true, secondsVisible: true },
});
const candles = chart.addSeries(CandlestickSeries, {
  upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350",
});
let barSub: Subscription | null = null;
let barCount = 0;
let lastBarTime = 0;
let chartGeneration = 0;

interface HistoryBar {
  start_time_ns: number;
  open: string | null;
  high: string | null;
  low: string | null;
  close: string | null;
}

function setBarCount(n: number): void {
  barCount = n;
  const chartEl = $("chart");
  chartEl.dataset.bars = String(n);
  $("bar-count").textContent = `${n} bars`;
}

function drawLive(bar: Bar): void {
  if (bar.symbol !== selected || bar.volume === 0n) return;
  const time = Number(bar.startTimeNs / 1_000_000_000n);
  if (time < lastBarTime) return; // a revision of an older bar: the chart only appends or updates the newest
  const point: CandlestickData = {
    time: time as UTCTimestamp,
    open: Number(bar.open) / 10_000, high: Number(bar.high) / 10_000,
    low: Number(bar.low) / 10_000, close: Number(bar.close) / 10_000,
  };
  candles.update(point);
  if (time > lastBarTime) setBarCount(barCount + 1);
  lastBarTime = time;
}

async function loadChart(market: TickfanClient): Promise<void> {
  const generation = ++chartGeneration;
  const interval = ($("interval") as HTMLSelectElement).value as "1s" | "1m";
  $("chart-symbol").textContent = selected;
  barSub?.unsubscribe();
  barSub = null;
  candles.setData([]);
  lastBarTime = 0;
  setBarCount(0);
  const r = await fetch(`${api}/v1/bars?symbol=${encodeURIComponent(selected)}&interval=${interval}&limit=600`);
  if (generation !== chartGeneration) return;
  const history: CandlestickData[] = [];
  if (r.ok) {
    const body = (await r.json()) as { bars: HistoryBar[] };
    for (const b of body.bars) {
      if (b.open === null || b.high === null || b.low === null || b.close === null) continue;
      history.push({ time: Math.floor(b.start_time_ns / 1e9) as UTCTimestamp,
                     open: Number(b.open), high: Number(b.high), low: Number(b.low), close: Number(b.close) });
    }
  }
  candles.setData(history);
  lastBarTime = history.length ? (history[history.length - 1]!.time as number) : 0;
  setBarCount(history.length);
  barSub = market.subscribe(interval === "1s" ? "bars:1s" : "bars:1m", [selected], drawLive);
}

// ---- sign-in, ticket, orders, positions ----

let token: string | null = null; // in memory only
let rest: RestClient | null = null;
let ordersStream: TickfanClient | null = null;
let refreshTimer: number | undefined;

async function signIn(user: string, url: string): Promise<void> {
  ordersStream?.close();
  ordersStream = null;
  token = null;
  rest = null;
  window.clearInterval(refreshTimer);
  $("user-error").textContent = "";
  showState($("orders-conn"), "orders", "signed out");
  ($("t-submit") as HTMLButtonElement).disabled = true;
  if (!user) return;
  const r = await fetch(`${api}/v1/dev/token`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ user }),
  });
  const body = (await r.json().catch(() => ({}))) as { token?: string; error?: { code: string; message: string } };
  if (!r.ok || !body.token) {
    $("user-error").textContent = body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${r.status}`;
    return;
  }
  token = body.token;
  document.body.dataset.user = user;
  const provider = () => token ?? "";
  rest = new RestClient({ baseUrl: api, token: provider });
  ordersStream = new TickfanClient({ url, token: provider, apiUrl: api });
  ordersStream.on("state", (s) => showState($("orders-conn"), "orders", s));
  ordersStream.on("gap", () => void refresh()); // updates missed while reconnecting: re-read the lists
  ordersStream.subscribe("orders", [], onOrderUpdate);
  ordersStream.connect();
  ($("t-submit") as HTMLButtonElement).disabled = false;
  refreshTimer = window.setInterval(() => void refresh(), 2000);
  await refresh();
}

function onOrderUpdate(u: OrderUpdate): void {
  const fill = u.lastFillQty > 0n ? ` fill ${u.lastFillQty} @ ${px(u.lastFillPrice)}` : "";
  const reason = u.reason ? ` (${u.reason})` : "";
  const li = el("li", `${u.symbol} ${u.side} ${u.qty} ${u.type}: ${u.status} ${u.filledQty}/${u.qty}${fill}${reason}`);
  li.dataset.orderId = u.orderId;
  li.dataset.status = u.status;
  $("updates").prepend(li);
  while ($("updates").childElementCount > 50) $("updates").lastElementChild!.remove();
  void refresh();
}

let refreshing = false;
async function refresh(): Promise<void> {
  if (!rest || refreshing) return;
  refreshing = true;
  try {
    const [orders, portfolio] = await Promise.all([rest.listOrders({ limit: 100 }), rest.portfolio()]);
    renderOrders(orders.filter((o) => OPEN.has(o.status)));
    $("account").textContent = `${portfolio.user_id} · cash ${money(portfolio.cash)} · held ${money(portfolio.cash_held)}`
      + ` · equity ${money(portfolio.equity)}`;
    const body = $("positions").querySelector("tbody")!;
    body.replaceChildren(...portfolio.holdings.filter((h) => h.qty !== 0).map((h) => {
      const tr = document.createElement("tr");
      tr.dataset.symbol = h.symbol;
      const pnl = h.unrealized_pnl === null ? 0 : Number(h.unrealized_pnl);
      tr.append(el("td", h.symbol), el("td", String(h.qty)), el("td", money(h.price)), el("td", money(h.market_value)),
                el("td", money(h.unrealized_pnl), pnl > 0 ? "pos" : pnl < 0 ? "neg" : ""));
      return tr;
    }));
  } catch (e) {
    $("account").textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
  } finally {
    refreshing = false;
  }
}

function renderOrders(orders: Order[]): void {
  const body = $("open-orders").querySelector("tbody")!;
  body.replaceChildren(...orders.map((o) => {
    const tr = document.createElement("tr");
    tr.dataset.orderId = o.order_id;
    const cancel = el("button", o.cancel_requested ? "cancelling" : "Cancel", "cancel") as HTMLButtonElement;
    cancel.disabled = o.cancel_requested;
    cancel.addEventListener("click", () => void cancelOrder(o.order_id, cancel));
    const action = el("td");
    action.append(cancel);
    tr.append(el("td", o.symbol), el("td", o.side), el("td", `${o.type} ${o.time_in_force}`), el("td", String(o.qty)),
              el("td", String(o.filled_qty)), el("td", o.limit_price ?? "—"), el("td", o.status), action);
    return tr;
  }));
}

function result(text: string, ok: boolean): void {
  const p = $("ticket-result");
  p.textContent = text;
  p.className = `result ${ok ? "ok" : "error"}`;
}

async function cancelOrder(orderId: string, button: HTMLButtonElement): Promise<void> {
  if (!rest) return;
  button.disabled = true;
  try {
    const { cancelled } = await rest.cancelOrder(orderId);
    result(cancelled ? "cancelled" : "cancel requested", true);
  } catch (e) {
    result(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e), false);
    button.disabled = false;
  }
  await refresh();
}

async function placeOrder(): Promise<void> {
  if (!rest) return;
  const type = ($("t-type") as HTMLSelectElement).value as "market" | "limit";
  const qty = Number(($("t-qty") as HTMLInputElement).value);
  const limit = ($("t-limit") as HTMLInputElement).value.trim();
  try {
    const { order } = await rest.placeOrder({
      symbol: ($("t-symbol") as HTMLInputElement).value.trim().toUpperCase(),
      side: ($("t-side") as HTMLSelectElement).value as "buy" | "sell",
      qty,
      type,
      ...(type === "limit" ? { limitPrice: limit } : {}),
      timeInForce: ($("t-tif") as HTMLSelectElement).value as "day" | "ioc",
      idempotencyKey: newKey(),
    });
    result(`${order.side} ${order.qty} ${order.symbol}: ${order.status} (${order.order_id.slice(0, 8)})`, true);
  } catch (e) {
    result(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e), false);
  }
  await refresh();
}

// ---- wiring ----

async function main(): Promise<void> {
  const url = await streamUrl();
  const market = new TickfanClient({ url });
  market.on("state", (s) => showState($("conn"), "stream", s));
  for (const s of WATCHLIST) addRow(s);
  market.subscribe("quotes", WATCHLIST, onQuote);
  market.connect();

  select = (symbol: string) => {
    selected = symbol;
    for (const [s, row] of rows) row.tr.classList.toggle("selected", s === symbol);
    ($("t-symbol") as HTMLInputElement).value = symbol;
    void loadChart(market);
  };
  select(selected);
  $("interval").addEventListener("change", () => void loadChart(market));
  $("add-symbol").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("new-symbol") as HTMLInputElement;
    const symbol = input.value.trim().toUpperCase();
    input.value = "";
    if (!/^[A-Z][A-Z0-9.]{0,7}$/.test(symbol) || rows.has(symbol)) return;
    addRow(symbol);
    market.subscribe("quotes", [symbol], onQuote);
  });
  $("user").addEventListener("change", () => void signIn(($("user") as HTMLSelectElement).value, url));
  $("t-type").addEventListener("change", () => {
    ($("t-limit") as HTMLInputElement).disabled = ($("t-type") as HTMLSelectElement).value !== "limit";
  });
  $("ticket").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void placeOrder();
  });
  document.body.dataset.ready = "true";
}

let select: (symbol: string) => void = () => undefined;

main().catch((e: unknown) => {
  const conn = $("conn");
  conn.dataset.state = "closed";
  conn.textContent = `stream: ${String(e)}`;
});
