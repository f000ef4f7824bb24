/**
 * Hosts a server on this machine: the server of actors/server/application.ts, given the
 * system's timers, the platform's signatures and this process's memory figure. Everything
 * else it needs (the NATS bus and log, the cluster key's secrets) its caller wires in.
 */
import process from "node:process";
import { type HostedServer, type ServerDeps, startServer } from "../../actors/server/application.ts";
import { systemTimers } from "../clock.ts";
import { nativeSignatures } from "../signatures.ts";

export type { HostedServer } from "../../actors/server/application.ts";
export type { NodeView } from "../../events/mod.ts";

export type ServerHostDeps = Omit<ServerDeps, "timers" | "signatures" | "memoryBytes"> & Partial<ServerDeps>;

export function hostServer(deps: ServerHostDeps): HostedServer {
  return startServer({
    timers: systemTimers,
    signatures: nativeSignatures,
    memoryBytes: () => process.memoryUsage().rss,
    ...deps,
  });
}
