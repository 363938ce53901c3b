import { test } from "node:test";
import assert from "node:assert/strict";
import { TickfanClient, type ClientEvents, type ClientOptions } from "../../src/client.js";
import type { Quote, Trade } from "../../src/gen/stream_pb.js";
import { FakeFactory, FakeTimers, clientKinds, settle } from "./fakes.js";

function jwt(expSeconds: number, sub = "alice"): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256" })}.${b64({ sub, exp: expSeconds })}.sig`;
}

function setup(options: Partial<ClientOptions> = {}) {
  const factory = new FakeFactory(options.auth !== "ticket");
  const timers = new FakeTimers();
  const client = new TickfanClient({
    url: "ws://node.test/v1/stream", socketFactory: factory, timers,
    backoff: { initialMs: 100, maxMs: 1_000, random: () => 0.5 }, ...options,
  });
  const events: { [K in keyof ClientEvents]?: ClientEvents[K][] } = {};
  for (const k of ["state", "open", "close", "recovered", "gap", "anomaly", "error", "refreshed"] as const) {
    client.on(k, (e) => ((events[k] ??= [] as never[]) as unknown[]).push(e));
  }
  return { client, factory, timers, events };
}

const trade = (symbol: string, tradeSeq: bigint) => ({ symbol, tradeSeq, seq: tradeSeq, price: 1892500n, size: 100n, printable: true });

test("subscriptions made before connecting are sent on open, per channel; snapshots reach typed handlers", async () => {
  const { client, factory } = setup();
  const quotes: Quote[] = [];
  client.subscribe("quotes", ["aapl", "TSLA"], (q) => quotes.push(q));
  client.subscribe("trades", ["AAPL"], () => {});
  client.connect();
  await settle();
  const s = factory.last;
  assert.equal(s.url, "ws://node.test/v1/stream");
  assert.deepEqual(s.headers, {}); // no token: anonymous
  s.accept();
  assert.deepEqual(s.subscribes().map((x) => [x.channels, x.symbols]), [[["quotes"], ["AAPL", "TSLA"]], [["trades"], ["AAPL"]]]);
  s.push({ kind: { case: "snapshot", value: { quotes: [{ symbol: "AAPL", seq: 812n, bidPrice: 1892500n }], sendTimeNs: 5n } } });
  s.push({ kind: { case: "quotes", value: { quotes: [{ symbol: "MSFT", seq: 1n }] } } }); // not subscribed: not delivered
  assert.deepEqual(quotes.map((q) => [q.symbol, q.seq, q.bidPrice]), [["AAPL", 812n, 1892500n]]);
  client.close();
});

test("JSON mode: ?format=json, text frames both ways", async () => {
  const { client, factory } = setup({ format: "json" });
  const bars: bigint[] = [];
  client.subscribe("bars:1m", ["AAPL"], (b) => bars.push(b.startTimeNs));
  client.connect();
  await settle();
  const s = factory.last;
  assert.equal(new URL(s.url).searchParams.get("format"), "json");
  s.accept();
  s.push({ kind: { case: "bars", value: { bars: [{ symbol: "AAPL", interval: "1m", startTimeNs: 60n, state: "update" }], snapshot: true } } });
  s.push({ kind: { case: "bars", value: { bars: [{ symbol: "AAPL", interval: "1s", startTimeNs: 61n, state: "update" }] } } });
  assert.deepEqual(bars, [60n]); // the 1s bar belongs to bars:1s
  client.close();
});

