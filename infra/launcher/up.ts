/**
 * Running actors. `veil up` brings a group up on one machine: it reaches (or starts) the
 * broker and runs N servers and M storage nodes in one process. `veil node` runs one actor
 * in its own process against a broker that must already run (several machines, the
 * failover test). Both create the streams, print where things are once every actor is live,
 * and on a stop signal shut down in order: actors finish, resign, persist and leave, the
 * connection drains, and a private broker stops last.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger, WorkOptions } from "../../actors/ports.ts";
import { limits, TimeoutError } from "../../events/mod.ts";
import { randomIds, systemClock } from "../clock.ts";
import type { Config } from "../config.ts";
import { childLogger, displayUrl } from "../log.ts";
import { natsBus } from "../nats/bus.ts";
import { brokerUrls, connectNats, openJetStream } from "../nats/connection.ts";
import {
  authenticatorFor,
  findIdentities,
  type Identities,
  type IdentityKind,
  loadOrCreateIdentities,
  readIdentities,
} from "../nats/identities.ts";
import { refuseOpenBroker } from "../nats/open-broker.ts";
import { NatsEventLog } from "../nats/event-log.ts";
import { openGrantShareStore } from "../nats/grant-shares.ts";
import { brokerClockCheck } from "../nats/clock-check.ts";
import { openSnapshotStore, snapshotBucketName } from "../nats/snapshots.ts";
import {
  clusterStreamName,
  defaultReplicas,
  ensureStreams,
  eventStreamName,
  whenJetStreamReady,
} from "../nats/streams.ts";
import { hostServer } from "../server/host.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { type TicketKeys, ticketKeys as ticketKeysOf } from "../../actors/storage-node/tickets.ts";
import { checkClusterKey, loadClusterKey } from "../cluster-key.ts";
import { mailTransport } from "../mail/transport.ts";
import { cryptoRandom } from "../random.ts";
import { type CryptoActor, startCryptoActor } from "../workers/actors.ts";
import { ReplayWindow, type ScryptParameters } from "../../actors/crypto/mod.ts";
import { type Broker, reachBroker } from "./broker.ts";
import { diskChunkStore } from "../storage/disk-store.ts";
import { hostStorageNode } from "../storage/host.ts";
import { join } from "node:path";

export interface RunOptions {
  readonly config: Config;
  readonly serverIds: readonly string[];
  /** Storage nodes to run, each with its own folder `<data>/storage/<id>/`. */
  readonly storage?: { readonly ids: readonly string[]; readonly capacityBytes: number };
  readonly logger: Logger;
  /** Where the summary goes (stdout). */
  readonly print: (line: string) => void;
  /** Aborted by SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** `veil up --tls`: a private broker serves TLS with the data folder's certificates (made if missing). */
  readonly tls?: boolean;
  /** `veil up --broker-cluster N`: a private broker, when one is started, runs as N nats-servers. */
  readonly brokerNodes?: number;
  /** More actors to start once the cluster is live (peers, for a demo), on a client connection. */
  readonly afterLive?: (nc: NatsConnection) => readonly HostedActor[];
}

/** `veil up`: resolves with the process exit status once stopped. */
export async function up(options: RunOptions): Promise<number> {
  const { config, logger } = options;
  // The data folder's own identities (generated on first use) unless VEIL_CREDS names others.
  const identities = config.credsPath
    ? await readIdentities(config.credsPath)
    : await loadOrCreateIdentities(config.dataFolder);
  const broker = await reachBroker({
    natsUrl: config.natsUrl,
    dataFolder: config.dataFolder,
    name: "veil-up",
    logger,
    identities,
    ...(options.brokerNodes ? { brokerNodes: options.brokerNodes } : {}),
    ...(options.tls ? { tls: true } : {}),
    ...(config.tlsCaFile ? { tlsCaFile: config.tlsCaFile } : {}),
    ...(config.requireClientCredential ? { requireClientCredential: true } : {}),
  });
  const connections: Connections = { server: broker.nc };
  try {
    if (options.storage?.ids.length) {
      connections.storage = await connectAs(broker, identities, "storage", "veil-storage");
    }
    if (options.afterLive) connections.client = await connectAs(broker, identities, "client", "veil-peers");
    return await runServers(connections, options, broker);
  } finally {
    for (const nc of [connections.client, connections.storage, broker.nc]) if (nc) await drain(nc, logger);
    if (broker.privateServer) {
      await broker.privateServer.stop();
      logger.info("private nats-server stopped");
    }
  }
}

