/**
 * What a benchmark suite is. Every figure that judges speed is a ratio against a reference
 * measured in the same run on the same machine (fields named `*_ratio`); absolute rates are
 * printed for context only, because the machines are shared and noisy.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type PrivateBroker, startPrivateBroker } from "../infra/nats/private-broker.ts";
import { connectNats, openJetStream } from "../infra/nats/connection.ts";
import { authenticatorFor, identitiesPath } from "../infra/nats/identities.ts";
import { NatsEventLog } from "../infra/nats/event-log.ts";
import { startNatsServer } from "../infra/nats/server-process.ts";
import { ensureStreams, whenJetStreamReady } from "../infra/nats/streams.ts";

export type Figures = Record<string, number>;

export interface Suite {
  readonly name: string;
  readonly description: string;
  run(report: (line: string) => void): Promise<Figures>;
}

/** Runs `work` `rounds` times and keeps the shortest time in seconds (least disturbed by neighbours). */
export async function bestSeconds(rounds: number, work: () => unknown): Promise<number> {
  let fastest = Infinity;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    await work();
    fastest = Math.min(fastest, (performance.now() - started) / 1_000);
  }
  return fastest;
}

/** The best rate of `count` items per second over `rounds` runs of `work`. */
export async function bestRate(rounds: number, count: number, work: () => unknown): Promise<number> {
  return count / (await bestSeconds(rounds, work));
}

/** What a suite gets: the broker, a server's connection and a user's machine's. */
export interface PrivateNats {
  readonly url: string;
  /** Connected as a server (the trusted account). */
  readonly nc: NatsConnection;
  /** Connected as a user's machine: anonymously, in the clients' account, as `veil` connects. */
  readonly client: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly log: NatsEventLog;
  /** What a `veil node` needs to reach this broker with its identities. */
  readonly env: { readonly NATS_URL: string; readonly VEIL_CREDS: string };
  /** Its nodes, to kill and restart. */
  readonly broker: PrivateBroker;
}

/**
 * A private nats-server with veil's streams, for one suite, started with the config and
 * identities `veil up` generates (accounts, permissions), so what is measured is what runs;
 * always stopped and removed after.
 */
export async function withPrivateNats<T>(
  name: string,
  work: (broker: PrivateNats) => Promise<T>,
  options: { nodes?: number } = {},
): Promise<T> {
  const nodes = options.nodes ?? 1;
  const storeFolder = await mkdtemp(join(tmpdir(), `veil-bench-${name}-`));
  const dataFolder = join(storeFolder, "data");
  const server = await startPrivateBroker({
    dataFolder,
    storeFolder: join(storeFolder, "js"),
    host: "127.0.0.1",
    nodes,
  });
  const { identities } = server;
  const nc = await connectNats(server.url, {
    name: `veil-bench-${name}`,
    authenticator: authenticatorFor(identities, "server"),
  });
  const client = await connectNats(server.url, { name: `veil-bench-${name}-client` });
  try {
    // A cluster that has just formed refuses JetStream work until its nodes elect a meta leader.
    const { js, jsm } = await whenJetStreamReady(async () => {
      const opened = await openJetStream(nc, server.url);
      await ensureStreams(opened.jsm, { replicas: Math.min(nodes, 3) });
      return opened;
    });
    const env = { NATS_URL: server.url, VEIL_CREDS: identitiesPath(dataFolder) };
    return await work({ nc, client, url: server.url, js, jsm, log: new NatsEventLog(js, jsm), env, broker: server });
  } finally {
    await client.close();
    await nc.close();
    await server.stop();
    await rm(storeFolder, { recursive: true, force: true });
  }
}

/**
 * An open nats-server beside veil's, for references that veil's identities may not run:
 * NATS's own Object Store purges a stream subject on every put, which veil's config denies
 * everyone. Same machine, same temp disk; always stopped and removed after.
 */
export async function withReferenceNats<T>(name: string, work: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const storeFolder = await mkdtemp(join(tmpdir(), `veil-bench-${name}-reference-`));
  const server = await startNatsServer({ storeFolder });
  const nc = await connectNats(server.url, { name: `veil-bench-${name}-reference` });
  try {
    return await work(nc);
  } finally {
    await nc.close();
    await server.stop();
    await rm(storeFolder, { recursive: true, force: true });
  }
}

/** Runs `tasks` with at most `window` in flight, like a client pipelining requests. */
export async function pipelined(
  count: number,
  window: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
}

export const round2 = (value: number) => Math.round(value * 100) / 100;
