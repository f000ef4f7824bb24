/**
 * Work the simulator runs for real: sealing in Web Crypto and deflating covers in zlib, both
 * finished by the platform's thread pool whenever it is done. Such work takes no simulated
 * time, and its results are handed back only at the end of a simulated step, in the order
 * the work was started: the thread pool's timing never decides what the system does next,
 * so a seed replays exactly.
 */
export class RealWork {
  #pending: { readonly settled: Promise<unknown>; readonly release: () => void }[] = [];

  run<T>(work: () => Promise<T>): Promise<T> {
    const started = work();
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ settled: started.catch(() => {}), release: () => void started.then(resolve, reject) });
    });
  }

  /** Waits for everything started, releases the results in order, and again for what they started, until none is left. */
  async settle(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0);
      await Promise.all(batch.map((item) => item.settled));
      for (const item of batch) item.release();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}
