// Endpoint failover against real processes: a publisher (`tickfan demo --redis`, its own redis-server) and two
// edges (`tickfan node --from-redis`) sharing TICKFAN_RESUME_SECRET. A client given both edges' URLs is on A;
// A is SIGKILLed; the client reconnects to B by itself, resumes with complete verdicts and no gap, and prints
// continue with consecutive trade_seq. Skipped against an external node (TICKFAN_URL): it needs its own processes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TickfanClient, type ClientEvents } from "../../src/index.js";
import { ROOT, freeTcpPort, freeUdpPort, waitFor } from "./node.js";

const SYMBOLS = 50;
const WATCHED = ["TSLA", "NVDA"];
const external = Boolean(process.env.TICKFAN_URL);

async function healthy(http: string, p: ChildProcess, log: () => string): Promise<void> {
  await waitFor(`${http} serving its symbols`, async () => {
    if (p.exitCode !== null) throw new Error(`exited ${p.exitCode}: ${log()}`);
    try {
      const body = (await (await fetch(`${http}/healthz`)).json()) as { symbols?: number };
      return (body.symbols ?? 0) >= SYMBOLS ? true : undefined;
    } catch {
      return undefined;
    }
  }, 150_000);
}

describe("endpoint failover between two edges of one publisher", { skip: external, timeout: 300_000 }, () => {
  const procs: ChildProcess[] = [];
  const edges: { ws: string; proc: ChildProcess }[] = [];

  before(async () => {
    const python = process.env.TICKFAN_PYTHON ?? join(ROOT, ".venv/bin/python");
    if (!existsSync(python)) throw new Error(`no Python at ${python}: set TICKFAN_PYTHON`);
    const redisPort = await freeTcpPort();
    const redisUrl = `redis://127.0.0.1:${redisPort}/0`;
    procs.push(spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--dir", mkdtempSync(join(tmpdir(), "tickfan-sdk-failover-"))], { stdio: "ignore" }));
    const env = { ...process.env, PYTHONPATH: ROOT, TICKFAN_JWT_SECRET: randomBytes(32).toString("hex"),
                  TICKFAN_RESUME_SECRET: randomBytes(16).toString("hex") };
    const run = async (args: string[]) => {
      const http = await freeTcpPort();
      const ws = await freeTcpPort();
      let stderr = "";
      const p = spawn(python, ["-m", "tickfan", ...args, "--http", `127.0.0.1:${http}`, "--ws", `127.0.0.1:${ws}`, "--quiet"],
        { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
      p.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      procs.push(p);
      await healthy(`http://127.0.0.1:${http}`, p, () => stderr);
      return { ws: `ws://127.0.0.1:${ws}/v1/stream`, proc: p };
    };
    await run(["demo", "--redis", redisUrl, "--no-trading", "--symbols", String(SYMBOLS), "--rate", "2000",
      "--feed", `127.0.0.1:${await freeUdpPort()}`, "--no-rewinder", "--luld-every", "0", "--status-every", "0"]);
    for (let i = 0; i < 2; i++) edges.push(await run(["node", "--from-redis", redisUrl]));
  });

  after(async () => {
    for (const p of procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill("SIGTERM");
        await new Promise((ok) => { const t = setTimeout(() => { p.kill("SIGKILL"); ok(null); }, 20_000); p.once("exit", () => { clearTimeout(t); ok(null); }); });
      }
    }
  });

  test("the node under the client is killed: it reconnects to the other, resumes completely, prints continue", async () => {
    const [a, b] = edges as [{ ws: string; proc: ChildProcess }, { ws: string; proc: ChildProcess }];
    const client = new TickfanClient({ url: [a.ws, b.ws], backoff: { initialMs: 200, maxMs: 2_000 } });
    const seen: { open: ClientEvents["open"][]; recovered: ClientEvents["recovered"][]; gap: ClientEvents["gap"][]; anomaly: ClientEvents["anomaly"][] } =
      { open: [], recovered: [], gap: [], anomaly: [] };
    client.on("open", (e) => seen.open.push(e));
    client.on("recovered", (e) => seen.recovered.push(e));
    client.on("gap", (e) => seen.gap.push(e));
    client.on("anomaly", (e) => seen.anomaly.push(e));
    const prints = new Map<string, bigint[]>(WATCHED.map((s) => [s, []]));
    let snapshots = 0;
    client.subscribe("trades", WATCHED, (t) => prints.get(t.symbol)?.push(t.tradeSeq));
    client.subscribe("quotes", WATCHED, (_, info) => { if (info.snapshot) snapshots++; });
    client.connect();
    try {
      let heartbeats = 0;
      client.on("heartbeat", () => heartbeats++);
      await waitFor("prints on A, then a heartbeat's token", () =>
        WATCHED.every((s) => (prints.get(s)?.length ?? 0) > 2) && heartbeats > 0 || undefined);
      assert.equal(seen.open[0]?.url, a.ws);
      a.proc.kill("SIGKILL");
      await waitFor("a verdict per trades symbol from B", () => seen.recovered.length >= WATCHED.length || undefined, 60_000);
      assert.equal(seen.open.at(-1)?.url, b.ws);
      assert.deepEqual(seen.recovered.map((r) => [r.symbol, r.verdict, r.epochChanged]).sort(),
        [...WATCHED].sort().map((s) => [s, "complete", true]));
      const counts = WATCHED.map((s) => prints.get(s)?.length ?? 0);
      await waitFor("live prints on B", () => WATCHED.every((s, i) => (prints.get(s)?.length ?? 0) > (counts[i] ?? 0) + 2) || undefined);
      for (const s of WATCHED) {
        const seqs = prints.get(s) ?? [];
        seqs.forEach((n, i) => assert.equal(n, (seqs[0] ?? 0n) + BigInt(i), `${s}: trade_seq ${seqs.join(",")}`));
      }
      assert.ok(snapshots >= 2 * WATCHED.length, "quote snapshots from A and again from B");
      assert.deepEqual(seen.gap, []);
      assert.deepEqual(seen.anomaly, []);
    } finally {
      client.close();
    }
  });
});
