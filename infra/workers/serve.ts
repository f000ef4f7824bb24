/** The worker side: answers tasks with the operations it is given, errors included. */
import v8 from "node:v8";
import vm from "node:vm";
import { parentPort } from "node:worker_threads";
import { errorToMessage, type TaskMessage } from "./protocol.ts";

export type Operations = Readonly<Record<string, (input: never) => unknown>>;

/**
 * The garbage collector, where the runtime lets a worker reach it (Node and Deno both do).
 * A part's cover, its stego copy and its PNG are some 10 MB of buffers outside the JS heap,
 * and V8 lets tens of megabytes of such garbage wait per worker before it collects. On the
 * vault bench a 50 MB upload grew the client's process by 61-69 MB without this, 42-67 MB
 * with a scavenge after each embed, and 6-10 MB with a full collection, at the same upload
 * speed within the noise.
 */
const collectGarbage: (() => void) | undefined = (() => {
  try {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
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
  if (!value || typeof value !== "object" || Array.isArray(value)) return { value, transfer };
  const fields = Object.entries(value).map(([name, field]) => [name, field instanceof Uint8Array ? own(field) : field]);
  return { value: Object.fromEntries(fields), transfer };
}

/** `collectAfter`: operations whose large, short-lived buffers are collected as soon as each is answered. */
export function serveOperations(operations: Operations, options: { collectAfter?: readonly string[] } = {}): void {
  parentPort!.on("message", async (task: TaskMessage) => {
    try {
      const operation = operations[task.operation] as ((input: unknown) => unknown) | undefined;
      if (!operation) throw new Error(`unknown operation ${task.operation}`);
      const { value, transfer } = handOver(await operation(task.input));
      parentPort!.postMessage({ id: task.id, ok: true, value }, transfer);
    } catch (error) {
      parentPort!.postMessage({ id: task.id, ok: false, error: errorToMessage(error) });
    }
    if (options.collectAfter?.includes(task.operation)) collectGarbage?.();
  });
  // Only now can a task be heard: Deno's worker threads drop messages that arrive before the
  // listener (seen on a cold cache, where loading the worker takes long), so the pool waits.
  parentPort!.postMessage({ ready: true });
}
