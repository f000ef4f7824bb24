/**
 * veil at work on a broker cluster of three (streams and buckets with three replicas):
 * uploads, registrations and views go on while one broker node is SIGKILLed and restarted,
 * then another. Every acknowledged upload downloads byte for byte, every acknowledged
 * registration logs in, the views spent are exactly those the log records (none twice),
 * no event is stored twice, every server's live projections equal a rebuild from sequence 1,
 * and `veil health` is healthy again within a bound after each restart.
 */
import { Buffer } from "node:buffer";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { approve } from "../../actors/peer/approve.ts";
import { openGrant, type ViewDeps } from "../../actors/peer/view.ts";
import { projectUntil } from "../../actors/server/projector.ts";
import { encodePng, generateCover } from "../../actors/stego/mod.ts";
import { grantSubject, VeilError } from "../../events/mod.ts";
import { sendCommand } from "../../infra/command-client.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { eventStreamName } from "../../infra/nats/streams.ts";
import { cryptoRandom } from "../../infra/random.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { download, type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import { findProjection, grantsProjection } from "../../projections/mod.ts";
import { accountClient, vaultUser } from "../support/accounts.ts";
import { runVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { testClusterKey } from "../support/identity.ts";
import { silentLogger } from "../support/logger.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";

const nats = useNatsServer({ brokerNodes: 3 });
const bus = () => natsBus(nats.client, silentLogger);
const storageIds = ["workload-store-1", "workload-store-2"];
/** Views granted: more than the workload can spend, so every refusal would be a failure. */
const grantedViews = 1_000;
/** After a restart, `veil health` must say healthy within this (the figure measured is reported). */
const healthyBoundMs = 90_000;
/** Errors a command may end in while a broker node is down: the caller may retry each. */
const retryable = new Set(["unavailable", "timeout", "busy"]);

let folder: string;
let crypto: CryptoActor;
let stego: StegoActor;
const servers: HostedServer[] = [];
const storage: HostedStorageNode[] = [];
let olga: TransferDeps & ViewDeps;
let rita: TransferDeps & ViewDeps;
let photo: Uint8Array;
let grant: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-workload-"));
  crypto = startCryptoActor({ size: 2 });
  stego = startStegoActor({ size: 2 });
  for (const nodeId of ["workload-server-1", "workload-server-2"]) {
    servers.push(
      await hostTestServer(nats, {
        nodeId,
        identity: { slowHash: crypto.slowHash, clusterKey: testClusterKey },
        replicas: 3,
      }),
    );
  }
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 20_000, what: "a leader" });
  for (const nodeId of storageIds) {
    storage.push(hostTestStorageNode(nats, { nodeId, folder: join(folder, "storage"), capacityBytes: 1024 ** 3 }));
  }
  await Promise.all(storage.map((node) => node.ready));
  for (const node of storageIds) await waitForHeartbeat(nats.nc, node, (beat) => beat.state === "ready", 10_000);
  olga = await vaultUser(bus(), { crypto, stego }, "olga", "the password of olga, long enough");
  rita = await vaultUser(bus(), { crypto, stego }, "rita", "the password of rita, long enough");
  photo = await encodePng(generateCover(5, 160, 120));
  await writeFile(join(folder, "photo.png"), photo);
  const shown = await upload(olga, { path: join(folder, "photo.png"), name: "photo.png", type: "image/png" }, {
    replicas: 2,
  });
  await sendCommand(bus(), "vault.discoverable", {
    ...olga.session,
    image: shown.image,
    discoverable: true,
    name: "photo.png",
  });
  const { request } = await sendCommand(bus(), "request.create", {
    ...rita.session,
    owner: "olga",
    image: shown.image,
  }) as { request: string };
  ({ grant } = await approve(olga, request, { views: grantedViews, expiresAt: Date.now() + 3_600_000 }) as {
    grant: string;
  });
}, 120_000);

afterAll(async () => {
  for (const node of storage) node.actor.send({ type: "STOP" });
  await Promise.all(storage.map((node) => node.done));
  for (const server of servers) server.actor.send({ type: "STOP" });
  await Promise.all(servers.map((server) => server.done));
  await Promise.all([crypto?.stop(), stego?.stop()]);
  if (folder) await rm(folder, { recursive: true, force: true });
});

