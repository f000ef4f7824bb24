/**
 * What a benchmark suite is. Every figure that judges speed is a ratio against a reference
 * measured in the same run on the same machine (fields named `*_ratio`); absolute rates are
 * printed for context only, because the machines are shared and noisy.
 */
export type Figures = Record<string, number>;

export interface Suite {
  readonly name: string;
  readonly description: string;
  run(report: (line: string) => void): Promise<Figures>;
}

/** Runs `work` `rounds` times and keeps the best rate (least disturbed by neighbours). */
export async function bestRate(rounds: number, count: number, work: () => Promise<void>): Promise<number> {
  let best = 0;
  for (let round = 0; round < rounds; round++) {
    const started = performance.now();
    await work();
    best = Math.max(best, count / ((performance.now() - started) / 1_000));
  }
  return best;
}

/** Runs `tasks` with at most `window` in flight, like a client pipelining requests. */
export async function pipelined(
  count: number,
  window: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
}

export const round2 = (value: number) => Math.round(value * 100) / 100;
