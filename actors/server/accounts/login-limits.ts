/**
 * The in-memory guards of logins: failure counts for names that have no aggregate to record
 * them in, a rate per account, and bounds on the slow hashes in flight per key. Neither is state anyone needs
 * rebuilt: losing them costs an attacker's pause, never an account.
 */
import { checkAttemptAllowed, countFailure, type FailureCount } from "./decider.ts";
import { BusyError, limits } from "../../../events/mod.ts";

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

/**
 * At most `max` attempts per key in any `windowMs`, kept only in memory: it bounds how much
 * of a shared lane one account can hold with logins that all succeed.
 */
export class MemoryRate {
  readonly #attempts = new Map<string, number[]>();

  constructor(private readonly max: number, private readonly windowMs: number) {}

  /** Counts an attempt, or throws BusyError (counting nothing) when the key has had its share. */
  take(key: string, now: number): void {
    const recent = (this.#attempts.get(key) ?? []).filter((at) => at > now - this.windowMs);
    if (recent.length >= this.max) {
      const waitS = Math.ceil((recent[0]! + this.windowMs - now) / 1_000);
      throw new BusyError(`too many logins for this account in the last minute; retry in ${waitS} s`);
    }
    recent.push(now);
    this.#attempts.delete(key);
    this.#attempts.set(key, recent);
    // Insertion order again: the first key is the one least recently seen.
    if (this.#attempts.size > limits.loginAddressesTrackedMax) {
      this.#attempts.delete(this.#attempts.keys().next().value!);
    }
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
