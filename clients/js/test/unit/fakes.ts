// A fake WebSocket the tests drive as the server, and a fake clock.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { decodeServer, encodeServer, type Format } from "../../src/codec.js";
import { ClientMessageSchema, ServerMessageSchema, type ClientMessage } from "../../src/gen/stream_pb.js";
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import type { SocketFactory, SocketLike, Timers } from "../../src/transport.js";

export class FakeTimers implements Timers {
  private t = 1_000_000;
  private seq = 0;
  private pending = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Moves the clock, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.pending) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.pending.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }

  /** Delays of the timers now pending (from now). */
  delays(): number[] {
    return [...this.pending.values()].map((e) => e.at - this.t);
  }
}

export class FakeSocket implements SocketLike {
  binaryType = "blob";
  readyState = 0;
  sent: ClientMessage[] = [];
  closed: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(readonly url: string, readonly headers: Record<string, string>, readonly format: Format) {}

  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(typeof data === "string" ? fromJsonString(ClientMessageSchema, data) : fromBinary(ClientMessageSchema, data));
  }

  close(code?: number, reason?: string): void {
    this.closed = { code, reason };
    this.readyState = 3;
  }

  // ---- the server's side
  accept(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  push(init: MessageInitShape<typeof ServerMessageSchema>): void {
    const m = create(ServerMessageSchema, init);
    const frame = encodeServer(m, this.format);
    decodeServer(frame); // what is pushed must be a valid frame
    this.onmessage?.({ data: typeof frame === "string" ? frame : frame.slice().buffer });
  }

  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  subscribes(): { symbols: string[]; channels: string[]; resumeToken: string }[] {
    return this.sent.flatMap((m) => {
      if (m.kind.case !== "subscribe") return [];
      const { symbols, channels, resumeToken } = m.kind.value;
      return [{ symbols, channels, resumeToken }];
    });
  }
}

export class FakeFactory implements SocketFactory {
  sockets: FakeSocket[] = [];
  constructor(readonly sendsHeaders = true, readonly format: Format = "binary") {}

  open(url: string, headers: Record<string, string>): FakeSocket {
    const s = new FakeSocket(url, headers, url.includes("format=json") ? "json" : "binary");
    this.sockets.push(s);
    return s;
  }

  get last(): FakeSocket {
    const s = this.sockets.at(-1);
    if (s === undefined) throw new Error("no socket opened");
    return s;
  }
}

/** Lets pending promise callbacks (the client's async connect) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}

export function clientKinds(s: FakeSocket): string[] {
  return s.sent.map((m) => m.kind.case ?? "");
}

export { create, ClientMessageSchema };
