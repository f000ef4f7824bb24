/**
 * The in-memory guards of logins: failure counts for names that have no aggregate to record
 * them in, and bounds on the slow hashes in flight per key. Neither is state anyone needs
 * rebuilt: losing them costs an attacker's pause, never an account.
 */
import { checkAttemptAllowed, countFailure, type FailureCount } from "../../actors/server/accounts/decider.ts";
import { BusyError, limits } from "../../events/mod.ts";

/**
 * Failures for names nobody holds, kept only in memory (they have no aggregate to record
 * them in), by name and by client address: so unknown names are slowed down exactly like
 * real ones, and an address guessing names is slowed down like one guessing passwords.
 */
export class MemoryThrottle {
  readonly #counts = new Map<string, FailureCount>();

  check(key: string, now: number): void {
    const count = this.#counts.get(key);
    if (count) checkAttemptAllowed(count, now);
  }

  get(key: string): FailureCount | undefined {
    return this.#counts.get(key);
  }

  fail(key: string, now: number): void {
    const next = countFailure(this.#counts.get(key) ?? { failures: 0, lastFailureAt: null, lockedUntil: null }, now);
    this.#counts.delete(key);
    this.#counts.set(key, next);
    // A Map iterates in insertion order: the first key is the stalest.
    if (this.#counts.size > limits.loginAddressesTrackedMax) this.#counts.delete(this.#counts.keys().next().value!);
  }
}

/** A key work is counted under, and how much of it may be in flight at once. */
export type Lane = readonly [key: string, max: number];

/** Counts work in flight per key and refuses, at once, work beyond a key's bound. */
export class InFlightGate {
  readonly #counts = new Map<string, number>();

  /** Runs `work` once every key has room, or throws BusyError without running it. */
  async run<T>(keys: readonly Lane[], work: () => Promise<T>): Promise<T> {
    const full = keys.find(([key, max]) => (this.#counts.get(key) ?? 0) >= max);
    if (full) throw new BusyError("too many logins in progress for this account, address or server; retry shortly");
    for (const [key] of keys) this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    try {
      return await work();
    } finally {
      for (const [key] of keys) {
        const left = this.#counts.get(key)! - 1;
        if (left === 0) this.#counts.delete(key);
        else this.#counts.set(key, left);
      }
    }
  }
}
