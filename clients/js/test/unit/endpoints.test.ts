import { test } from "node:test";
import assert from "node:assert/strict";
import { Endpoints } from "../../src/endpoints.js";

test("one endpoint: failover stays on it", () => {
  const e = new Endpoints("ws://a.test/v1/stream");
  assert.equal(e.failover(), "ws://a.test/v1/stream");
  assert.deepEqual(e.urls, ["ws://a.test/v1/stream"]);
});

test("two endpoints: each failover goes to the other", () => {
  const e = new Endpoints(["ws://a.test/s", "ws://b.test/s"], () => 0.99);
  assert.equal(e.current, "ws://a.test/s");
  assert.deepEqual([e.failover(), e.failover(), e.failover()], ["ws://b.test/s", "ws://a.test/s", "ws://b.test/s"]);
});

test("many endpoints: a failover never stays put, and a herd spreads over all the others", () => {
  const urls = ["ws://a.test/s", "ws://b.test/s", "ws://c.test/s", "ws://d.test/s"];
  const landed = new Map<string, number>();
  for (let i = 0; i < 3_000; i++) {
    const e = new Endpoints(urls); // every client of node a, with the same list
    const next = e.failover();
    assert.notEqual(next, "ws://a.test/s");
    landed.set(next, (landed.get(next) ?? 0) + 1);
  }
  assert.equal(landed.size, 3);
  for (const n of landed.values()) assert.ok(n > 800, `uneven: ${[...landed.values()]}`);
});

test("no endpoint, or a malformed one, is refused at construction", () => {
  assert.throws(() => new Endpoints([]), RangeError);
  assert.throws(() => new Endpoints(["ws://a.test/s", "not a url"]), TypeError);
});