test("a dropped connection reconnects after a jittered backoff and resumes with the newest token, then resubscribes", async () => {
  const { client, factory, timers, events } = setup();
  const prints: bigint[] = [];
  client.subscribe("trades", ["AAPL"], (t) => prints.push(t.tradeSeq));
  client.subscribe("quotes", ["AAPL"], () => {});
  client.connect();
  await settle();
  let s = factory.last;
  s.accept();
  s.push({ kind: { case: "subscribed", value: { symbols: ["AAPL"], channels: ["trades", "quotes"], resumeToken: "T1", protocolVersion: 2 } } });
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 1n), trade("AAPL", 2n)] } } });
  s.push({ kind: { case: "heartbeat", value: { resumeToken: "T2" } } });
  s.serverClose(1006);
  assert.equal(client.state, "reconnecting");
  assert.equal(events.close?.[0]?.retryInMs, 50); // initial 100 ms, full jitter: [0, 100]
  timers.advance(49);
  assert.equal(factory.sockets.length, 1);
  timers.advance(1);
  await settle();
  s = factory.last;
  assert.equal(factory.sockets.length, 2);
  s.accept();
  const subs = s.subscribes();
  assert.deepEqual(subs[0], { symbols: [], channels: [], resumeToken: "T2" }); // the resume first, alone
  assert.deepEqual(subs.slice(1).map((x) => x.channels[0]), ["quotes", "trades"]);
  const url = "ws://node.test/v1/stream";
  assert.deepEqual(events.open, [{ reconnect: false, url }, { reconnect: true, url }]);
  // the token (T2) is older than the last print received: the replay repeats print 2, then 3; then the verdict
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 2n), trade("AAPL", 3n)] } } });
  assert.deepEqual(prints, [1n, 2n]); // held until the verdict
  s.push({ kind: { case: "recovered", value: { symbol: "AAPL", verdict: "complete" } } });
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 4n)] } } });
  assert.deepEqual(prints, [1n, 2n, 3n, 4n]); // no duplicate, no gap
  assert.equal(events.recovered?.length, 1);
  assert.equal(events.gap, undefined);
  assert.equal(events.anomaly, undefined);
  client.close();
});

test("resume verdicts: partial and not_recoverable become gap events, never silence", async () => {
  const { client, factory, timers, events } = setup();
  client.subscribe("trades", ["AAPL", "TSLA"], () => {});
  client.connect();
  await settle();
  factory.last.accept();
  factory.last.push({ kind: { case: "subscribed", value: { resumeToken: "T1" } } });
  factory.last.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 10n), trade("TSLA", 87n)] } } });
  client.reconnectNow();
  timers.advance(0);
  await settle();
  const s = factory.last;
  s.accept();
  // TSLA: 88..140 lost, 141 replayed; AAPL: a new feed session
  s.push({ kind: { case: "trades", value: { trades: [trade("TSLA", 141n)] } } });
  s.push({ kind: { case: "recovered", value: { symbol: "TSLA", verdict: "partial", missingFromTradeSeq: 88n, missingToTradeSeq: 140n } } });
  s.push({ kind: { case: "recovered", value: { symbol: "AAPL", verdict: "not_recoverable", epochChanged: true, reason: "another feed session" } } });
  assert.deepEqual(events.gap?.map((g) => [g.reason, g.symbol, g.fromTradeSeq, g.toTradeSeq, g.epochChanged]), [
    ["partial", "TSLA", 88n, 140n, false],
    ["not_recoverable", "AAPL", undefined, undefined, true],
  ]);
  // the new session's numbering is the new baseline: no false jump, but a real one is seen
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 1n), trade("AAPL", 2n), trade("TSLA", 142n), trade("TSLA", 144n)] } } });
  assert.equal(events.gap?.length, 3);
  assert.deepEqual([events.gap?.[2]?.reason, events.gap?.[2]?.fromTradeSeq, events.gap?.[2]?.toTradeSeq], ["trade_seq_jump", 143n, 143n]);
  client.close();
});

test("a token the service did not issue: one verdict without a symbol, a gap naming every trades symbol", async () => {
  const { client, factory, timers, events } = setup();
  client.subscribe("trades", ["AAPL", "NVDA"], () => {});
  client.connect();
  await settle();
  factory.last.accept();
  factory.last.push({ kind: { case: "subscribed", value: { resumeToken: "forged" } } });
  factory.last.serverClose(1001);
  timers.advance(1_000);
  await settle();
  factory.last.accept();
  factory.last.push({ kind: { case: "recovered", value: { verdict: "not_recoverable", reason: "not one this service issued" } } });
  assert.deepEqual(events.gap?.map((g) => [g.reason, g.symbol, g.symbols]), [["not_recoverable", "", ["AAPL", "NVDA"]]]);
  client.close();
});

test("a reconnect before any resume token: a no_resume gap per trades symbol", async () => {
  const { client, factory, timers, events } = setup();
  client.subscribe("trades", ["AAPL"], () => {});
  client.connect();
  await settle();
  factory.last.accept();
  factory.last.serverClose(1006);
  timers.advance(1_000);
  await settle();
  factory.last.accept();
  assert.deepEqual(events.gap?.map((g) => [g.reason, g.symbol]), [["no_resume", "AAPL"]]);
  assert.equal(factory.last.subscribes()[0]?.resumeToken, "");
  client.close();
});

