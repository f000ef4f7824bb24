/**
 * The vault on a private nats-server: one server and three storage nodes in this process,
 * over folders in a temp dir, and a registered user. Upload and download throughput for 1,
 * 10 and 50 MB files (stego on, 2 replicas) against putting and getting the same bytes in a
 * NATS Object Store bucket on an open nats-server beside it in the same run; peak memory during the 50 MB
 * upload against the transfer's chunk window; stored bytes against original bytes; and the
 * upload against sealing and hiding the same bytes alone, its ceiling on this machine.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Objm } from "@nats-io/obj";
import { authHash, newAccountKeys, passwordSaltBytes, sealCredentials } from "../../actors/peer/account.ts";
import { passwordKdf } from "../../actors/crypto/mod.ts";
import { limits } from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { commandsOver, sendCommand } from "../../infra/command-client.ts";
import { nativeDigests } from "../../infra/digests.ts";
import { download, onThisMachine, type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { eachLimited, sealPart } from "../../actors/peer/parts.ts";
import { newObjectKeys } from "../../actors/peer/vault.ts";
import { startCryptoActor, startStegoActor } from "../../infra/workers/actors.ts";
import { hostBenchServer, quietLogger as quiet, startVeilNode } from "../server.ts";
import { bestSeconds, type Figures, round2, type Suite, withPrivateNats, withReferenceNats } from "../suite.ts";

const megabyte = 1_000_000;

export const vaultSuite: Suite = {
  name: "vault",
  description: "upload and download (stego, 2 replicas) against the NATS Object Store; memory; stored bytes",
  run: (report) =>
    withPrivateNats("vault", ({ nc, client, env, log }) =>
      withReferenceNats("vault", async (reference) => {
        const folder = await mkdtemp(join(tmpdir(), "veil-bench-vault-"));
        const crypto = startCryptoActor();
        const stego = startStegoActor();
        // The user's side calls from the clients' account, through the broker's service imports.
        const bus = natsBus(client, quiet);
        // What the cluster says of its nodes is for operators: asked with the server's identity.
        const trustedBus = natsBus(nc, quiet);
        const server = await hostBenchServer({ nodeId: "bench-server", nc, log, crypto });
        // Storage nodes in processes of their own, as deployed: this process's memory is the
        // client's (and the server's), not the nodes' buffers too.
        const nodes = await Promise.all(["bench-store-1", "bench-store-2", "bench-store-3"].map((nodeId) =>
          startVeilNode(["--role", "storage", "--id", nodeId, "--capacity", "100GB"], {
            ...env,
            VEIL_DATA: folder,
          })
        ));
        try {
          await server.live;
          // Placement needs the leader to have heard every node's heartbeat.
          await new Promise<void>((resolve) => {
            const check = setInterval(async () => {
              const view = await sendCommand(trustedBus, "cluster.nodes") as {
                nodes: { role: string; alive: boolean }[];
              };
              if (
                view.nodes.filter((node) =>
                  node.role === "storage" && node.alive
                ).length === 3
              ) {
                clearInterval(check);
                resolve();
              }
            }, 200);
          });
          const call = (name: string, data: unknown) =>
            sendCommand(bus, name, data, { timeoutMs: limits.identityCommandTimeoutMs });
          const user = "bench-owner";
          const passwordSalt = cryptoRandom.bytes(passwordSaltBytes);
          const master = await crypto.derivePasswordKey("a benchmark password", passwordSalt);
          const keys = newAccountKeys(cryptoRandom);
          const credentials = sealCredentials({ user, master, passwordSalt, passwordKdf, keys, random: cryptoRandom });
          await call("user.register", { user, ...credentials, publicKey: keys.publicKey });
          const { token } = await call("user.login", {
            user,
            authHash: authHash(master),
            deviceId: new Uint8Array(32),
            deviceName: "bench",
          }) as { token: string };
          const deps: TransferDeps = {
            bus,
            ...onThisMachine,
            send: commandsOver(bus),
            crypto,
            stego,
            random: cryptoRandom,
            session: { user, token },
            accountKey: keys.accountKey,
            logger: quiet,
          };
          const objects = await new Objm(reference).create("bench", { storage: "file" } as never);
          /** What an object takes on the storage nodes: its parts' chunks, times its replicas. */
          const storedBytesOf = async (image: string) => {
            const manifest = await call("vault.get", { user, token, image }) as {
              parts: { chunks: { bytes: number }[] }[];
              replicas: number;
            };
            return manifest.parts.flatMap((part) => part.chunks).reduce((sum, chunk) => sum + chunk.bytes, 0) *
              manifest.replicas;
          };

          const figures: Figures = {};
          let objectPut50 = 0;
          let objectsPut = 0;
          // 1 MB first warms every actor and worker up; then 50 MB, whose memory is measured
          // before a larger transfer has grown the process (RSS does not shrink, and memory a
          // larger run freed could hide what the upload needs).
          for (const size of [1, 50, 10]) {
            const bytes = cryptoRandom.bytes(size * megabyte);
            const path = join(folder, `file-${size}`);
            await writeFile(path, bytes);
            const rounds = size === 1 ? 3 : 1;
            let stored = { image: "" };
            let peakBytes = 0;
            const baseline = process.memoryUsage().rss;
            const sampler = setInterval(
              () => (peakBytes = Math.max(peakBytes, process.memoryUsage().rss - baseline)),
              20,
            );
            const uploadSeconds = await bestSeconds(rounds, async () => {
              stored = await upload(deps, { path, name: `file-${size}`, type: "application/octet-stream" }, {
                replicas: 2,
              });
            });
            clearInterval(sampler);
            const downloadSeconds = await bestSeconds(
              rounds,
              () => download(deps, stored.image, { output: () => join(folder, `back-${size}`), force: true }),
            );
            // A new name each round: replacing an object purges its old chunks, which no identity of veil's may do.
            let objectName = "";
            const objectPut = await bestSeconds(rounds, () => {
              objectName = `file-${size}-${++objectsPut}`;
              return objects.putBlob({ name: objectName }, bytes);
            });
            const objectGet = await bestSeconds(rounds, () => objects.getBlob(objectName));
            const storedBytes = await storedBytesOf(stored.image);
            figures[`upload_${size}mb_vs_object_store_ratio`] = round2(objectPut / uploadSeconds);
            figures[`download_${size}mb_vs_object_store_ratio`] = round2(objectGet / downloadSeconds);
            figures[`stored_${size}mb_vs_original_ratio`] = round2(storedBytes / bytes.byteLength);
            report(
              `${size} MB: upload ${(size / uploadSeconds).toFixed(1)} MB/s (object store ${
                (size / objectPut).toFixed(1)
              }), download ${(size / downloadSeconds).toFixed(1)} MB/s (object store ${
                (size / objectGet).toFixed(1)
              }), stored ${(storedBytes / bytes.byteLength).toFixed(2)}x`,
            );
            if (size === 50) {
              objectPut50 = objectPut;
              // The ceiling set by sealing and hiding alone (the stego workers' share, no puts):
              // how close the whole upload comes to it says where the rest of the time goes.
              const keys = newObjectKeys(cryptoRandom);
              const sealSeconds = await bestSeconds(1, () =>
                eachLimited(
                  Array.from({ length: Math.ceil(bytes.byteLength / limits.vaultPartBytes) }, (_, index) => index),
                  limits.partsInFlight,
                  async (index) => {
                    // A copy, as an upload reads it: a view would send the whole 50 MB buffer to a worker.
                    const part = bytes.slice(index * limits.vaultPartBytes, (index + 1) * limits.vaultPartBytes);
                    await sealPart({ crypto, stego, random: cryptoRandom, digests: nativeDigests }, keys, index, part);
                  },
                ));
              figures.upload_50mb_vs_seal_and_hide_alone_ratio = round2(sealSeconds / uploadSeconds);
              report(
                `50 MB sealed and hidden alone (no puts): ${
                  (size / sealSeconds).toFixed(1)
                } MB/s, the upload's ceiling`,
              );
              // What a transfer keeps in flight: parts at once, each with its chunk puts.
              const windowBytes = limits.partsInFlight * limits.transferConcurrency * limits.chunkBytes;
              figures.upload_50mb_peak_memory_vs_chunk_window_ratio = round2(peakBytes / windowBytes);
              report(
                `50 MB upload: peak memory +${
                  (peakBytes / megabyte).toFixed(0)
                } MB over the start (this process also ` +
                  `hosts the server; the storage nodes run in their own), ${
                    (peakBytes / windowBytes).toFixed(1)
                  }x the chunk window`,
              );
            }
          }
          // More bits on request (`veil upload --bits 4`): a quarter of the cover pixels, at the
          // price of covers that are noisier up close.
          let dense = { image: "" };
          const denseSeconds = await bestSeconds(1, async () => {
            dense = await upload(deps, { path: join(folder, "file-50"), name: "dense", type: "x" }, {
              replicas: 2,
              bits: 4,
            });
          });
          const denseStored = await storedBytesOf(dense.image);
          figures.upload_50mb_at_4_bits_vs_object_store_ratio = round2(objectPut50 / denseSeconds);
          figures.stored_50mb_at_4_bits_vs_original_ratio = round2(denseStored / (50 * megabyte));
          report(
            `50 MB at 4 bits per channel: upload ${(50 / denseSeconds).toFixed(1)} MB/s, stored ${
              (denseStored / (50 * megabyte)).toFixed(2)
            }x`,
          );
          report(`ratios: ${JSON.stringify(figures)}`);
          return figures;
        } finally {
          await Promise.all(nodes.map((node) => {
            const exited = new Promise((resolve) => node.once("exit", resolve));
            node.kill("SIGTERM");
            return exited;
          }));
          server.actor.send({ type: "STOP" });
          await server.done;
          await Promise.all([crypto.stop(), stego.stop()]);
          await rm(folder, { recursive: true, force: true });
        }
      })),
};
