/**
 * A fixed pool of worker threads (node:worker_threads, which Deno implements too): tasks go
 * to idle workers, and wait in order when all are busy. A worker that dies fails only its
 * own task and is replaced. Admission (how many may wait) is the actor's job, in front.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { WorkerPool } from "../../actors/ports.ts";
import { UnavailableError } from "../../events/mod.ts";
import { errorFromMessage, type ResultMessage } from "./protocol.ts";

interface Task {
  readonly id: number;
  readonly operation: string;
  readonly input: unknown;
  readonly transfer: readonly ArrayBuffer[];
  resolve(value: unknown): void;
  reject(error: Error): void;
}

const bootstrap = new URL("./bootstrap.js", import.meta.url);

export function startWorkerPool(options: { module: URL; size?: number; name: string }): WorkerPool {
  const size = options.size ?? availableParallelism();
  const waiting: Task[] = [];
  const idle: Worker[] = [];
  const running = new Map<Worker, Task>();
  /** Every live worker, ready or still loading, so close() ends them all. */
  const workers = new Set<Worker>();
  const ready = new Set<Worker>();
  let nextId = 0;
  let closed = false;

  const dispatch = () => {
    while (idle.length > 0 && waiting.length > 0) {
      const worker = idle.pop()!;
      const task = waiting.shift()!;
      running.set(worker, task);
      worker.postMessage({ id: task.id, operation: task.operation, input: task.input }, [...task.transfer]);
    }
  };

  const spawnWorker = () => {
    const worker = new Worker(bootstrap, { workerData: { module: options.module.href }, name: options.name });
    workers.add(worker);
    worker.on("message", (message: ResultMessage | { ready: true }) => {
      if ("ready" in message) {
        if (closed) return void worker.terminate();
        if (ready.has(worker)) return;
        ready.add(worker);
        idle.push(worker);
        return dispatch();
      }
      const task = running.get(worker);
      running.delete(worker);
      idle.push(worker);
      if (task && task.id === message.id) {
        if (message.ok) task.resolve(message.value);
        else task.reject(errorFromMessage(message.error));
      }
      dispatch();
    });
    worker.on("error", (error: Error) => {
      const task = running.get(worker);
      running.delete(worker);
      task?.reject(new UnavailableError(`a ${options.name} worker died: ${error.message}`, { cause: error }));
    });
    worker.on("exit", (code: number) => {
      // A worker that exits (rather than throws) must not leave its task waiting forever.
      running.get(worker)?.reject(new UnavailableError(`a ${options.name} worker exited with status ${code}`));
      running.delete(worker);
      const at = idle.indexOf(worker);
      if (at >= 0) idle.splice(at, 1);
      workers.delete(worker);
      const wasReady = ready.delete(worker);
      if (closed) return;
      if (!wasReady) {
        // It never loaded (a broken module, a missing file): respawning would only fail again.
        // Fail what waits if no worker is left to take it.
        if (workers.size === 0) {
          for (const task of waiting.splice(0)) {
            task.reject(new UnavailableError(`the ${options.name} workers could not start (status ${code})`));
          }
        }
        return;
      }
      spawnWorker();
      dispatch();
    });
  };
  for (let index = 0; index < size; index++) spawnWorker();

  return {
    size,
    run(operation, input, transfer = [], { urgent = false } = {}) {
      if (closed) return Promise.reject(new UnavailableError(`the ${options.name} pool is closed`));
      if (workers.size === 0) {
        return Promise.reject(new UnavailableError(`the ${options.name} workers could not start`));
      }
      return new Promise((resolve, reject) => {
        const task = { id: ++nextId, operation, input, transfer, resolve, reject };
        if (urgent) waiting.unshift(task);
        else waiting.push(task);
        dispatch();
      });
    },
    async close() {
      closed = true;
      for (const task of waiting.splice(0)) task.reject(new UnavailableError(`the ${options.name} pool closed`));
      await Promise.all([...workers].map((worker) => worker.terminate()));
    },
  };
}
