/**
 * The vault across real processes: three `veil node --role storage` processes, a server in
 * this process. One storage process is SIGKILLed in the middle of a stream of uploads: every
 * upload that was acknowledged still downloads byte for byte, and after the grace period
 * every chunk is back at its replicas on the survivors. Restarted, the node comes back with
 * what it held: nothing is copied again and nothing is lost.
 */
import { Buffer } from "node:buffer";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { limits } from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/command-client.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { download, type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import type { ImageManifest } from "../../projections/images.ts";
import { vaultUser } from "../support/accounts.ts";
import { type RunningVeil, startVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { hostTestServer } from "../support/servers.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";

const nats = useNatsServer();
/** A user's machine's connection. */
const bus = () => natsBus(nats.client, silentLogger);
let folder: string;
let server: HostedServer;
let crypto: CryptoActor;
let stego: StegoActor;
let owner: TransferDeps;
const processes = new Map<string, RunningVeil>();
/** Uploads acknowledged by the first test, which the second checks again after the node returns. */
const acknowledged: { image: string; bytes: Uint8Array }[] = [];

async function startStorage(id: string) {
  const node = startVeil(["node", "--role", "storage", "--id", id, "--capacity", "1GB"], {
    env: { ...nats.env, VEIL_DATA: join(folder, "data"), VEIL_LOG: "warn" },
  });
  processes.set(id, node);
  await node.waitForOutput(/Press Ctrl-C to stop/);
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-vault-kill-"));
  crypto = startCryptoActor({ size: 2 });
  stego = startStegoActor({ size: 2 });
  server = await hostTestServer(nats, {
    nodeId: "kill-server",
    identity: { slowHash: crypto.slowHash },
    repairGraceMs: 1_500,
  });
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  await Promise.all(["proc-1", "proc-2", "proc-3"].map(startStorage));
  for (const id of processes.keys()) await waitForHeartbeat(nats.nc, id, (beat) => beat.state === "ready", 10_000);
  owner = await vaultUser(bus(), { crypto, stego }, "mara", "the owner of many files");
}, 60_000);

afterAll(async () => {
  for (const node of processes.values()) node.child.kill("SIGKILL");
  await Promise.all([...processes.values()].map((node) => node.exited));
  server?.actor.send({ type: "STOP" });
  await server?.done;
  await Promise.all([crypto?.stop(), stego?.stop()]);
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe("a storage process killed during uploads", () => {
  it("loses no acknowledged upload, and repair brings every chunk back to its replicas", async () => {
    let killed = false;
    let afterKill = 0;
    // Uploads keep coming until three have been acknowledged after the kill (or 40 were tried).
    const uploading = (async () => {
      for (let index = 0; afterKill < 3 && index < 40; index++) {
        const bytes = cryptoRandom.bytes(300_000);
        const path = join(folder, `file-${index}`);
        await writeFile(path, bytes);
        try {
          const stored = await upload(owner, { path, name: `file-${index}`, type: "application/octet-stream" }, {
            replicas: 2,
          });
          acknowledged.push({ image: stored.image, bytes });
          if (killed) afterKill++;
        } catch {
          // Not acknowledged: it recorded nothing, and need not come back.
        }
      }
    })();
    await waitForHeartbeat(nats.nc, "proc-2", (beat) => (beat.chunks ?? 0) >= 4, 20_000);
    const fromSeq = await nats.log.lastSeq();
    processes.get("proc-2")!.child.kill("SIGKILL");
    killed = true;
    await processes.get("proc-2")!.exited;
    processes.delete("proc-2");
    await uploading;
    expect(afterKill).toBe(3);

    for (const { image, bytes } of acknowledged) {
      const output = join(folder, `back-${image}`);
      await download(owner, image, { output: () => output });
      expect(Buffer.from(await readFile(output)).equals(Buffer.from(bytes)), image).toBe(true);
    }
    // Every chunk that was on the killed node gets a new replica; then all are at 2 on live nodes.
    for (const { image } of acknowledged) {
      const manifest = await sendCommand(bus(), "vault.get", { ...owner.session, image }) as ImageManifest;
      for (const chunk of manifest.parts.flatMap((part) => part.chunks)) {
        if (!chunk.nodes.includes("proc-2")) continue;
        await waitForEvent(nats.log, (event) => event.type === "ChunkReplicated" && event.data.hash === chunk.hash, {
          fromSeq,
          timeoutMs: 30_000,
          what: `chunk ${chunk.hash} re-replicated`,
        });
      }
      const repaired = await sendCommand(bus(), "vault.get", { ...owner.session, image }) as ImageManifest;
      for (const chunk of repaired.parts.flatMap((part) => part.chunks)) {
        expect(chunk.nodes.filter((node) => node !== "proc-2").length, chunk.hash).toBeGreaterThanOrEqual(2);
      }
    }
  }, 150_000);

  it("comes back with its chunks: no repair is done again, and every upload still downloads", async () => {
    const fromSeq = (await nats.log.lastSeq()) + 1;
    await startStorage("proc-2");
    const back = await waitForHeartbeat(nats.nc, "proc-2", (beat) => beat.state === "ready", 20_000);
    expect(back.chunks ?? 0).toBeGreaterThan(0);
    // Several repair rounds (one every 2 s) run while the node is back: the server's beats count the time.
    const since = Date.now();
    await waitForHeartbeat(nats.nc, "kill-server", (beat) => beat.sentAt > since + 3 * limits.repairIntervalMs, 20_000);
    const repairs: string[] = [];
    for await (const record of nats.log.replay({ fromSeq })) {
      if (record.ok && (record.event.type === "ChunkReplicated" || record.event.type === "ChunkLost")) {
        repairs.push(`${record.event.type} ${JSON.stringify(record.event.data)}`);
      }
    }
    expect(repairs).toEqual([]);
    for (const { image, bytes } of acknowledged) {
      const output = join(folder, `again-${image}`);
      await download(owner, image, { output: () => output });
      expect(Buffer.from(await readFile(output)).equals(Buffer.from(bytes)), image).toBe(true);
    }
  }, 60_000);
});