test("seq regressions, bars back in time and repeated prints are anomaly events; conflation jumps are not", async () => {
  const { client, factory, events } = setup();
  const trades: Trade[] = [];
  client.subscribe("quotes", ["AAPL"], () => {});
  client.subscribe("depth", ["AAPL"], () => {});
  client.subscribe("bars:1s", ["AAPL"], () => {});
  client.subscribe("trades", ["AAPL"], (t) => trades.push(t));
  client.connect();
  await settle();
  const s = factory.last;
  s.accept();
  s.push({ kind: { case: "snapshot", value: { quotes: [{ symbol: "AAPL", seq: 10n }] } } });
  s.push({ kind: { case: "quotes", value: { quotes: [{ symbol: "AAPL", seq: 15n }] } } });
  s.push({ kind: { case: "quotes", value: { quotes: [{ symbol: "AAPL", seq: 14n }] } } });
  s.push({ kind: { case: "depth", value: { books: [{ symbol: "AAPL", seq: 3n }, { symbol: "AAPL", seq: 3n }] } } });
  s.push({ kind: { case: "bars", value: { bars: [{ symbol: "AAPL", interval: "1s", startTimeNs: 2n }, { symbol: "AAPL", interval: "1s", startTimeNs: 1n, state: "final" }] } } });
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 4n), trade("AAPL", 4n)] } } });
  assert.deepEqual(events.anomaly?.map((a) => a.kind), ["seq_regression", "seq_regression", "bar_back_in_time", "trade_seq_regression"]);
  assert.equal(trades.length, 2); // the app still sees what arrived
  client.close();
});

test("heartbeat watchdog: frames keep the connection; silence for N intervals closes and reopens it", async () => {
  const { client, factory, timers, events } = setup({ heartbeatIntervalMs: 5_000, heartbeatMisses: 3 });
  client.connect();
  await settle();
  const first = factory.last;
  first.accept();
  for (let i = 0; i < 5; i++) {
    timers.advance(5_000);
    first.push({ kind: { case: "heartbeat", value: { resumeToken: `T${i}` } } });
  }
  assert.equal(first.closed, null);
  timers.advance(14_999);
  assert.equal(first.closed, null);
  timers.advance(1);
  assert.notEqual(first.closed, null);
  assert.match(events.close?.[0]?.reason ?? "", /no frame for 15000 ms/);
  timers.advance(1_000);
  await settle();
  assert.equal(factory.sockets.length, 2);
  factory.last.accept();
  assert.equal(factory.last.subscribes()[0]?.resumeToken, "T4");
  client.close();
});

test("a connect that never completes is bounded by the watchdog too", async () => {
  const { client, factory, timers } = setup();
  client.connect();
  await settle();
  timers.advance(15_000);
  assert.notEqual(factory.sockets[0]?.closed, null);
  timers.advance(1_000);
  await settle();
  assert.equal(factory.sockets.length, 2);
  client.close();
});

test("orders with a bearer token: Authorization on the upgrade in Node, updates to the orders handler", async () => {
  const factory = new FakeFactory(true);
  const token = jwt(Math.floor(Date.now() / 1000) + 300);
  const timers = new FakeTimers();
  const c = new TickfanClient({ url: "ws://node.test/v1/stream", socketFactory: factory, timers, token: () => token });
  const updates: string[] = [];
  c.subscribe("orders", [], (u) => updates.push(u.status));
  c.connect();
  await settle();
  const s = factory.last;
  assert.equal(s.headers.authorization, `Bearer ${token}`);
  assert.ok(!s.url.includes("token") && !s.url.includes(token));
  s.accept();
  assert.deepEqual(s.subscribes(), [{ symbols: [], channels: ["orders"], resumeToken: "" }]);
  s.push({ kind: { case: "orderUpdate", value: { orderId: "o1", status: "accepted", version: 1n } } });
  s.push({ kind: { case: "orderUpdate", value: { orderId: "o1", status: "filled", version: 2n } } });
  assert.deepEqual(updates, ["accepted", "filled"]);
  // updates are not replayed after a reconnect: the app is told to re-read its orders
  const gaps: string[] = [];
  c.on("gap", (g) => gaps.push(g.reason));
  c.reconnectNow();
  timers.advance(0);
  await settle();
  factory.last.accept();
  assert.deepEqual(gaps, ["orders"]);
  assert.deepEqual(factory.last.subscribes().at(-1)?.channels, ["orders"]);
  c.close();
});

