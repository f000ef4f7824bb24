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

/** `collectAfter`: operations whose large, short-lived buffers are collected as soon as each is answered. */
export function serveOperations(operations: Operations, options: { collectAfter?: readonly string[] } = {}): void {
  parentPort!.on("message", async (task: TaskMessage) => {
    try {
      const operation = operations[task.operation] as ((input: unknown) => unknown) | undefined;
      if (!operation) throw new Error(`unknown operation ${task.operation}`);
      const value = await operation(task.input);
      // Hand large results over without copying.
      const transfer = value instanceof Uint8Array ? [value.buffer as ArrayBuffer] : [];
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
