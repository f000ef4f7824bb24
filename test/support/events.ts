/** Builders for test events with a deterministic clock and ids. */
import type { EventLog } from "../../actors/ports.ts";
import { type NodeRole, type VeilEvent, veilEvent } from "../../events/mod.ts";

let counter = 0;

/** A fresh origin: ids are unique per process, times are fixed unless given. */
export function origin(at = 1_700_000_000_000, by = "test") {
  counter += 1;
  return { id: `00000000-0000-4000-8000-${String(counter).padStart(12, "0")}`, at, by };
}

export const joined = (node: string, role: NodeRole = "server", at?: number) =>
  veilEvent("NodeJoined", { node, role }, origin(at));

export const left = (node: string, role: NodeRole = "server", at?: number) =>
  veilEvent("NodeLeft", { node, role, reason: "shutdown" }, origin(at));

export const elected = (node: string, term: number, at?: number) =>
  veilEvent("LeaderElected", { node, term }, origin(at));

/** Waits, with a bound, for the first entry from `fromSeq` on that matches; rejects with what it saw otherwise. */
export async function waitForEvent(
  log: EventLog,
  matches: (event: VeilEvent) => boolean,
  options: { fromSeq?: number; timeoutMs: number; what: string },
): Promise<{ seq: number; event: VeilEvent }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  try {
    for await (const record of log.follow({ fromSeq: options.fromSeq, signal: abort.signal })) {
      if (record.ok && matches(record.event)) return { seq: record.seq, event: record.event };
    }
    throw new Error(`no ${options.what} within ${options.timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
