/**
 * Hosts a storage node on this machine: the node of actors/storage-node/host.ts, given the
 * system's timers, the platform's signatures, this process's memory figure and the bus's
 * command client. The chunk store (infra/storage/disk-store.ts) and the bus its caller wires in.
 */
import process from "node:process";
import { type HostedStorageNode, startStorageNode, type StorageNodeDeps } from "../../actors/storage-node/host.ts";
import { systemTimers } from "../clock.ts";
import { commandsOver } from "../command-client.ts";
import { nativeSignatures } from "../signatures.ts";

export type { HostedStorageNode } from "../../actors/storage-node/host.ts";

export type StorageHostDeps =
  & Omit<StorageNodeDeps, "send" | "timers" | "signatures" | "memoryBytes">
  & Partial<StorageNodeDeps>;

export function hostStorageNode(deps: StorageHostDeps): HostedStorageNode {
  return startStorageNode({
    send: commandsOver(deps.bus),
    timers: systemTimers,
    signatures: nativeSignatures,
    memoryBytes: () => process.memoryUsage().rss,
    ...deps,
  });
}
