/**
 * When to restart a server that exited on its own: quickly the first time, then with
 * doubling delays, and not at all after too many crashes in a row, so a broken install
 * does not spin the CPU. A server that stayed up long enough resets the count.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  maxAttempts: number;
  /** A run at least this long counts as healthy and resets the attempt count. */
  healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 1000,
  maxMs: 30000,
  maxAttempts: 5,
  healthyAfterMs: 60000,
};

export class RestartBackoff {
  private attempts = 0;

  constructor(private readonly policy: BackoffPolicy = DEFAULT_BACKOFF) {}

  /**
   * Called when the server exits unexpectedly after running for `uptimeMs`. Returns the
   * delay before the next start, or undefined to give up (the user restarts by command).
   */
  onCrash(uptimeMs: number): number | undefined {
    if (uptimeMs >= this.policy.healthyAfterMs) {
      this.attempts = 0;
    }
    if (this.attempts >= this.policy.maxAttempts) {
      return undefined;
    }
    const delay = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** this.attempts);
    this.attempts++;
    return delay;
  }

  /** A deliberate restart (the command, a settings change) starts a fresh count. */
  reset(): void {
    this.attempts = 0;
  }

  get crashes(): number {
    return this.attempts;
  }
}
