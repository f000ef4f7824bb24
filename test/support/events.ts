/** Builders for test events with a deterministic clock and ids. */
import type { NodeRole } from "../../events/mod.ts";
import { veilEvent } from "../../events/mod.ts";

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
