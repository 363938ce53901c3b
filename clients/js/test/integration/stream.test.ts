// The SDK against a real node (see node.ts): market data in both formats, an order placed over REST and filled
// on the orders channel, and reconnects: a dropped socket resumes completely; a restarted node (a new feed
// session) is surfaced as a not_recoverable gap, and the data flows again.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, RestClient, TickfanClient, type ClientEvents } from "../../src/index.js";
import { mintToken, startNode, waitFor, type Node } from "./node.js";

const SYMBOLS = ["AAPL", "TSLA", "NVDA"];

function record(client: TickfanClient) {
  const seen: { [K in keyof ClientEvents]: ClientEvents[K][] } = {
    state: [], open: [], close: [], subscribed: [], recovered: [], gap: [], anomaly: [], error: [], heartbeat: [],
    refreshed: [], revoked: [], tier: [],
  };
  for (const k of Object.keys(seen) as (keyof ClientEvents)[]) client.on(k, (e) => (seen[k] as unknown[]).push(e));
  return seen;
}

describe("against a running node", { timeout: 300_000 }, () => {
  let node: Node;
  before(async () => {
    node = await startNode();
  });
  after(async () => {
    await node?.close();
  });

  test("quotes, trades, bars:1s and status arrive typed, in order, in binary and JSON", async () => {
    for (const format of ["binary", "json"] as const) {
      const client = new TickfanClient({ url: node.ws, format });
      const seen = record(client);
      const got = { snapshot: 0, quotes: 0, trades: 0, bars: 0, status: 0 };
      client.subscribe("quotes", SYMBOLS, (q, info) => {
        assert.ok(SYMBOLS.includes(q.symbol));
        assert.equal(typeof q.seq, "bigint");
        if (info.snapshot) got.snapshot++;
        else got.quotes++;
      });
      client.subscribe("trades", SYMBOLS, (t) => {
        assert.ok(t.tradeSeq > 0n && t.printable);
        got.trades++;
      });
      client.subscribe("bars:1s", SYMBOLS, (b) => {
        assert.equal(b.interval, "1s");
        got.bars++;
      });
      client.subscribe("status", SYMBOLS, (s) => {
        if (s.snapshot) assert.equal(s.market?.marketOpen, true);
        got.status++;
      });
      client.connect();
      try {
        await waitFor(`${format}: every channel`, () => got.snapshot && got.quotes && got.trades && got.bars && got.status ? true : undefined);
        const ack = seen.subscribed.at(-1);
        assert.equal(ack?.protocolVersion, 2);
        assert.ok(client.lastResumeToken.length > 0);
        assert.deepEqual(seen.anomaly, []);
        assert.deepEqual(seen.error, []);
      } finally {
        client.close();
      }
    }
  });

  test("a client capped at 2 Hz is told its tier and gets a symbol's quotes at most every 500 ms", async () => {
    const client = new TickfanClient({ url: node.ws, maxRateHz: 2 });
    const seen = record(client);
    const sent = new Map<string, bigint[]>();
    client.subscribe("quotes", SYMBOLS, (q, info) => {
      if (info.snapshot) return;
      const times = sent.get(q.symbol) ?? [];
      if (times.at(-1) !== info.sendTimeNs) times.push(info.sendTimeNs);
      sent.set(q.symbol, times);
    });
    client.connect();
    try {
      await waitFor("four paced batches", () => [...sent.values()].some((t) => t.length >= 4) || undefined);
      assert.deepEqual(client.tier, { tier: 1, maxRateHz: 2 });
      assert.equal(seen.subscribed.at(-1)?.maxRateHz, 2);
      for (const times of sent.values()) {
        for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 500_000_000n, `${times}`);
      }
    } finally {
      client.close();
    }
  });

  test("an order placed over REST is seen filled on the orders channel; a refusal carries the API's code", async (t) => {
    if (node.secret === undefined) {
      t.skip("TICKFAN_JWT_SECRET not given for the external node");
      return;
    }
    const secret = node.secret;
    const token = () => mintToken(secret, "alice");
    const rest = new RestClient({ baseUrl: node.http, token });
    const client = new TickfanClient({ url: node.ws, token });
    const seen = record(client);
    const updates = new Map<string, string[]>();
    client.subscribe("orders", [], (u) => updates.set(u.orderId, [...(updates.get(u.orderId) ?? []), u.status]));
    client.connect();
    try {
      await waitFor("the orders subscription", () => seen.subscribed.some((s) => s.channels.includes("orders")) || undefined);
      const quotes = (await (await fetch(`${node.http}/v1/quotes?symbols=${SYMBOLS.join(",")}`)).json()) as
        { quotes: { symbol: string; halted: boolean; stale: boolean }[] };
      const symbol = quotes.quotes.find((q) => !q.halted && !q.stale)?.symbol;
      assert.ok(symbol, "a tradable symbol");
      const { order, created } = await rest.placeOrder({ symbol, side: "buy", qty: 1, type: "market" });
      assert.equal(created, true);
      const again = await rest.placeOrder({ symbol, side: "buy", qty: 1, type: "market", idempotencyKey: order.idempotency_key });
      assert.equal(again.created, false); // the same key: the first order, not a second one
      assert.equal(again.order.order_id, order.order_id);
      await waitFor("the fill on the orders channel", () => updates.get(order.order_id)?.includes("filled") || undefined, 60_000);
      assert.equal(updates.get(order.order_id)?.[0], "accepted");
      assert.equal((await rest.getOrder(order.order_id)).status, "filled");
      assert.ok((await rest.listOrders({ limit: 10 })).some((o) => o.order_id === order.order_id));
      assert.ok((await rest.portfolio()).holdings.some((h) => h.symbol === symbol));
      assert.ok((await rest.ledger({ limit: 5 })).length > 0);
      await assert.rejects(rest.placeOrder({ symbol, side: "buy", qty: 0, type: "market" }),
        (e: unknown) => { assert.ok(e instanceof ApiError); assert.equal(e.code, "invalid_quantity"); assert.equal(e.status, 422); return e.message.length > 0; });
      await assert.rejects(new RestClient({ baseUrl: node.http, token: () => "not.a.jwt" }).portfolio(),
        (e: unknown) => e instanceof ApiError && e.status === 401);
      // a browser-style connection: a ticket from the API, not the token, in the URL
      const viaTicket = new TickfanClient({ url: node.ws, token, auth: "ticket", apiUrl: node.http });
      const ticketSeen = record(viaTicket);
      viaTicket.subscribe("orders", [], () => {});
      viaTicket.connect();
      await waitFor("orders over a ticket", () => ticketSeen.subscribed.some((s) => s.channels.includes("orders")) || undefined);
      assert.deepEqual(ticketSeen.error, []);
      viaTicket.close();
    } finally {
      client.close();
    }
  });

  test("a dropped socket reconnects and resumes: complete verdicts, no gap; a restarted node: a gap, then data again", async (t) => {
    const client = new TickfanClient({ url: node.ws, backoff: { initialMs: 200, maxMs: 2_000 } });
    const seen = record(client);
    let quotes = 0;
    let trades = 0;
    client.subscribe("quotes", SYMBOLS, () => quotes++);
    client.subscribe("trades", SYMBOLS, () => trades++);
    client.connect();
    try {
      await waitFor("trades and a resume token", () => trades > 0 && client.lastResumeToken !== "" || undefined);
      client.reconnectNow("test: drop the socket");
      await waitFor("a verdict per trades symbol", () => seen.recovered.length >= SYMBOLS.length || undefined);
      assert.deepEqual(seen.recovered.map((r) => [r.symbol, r.verdict]).sort(), [...SYMBOLS].sort().map((s) => [s, "complete"]));
      assert.equal(seen.gap.length, 0, JSON.stringify(seen.gap, (_, v) => typeof v === "bigint" ? String(v) : v));
      assert.deepEqual(seen.anomaly, []);
      const before = trades;
      await waitFor("trades after the resume", () => trades > before || undefined);

      if (!node.ownProcess) {
        t.diagnostic("external node: not restarted");
        return;
      }
      await node.restart();
      await waitFor("the reconnect to the restarted node", () => seen.open.filter((o) => o.reconnect).length >= 2 || undefined, 60_000);
      await waitFor("a gap event", () => seen.gap.length > 0 || undefined);
      assert.ok(seen.gap.every((g) => g.reason === "not_recoverable"), JSON.stringify(seen.gap, (_, v) => typeof v === "bigint" ? String(v) : v));
      assert.ok(seen.recovered.slice(SYMBOLS.length).some((r) => r.verdict === "not_recoverable"));
      const q = quotes;
      const tr = trades;
      await waitFor("quotes and trades from the new node", () => quotes > q && trades > tr || undefined).catch((e) => { throw new Error(`${e}: ${JSON.stringify(seen.error)} ${quotes} ${trades}`); });
      assert.deepEqual(seen.anomaly, []);
    } finally {
      client.close();
    }
  });
});
