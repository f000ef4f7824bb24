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
import { connectNats, openJetStream } from "../infra/nats/connection.ts";
import { NatsEventLog } from "../infra/nats/event-log.ts";
import { startNatsServer } from "../infra/nats/server-process.ts";
import { ensureStreams } from "../infra/nats/streams.ts";

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

/** A private nats-server with veil's streams, for one suite; always stopped and removed after. */
export async function withPrivateNats<T>(
  name: string,
  work: (
    broker: { nc: NatsConnection; url: string; js: JetStreamClient; jsm: JetStreamManager; log: NatsEventLog },
  ) => Promise<T>,
): Promise<T> {
  const storeFolder = await mkdtemp(join(tmpdir(), `veil-bench-${name}-`));
  const server = await startNatsServer({ storeFolder });
  const nc = await connectNats(server.url, { name: `veil-bench-${name}` });
  try {
    const { js, jsm } = await openJetStream(nc, server.url);
    await ensureStreams(jsm, { replicas: 1 });
    return await work({ nc, url: server.url, js, jsm, log: new NatsEventLog(js, jsm) });
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
