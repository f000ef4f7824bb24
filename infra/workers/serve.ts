/** The worker side: answers tasks with the operations it is given, errors included. */
import v8 from "node:v8";
import vm from "node:vm";
import { parentPort } from "node:worker_threads";
import { errorToMessage, type TaskMessage } from "./protocol.ts";

export type Operations = Readonly<Record<string, (input: never) => unknown>>;

/**
 * The garbage collector, where the runtime lets a worker reach it (Node and Deno both do).
 * A worker's garbage is mostly buffers outside the JS heap (a part's payload, its order, its
 * deflated rows: some 3 MB a part), and V8 lets tens of megabytes of it wait per worker before
 * it collects: on the vault bench a 50 MB upload grew the client's process by 61-69 MB without
 * collections. A busy worker, never idle, gets no idle-time collections either.
 */
const collectGarbage: ((options?: { type: "minor" | "major" }) => void) | undefined = (() => {
  try {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as (options?: { type: "minor" | "major" }) => void;
  } catch {
    return undefined;
  }
})();

/**
 * A result ready to hand over without copying: the result itself, or its fields, when byte
 * arrays, are handed over (transferred) with their buffers. A view into a larger buffer is
 * first copied out: handing over, or cloning, its buffer would send all of it.
 */
function handOver(value: unknown): { value: unknown; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const own = (bytes: Uint8Array): Uint8Array => {
    const whole = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 &&
        bytes.byteLength === bytes.buffer.byteLength
      ? bytes
      : new Uint8Array(bytes);
    if (!transfer.includes(whole.buffer as ArrayBuffer)) transfer.push(whole.buffer as ArrayBuffer);
    return whole;
  };
  if (value instanceof Uint8Array) return { value: own(value), transfer };
  // Only plain objects are taken apart: anything else (arrays, maps, other views) is cloned as it is.
  if (!value || typeof value !== "object" || Object.getPrototypeOf(value) !== Object.prototype) {
    return { value, transfer };
  }
  const fields = Object.entries(value).map(([name, field]) => [name, field instanceof Uint8Array ? own(field) : field]);
  return { value: Object.fromEntries(fields), transfer };
}

/** What a task moved in and out: the bytes of its byte-array input and result, and their fields. */
function bytesMoved(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (!value || typeof value !== "object") return 0;
  return Object.values(value).reduce(
    (sum: number, field) => sum + (field instanceof Uint8Array ? field.byteLength : 0),
    0,
  );
}

/** When a worker collects its garbage. */
interface Collection {
  /** Fully, after each of these (scrypt's 128 MiB, a decoded user PNG). */
  readonly after?: readonly string[];
  /**
   * The young generation after each of these (most of a part's buffers die there), and fully
   * once, together, they have moved 8 MiB since the last full collection (some 7 parts).
   */
  readonly budgeted?: readonly string[];
}

/**
 * Serves `operations`, collecting garbage as `collection` says; other operations leave it to
 * V8. Measured on sealing and hiding 25 MB (CPU a MB): a full collection after every part
 * 155 ms, every 2 MiB moved 112-123, a young one after every part and a full one every 8 MiB
 * 95-99, no collection 88. On the vault bench the last grows a 50 MB upload's client by 0-5
 * MB; full collections every 4 MiB alone let it grow by 26-35. Downloads are left to V8:
 * collecting after each extract cost them a fifth of their speed, and their memory is not
 * at stake.
 */
export function serveOperations(operations: Operations, collection: Collection = {}): void {
  const budgetBytes = 8 << 20;
  let movedSinceCollection = 0;
  parentPort!.on("message", async (task: TaskMessage) => {
    try {
      const operation = operations[task.operation] as ((input: unknown) => unknown) | undefined;
      if (!operation) throw new Error(`unknown operation ${task.operation}`);
      const { value, transfer } = handOver(await operation(task.input));
      if (collection.budgeted?.includes(task.operation)) {
        movedSinceCollection += bytesMoved(task.input) + bytesMoved(value);
      }
      parentPort!.postMessage({ id: task.id, ok: true, value }, transfer);
    } catch (error) {
      parentPort!.postMessage({ id: task.id, ok: false, error: errorToMessage(error) });
    }
    try {
      if (collection.after?.includes(task.operation) || movedSinceCollection >= budgetBytes) {
        movedSinceCollection = 0;
        collectGarbage?.({ type: "major" });
      } else if (collection.budgeted?.includes(task.operation)) {
        collectGarbage?.({ type: "minor" });
      }
    } catch {
      // A runtime whose collector takes no options: V8 collects on its own, as it would anyway.
    }
  });
  // Only now can a task be heard: Deno's worker threads drop messages that arrive before the
  // listener (seen on a cold cache, where loading the worker takes long), so the pool waits.
  parentPort!.postMessage({ ready: true });
}
