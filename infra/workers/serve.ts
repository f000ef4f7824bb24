/** The worker side: answers tasks with the operations it is given, errors included. */
import { parentPort } from "node:worker_threads";
import { errorToMessage, type TaskMessage } from "./protocol.ts";

export type Operations = Readonly<Record<string, (input: never) => unknown>>;

export function serveOperations(operations: Operations): void {
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
  });
  // Only now can a task be heard: Deno's worker threads drop messages that arrive before the
  // listener (seen on a cold cache, where loading the worker takes long), so the pool waits.
  parentPort!.postMessage({ ready: true });
}
