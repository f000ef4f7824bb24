/**
 * The integration-test harness: a real `nats-server -js` on a free port with a temp store,
 * started before a file's tests and always stopped after them, also when a test fails or
 * the worker exits early.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { jetstream, type JetStreamClient, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll } from "vitest";
import { type Heartbeat, heartbeat } from "../../actors/server/messages.ts";
import { decodeMessage } from "../../events/mod.ts";
import { connectNats } from "../../infra/nats/connection.ts";
import { NatsEventLog } from "../../infra/nats/event-log.ts";
import { type NatsServerProcess, startNatsServer } from "../../infra/nats/server-process.ts";
import { ensureStreams } from "../../infra/nats/streams.ts";

export interface TestNats {
  readonly url: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly log: NatsEventLog;
  readonly storeFolder: string;
}

/** Starts a private nats-server for this test file, with veil's streams created. */
export function useNatsServer(): TestNats {
  let server: NatsServerProcess | undefined;
  let storeFolder = "";
  let nc: NatsConnection | undefined;
  const killOnExit = () => server && process.kill(server.pid, "SIGKILL");
  const handle = {} as { -readonly [K in keyof TestNats]: TestNats[K] };

  beforeAll(async () => {
    storeFolder = await mkdtemp(join(tmpdir(), "veil-test-nats-"));
    server = await startNatsServer({ storeFolder });
    process.once("exit", killOnExit);
    nc = await connectNats(server.url, { name: "veil-test" });
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, { replicas: 1 });
    const js = jetstream(nc);
    Object.assign(handle, { url: server.url, nc, js, jsm, log: new NatsEventLog(js, jsm), storeFolder });
  });

  afterAll(async () => {
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
