/** A server actor hosted in the bench's process, with a fresh cluster key and a mailer that sends nowhere. */
import type { NatsConnection } from "@nats-io/nats-core";
import { ReplayWindow } from "../actors/crypto/mod.ts";
import { clusterSecrets } from "../actors/server/accounts/secrets.ts";
import { ticketKeys } from "../actors/storage-node/tickets.ts";
import { limits } from "../events/mod.ts";
import { randomIds, systemClock } from "../infra/clock.ts";
import { natsBus } from "../infra/nats/bus.ts";
import type { NatsEventLog } from "../infra/nats/event-log.ts";
import { openSnapshotStore } from "../infra/nats/snapshots.ts";
import { cryptoRandom } from "../infra/random.ts";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { openGrantShareStore } from "../infra/nats/grant-shares.ts";
import { type HostedServer, hostServer } from "../infra/server/host.ts";
import type { CryptoActor } from "../infra/workers/actors.ts";
import { defaultHeartbeatTimeouts } from "../projections/mod.ts";

export const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Every server of a cluster holds the same key: the bench's servers share this one. */
const benchClusterKey = cryptoRandom.bytes(32);

export async function hostBenchServer(
  options: { nodeId: string; nc: NatsConnection; log: NatsEventLog; crypto: CryptoActor },
): Promise<HostedServer> {
  const clusterKey = benchClusterKey;
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
      secrets: clusterSecrets(clusterKey, cryptoRandom),
      replays: new ReplayWindow(),
      slowHash: options.crypto.slowHash,
      sessionTtlMs: limits.sessionTtlDefaultMs,
      mail: { kind: "file", send: () => Promise.resolve() },
    },
    // The bench's storage nodes run as processes of their own, and ask this server for the public key.
    ticketKeys: ticketKeys(clusterKey),
  });
}

const bin = fileURLToPath(new URL("../infra/cli/bin.js", import.meta.url));

/** Starts `veil node <args>` as its own process; resolves once it says it is up. */
export function startVeilNode(args: string[], env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, "node", ...args], {
    env: { ...process.env, VEIL_LOG: process.env.VEIL_BENCH_LOG ?? "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("Press Ctrl-C")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`veil node ${args.join(" ")} exited (${code}) before it was up`)));
  });
}
