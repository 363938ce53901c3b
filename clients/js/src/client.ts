// The streaming client: one WebSocket to a node, kept open. It reconnects with jittered backoff (to another of
// its endpoints when given several), resubscribes,
// resumes (the newest resume token, answered by Recovered verdicts surfaced as events), checks the stream's
// ordering promises, watches heartbeats and refreshes its token before expiry.
import type {
  AccountUpdate,
  Bar,
  Depth,
  Heartbeat,
  OrderUpdate,
  Quote,
  Recovered,
  ServerMessage,
  StatusBatch,
  Subscribed,
  Trade,
} from "./gen/stream_pb.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Endpoints } from "./endpoints.js";
import { BarOrderCheck, SeqCheck, TradeSeqCheck, type Anomaly } from "./checks.js";
import { clientMessage, decodeServer, encodeClient, type Format, type FrameData } from "./codec.js";
import { RestClient, type TokenProvider } from "./rest.js";
import { defaultSocketFactory, realTimers, type SocketFactory, type SocketLike, type Timers } from "./transport.js";

export const PROTOCOL_VERSION = 2;

export type Channel = "quotes" | "trades" | "depth" | "bars:1s" | "bars:1m" | "status" | "orders" | "positions";
export const CHANNELS: readonly Channel[] = [
  "quotes", "trades", "depth", "bars:1s", "bars:1m", "status", "orders", "positions",
];
/** The user's own channels: no symbols, an authenticated connection only. */
const USER_CHANNELS: readonly Channel[] = ["orders", "positions"];

/** What came with an item: whether its batch was a snapshot, and the node's send time (Unix ns; 0 if none). */
export interface BatchInfo {
  snapshot: boolean;
  sendTimeNs: bigint;
}

export interface Handlers {
  quotes: (quote: Quote, info: BatchInfo) => void;
  trades: (trade: Trade, info: BatchInfo) => void;
  depth: (depth: Depth, info: BatchInfo) => void;
  "bars:1s": (bar: Bar, info: BatchInfo) => void;
  "bars:1m": (bar: Bar, info: BatchInfo) => void;
  status: (batch: StatusBatch) => void;
  orders: (update: OrderUpdate) => void;
  /** The user's cash and positions: first the current account (`update.snapshot`), then every change in version
   * order, each once (the client drops a version it already delivered; after a reconnect a new snapshot comes). */
  positions: (update: AccountUpdate) => void;
}

/** Prints an app did not get: `trade_seq` from..to (inclusive) when known. */
export interface GapEvent {
  /** "partial" / "not_recoverable": a resume verdict; "trade_seq_jump": seen in the stream; "no_resume": a
   * reconnect before any resume token arrived, so nothing could be replayed; "orders": a reconnect with the
   * orders channel (order updates are not replayed: re-read the orders with GET /v1/orders) */
  reason: "partial" | "not_recoverable" | "trade_seq_jump" | "no_resume" | "orders";
  /** "" when the verdict is about the whole token (then `symbols` names the trades symbols it covered) */
  symbol: string;
  symbols: string[];
  fromTradeSeq?: bigint;
  toTradeSeq?: bigint;
  epochChanged: boolean;
  detail: string;
}

export interface ServerErrorEvent {
  code: string;
  message: string;
  symbols: string[];
}

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** The connection's conflation tier (README "Conflation tiers"), as the node last said (Subscribed, Heartbeat). */
export interface TierInfo {
  /** 0: every flush; 1: at most 4 updates/s per symbol; 2: at most 1/s. The node moves a client that keeps
   * falling behind down a tier, and back up once it keeps up. */
  tier: number;
  /** the cap in force, updates per second per symbol of quotes and depth: the slower of `maxRateHz` and the
   * tier's; 0: none (every flush) */
  maxRateHz: number;
}

/** The smallest `maxRateHz` a node takes (one update every 10 s); 0 means no cap. */
export const MIN_RATE_HZ = 0.1;

/** Throws a RangeError for a cap the node would refuse (`bad_rate`): NaN, infinite, negative, under 0.1. */
export function checkMaxRate(hz: number): number {
  if (!Number.isFinite(hz) || (hz !== 0 && !(hz >= MIN_RATE_HZ))) {
    throw new RangeError(`maxRateHz must be 0 (no cap) or a finite number of at least ${MIN_RATE_HZ}, not ${hz}`);
  }
  return hz;
}

