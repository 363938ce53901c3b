// Reconnect delays: exponential with "equal jitter" (half the exponential cap plus a uniform draw of the other
// half), so a retry never spins at 0 ms and many
// clients dropped by one node restart do not come back in lockstep.

export interface BackoffOptions {
  /** first delay's cap, ms (default 250) */
  initialMs?: number;
  /** largest delay, ms (default 30,000) */
  maxMs?: number;
  /** growth per failed attempt (default 2) */
  factor?: number;
  /** a uniform number in [0, 1); Math.random by default (tests pass their own) */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
    if (!(this.initialMs > 0 && this.maxMs >= this.initialMs && this.factor >= 1)) {
      throw new RangeError("backoff: need 0 < initialMs <= maxMs and factor >= 1");
    }
  }

  /** The cap of the next delay, before jitter. */
  get ceiling(): number {
    return Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
  }

  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt, in [ceiling/2, ceiling]: half fixed so a retry never spins. */
  next(): number {
    const cap = this.ceiling;
    this.attempt += 1;
    return cap / 2 + this.random() * (cap / 2);
  }

  /** A connection that worked: start from the first delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
