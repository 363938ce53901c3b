// The stream's ordering promises, checked on the client (pure: messages in, anomalies out).
//   quotes/depth: per symbol, `seq` strictly increases (a jump is conflation, normal; a step back is a bug)
//   trades: per symbol, `trade_seq` is consecutive (a jump means prints were missed; a repeat, a duplicate)
//   bars: per symbol and interval, never back in time, except a "revised" bar of one already received
// Baselines of quotes, depth and bars live as long as one connection (a restarted node starts its feed session
// again); the trades baseline survives a reconnect, because resume continues it.

export type Anomaly =
  | { kind: "seq_regression"; channel: "quotes" | "depth"; symbol: string; previous: bigint; received: bigint }
  | { kind: "trade_seq_jump"; symbol: string; previous: bigint; received: bigint }
  | { kind: "trade_seq_regression"; symbol: string; previous: bigint; received: bigint }
  | { kind: "bar_back_in_time"; symbol: string; interval: string; previousStartNs: bigint; receivedStartNs: bigint };

/** Per symbol, a strictly increasing version (Quote.seq, Depth.seq). */
export class SeqCheck {
  private readonly last = new Map<string, bigint>();

  constructor(private readonly channel: "quotes" | "depth") {}

  /** An anomaly, or null; the newest seq is kept either way, so one regression is reported once. */
  see(symbol: string, seq: bigint): Anomaly | null {
    const previous = this.last.get(symbol);
    this.last.set(symbol, seq);
    if (previous !== undefined && seq <= previous) {
      return { kind: "seq_regression", channel: this.channel, symbol, previous, received: seq };
    }
    return null;
  }

  forget(symbol?: string): void {
    if (symbol === undefined) this.last.clear();
    else this.last.delete(symbol);
  }
}

/** Per symbol, consecutive trade_seq. */
export class TradeSeqCheck {
  private readonly last = new Map<string, bigint>();

  see(symbol: string, tradeSeq: bigint): Anomaly | null {
    const previous = this.last.get(symbol);
    if (previous !== undefined && tradeSeq <= previous) {
      // a duplicate or a step back: keep the higher baseline, the prints after it are what counts
      return { kind: "trade_seq_regression", symbol, previous, received: tradeSeq };
    }
    this.last.set(symbol, tradeSeq);
    if (previous !== undefined && tradeSeq !== previous + 1n) {
      return { kind: "trade_seq_jump", symbol, previous, received: tradeSeq };
    }
    return null;
  }

  lastOf(symbol: string): bigint | undefined {
    return this.last.get(symbol);
  }

  forget(symbol?: string): void {
    if (symbol === undefined) this.last.clear();
    else this.last.delete(symbol);
  }
}

/** Per symbol and interval, the newest bar start received. */
export class BarOrderCheck {
  private readonly newest = new Map<string, bigint>();

  see(symbol: string, interval: string, startNs: bigint, state: string): Anomaly | null {
    const key = `${symbol}\u0000${interval}`;
    const previous = this.newest.get(key);
    if (previous !== undefined && startNs < previous && state !== "revised") {
      return { kind: "bar_back_in_time", symbol, interval, previousStartNs: previous, receivedStartNs: startNs };
    }
    if (previous === undefined || startNs > previous) this.newest.set(key, startNs);
    return null;
  }

  forget(): void {
    this.newest.clear();
  }
}
