/** The real clock and id source; the simulator provides seeded ones with the same shape. */
import type { Clock, IdSource } from "../actors/ports.ts";

export const systemClock: Clock = { now: () => Date.now() };

export const randomIds: IdSource = { next: () => crypto.randomUUID() };
