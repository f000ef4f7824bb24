/**
 * The crypto and stego actors: each a worker machine over its own pool of worker threads
 * (one per core by default), with a typed client.
 */
import { createActor, toPromise } from "xstate";
import type { ScryptParameters } from "../../actors/crypto/mod.ts";
import type { EmbedRequest, WorkOptions } from "../../actors/ports.ts";
import { workerEffects, workerMachine } from "../../actors/workers/mod.ts";
import { limits, UnavailableError } from "../../events/mod.ts";
import { startWorkerPool } from "./pool.ts";

export interface WorkerActor {
  request<T>(operation: string, input: unknown, transfer?: readonly ArrayBuffer[], options?: WorkOptions): Promise<T>;
  /** Lets admitted work finish, then stops the workers. */
  stop(): Promise<void>;
}

export function startWorkerActor(
  options: { name: string; module: URL; size?: number; admittedMax?: number },
): WorkerActor {
  const pool = startWorkerPool({ module: options.module, size: options.size, name: options.name });
  const actor = createActor(workerMachine.provide(workerEffects(pool)), {
    input: { name: options.name, admittedMax: options.admittedMax ?? pool.size + limits.workerQueueMax },
  });
  actor.start();
  return {
    request: <T>(operation: string, input: unknown, transfer?: readonly ArrayBuffer[], work: WorkOptions = {}) =>
      new Promise<T>((resolve, reject) => {
        // A stopped actor takes no more events: answer for it.
        if (actor.getSnapshot().status !== "active") {
          return reject(new UnavailableError(`the ${options.name} actor has stopped`));
        }
        actor.send({
          type: "RUN",
          operation,
          input,
          transfer,
          urgent: work.urgent,
          reply: (result) => (result.ok ? resolve(result.value as T) : reject(result.error)),
        });
      }),
    async stop() {
      actor.send({ type: "STOP" });
      await toPromise(actor);
    },
  };
}

export function startCryptoActor(options: { size?: number; admittedMax?: number } = {}) {
  const actor = startWorkerActor({
    name: "crypto",
    module: new URL("./crypto-worker.ts", import.meta.url),
    ...options,
  });
  return {
    seal: (key: Uint8Array, objectId: Uint8Array, plaintext: Uint8Array, segmentBytes?: number) =>
      actor.request<Uint8Array>("seal", { key, objectId, plaintext, segmentBytes }),
    open: (key: Uint8Array, sealed: Uint8Array) =>
      actor.request<{ objectId: Uint8Array; plaintext: Uint8Array }>("open", { key, sealed }),
    derivePasswordKey: (password: string, salt: Uint8Array, parameters?: ScryptParameters) =>
      actor.request<Uint8Array>("derivePasswordKey", { password, salt, parameters }),
    slowHash: (bytes: Uint8Array, salt: Uint8Array, parameters?: ScryptParameters, options?: WorkOptions) =>
      actor.request<Uint8Array>("slowHash", { bytes, salt, parameters }, [], options),
    stop: () => actor.stop(),
  };
}

export type CryptoActor = ReturnType<typeof startCryptoActor>;

export function startStegoActor(options: { size?: number; admittedMax?: number } = {}) {
  const actor = startWorkerActor({ name: "stego", module: new URL("./stego-worker.ts", import.meta.url), ...options });
  return {
    embed: (input: EmbedRequest) =>
      actor.request<{ png: Uint8Array; psnr: number; width: number; height: number }>("embed", input),
    extract: (png: Uint8Array, stegoKey: Uint8Array) => actor.request<Uint8Array>("extract", { png, stegoKey }),
    capacity: (png: Uint8Array, bits: number) =>
      actor.request<{ width: number; height: number; bytes: number }>("capacity", { png, bits }),
    preview: (png: Uint8Array) => actor.request<Uint8Array>("preview", { png }),
    stop: () => actor.stop(),
  };
}

export type StegoActor = ReturnType<typeof startStegoActor>;
