/**
 * The integration-test harness: a real `nats-server` on a free port with a temp store and
 * the config and identities `veil up` generates (accounts, permissions, JetStream), started
 * before a file's tests and always stopped after them, also when a test fails or the worker
 * exits early. `nc` is connected as a server; `connectAs` opens others.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { jetstream, type JetStreamClient, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll } from "vitest";
import { decodeMessage, type Heartbeat, heartbeat } from "../../events/mod.ts";
import { connectNats } from "../../infra/nats/connection.ts";
import {
  authenticatorFor,
  type Identities,
  identitiesPath,
  type IdentityKind,
  loadOrCreateIdentities,
} from "../../infra/nats/identities.ts";
import { type PrivateBroker, startPrivateBroker } from "../../infra/nats/private-broker.ts";
import { NatsEventLog } from "../../infra/nats/event-log.ts";
import { startNatsServer } from "../../infra/nats/server-process.ts";
import { ensureStreams, whenJetStreamReady } from "../../infra/nats/streams.ts";

export interface TestNats {
  readonly url: string;
  /** Connected as a server (the trusted account's widest rights). */
  readonly nc: NatsConnection;
  /** Connected as a user's machine: anonymously, as `veil` does on a machine with no credentials. */
  readonly client: NatsConnection;
  /** Connected as a storage node. */
  readonly storage: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly log: NatsEventLog;
  readonly storeFolder: string;
  /** The data folder holding the broker's config and identities, as `veil up` writes it. */
  readonly dataFolder: string;
  readonly identities: Required<Identities>;
  /** What a veil process needs to reach this broker with the data folder's identities. */
  readonly env: { readonly NATS_URL: string; readonly VEIL_CREDS: string };
  /** The broker's nodes, to kill and restart them (undefined for an open broker). */
  readonly broker: PrivateBroker | undefined;
  /** A connection as another identity (closed by the harness after the file's tests). */
  connectAs(kind: IdentityKind, name?: string): Promise<NatsConnection>;
}

/**
 * Starts a private nats-server for this test file, with veil's streams created.
 * `createStreams: false` leaves the broker empty. `open: true` starts it without veil's
 * config, as a nats-server someone runs with no accounts: open to every connection, so a
 * test can do what no identity of veil's may (delete messages, delete a stream) and see how
 * veil copes. `brokerNodes: 3` starts a cluster of three, as `veil up --broker-cluster 3`
 * does, with veil's streams replicated on all three.
 */
export function useNatsServer(
  options: { createStreams?: boolean; open?: boolean; brokerNodes?: number } = {},
): TestNats {
  let broker: PrivateBroker | undefined;
  let server: { url: string; stop(): Promise<void>; pids(): number[] } | undefined;
  let storeFolder = "";
  let nc: NatsConnection | undefined;
  const others: NatsConnection[] = [];
  const killOnExit = () => server?.pids().forEach((pid) => process.kill(pid, "SIGKILL"));
  const handle = {} as { -readonly [K in keyof TestNats]: TestNats[K] };

  beforeAll(async () => {
    storeFolder = await mkdtemp(join(tmpdir(), "veil-test-nats-"));
    const dataFolder = join(storeFolder, "data");
    const js = join(storeFolder, "js");
    const identities = await loadOrCreateIdentities(dataFolder);
    if (options.open) {
      const open = await startNatsServer({ storeFolder: js });
      server = { ...open, pids: () => [open.pid] };
    } else {
      broker = await startPrivateBroker({
        dataFolder,
        storeFolder: js,
        host: "127.0.0.1",
        nodes: options.brokerNodes ?? 1,
      });
      server = { stop: () => broker!.stop(), pids: () => broker!.nodes.map((node) => node.pid), url: broker.url };
    }
    process.once("exit", killOnExit);
    const url = server.url;
    const connectAs = async (kind: IdentityKind, name = `veil-test-${kind}`) => {
      const connection = await connectNats(url, { name, authenticator: authenticatorFor(identities, kind) });
      others.push(connection);
      return connection;
    };
    nc = await connectNats(url, { name: "veil-test", authenticator: authenticatorFor(identities, "server") });
    const client = await connectNats(url, { name: "veil-test-client" });
    others.push(client);
    const storage = await connectAs("storage");
    const replicas = Math.min(options.brokerNodes ?? 1, 3);
    // A cluster that has just formed refuses JetStream work until its nodes elect a meta leader.
    const jsm = await whenJetStreamReady(async () => {
      const jsm = await jetstreamManager(nc!);
      if (options.createStreams !== false) await ensureStreams(jsm, { replicas });
      return jsm;
    });
    const jetStream = jetstream(nc);
    Object.assign(handle, {
      url,
      nc,
      client,
      storage,
      js: jetStream,
      jsm,
      log: new NatsEventLog(jetStream, jsm),
      broker,
      storeFolder,
      dataFolder,
      identities,
      env: { NATS_URL: url, VEIL_CREDS: identitiesPath(dataFolder) },
      connectAs,
    });
  });

  afterAll(async () => {
    for (const other of others) await other.close().catch(() => {});
    await nc?.close();
    await server?.stop();
    process.removeListener("exit", killOnExit);
    if (storeFolder) await rm(storeFolder, { recursive: true, force: true });
  });

  return handle;
}

/** Waits, with a bound, for a heartbeat from `node` that satisfies `matches`. */
export function waitForHeartbeat(
  nc: NatsConnection,
  node: string,
  matches: (heartbeat: Heartbeat) => boolean,
  timeoutMs: number,
): Promise<Heartbeat> {
  return new Promise((resolve, reject) => {
    const subscription = nc.subscribe(`veil.hb.*.${node}`, {
      callback: (_, message) => {
        const beat = heartbeat.parse(decodeMessage(message.data));
        if (!matches(beat)) return;
        clearTimeout(timer);
        subscription.unsubscribe();
        resolve(beat);
      },
    });
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      reject(new Error(`no matching heartbeat from ${node} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
}
