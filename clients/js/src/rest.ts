// A small typed helper for the order API (the node's HTTP port in the demo; `tickfan api` standalone).
// Every refusal of the API is `{"error": {"code", "message"}}` with a 4xx/5xx: it becomes an ApiError carrying
// both, so an app can switch on `code` and show `message`.

/** Returns the current bearer JWT (called before every request, so a provider may refresh it). */
export type TokenProvider = () => string | Promise<string>;

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    /** HTTP status; 0 when no answer came (network error) */
    readonly status: number,
    /** the API's machine-readable code, e.g. "insufficient_funds", "symbol_halted", "outcome_unknown" */
    readonly code: string,
    message: string,
    /** seconds, from Retry-After (rate_limited) */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

export type Side = "buy" | "sell";
export type OrderType = "market" | "limit" | "stop" | "stop_limit" | "trailing_stop";
/** day: until the session's end; gtc: across sessions; ioc/fok: at once (fok whole or nothing); opg/cls: crosses */
export type TimeInForce = "day" | "gtc" | "ioc" | "fok" | "opg" | "cls";
/** pending_trigger: a stop resting un-routed until the books cross it (then accepted, and on as usual) */
export type OrderStatus =
  | "pending_trigger" | "accepted" | "routed" | "partially_filled" | "filled" | "cancelled" | "rejected" | "expired"
  /** the market maker replaced it by `replaced_by` (PATCH); its fills stay with it */
  | "replaced";

/** What `replaceOrder` changes (at least one field): the replacement is a new order, the market maker decides. */
export interface ReplaceOrder {
  /** the order's new total quantity (what it filled counts against it): a whole number or a decimal string */
  qty?: number | string;
  /** exact decimal string, at most 4 decimals */
  limitPrice?: string;
  timeInForce?: "day" | "gtc";
  /** the same key again answers the order as it stands (200); generated when absent */
  idempotencyKey?: string;
}

export interface PlaceOrder {
  symbol: string;
  side: Side;
  /** shares: a whole number, or a decimal string with at most 6 decimals ("0.5"); exclusive with notional */
  qty?: number | string;
  /** dollars, a decimal string ("10"); market orders only, exclusive with qty: a buy spends at most it, a sell
   * sells what it is worth at the bid (never more than the position: insufficient_shares) */
  notional?: string;
  type: OrderType;
  /** exact decimal string, at most 4 decimals ("189.25"); limit and stop_limit orders only */
  limitPrice?: string;
  /** a limit day order that may also trade pre-market and after hours (New York 04:00-09:30, 16:00-20:00) */
  extendedHours?: boolean;
  /** stop and stop_limit: the trigger price (a buy triggers when the ask reaches it, a sell when the bid does) */
  stopPrice?: string;
  /** trailing_stop: the trail in percent of the best price seen ("1.5"); exclusive with trailPrice */
  trailPercent?: string;
  /** trailing_stop: the trail in dollars ("1") */
  trailPrice?: string;
  timeInForce?: TimeInForce;
  /** a retry with the same key returns the first order; generated when absent (keep it to retry safely) */
  idempotencyKey?: string;
}

/** An order as the API shows it (money as exact decimal strings). */
export interface Order {
  order_id: string;
  idempotency_key: string;
  symbol: string;
  side: Side;
  type: OrderType;
  time_in_force: TimeInForce;
  extended_hours: boolean;
  /** shares, an exact decimal string ("0.5", "100") */
  qty: string;
  /** a notional order's dollars (a buy's to spend, a sell's worth at the bid); null for an order by quantity */
  notional: string | null;
  limit_price: string | null;
  status: OrderStatus;
  /** a stop's stop now (a trailing stop's follows its mark); null for other orders */
  stop_price: string | null;
  trail_percent: string | null;
  trail_price: string | null;
  /** a trailing stop's mark: the highest bid (sell) or lowest ask (buy) seen since placement */
  hwm: string | null;
  /** when the stop triggered (ISO 8601) and the ask or bid that crossed it; null until then */
  triggered_at: string | null;
  trigger_price: string | null;
  /** shares filled, an exact decimal string */
  filled_qty: string;
  avg_fill_price: string | null;
  cancel_requested: boolean;
  reason: string | null;
  version: number;
  /** the order this one replaced; null otherwise */
  replaces?: string | null;
  /** its replacement: asked for (status unchanged until the market maker answers) or done (status replaced) */
  replaced_by?: string | null;
  created_at: string;
  updated_at: string;
}

export interface MarketClock {
  timestamp: string;
  is_open: boolean;
  next_open: string;
  next_close: string;
  phase: "closed" | "pre_market" | "open" | "after_hours";
}

export interface MarketSession {
  date: string;
  open: string;
  close: string;
  pre_market_open: string;
  after_hours_close: string;
  early_close: boolean;
}

export interface MarketCalendar {
  start: string;
  end: string;
  timezone: string;
  sessions: MarketSession[];
  years: {
    year: number;
    holidays: { date: string; name: string }[];
    early_closes: { date: string; reason: string; close: string }[];
  }[];
}

export interface Holding {
  symbol: string;
  /** shares, exact decimal strings */
  qty: string;
  qty_available: string;
  qty_held: string;
  cost_basis: string;
  price: string | null;
  market_value: string | null;
  unrealized_pnl: string | null;
}

