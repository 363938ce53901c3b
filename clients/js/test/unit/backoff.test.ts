import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff } from "../../src/backoff.js";

test("delays grow exponentially up to the cap, each jittered within [cap/2, cap]", () => {
  const lows = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0 });
  const highs = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0.999999 });
  const low = Array.from({ length: 6 }, () => lows.next());
  const high = Array.from({ length: 6 }, () => Math.round(highs.next()));
  assert.deepEqual(low, [50, 100, 200, 400, 500, 500]);
  assert.deepEqual(high, [100, 200, 400, 800, 1000, 1000]);
});

test("jitter spreads clients: many draws at one attempt are not all equal", () => {
  const draws = new Set(Array.from({ length: 50 }, () => new Backoff({ initialMs: 1_000 }).next()));
  assert.ok(draws.size > 40);
  for (const d of draws) assert.ok(d >= 500 && d <= 1_000);
});

test("reset starts from the first delay again; bad settings are refused", () => {
  const b = new Backoff({ initialMs: 100, random: () => 0 });
  b.next();
  b.next();
  b.reset();
  assert.equal(b.next(), 50);
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
});