/** One kind of work done over and over until stopped: what was acknowledged, and how the rest failed. */
function keepDoing<T>(step: (index: number) => Promise<T>) {
  const acknowledged: T[] = [];
  const failures: VeilError[] = [];
  let running = true;
  const done = (async () => {
    for (let index = 0; running; index++) {
      try {
        acknowledged.push(await step(index));
      } catch (error) {
        // Anything but a typed veil error is a bug to see at once, not a failure to count.
        if (!(error instanceof VeilError)) throw error;
        failures.push(error);
      }
    }
  })();
  return {
    acknowledged,
    failures,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** The index of the broker node that leads the event stream now. */
async function streamLeader(): Promise<number> {
  const leader = await vi.waitFor(async () => {
    const name = (await nats.jsm.streams.info(eventStreamName)).cluster?.leader;
    if (!name) throw new Error("no stream leader yet");
    return name;
  }, { timeout: 30_000, interval: 200 });
  return nats.broker!.nodes.findIndex((node) => node.serverName === leader);
}

/** Milliseconds until `veil health` says healthy, run as an operator would, again and again. */
async function untilHealthy(): Promise<number> {
  const started = performance.now();
  for (let last = ""; performance.now() - started < healthyBoundMs;) {
    const ran = await runVeil(["health", "--json"], { env: nats.env, timeoutMs: 30_000 });
    if (ran.code === 0 && (JSON.parse(ran.stdout) as { healthy: boolean }).healthy) {
      return performance.now() - started;
    }
    last = ran.stdout || ran.stderr;
    if (performance.now() - started >= healthyBoundMs) throw new Error(`not healthy in ${healthyBoundMs} ms: ${last}`);
  }
  throw new Error(`not healthy in ${healthyBoundMs} ms`);
}

describe("veil on a broker cluster of three while broker nodes die", () => {
  it(
    "keeps every acknowledged upload, registration and view, and duplicates nothing",
    async () => {
      const uploads = keepDoing(async (index) => {
        const bytes = cryptoRandom.bytes(40_000 + index);
        const path = join(folder, `file-${index}.bin`);
        await writeFile(path, bytes);
        const { image } = await upload(olga, { path, name: `file-${index}.bin`, type: "application/octet-stream" }, {
          replicas: 2,
        });
        return { image, bytes };
      });
      const accounts = accountClient(bus(), crypto);
      const registrations = keepDoing(async (index) => {
        const user = `member-${index}`;
        const password = `the password of ${user}, long enough`;
        await accounts.register(user, password);
        return { user, password };
      });
      const views = keepDoing(async () => {
        const opened = await openGrant(rita, grant);
        expect(Buffer.from(opened.plaintext).equals(Buffer.from(photo))).toBe(true);
        return opened.viewsLeft;
      });
      const work = [uploads, registrations, views];
      /** Waits until every kind of work has had `more` acknowledgements since it was called. */
      const progress = async (more: number) => {
        const from = work.map((kind) => kind.acknowledged.length);
        await vi.waitFor(() => {
          for (const [index, kind] of work.entries()) {
            expect(kind.acknowledged.length).toBeGreaterThanOrEqual(from[index]! + more);
          }
        }, { timeout: 90_000, interval: 100 });
      };

      const healthyAfterRestart: number[] = [];
      let previous = -1;
      for (let round = 0; round < 2; round++) {
        await progress(2);
        // The stream leader's node first; then another node (the leader again, unless it is the same one).
        const leader = await streamLeader();
        const victim = leader === previous ? (leader + 1) % 3 : leader;
        process.kill(nats.broker!.nodes[victim]!.pid, "SIGKILL");
        // Work goes on with two of three nodes.
        await progress(2);
        await nats.broker!.restart(victim);
        healthyAfterRestart.push(await untilHealthy());
        previous = victim;
      }
      await progress(1);
      await Promise.all(work.map((kind) => kind.stop()));
      console.info(
        `workload: ${uploads.acknowledged.length} uploads, ${registrations.acknowledged.length} registrations, ` +
          `${views.acknowledged.length} views acknowledged; ` +
          `${work.map((kind) => kind.failures.length).join("/")} failed; ` +
          `healthy ${healthyAfterRestart.map((ms) => `${Math.round(ms)} ms`).join(", ")} after each restart`,
      );

      // A command that did not succeed ended in an error its caller may retry, never another.
      for (const kind of work) {
        expect(kind.failures.filter((error) => !retryable.has(error.code)).map((error) => error.message)).toEqual([]);
      }
      for (const { image, bytes } of uploads.acknowledged) {
        const output = join(folder, `${image}.out`);
        await download(olga, image, { output: () => output, force: true });
        expect(Buffer.from(await readFile(output)).equals(Buffer.from(bytes))).toBe(true);
      }
      for (const { user, password } of registrations.acknowledged) {
        expect((await accounts.login(user, password)).token).toMatch(/./);
      }

      // Views: each success spent one of its own, and the log holds each spent view once.
      const spent: string[] = [];
      for await (const record of nats.log.replay({ subject: grantSubject(grant) })) {
        if (record.ok && record.event.type === "ViewConsumed") spent.push(record.event.data.view);
      }
      expect(new Set(spent).size).toBe(spent.length);
      expect(new Set(views.acknowledged).size).toBe(views.acknowledged.length);
      expect(spent.length).toBeGreaterThanOrEqual(views.acknowledged.length);
      // A view whose reply was lost with the broker node is spent and not seen: one per failure at most.
      expect(spent.length - views.acknowledged.length).toBeLessThanOrEqual(views.failures.length);
      console.info(`workload: ${spent.length} views spent, ${views.acknowledged.length} seen`);
      const grants = await projectUntil({ log: nats.log, projection: grantsProjection, logger: silentLogger });
      expect(grants.state.grants[grant]!.viewsLeft).toBe(grantedViews - spent.length);

      // No event is stored twice: a retried append carries the same id and the broker drops the copy.
      const ids = new Set<string>();
      let events = 0;
      for await (const record of nats.log.replay({})) {
        if (!record.ok) continue;
        events++;
        ids.add(record.event.id);
      }
      expect(ids.size).toBe(events);

      // Every server's live projections equal a rebuild from sequence 1 up to where each stands.
      for (const server of servers) {
        for (const [name, projector] of server.projectors) {
          await projector.caughtUp(30_000);
          const live = { seq: projector.seq, state: projector.state };
          const projection = findProjection(name)!;
          const rebuilt = await projectUntil({ log: nats.log, projection, logger: silentLogger, untilSeq: live.seq });
          expect(rebuilt.state, `${name} on a server`).toEqual(live.state);
        }
      }
    },
    480_000,
  );
});
