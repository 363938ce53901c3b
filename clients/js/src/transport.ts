// The WebSocket the client drives, and the timers it uses: both injectable, so tests play the server and the
// clock, and the one client runs in browsers (the global WebSocket) and in Node (the `ws` package).
//
// Why `ws` in Node: Node 20 has no global WebSocket without `--experimental-websocket` (it is unflagged from
// Node 22), and the standard WebSocket API cannot send an `Authorization` header, which is how a Node client
// authenticates without putting a token in a URL. `ws` is the reference Node implementation, has no
// dependencies, and takes headers.

/** The subset of the WHATWG WebSocket the client uses (`ws` implements it too). */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface SocketFactory {
  /** Opens a socket; `headers` are sent on the upgrade when `sendsHeaders` (never in a browser). */
  open(url: string, headers: Record<string, string>): SocketLike;
  /** True when the upgrade can carry an Authorization header; else the client fetches a ticket. */
  readonly sendsHeaders: boolean;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
  now: () => Date.now(),
};

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}

/** `ws` in Node (headers allowed), else the browser's global WebSocket (tickets instead of headers). */
export async function defaultSocketFactory(): Promise<SocketFactory> {
  if (isNode()) {
    const { WebSocket: NodeWebSocket } = await import("ws");
    return {
      sendsHeaders: true,
      open: (url, headers) => new NodeWebSocket(url, { headers }) as unknown as SocketLike,
    };
  }
  const Global = (globalThis as { WebSocket?: new (url: string) => unknown }).WebSocket;
  if (Global === undefined) throw new Error("no WebSocket implementation: pass `socketFactory`");
  return { sendsHeaders: false, open: (url) => new Global(url) as SocketLike };
}
