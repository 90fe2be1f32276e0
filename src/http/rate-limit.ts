/** A token bucket per client key (the remote address), so one noisy client cannot starve the API. */

export interface RateLimitOptions {
  /** Tokens added per second: the sustained request rate. Default 20. */
  readonly ratePerSecond?: number;
  /** Bucket size: how many requests may arrive at once after a quiet spell. Default 40. */
  readonly burst?: number;
  /**
   * Buckets kept at most. Past this, full buckets (idle clients) are forgotten first, then the
   * oldest, so a spray of source addresses cannot grow memory without bound. Default 10 000.
   */
  readonly maxClients?: number;
  /** Milliseconds on a monotonic clock; tests pass their own. */
  readonly now?: () => number;
}

export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class TokenBucketLimiter {
  private readonly rate: number;
  private readonly burst: number;
  private readonly maxClients: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions = {}) {
    this.rate = positive(options.ratePerSecond, 20, 'ratePerSecond');
    this.burst = positive(options.burst, 40, 'burst');
    this.maxClients = Math.floor(positive(options.maxClients, 10_000, 'maxClients'));
    this.now = options.now ?? (() => performance.now());
  }

  /** Takes one token for `key`, or says how long until one is there. */
  take(key: string): RateDecision {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, updatedMs: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * this.rate);
    bucket.updatedMs = now;
    if (!this.buckets.has(key)) {
      if (this.buckets.size >= this.maxClients) this.evict(now, this.maxClients - 1);
      this.buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.rate)) };
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number, keep: number): void {
    for (const [key, bucket] of this.buckets) {
      // A bucket that has refilled is indistinguishable from a new one: forgetting it is free.
      if (bucket.tokens + ((now - bucket.updatedMs) / 1000) * this.rate >= this.burst)
        this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= keep) break;
      this.buckets.delete(key);
    }
  }
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`rate limit ${name} must be above 0`);
  return value;
}
