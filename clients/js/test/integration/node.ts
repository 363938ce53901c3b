// A real node for the integration test: `tickfan demo` (with trading) from the repository's venv on free ports,
// its own redis-server, and ledger databases of its own; or an already running node named by TICKFAN_URL.
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// dist/test/integration -> clients/js -> the repository
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../..");

export async function freeTcpPort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export async function freeUdpPort(): Promise<number> {
  return new Promise((ok) => {
    const s = createSocket("udp4");
    s.bind(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => ok(port));
    });
  });
}

export async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An HS256 JWT as the node checks them (sub, iss, aud, iat, exp). */
export function mintToken(secret: string, sub: string, lifetimeS = 3600): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iss: "tickfan", aud: "tickfan", iat: now, exp: now + lifetimeS })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

async function exited(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return true;
  return new Promise((ok) => {
    const t = setTimeout(() => ok(false), ms);
    p.once("exit", () => {
      clearTimeout(t);
      ok(true);
    });
  });
}

async function stop(p: ChildProcess | null): Promise<void> {
  if (p === null || p.exitCode !== null || p.signalCode !== null) return;
  p.kill("SIGTERM");
  if (!(await exited(p, 20_000))) {
    p.kill("SIGKILL");
    await exited(p, 5_000);
  }
}

export interface Node {
  http: string;
  ws: string;
  /** the HS256 secret, when known (a node we started; else TICKFAN_JWT_SECRET) */
  secret: string | undefined;
  /** false for a node named by TICKFAN_URL: it cannot be restarted */
  ownProcess: boolean;
  restart(): Promise<void>;
  close(): Promise<void>;
}

const SYMBOLS = 50;

export async function startNode(): Promise<Node> {
  const external = process.env.TICKFAN_URL;
  if (external) {
    const http = external.replace(/\/+$/, "");
    const ws = process.env.TICKFAN_WS_URL ?? `ws://${new URL(http).hostname}:8765/v1/stream`;
    return { http, ws, secret: process.env.TICKFAN_JWT_SECRET, ownProcess: false, restart: async () => {}, close: async () => {} };
  }
  const python = process.env.TICKFAN_PYTHON ?? join(ROOT, ".venv/bin/python");
  if (!existsSync(python)) throw new Error(`no Python at ${python}: run \`make test\` (or set TICKFAN_PYTHON, or TICKFAN_URL)`);
  const ports = {
    http: await freeTcpPort(), ws: await freeTcpPort(), snapshot: await freeTcpPort(), mm: await freeTcpPort(),
    redis: await freeTcpPort(), feed: await freeUdpPort(), rewinder: await freeUdpPort(),
  };
  const redisDir = mkdtempSync(join(tmpdir(), "tickfan-sdk-redis-"));
  // a Redis of its own: execution streams on a shared one would be claimed by other runs' workers
  const redis = spawn("redis-server", ["--port", String(ports.redis), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", redisDir], { stdio: "ignore" });
  const prefix = process.env.TICKFAN_TEST_DB ?? "tickfan";
  const secret = randomBytes(32).toString("hex");
  const args = ["-m", "tickfan", "demo", "--http", `127.0.0.1:${ports.http}`, "--ws", `127.0.0.1:${ports.ws}`, "--quiet",
    "--feed", `127.0.0.1:${ports.feed}`, "--rewinder", `127.0.0.1:${ports.rewinder}`, "--snapshot", `127.0.0.1:${ports.snapshot}`,
    "--symbols", String(SYMBOLS), "--rate", "4000", "--luld-every", "0", "--status-every", "0",
    "--market-maker", `127.0.0.1:${ports.mm}`, "--trading-redis", `redis://127.0.0.1:${ports.redis}/0`,
    "--db", `postgresql://postgres@127.0.0.1:5432/${prefix}_sdkjs_0`, "--db", `postgresql://postgres@127.0.0.1:5432/${prefix}_sdkjs_1`];
  const env = { ...process.env, TICKFAN_JWT_SECRET: secret, PYTHONPATH: ROOT };
  let demo: ChildProcess | null = null;
  let stderr = "";
  const http = `http://127.0.0.1:${ports.http}`;

  const launch = async () => {
    stderr = "";
    const p = spawn(python, args, { cwd: ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    p.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    demo = p;
    await waitFor("the demo to serve its symbols", async () => {
      if (p.exitCode !== null) throw new Error(`tickfan demo exited ${p.exitCode}: ${stderr}`);
      try {
        const r = await fetch(`${http}/healthz`);
        const body = (await r.json()) as { symbols?: number };
        return (body.symbols ?? 0) >= SYMBOLS ? true : undefined;
      } catch {
        return undefined;
      }
    }, 150_000);
  };
  try {
    await launch();
  } catch (e) {
    await stop(demo);
    await stop(redis);
    throw e;
  }
  return {
    http, ws: `ws://127.0.0.1:${ports.ws}/v1/stream`, secret, ownProcess: true,
    restart: async () => {
      await stop(demo);
      await launch();
    },
    close: async () => {
      await stop(demo);
      await stop(redis);
    },
  };
}
