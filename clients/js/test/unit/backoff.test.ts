import { test } from "node:test";
import assert from "node:assert/strict";
import { Backoff } from "../../src/backoff.js";

test("equal jitter: delays grow exponentially up to the cap, each within [cap/2, cap]", () => {
  const lows = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: "equal", random: () => 0 });
  const highs = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: "equal", random: () => 0.999999 });
  const low = Array.from({ length: 6 }, () => lows.next());
  const high = Array.from({ length: 6 }, () => Math.round(highs.next()));
  assert.deepEqual(low, [50, 100, 200, 400, 500, 500]);
  assert.deepEqual(high, [100, 200, 400, 800, 1000, 1000]);
});

test("full jitter (the default): each delay uniform in [0, cap], the cap doubling up to maxMs", () => {
  const lows = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0 });
  const highs = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0.999999 });
  const mids = new Backoff({ initialMs: 100, maxMs: 1_000, random: () => 0.5 });
  assert.deepEqual(Array.from({ length: 6 }, () => lows.next()), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from({ length: 6 }, () => Math.round(highs.next())), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual(Array.from({ length: 6 }, () => mids.next()), [50, 100, 200, 400, 500, 500]);
});

test("jitter spreads clients: many draws at one attempt are not all equal, and full jitter spreads wider", () => {
  const full = Array.from({ length: 200 }, () => new Backoff({ initialMs: 1_000 }).next());
  const equal = Array.from({ length: 200 }, () => new Backoff({ initialMs: 1_000, jitter: "equal" }).next());
  assert.ok(new Set(full).size > 190 && new Set(equal).size > 190);
  for (const d of full) assert.ok(d >= 0 && d <= 1_000);
  for (const d of equal) assert.ok(d >= 500 && d <= 1_000);
  assert.ok(full.filter((d) => d < 500).length > 50); // half the herd comes back in the first half of the window
  assert.throws(() => new Backoff({ jitter: "none" as "full" }), RangeError);
});

test("reset starts from the first delay again; bad settings are refused", () => {
  const b = new Backoff({ initialMs: 100, jitter: "equal", random: () => 0 });
  b.next();
  b.next();
  b.reset();
  assert.equal(b.next(), 50);
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
});
