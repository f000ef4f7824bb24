/** A server actor hosted in the bench's process, with a fresh cluster key and a mailer that sends nowhere. */
import type { NatsConnection } from "@nats-io/nats-core";
import { clusterSecrets } from "../actors/server/accounts/secrets.ts";
import { limits } from "../events/mod.ts";
import { randomIds, systemClock } from "../infra/clock.ts";
import { natsBus } from "../infra/nats/bus.ts";
import type { NatsEventLog } from "../infra/nats/event-log.ts";
import { openSnapshotStore } from "../infra/nats/snapshots.ts";
import { cryptoRandom } from "../infra/random.ts";
import { openGrantShareStore } from "../infra/nats/grant-shares.ts";
import { type HostedServer, hostServer } from "../infra/server/host.ts";
import type { CryptoActor } from "../infra/workers/actors.ts";
import { defaultHeartbeatTimeouts } from "../projections/mod.ts";

export const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

export async function hostBenchServer(
  options: { nodeId: string; nc: NatsConnection; log: NatsEventLog; crypto: CryptoActor },
): Promise<HostedServer> {
  return hostServer({
    nodeId: options.nodeId,
    bus: natsBus(options.nc, quietLogger),
    log: options.log,
    snapshots: await openSnapshotStore(options.nc, { replicas: 1 }),
    grantShares: await openGrantShareStore(options.nc, { replicas: 1 }),
    clock: systemClock,
    ids: randomIds,
    logger: quietLogger,
    heartbeatTimeouts: defaultHeartbeatTimeouts,
    random: cryptoRandom,
    identity: {
      secrets: clusterSecrets(cryptoRandom.bytes(32), cryptoRandom),
      slowHash: options.crypto.slowHash,
      sessionTtlMs: limits.sessionTtlDefaultMs,
      mail: { kind: "file", send: () => Promise.resolve() },
    },
  });
}
