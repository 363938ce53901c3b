// Conflation tiers in the SDK: the `maxRateHz` option rides the first Subscribe of every connection, `setMaxRate`
// changes it, and the tier the node reports (Subscribed, Heartbeat) is `client.tier` and a `tier` event.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TickfanClient, checkMaxRate, type ClientOptions, type TierInfo } from "../../src/client.js";
import { FakeFactory, FakeTimers, settle } from "./fakes.js";

function setup(options: Partial<ClientOptions> = {}) {
  const factory = new FakeFactory();
  const timers = new FakeTimers();
  const client = new TickfanClient({
    url: "ws://node.test/v1/stream", socketFactory: factory, timers,
    backoff: { initialMs: 100, maxMs: 1_000, random: () => 0.5 }, ...options,
  });
  const tiers: TierInfo[] = [];
  client.on("tier", (t) => tiers.push(t));
  return { client, factory, timers, tiers };
}

function rates(factory: FakeFactory, i: number): (number | undefined)[] {
  return factory.sockets[i]!.sent.flatMap((m) => (m.kind.case === "subscribe" ? [m.kind.value.maxRateHz] : []));
}

test("maxRateHz rides the first Subscribe of each connection, the resume included", async () => {
  const { client, factory, timers } = setup({ maxRateHz: 2 });
  client.subscribe("quotes", ["AAPL"], () => {});
  client.subscribe("depth", ["AAPL"], () => {});
  client.connect();
  await settle();
  factory.last.accept();
  assert.deepEqual(rates(factory, 0), [2, undefined]); // once: a later Subscribe leaves the cap as it is
  factory.last.push({ kind: { case: "subscribed", value: { resumeToken: "T1", tier: 1, maxRateHz: 2 } } });
  client.reconnectNow();
  timers.advance(0);
  await settle();
  factory.last.accept();
  const first = factory.last.subscribes()[0]!;
  assert.equal(first.resumeToken, "T1");
  assert.deepEqual(rates(factory, 1), [2, undefined, undefined]); // the resume carries it, then each channel
  client.close();
});

test("a cap with nothing subscribed is sent alone; no cap sends none", async () => {
  const capped = setup({ maxRateHz: 0.5 });
  capped.client.connect();
  await settle();
  capped.factory.last.accept();
  assert.deepEqual(rates(capped.factory, 0), [0.5]);
  capped.client.close();
  const free = setup();
  free.client.subscribe("quotes", ["AAPL"], () => {});
  free.client.connect();
  await settle();
  free.factory.last.accept();
  assert.deepEqual(rates(free.factory, 0), [undefined]);
  free.client.close();
});

test("the tier from Subscribed and heartbeats is client.tier, and a tier event when it changes", async () => {
  const { client, factory, tiers } = setup({ format: "json" });
  client.subscribe("quotes", ["AAPL"], () => {});
  client.connect();
  await settle();
  const s = factory.last;
  s.accept();
  assert.deepEqual(client.tier, { tier: 0, maxRateHz: 0 });
  s.push({ kind: { case: "subscribed", value: { symbols: ["AAPL"], channels: ["quotes"] } } });
  assert.deepEqual(tiers, []); // unchanged: no event
  s.push({ kind: { case: "heartbeat", value: { tier: 2, maxRateHz: 1 } } }); // moved down for falling behind
  s.push({ kind: { case: "heartbeat", value: { tier: 2, maxRateHz: 1 } } });
  s.push({ kind: { case: "heartbeat", value: { tier: 1, maxRateHz: 4 } } }); // and back up
  assert.deepEqual(tiers, [{ tier: 2, maxRateHz: 1 }, { tier: 1, maxRateHz: 4 }]);
  assert.deepEqual(client.tier, { tier: 1, maxRateHz: 4 });
  client.close();
});

test("setMaxRate sends the cap now and keeps it for reconnects; bad caps throw before anything is sent", async () => {
  const { client, factory, timers } = setup();
  client.subscribe("quotes", ["AAPL"], () => {});
  client.connect();
  await settle();
  factory.last.accept();
  client.setMaxRate(4);
  assert.deepEqual(rates(factory, 0), [undefined, 4]);
  for (const bad of [-1, 0.05, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => client.setMaxRate(bad), RangeError);
    assert.throws(() => new TickfanClient({ url: "ws://x/v1/stream", maxRateHz: bad }), RangeError);
  }
  assert.equal(factory.last.sent.length, 2);
  client.reconnectNow();
  timers.advance(0);
  await settle();
  factory.last.accept();
  assert.deepEqual(rates(factory, 1), [4]);
  client.setMaxRate(0); // lifted
  assert.deepEqual(rates(factory, 1), [4, 0]);
  assert.equal(checkMaxRate(0.1), 0.1);
  client.close();
});