export interface ClientEvents {
  state: ConnectionState;
  /** `url`: the endpoint this connection went to */
  open: { reconnect: boolean; url: string };
  close: { code: number; reason: string; retryInMs: number | null };
  subscribed: Subscribed;
  /** every Recovered verdict, complete ones included */
  recovered: Recovered;
  gap: GapEvent;
  /** a broken ordering promise (seq regression, trade_seq repeat, bar back in time) */
  anomaly: Anomaly;
  /** server Error frames, and the client's own trouble ("bad_frame", "token_provider", "ticket", ...) */
  error: ServerErrorEvent;
  heartbeat: Heartbeat;
  /** the conflation tier or the cap in force changed (see `tier`) */
  tier: TierInfo;
  refreshed: { expiresAtNs: bigint };
  revoked: { revokedBeforeNs: bigint };
}

export interface ClientOptions {
  /** e.g. "ws://127.0.0.1:8765/v1/stream"; or several nodes of one service (they share the resume secret):
   * the first is tried first, and after a lost connection or a failed attempt the next attempt goes to another,
   * picked at random among the others, resuming there */
  url: string | readonly string[];
  /** "binary" (protobuf, the default) or "json" (`?format=json`, text frames) */
  format?: Format;
  /** a bearer JWT for the orders channel: called at every (re)connect and before expiry for a Refresh */
  token?: TokenProvider;
  /** the order API's base URL, for tickets where the upgrade cannot carry a header (browsers) */
  apiUrl?: string;
  /** "header" (Node default): Authorization on the upgrade; "ticket" (browser default): `?ticket=` */
  auth?: "header" | "ticket";
  backoff?: BackoffOptions;
  /** at most this many updates a second per symbol of quotes and depth, each the newest (a phone on a cell
   * network: 2-4); unset or 0: every flush (a desktop). Sent with every connection's first Subscribe;
   * `setMaxRate` changes it. Trades, bars and status are not capped. */
  maxRateHz?: number;
  /** the node's heartbeat period (default 5,000 ms) */
  heartbeatIntervalMs?: number;
  /** close and reopen after this many heartbeat periods without any frame (default 3) */
  heartbeatMisses?: number;
  /** send a Refresh this long before the token's `exp` (default 60,000 ms) */
  refreshBeforeMs?: number;
  socketFactory?: SocketFactory;
  timers?: Timers;
  /** for the ticket request; the global fetch by default */
  fetch?: typeof globalThis.fetch;
}

type Listener<K extends keyof ClientEvents> = (event: ClientEvents[K]) => void;

interface Entry {
  channel: Channel;
  symbols: Set<string>;
  handler: Handlers[Channel];
}

/** What `subscribe` returns: `unsubscribe()` stops this handler (and the channel's symbols no one else wants). */
export interface Subscription {
  unsubscribe(): void;
}

/** The `exp` claim of a JWT in ms (unverified: only to schedule the refresh), or null. */
export function tokenExpiryMs(token: string): number | null {
  const part = token.split(".")[1];
  if (part === undefined) return null;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))));
    return typeof json.exp === "number" ? json.exp * 1000 : null;
  } catch {
    return null;
  }
}

export class TickfanClient {
  readonly format: Format;
  private readonly timers: Timers;
  private readonly backoff: Backoff;
  private readonly endpoints: Endpoints;
  private readonly heartbeatMs: number;
  private readonly heartbeatMisses: number;
  private readonly refreshBeforeMs: number;
  private factory: SocketFactory | undefined;
  private socket: SocketLike | null = null;
  private entries = new Set<Entry>();
  private listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  private stateNow: ConnectionState = "idle";
  private stopped = false;
  private everOpened = false;
  private resumeToken = "";
  private accountVersion: bigint | null = null; // the newest positions version delivered
  private watchdog: unknown = null;
  private reconnectTimer: unknown = null;
  private refreshTimer: unknown = null;
  private tokenSent = "";
  // a resume in flight: per trades symbol whose verdict is awaited, the last trade_seq delivered before it and the
  // prints received since (replayed, then live), held until the verdict says how to read them
  private resuming = new Map<string, { before: bigint | undefined; buffer: { trade: Trade; info: BatchInfo }[] }>();
  private readonly quoteSeq = new SeqCheck("quotes");
  private readonly depthSeq = new SeqCheck("depth");
  private readonly tradeSeq = new TradeSeqCheck();
  private readonly barOrder = new BarOrderCheck();
  private connectAttempt = 0;
  private maxRate: number;
  private tierNow: TierInfo = { tier: 0, maxRateHz: 0 };
  // symbols a node has acknowledged: one that calls them unknown right after a reconnect is most likely a
  // restarted node whose books are not loaded yet, so they are asked for again (with a backoff, a few times)
  private known = new Set<string>();
  private retryUnknown = new Set<string>();
  private retryTimer: unknown = null;
  private readonly retryBackoff = new Backoff({ initialMs: 500, maxMs: 10_000 });

