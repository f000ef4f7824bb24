/** The real clock, timers and id source; the simulator provides seeded ones with the same shape. */
import type { Clock, IdSource, Timers } from "../actors/ports.ts";

export const systemClock: Clock = { now: () => Date.now() };

export const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export const randomIds: IdSource = { next: () => crypto.randomUUID() };
