import { test } from "node:test";
import assert from "node:assert/strict";
import { BarOrderCheck, SeqCheck, TradeSeqCheck } from "../../src/checks.js";

test("seq: jumps are conflation (fine), a repeat or step back is a regression, per symbol", () => {
  const c = new SeqCheck("quotes");
  assert.equal(c.see("AAPL", 5n), null);
  assert.equal(c.see("AAPL", 9n), null);
  assert.equal(c.see("TSLA", 1n), null);
  assert.deepEqual(c.see("AAPL", 9n), { kind: "seq_regression", channel: "quotes", symbol: "AAPL", previous: 9n, received: 9n });
  assert.equal(c.see("AAPL", 10n), null);
  c.forget();
  assert.equal(c.see("AAPL", 1n), null); // a new connection: a restarted node counts again
});

test("trade_seq: consecutive; a jump names the missed range, a repeat is a regression", () => {
  const c = new TradeSeqCheck();
  assert.equal(c.see("AAPL", 1n), null);
  assert.equal(c.see("AAPL", 2n), null);
  assert.deepEqual(c.see("AAPL", 5n), { kind: "trade_seq_jump", symbol: "AAPL", previous: 2n, received: 5n });
  assert.deepEqual(c.see("AAPL", 5n), { kind: "trade_seq_regression", symbol: "AAPL", previous: 5n, received: 5n });
  assert.equal(c.see("AAPL", 6n), null);
  assert.equal(c.lastOf("AAPL"), 6n);
});

test("bars: never back in time per symbol and interval, except a revised bar", () => {
  const c = new BarOrderCheck();
  assert.equal(c.see("AAPL", "1m", 120n, "update"), null);
  assert.equal(c.see("AAPL", "1m", 120n, "final"), null);
  assert.equal(c.see("AAPL", "1s", 60n, "final"), null); // another interval
  assert.equal(c.see("AAPL", "1m", 60n, "revised"), null);
  assert.deepEqual(c.see("AAPL", "1m", 60n, "final"),
    { kind: "bar_back_in_time", symbol: "AAPL", interval: "1m", previousStartNs: 120n, receivedStartNs: 60n });
});
