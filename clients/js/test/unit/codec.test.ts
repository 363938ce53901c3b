import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { clientMessage, decodeServer, DecodeError, encodeClient } from "../../src/codec.js";
import { ServerMessageSchema } from "../../src/gen/stream_pb.js";

test("a client message in JSON is protobuf's canonical mapping, as the node's JSON mode parses it", () => {
  const m = clientMessage({ kind: { case: "subscribe", value: { symbols: ["AAPL"], channels: ["bars:1m"], resumeToken: "AQ" } } });
  assert.deepEqual(JSON.parse(encodeClient(m, "json") as string),
    { subscribe: { symbols: ["AAPL"], channels: ["bars:1m"], resumeToken: "AQ" } });
  const ping = clientMessage({ kind: { case: "ping", value: { nonce: 7n } } });
  assert.deepEqual(JSON.parse(encodeClient(ping, "json") as string), { ping: { nonce: "7" } }); // uint64: a string
});

test("the README's JSON frames decode, int64 as bigint, unknown fields of a newer server ignored", () => {
  const m = decodeServer(JSON.stringify({
    recovered: { symbol: "TSLA", verdict: "partial", missingFromTradeSeq: "88", missingToTradeSeq: "140",
      epochChanged: true, reason: "older than the trade history kept", someFutureField: 1 },
  }));
  assert.equal(m.kind.case, "recovered");
  if (m.kind.case !== "recovered") return;
  assert.equal(m.kind.value.missingFromTradeSeq, 88n);
  assert.equal(m.kind.value.missingToTradeSeq, 140n);
  // the parser takes proto field names too, as the node's does
  const q = decodeServer('{"quotes": {"quotes": [{"symbol": "AAPL", "seq": "812", "bid_price": "1892500"}]}}');
  assert.equal(q.kind.case === "quotes" && q.kind.value.quotes[0]?.bidPrice, 1892500n);
});

test("binary frames decode from an ArrayBuffer, a view and a list of chunks (ws fragments)", () => {
  const bytes = toBinary(ServerMessageSchema, create(ServerMessageSchema, {
    kind: { case: "heartbeat", value: { serverTimeNs: 1795703400000000000n, resumeToken: "AQx" } },
  }));
  for (const data of [bytes.slice().buffer, bytes, [bytes.subarray(0, 3), bytes.subarray(3)]]) {
    const m = decodeServer(data);
    assert.equal(m.kind.case === "heartbeat" && m.kind.value.resumeToken, "AQx");
  }
});

test("an undecodable frame is a DecodeError, not a crash", () => {
  assert.throws(() => decodeServer(new Uint8Array([0xff, 0xff, 0xff])), DecodeError);
  assert.throws(() => decodeServer("{not json"), DecodeError);
});
