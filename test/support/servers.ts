/**
 * Actors hosted in the test's own process on its real nats-server: a server with test
 * identity settings, and a storage node over a real folder. Each test says only what it
 * needs to differ.
 */
import { join } from "node:path";
import type { Clock, Logger } from "../../actors/ports.ts";
import { randomIds, systemClock } from "../../infra/clock.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { openGrantShareStore } from "../../infra/nats/grant-shares.ts";
import { openSnapshotStore } from "../../infra/nats/snapshots.ts";
import { type HostedServer, hostServer } from "../../infra/server/host.ts";
import { diskChunkStore } from "../../infra/storage/disk-store.ts";
import { type HostedStorageNode, hostStorageNode } from "../../infra/storage/host.ts";
import { defaultHeartbeatTimeouts } from "../../projections/mod.ts";
import { testIdentity, testTicketKeys } from "./identity.ts";
import { silentLogger } from "./logger.ts";
import type { TestNats } from "./nats.ts";

export async function hostTestServer(
  nats: TestNats,
  options: {
    nodeId: string;
    clock?: Clock;
    logger?: Logger;
    identity?: Parameters<typeof testIdentity>[0];
    repairGraceMs?: number;
    gc?: { graceMs: number; intervalMs: number };
    userQuotaBytes?: number;
    /** Replicas of the KV buckets (snapshots, grant shares): 3 on a broker cluster of three. */
    replicas?: number;
  },
): Promise<HostedServer> {
  const replicas = options.replicas ?? 1;
  return hostServer({
    nodeId: options.nodeId,
    bus: natsBus(nats.nc, silentLogger),
    log: nats.log,
    snapshots: await openSnapshotStore(nats.nc, { replicas }),
    grantShares: await openGrantShareStore(nats.nc, { replicas }),
    clock: options.clock ?? systemClock,
    ids: randomIds,
    logger: options.logger ?? silentLogger,
    heartbeatTimeouts: defaultHeartbeatTimeouts,
    ...testIdentity(options.identity),
    ...(options.repairGraceMs === undefined ? {} : { repairGraceMs: options.repairGraceMs }),
    ...(options.gc ? { gcGraceMs: options.gc.graceMs, gcIntervalMs: options.gc.intervalMs } : {}),
    ...(options.userQuotaBytes === undefined ? {} : { userQuotaBytes: options.userQuotaBytes }),
  });
}

export function hostTestStorageNode(
  nats: TestNats,
  /** `ticketKey`: the test cluster's unless given; `"ask"` makes the node ask the servers, as one alone does. */
  options: { nodeId: string; folder: string; capacityBytes: number; ticketKey?: Uint8Array | "ask" },
): HostedStorageNode {
  const ticketKey = options.ticketKey ?? testTicketKeys.publicKey;
  return hostStorageNode({
    nodeId: options.nodeId,
    bus: natsBus(nats.storage, silentLogger),
    store: diskChunkStore(join(options.folder, options.nodeId), silentLogger),
    clock: systemClock,
    logger: silentLogger,
    capacityBytes: options.capacityBytes,
    ...(ticketKey === "ask" ? {} : { ticketKey }),
  });
}