test("positions: typed AccountUpdates, the snapshot first, each version once, a new snapshot after a reconnect", async () => {
  const factory = new FakeFactory(true);
  const token = jwt(Math.floor(Date.now() / 1000) + 300);
  const timers = new FakeTimers();
  const c = new TickfanClient({ url: "ws://node.test/v1/stream", socketFactory: factory, timers, token: () => token });
  const seen: string[] = [];
  c.subscribe("positions", ["IGNORED"], (u) => {
    seen.push(`${u.snapshot ? "snapshot" : "update"} v${u.version} ${u.buyingPower} ${u.positions.map((p) => `${p.symbol}:${p.qty}`).join(",")}`);
  });
  c.connect();
  await settle();
  const s = factory.last;
  s.accept();
  assert.deepEqual(s.subscribes(), [{ symbols: [], channels: ["positions"], resumeToken: "" }]);
  s.push({ kind: { case: "account", value: { version: 4n, snapshot: true, buyingPower: "1000.0000" } } });
  s.push({ kind: { case: "account", value: { version: 5n, buyingPower: "810.0000" } } });
  s.push({ kind: { case: "account", value: { version: 5n, buyingPower: "810.0000" } } }); // re-sent: dropped
  s.push({ kind: { case: "account", value: { version: 6n, buyingPower: "810.0000",
    positions: [{ symbol: "AAPL", qty: "1", qtyHeld: "0", costBasis: "190.0000", avgEntryPrice: "190.0000" }] } } });
  assert.deepEqual(seen, ["snapshot v4 1000.0000 ", "update v5 810.0000 ", "update v6 810.0000 AAPL:1"]);
  c.reconnectNow();
  timers.advance(0);
  await settle();
  factory.last.accept();
  assert.deepEqual(factory.last.subscribes().at(-1)?.channels, ["positions"]);
  factory.last.push({ kind: { case: "account", value: { version: 6n, snapshot: true, buyingPower: "810.0000" } } });
  assert.equal(seen.at(-1), "snapshot v6 810.0000 ");
  c.close();
});

test("refresh: the provider's new token is sent before the old one's exp", async () => {
  const factory = new FakeFactory(true);
  const timers = new FakeTimers();
  const nowS = Math.floor(timers.now() / 1000);
  const tokens = [jwt(nowS + 120), jwt(nowS + 600)];
  let n = 0;
  const c = new TickfanClient({
    url: "ws://node.test/v1/stream", socketFactory: factory, timers, refreshBeforeMs: 60_000, heartbeatIntervalMs: 100_000,
    token: () => tokens[Math.min(n++, 1)] as string,
  });
  c.connect();
  await settle();
  const s = factory.last;
  s.accept();
  timers.advance(59_000);
  await settle();
  assert.ok(!clientKinds(s).includes("refresh"));
  timers.advance(1_000);
  await settle();
  const refresh = s.sent.find((m) => m.kind.case === "refresh");
  assert.equal(refresh?.kind.case === "refresh" && refresh.kind.value.token, tokens[1]);
  s.push({ kind: { case: "refreshed", value: { expiresAtNs: BigInt(nowS + 600) * 1_000_000_000n } } });
  assert.equal(s.closed, null);
  c.close();
});

test("in a browser: a single-use ticket from POST /v1/ws-ticket in the URL, never the token", async () => {
  const calls: { url: string; auth: string | null; method: string }[] = [];
  const fakeFetch = (async (url: string, init: RequestInit) => {
    calls.push({ url, auth: new Headers(init.headers).get("authorization"), method: init.method ?? "GET" });
    return new Response(JSON.stringify({ ticket: "tkt-1", expires_in: 30 }), { status: 200 });
  }) as typeof fetch;
  const { client, factory } = setup({ auth: "ticket", apiUrl: "http://api.test", token: () => "LONG.LIVED.JWT", fetch: fakeFetch });
  client.connect();
  await settle();
  const s = factory.last;
  assert.deepEqual(calls, [{ url: "http://api.test/v1/ws-ticket", auth: "Bearer LONG.LIVED.JWT", method: "POST" }]);
  assert.equal(new URL(s.url).searchParams.get("ticket"), "tkt-1");
  assert.ok(!s.url.includes("LONG.LIVED.JWT"));
  assert.deepEqual(s.headers, {});
  client.close();
});