export interface Portfolio {
  user_id: string;
  cash: string;
  cash_held: string;
  buying_power: string;
  holdings: Holding[];
  market_value: string;
  equity: string;
}

export interface LedgerEntry {
  id: number;
  txn_id: string;
  kind: string;
  account: string;
  asset: string;
  amount: string | number;
  order_id: string | null;
  exec_id: string | null;
  created_at: string;
}

export interface RestOptions {
  /** e.g. "http://127.0.0.1:8000" */
  baseUrl: string;
  token: TokenProvider;
  /** defaults to the global fetch (browsers, Node 18+) */
  fetch?: typeof globalThis.fetch;
}

export class RestClient {
  private readonly base: string;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(private readonly options: RestOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** 201 a new order (`created` true), 200 the first order of a repeated idempotency key. */
  async placeOrder(req: PlaceOrder): Promise<{ order: Order; created: boolean }> {
    const body: Record<string, unknown> = {
      symbol: req.symbol,
      side: req.side,
      type: req.type,
      time_in_force: req.timeInForce ?? "day",
      idempotency_key: req.idempotencyKey ?? globalThis.crypto.randomUUID(),
    };
    if (req.qty !== undefined) body.qty = req.qty;
    if (req.notional !== undefined) body.notional = req.notional;
    if (req.limitPrice !== undefined) body.limit_price = req.limitPrice;
    if (req.extendedHours) body.extended_hours = true;
    if (req.stopPrice !== undefined) body.stop_price = req.stopPrice;
    if (req.trailPercent !== undefined) body.trail_percent = req.trailPercent;
    if (req.trailPrice !== undefined) body.trail_price = req.trailPrice;
    const { status, data } = await this.call("POST", "/v1/orders", body);
    return { order: data as Order, created: status === 201 };
  }

  async getOrder(orderId: string): Promise<Order> {
    return (await this.call("GET", `/v1/orders/${encodeURIComponent(orderId)}`)).data as Order;
  }

  async listOrders(params: { status?: OrderStatus; limit?: number } = {}): Promise<Order[]> {
    const q = query({ status: params.status, limit: params.limit });
    return ((await this.call("GET", `/v1/orders${q}`)).data as { orders: Order[] }).orders;
  }

  /** `cancelled` true: closed at once (not yet routed); false: a cancel was requested (202), watch the updates. */
  async cancelOrder(orderId: string): Promise<{ order: Order; cancelled: boolean }> {
    const { status, data } = await this.call("DELETE", `/v1/orders/${encodeURIComponent(orderId)}`);
    return { order: data as Order, cancelled: status === 200 };
  }

  /** PATCH: 202 replace requested (`order.replaced_by` names the replacement to be; the orders channel shows the
   * old order `replaced`, or `replaced_by` cleared when the market maker was too late); `repeated` true: 200, the
   * same idempotency key again. */
  async replaceOrder(orderId: string, req: ReplaceOrder): Promise<{ order: Order; repeated: boolean }> {
    const body: Record<string, unknown> = { idempotency_key: req.idempotencyKey ?? globalThis.crypto.randomUUID() };
    if (req.qty !== undefined) body.qty = req.qty;
    if (req.limitPrice !== undefined) body.limit_price = req.limitPrice;
    if (req.timeInForce !== undefined) body.time_in_force = req.timeInForce;
    const { status, data } = await this.call("PATCH", `/v1/orders/${encodeURIComponent(orderId)}`, body);
    return { order: data as Order, repeated: status === 200 };
  }

  async portfolio(): Promise<Portfolio> {
    return (await this.call("GET", "/v1/portfolio")).data as Portfolio;
  }

  /** The user's journal entries, newest first; page with `before` (the last id seen). */
  async ledger(params: { before?: number; limit?: number } = {}): Promise<LedgerEntry[]> {
    const q = query({ before: params.before, limit: params.limit });
    return ((await this.call("GET", `/v1/ledger${q}`)).data as { entries: LedgerEntry[] }).entries;
  }

  /** The market clock from the exchange calendar, every instant ISO-8601 in New York time with its offset. */
  async clock(): Promise<MarketClock> {
    return (await this.call("GET", "/v1/clock")).data as MarketClock;
  }

  /** Sessions (and each year's holidays and early closes) from start to end, dates YYYY-MM-DD. */
  async calendar(params: { start?: string; end?: string } = {}): Promise<MarketCalendar> {
    return (await this.call("GET", `/v1/calendar${query({ start: params.start, end: params.end })}`))
      .data as MarketCalendar;
  }

  /** A single-use WebSocket ticket, valid 30 s (what a browser connects with instead of its token). */
  async wsTicket(): Promise<{ ticket: string; expires_in: number }> {
    return (await this.call("POST", "/v1/ws-ticket")).data as { ticket: string; expires_in: number };
  }

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; data: unknown }> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.options.token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, "network_error", e instanceof Error ? e.message : String(e));
    }
    const text = await response.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const err = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const retry = response.headers.get("retry-after");
      throw new ApiError(
        response.status,
        typeof err?.code === "string" ? err.code : `http_${response.status}`,
        typeof err?.message === "string" ? err.message : text.slice(0, 200) || response.statusText,
        retry !== null && /^\d+$/.test(retry) ? Number(retry) : undefined,
      );
    }
    return { status: response.status, data };
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
