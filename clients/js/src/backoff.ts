// Reconnect delays: exponential, jittered so the many clients one dead node drops do not come back in lockstep.
//
// "full" jitter (the default) draws the whole delay uniformly in [0, cap]: of the usual schemes it spreads a
// herd the widest for the same cap, so the surviving nodes see the fewest connections at once and the herd is
// back soonest (measured: benchmarks/bench_reconnect_storm.py, README "When a fan-out node dies"). It cannot
// spin: the cap doubles with each failed attempt. "equal" jitter keeps half the cap fixed: [cap/2, cap].

export interface BackoffOptions {
  /** first delay's cap, ms (default 250) */
  initialMs?: number;
  /** largest delay, ms (default 30,000) */
  maxMs?: number;
  /** growth per failed attempt (default 2) */
  factor?: number;
  /** "full" (default): uniform in [0, cap]; "equal": uniform in [cap/2, cap] */
  jitter?: "full" | "equal";
  /** a uniform number in [0, 1); Math.random by default (tests pass their own) */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: "full" | "equal";
  readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? "full";
    this.random = options.random ?? Math.random;
    if (!(this.initialMs > 0 && this.maxMs >= this.initialMs && this.factor >= 1)) {
      throw new RangeError("backoff: need 0 < initialMs <= maxMs and factor >= 1");
    }
    if (this.jitter !== "full" && this.jitter !== "equal") throw new RangeError('backoff: jitter is "full" or "equal"');
  }

  /** The cap of the next delay, before jitter. */
  get ceiling(): number {
    return Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
  }

  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt: in [0, ceiling] (full jitter) or [ceiling/2, ceiling] (equal). */
  next(): number {
    const cap = this.ceiling;
    this.attempt += 1;
    return this.jitter === "full" ? this.random() * cap : cap / 2 + this.random() * (cap / 2);
  }

  /** A connection that worked: start from the first delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
