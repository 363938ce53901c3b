import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, RestClient } from "../../src/rest.js";

function fakeApi(status: number, body: unknown, headers: Record<string, string> = {}) {
  const seen: { url: string; init: RequestInit }[] = [];
  const f = (async (url: string, init: RequestInit) => {
    seen.push({ url, init });
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers });
  }) as typeof fetch;
  return { seen, f };
}

test("placeOrder sends the API's snake_case body with an idempotency key and the bearer token", async () => {
  const { seen, f } = fakeApi(201, { order_id: "o1", status: "accepted" });
  const rest = new RestClient({ baseUrl: "http://api.test/", token: async () => "JWT", fetch: f });
  const { order, created } = await rest.placeOrder({ symbol: "AAPL", side: "buy", qty: 10, type: "limit", limitPrice: "189.25", idempotencyKey: "k1" });
  assert.equal(order.order_id, "o1");
  assert.equal(created, true);
  assert.equal(seen[0]?.url, "http://api.test/v1/orders");
  assert.equal(new Headers(seen[0]?.init.headers).get("authorization"), "Bearer JWT");
  assert.deepEqual(JSON.parse(String(seen[0]?.init.body)), {
    symbol: "AAPL", side: "buy", qty: 10, type: "limit", time_in_force: "day", idempotency_key: "k1", limit_price: "189.25",
  });
  const again = await rest.placeOrder({ symbol: "AAPL", side: "buy", qty: 1, type: "market" });
  assert.match(String(JSON.parse(String(seen[1]?.init.body)).idempotency_key), /^[0-9a-f-]{36}$/);
  assert.equal(again.created, true);
});

test("placeOrder sends a stop's and a trailing stop's terms in the API's field names", async () => {
  const { seen, f } = fakeApi(201, { order_id: "s1", status: "pending_trigger", stop_price: "180.0000" });
  const rest = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: f });
  const { order } = await rest.placeOrder({ symbol: "AAPL", side: "sell", qty: 10, type: "stop_limit", stopPrice: "180", limitPrice: "179.5", idempotencyKey: "s1" });
  assert.equal(order.status, "pending_trigger");
  assert.deepEqual(JSON.parse(String(seen[0]?.init.body)), {
    symbol: "AAPL", side: "sell", qty: 10, type: "stop_limit", time_in_force: "day", idempotency_key: "s1",
    limit_price: "179.5", stop_price: "180",
  });
  await rest.placeOrder({ symbol: "AAPL", side: "sell", qty: 10, type: "trailing_stop", trailPercent: "1.5", idempotencyKey: "s2" });
  assert.equal(JSON.parse(String(seen[1]?.init.body)).trail_percent, "1.5");
});

test("a refusal is an ApiError with the API's code and message (and Retry-After)", async () => {
  const { f } = fakeApi(422, { error: { code: "insufficient_funds", message: "needs $1,892.50, has $10.00" } });
  const rest = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: f });
  await assert.rejects(rest.placeOrder({ symbol: "AAPL", side: "buy", qty: 10, type: "market" }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 422);
    assert.equal(e.code, "insufficient_funds");
    assert.equal(e.message, "needs $1,892.50, has $10.00");
    return true;
  });
  const limited = fakeApi(429, { error: { code: "rate_limited", message: "slow down" } }, { "retry-after": "2" });
  const r2 = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: limited.f });
  await assert.rejects(r2.portfolio(), (e: unknown) => e instanceof ApiError && e.code === "rate_limited" && e.retryAfter === 2);
  const html = fakeApi(502, "<html>bad gateway</html>");
  const r3 = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: html.f });
  await assert.rejects(r3.ledger(), (e: unknown) => e instanceof ApiError && e.code === "http_502");
  const down = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: (async () => { throw new TypeError("fetch failed"); }) as typeof fetch });
  await assert.rejects(down.getOrder("x"), (e: unknown) => e instanceof ApiError && e.status === 0 && e.code === "network_error");
});

test("list, cancel, ledger and ticket paths", async () => {
  const { seen, f } = fakeApi(202, { orders: [], entries: [], order_id: "o/1", ticket: "t" });
  const rest = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: f });
  await rest.listOrders({ status: "filled", limit: 5 });
  const { cancelled } = await rest.cancelOrder("o/1");
  await rest.ledger({ before: 10 });
  await rest.wsTicket();
  await rest.clock();
  await rest.calendar({ start: "2026-11-01", end: "2026-11-30" });
  assert.deepEqual(seen.map((s) => `${s.init.method} ${s.url}`), [
    "GET http://api.test/v1/orders?status=filled&limit=5",
    "DELETE http://api.test/v1/orders/o%2F1",
    "GET http://api.test/v1/ledger?before=10",
    "POST http://api.test/v1/ws-ticket",
    "GET http://api.test/v1/clock",
    "GET http://api.test/v1/calendar?start=2026-11-01&end=2026-11-30",
  ]);
  assert.equal(cancelled, false); // 202: requested, not yet cancelled
});

test("replaceOrder PATCHes only the given fields with an idempotency key", async () => {
  const { seen, f } = fakeApi(202, { order_id: "o/1", status: "routed", replaced_by: "n1" });
  const rest = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: f });
  const { order, repeated } = await rest.replaceOrder("o/1", { qty: "6", limitPrice: "181.00", idempotencyKey: "r-1" });
  assert.equal(order.replaced_by, "n1");
  assert.equal(repeated, false);
  assert.equal(`${seen[0]?.init.method} ${seen[0]?.url}`, "PATCH http://api.test/v1/orders/o%2F1");
  assert.deepEqual(JSON.parse(String(seen[0]?.init.body)), { idempotency_key: "r-1", qty: "6", limit_price: "181.00" });
  await rest.replaceOrder("o/1", { timeInForce: "gtc" });
  const second = JSON.parse(String(seen[1]?.init.body));
  assert.equal(second.time_in_force, "gtc");
  assert.match(String(second.idempotency_key), /^[0-9a-f-]{36}$/);
  const again = new RestClient({ baseUrl: "http://api.test", token: () => "JWT", fetch: fakeApi(200, { order_id: "o1" }).f });
  assert.equal((await again.replaceOrder("o1", { limitPrice: "1" })).repeated, true);
});
