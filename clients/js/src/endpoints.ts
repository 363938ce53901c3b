// The nodes a client may connect to, and which one the next attempt goes to.
//
// Every node behind one service serves the same books and honours the same resume tokens (they share
// TICKFAN_RESUME_SECRET), so after a lost connection or a failed attempt the client simply tries another one. It
// picks at random among the others rather than "the next in the list": the clients of a dead node all hold the
// same list, and taking the next one would send the whole herd to a single survivor.

export class Endpoints {
  readonly urls: readonly string[];
  private index = 0;

  constructor(urls: string | readonly string[], private readonly random: () => number = Math.random) {
    this.urls = typeof urls === "string" ? [urls] : [...urls];
    if (this.urls.length === 0) throw new RangeError("url: give at least one endpoint");
    for (const u of this.urls) new URL(u); // a malformed URL fails here, at construction, not at a reconnect
  }

  /** Where the next attempt goes. */
  get current(): string {
    return this.urls[this.index] as string;
  }

  /** Moves to another endpoint, uniformly among the others (stays put with only one); returns it. */
  failover(): string {
    const n = this.urls.length;
    if (n > 1) this.index = (this.index + 1 + Math.floor(this.random() * (n - 1))) % n;
    return this.current;
  }
}