/** `veil node`: one actor in this process, on the broker at NATS_URL, as its kind's identity. */
export async function runNode(options: RunOptions): Promise<number> {
  const { config } = options;
  const ids = [...options.serverIds, ...(options.storage?.ids ?? [])];
  const kind = options.serverIds.length > 0 ? "server" : "storage";
  const identities = await findIdentities(config);
  const url = displayUrl(config.natsUrl);
  const nc = await connectNats(config.natsUrl, {
    name: `veil-node-${ids.join(",")}`,
    tlsCaFile: config.tlsCaFile,
    authenticator: authenticatorFor(identities, kind),
    identity: `veil's ${kind} identity`,
  });
  try {
    if (kind === "server") await refuseOpenBroker(config.natsUrl, nc, config.tlsCaFile);
    return await runServers({ [kind]: nc }, options, { nc, identities, url });
  } finally {
    await drain(nc, options.logger);
  }
}

/** One connection per kind of process this launcher runs, each with that kind's rights. */
interface Connections {
  server?: NatsConnection;
  storage?: NatsConnection;
  client?: NatsConnection;
}

function connectAs(broker: Broker, identities: Identities, kind: IdentityKind, name: string) {
  const url = broker.privateServer?.url ?? broker.url;
  return connectNats(url, {
    name,
    tlsCaFile: broker.tlsCaFile,
    authenticator: authenticatorFor(identities, kind),
    identity: `veil's ${kind} identity`,
  });
}

/** A hosted actor as the launcher sees it. */
export interface HostedActor {
  readonly id: string;
  readonly live: Promise<boolean>;
  readonly done: Promise<{ problem?: string }>;
  stop(): void;
}

async function runServers(connections: Connections, options: RunOptions, broker: Broker): Promise<number> {
  const { config, serverIds, logger, print, signal } = options;
  let crypto: CryptoActor | undefined;
  const running: HostedActor[] = [];
  // Storage nodes in a process with servers check tickets with the key those servers sign with;
  // a storage node alone never holds the cluster key, and asks a server for the public half.
  let ticketKeys: TicketKeys | undefined;
  let replicas: number | undefined;
  if (serverIds.length > 0) {
    const nc = connections.server!;
    replicas = config.streamReplicas ?? defaultReplicas(nc, options.brokerNodes, brokerUrls(config.natsUrl).length);
    const { js, jsm, snapshots, grantShares } = await whenJetStreamReady(async () => {
      const { js, jsm } = await openJetStream(nc, broker.url);
      await ensureStreams(jsm, { replicas: replicas!, logger });
      const snapshots = await openSnapshotStore(nc, { replicas: replicas! });
      return { js, jsm, snapshots, grantShares: await openGrantShareStore(nc, { replicas: replicas! }) };
    }, { logger });
    const log = new NatsEventLog(js, jsm);
    const clusterKey = await loadClusterKey(config, logger);
    // The log's first read and append wait too: a new stream has no leader for a moment.
    await whenJetStreamReady(
      () =>
        checkClusterKey(log, clusterKey, () => ({ id: randomIds.next(), at: systemClock.now(), by: serverIds[0]! })),
      { logger },
    );
    const secrets = clusterSecrets(clusterKey, cryptoRandom);
    ticketKeys = ticketKeysOf(clusterKey);
    // One crypto actor for the process (its pool already uses every core), started at the first
    // login or registration: a server that never sees one spends nothing on worker threads.
    const slowHash = (input: Uint8Array, salt: Uint8Array, parameters: ScryptParameters, options?: WorkOptions) =>
      (crypto ??= startCryptoActor()).slowHash(input, salt, parameters, options);
    const mail = mailTransport({ smtpUrl: config.smtpUrl, dataFolder: config.dataFolder, from: config.mailFrom });
    const identity = { secrets, slowHash, sessionTtlMs: config.sessionTtlMs, mail, replays: new ReplayWindow() };
    for (const nodeId of serverIds) {
      const nodeLogger = childLogger(logger, { node: nodeId });
      const server = hostServer({
        nodeId,
        bus: natsBus(nc, nodeLogger),
        log,
        snapshots,
        clock: systemClock,
        ids: randomIds,
        logger: nodeLogger,
        heartbeatTimeouts: config.heartbeatTimeouts,
        random: cryptoRandom,
        identity,
        repairGraceMs: config.repairGraceMs,
        gcGraceMs: config.gcGraceMs,
        gcIntervalMs: config.gcIntervalMs,
        userQuotaBytes: config.userQuotaBytes,
        grantShares,
        ticketKeys,
        clockCheck: brokerClockCheck(jsm, nodeId),
      });
      running.push({
        id: nodeId,
        live: server.live,
        done: server.done,
        stop: () => server.actor.getSnapshot().status === "active" && server.actor.send({ type: "STOP" }),
      });
    }
  }
  for (const nodeId of options.storage?.ids ?? []) {
    const nodeLogger = childLogger(logger, { node: nodeId });
    const node = hostStorageNode({
      nodeId,
      bus: natsBus(connections.storage!, nodeLogger),
      store: diskChunkStore(storageFolder(config.dataFolder, nodeId), nodeLogger),
      clock: systemClock,
      logger: nodeLogger,
      capacityBytes: options.storage!.capacityBytes,
      ...(ticketKeys ? { ticketKey: ticketKeys.publicKey } : {}),
    });
    running.push({
      id: nodeId,
      live: node.ready,
      done: node.done,
      stop: () => node.actor.getSnapshot().status === "active" && node.actor.send({ type: "STOP" }),
    });
  }
  const stopRequested = new Promise<"stop">((resolve) => {
    if (signal.aborted) resolve("stop");
    signal.addEventListener("abort", () => resolve("stop"), { once: true });
  });
  // Say "up" only once it is true: every server joined and caught up, every storage node scanned its store.
  const live = Promise.all(running.map((actor) => actor.live)).then((all) => all.every(Boolean));
  if (await Promise.race([live, stopRequested.then(() => false)])) {
    printSummary(print, { broker, config, serverIds, storageIds: options.storage?.ids ?? [], replicas });
    try {
      if (connections.client) running.push(...(options.afterLive?.(connections.client) ?? []));
    } catch (error) {
      logger.error("could not start what was asked beside the cluster", { reason: (error as Error).message });
    }
  }
  const allDone = Promise.all(running.map((actor) => actor.done));
  // Run until asked to stop, or until any actor ends on its own (a failure).
  const anyDone = Promise.race(running.map((actor) => actor.done.then(() => "done" as const)));
  const outcome = await Promise.race([stopRequested, anyDone]);
  if (outcome === "stop") logger.info("stopping");
  for (const actor of running) actor.stop();
  const outputs = await withinShutdownBound(allDone, "actors did not stop").finally(() => crypto?.stop());
  const problems = outputs.flatMap((output, index) =>
    output.problem ? [`${running[index]!.id}: ${output.problem}`] : []
  );
  for (const problem of problems) logger.error("stopped with a problem", { reason: problem });
  return problems.length > 0 || outcome === "done" ? 1 : 0;
}