test("unsubscribe: only symbols no other handler wants; a close stops reconnecting", async () => {
  const { client, factory, timers } = setup();
  client.connect();
  await settle();
  const s = factory.last;
  s.accept();
  const a = client.subscribe("quotes", ["AAPL", "TSLA"], () => {});
  client.subscribe("quotes", ["TSLA"], () => {});
  a.unsubscribe();
  const last = s.sent.at(-1);
  assert.equal(last?.kind.case, "unsubscribe");
  assert.deepEqual(last?.kind.case === "unsubscribe" && last.kind.value.symbols, ["AAPL"]);
  client.close();
  timers.advance(60_000);
  await settle();
  assert.equal(factory.sockets.length, 1);
  assert.equal(client.state, "closed");
});

test("a restarted node that does not know the symbols yet: they are asked for again; a never-known symbol is not", async () => {
  const { client, factory, timers } = setup();
  client.subscribe("quotes", ["AAPL", "ZZZZ"], () => {});
  client.connect();
  await settle();
  factory.last.accept();
  factory.last.push({ kind: { case: "error", value: { code: "unknown_symbol", symbols: ["ZZZZ"] } } });
  factory.last.push({ kind: { case: "subscribed", value: { symbols: ["AAPL"], channels: ["quotes"], resumeToken: "T1" } } });
  timers.advance(600);
  assert.equal(factory.last.subscribes().length, 1); // ZZZZ was never known: no retry
  factory.last.serverClose(1012);
  timers.advance(1_000);
  await settle();
  const s = factory.last;
  s.accept();
  const before = s.subscribes().length;
  s.push({ kind: { case: "error", value: { code: "unknown_symbol", symbols: ["AAPL", "ZZZZ"] } } });
  s.push({ kind: { case: "subscribed", value: { symbols: [], channels: [] } } });
  timers.advance(1_000);
  const again = s.subscribes().slice(before);
  assert.deepEqual(again.map((x) => [x.channels, x.symbols]), [[["quotes"], ["AAPL"]]]);
  client.close();
});

test("several endpoints: a node lost under the client, it reconnects to another and resumes there", async () => {
  const a = "ws://a.test/v1/stream", b = "ws://b.test/v1/stream";
  const { client, factory, timers, events } = setup({ url: [a, b] });
  const prints: bigint[] = [];
  client.subscribe("trades", ["AAPL"], (t) => prints.push(t.tradeSeq));
  client.connect();
  await settle();
  let s = factory.last;
  assert.equal(s.url, a);
  s.accept();
  s.push({ kind: { case: "subscribed", value: { symbols: ["AAPL"], channels: ["trades"], resumeToken: "T1", protocolVersion: 2 } } });
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 1n)] } } });
  s.serverClose(1006); // node A killed
  assert.equal(client.endpoint, b);
  timers.advance(events.close?.[0]?.retryInMs ?? 0);
  await settle();
  s = factory.last;
  assert.equal(s.url, b);
  s.serverClose(1006); // B refuses this attempt (a 429 or 503 at the upgrade looks the same to a WebSocket)
  assert.equal(client.endpoint, a);
  assert.ok((events.close?.[1]?.retryInMs ?? 0) <= 200); // the second attempt's cap: 200 ms
  timers.advance(events.close?.[1]?.retryInMs ?? 0);
  await settle();
  assert.equal(factory.last.url, a);
  factory.last.serverClose(1006); // A is still dead
  timers.advance(events.close?.[2]?.retryInMs ?? 0);
  await settle();
  s = factory.last;
  assert.equal(s.url, b);
  s.accept();
  assert.deepEqual(s.subscribes()[0], { symbols: [], channels: [], resumeToken: "T1" }); // resume on B
  s.push({ kind: { case: "trades", value: { trades: [trade("AAPL", 2n)] } } });
  s.push({ kind: { case: "recovered", value: { symbol: "AAPL", verdict: "complete", epochChanged: true } } });
  assert.deepEqual(prints, [1n, 2n]);
  assert.deepEqual(events.open?.map((o) => o.url), [a, b]);
  assert.equal(events.gap, undefined);
  client.close();
});

test("an empty endpoint list is refused when the client is made", () => {
  assert.throws(() => new TickfanClient({ url: [] }), RangeError);
});
