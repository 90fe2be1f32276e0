/**
 * Counts Docker API calls by method, so the bench and the metrics can show what a reconcile costs.
 * One counter can be shared by every Docker adapter (reader, event stream, actuator).
 */
export class DockerCallCounter {
  readonly #counts = new Map<string, number>();

  /** Counts one call of `method` (the dockerode method name, e.g. `listServices`). */
  record(method: string): void {
    this.#counts.set(method, (this.#counts.get(method) ?? 0) + 1);
  }

  count(method: string): number {
    return this.#counts.get(method) ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const n of this.#counts.values()) sum += n;
    return sum;
  }

  /** A copy of the counts by method, safe to keep while counting goes on. */
  byMethod(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#counts);
  }

  reset(): void {
    this.#counts.clear();
  }

  /** Runs one API call and counts it, whether it succeeds or not: a failed call still cost a round trip. */
  async call<T>(method: string, run: () => Promise<T>): Promise<T> {
    this.record(method);
    return run();
  }
}