  constructor(private readonly options: ClientOptions) {
    this.format = options.format ?? "binary";
    this.timers = options.timers ?? realTimers;
    this.backoff = new Backoff(options.backoff);
    this.endpoints = new Endpoints(options.url, this.backoff.random);
    this.heartbeatMs = options.heartbeatIntervalMs ?? 5_000;
    this.heartbeatMisses = options.heartbeatMisses ?? 3;
    this.refreshBeforeMs = options.refreshBeforeMs ?? 60_000;
    this.factory = options.socketFactory;
    this.maxRate = checkMaxRate(options.maxRateHz ?? 0);
  }

  /** The conflation tier and cap the node last reported ({0, 0}: every flush, or nothing heard yet). */
  get tier(): TierInfo {
    return this.tierNow;
  }

  /** Asks for at most `hz` updates a second per symbol of quotes and depth (0: no cap), now and on every
   * reconnect; the node answers with Subscribed (and a `tier` event when the tier or cap changes). */
  setMaxRate(hz: number): void {
    this.maxRate = checkMaxRate(hz);
    this.send({ case: "subscribe", value: { maxRateHz: hz } });
  }

  get state(): ConnectionState {
    return this.stateNow;
  }

  /** The endpoint the current (or next) connection goes to. */
  get endpoint(): string {
    return this.endpoints.current;
  }