/** Where a storage node keeps its chunks. */
export function storageFolder(dataFolder: string, nodeId: string): string {
  return join(dataFolder, "storage", nodeId);
}

async function drain(nc: NatsConnection, logger: Logger): Promise<void> {
  await withinShutdownBound(nc.drain(), "NATS connection did not drain").catch((error: Error) =>
    logger.warn(error.message)
  );
}

function withinShutdownBound<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(`${what} within ${limits.shutdownTimeoutMs} ms`)),
      limits.shutdownTimeoutMs,
    );
  });
  return Promise.race([work, bound]).finally(() => clearTimeout(timer));
}

function printSummary(
  print: (line: string) => void,
  { broker, config, serverIds, storageIds, replicas }: {
    broker: Broker;
    config: Config;
    serverIds: readonly string[];
    storageIds: readonly string[];
    replicas: number | undefined;
  },
): void {
  const nodes = broker.url.split(",").length;
  const privateNote = broker.privateServer
    ? ` (private ${
      nodes === 1 ? "nats-server" : `cluster of ${nodes} nats-servers`
    }, store ${broker.privateServer.storeFolder})`
    : "";
  const replicaNote = replicas === undefined ? "" : `, ${replicas} ${replicas === 1 ? "replica" : "replicas"}`;
  print(`veil is up`);
  print(`  NATS       ${broker.url}${privateNote}`);
  print(
    `  TLS        ${
      broker.tlsCaFile
        ? `on; clients trust the CA in ${broker.tlsCaFile} (VEIL_TLS_CA)`
        : "off: plain TCP, fit for loopback only (veil up --tls serves TLS)"
    }`,
  );
  print(`  data       ${config.dataFolder}`);
  print(`  streams    ${eventStreamName} (events), ${clusterStreamName} (election, heartbeats)${replicaNote}`);
  print(`  snapshots  KV bucket ${snapshotBucketName}`);
  if (serverIds.length > 0) print(`  servers    ${serverIds.join(", ")}`);
  if (storageIds.length > 0) {
    print(`  storage    ${storageIds.join(", ")} (chunks in ${join(config.dataFolder, "storage")})`);
  }
  if (serverIds.length > 0) {
    print(`  mail       ${config.smtpUrl ? "SMTP (VEIL_SMTP_URL)" : `.eml files in ${config.dataFolder}/mail`}`);
    print(`  start      veil register <name>   then   veil upload <file>   veil ls   veil download <name>`);
  }
  print(`  inspect    veil nodes   |   veil storage   |   veil events --follow   |   veil state users`);
  print(`Press Ctrl-C to stop.`);
}