  /** The newest resume token received (Subscribed or Heartbeat); "" before the first. */
  get lastResumeToken(): string {
    return this.resumeToken;
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Opens the connection (and keeps it open until `close()`). */
  connect(): void {
    this.stopped = false;
    if (this.socket === null && this.reconnectTimer === null) void this.open();
  }

  /** Closes for good: no reconnect. */
  close(): void {
    this.stopped = true;
    this.clearTimers();
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const s = this.socket;
    this.socket = null;
    if (s !== null) {
      detach(s);
      s.close(1000, "client closed");
    }
    this.setState("closed");
  }

  /** Closes the current socket and reconnects at once (as after a lost connection), resuming. */
  reconnectNow(reason = "reconnect requested"): void {
    this.drop(4000, reason, 0);
  }

  subscribe<C extends Channel>(channel: C, symbols: readonly string[], handler: Handlers[C]): Subscription {
    if (!CHANNELS.includes(channel)) throw new RangeError(`unknown channel ${channel}`);
    const mine = USER_CHANNELS.includes(channel);
    const wanted = mine ? [] : symbols.map((s) => s.trim().toUpperCase());
    const fresh = wanted.filter((s) => !this.wants(channel, s));
    const entry: Entry = { channel, symbols: new Set(wanted), handler: handler as Handlers[Channel] };
    const firstOrders = mine && !this.hasChannel(channel);
    this.entries.add(entry);
    if (fresh.length > 0 || firstOrders) this.send({ case: "subscribe", value: { symbols: fresh, channels: [channel] } });
    return {
      unsubscribe: () => {
        if (!this.entries.delete(entry)) return;
        const gone = [...entry.symbols].filter((s) => !this.wants(channel, s));
        if (gone.length > 0 || (mine && !this.hasChannel(channel))) {
          this.send({ case: "unsubscribe", value: { symbols: gone, channels: [channel] } });
        }
        if (channel === "trades") for (const s of gone) this.tradeSeq.forget(s);
      },
    };
  }

  private wants(channel: Channel, symbol: string): boolean {
    for (const e of this.entries) if (e.channel === channel && e.symbols.has(symbol)) return true;
    return false;
  }

  private hasChannel(channel: Channel): boolean {
    for (const e of this.entries) if (e.channel === channel) return true;
    return false;
  }

  private symbolsOf(channel: Channel): string[] {
    const out = new Set<string>();
    for (const e of this.entries) if (e.channel === channel) for (const s of e.symbols) out.add(s);
    return [...out].sort();
  }

  private emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const l of this.listeners.get(event) ?? []) {
      try {
        (l as Listener<K>)(value);
      } catch (e) {
        // an app's listener that throws must not take the connection down; say so where a developer looks
        console.error(`tickfan: a "${event}" listener threw`, e);
      }
    }
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.emit("state", state);
  }

  private send(kind: Parameters<typeof clientMessage>[0]["kind"]): boolean {
    const s = this.socket;
    if (s === null || s.readyState !== 1) return false; // sent with the resubscription on the next open
    s.send(encodeClient(clientMessage({ kind }), this.format));
    return true;
  }

  // ------------------------------------------------------------------ connecting

  private async open(): Promise<void> {
    const attempt = ++this.connectAttempt;
    this.setState(this.everOpened ? "reconnecting" : "connecting");
    let url = this.endpoints.current;
    const headers: Record<string, string> = {};
    let token = "";
    try {
      this.factory ??= await defaultSocketFactory();
      if (this.options.token !== undefined) {
        token = await this.options.token();
        const mode = this.options.auth ?? (this.factory.sendsHeaders ? "header" : "ticket");
        if (mode === "header") headers.authorization = `Bearer ${token}`;
        else url = withParam(url, "ticket", await this.ticket());
      }
    } catch (e) {
      this.emit("error", { code: "credentials", message: errorText(e), symbols: [] });
      if (this.stopped || attempt !== this.connectAttempt) return;
      this.scheduleReconnect(); // the API may be down as well: the same backoff
      return;
    }
    if (this.stopped || attempt !== this.connectAttempt) return;
    if (this.format === "json") url = withParam(url, "format", "json");
    let socket: SocketLike;
    try {
      socket = this.factory.open(url, headers);
    } catch (e) {
      this.emit("error", { code: "connect", message: errorText(e), symbols: [] });
      this.scheduleReconnect();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.tokenSent = token;
    socket.onopen = () => this.onOpen(socket);
    socket.onmessage = (ev) => {
      if (socket === this.socket) this.onFrame(ev.data as FrameData);
    };
    socket.onclose = (ev) => {
      if (socket === this.socket) this.drop(ev.code, ev.reason, null);
    };
    socket.onerror = () => {
      /* a close event follows every error: handled there */
    };
    this.armWatchdog(); // also bounds a connect that never completes
  }

  private async ticket(): Promise<string> {
    if (this.options.apiUrl === undefined || this.options.token === undefined) {
      throw new Error("a browser client needs `apiUrl` to fetch a WebSocket ticket (POST /v1/ws-ticket)");
    }
    const rest = new RestClient({ baseUrl: this.options.apiUrl, token: this.options.token, fetch: this.options.fetch });
    return (await rest.wsTicket()).ticket;
  }

  private onOpen(socket: SocketLike): void {
    if (socket !== this.socket) return;
    const reconnect = this.everOpened;
    this.everOpened = true;
    // a new connection: snapshots follow, and a restarted node restarts its versions
    this.quoteSeq.forget();
    this.depthSeq.forget();
    this.barOrder.forget();
    const trades = this.symbolsOf("trades");
    this.resuming = new Map(); // prints held for a connection that then dropped are replayed again
    // a new connection starts uncapped: the first Subscribe carries the cap, before any snapshot is sent
    let rate: { maxRateHz?: number } = this.maxRate > 0 ? { maxRateHz: this.maxRate } : {};
    const first = () => {
      const r = rate;
      rate = {};
      return r;
    };
    if (reconnect && this.resumeToken !== "") {
      this.resuming = new Map(trades.map((s) => [s, { before: this.tradeSeq.lastOf(s), buffer: [] }]));
      this.send({ case: "subscribe", value: { resumeToken: this.resumeToken, ...first() } });
    } else if (reconnect) {
      for (const s of trades) {
        this.tradeSeq.forget(s);
        this.emit("gap", {
          reason: "no_resume", symbol: s, symbols: [s], epochChanged: false,
          detail: "reconnected before any resume token arrived: prints in between were not replayed",
        });
      }
    }
    if (reconnect && this.hasChannel("orders")) {
      this.emit("gap", {
        reason: "orders", symbol: "", symbols: [], epochChanged: false,
        detail: "order updates sent while disconnected are not replayed: re-read the orders (GET /v1/orders)",
      });
    }
    // then every channel explicitly: what the token restored is already there (the server ignores repeats),
    // and what it could not (a token refused, orders) is subscribed again
    this.accountVersion = null; // a new snapshot comes with the positions channel
    for (const channel of CHANNELS) {
      if (USER_CHANNELS.includes(channel)) {
        if (this.hasChannel(channel)) this.send({ case: "subscribe", value: { channels: [channel], ...first() } });
        continue;
      }
      const symbols = this.symbolsOf(channel);
      if (symbols.length > 0) this.send({ case: "subscribe", value: { symbols, channels: [channel], ...first() } });
    }
    if (rate.maxRateHz !== undefined) this.send({ case: "subscribe", value: first() }); // nothing subscribed yet
    this.setState("open");
    this.emit("open", { reconnect, url: this.endpoints.current });
    this.scheduleRefresh(this.tokenSent);
  }

  /** The socket is gone (closed by the server, the network, or the watchdog): reconnect unless stopped. */
  private drop(code: number, reason: string, delayMs: number | null): void {
    const s = this.socket;
    this.socket = null;
    this.clearTimers();
    if (s !== null) {
      detach(s);
      try {
        // `ws` waits up to 30 s for a dead peer's close frame: a socket given up on is cut at once
        const terminate = (s as { terminate?: () => void }).terminate;
        if (terminate !== undefined) terminate.call(s);
        else s.close(code >= 3000 && code < 5000 ? code : 1000, reason.slice(0, 100));
      } catch {
        /* already closed */
      }
    }
    if (this.stopped) return;
    const retry = this.scheduleReconnect(delayMs);
    this.emit("close", { code, reason, retryInMs: retry });
  }

  private scheduleReconnect(delayMs: number | null = null): number {
    const delay = delayMs ?? this.backoff.next();
    this.endpoints.failover(); // this one just failed us: the next attempt goes to another node, if there is one
    this.setState("reconnecting");
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) void this.open();
    }, delay);
    return delay;
  }

  private clearTimers(): void {
    for (const t of [this.watchdog, this.refreshTimer, this.retryTimer]) if (t !== null) this.timers.clearTimeout(t);
    this.watchdog = null;
    this.refreshTimer = null;
    this.retryTimer = null;
    this.retryUnknown.clear(); // a new connection subscribes everything again
  }

  /** Any frame proves the connection alive; none for `heartbeatMisses` periods means a dead pipe. */
  private armWatchdog(): void {
    if (this.watchdog !== null) this.timers.clearTimeout(this.watchdog);
    const limit = this.heartbeatMs * this.heartbeatMisses;
    this.watchdog = this.timers.setTimeout(() => {
      this.watchdog = null;
      this.drop(4000, `no frame for ${limit} ms`, null);
    }, limit);
  }

  private scheduleRefresh(token: string): void {
    if (this.refreshTimer !== null) this.timers.clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const provider = this.options.token;
    const exp = token ? tokenExpiryMs(token) : null;
    if (provider === undefined || exp === null) return;
    // never sooner than 1 s: a provider that hands back the same token must not make this spin
    const delay = Math.max(1_000, exp - this.refreshBeforeMs - this.timers.now());
    this.refreshTimer = this.timers.setTimeout(() => {
      this.refreshTimer = null;
      void (async () => {
        let next: string;
        try {
          next = await provider();
        } catch (e) {
          this.emit("error", { code: "token_provider", message: errorText(e), symbols: [] });
          return;
        }
        if (this.send({ case: "refresh", value: { token: next } })) this.tokenSent = next;
      })();
    }, delay);
  }

  // ------------------------------------------------------------------ receiving

  private onFrame(data: FrameData): void {
    this.armWatchdog();
    let message: ServerMessage;
    try {
      message = decodeServer(data);
    } catch (e) {
      this.emit("error", { code: "bad_frame", message: errorText(e), symbols: [] });
      return;
    }
    this.backoff.reset(); // the node answers: the next drop starts from the first delay
    const k = message.kind;
    switch (k.case) {
      case "snapshot":
        this.onQuotes(k.value.quotes, { snapshot: true, sendTimeNs: k.value.sendTimeNs });
        break;
      case "quotes":
        this.onQuotes(k.value.quotes, { snapshot: false, sendTimeNs: k.value.sendTimeNs });
        break;
      case "depth": {
        const info = { snapshot: k.value.snapshot, sendTimeNs: k.value.sendTimeNs };
        for (const d of k.value.books) {
          this.check(this.depthSeq.see(d.symbol, d.seq));
          this.dispatch("depth", d.symbol, (h) => h(d, info));
        }
        break;
      }
      case "trades":
        this.onTrades(k.value.trades, { snapshot: false, sendTimeNs: k.value.sendTimeNs });
        break;
      case "bars": {
        const info = { snapshot: k.value.snapshot, sendTimeNs: k.value.sendTimeNs };
        for (const b of k.value.bars) {
          this.check(this.barOrder.see(b.symbol, b.interval, b.startTimeNs, b.state));
          const channel = b.interval === "1s" ? "bars:1s" : "bars:1m";
          this.dispatch(channel, b.symbol, (h) => h(b, info));
        }
        break;
      }
      case "status":
        for (const e of this.entries) if (e.channel === "status") this.call(() => (e.handler as Handlers["status"])(k.value));
        break;
      case "orderUpdate":
        for (const e of this.entries) if (e.channel === "orders") this.call(() => (e.handler as Handlers["orders"])(k.value));
        break;
      case "account":
        this.onAccount(k.value);
        break;
      case "heartbeat":
        if (k.value.resumeToken) this.resumeToken = k.value.resumeToken;
        this.onTier(k.value.tier, k.value.maxRateHz);
        this.emit("heartbeat", k.value);
        break;
      case "subscribed":
        if (k.value.resumeToken) this.resumeToken = k.value.resumeToken;
        this.onTier(k.value.tier, k.value.maxRateHz);
        for (const sym of k.value.symbols) this.known.add(sym);
        if (this.retryUnknown.size === 0 && k.value.symbols.length > 0) this.retryBackoff.reset();
        this.emit("subscribed", k.value);
        break;
      case "recovered":
        this.onRecovered(k.value);
        break;
      case "error":
        if (k.value.code === "symbol_rate_limited" && this.resuming.size > 0) this.endResume("not_recoverable", k.value.message);
        if (k.value.code === "unknown_symbol") this.onUnknown(k.value.symbols);
        this.emit("error", { code: k.value.code, message: k.value.message, symbols: [...k.value.symbols] });
        break;
      case "refreshed":
        this.emit("refreshed", { expiresAtNs: k.value.expiresAtNs });
        this.scheduleRefresh(this.tokenSent);
        break;
      case "revoked":
        this.emit("revoked", { revokedBeforeNs: k.value.revokedBeforeNs });
        break;
      case "pong":
      case undefined:
        break;
    }
  }

  private onTier(tier: number, maxRateHz: number): void {
    if (tier === this.tierNow.tier && maxRateHz === this.tierNow.maxRateHz) return;
    this.tierNow = { tier, maxRateHz };
    this.emit("tier", this.tierNow);
  }

  private onUnknown(symbols: readonly string[]): void {
    const again = symbols.filter((s) => this.known.has(s) && CHANNELS.some((c) => this.wants(c, s)));
    if (again.length === 0 || this.retryBackoff.attempts >= 8) return; // a symbol the node really does not have
    for (const s of again) this.retryUnknown.add(s);
    if (this.retryTimer !== null) return;
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      const pending = this.retryUnknown;
      this.retryUnknown = new Set();
      for (const channel of CHANNELS) {
        if (USER_CHANNELS.includes(channel)) continue;
        const symbols = this.symbolsOf(channel).filter((s) => pending.has(s));
        if (symbols.length > 0) this.send({ case: "subscribe", value: { symbols, channels: [channel] } });
      }
    }, this.retryBackoff.next());
  }

  private onQuotes(quotes: Quote[], info: BatchInfo): void {
    for (const q of quotes) {
      this.check(this.quoteSeq.see(q.symbol, q.seq));
      this.dispatch("quotes", q.symbol, (h) => h(q, info));
    }
  }

  private onTrades(trades: Trade[], info: BatchInfo): void {
    for (const t of trades) {
      const held = this.resuming.get(t.symbol);
      if (held !== undefined) held.buffer.push({ trade: t, info }); // judged with the verdict
      else this.deliverTrade(t, info);
    }
  }

  private deliverTrade(t: Trade, info: BatchInfo): void {
    const a = this.tradeSeq.see(t.symbol, t.tradeSeq);
    if (a?.kind === "trade_seq_jump") {
      this.emit("gap", {
        reason: "trade_seq_jump", symbol: t.symbol, symbols: [t.symbol], fromTradeSeq: a.previous + 1n,
        toTradeSeq: a.received - 1n, epochChanged: false, detail: `trade_seq ${a.previous} then ${a.received}`,
      });
    } else {
      this.check(a);
    }
    this.dispatch("trades", t.symbol, (h) => h(t, info));
  }

  /** Ends one symbol's resume: its held prints go out, judged by the verdict. */
  private release(symbol: string, verdict: "complete" | "partial" | "not_recoverable", missingTo = 0n): void {
    const held = this.resuming.get(symbol);
    if (held === undefined) return;
    this.resuming.delete(symbol);
    const before = held.before;
    if (verdict === "not_recoverable") {
      this.tradeSeq.forget(symbol); // another feed session numbers from scratch: everything held is new
      for (const { trade, info } of held.buffer) this.deliverTrade(trade, info);
      return;
    }
    if (verdict === "partial") {
      // the verdict named the hole: continue after it, so it is not reported twice
      this.tradeSeq.forget(symbol);
      this.tradeSeq.see(symbol, missingTo);
    }
    for (const { trade, info } of held.buffer) {
      // the token is as old as the last Subscribed/Heartbeat: the replay repeats the prints since then,
      // which this app already has
      if (before !== undefined && trade.tradeSeq <= before) continue;
      this.deliverTrade(trade, info);
    }
  }

  private onRecovered(r: Recovered): void {
    this.emit("recovered", r);
    if (r.symbol === "") {
      this.endResume(r.verdict === "complete" ? "complete" : "not_recoverable", r.reason, r.epochChanged);
      return;
    }
    const verdict = r.verdict === "complete" || r.verdict === "partial" ? r.verdict : "not_recoverable";
    if (verdict !== "complete") {
      this.emit("gap", {
        reason: verdict,
        symbol: r.symbol,
        symbols: [r.symbol],
        ...(verdict === "partial" ? { fromTradeSeq: r.missingFromTradeSeq, toTradeSeq: r.missingToTradeSeq } : {}),
        epochChanged: r.epochChanged,
        detail: r.reason || r.verdict,
      });
    }
    this.release(r.symbol, verdict, r.missingToTradeSeq);
  }

  /** One verdict for the whole token (or the resume refused): every awaited symbol has a gap. */
  private endResume(verdict: "complete" | "not_recoverable", detail: string, epochChanged = false): void {
    const symbols = [...this.resuming.keys()];
    if (verdict === "not_recoverable" && symbols.length > 0) {
      this.emit("gap", { reason: "not_recoverable", symbol: "", symbols, epochChanged, detail });
    }
    for (const s of symbols) this.release(s, verdict);
  }

  /** The positions channel: a snapshot starts (or restarts) the sequence; an update whose version was delivered
   * already (the node re-sent it) is dropped, so handlers see each version once, in order. */
  private onAccount(update: AccountUpdate): void {
    if (!update.snapshot && this.accountVersion !== null && update.version <= this.accountVersion) return;
    this.accountVersion = update.version;
    for (const e of this.entries) if (e.channel === "positions") this.call(() => (e.handler as Handlers["positions"])(update));
  }

  private check(anomaly: Anomaly | null): void {
    if (anomaly !== null) this.emit("anomaly", anomaly);
  }

  private dispatch<C extends Exclude<Channel, "status" | "orders" | "positions">>(
    channel: C, symbol: string, run: (handler: Handlers[C]) => void,
  ): void {
    for (const e of this.entries) {
      if (e.channel === channel && e.symbols.has(symbol)) this.call(() => run(e.handler as Handlers[C]));
    }
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      console.error("tickfan: a subscription handler threw", e);
    }
  }
}

function detach(s: SocketLike): void {
  s.onopen = null;
  s.onmessage = null;
  s.onclose = null;
  s.onerror = () => {}; // `ws` throws on an unhandled error event of a socket we let go
}

function withParam(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
